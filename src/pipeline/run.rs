//! A detection run (`secpipe run`, `secpipe replay`): sources through parse and classify to
//! the ordered stage, with the archive, the alert sinks and acknowledgements.

use std::time::Duration;

use super::acks::AckLedger;
use super::ordered::{OrderedParts, OrderedStage};
use super::reload::Reloader;
use super::summary::Summary;
use super::topology::{Services, Topology};
use super::unverified::Unverified;
use crate::archive::Archive;
use crate::detect::Detector;
use crate::event::TimeRange;
use crate::notify::Heartbeat;
use crate::sink::routes::AlertRoute;
use crate::sink::{AlertSinks, DrainReport, OpenContext};

/// Everything a detection run is made of, built from its config before anything is read.
pub struct DetectionRun {
    pub services: Services,
    pub topology: Topology,
    pub detector: Detector,
    pub archive: Option<Archive>,
    pub sinks: Vec<AlertRoute>,
    /// `--drain-timeout`: after a stop signal, how long to wait for a blocked sink.
    pub drain: Duration,
    /// `--state`: network sinks deliver from a spool there.
    pub state: Option<std::path::PathBuf>,
    pub range: TimeRange,
    pub unverified: Unverified,
    /// `--block simulate|enforce` (`run` only; `replay` never blocks).
    pub block: Option<crate::block::Blocker>,
    /// `--emit nats://…`: publish events for workers instead of detecting (`run` only).
    pub emit: Option<crate::bus::edge::Emitter>,
    /// `run` only: re-read rules and grammars on `SIGHUP` ([`super::reload`]).
    pub reload: Option<Reloader>,
}

/// How a run ended.
pub struct RunOutcome {
    pub summary: Summary,
    /// `--metrics`' drop counters, rendered (empty when nothing was dropped).
    pub drops: String,
    pub sinks: Vec<(String, DrainReport)>,
    pub drain: Duration,
    /// The first failure that stopped the run (a sink, the archive, a source that did not
    /// start, saving positions).
    pub error: Option<String>,
}

impl DetectionRun {
    pub fn run(mut self) -> Result<RunOutcome, String> {
        let ctx = OpenContext {
            shutdown: self.services.shutdown.clone(),
            drain: self.drain,
            state: self.state.clone(),
            spool_bytes: crate::sink::spool::DEFAULT_SPOOL_BYTES,
            metrics: self.services.metrics.clone(),
        };
        let mut sinks = Vec::with_capacity(self.sinks.len());
        for route in &self.sinks {
            sinks.push((route.to.open(&ctx)?, route.min_severity));
        }
        let mut stage = OrderedStage::new(OrderedParts {
            detector: self.detector,
            archive: self.archive,
            sinks: AlertSinks::new(sinks),
            acks: AckLedger::new(self.topology.position_keepers()),
            range: self.range,
            unverified: self.unverified,
            metrics: self.services.metrics.clone(),
            wall_clock: self.topology.wall_clock_mode(),
            blocker: self.block,
            emitter: self.emit,
        });
        let shutdown = self.services.shutdown.clone();
        let requests = self.services.reloads.clone();
        let notify = self.services.notify.clone();
        let mut heartbeat = Heartbeat::new(notify.clone());
        let mut reload = self.reload.take();
        if reload.is_some() {
            requests.serve();
        }
        let metrics = self.services.metrics.clone();
        let drained = self
            .topology
            .run(&self.services, |delivery| {
                // Between two deliveries: the switch point of a reload (see `reload`).
                // Not once stopping: a reload mid-drain would say READY=1 after STOPPING=1.
                if let Some(reloader) = &mut reload
                    && !shutdown.is_triggered()
                    && reloader.due(&requests)
                {
                    notify.reloading();
                    reload_now(reloader, &mut stage, &metrics);
                    notify.ready();
                }
                stage.deliver(delivery);
                if stage.failed() {
                    shutdown.trigger();
                }
                if shutdown.is_triggered() {
                    heartbeat.stopping();
                } else {
                    heartbeat.progress(|| stage.status());
                }
            })
            .map_err(|_| "internal error: a pipeline thread panicked".to_string())?;
        heartbeat.stopping();
        if shutdown.is_triggered() {
            stage.interrupted();
        }
        let finished = stage.finish();
        let mut summary = finished.summary;
        summary.add_read_report(&drained.report);
        Ok(RunOutcome {
            summary,
            drops: self.services.metrics.render_drops(),
            sinks: finished.sinks,
            drain: self.drain,
            error: drained.start_error.or(finished.error),
        })
    }
}

/// Reload rules and grammars now; a failure leaves the old ones running and says why.
fn reload_now(reloader: &Reloader, stage: &mut OrderedStage, metrics: &crate::metrics::Metrics) {
    match reloader.prepare() {
        Ok(prepared) => {
            let reloaded = reloader.apply(prepared, |rules| stage.reload_rules(rules));
            metrics.reloaded("done");
            crate::report::note(&format!("SIGHUP: {}", reloaded.describe()));
        }
        Err(e) => {
            metrics.reloaded("failed");
            crate::report::note(&format!(
                "SIGHUP: reload failed, still running on the previous rules and grammars: {e}"
            ));
        }
    }
}

impl RunOutcome {
    /// What is printed on stderr at the end: the summary, drops, undelivered alerts.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = self.summary.render();
        s.push_str(&self.drops);
        for (name, report) in &self.sinks {
            if report.undelivered() == 0 {
                continue;
            }
            let kept = if report.spooled > 0 {
                format!(
                    "; {} of them wait in its spool in --state for the next run",
                    report.spooled
                )
            } else {
                String::new()
            };
            let why = if let Some(e) = &report.failed {
                format!("it failed: {e}")
            } else if report.gave_up {
                format!(
                    "it did not take them within {:?} of the stop (--drain-timeout)",
                    self.drain
                )
            } else if report.dropped > 0 {
                format!("{} dropped at its full queue", report.dropped)
            } else if report.refused > 0 {
                format!("{} refused by the receiver (said above)", report.refused)
            } else {
                // A failure is named above: what is left is a reader that went away.
                "it was closed".to_string()
            };
            let _ = writeln!(
                s,
                "secpipe: {} of {} alerts not delivered to {name}: {why}{kept}",
                report.undelivered(),
                report.alerts
            );
        }
        s
    }
}
