//! block: containment. Alerts whose rule has a `block` action (an address or /64, typed:
//! [`crate::action::BlockTarget`]) become bans in secpipe's own nftables table, safely.
//!
//! # Where things happen
//!
//! ```text
//! ordered stage ── alerts ──► Blocker::step ──► decide (policy, ledger, breaker; µs, in order)
//!                                  │  audit records (secpipe.ban …) join the alerts ─► sinks, archive
//!                                  ▼ bounded channel (full: counted, reconcile applies it later)
//!                             enforcer thread ──► nft -f - (one script per tick), ledger save,
//!                                                 reconcile every 30 s
//! ```
//!
//! - **Decisions** are made on the ordered stage, right after detection, in alert order: cheap
//!   (a few comparisons and a map lookup), deterministic, never waiting for `nft`
//!   ([`policy`], [`breaker`], [`ledger`]).
//! - **Applying** is the [`enforce`] thread's: it is the only one that runs `nft` ([`nft`]) and
//!   writes the ledger file.
//! - **Audit**: every ban and unban is an alert-shaped record ([`audit`]) written with the
//!   run's alerts, so it lands in the archive's chained alerts table, linked by the causing
//!   alert's id.
//!
//! # Modes
//!
//! `--block off` (the default) does nothing. `--block simulate` decides, records and reports
//! (the records say `would ban (simulate)`), keeps its ledger in memory and never runs `nft`:
//! roll out with it first. `--block enforce` applies, and needs `--state DIR` for the ledger.
//! `replay` never blocks.
//!
//! # Limits
//!
//! At most `max_per_minute` new bans a minute (then `secpipe.block_overflow`, once a minute);
//! at most `max_bans` ledger entries; each ban set holds at most [`nft::SET_SIZE`] elements.
//! All are counted when hit and shown in the summary.

pub mod audit;
pub mod breaker;
pub mod config;
pub mod enforce;
pub mod ledger;
pub mod nft;
pub mod policy;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::action::{Action, BlockTarget};
use crate::alert::Alert;
use crate::classify::IpBlock;
use breaker::{Admit, Breaker};
use config::{BlockMode, BlockSettings};
use enforce::{BanOrder, EnforceStats, Enforcer, lock};
use ledger::{BanRecord, Ledger};
use policy::{Net, OwnAddresses, Policy};

/// Bans waiting for the enforcer at most; past it they are applied by the next reconcile.
const ORDER_QUEUE: usize = 4096;
/// Audit records (unbans) waiting for the ordered stage at most.
const AUDIT_QUEUE: usize = 1024;

/// What is needed to start blocking for a run.
pub struct BlockConfig {
    pub settings: BlockSettings,
    /// `--state DIR`: the ledger (required to enforce).
    pub state: Option<PathBuf>,
    /// `--trusted-proxy` networks.
    pub proxies: Vec<IpBlock>,
    /// The run listens for UDP syslog (see [`Policy::check_unseen`]).
    pub udp_input: bool,
    pub nft: nft::Nft,
}

/// Counts of what the blocker decided.
#[derive(Debug, Default, Clone)]
pub struct BlockStats {
    pub bans: u64,
    pub already_banned: u64,
    pub refused: BTreeMap<&'static str, u64>,
    pub over_cap: u64,
    pub ledger_full: u64,
    pub queue_full: u64,
}

/// The ordered stage's half of blocking (see the module doc).
pub struct Blocker {
    settings: BlockSettings,
    policy: Policy,
    breaker: Breaker,
    ledger: Arc<Mutex<Ledger>>,
    orders: Option<Sender<BanOrder>>,
    audit: Receiver<Alert>,
    /// Kept so the audit channel stays open in simulate (no enforcer holds it).
    _audit_tx: Sender<Alert>,
    thread: Option<JoinHandle<()>>,
    enforce_stats: Arc<Mutex<EnforceStats>>,
    /// Held while enforcing: one secpipe per `--state` ledger and table (the kernel drops it
    /// if we die).
    _state_lock: Option<std::fs::File>,
    pub stats: BlockStats,
}

impl Blocker {
    /// Start blocking: in enforce, load the ledger, put the table in place with its live bans
    /// and start the enforcer. What can fail fails here, before any input is read.
    pub fn start(cfg: BlockConfig, now: i64) -> Result<Blocker, String> {
        let s = &cfg.settings;
        let mut policy = Policy::new(
            s.allow.clone(),
            cfg.proxies.clone(),
            s.block_private,
            s.trust_udp,
            OwnAddresses::host(now),
        );
        policy.udp_input = cfg.udp_input;
        let (audit_tx, audit) = crossbeam_channel::bounded(AUDIT_QUEUE);
        let mut blocker = Blocker {
            settings: cfg.settings.clone(),
            policy,
            breaker: Breaker::new(s.max_per_minute),
            ledger: Arc::new(Mutex::new(Ledger::new(s.max_bans, s.lookback))),
            orders: None,
            audit,
            _audit_tx: audit_tx.clone(),
            thread: None,
            enforce_stats: Arc::default(),
            _state_lock: None,
            stats: BlockStats::default(),
        };
        if s.mode != BlockMode::Enforce {
            return Ok(blocker);
        }
        let Some(state) = cfg.state else {
            return Err("--block enforce needs --state DIR (the ban ledger)".into());
        };
        std::fs::create_dir_all(&state).map_err(|e| format!("--state {}: {e}", state.display()))?;
        blocker._state_lock = Some(lock_state(&state)?);
        let ledger = Ledger::load(&state, s.max_bans, s.lookback, now)?;
        if ledger.skipped_lines > 0 {
            crate::report::warn(&format!(
                "block: {} lines of {} were not bans and were skipped",
                ledger.skipped_lines,
                state.join(ledger::LEDGER_FILE).display()
            ));
        }
        blocker.ledger = Arc::new(Mutex::new(ledger));
        let enforcer = Enforcer {
            nft: cfg.nft,
            ledger: blocker.ledger.clone(),
            state,
            allow: s.allow.iter().map(Net::of_block).collect(),
            forward: s.forward,
            reconcile: std::time::Duration::from_micros(s.reconcile.max(1) as u64),
            audit: audit_tx,
            stats: blocker.enforce_stats.clone(),
        };
        // Unban requests left while no secpipe ran are honoured first, so the fresh table
        // holds only what is live.
        let _ = enforcer.take_unbans(now);
        enforcer
            .restore_table(now)
            .map_err(|e| format!("--block enforce: {e}"))?;
        enforcer.save();
        let (tx, rx) = crossbeam_channel::bounded(ORDER_QUEUE);
        let thread = std::thread::Builder::new()
            .name("secpipe-block".into())
            .spawn(move || enforcer.run(rx))
            .map_err(|e| format!("block thread: {e}"))?;
        blocker.orders = Some(tx);
        blocker.thread = Some(thread);
        Ok(blocker)
    }

    /// A blocker that decides with a fixed set of own addresses and never enforces (tests).
    pub fn simulated(settings: BlockSettings, own: Vec<std::net::IpAddr>) -> Blocker {
        let (audit_tx, audit) = crossbeam_channel::bounded(AUDIT_QUEUE);
        Blocker {
            policy: Policy::new(
                settings.allow.clone(),
                Vec::new(),
                settings.block_private,
                settings.trust_udp,
                OwnAddresses::fixed(own),
            ),
            breaker: Breaker::new(settings.max_per_minute),
            ledger: Arc::new(Mutex::new(Ledger::new(
                settings.max_bans,
                settings.lookback,
            ))),
            settings,
            orders: None,
            audit,
            _audit_tx: audit_tx,
            thread: None,
            enforce_stats: Arc::default(),
            _state_lock: None,
            stats: BlockStats::default(),
        }
    }

    /// After detection: add the enforcer's audit records, and decide on every block action of
    /// `alerts`, appending a record for each ban (and an overflow alert when the breaker trips).
    pub fn step(&mut self, alerts: &mut Vec<Alert>, now: i64) {
        alerts.extend(self.audit.try_iter());
        let mut records = Vec::new();
        for cause in alerts.iter() {
            // Our own records carry the applied block: never a cause of another ban.
            if cause.rule.starts_with("secpipe.") {
                continue;
            }
            for action in &cause.action {
                if let Action::Block { target, duration } = action
                    && let Some(record) = self.decide(*target, *duration, cause, now)
                {
                    records.push(record);
                }
            }
        }
        alerts.extend(records);
    }

    /// One block action: the record to write, if any (a ban, or the minute's overflow alert).
    fn decide(
        &mut self,
        target: BlockTarget,
        duration: Option<i64>,
        cause: &Alert,
        now: i64,
    ) -> Option<Alert> {
        let checked = self
            .policy
            .check(target, &cause.evidence, now)
            .and_then(|()| self.policy.check_unseen(cause.count, &cause.evidence));
        if let Err(why) = checked {
            *self.stats.refused.entry(why.as_str()).or_default() += 1;
            return None;
        }
        let mut ledger = lock(&self.ledger);
        let count = ledger.next_count(target, now);
        let length = self.length(duration, count);
        // An attack that ended longer ago than its ban would last (last week's log read now)
        // is history, not a threat: acting on it would ban addresses long since reassigned.
        if cause.last_seen.saturating_add(length) <= now {
            *self.stats.refused.entry("stale").or_default() += 1;
            return None;
        }
        if ledger.is_covered(target, now) {
            self.stats.already_banned += 1;
            return None;
        }
        if let Admit::No { first, minute } = self.breaker.admit(now) {
            self.stats.over_cap += 1;
            return first
                .then(|| audit::overflow(self.settings.max_per_minute, minute, now, cause));
        }
        let rec = BanRecord {
            address: target.to_string(),
            rule: cause.rule.clone(),
            alert_id: cause.id.clone(),
            since: now,
            until: now.saturating_add(length),
            count,
            unbanned: None,
        };
        if ledger.record(rec.clone(), now).is_err() {
            self.stats.ledger_full += 1;
            return None;
        }
        drop(ledger);
        self.stats.bans += 1;
        if let Some(tx) = &self.orders {
            let order = BanOrder {
                target,
                until: rec.until,
                decided: now,
            };
            if let Err(TrySendError::Full(_)) = tx.try_send(order) {
                // In the ledger already: the next reconcile puts it in the kernel.
                self.stats.queue_full += 1;
            }
        }
        Some(audit::ban(target, &rec, cause, self.settings.mode))
    }

    /// The rule's time (or the default) × 2^(count-1) with escalation, capped at `max_time`.
    fn length(&self, duration: Option<i64>, count: u32) -> i64 {
        let base = duration
            .filter(|d| *d > 0)
            .unwrap_or(self.settings.default_time);
        let doublings = if self.settings.escalation {
            count.saturating_sub(1).min(20)
        } else {
            0
        };
        base.saturating_mul(1i64 << doublings)
            .min(self.settings.max_time)
    }

    /// End of the run: stop the enforcer (it applies what is queued and saves the ledger),
    /// collect its last audit records into `alerts`, and say what happened on stderr.
    pub fn finish(mut self, alerts: &mut Vec<Alert>) {
        self.orders = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        alerts.extend(self.audit.try_iter());
        crate::report::note(&self.render());
    }

    /// One line for the summary.
    pub fn render(&self) -> String {
        let s = &self.stats;
        let mut line = format!(
            "block ({}): {} bans, {} already banned",
            self.settings.mode.as_str(),
            s.bans,
            s.already_banned
        );
        if !s.refused.is_empty() {
            let parts: Vec<String> = s.refused.iter().map(|(k, v)| format!("{k} {v}")).collect();
            line.push_str(&format!(", refused: {}", parts.join(", ")));
        }
        for (n, what) in [
            (
                s.over_cap,
                "over the per-minute cap (secpipe.block_overflow)",
            ),
            (s.ledger_full, "refused at a full ledger"),
            (s.queue_full, "left to reconcile at a full queue"),
        ] {
            if n > 0 {
                line.push_str(&format!(", {n} {what}"));
            }
        }
        if self.settings.mode == BlockMode::Enforce {
            let e = lock(&self.enforce_stats);
            line.push_str(&format!(
                "; nft: {} applied in {} batches, {} reconciles, table restored {}, \
                 re-asserted {}, removed {}, unbans {} ({} records lost at a full queue), \
                 failures {}, max latency {} µs",
                e.applied,
                e.batches,
                e.reconciles,
                e.table_restored,
                e.reasserted,
                e.removed,
                e.unbans,
                e.audit_lost,
                e.failures,
                e.max_latency
            ));
            if let Some(err) = &e.last_error {
                line.push_str(&format!(" (last: {err})"));
            }
        }
        line
    }
}

/// Take `STATE/block.lock`, or fail if another secpipe enforces with this state: each would
/// replace the table (dropping the other's bans) and overwrite the other's ledger.
fn lock_state(state: &std::path::Path) -> Result<std::fs::File, String> {
    let path = state.join("block.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "--block enforce: another secpipe is enforcing with --state {}",
            state.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests;
