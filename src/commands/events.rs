//! `secpipe events`: parse and classify only, one JSON event per input line.
//!
//! `journalctl -f | secpipe events` is a live run too: each batch is written out as soon as
//! it is parsed, and SIGINT/SIGTERM stop reading, finish the batches in flight, print the
//! summary and exit 0, as `run` does.

use std::process::ExitCode;

use crate::flags::UsageError;
use crate::flags::hiargs::{ParseConfig, inputs};
use crate::flags::lowargs::EventsArgs;
use crate::pipeline::Summary;
use crate::pipeline::topology::{Delivery, Services, Topology};
use crate::sink::events::EventWriter;
use crate::source::BatchInputs;

pub fn events(args: &EventsArgs) -> Result<ExitCode, UsageError> {
    let parse = ParseConfig::from_args(&args.parse)?;
    let pattern_names = parse.classifier.pattern_names();
    // Before any input is read: until then SIGTERM would kill the process with parsed events
    // still in the output buffer and no summary.
    let services = Services::start(None).map_err(UsageError::plain)?;
    let topology = Topology {
        settings: parse.settings,
        classifier: crate::pipeline::reload::ClassifierSwitch::new(parse.classifier),
        sources: vec![Box::new(BatchInputs::new(inputs(&args.inputs)))],
        max_line: parse.max_line,
    };
    let mut summary = Summary::default();
    let mut writer = EventWriter::stdout();
    let shutdown = services.shutdown.clone();
    let drained = topology
        .run(&services, |delivery| {
            if let Delivery::Batch(batch) = delivery {
                summary.add_batch(&batch);
                if !writer.write(&batch.events) {
                    shutdown.trigger();
                }
            }
        })
        .map_err(|_| UsageError::plain("internal error: a pipeline thread panicked"))?;
    writer
        .finish()
        .map_err(|e| UsageError::plain(format!("stdout: {e}")))?;
    summary.add_read_report(&drained.report);
    eprint!("{}", summary.render());
    if args.stats {
        eprint!("{}", render_stats(&summary, &pattern_names));
    }
    Ok(super::exit_for_inputs(&summary))
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
