//! `secpipe run` (the default): detect attacks, write alerts, optionally archive.

use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use crate::alert::Alert;
use crate::archive::Archive;
use crate::detect::Detector;
use crate::flags::UsageError;
use crate::flags::hiargs::{AlertDest, DetectConfig, ParseConfig, RunConfig};
use crate::flags::lowargs::RunArgs;
use crate::pipeline::{Delivery, EventBatch, Shutdown, Summary, TimeRange, run_pipeline};
use crate::sink::alerts::AlertSink;
use crate::source::{ReadReport, spawn_batch_reader};

pub fn run(args: &RunArgs) -> Result<ExitCode, UsageError> {
    let cfg = RunConfig::from_args(args)?;
    let archive = match cfg.archive.clone() {
        Some(opts) => {
            Some(Archive::open(opts).map_err(|e| UsageError::plain(format!("--archive: {e}")))?)
        }
        None => None,
    };
    let inputs = cfg.inputs;
    let max_line = cfg.parse.max_line;
    detect_batch(
        cfg.parse,
        cfg.detect,
        archive,
        TimeRange::default(),
        |tx, shutdown| spawn_batch_reader(inputs, max_line, tx, shutdown),
    )
}

/// Run batch input through parse, classify and detection to the alert sink (and archive).
/// `spawn_reader` starts the thread that feeds line batches.
pub fn detect_batch<S>(
    parse: ParseConfig,
    detect: DetectConfig,
    archive: Option<Archive>,
    range: TimeRange,
    spawn_reader: S,
) -> Result<ExitCode, UsageError>
where
    S: FnOnce(
        crossbeam_channel::Sender<crate::frame::LineBatch>,
        Shutdown,
    ) -> (std::thread::JoinHandle<()>, Arc<Mutex<ReadReport>>),
{
    let out: Box<dyn Write + Send> = match &detect.alerts {
        AlertDest::Stdout => Box::new(std::io::stdout()),
        AlertDest::File(path) => Box::new(
            std::fs::File::create(path)
                .map_err(|e| UsageError::plain(format!("--alerts {}: {e}", path.display())))?,
        ),
    };
    let mut stage = OrderedStage {
        detector: Detector::new(detect.rules, detect.options),
        archive,
        sink: AlertSink::new(out, detect.alert_format),
        summary: Summary::default(),
        range,
        alerts: Vec::new(),
        error: None,
    };
    let shutdown = Shutdown::new();
    let mut report = None;
    let reader_shutdown = shutdown.clone();
    run_pipeline(
        parse.settings,
        parse.classifier,
        |tx| {
            let (handle, r) = spawn_reader(tx, reader_shutdown);
            report = Some(r);
            vec![handle]
        },
        None,
        |delivery| {
            if let Delivery::Batch(batch) = delivery {
                stage.take(batch);
                if stage.error.is_some() {
                    shutdown.trigger();
                }
            }
        },
    )
    .map_err(|_| UsageError::plain("internal error: a pipeline thread panicked"))?;
    stage.finish();
    let mut summary = stage.summary;
    absorb_read_report(&mut summary, report.as_ref());
    eprint!("{}", summary.render());
    if let Some(e) = stage.error {
        return Err(UsageError::plain(e));
    }
    Ok(exit_for_inputs(&summary))
}

/// The single-threaded end of `run`: numbers rows for the archive, feeds the detector in
/// arrival order, and writes alerts as soon as they are decided.
pub struct OrderedStage {
    pub detector: Detector,
    pub archive: Option<Archive>,
    pub sink: AlertSink,
    pub summary: Summary,
    /// Only events inside this range reach the detector (replay `--from`/`--to`).
    pub range: TimeRange,
    alerts: Vec<Alert>,
    /// The first sink or archive failure; the run stops reading after it.
    pub error: Option<String>,
}

impl OrderedStage {
    pub fn take(&mut self, batch: EventBatch) {
        self.summary.add_batch(&batch);
        if self.error.is_some() {
            return;
        }
        let mut events = batch.events;
        if let Some(archive) = &mut self.archive {
            let first = archive.next_seq();
            for (i, ev) in events.iter_mut().enumerate() {
                ev.seq = Some(first + i as u64);
            }
            if let Err(e) = archive.append_events(&events) {
                self.error = Some(format!("archive: {e}"));
                return;
            }
        }
        for ev in events {
            if self.range.contains(ev.ts) {
                self.detector.push(ev, &mut self.alerts);
            }
        }
        self.emit();
    }

    /// End of input: decide what is still buffered, seal the archive.
    pub fn finish(&mut self) {
        self.detector.finish(&mut self.alerts);
        self.emit();
        self.summary.late_events = self.detector.stats().late_events;
        if let Some(archive) = self.archive.take() {
            match archive.close() {
                Ok(s) => eprintln!(
                    "secpipe: archive: {} event rows, {} alert rows in {} files ({} bytes); head {}",
                    s.event_rows, s.alert_rows, s.files, s.bytes, s.head
                ),
                Err(e) => self.error = Some(format!("archive: {e}")),
            }
        }
    }

    fn emit(&mut self) {
        if self.alerts.is_empty() {
            return;
        }
        for a in &self.alerts {
            self.summary.alerts += 1;
            *self
                .summary
                .alerts_by_rule
                .entry(a.rule.clone())
                .or_insert(0) += 1;
        }
        if let Some(archive) = &mut self.archive
            && let Err(e) = archive.append_alerts(&self.alerts)
        {
            self.error = Some(format!("archive: {e}"));
        }
        if let Err(e) = self.sink.write(&self.alerts)
            && !super::is_broken_pipe(&e)
            && self.error.is_none()
        {
            self.error = Some(format!("alerts: {e}"));
        }
        self.alerts.clear();
    }
}

/// Fold what the readers saw into the summary.
pub fn absorb_read_report(summary: &mut Summary, report: Option<&Arc<Mutex<ReadReport>>>) {
    if let Some(r) = report.and_then(|r| r.lock().ok()) {
        summary.inputs = r.inputs;
        summary.bytes = r.frames.bytes;
        summary.dropped_bytes = r.frames.dropped_bytes;
        summary.input_errors = r.errors.clone();
    }
}

/// Exit 2 when an input could not be read (after processing the others), else 0.
pub fn exit_for_inputs(summary: &Summary) -> ExitCode {
    if summary.input_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_USAGE)
    }
}
