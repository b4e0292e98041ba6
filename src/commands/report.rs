//! `secpipe report`: review an archive over a period and write the page, the JSON and/or the
//! Markdown.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::archive::verify::VerifyOptions;
use crate::flags::UsageError;
use crate::flags::hiargs::{parse_duration, parse_optional_time};
use crate::flags::lowargs::ReportArgs;
use crate::review::period::Length;
use crate::review::{Review, ReviewOptions, review};

/// Exit 0 with the review written; 1 when verify found the archive tampered and 2 when it
/// could not conclude, as `secpipe verify` exits (the review is still written, and says so
/// first); 2 also for usage errors and an unreadable archive.
pub fn report(args: &ReportArgs) -> Result<ExitCode, UsageError> {
    let opts = ReviewOptions {
        from: parse_optional_time("--from", args.from.as_deref())?,
        to: parse_optional_time("--to", args.to.as_deref())?,
        length: if args.week { Length::Week } else { Length::Day },
        lateness: parse_duration("--lateness", &args.lateness)?,
        verify: VerifyOptions {
            pubkey: args.pubkey.clone(),
            expect_head: args.expect_head.clone(),
        },
    };
    let outputs = outputs(args)?;
    let review = review(super::archive_to_read(&args.archive)?, &opts)
        .map_err(|e| UsageError::plain(format!("{}: {e}", args.archive.display())))?;
    for (format, path) in &outputs {
        let text = format.render(&review);
        write_output(path, text.as_bytes())
            .map_err(|e| UsageError::plain(format!("{}: {e}", path.display())))?;
    }
    crate::report::note(&format!(
        "report {} .. {}: archive {}, {} lines, {} alerts",
        review.period.from,
        review.period.to,
        review.archive.verdict,
        review.counts.lines.now,
        review.alerts.total.now
    ));
    Ok(match review.archive.verdict.as_str() {
        "intact" | "unsigned" => ExitCode::SUCCESS,
        "tampered" => ExitCode::from(1),
        _ => ExitCode::from(2),
    })
}

/// The renderings a review can be written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Html,
    Markdown,
}

impl Format {
    fn render(self, review: &Review) -> String {
        match self {
            Format::Json => {
                let mut text = serde_json::to_string_pretty(review).unwrap_or_default();
                text.push('\n');
                text
            }
            Format::Html => crate::review::html::render(review),
            Format::Markdown => crate::review::markdown::render(review),
        }
    }
}

/// The outputs asked for; at most one of them on stdout.
fn outputs(args: &ReportArgs) -> Result<Vec<(Format, PathBuf)>, UsageError> {
    let mut outputs = Vec::new();
    if let Some(path) = &args.json {
        outputs.push((Format::Json, path.clone()));
    }
    if let Some(path) = &args.html {
        outputs.push((Format::Html, path.clone()));
    }
    if let Some(path) = &args.md {
        outputs.push((Format::Markdown, path.clone()));
    }
    if outputs.is_empty() {
        outputs.push((Format::Markdown, PathBuf::from("-")));
    }
    if outputs.iter().filter(|(_, p)| p == Path::new("-")).count() > 1 {
        return Err(UsageError::with_help(
            "only one output can go to stdout (-)",
            "write the others to files",
        ));
    }
    Ok(outputs)
}

/// Write `bytes` to `path` whole: into a temporary file beside it, then renamed, so a reader
/// never sees half a page. `-` is stdout; a path that exists and is not a regular file
/// (`/dev/null`, a pipe) is written to as it is, never replaced.
fn write_output(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        return match out.write_all(bytes).and_then(|()| out.flush()) {
            Err(e) if super::is_broken_pipe(&e) => Ok(()),
            other => other,
        };
    }
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return std::fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .write_all(bytes);
    }
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
