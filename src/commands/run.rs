//! `secpipe run` (the default): detect attacks, write alerts, optionally archive.

use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use crate::alert::Alert;
use crate::archive::Archive;
use crate::detect::Detector;
use crate::flags::UsageError;
use crate::flags::hiargs::{AlertDest, DetectConfig, LiveConfig, ParseConfig, RunConfig};
use crate::flags::lowargs::RunArgs;
use crate::frame::LineBatch;
use crate::metrics::Metrics;
use crate::pipeline::{
    Delivery, EventBatch, Shutdown, Summary, TimeRange, WallClock, WallClockMode, now_micros,
    run_pipeline,
};
use crate::sink::alerts::AlertSink;
use crate::source::ReadReport;
use crate::source::checkpoint::Checkpoint;
use crate::source::live::Live;

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
    drive(
        cfg.parse,
        cfg.detect,
        archive,
        TimeRange::default(),
        Unverified::Nothing,
        &cfg.live,
        |live, tx| {
            let handles = live.spawn_sources(inputs, max_line, tx)?;
            Ok((handles, None))
        },
    )
}

/// Sources started by [`drive`]: their threads, and the read report of any batch reader that
/// [`Live`] does not track itself.
pub type Started = (
    Vec<std::thread::JoinHandle<()>>,
    Option<Arc<Mutex<ReadReport>>>,
);

/// Run lines from the sources `spawn` starts through parse, classify and detection to the alert
/// sink (and archive), with signal handling, metrics and checkpoints from `live_cfg`.
pub fn drive<S>(
    parse: ParseConfig,
    detect: DetectConfig,
    archive: Option<Archive>,
    range: TimeRange,
    unverified: Unverified,
    live_cfg: &LiveConfig,
    spawn: S,
) -> Result<ExitCode, UsageError>
where
    S: FnOnce(&mut Live, crossbeam_channel::Sender<LineBatch>) -> Result<Started, String>,
{
    let out: Box<dyn Write + Send> = match &detect.alerts {
        AlertDest::Stdout => Box::new(std::io::stdout()),
        AlertDest::File(path) => Box::new(
            std::fs::File::create(path)
                .map_err(|e| UsageError::plain(format!("--alerts {}: {e}", path.display())))?,
        ),
    };
    let shutdown = Shutdown::new();
    let mut stage = OrderedStage {
        detector: Detector::new(detect.rules, detect.options),
        archive,
        sink: AlertSink::new(out, detect.alert_format)
            .bound_drain(shutdown.clone(), detect.alert_drain),
        summary: Summary::default(),
        range,
        unverified,
        alerts: Vec::new(),
        error: None,
        metrics: None,
        wall_clock: WallClock::new(WallClockMode::Never),
    };
    // Before any input is read: signal handlers, listeners, metrics endpoint, checkpoints.
    let mut live = Live::start(live_cfg, &shutdown).map_err(UsageError::plain)?;
    stage.metrics = Some(live.metrics());
    stage.wall_clock = WallClock::new(live.wall_clock_mode());
    let idle_after = live.idle_after();
    let mut spawn_error = None;
    let mut extra_report = None;
    // Both closures below need `live` (one to start the sources, one to commit checkpoints);
    // they never run at the same time, which a RefCell states without unsafe tricks.
    let live_sources = std::cell::RefCell::new(&mut live);
    let mut held = HeldCheckpoints::default();
    run_pipeline(
        parse.settings,
        parse.classifier,
        |tx| match spawn(&mut live_sources.borrow_mut(), tx) {
            Ok((handles, report)) => {
                extra_report = report;
                handles
            }
            Err(e) => {
                spawn_error = Some(e);
                shutdown.trigger();
                Vec::new()
            }
        },
        idle_after,
        |delivery| {
            match delivery {
                Delivery::Batch(mut batch) => {
                    let checkpoint = batch.checkpoint.take();
                    stage.take(batch);
                    if idle_after.is_some() {
                        stage.tick_archive(now_micros());
                    }
                    // Only now are the batch's events with the sinks: its source may resume
                    // after it (once the archive, if any, holds them durably).
                    if stage.error.is_none() {
                        let mut live = live_sources.borrow_mut();
                        match &stage.archive {
                            None => live.commit(checkpoint),
                            Some(archive) => {
                                held.hold(archive.next_seq(), checkpoint);
                                held.release(archive.durable_seq(), &mut live);
                            }
                        }
                    }
                }
                Delivery::Idle => {
                    stage.idle(now_micros());
                    let mut live = live_sources.borrow_mut();
                    if let Some(archive) = &stage.archive {
                        held.release(archive.durable_seq(), &mut live);
                    }
                    live.commit(None);
                }
            }
            if stage.error.is_some() {
                shutdown.trigger();
            }
        },
    )
    .map_err(|_| UsageError::plain("internal error: a pipeline thread panicked"))?;
    stage.finish();
    let delivery = stage.sink.close();
    // The archive is closed: every row it took is sealed, unless closing failed.
    if stage.error.is_none() {
        held.release(u64::MAX, &mut live_sources.borrow_mut());
    }
    let report = live.finish().map_err(UsageError::plain)?.or(extra_report);
    if let Some(e) = spawn_error {
        return Err(UsageError::plain(e));
    }
    let mut summary = stage.summary;
    absorb_read_report(&mut summary, report.as_ref());
    summary.inputs += live.live_inputs();
    summary.bytes += live.metrics().total_bytes_read();
    eprint!("{}", summary.render());
    eprint!("{}", live.metrics().render_drops());
    if delivery.undelivered() > 0 {
        let why = if delivery.gave_up {
            format!(
                "the alert output did not take them within {:?} of the stop (--drain-timeout)",
                detect.alert_drain
            )
        } else {
            "the alert output was closed".to_string()
        };
        eprintln!(
            "secpipe: {} of {} alerts not delivered: {why}",
            delivery.undelivered(),
            delivery.alerts
        );
    }
    if let Some(e) = stage.error {
        return Err(UsageError::plain(e));
    }
    Ok(exit_for_inputs(&summary))
}

/// Input positions (`--state`) waiting for the archive to hold their lines durably. Saved any
/// earlier, a position would survive a SIGKILL that the unsealed archive rows before it do not:
/// the restart would resume after lines the archive then discards. Held back, the restart reads
/// them again and archives them once.
#[derive(Default)]
struct HeldCheckpoints(std::collections::VecDeque<(u64, Checkpoint)>);

impl HeldCheckpoints {
    /// Hold `checkpoint`, a position after events numbered below `end_seq`.
    fn hold(&mut self, end_seq: u64, checkpoint: Option<Checkpoint>) {
        if let Some(checkpoint) = checkpoint {
            self.0.push_back((end_seq, checkpoint));
        }
    }

    /// Commit the positions whose events are all below `durable_seq`.
    fn release(&mut self, durable_seq: u64, live: &mut Live) {
        while self.0.front().is_some_and(|(end, _)| *end <= durable_seq) {
            if let Some((_, checkpoint)) = self.0.pop_front() {
                live.commit(Some(checkpoint));
            }
        }
    }
}

/// Replay `--force` of an archive that failed verification: which rows are not to be trusted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Unverified {
    /// Everything verified.
    #[default]
    Nothing,
    /// Rows (archive `seq` ranges) of files that failed verification.
    Rows(Vec<std::ops::Range<u64>>),
    /// The chain or its signature is broken: no row can be vouched for.
    Everything,
}

impl Unverified {
    /// Does `alert` rest on a row that is not verified?
    ///
    /// ```
    /// use secpipe::commands::run::Unverified;
    /// let u = Unverified::Rows(vec![10..20]);
    /// assert!(u.covers_seq(Some(10)) && !u.covers_seq(Some(20)) && !u.covers_seq(None));
    /// ```
    pub fn covers_seq(&self, seq: Option<u64>) -> bool {
        match self {
            Unverified::Nothing => false,
            Unverified::Everything => true,
            Unverified::Rows(ranges) => seq.is_some_and(|s| ranges.iter().any(|r| r.contains(&s))),
        }
    }
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
    /// Replay `--force`: alerts resting on these rows are marked `unverified`.
    pub unverified: Unverified,
    alerts: Vec<Alert>,
    /// The first sink or archive failure; the run stops reading after it.
    pub error: Option<String>,
    /// `--metrics`: counts of events, alerts and archive rows.
    pub metrics: Option<Arc<Metrics>>,
    /// When the wall clock moves the watermark (live input).
    pub wall_clock: WallClock,
}

impl OrderedStage {
    pub fn take(&mut self, batch: EventBatch) {
        self.summary.add_batch(&batch);
        let now = now_micros();
        if let Some(m) = &self.metrics {
            m.observe_batch(&batch, now);
        }
        if self.error.is_some() {
            return;
        }
        let received = batch.events.first().map(|ev| ev.received);
        let mut events = batch.events;
        if let Some(archive) = &mut self.archive {
            let first = archive.next_seq();
            for (i, ev) in events.iter_mut().enumerate() {
                ev.seq = Some(first + i as u64);
            }
            if let Err(e) = archive.append_events(&events) {
                let dir = archive.dir().to_path_buf();
                self.archive_failed(&dir, e);
                return;
            }
            if let Some(m) = &self.metrics {
                m.archive_rows(events.len() as u64);
            }
        }
        for ev in events {
            if self.range.contains(ev.ts) {
                self.detector.push(ev, &mut self.alerts);
            }
        }
        let now = now_micros();
        if self
            .wall_clock
            .settles_start(self.detector.start_held_since(), Some(now))
        {
            self.detector.settle_start(now, &mut self.alerts);
        }
        if let Some(received) = received {
            self.wall_clock
                .after_batch(received, self.detector.newest_event_time());
        }
        if self.wall_clock.ticks_after_batch(now) {
            // Live: the wall clock moves the watermark whatever arrived, so a trickle of stale
            // lines cannot hold alerts back.
            self.detector.advance_wallclock(now, &mut self.alerts);
        }
        self.emit();
        self.observe_detector(now);
    }

    /// Live input is idle: let the wall clock (µs) move the watermark, so the last attack
    /// before a quiet spell still alerts, and let the archive roll files by age.
    pub fn idle(&mut self, now: i64) {
        if self.error.is_some() {
            return;
        }
        if self
            .wall_clock
            .settles_start(self.detector.start_held_since(), None)
        {
            // The pipe paused: its first lines have nothing more to wait for.
            self.detector.settle_start(now, &mut self.alerts);
            self.wall_clock
                .after_batch(now, self.detector.newest_event_time());
        }
        if self.wall_clock.on_idle() {
            self.detector.advance_wallclock(now, &mut self.alerts);
        }
        self.emit();
        self.tick_archive(now);
        self.observe_detector(now);
    }

    /// Watermark lag and state keys for `--metrics`: once per batch or idle tick, since
    /// listing the keys per rule is not free.
    fn observe_detector(&self, now: i64) {
        if let Some(m) = &self.metrics {
            m.observe_detector(now, self.detector.watermark(), &self.detector.state_keys());
            let stats = self.detector.stats();
            m.observe_time(
                self.detector.held(),
                stats.forced_events,
                stats.ahead_of_stream,
            );
        }
    }

    /// Let the archive seal files older than `--roll-secs` (wall clock, µs). Live runs call it
    /// after every batch too: a busy stream is never idle, and its files must still roll.
    pub fn tick_archive(&mut self, now: i64) {
        if self.error.is_some() {
            return;
        }
        if let Some(archive) = &mut self.archive
            && let Err(e) = archive.tick(now)
        {
            let dir = archive.dir().to_path_buf();
            self.archive_failed(&dir, e);
        }
    }

    /// End of input: decide what is still buffered, seal the archive.
    pub fn finish(&mut self) {
        self.detector.finish(&mut self.alerts);
        self.emit();
        let stats = self.detector.stats();
        self.summary.late_events = stats.late_events;
        self.summary.forced_events = stats.forced_events;
        self.summary.ahead_of_stream = stats.ahead_of_stream;
        self.summary.sessions = self.detector.session_stats();
        self.observe_detector(now_micros());
        if let Some(archive) = self.archive.take() {
            let dir = archive.dir().to_path_buf();
            match archive.close() {
                Ok(s) => {
                    if let Some(m) = &self.metrics {
                        m.archive_bytes(s.bytes);
                    }
                    eprintln!(
                        "secpipe: archive: {} event rows, {} alert rows in {} files ({} bytes); head {}",
                        s.event_rows, s.alert_rows, s.files, s.bytes, s.head
                    )
                }
                Err(e) => self.archive_failed(&dir, e),
            }
        }
    }

    /// The archive could not be written: keep the first cause as the run's error, and alert
    /// once (see the archive's module doc for why the run then stops).
    fn archive_failed(&mut self, dir: &std::path::Path, e: crate::archive::ArchiveError) {
        if self.error.is_some() {
            return;
        }
        let cause = e.to_string();
        let alert = crate::archive::failure_alert(dir, &cause, now_micros());
        if let Some(m) = &self.metrics {
            m.observe_alerts(std::slice::from_ref(&alert));
        }
        self.summary.alerts += 1;
        *self
            .summary
            .alerts_by_rule
            .entry(alert.rule.clone())
            .or_insert(0) += 1;
        if let Err(e) = self.sink.write(std::slice::from_ref(&alert))
            && !super::is_broken_pipe(&e)
        {
            eprintln!("secpipe: alerts: {e}");
        }
        self.error = Some(format!("archive: {cause}"));
    }

    fn emit(&mut self) {
        if self.alerts.is_empty() {
            return;
        }
        if let Some(m) = &self.metrics {
            m.observe_alerts(&self.alerts);
        }
        for a in &mut self.alerts {
            a.unverified = a.evidence.iter().any(|e| self.unverified.covers_seq(e.seq));
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
            let dir = archive.dir().to_path_buf();
            self.archive_failed(&dir, e);
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
