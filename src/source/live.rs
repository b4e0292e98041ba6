//! The service side of `secpipe run`, gathered in one place: the I/O runtime and its signal
//! handlers, followed files and their checkpoints, syslog listeners, the metrics endpoint.
//!
//! `run` calls [`Live::start`] before reading anything (so SIGTERM is caught from the first
//! byte, and a taken port or a bad certificate is reported before any work), then
//! [`Live::spawn_sources`] from the pipeline's `spawn_sources` closure, [`Live::commit`] after
//! each batch the ordered stage finished, and [`Live::finish`] after the pipeline drained.
//!
//! ```no_run
//! use secpipe::flags::hiargs::LiveConfig;
//! use secpipe::shutdown::Shutdown;
//! use secpipe::source::live::Live;
//! let live = Live::start(&LiveConfig::default(), &Shutdown::new()).unwrap();
//! assert!(live.idle_after().is_none());
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Sender;

use super::checkpoint::{Checkpoint, CheckpointStore};
use super::follow::{Follower, spawn_follower};
use super::syslog::{Listeners, tls};
use super::{InputSpec, ReadReport, spawn_batch_reader_counted};
use crate::flags::hiargs::LiveConfig;
use crate::frame::LineBatch;
use crate::metrics::{self, Metrics};
use crate::pipeline::WallClockMode;
use crate::shutdown::{Shutdown, io_runtime, spawn_signal_handler};

/// With live input, an ordered stage that has seen nothing for this long is told so
/// ([`crate::pipeline::Delivery::Idle`]) and lets the wall clock move the watermark.
pub const IDLE_AFTER: Duration = Duration::from_secs(1);

/// Everything `run` needs beyond the batch pipeline.
pub struct Live {
    runtime: tokio::runtime::Runtime,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
    follow: bool,
    live: bool,
    /// Stdin is an input: it may be a live pipe (`journalctl -f | secpipe`).
    stdin: bool,
    store: Option<CheckpointStore>,
    listeners: Option<Listeners>,
    /// What the batch reader (stdin, or files without `--follow`) saw.
    batch_report: Option<Arc<Mutex<ReadReport>>>,
    /// Followed files and listeners started, for the summary's input count.
    followed: u64,
}

impl Live {
    /// Install signal handlers, bind the metrics endpoint and the listeners, open the state.
    pub fn start(cfg: &LiveConfig, shutdown: &Shutdown) -> Result<Live, String> {
        let runtime = io_runtime().map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
        spawn_signal_handler(runtime.handle(), shutdown.clone())
            .map_err(|e| format!("cannot install signal handlers: {e}"))?;
        let metrics = Arc::new(Metrics::new());
        if let Some(addr) = &cfg.metrics {
            let listener = metrics::bind(addr).map_err(|e| format!("--metrics {addr}: {e}"))?;
            let _guard = runtime.enter();
            runtime.spawn(metrics::serve(listener, metrics.clone(), shutdown.clone()));
        }
        let store = match &cfg.state {
            Some(dir) => Some(
                CheckpointStore::open(dir)
                    .map_err(|e| format!("--state {}: {e}", dir.display()))?,
            ),
            None => None,
        };
        let listeners = if cfg.listen.is_empty() {
            None
        } else {
            let acceptor = match &cfg.tls {
                Some((cert, key)) => Some(tls::acceptor(cert, key)?),
                None => None,
            };
            let listeners = Listeners::bind(&cfg.listen, acceptor)?;
            for spec in listeners.specs() {
                eprintln!("secpipe: listening on {}", spec.url());
            }
            Some(listeners)
        };
        Ok(Live {
            runtime,
            shutdown: shutdown.clone(),
            metrics,
            follow: cfg.follow,
            live: cfg.is_live(),
            stdin: cfg.stdin,
            store,
            listeners,
            batch_report: None,
            followed: 0,
        })
    }

    /// `Some` for live input and stdin (see [`IDLE_AFTER`]), `None` for files only.
    pub fn idle_after(&self) -> Option<Duration> {
        (self.live || self.stdin).then_some(IDLE_AFTER)
    }

    /// When the wall clock moves the watermark: always with followed files or listeners, on
    /// idle while it is current for stdin, never for files alone.
    pub fn wall_clock_mode(&self) -> WallClockMode {
        if self.live {
            WallClockMode::Always
        } else if self.stdin {
            WallClockMode::WhenCurrent
        } else {
            WallClockMode::Never
        }
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Start the source threads: one follower per file with `--follow` (stdin is read as a
    /// batch input), the batch reader otherwise, and the syslog listeners.
    pub fn spawn_sources(
        &mut self,
        inputs: Vec<InputSpec>,
        max_line: usize,
        tx: Sender<LineBatch>,
    ) -> Result<Vec<std::thread::JoinHandle<()>>, String> {
        let mut handles = Vec::new();
        let (followed, batch): (Vec<InputSpec>, Vec<InputSpec>) = inputs
            .into_iter()
            .partition(|i| self.follow && matches!(i, InputSpec::File(_)));
        for input in followed {
            let InputSpec::File(path) = input else {
                continue;
            };
            let follower = Follower::new(path, max_line);
            let resume = self
                .store
                .as_ref()
                .and_then(|s| s.get(&follower.name()).cloned());
            let handle = spawn_follower(
                follower.resume_from(resume),
                tx.clone(),
                self.shutdown.clone(),
                self.metrics.clone(),
            )
            .map_err(|e| format!("cannot start a follower thread: {e}"))?;
            self.followed += 1;
            handles.push(handle);
        }
        if !batch.is_empty() {
            let (handle, report) = spawn_batch_reader_counted(
                batch,
                max_line,
                tx.clone(),
                self.shutdown.clone(),
                Some(self.metrics.clone()),
            );
            self.batch_report = Some(report);
            handles.push(handle);
        }
        if let Some(listeners) = self.listeners.take() {
            self.followed += listeners.specs().len() as u64;
            let handle = listeners
                .spawn(
                    self.runtime.handle(),
                    tx,
                    self.shutdown.clone(),
                    self.metrics.clone(),
                    max_line,
                )
                .map_err(|e| format!("cannot start the syslog listeners: {e}"))?;
            handles.push(handle);
        }
        Ok(handles)
    }

    /// The ordered stage has handed a batch's events to the sinks: its source may resume after
    /// it. Saves the checkpoints when due.
    pub fn commit(&mut self, checkpoint: Option<Checkpoint>) {
        let Some(store) = &mut self.store else {
            return;
        };
        if let Some(cp) = checkpoint {
            store.record(cp);
        }
        match store.save_if_due() {
            Ok(true) => self.metrics.checkpoint_saved(),
            Ok(false) => {}
            Err(e) => eprintln!("secpipe: --state: {e}"),
        }
    }

    /// After the pipeline drained: save the checkpoints for good. Returns what the batch reader
    /// saw, for the summary.
    pub fn finish(&mut self) -> Result<Option<Arc<Mutex<ReadReport>>>, String> {
        if let Some(store) = &mut self.store {
            store.save().map_err(|e| format!("--state: {e}"))?;
            self.metrics.checkpoint_saved();
        }
        Ok(self.batch_report.take())
    }

    /// Followed files and listeners (the batch reader reports its own inputs).
    pub fn live_inputs(&self) -> u64 {
        self.followed
    }

    /// Whether a signal (or a failing stage) asked the run to stop.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }
}
