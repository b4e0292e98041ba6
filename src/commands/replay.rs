//! `secpipe replay`: detection again over raw log files (plain, gzip, zstd) or an archive,
//! with the same engine as the live run, so the same lines give the same alerts.

use std::path::Path;
use std::process::ExitCode;

use crate::flags::UsageError;
use crate::flags::hiargs::{DetectConfig, LiveConfig, ParseConfig};
use crate::flags::lowargs::ReplayArgs;
use crate::source::InputSpec;
use crate::source::archive as archive_source;

use super::run::drive;
use crate::pipeline::TimeRange;

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
        return replay_archives(&archives, parse, detect, range);
    }
    for f in &files {
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
        &LiveConfig::default(),
        |live, tx| Ok((live.spawn_sources(inputs, max_line, tx)?, None)),
    )
}

/// Replay archives, in the order given, each in `seq` order.
fn replay_archives(
    dirs: &[&Path],
    parse: ParseConfig,
    detect: DetectConfig,
    range: TimeRange,
) -> Result<ExitCode, UsageError> {
    let mut files = Vec::new();
    for dir in dirs {
        files.extend(archive_source::event_files(dir).map_err(UsageError::plain)?);
    }
    drive(
        parse,
        detect,
        None,
        range,
        &LiveConfig::default(),
        |live, tx| {
            let (handle, report) =
                archive_source::spawn_archive_reader(files, range, tx, live.shutdown().clone());
            Ok((vec![handle], Some(report)))
        },
    )
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
