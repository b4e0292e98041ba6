//! Bans and unbans as audit records: alert-shaped, so they go out with the run's alerts and
//! into the archive's chained `alerts` table without a schema change.
//!
//! - `secpipe.ban`: key `address` = the banned network, `count` = which ban of it this is,
//!   window = the ban (since → until), action = the block as applied plus notes `cause` (the
//!   causing alert's id), `cause_rule` and `mode` (`simulate` or `enforce`); evidence is the
//!   causing alert's.
//! - `secpipe.unban`: the lifted ban, with the time it was lifted and why.
//! - `secpipe.block_overflow`: the circuit breaker tripped; once per minute.

use crate::action::{Action, BlockTarget};
use crate::alert::{Alert, Severity};

use super::config::BlockMode;
use super::ledger::BanRecord;

fn base(rule: &str, severity: Severity, key: &str, start: i64, end: i64) -> Alert {
    let mut a = Alert::about_secpipe(
        rule,
        severity,
        ("address", key.into()),
        0,
        start,
        String::new(),
    );
    a.threshold = 0;
    a.window_end = end;
    a
}

fn note(name: &str, value: impl Into<String>) -> Action {
    Action::Note {
        name: name.into(),
        value: value.into(),
    }
}

/// The record of a ban decided because of `cause`.
pub fn ban(target: BlockTarget, rec: &BanRecord, cause: &Alert, mode: BlockMode) -> Alert {
    let mut a = base(
        "secpipe.ban",
        Severity::Low,
        &rec.address,
        rec.since,
        rec.until,
    );
    a.count = u64::from(rec.count);
    let length = rec.until.saturating_sub(rec.since);
    let verb = match mode {
        BlockMode::Enforce => "banned",
        _ => "would ban (simulate)",
    };
    a.summary = format!(
        "{verb} {} for {} (ban {} of it) after alert {} ({})",
        rec.address,
        crate::duration::format(length),
        rec.count,
        cause.id,
        cause.rule
    );
    a.evidence = cause.evidence.clone();
    a.action = vec![
        Action::Block {
            target,
            duration: Some(length),
        },
        note("cause", cause.id.clone()),
        note("cause_rule", cause.rule.clone()),
        note("mode", mode.as_str()),
    ];
    a
}

/// The record of a ban lifted early at `at` (µs).
pub fn unban(rec: &BanRecord, at: i64, why: &str) -> Alert {
    let mut a = base("secpipe.unban", Severity::Low, &rec.address, at, rec.until);
    a.count = u64::from(rec.count);
    a.summary = format!(
        "unbanned {} ({why}); it was banned after alert {}",
        rec.address, rec.alert_id
    );
    a.action = vec![note("cause", rec.alert_id.clone()), note("reason", why)];
    a
}

/// The circuit breaker refused a ban in the minute starting at `minute` (µs).
pub fn overflow(max_per_minute: u32, minute: i64, now: i64, cause: &Alert) -> Alert {
    let mut a = base(
        "secpipe.block_overflow",
        Severity::High,
        "max_per_minute",
        minute,
        minute + super::breaker::MINUTE,
    );
    a.key_field = "block".into();
    a.threshold = u64::from(max_per_minute);
    a.count = u64::from(max_per_minute) + 1;
    a.first_seen = now;
    a.last_seen = now;
    a.summary = format!(
        "more than {max_per_minute} bans in a minute: blocking paused until the minute ends, \
         first refused after alert {} ({}); check for a flood or forged lines",
        cause.id, cause.rule
    );
    a.evidence = cause.evidence.clone();
    a
}
