//! `secpipe bans --state DIR [--json]` and `secpipe unban ADDR --state DIR`: thin over
//! [`crate::block::ledger`] (the ledger and unban requests) and [`crate::block::nft`].

use std::io::Write;
use std::process::ExitCode;

use crate::block::ledger::{self, Ledger, parse_target};
use crate::block::policy::Net;
use crate::event::{format_ts, now_micros};
use crate::flags::UsageError;
use crate::flags::lowargs::{BansArgs, UnbanArgs};

/// The live bans: the ledger less pending unban requests.
pub fn bans(args: &BansArgs) -> Result<ExitCode, UsageError> {
    if !args.state.is_dir() {
        return Err(UsageError::plain(format!(
            "--state {}: not a directory",
            args.state.display()
        )));
    }
    let now = now_micros();
    // Bounds only matter to a writer: read everything the file holds.
    let ledger = Ledger::load(&args.state, usize::MAX, i64::MAX / 4, now)
        .map_err(|e| UsageError::plain(format!("--state: {e}")))?;
    let pending: Vec<String> = ledger::pending_unbans(&args.state)
        .into_iter()
        .map(|(r, _)| r.address)
        .collect();
    let mut out = std::io::stdout().lock();
    let mut write = |line: String| match writeln!(out, "{line}") {
        Err(e) if super::is_broken_pipe(&e) => Ok(()),
        r => r,
    };
    for rec in ledger.live(now).filter(|r| !pending.contains(&r.address)) {
        let line = if args.json {
            serde_json::json!({
                "address": rec.address,
                "rule": rec.rule,
                "alert_id": rec.alert_id,
                "since": format_ts(rec.since),
                "until": format_ts(rec.until),
                "count": rec.count,
            })
            .to_string()
        } else {
            format!(
                "{}\t{}\talert {}\tsince {}\tuntil {}\tban {}",
                rec.address,
                rec.rule,
                rec.alert_id,
                format_ts(rec.since),
                format_ts(rec.until),
                rec.count
            )
        };
        write(line).map_err(|e| UsageError::plain(format!("stdout: {e}")))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Record the request; as root, also remove the kernel element now (a running secpipe would
/// at its next reconcile anyway).
pub fn unban(args: &UnbanArgs) -> Result<ExitCode, UsageError> {
    let Some(target) = parse_target(args.address.trim()) else {
        return Err(UsageError::with_help(
            format!("{}: not a banned address", args.address),
            "write it as `secpipe bans` shows it: 203.0.113.7, or 2001:db8:1::/64",
        ));
    };
    if !args.state.is_dir() {
        return Err(UsageError::plain(format!(
            "--state {}: not a directory",
            args.state.display()
        )));
    }
    let now = now_micros();
    let ledger = Ledger::load(&args.state, usize::MAX, i64::MAX / 4, now)
        .map_err(|e| UsageError::plain(format!("--state: {e}")))?;
    if !ledger.is_live(target, now) {
        let wider = ledger
            .live(now)
            .filter_map(|r| r.target())
            .find(|t| Net::of_target(*t).overlaps(Net::of_target(target)));
        match wider {
            Some(t) => eprintln!(
                "secpipe: {target} is not banned itself; it is inside the ban of {t}: unban that"
            ),
            None => eprintln!("secpipe: {target} is not banned (no live ban in the ledger)"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    ledger::request_unban(&args.state, target, now).map_err(UsageError::plain)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        let nft = crate::block::nft::Nft::default();
        match nft.apply(&crate::block::nft::unban_lines(target)) {
            Ok(()) => eprintln!("secpipe: unbanned {target} (removed from table inet secpipe)"),
            Err(e) => eprintln!(
                "secpipe: unban of {target} recorded; the firewall was not changed now ({e}): a \
                 running secpipe removes it at its next reconcile"
            ),
        }
    } else {
        eprintln!(
            "secpipe: unban of {target} recorded; not root, so the running secpipe removes it \
             at its next reconcile"
        );
    }
    Ok(ExitCode::SUCCESS)
}
