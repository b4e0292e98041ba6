//! `secpipe events`: parse and classify only, one JSON event per input line.
//!
//! `journalctl -f | secpipe events` is a live run too: each batch is written out as soon as
//! it is parsed, and SIGINT/SIGTERM stop reading, finish the batches in flight, print the
//! summary and exit 0, as `run` does.

use std::io::Write;
use std::process::ExitCode;

use crate::flags::UsageError;
use crate::flags::hiargs::{ParseConfig, inputs};
use crate::flags::lowargs::EventsArgs;
use crate::pipeline::{Delivery, Shutdown, Summary, run_pipeline};
use crate::shutdown::handle_signals;
use crate::sink::events::write_event_json;
use crate::source::spawn_batch_reader;

pub fn events(args: &EventsArgs) -> Result<ExitCode, UsageError> {
    let parse = ParseConfig::from_args(&args.parse)?;
    let pattern_names = parse.classifier.pattern_names();
    let shutdown = Shutdown::new();
    // Before any input is read: until then SIGTERM would kill the process with parsed events
    // still in the output buffer and no summary.
    let _signals = handle_signals(&shutdown)
        .map_err(|e| UsageError::plain(format!("cannot install signal handlers: {e}")))?;
    let mut summary = Summary::default();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut text = String::with_capacity(1 << 20);
    let mut write_error: Option<std::io::Error> = None;
    let mut report = None;
    let reader_shutdown = shutdown.clone();
    run_pipeline(
        parse.settings,
        parse.classifier,
        |tx| {
            let (handle, r) =
                spawn_batch_reader(inputs(&args.inputs), parse.max_line, tx, reader_shutdown);
            report = Some(r);
            vec![handle]
        },
        None,
        |delivery| {
            let Delivery::Batch(batch) = delivery else {
                return;
            };
            summary.add_batch(&batch);
            if write_error.is_some() {
                return;
            }
            text.clear();
            for ev in &batch.events {
                write_event_json(&mut text, ev);
                text.push('\n');
            }
            // Flushed per batch (not per line): a follower of a live stream sees events as they
            // are parsed, and a batch holds thousands of lines, so the extra write is noise.
            if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                write_error = Some(e);
                shutdown.trigger();
            }
        },
    )
    .map_err(|_| UsageError::plain("internal error: a pipeline thread panicked"))?;
    if write_error.is_none()
        && let Err(e) = out.flush()
    {
        write_error = Some(e);
    }
    if let Some(e) = write_error
        && !super::is_broken_pipe(&e)
    {
        return Err(UsageError::plain(format!("stdout: {e}")));
    }
    super::run::absorb_read_report(&mut summary, report.as_ref());
    eprint!("{}", summary.render());
    if args.stats {
        eprint!("{}", render_stats(&summary, &pattern_names));
    }
    Ok(super::run::exit_for_inputs(&summary))
}

/// Per-pattern hit counts, most-hit first, then the lines nothing matched.
fn render_stats(summary: &Summary, names: &[String]) -> String {
    use std::fmt::Write as _;
    let mut rows: Vec<(u64, &str)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                summary.pattern_hits.get(i).copied().unwrap_or(0),
                n.as_str(),
            )
        })
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut s = String::from("pattern hits:\n");
    for (n, name) in rows {
        let _ = writeln!(s, "{n:>10}  {name}");
    }
    let _ = writeln!(s, "{:>10}  (no pattern matched)", summary.unmatched);
    let _ = writeln!(
        s,
        "{:>10}  (ambiguous address: src_ip left empty)",
        summary.ambiguous_addresses
    );
    s
}
