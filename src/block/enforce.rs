//! The enforcer: the one thread that talks to `nft`, so the ordered stage never waits for it.
//!
//! It takes bans decided by [`super::Blocker`] from a bounded channel and applies everything
//! that arrived together as one `nft -f -` script, then saves the ledger. Every `reconcile`
//! interval it compares the firewall with the ledger and repairs it: it takes `secpipe unban`
//! requests, re-creates the table when someone flushed it (`nft flush ruleset`, `systemctl
//! restart nftables`), re-asserts a live ban whose kernel time has fallen below half of what
//! the ledger says is left, and removes elements the ledger does not hold live (lifted early).
//! Unbans it makes are sent back to the ordered stage as audit records.
//!
//! Shutdown: when the blocker drops its sender, the thread applies what is queued, saves the
//! ledger and ends. Bans stay in the kernel with their timeouts (and in the ledger, so the
//! next start re-applies them): stopping secpipe does not let attackers back in early.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::ledger::{Ledger, pending_unbans};
use super::nft::{self, Nft};
use super::policy::Net;
use crate::action::BlockTarget;
use crate::alert::Alert;
use crate::event::now_micros;

/// A ban to apply, with when it was decided (µs, for the latency figure).
pub struct BanOrder {
    pub target: BlockTarget,
    pub until: i64,
    pub decided: i64,
}

/// What the enforcer did, read at the end of the run.
#[derive(Debug, Default, Clone)]
pub struct EnforceStats {
    pub batches: u64,
    pub applied: u64,
    pub failures: u64,
    pub last_error: Option<String>,
    pub reconciles: u64,
    pub table_restored: u64,
    pub reasserted: u64,
    pub removed: u64,
    pub unbans: u64,
    /// Unban records the ordered stage's full queue could not take (not in the archive).
    pub audit_lost: u64,
    /// Decision → `nft` done, µs: the longest seen.
    pub max_latency: i64,
}

/// What the thread works with.
pub struct Enforcer {
    pub nft: Nft,
    pub ledger: Arc<Mutex<Ledger>>,
    pub state: PathBuf,
    pub allow: Vec<Net>,
    /// `[block] forward`: drop banned sources on the forward hook too.
    pub forward: bool,
    pub reconcile: Duration,
    pub audit: Sender<Alert>,
    pub stats: Arc<Mutex<EnforceStats>>,
}

/// The lock, whatever another thread did while holding it.
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves data that is still whole (every update is
    // one insert or field write): go on with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whole seconds from `now` to `until`, at least 1.
fn secs_left(until: i64, now: i64) -> u64 {
    let us = until.saturating_sub(now).max(0) as u64;
    us.div_ceil(1_000_000).max(1)
}

impl Enforcer {
    /// The table as it must be now: created fresh with every live ban of the ledger. Run at
    /// startup (before any input is read) and when the table is found gone.
    pub fn restore_table(&self, now: i64) -> Result<(), String> {
        let table = nft::table_script(&self.allow, self.forward);
        let ledger = lock(&self.ledger);
        let bans: Vec<String> = ledger
            .live(now)
            .filter_map(|rec| rec.target().map(|t| (t, rec.until)))
            // Already dropped by the wider ban around it (and the kernel refuses the overlap).
            .filter(|(t, _)| !ledger.inside_wider(*t, now))
            .map(|(t, until)| nft::ban_lines(t, secs_left(until, now)))
            .collect();
        drop(ledger);
        // One transaction when the kernel takes every ban; else the table alone, then the bans
        // one by one, so one element it refuses cannot keep the table (and the rest) out.
        if self.nft.apply(&format!("{table}{}", bans.concat())).is_ok() {
            return Ok(());
        }
        self.nft.apply(&table)?;
        self.apply_parts(&bans);
        Ok(())
    }

    /// The thread's body.
    pub fn run(self, orders: Receiver<BanOrder>) {
        let mut next_reconcile = Instant::now() + self.reconcile;
        loop {
            let wait = next_reconcile.saturating_duration_since(Instant::now());
            match orders.recv_timeout(wait) {
                Ok(first) => {
                    let batch: Vec<BanOrder> =
                        std::iter::once(first).chain(orders.try_iter()).collect();
                    self.apply_orders(&batch);
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.reconcile(now_micros());
                    next_reconcile = Instant::now() + self.reconcile;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.save();
    }

    fn apply_orders(&self, batch: &[BanOrder]) {
        // The ledger first: a crash between the two leaves a ban the next start re-applies,
        // never a kernel ban the ledger (and `secpipe bans`) does not know.
        self.save();
        let now = now_micros();
        let parts: Vec<String> = batch
            .iter()
            .map(|o| nft::ban_lines(o.target, secs_left(o.until, now)))
            .collect();
        let applied = self.apply_parts(&parts);
        let done = now_micros();
        let mut s = lock(&self.stats);
        s.batches += 1;
        s.applied += applied;
        let latency = batch.iter().map(|o| done - o.decided).max().unwrap_or(0);
        s.max_latency = s.max_latency.max(latency);
    }

    /// Apply `parts` as one script; if nft refuses it (one element the kernel will not take,
    /// such as an address inside a banned IPv6 interval), apply each part alone so one bad
    /// element does not hold back the others. Failures are counted; what failed stays in the
    /// ledger and is tried again at each reconcile. Returns how many parts were applied.
    fn apply_parts(&self, parts: &[String]) -> u64 {
        if parts.is_empty() {
            return 0;
        }
        match self.nft.apply(&parts.concat()) {
            Ok(()) => return parts.len() as u64,
            Err(e) if parts.len() == 1 => {
                self.failed(&mut lock(&self.stats), e);
                return 0;
            }
            Err(_) => {}
        }
        let mut applied = 0;
        for part in parts {
            match self.nft.apply(part) {
                Ok(()) => applied += 1,
                Err(e) => self.failed(&mut lock(&self.stats), e),
            }
        }
        applied
    }

    fn failed(&self, s: &mut EnforceStats, e: String) {
        s.failures += 1;
        if s.failures == 1 {
            crate::report::warn(&format!("block: {e} (retried at each reconcile)"));
        }
        s.last_error = Some(e);
    }

    pub fn save(&self) {
        // Render under the lock, write outside it: the ordered stage never waits for a fsync.
        let text = lock(&self.ledger).render();
        let result = super::ledger::write_ledger(&self.state, &text);
        if let Err(e) = result {
            let mut s = lock(&self.stats);
            self.failed(&mut s, format!("ledger: {e}"));
        }
    }

    /// Compare the firewall with the ledger and repair it.
    pub fn reconcile(&self, now: i64) {
        // Unban requests first, so a lifted ban is not re-asserted below.
        let mut parts = self.take_unbans(now);
        let listed = self.nft.list_bans();
        let mut s = lock(&self.stats);
        s.reconciles += 1;
        match listed {
            Ok(None) => {
                // The fresh table holds only live bans: the unban lines are not needed.
                s.table_restored += 1;
                drop(s);
                if let Err(e) = self.restore_table(now) {
                    self.failed(&mut lock(&self.stats), e);
                }
                self.save();
                return;
            }
            Ok(Some(kernel)) => {
                // By target, built before the lock: with 65,536 bans a scan per live ban held
                // the ledger (and so the ordered stage) for seconds.
                let expires: std::collections::HashMap<BlockTarget, u64> =
                    kernel.iter().map(|k| (k.target, k.expires)).collect();
                let ledger = lock(&self.ledger);
                // Removals first: an element lifted early, or one inside a wider live ban,
                // whose interval the kernel would not let the wider one overlap.
                for k in &kernel {
                    if !ledger.is_live(k.target, now) || ledger.inside_wider(k.target, now) {
                        parts.push(nft::unban_lines(k.target));
                        s.removed += 1;
                    }
                }
                for rec in ledger.live(now) {
                    let Some(t) = rec.target() else { continue };
                    if ledger.inside_wider(t, now) {
                        continue;
                    }
                    let left = secs_left(rec.until, now);
                    let in_kernel = expires.get(&t).copied();
                    if in_kernel.is_none_or(|expires| expires.saturating_mul(2) < left) {
                        parts.push(nft::ban_lines(t, left));
                        s.reasserted += 1;
                    }
                }
            }
            Err(e) => self.failed(&mut s, e),
        }
        drop(s);
        if !parts.is_empty() {
            self.apply_parts(&parts);
            self.save();
        }
    }

    /// Honour `secpipe unban` requests: lift the bans in the ledger, send their audit records,
    /// delete the request files. Returns the `nft` lines that remove the elements.
    pub fn take_unbans(&self, now: i64) -> Vec<String> {
        let mut script = Vec::new();
        for (req, path) in pending_unbans(&self.state) {
            let at = req.at.min(now);
            if let Some(target) = super::ledger::parse_target(&req.address) {
                let lifted = lock(&self.ledger).unban(target, at);
                script.push(nft::unban_lines(target));
                if let Some(rec) = lifted {
                    let record = super::audit::unban(&rec, at, "secpipe unban");
                    let lost = self.audit.try_send(record).is_err();
                    let mut s = lock(&self.stats);
                    s.unbans += 1;
                    s.audit_lost += u64::from(lost);
                }
            }
            let _ = std::fs::remove_file(path);
        }
        script
    }
}
