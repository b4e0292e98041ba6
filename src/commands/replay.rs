//! `secpipe replay`: detection again over raw log files (plain, gzip, zstd) or an archive,
//! with the same engine as the live run, so the same lines give the same alerts.

use std::path::Path;
use std::process::ExitCode;

use crate::archive::store::ArchiveLocation;
use crate::archive::verify::{VerifyOptions, verify_store};
use crate::event::TimeRange;
use crate::flags::UsageError;
use crate::flags::hiargs::{DetectConfig, ParseConfig, parse_optional_time};
use crate::flags::lowargs::ReplayArgs;
use crate::pipeline::unverified::Unverified;
use crate::source::archive::{self as archive_source, ArchiveReader};
use crate::source::{BatchInputs, InputSpec};

pub fn replay(args: &ReplayArgs) -> Result<ExitCode, UsageError> {
    let parse = ParseConfig::from_args(&args.parse)?;
    let detect = DetectConfig::from_args(&args.detect, &parse.settings.tz)?;
    if !args.deliver && detect.sinks.iter().any(|s| s.to.reaches_others()) {
        return Err(UsageError::with_help(
            "replay does not send alerts to network outputs unless asked: old alerts would page people",
            "add --deliver to send them, or write them to a file or stdout",
        ));
    }
    let range = TimeRange {
        from: parse_optional_time("--from", args.from.as_deref())?,
        to: parse_optional_time("--to", args.to.as_deref())?,
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
    let mut run = detect.assemble(parse, vec![Box::new(BatchInputs::new(inputs))], None, None)?;
    run.range = range;
    super::finish_detection_run(run)
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
        let store = super::archive_to_read(dir)?;
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
                unverified = unverified.merge(Unverified::unsigned(&report));
            }
            1 if force => {
                tampered = true;
                eprintln!("{report}");
                eprintln!(
                    "secpipe: --force: replaying {}; alerts resting on unverified rows are marked",
                    dir.display()
                );
                unverified = unverified.merge(Unverified::untrusted(&dir_files.files, &report));
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
    let reader = ArchiveReader::new(files, range);
    let mut run = detect.assemble(parse, vec![Box::new(reader)], None, None)?;
    run.range = range;
    run.unverified = unverified;
    let code = super::finish_detection_run(run)?;
    // Exit 1 says "tampering found", even when --force replayed it anyway.
    Ok(if tampered { ExitCode::from(1) } else { code })
}

/// An archive directory is one with an audit chain; a URL (`s3://…`) names a bucket archive
/// (or is refused, when secpipe does not support its scheme).
pub fn is_archive(path: &Path) -> bool {
    path.join("audit").join("manifests.jsonl").is_file()
        || !matches!(ArchiveLocation::parse(path), Ok(ArchiveLocation::Local(_)))
}
