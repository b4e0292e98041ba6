//! `secpipe replay`: detection again over raw log files (plain, gzip, zstd) or an archive,
//! with the same engine as the live run, so the same lines give the same alerts.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::flags::UsageError;
use crate::flags::hiargs::{DetectConfig, LiveConfig, ParseConfig};
use crate::flags::lowargs::ReplayArgs;
use crate::source::InputSpec;
use crate::source::archive as archive_source;

use super::run::{Unverified, drive};
use crate::archive::store::LocalStore;
use crate::archive::verify::{ProblemClass, VerifyOptions, VerifyReport, verify_store};
use crate::pipeline::TimeRange;
use crate::source::archive::EventFile;

pub fn replay(args: &ReplayArgs) -> Result<ExitCode, UsageError> {
    let parse = ParseConfig::from_args(&args.parse)?;
    let detect = DetectConfig::from_args(&args.detect, &parse.settings.tz)?;
    let range = TimeRange {
        from: args
            .from
            .as_deref()
            .map(|t| parse_time("--from", t))
            .transpose()?,
        to: args
            .to
            .as_deref()
            .map(|t| parse_time("--to", t))
            .transpose()?,
    };
    let (archives, files): (Vec<&Path>, Vec<&Path>) = args
        .paths
        .iter()
        .map(|p| p.as_path())
        .partition(|p| is_archive(p));
    if !archives.is_empty() {
        if !files.is_empty() {
            return Err(UsageError::with_help(
                "replay takes archive directories or log files, not both in one run",
                "replay them in two runs",
            ));
        }
        let verify_opts = VerifyOptions {
            pubkey: args.pubkey.clone(),
            expect_head: None,
        };
        return replay_archives(&archives, parse, detect, range, args.force, &verify_opts);
    }
    if args.pubkey.is_some() {
        return Err(UsageError::with_help(
            "--pubkey checks an archive's signature; these are raw log files",
            "name an archive directory made with --archive --key, or drop --pubkey",
        ));
    }
    for f in &files {
        // Before anything runs: a mistyped path is a usage error, not an empty replay.
        if let Err(e) = std::fs::metadata(f) {
            return Err(UsageError::with_help(
                format!("{}: {e}", f.display()),
                "name an archive directory or log files (plain, .gz or .zst)",
            ));
        }
        if f.is_dir() {
            return Err(UsageError::with_help(
                format!(
                    "{}: a directory, but not a secpipe archive (no audit/manifests.jsonl)",
                    f.display()
                ),
                "name log files, or an archive made with --archive",
            ));
        }
    }
    let inputs: Vec<InputSpec> = files
        .iter()
        .map(|f| InputSpec::File(f.to_path_buf()))
        .collect();
    let max_line = parse.max_line;
    drive(
        parse,
        detect,
        None,
        range,
        Unverified::Nothing,
        &LiveConfig::default(),
        |live, tx| Ok((live.spawn_sources(inputs, max_line, tx)?, None)),
    )
}

/// Replay archives, in the order given, each in `seq` order. Evidence first: each archive is
/// verified before any of its rows is trusted; a tampered archive stops the replay with
/// verify's report (exit 1) unless `--force`, which goes on and marks every alert that rests on
/// an unverified row.
fn replay_archives(
    dirs: &[&Path],
    parse: ParseConfig,
    detect: DetectConfig,
    range: TimeRange,
    force: bool,
    verify_opts: &VerifyOptions,
) -> Result<ExitCode, UsageError> {
    let mut files = Vec::new();
    let mut unverified = Unverified::Nothing;
    let mut tampered = false;
    for dir in dirs {
        let store = Arc::new(LocalStore::new(dir));
        let dir_files = archive_source::event_files(store.clone()).map_err(UsageError::plain)?;
        let report = verify_store(&*store, verify_opts);
        match report.exit_code() {
            0 => {}
            // Nothing altered, but rows no valid signature covers: replay them, and mark what
            // rests on them, as for a forced replay (without the exit 1: no tampering found).
            3 => {
                eprintln!("{report}");
                eprintln!(
                    "secpipe: {}: replaying rows that no signature covers; alerts resting on them \
                     are marked unverified",
                    dir.display()
                );
                unverified = merge_unverified(unverified, unsigned_rows(&report));
            }
            1 if force => {
                tampered = true;
                eprintln!("{report}");
                eprintln!(
                    "secpipe: --force: replaying {}; alerts resting on unverified rows are marked",
                    dir.display()
                );
                unverified =
                    merge_unverified(unverified, untrusted_rows(&dir_files.files, &report));
            }
            code => {
                eprintln!("{report}");
                eprintln!(
                    "secpipe: {} did not verify; replay stopped (--force goes on, marking what rests on unverified rows)",
                    dir.display()
                );
                return Ok(ExitCode::from(u8::try_from(code).unwrap_or(2)));
            }
        }
        files.push(dir_files);
    }
    let code = drive(
        parse,
        detect,
        None,
        range,
        unverified,
        &LiveConfig::default(),
        |live, tx| {
            let progress = archive_source::progress_bar(&files);
            let (handle, report) = archive_source::spawn_archive_reader(
                files,
                range,
                tx,
                live.shutdown().clone(),
                progress,
            );
            Ok((vec![handle], Some(report)))
        },
    )?;
    // Exit 1 says "tampering found", even when --force replayed it anyway.
    Ok(if tampered { ExitCode::from(1) } else { code })
}

/// The rows a verify report does not vouch for: the files it names, or everything when the
/// chain itself (manifests, checkpoint, signature) is in doubt.
fn untrusted_rows(files: &[EventFile], report: &VerifyReport) -> Unverified {
    let mut rows = Vec::new();
    for problem in &report.problems {
        let in_chain = files.iter().find(|f| f.path == problem.file);
        match (problem.class, in_chain) {
            // A file no manifest names is not replayed at all.
            (ProblemClass::ExtraFile, _) => {}
            (_, Some(f)) => rows.push(f.first_seq..f.first_seq + f.rows),
            (_, None) => return Unverified::Everything,
        }
    }
    Unverified::Rows(rows)
}

/// The event rows of the files no valid signature covers.
fn unsigned_rows(report: &VerifyReport) -> Unverified {
    Unverified::Rows(
        report
            .unsigned
            .iter()
            .flat_map(|span| &span.files)
            .filter(|file| file.table == "events")
            .map(|file| file.first_seq..file.first_seq + file.rows)
            .collect(),
    )
}

fn merge_unverified(a: Unverified, b: Unverified) -> Unverified {
    match (a, b) {
        (Unverified::Everything, _) | (_, Unverified::Everything) => Unverified::Everything,
        (Unverified::Nothing, x) | (x, Unverified::Nothing) => x,
        (Unverified::Rows(mut x), Unverified::Rows(y)) => {
            x.extend(y);
            Unverified::Rows(x)
        }
    }
}

/// An archive directory is one with an audit chain.
pub fn is_archive(path: &Path) -> bool {
    path.join("audit").join("manifests.jsonl").is_file()
}

/// `--from`/`--to`: RFC 3339 (`2026-01-05T00:00:00Z`), or a plain date `2026-01-05` meaning
/// midnight UTC. Returns µs UTC.
///
/// ```
/// use secpipe::commands::replay::parse_time;
/// assert_eq!(parse_time("--from", "1970-01-02").unwrap(), 86_400_000_000);
/// assert_eq!(parse_time("--from", "1970-01-01T00:00:01+00:00").unwrap(), 1_000_000);
/// assert!(parse_time("--from", "yesterday").is_err());
/// ```
pub fn parse_time(flag: &str, text: &str) -> Result<i64, UsageError> {
    let t = text.trim();
    let parsed = t.parse::<jiff::Timestamp>().or_else(|_| {
        t.parse::<jiff::civil::Date>()
            .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC))
            .map(|z| z.timestamp())
    });
    match parsed {
        Ok(ts) => Ok(ts.as_microsecond()),
        Err(e) => Err(UsageError::with_help(
            format!("{flag} {text}: not a time ({e})"),
            "write RFC 3339 such as 2026-01-05T00:00:00Z, or a date such as 2026-01-05 (UTC)",
        )),
    }
}
