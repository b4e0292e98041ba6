//! The ordered stage: the one thread that sees every event in order (DESIGN section 2). It
//! numbers rows and appends them to the archive, feeds the detector, writes alerts to the
//! sinks, and acknowledges batches to their sources ([`AckLedger`]).

use std::sync::Arc;

use super::acks::AckLedger;
use super::clock::{WallClock, WallClockMode};
use super::stages::EventBatch;
use super::summary::Summary;
use super::topology::Delivery;
use crate::alert::Alert;
use crate::archive::Archive;
use crate::block::Blocker;
use crate::bus::edge::Emitter;
use crate::detect::Detector;
use crate::event::{TimeRange, now_micros};
use crate::metrics::Metrics;
use crate::sink::{AlertSinks, DrainReport};

use super::unverified::Unverified;

/// The single-threaded end of a detection run: numbers rows for the archive, feeds the
/// detector in arrival order, writes alerts as soon as they are decided, and acknowledges each
/// batch to its source once it is done with.
pub struct OrderedStage {
    detector: Detector,
    archive: Option<Archive>,
    sinks: AlertSinks,
    acks: AckLedger,
    summary: Summary,
    /// Only events inside this range reach the detector (replay `--from`/`--to`).
    range: TimeRange,
    /// Replay `--force`: alerts resting on these rows are marked `unverified`.
    unverified: Unverified,
    alerts: Vec<Alert>,
    /// The first sink or archive failure; the run stops reading after it.
    error: Option<String>,
    /// Counts of events, alerts and archive rows (`--metrics`).
    metrics: Arc<Metrics>,
    /// When the wall clock moves the watermark (input that may be live).
    wall_clock: WallClock,
    /// `--block`: decides bans right after detection, in alert order ([`crate::block`]).
    blocker: Option<Blocker>,
    /// `--emit nats://…`: an edge publishes its events instead of detecting ([`crate::bus`]).
    emitter: Option<Emitter>,
}

/// What an [`OrderedStage`] is made of.
pub struct OrderedParts {
    pub detector: Detector,
    pub archive: Option<Archive>,
    pub sinks: AlertSinks,
    pub acks: AckLedger,
    pub range: TimeRange,
    pub unverified: Unverified,
    pub metrics: Arc<Metrics>,
    pub wall_clock: WallClockMode,
    pub blocker: Option<Blocker>,
    pub emitter: Option<Emitter>,
}

/// What an [`OrderedStage`] leaves when it is finished.
pub struct Finished {
    pub summary: Summary,
    /// Each sink's name and what it could not deliver.
    pub sinks: Vec<(String, DrainReport)>,
    /// The first sink, archive or checkpoint failure.
    pub error: Option<String>,
}

impl OrderedStage {
    pub fn new(parts: OrderedParts) -> OrderedStage {
        OrderedStage {
            detector: parts.detector,
            archive: parts.archive,
            sinks: parts.sinks,
            acks: parts.acks,
            summary: Summary::default(),
            range: parts.range,
            unverified: parts.unverified,
            alerts: Vec::new(),
            error: None,
            metrics: parts.metrics,
            wall_clock: WallClock::new(parts.wall_clock),
            blocker: parts.blocker,
            emitter: parts.emitter,
        }
    }

    /// The run was stopped by a signal rather than by the end of its input.
    pub fn interrupted(&mut self) {
        if let Some(emitter) = &mut self.emitter {
            emitter.interrupted();
        }
    }

    /// Run `rules` from now on (a `SIGHUP` reload): `None` when this stage does not detect
    /// (`--emit`: the bus partitions by the rules the workers run, so only a restart applies).
    pub fn reload_rules(
        &mut self,
        rules: crate::detect::RuleSet,
    ) -> Option<crate::detect::RuleChanges> {
        if self.emitter.is_some() {
            return None;
        }
        let changes = self.detector.reload(rules);
        self.metrics.forget_rules(&changes.removed);
        self.observe_detector(now_micros());
        Some(changes)
    }

    /// One line of counts for systemd's `STATUS=`.
    pub fn status(&self) -> String {
        format!(
            "{} lines read, {} events, {} alerts",
            self.summary.lines,
            self.detector.stats().events,
            self.summary.alerts
        )
    }

    /// Whether a sink or the archive failed: the run should stop reading.
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// What the pipeline delivered.
    pub fn deliver(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Batch(mut batch) => {
                let ack = batch.ack.take();
                self.take(batch);
                // Input that may be live: the archive rolls files by age after every batch too.
                if self.wall_clock.input_may_be_live() {
                    self.tick_archive(now_micros());
                }
                // Only now are the batch's events with the sinks: its source may resume after
                // it (once the archive, if any, holds them durably).
                if self.error.is_none() {
                    let archived_before = self.archive.as_ref().map(Archive::next_seq);
                    self.acks.done(ack, archived_before);
                    self.release_durable();
                }
            }
            Delivery::Idle => {
                self.idle(now_micros());
                self.release_durable();
            }
        }
    }

    /// Acknowledge what the archive now holds durably; save positions when due.
    fn release_durable(&mut self) {
        match &self.archive {
            Some(archive) => self.acks.release(archive.durable_seq()),
            None => self.acks.save_if_due(),
        }
    }

    fn take(&mut self, batch: EventBatch) {
        self.summary.add_batch(&batch);
        let now = now_micros();
        let not_believed = [
            ("future", batch.future_ts),
            ("out_of_range", batch.rejected_ts),
        ];
        self.metrics.observe_batch(&batch.tally, not_believed, now);
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
            self.metrics.archive_rows(events.len() as u64);
        }
        if let Some(emitter) = &mut self.emitter {
            // An edge: the events go to the bus, stored there before the batch is
            // acknowledged to its source; the workers detect.
            let wall = self.wall_clock.input_may_be_live().then_some(now);
            if let Err(e) = emitter.publish(&events, wall) {
                self.error = Some(format!("--emit: {e}"));
            }
            return;
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
    fn idle(&mut self, now: i64) {
        if self.error.is_some() {
            return;
        }
        if let Some(emitter) = &mut self.emitter {
            let wall = self.wall_clock.input_may_be_live().then_some(now);
            if let Err(e) = emitter.idle(wall) {
                self.error = Some(format!("--emit: {e}"));
            }
            self.tick_archive(now);
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
        let m = &self.metrics;
        m.observe_detector(now, self.detector.watermark(), &self.detector.state_keys());
        let stats = self.detector.stats();
        m.observe_time(
            self.detector.held(),
            stats.forced_events,
            stats.ahead_of_stream,
        );
    }

    /// Let the archive seal files older than `--roll-secs` (wall clock, µs). Live runs call it
    /// after every batch too: a busy stream is never idle, and its files must still roll.
    fn tick_archive(&mut self, now: i64) {
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

    /// End of input: decide what is still buffered, seal the archive, close the sinks,
    /// acknowledge what is now durable and save positions for good.
    pub fn finish(mut self) -> Finished {
        self.finish_detection();
        let (sinks, all_failed) = self.sinks.close();
        if let Some(e) = all_failed {
            self.error.get_or_insert(e);
        }
        // The archive is closed: every row it took is sealed, unless closing failed.
        if let Err(e) = self.acks.finish(self.error.is_none()) {
            self.error.get_or_insert(e);
        }
        Finished {
            summary: self.summary,
            sinks,
            error: self.error,
        }
    }

    fn finish_detection(&mut self) {
        if let Some(mut emitter) = self.emitter.take()
            && self.error.is_none()
        {
            match emitter.finish() {
                Ok(s) => crate::report::note(&format!(
                    "emit: {} events published in {} messages ({} already on the bus)",
                    s.events, s.messages, s.duplicates
                )),
                Err(e) => self.error = Some(format!("--emit: {e}")),
            }
        }
        self.detector.finish(&mut self.alerts);
        self.emit();
        // The enforcer's last records (unbans) go into the archive before it is sealed.
        if let Some(blocker) = self.blocker.take() {
            blocker.finish(&mut self.alerts);
            self.emit();
        }
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
                    self.metrics.archive_bytes(s.bytes);
                    crate::report::note(&format!(
                        "archive: {} event rows, {} alert rows in {} files ({} bytes); head {}",
                        s.event_rows, s.alert_rows, s.files, s.bytes, s.head
                    ))
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
        self.metrics.observe_alerts(std::slice::from_ref(&alert));
        self.summary.count_alert(&alert);
        // A sink that fails now is reported by the sinks; the archive's cause is the run's.
        let _ = self.sinks.write(std::slice::from_ref(&alert));
        self.error = Some(format!("archive: {cause}"));
    }

    fn emit(&mut self) {
        if let Some(blocker) = &mut self.blocker {
            blocker.step(&mut self.alerts, now_micros());
        }
        if self.alerts.is_empty() {
            // Drops held back by the once-a-minute limit are still said, without new alerts.
            self.raise_backlog();
            return;
        }
        self.metrics.observe_alerts(&self.alerts);
        for a in &mut self.alerts {
            a.unverified = a.evidence.iter().any(|e| self.unverified.covers_seq(e.seq));
            self.summary.count_alert(a);
        }
        if let Some(archive) = &mut self.archive
            && let Err(e) = archive.append_alerts(&self.alerts)
        {
            let dir = archive.dir().to_path_buf();
            self.archive_failed(&dir, e);
        }
        if let Err(e) = self.sinks.write(&self.alerts) {
            self.error.get_or_insert(e);
        }
        self.alerts.clear();
        self.raise_backlog();
    }

    /// A sink dropped alerts: say so, to the archive and the sinks (the one that dropped
    /// them too, in case it recovered).
    fn raise_backlog(&mut self) {
        let backlog = self.sinks.backlog_alerts(now_micros());
        if backlog.is_empty() {
            return;
        }
        self.metrics.observe_alerts(&backlog);
        for a in &backlog {
            self.summary.count_alert(a);
        }
        if let Some(archive) = &mut self.archive
            && let Err(e) = archive.append_alerts(&backlog)
        {
            let dir = archive.dir().to_path_buf();
            self.archive_failed(&dir, e);
        }
        if let Err(e) = self.sinks.write_backlog(&backlog) {
            self.error.get_or_insert(e);
        }
    }
}
