//! The ban ledger: every ban secpipe made that is live or recent, kept in `--state DIR` as
//! `bans.jsonl` (one ban a line, the whole file rewritten by rename so a crash leaves the old
//! or the new, never half). It is what a restart re-applies (live bans only: an expired one
//! stays expired), what escalation counts (earlier bans within the lookback), what `secpipe
//! bans` lists and what the reconcile loop compares the firewall with.
//!
//! One writer: the running secpipe. `secpipe unban` does not edit the ledger; it drops a
//! request file into `DIR/unban/` (written then renamed, so it is whole), which the running
//! secpipe takes at its next reconcile (or the next one to start, at startup), and which
//! `secpipe bans` already counts. So two processes never rewrite one file.
//!
//! Bounded: at most `max_bans` entries; expired ones past the lookback are dropped first, and a
//! ban that would need the room of a live one is refused and counted.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::action::BlockTarget;

/// The ledger's file in `--state DIR`.
pub const LEDGER_FILE: &str = "bans.jsonl";
/// Where `secpipe unban` leaves requests.
pub const UNBAN_DIR: &str = "unban";

/// One ban.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BanRecord {
    /// `203.0.113.7`, or an IPv6 network as `2001:db8:1::/64`.
    pub address: String,
    /// The rule whose alert caused it.
    pub rule: String,
    /// The causing alert's id.
    pub alert_id: String,
    /// µs UTC (wall clock when decided).
    pub since: i64,
    /// µs UTC.
    pub until: i64,
    /// 1 for a first ban, n for the n-th within the lookback (escalation).
    pub count: u32,
    /// µs UTC when lifted early (`secpipe unban`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unbanned: Option<i64>,
}

impl BanRecord {
    pub fn is_live(&self, now: i64) -> bool {
        self.unbanned.is_none() && self.until > now
    }

    /// The address as a block target again (it was written from one).
    pub fn target(&self) -> Option<BlockTarget> {
        parse_target(&self.address)
    }
}

/// `203.0.113.7`, `2001:db8::1` or `2001:db8:1::/64` as a [`BlockTarget`] (IPv4 is always a
/// /32). `None` for anything else, including text with host bits set past the prefix.
pub fn parse_target(text: &str) -> Option<BlockTarget> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, p.parse::<u8>().ok()?),
        None => (text, 128),
    };
    let addr: std::net::IpAddr = addr.parse().ok()?;
    let target = BlockTarget::new(addr, prefix)?;
    if addr.is_ipv4() && prefix != 128 && prefix != 32 {
        return None;
    }
    (target.network() == crate::event::canonical_ip(addr) || addr.is_ipv4()).then_some(target)
}

/// Why a ban could not be written to the ledger.
#[derive(Debug, PartialEq, Eq)]
pub struct LedgerFull;

/// The bans, by address text (sorted, so the file and `secpipe bans` are in a fixed order).
#[derive(Debug, Default)]
pub struct Ledger {
    entries: BTreeMap<String, BanRecord>,
    max_bans: usize,
    lookback: i64,
    /// Lines of the file that did not read as a ban (skipped, reported once at load).
    pub skipped_lines: u64,
    /// The IPv6 prefix lengths bans have used, to find a wider live ban that covers a target.
    v6_prefixes: std::collections::BTreeSet<u8>,
}

impl Ledger {
    pub fn new(max_bans: usize, lookback: i64) -> Ledger {
        Ledger {
            entries: BTreeMap::new(),
            max_bans: max_bans.max(1),
            lookback,
            skipped_lines: 0,
            v6_prefixes: Default::default(),
        }
    }

    /// The ledger in `dir` (empty when there is none yet), with what is past the lookback
    /// dropped and pending unban requests applied. Returns the requests it applied.
    pub fn load(dir: &Path, max_bans: usize, lookback: i64, now: i64) -> Result<Ledger, String> {
        let mut ledger = Ledger::new(max_bans, lookback);
        let path = dir.join(LEDGER_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<BanRecord>(line) {
                Ok(rec) if let Some(target) = rec.target() => {
                    ledger.note_prefix(target);
                    ledger.entries.insert(rec.address.clone(), rec);
                }
                _ => ledger.skipped_lines += 1,
            }
        }
        ledger.prune(now);
        Ok(ledger)
    }

    /// Write the whole ledger to `dir` (temporary file, fsync, rename).
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        write_ledger(dir, &self.render())
    }

    /// The file's text: one ban a line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for rec in self.entries.values() {
            // A record of strings and numbers always serializes.
            if let Ok(line) = serde_json::to_string(rec) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }

    pub fn get(&self, target: BlockTarget) -> Option<&BanRecord> {
        self.entries.get(&target.to_string())
    }

    pub fn is_live(&self, target: BlockTarget, now: i64) -> bool {
        self.get(target).is_some_and(|r| r.is_live(now))
    }

    /// Whether a live ban holds `target` already: the same network, or (IPv6) a wider one
    /// around it. The kernel refuses a ban inside a banned interval, and it would add nothing.
    pub fn is_covered(&self, target: BlockTarget, now: i64) -> bool {
        self.is_live(target, now) || self.inside_wider(target, now)
    }

    /// Whether a live IPv6 ban of a shorter prefix holds `target` (its kernel element would
    /// overlap that interval, which nft refuses).
    pub fn inside_wider(&self, target: BlockTarget, now: i64) -> bool {
        target.network().is_ipv6()
            && self
                .v6_prefixes
                .range(..target.prefix())
                .filter_map(|q| BlockTarget::new(target.network(), *q))
                .any(|wider| self.is_live(wider, now))
    }

    fn note_prefix(&mut self, target: BlockTarget) {
        if target.network().is_ipv6() {
            self.v6_prefixes.insert(target.prefix());
        }
    }

    /// Which ban of this address a new one would be: 1, or one more than the last when that
    /// ended within the lookback (fail2ban's `bantime.increment` counts the same way).
    pub fn next_count(&self, target: BlockTarget, now: i64) -> u32 {
        match self.get(target) {
            Some(r) if r.until.saturating_add(self.lookback) > now => r.count.saturating_add(1),
            _ => 1,
        }
    }

    /// Record a ban (replacing the address's earlier one).
    pub fn record(&mut self, rec: BanRecord, now: i64) -> Result<(), LedgerFull> {
        if !self.entries.contains_key(&rec.address) && self.entries.len() >= self.max_bans {
            self.prune(now);
            if self.entries.len() >= self.max_bans {
                // Forget the ended ban that ended first; never a live one.
                let oldest = self
                    .entries
                    .values()
                    .filter(|r| !r.is_live(now))
                    .min_by_key(|r| r.until)
                    .map(|r| r.address.clone());
                match oldest {
                    Some(a) => {
                        self.entries.remove(&a);
                    }
                    None => return Err(LedgerFull),
                }
            }
        }
        if let Some(target) = rec.target() {
            self.note_prefix(target);
        }
        self.entries.insert(rec.address.clone(), rec);
        Ok(())
    }

    /// Lift a live ban early; returns the record when there was one to lift.
    pub fn unban(&mut self, target: BlockTarget, at: i64) -> Option<BanRecord> {
        let rec = self.entries.get_mut(&target.to_string())?;
        if !rec.is_live(at) {
            return None;
        }
        rec.unbanned = Some(at);
        Some(rec.clone())
    }

    /// Live bans, in address order.
    pub fn live(&self, now: i64) -> impl Iterator<Item = &BanRecord> {
        self.entries.values().filter(move |r| r.is_live(now))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drop bans that ended longer ago than the lookback: they no longer escalate anything.
    fn prune(&mut self, now: i64) {
        let lookback = self.lookback;
        self.entries.retain(|_, r| {
            let ended = r.unbanned.unwrap_or(r.until).min(r.until);
            ended.saturating_add(lookback) > now
        });
    }
}

/// Write a rendered ledger to `dir`: a temporary file, fsync, rename over the old one, so a
/// crash leaves one whole file or the other.
pub fn write_ledger(dir: &Path, text: &str) -> Result<(), String> {
    let path = dir.join(LEDGER_FILE);
    let tmp = dir.join(format!("{LEDGER_FILE}.tmp"));
    let at = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let mut file = std::fs::File::create(&tmp).map_err(|e| at(&tmp, e))?;
    file.write_all(text.as_bytes()).map_err(|e| at(&tmp, e))?;
    file.sync_all().map_err(|e| at(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| at(&path, e))
}

/// An unban request left by `secpipe unban`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UnbanRequest {
    pub address: String,
    /// µs UTC when asked.
    pub at: i64,
}

/// Leave an unban request for the running (or next) secpipe: written whole, then renamed in.
pub fn request_unban(dir: &Path, target: BlockTarget, at: i64) -> Result<PathBuf, String> {
    let requests = dir.join(UNBAN_DIR);
    std::fs::create_dir_all(&requests).map_err(|e| format!("{}: {e}", requests.display()))?;
    let name = format!("{at:020}-{}.json", std::process::id());
    let tmp = requests.join(format!(".{name}.tmp"));
    let path = requests.join(name);
    let body = serde_json::json!({"address": target.to_string(), "at": at}).to_string();
    std::fs::write(&tmp, body).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// The pending unban requests in `dir`, oldest first, with their files.
pub fn pending_unbans(dir: &Path) -> Vec<(UnbanRequest, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir.join(UNBAN_DIR)) else {
        return Vec::new();
    };
    let mut out: Vec<(UnbanRequest, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let req: UnbanRequest = serde_json::from_str(&text).ok()?;
            parse_target(&req.address)?;
            Some((req, p))
        })
        .collect();
    out.sort_by(|a, b| a.0.at.cmp(&b.0.at).then_with(|| a.1.cmp(&b.1)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    fn t(text: &str) -> BlockTarget {
        parse_target(text).expect("target")
    }
    fn ban(address: &str, since: i64, until: i64, count: u32) -> BanRecord {
        BanRecord {
            address: address.into(),
            rule: "auth.bruteforce".into(),
            alert_id: "a1".into(),
            since,
            until,
            count,
            unbanned: None,
        }
    }

    #[test]
    fn targets_read_back_exactly_as_written_and_nothing_else_reads() {
        for text in ["203.0.113.7", "2001:db8:1::/64", "2001:db8::1"] {
            assert_eq!(t(text).to_string(), text);
        }
        for bad in [
            "0.0.0.0",
            "::/0",
            "2001:db8::1/64",
            "203.0.113.7/8",
            "x",
            "1.2.3.4; rm",
        ] {
            assert_eq!(parse_target(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_ledger_survives_a_restart_with_live_bans_and_without_old_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = 1_000 * MIN;
        let mut l = Ledger::new(10, 24 * 60 * MIN);
        l.record(ban("203.0.113.7", now, now + 15 * MIN, 1), now)
            .expect("room");
        l.record(
            ban("2001:db8:1::/64", now - 30 * MIN, now - 15 * MIN, 2),
            now,
        )
        .expect("room");
        l.record(
            ban(
                "198.51.100.1",
                now - 3 * 24 * 60 * MIN,
                now - 2 * 24 * 60 * MIN,
                1,
            ),
            now,
        )
        .expect("room");
        l.save(dir.path()).expect("save");
        let back = Ledger::load(dir.path(), 10, 24 * 60 * MIN, now).expect("load");
        let live: Vec<&str> = back.live(now).map(|r| r.address.as_str()).collect();
        assert_eq!(live, ["203.0.113.7"]);
        // The ended /64 is kept for escalation; the one past the lookback is gone.
        assert_eq!(back.len(), 2);
        assert_eq!(back.next_count(t("2001:db8:1::/64"), now), 3);
        assert_eq!(back.next_count(t("198.51.100.1"), now), 1);
    }

    #[test]
    fn a_corrupt_line_is_skipped_and_counted_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = serde_json::to_string(&ban("203.0.113.7", 0, 10 * MIN, 1)).expect("json");
        let forged = serde_json::to_string(&ban("0.0.0.0/0", 0, 10 * MIN, 1)).expect("json");
        std::fs::write(
            dir.path().join(LEDGER_FILE),
            format!("{good}\n{{half\n{forged}\n"),
        )
        .expect("write");
        let l = Ledger::load(dir.path(), 10, MIN, 0).expect("load");
        assert_eq!((l.len(), l.skipped_lines), (1, 2));
    }

    #[test]
    fn a_wider_live_ipv6_ban_covers_the_addresses_inside_it() {
        let mut l = Ledger::new(10, MIN);
        l.record(ban("2001:db8:1::/64", 0, 10 * MIN, 1), 0)
            .expect("room");
        assert!(l.is_covered(t("2001:db8:1::5"), MIN));
        assert!(l.is_covered(t("2001:db8:1::/64"), MIN));
        assert!(!l.is_covered(t("2001:db8:2::5"), MIN));
        assert!(!l.is_covered(t("2001:db8:1::5"), 11 * MIN));
        assert!(!l.is_covered(t("203.0.113.7"), MIN));
        assert!(l.inside_wider(t("2001:db8:1::5"), MIN));
        assert!(!l.inside_wider(t("2001:db8:1::/64"), MIN));
    }

    #[test]
    fn unban_lifts_a_live_ban_once_and_keeps_it_for_escalation() {
        let mut l = Ledger::new(10, 60 * MIN);
        l.record(ban("203.0.113.7", 0, 15 * MIN, 1), 0)
            .expect("room");
        assert!(l.unban(t("203.0.113.7"), MIN).is_some());
        assert!(!l.is_live(t("203.0.113.7"), MIN));
        assert!(l.unban(t("203.0.113.7"), 2 * MIN).is_none());
        assert_eq!(l.next_count(t("203.0.113.7"), 2 * MIN), 2);
    }

    #[test]
    fn the_ledger_is_bounded_and_never_forgets_a_live_ban_for_room() {
        let mut l = Ledger::new(2, MIN);
        l.record(ban("203.0.113.1", 0, 10 * MIN, 1), 0)
            .expect("room");
        l.record(ban("203.0.113.2", 0, 5 * MIN, 1), 0)
            .expect("room");
        assert_eq!(
            l.record(ban("203.0.113.3", 0, 10 * MIN, 1), 0),
            Err(LedgerFull)
        );
        // Once one has ended, it makes room.
        l.record(ban("203.0.113.3", 6 * MIN, 20 * MIN, 1), 6 * MIN)
            .expect("room");
        assert_eq!(l.len(), 2);
        assert!(l.is_live(t("203.0.113.1"), 6 * MIN));
    }

    #[test]
    fn unban_requests_are_whole_files_read_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        request_unban(dir.path(), t("2001:db8:1::/64"), 20).expect("request");
        request_unban(dir.path(), t("203.0.113.7"), 10).expect("request");
        std::fs::write(dir.path().join(UNBAN_DIR).join("junk.json"), "{").expect("write");
        let pending: Vec<String> = pending_unbans(dir.path())
            .into_iter()
            .map(|(r, _)| r.address)
            .collect();
        assert_eq!(pending, ["203.0.113.7", "2001:db8:1::/64"]);
    }
}
