//! Alert output: JSON lines (default) or one readable line per alert, to stdout or a file.
//!
//! # Threads, backpressure, shutdown
//!
//! The ordered stage formats each batch of alerts and hands it to a writer thread through a
//! bounded queue ([`QUEUE_BATCHES`]); the writer writes and flushes each batch, so a person (or
//! `tail -f`) sees an alert seconds after the attack, not when a buffer fills. While the run
//! goes on, a slow consumer slows detection (the queue is full, the stage waits) instead of
//! growing memory.
//!
//! Once shutdown is triggered (SIGTERM, SIGINT, or a failed stage), waiting for the consumer is
//! bounded by the *drain limit* (`--drain-timeout`, default [`DEFAULT_DRAIN`]), counted from
//! the moment the sink first sees the trigger: `secpipe … | sleep 30` under systemd must not
//! hold the stop for 90 s. Past it, batches that cannot be queued are dropped and
//! [`AlertSink::close`] stops waiting for the writer (a write blocked in the kernel cannot be
//! cancelled; the thread ends with the process). Nothing is lost silently: `close` reports how
//! many alerts were not delivered, and `run` says so on stderr. Without a shutdown trigger (end
//! of input) the drain waits as long as the consumer takes: `secpipe old.log | less` must see
//! every alert.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{SendTimeoutError, Sender, bounded};

use crate::alert::Alert;
use crate::shutdown::Shutdown;

/// How long, after shutdown is triggered, the sink waits for a blocked consumer by default.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(5);

/// Formatted batches waiting for the writer thread.
const QUEUE_BATCHES: usize = 16;

/// How often a waiting sink looks at the shutdown flag and its deadline.
const POLL: Duration = Duration::from_millis(50);

/// How alerts are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AlertFormat {
    #[default]
    Json,
    Text,
}

/// What [`AlertSink::close`] could deliver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Alerts given to [`AlertSink::write`].
    pub alerts: u64,
    /// Alerts written and flushed to the output.
    pub delivered: u64,
    /// The drain limit gave up waiting for the consumer.
    pub gave_up: bool,
}

impl DrainReport {
    pub fn undelivered(&self) -> u64 {
        self.alerts.saturating_sub(self.delivered)
    }
}

/// Formatted alerts, one line each.
#[derive(Default)]
struct Batch {
    text: String,
    /// Where each alert's line (with its newline) ends in `text`.
    line_ends: Vec<usize>,
}

impl Batch {
    fn lines(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.line_ends.iter().copied());
        starts
            .zip(self.line_ends.iter().copied())
            .map(|(start, end)| self.text.as_bytes().get(start..end).unwrap_or_default())
    }
}

/// What the writer thread shares with the sink.
#[derive(Default)]
struct WriterState {
    delivered: AtomicU64,
    /// The first write error; the writer stops after it.
    error: Mutex<Option<io::Error>>,
}

/// Writes alerts on its own thread; see the module docs.
///
/// ```
/// use secpipe::sink::alerts::{AlertFormat, AlertSink};
/// let out = tempfile::NamedTempFile::new().unwrap();
/// let mut sink = AlertSink::new(Box::new(out.reopen().unwrap()), AlertFormat::Json);
/// sink.write(&[]).unwrap();
/// let report = sink.close();
/// assert_eq!((report.alerts, report.undelivered(), report.gave_up), (0, 0, false));
/// ```
pub struct AlertSink {
    format: AlertFormat,
    queue: Option<Sender<Batch>>,
    writer: Option<std::thread::JoinHandle<()>>,
    state: Arc<WriterState>,
    /// Alerts given to `write`.
    alerts: u64,
    /// Bounds the wait for the consumer once this is triggered.
    shutdown: Option<Shutdown>,
    drain: Duration,
    deadline: Option<Instant>,
}

impl AlertSink {
    /// A sink writing to `out` on its own thread, waiting for it as long as it takes (see
    /// [`AlertSink::bound_drain`]).
    pub fn new(out: Box<dyn Write + Send>, format: AlertFormat) -> AlertSink {
        let (tx, rx) = bounded::<Batch>(QUEUE_BATCHES);
        let state = Arc::new(WriterState::default());
        let writer_state = state.clone();
        let mut out = out;
        let writer = std::thread::Builder::new()
            .name("alerts".into())
            .spawn(move || {
                for batch in rx {
                    // Line by line, so that `delivered` counts exactly the alerts the output
                    // took when a consumer stops reading in the middle of a batch.
                    let written = batch.lines().try_for_each(|line| {
                        out.write_all(line)?;
                        writer_state.delivered.fetch_add(1, Ordering::Relaxed);
                        Ok(())
                    });
                    if let Err(e) = written.and_then(|()| out.flush()) {
                        if let Ok(mut slot) = writer_state.error.lock() {
                            *slot = Some(e);
                        }
                        return;
                    }
                }
            });
        let (queue, writer) = match writer {
            Ok(handle) => (Some(tx), Some(handle)),
            Err(e) => {
                // No thread: every write reports this error.
                if let Ok(mut slot) = state.error.lock() {
                    *slot = Some(e);
                }
                (None, None)
            }
        };
        AlertSink {
            format,
            queue,
            writer,
            state,
            alerts: 0,
            shutdown: None,
            drain: Duration::MAX,
            deadline: None,
        }
    }

    /// Once `shutdown` is triggered, wait at most `drain` for the consumer.
    pub fn bound_drain(mut self, shutdown: Shutdown, drain: Duration) -> AlertSink {
        self.shutdown = Some(shutdown);
        self.drain = drain;
        self
    }

    /// Queue `alerts` for writing. Waits while the queue is full, unless the drain limit has
    /// passed (then they count as undelivered). Returns the writer's first error, if any.
    pub fn write(&mut self, alerts: &[Alert]) -> io::Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::default();
        for alert in alerts {
            match self.format {
                AlertFormat::Json => alert.write_json(&mut batch.text),
                AlertFormat::Text => alert.write_text(&mut batch.text),
            }
            batch.text.push('\n');
            batch.line_ends.push(batch.text.len());
        }
        self.alerts += alerts.len() as u64;
        while let Some(queue) = &self.queue {
            batch = match queue.send_timeout(batch, POLL) {
                Ok(()) => break,
                Err(SendTimeoutError::Timeout(back)) => {
                    if self.past_deadline() {
                        break;
                    }
                    back
                }
                Err(SendTimeoutError::Disconnected(_)) => {
                    // The writer stopped at an error, which `take_error` returns below.
                    self.queue = None;
                    break;
                }
            };
        }
        self.take_error()
    }

    /// Stop taking alerts, let the writer finish (bounded by the drain limit once shutdown is
    /// triggered) and report what was delivered.
    pub fn close(&mut self) -> DrainReport {
        // Closing the queue ends the writer's loop once it has written what is queued.
        self.queue = None;
        let mut gave_up = false;
        while let Some(writer) = self.writer.take() {
            if writer.is_finished() {
                let _ = writer.join();
                break;
            }
            self.writer = Some(writer);
            if self.past_deadline() {
                gave_up = true;
                break;
            }
            std::thread::sleep(POLL);
        }
        DrainReport {
            alerts: self.alerts,
            delivered: self.state.delivered.load(Ordering::Relaxed),
            gave_up,
        }
    }

    /// The writer's first error (taken once).
    pub fn take_error(&mut self) -> io::Result<()> {
        match self
            .state
            .error
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Has the drain limit passed? Starts the clock when it first sees the shutdown trigger.
    fn past_deadline(&mut self) -> bool {
        if let Some(deadline) = self.deadline {
            return Instant::now() >= deadline;
        }
        if self.shutdown.as_ref().is_some_and(Shutdown::is_triggered) {
            self.deadline = Instant::now().checked_add(self.drain);
            // A limit too large for the clock means "wait as long as it takes".
            return self.deadline.is_some_and(|d| Instant::now() >= d);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A consumer that never reads: every write blocks until `release` is dropped.
    struct Blocked(crossbeam_channel::Receiver<()>);

    impl Write for Blocked {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.0.recv();
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("{}", buf.len()),
            ))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn alert() -> Alert {
        Alert {
            id: "00".into(),
            rule: "auth.bruteforce".into(),
            severity: crate::alert::Severity::Medium,
            priority: "P2".into(),
            respond_within: "4h".into(),
            key_field: "src_ip".into(),
            key_value: "192.0.2.1".into(),
            count: 5,
            threshold: 5,
            window_start: 0,
            window_end: 0,
            first_seen: 0,
            last_seen: 0,
            summary: String::new(),
            evidence: vec![],
            action: vec![],
            unverified: false,
        }
    }

    #[test]
    fn everything_is_delivered_without_shutdown() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let mut sink = AlertSink::new(Box::new(file.reopen().expect("reopen")), AlertFormat::Json);
        for _ in 0..100 {
            sink.write(&[alert(), alert()]).expect("write");
        }
        let report = sink.close();
        assert_eq!((report.alerts, report.delivered), (200, 200));
        let text = std::fs::read_to_string(file.path()).expect("read");
        assert_eq!(text.lines().count(), 200);
    }

    /// Issue 10 item 14: a consumer that never reads no longer holds the stop: after shutdown,
    /// the sink gives up at the drain limit and counts what it could not deliver.
    #[test]
    fn a_blocked_consumer_costs_at_most_the_drain_limit_after_shutdown() {
        let (release, blocked) = crossbeam_channel::bounded::<()>(0);
        let shutdown = Shutdown::new();
        let mut sink = AlertSink::new(Box::new(Blocked(blocked)), AlertFormat::Text)
            .bound_drain(shutdown.clone(), Duration::ZERO);
        // One batch in the writer's hands, QUEUE_BATCHES in the queue, then the queue is full.
        for _ in 0..=QUEUE_BATCHES {
            sink.write(&[alert()]).expect("queued");
        }
        shutdown.trigger();
        // Without the limit this would wait for the consumer forever.
        sink.write(&[alert()]).expect("dropped, counted");
        let report = sink.close();
        assert!(report.gave_up);
        assert_eq!(report.alerts, QUEUE_BATCHES as u64 + 2);
        assert_eq!(report.undelivered(), report.alerts);
        drop(release);
    }
}
