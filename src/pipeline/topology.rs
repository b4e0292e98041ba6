//! The threads of a run and what they share.
//!
//! ```text
//! sources ──LineBatch──► parse ──► classify ──EventBatch──► ordered (calling thread)
//! ```
//!
//! Channels are bounded, so a slow stage slows the sources instead of growing memory. Parsing
//! is sequential per source (year inference); classifying is the heavier half and stateless,
//! so it has its own thread and the two overlap. The ordered end runs on the calling thread and
//! sees every batch in the order the parse stage produced them: detection output must not
//! depend on thread scheduling.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use super::clock::WallClockMode;
use super::reload::{ClassifierSwitch, ReloadRequests};
use super::stages::{Envelope, EventBatch, classify_batch, parse_batch};
use crate::frame::LineBatch;
use crate::frame::ack::PositionKeeper;
use crate::metrics::{self, Metrics};
use crate::notify::Notifier;
use crate::parse::ParseSettings;
use crate::shutdown::{Shutdown, io_runtime, spawn_signal_handler};
use crate::source::{Liveness, ReadReport, Source, SourceContext, SourceHandle};

/// Batches in flight between two stages.
const CHANNEL_BATCHES: usize = 2;

/// With input that may be live, an ordered stage that has seen nothing for this long is told
/// so ([`Delivery::Idle`]) and lets the wall clock move the watermark.
pub const IDLE_AFTER: Duration = Duration::from_secs(1);

/// What the ordered stage is told by the pipeline.
// One per batch of lines: the size of the message is nothing next to its events.
#[allow(clippy::large_enum_variant)]
pub enum Delivery {
    Batch(EventBatch),
    /// No input for a while (input that may be live): the wall clock may move the watermark.
    Idle,
}

/// What runs beside the stages, started before any input is read: the I/O runtime, the signal
/// handlers (SIGTERM is caught from the first byte on, and SIGHUP, which would otherwise end
/// the process, is counted as a reload request), the metrics endpoint and systemd
/// notification.
pub struct Services {
    runtime: tokio::runtime::Runtime,
    pub shutdown: Shutdown,
    pub metrics: Arc<Metrics>,
    /// `SIGHUP`s received ([`super::reload`]).
    pub reloads: ReloadRequests,
    /// `NOTIFY_SOCKET` ([`crate::notify`]).
    pub notify: Arc<Notifier>,
}

impl Services {
    /// Start them; `metrics_addr` is `--metrics`.
    /// The I/O runtime, for work that is not a source (`secpipe worker`).
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    pub fn start(metrics_addr: Option<&str>) -> Result<Services, String> {
        let runtime = io_runtime().map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
        let shutdown = Shutdown::new();
        spawn_signal_handler(runtime.handle(), shutdown.clone())
            .map_err(|e| format!("cannot install signal handlers: {e}"))?;
        let reloads = ReloadRequests::listen(runtime.handle())
            .map_err(|e| format!("cannot install the SIGHUP handler: {e}"))?;
        let metrics = Arc::new(Metrics::new());
        if let Some(addr) = metrics_addr {
            let listener = metrics::bind(addr).map_err(|e| format!("--metrics {addr}: {e}"))?;
            let _guard = runtime.enter();
            runtime.spawn(metrics::serve(listener, metrics.clone(), shutdown.clone()));
        }
        Ok(Services {
            runtime,
            shutdown,
            metrics,
            reloads,
            notify: Arc::new(Notifier::from_env()),
        })
    }
}

/// What a run reads and how it turns lines into events.
pub struct Topology {
    pub settings: ParseSettings,
    /// The classifier, replaceable by a reload while the run goes on.
    pub classifier: ClassifierSwitch,
    pub sources: Vec<Box<dyn Source>>,
    /// `--max-line`.
    pub max_line: usize,
}

/// What the sources read, once the pipeline has drained.
pub struct Drained {
    pub report: ReadReport,
    /// A source that could not start (the others ran, and the run stopped early).
    pub start_error: Option<String>,
}

impl Topology {
    /// Whether the input may go on for ever: the most live of the sources.
    fn liveness(&self) -> Liveness {
        self.sources
            .iter()
            .map(|s| s.liveness())
            .max()
            .unwrap_or(Liveness::Ends)
    }

    /// When the wall clock moves the watermark: always with followed files or listeners, while
    /// it is current for stdin, never for files alone.
    pub fn wall_clock_mode(&self) -> WallClockMode {
        match self.liveness() {
            Liveness::Live => WallClockMode::Always,
            Liveness::MaybeLive => WallClockMode::WhenCurrent,
            Liveness::Ends => WallClockMode::Never,
        }
    }

    /// `Some` ([`IDLE_AFTER`]) when input may be live, `None` for input that ends.
    pub fn idle_after(&self) -> Option<Duration> {
        (self.liveness() != Liveness::Ends).then_some(IDLE_AFTER)
    }

    /// Where the sources keep acknowledged positions (taken once).
    pub fn position_keepers(&mut self) -> Vec<Box<dyn PositionKeeper>> {
        self.sources
            .iter_mut()
            .filter_map(|s| s.position_keeper())
            .collect()
    }

    /// Start the sources and the stages and run `ordered` on the calling thread until every
    /// source has ended (or stopped at shutdown) and every batch has been delivered.
    pub fn run(
        self,
        services: &Services,
        mut ordered: impl FnMut(Delivery),
    ) -> std::thread::Result<Drained> {
        let idle_after = self.idle_after();
        let (line_tx, line_rx): (Sender<LineBatch>, Receiver<LineBatch>) = bounded(CHANNEL_BATCHES);
        let (parsed_tx, parsed_rx) = bounded::<(EventBatch, Vec<Envelope>)>(CHANNEL_BATCHES);
        let (event_tx, event_rx) = bounded::<EventBatch>(CHANNEL_BATCHES);
        let ctx = SourceContext {
            tx: line_tx,
            shutdown: services.shutdown.clone(),
            metrics: services.metrics.clone(),
            runtime: services.runtime.handle().clone(),
            max_line: self.max_line,
        };
        let mut handles = Vec::new();
        let mut start_error = None;
        for source in self.sources {
            match source.start(&ctx) {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    // Stop the others; what they read so far still goes through.
                    start_error.get_or_insert(e);
                    services.shutdown.trigger();
                }
            }
        }
        // The sources hold the only senders now: the parse stage ends when they all have.
        drop(ctx);
        // Every source is started (listeners were bound before, when the run was built, and
        // with --block the ban table is in place): systemd may now send clients our way.
        if start_error.is_none() {
            services.notify.ready();
        }
        let settings = self.settings;
        let parse = std::thread::Builder::new()
            .name("parse".into())
            .spawn(move || {
                let mut parsers = HashMap::new();
                for mut batch in line_rx {
                    let (mut events, envelopes) = parse_batch(&batch, &mut parsers, &settings);
                    events.ack = batch.ack.take();
                    if batch.ends_source {
                        parsers.remove(&batch.source);
                    }
                    if parsed_tx.send((events, envelopes)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Box::new(e) as Box<dyn std::any::Any + Send>)?;
        let switch = self.classifier;
        let classify = std::thread::Builder::new()
            .name("classify".into())
            .spawn(move || {
                let mut classifier = switch.current();
                let mut seen = switch.generation();
                for (mut events, envelopes) in parsed_rx {
                    // Once per batch, never per line: a reload's grammars apply from here.
                    switch.refresh(&mut seen, &mut classifier);
                    classify_batch(&mut events, envelopes, &classifier);
                    if event_tx.send(events).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Box::new(e) as Box<dyn std::any::Any + Send>)?;
        loop {
            let delivery = match idle_after {
                None => match event_rx.recv() {
                    Ok(b) => Delivery::Batch(b),
                    Err(_) => break,
                },
                Some(idle) => match event_rx.recv_timeout(idle) {
                    Ok(b) => Delivery::Batch(b),
                    Err(RecvTimeoutError::Timeout) => Delivery::Idle,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            ordered(delivery);
        }
        let report = SourceHandle::join_all(handles).join()?;
        parse.join()?;
        classify.join()?;
        Ok(Drained {
            report,
            start_error,
        })
    }
}
