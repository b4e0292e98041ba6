//! A sink's own thread and bounded queue: the ordered stage encodes a batch of alerts and hands
//! it over; the [`Transport`] (stdout, a file, later a network peer) writes it on the sink's
//! thread, so a transport that blocks holds up its own thread, never detection directly.
//!
//! What happens when the queue is full is the sink's [`WhenFull`] policy. The alert output
//! (stdout, `--alerts FILE`) *waits*: the thread writes and flushes each batch, so a person (or
//! `tail -f`) sees an alert seconds after the attack, not when a buffer fills, and while the
//! run goes on a slow consumer slows detection (the queue is full, the stage waits) instead of
//! growing memory or losing alerts. A sink that can block for long (a network peer) *drops*: a
//! full queue (16 batches) costs that sink the batch, counted in its [`DrainReport`], and never
//! stalls detection or the other sinks.
//!
//! Once shutdown is triggered (SIGTERM, SIGINT, or a failed stage), waiting for the consumer is
//! bounded by the *drain limit* (`--drain-timeout`, default [`DEFAULT_DRAIN`]), counted from
//! the moment the sink first sees the trigger: `secpipe … | sleep 30` under systemd must not
//! hold the stop for 90 s. Past it, batches that cannot be queued are dropped and
//! [`AlertSink::close`] stops waiting for the thread (a write blocked in the kernel cannot be
//! cancelled; the thread ends with the process). Nothing is lost silently: `close` reports how
//! many alerts were not delivered, and `run` says so on stderr. Without a shutdown trigger (end
//! of input) the drain waits as long as the consumer takes: `secpipe old.log | less` must see
//! every alert.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, SendTimeoutError, Sender, TrySendError, bounded};

use super::encode::Encoding;
pub use super::retry::DrainClock;
use super::retry::is_at_drain_limit;
use super::{AlertSink, DrainReport};
use crate::alert::Alert;
use crate::metrics::SinkMetrics;
use crate::shutdown::Shutdown;

/// How long, after shutdown is triggered, the sink waits for a blocked consumer by default.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(5);

/// Encoded batches waiting for the sink's thread.
const QUEUE_BATCHES: usize = 16;

/// How often a waiting sink looks at the shutdown flag and its deadline.
const POLL: Duration = Duration::from_millis(50);

/// Where a sink's thread delivers encoded alerts. It may block: it runs on its own thread.
pub trait Transport: Send + 'static {
    /// One encoded alert, newline included.
    fn send(&mut self, line: &[u8]) -> io::Result<()>;
    /// After each batch: make what was sent visible (flush a buffer, end a request).
    fn flush(&mut self) -> io::Result<()>;

    /// Whether an error of [`Transport::send`] ends the sink (a file on a full disk) or loses
    /// only that alert, counted, and the next is tried (a datagram the network refused).
    fn stops_on_error(&self) -> bool {
        true
    }

    /// Whether an alert counts as delivered only once [`Transport::flush`] of its batch
    /// succeeds (a webhook that posts the batch then), rather than when `send` takes it.
    fn delivers_on_flush(&self) -> bool {
        false
    }

    /// How often [`Transport::tick`] runs on the sink's thread, alerts or not (`None`: never).
    fn tick_every(&self) -> Option<Duration> {
        None
    }

    /// Timed work of the transport: re-send active alerts, send a digest that is due. An error
    /// ends the sink, as one of `flush` does.
    fn tick(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// The sink's counters, given once before the first alert: a transport that retries
    /// counts its retries and failures there.
    fn observe(&mut self, _metrics: SinkMetrics) {}
}

impl Transport for Box<dyn Transport> {
    fn send(&mut self, line: &[u8]) -> io::Result<()> {
        (**self).send(line)
    }
    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
    fn stops_on_error(&self) -> bool {
        (**self).stops_on_error()
    }
    fn delivers_on_flush(&self) -> bool {
        (**self).delivers_on_flush()
    }
    fn tick_every(&self) -> Option<Duration> {
        (**self).tick_every()
    }
    fn tick(&mut self) -> io::Result<()> {
        (**self).tick()
    }
    fn observe(&mut self, metrics: SinkMetrics) {
        (**self).observe(metrics)
    }
}

/// Any writer (stdout, a file) is a transport.
pub struct WriteTransport(pub Box<dyn Write + Send>);

impl Transport for WriteTransport {
    fn send(&mut self, line: &[u8]) -> io::Result<()> {
        self.0.write_all(line)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Wait for a sink's thread to end, or for the drain limit: whether it gave up. A thread that
/// is given up on is left to end with the process (a write blocked in the kernel cannot be
/// cancelled).
pub(super) fn join_within(
    writer: Option<std::thread::JoinHandle<()>>,
    drain: &mut DrainClock,
) -> bool {
    let Some(writer) = writer else {
        return false;
    };
    while !writer.is_finished() {
        if drain.passed() {
            return true;
        }
        std::thread::sleep(POLL);
    }
    let _ = writer.join();
    false
}

/// What a sink does with alerts when its queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for the transport (backpressure): for the alert output, which must miss nothing.
    Wait,
    /// Drop the batch and count it: for transports that can block for long (the network).
    Drop,
}

/// Encoded alerts, one line each.
#[derive(Default)]
struct Batch {
    text: String,
    /// When it was handed over, for the delivery latency.
    queued_at: Option<Instant>,
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
    /// Alerts the receiver refused (a datagram, a batch answered 400): not sent again.
    refused: AtomicU64,
    /// The drain limit stopped a delivery (not the receiver's "no"): reported as such.
    stopped_at_drain_limit: std::sync::atomic::AtomicBool,
    /// The first write error; the writer stops after it.
    error: Mutex<Option<io::Error>>,
}

/// A sink with its own thread; see the module docs.
///
/// ```
/// use secpipe::sink::AlertSink;
/// use secpipe::sink::encode::Encoding;
/// use secpipe::sink::queue::{QueuedSink, WhenFull, WriteTransport};
/// let out = tempfile::NamedTempFile::new().unwrap();
/// let transport = WriteTransport(Box::new(out.reopen().unwrap()));
/// let mut sink = QueuedSink::start("out".into(), transport, Encoding::Json, WhenFull::Wait, Default::default());
/// sink.write(&[]).unwrap();
/// let report = Box::new(sink).close();
/// assert_eq!((report.alerts, report.undelivered(), report.gave_up), (0, 0, false));
/// ```
pub struct QueuedSink {
    name: String,
    encoding: Encoding,
    when_full: WhenFull,
    queue: Option<Sender<Batch>>,
    writer: Option<std::thread::JoinHandle<()>>,
    state: Arc<WriterState>,
    /// Alerts given to `write`.
    alerts: u64,
    /// Alerts dropped at a full queue ([`WhenFull::Drop`]).
    dropped: u64,
    /// Bounds the wait for the consumer.
    drain: DrainClock,
    metrics: SinkMetrics,
}

impl QueuedSink {
    /// Start the sink's thread, delivering to `transport`. Without [`QueuedSink::bound_drain`],
    /// closing waits for the transport as long as it takes.
    pub fn start(
        name: String,
        transport: impl Transport,
        encoding: Encoding,
        when_full: WhenFull,
        metrics: SinkMetrics,
    ) -> QueuedSink {
        let (tx, rx) = bounded::<Batch>(QUEUE_BATCHES);
        let state = Arc::new(WriterState::default());
        let writer_state = state.clone();
        let mut out = transport;
        out.observe(metrics.clone());
        let writer_metrics = metrics.clone();
        let writer = std::thread::Builder::new()
            .name(format!("sink {name}"))
            .spawn(move || {
                let fail = |e: io::Error| {
                    if let Ok(mut slot) = writer_state.error.lock() {
                        *slot = Some(e);
                    }
                };
                let tick_every = out.tick_every();
                let mut next_tick = tick_every.and_then(|every| Instant::now().checked_add(every));
                loop {
                    let received = match next_tick {
                        Some(at) => rx.recv_deadline(at),
                        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    };
                    let batch = match received {
                        Ok(batch) => batch,
                        Err(RecvTimeoutError::Timeout) => {
                            if let Err(e) = out.tick() {
                                return fail(e);
                            }
                            next_tick =
                                tick_every.and_then(|every| Instant::now().checked_add(every));
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => return,
                    };
                    let on_flush = out.delivers_on_flush();
                    let before = writer_state.delivered.load(Ordering::Relaxed);
                    let mut taken = 0;
                    let mut refusal = false;
                    let mut at_limit = false;
                    // Line by line, so that `delivered` counts exactly the alerts the output
                    // took when a consumer stops reading in the middle of a batch.
                    let written = batch.lines().try_for_each(|line| {
                        match out.send(line) {
                            Ok(()) if on_flush => {
                                taken += 1;
                                Ok(())
                            }
                            Ok(()) => {
                                writer_state.delivered.fetch_add(1, Ordering::Relaxed);
                                Ok(())
                            }
                            Err(e) if is_at_drain_limit(&e) => {
                                at_limit = true;
                                Ok(())
                            }
                            // This alert is lost (counted as undelivered); the next is tried.
                            Err(_) if !out.stops_on_error() => {
                                refusal = true;
                                Ok(())
                            }
                            Err(e) => Err(e),
                        }
                    });
                    match written.and_then(|()| out.flush()) {
                        Ok(()) => {
                            let delivered =
                                writer_state.delivered.fetch_add(taken, Ordering::Relaxed) + taken;
                            let waited = batch.queued_at.map(|at| at.elapsed()).unwrap_or_default();
                            writer_metrics.delivered(delivered - before, waited);
                        }
                        Err(e) if is_at_drain_limit(&e) => {
                            at_limit = true;
                            writer_metrics.failed();
                        }
                        // This batch is lost (counted as undelivered); the next is tried.
                        Err(_) if !out.stops_on_error() => {
                            refusal = true;
                            writer_metrics.failed();
                        }
                        Err(e) => {
                            writer_metrics.failed();
                            return fail(e);
                        }
                    }
                    if at_limit {
                        writer_state
                            .stopped_at_drain_limit
                            .store(true, Ordering::Relaxed);
                    } else if refusal {
                        let took = writer_state.delivered.load(Ordering::Relaxed) - before;
                        let lost = (batch.line_ends.len() as u64).saturating_sub(took);
                        writer_state.refused.fetch_add(lost, Ordering::Relaxed);
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
        QueuedSink {
            name,
            encoding,
            when_full,
            queue,
            writer,
            state,
            alerts: 0,
            dropped: 0,
            drain: DrainClock::default(),
            metrics,
        }
    }

    /// Once `shutdown` is triggered, wait at most `drain` for the consumer.
    pub fn bound_drain(mut self, shutdown: Shutdown, drain: Duration) -> QueuedSink {
        self.drain = DrainClock::new(shutdown, drain);
        self
    }

    /// The writer's first error (taken once).
    fn take_error(&mut self) -> io::Result<()> {
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
}

impl AlertSink for QueuedSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }

    fn in_flight(&self) -> u64 {
        let delivered = self.state.delivered.load(Ordering::Relaxed);
        self.alerts.saturating_sub(delivered + self.dropped)
    }

    /// Queue `alerts`. When the queue is full: wait ([`WhenFull::Wait`], unless the drain limit
    /// has passed; then they count as undelivered) or drop and count them ([`WhenFull::Drop`]).
    /// Returns the transport's first error, if any.
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut batch = Batch {
            queued_at: Some(Instant::now()),
            ..Batch::default()
        };
        for alert in alerts {
            self.encoding.encode(alert, &mut batch.text);
            batch.line_ends.push(batch.text.len());
        }
        self.alerts += alerts.len() as u64;
        self.metrics.given(alerts.len() as u64);
        while let Some(queue) = &self.queue {
            let sent = match self.when_full {
                WhenFull::Wait => queue.send_timeout(batch, POLL),
                WhenFull::Drop => queue.try_send(batch).map_err(|e| match e {
                    TrySendError::Full(back) => SendTimeoutError::Timeout(back),
                    TrySendError::Disconnected(back) => SendTimeoutError::Disconnected(back),
                }),
            };
            batch = match sent {
                Ok(()) => break,
                Err(SendTimeoutError::Timeout(back)) => {
                    if self.when_full == WhenFull::Drop {
                        self.dropped += back.line_ends.len() as u64;
                        self.metrics.dropped(back.line_ends.len() as u64);
                        break;
                    }
                    if self.drain.passed() {
                        break;
                    }
                    back
                }
                Err(SendTimeoutError::Disconnected(_)) => {
                    // The thread stopped at an error, which `take_error` returns below.
                    self.queue = None;
                    break;
                }
            };
        }
        let delivered = self.state.delivered.load(Ordering::Relaxed);
        self.metrics
            .set_depth(self.alerts.saturating_sub(delivered + self.dropped));
        self.take_error()
    }

    /// Stop taking alerts, let the thread finish (bounded by the drain limit once shutdown is
    /// triggered) and report what was delivered.
    fn close(mut self: Box<Self>) -> DrainReport {
        // Closing the queue ends the thread's loop once it has delivered what is queued.
        self.queue = None;
        if self.when_full == WhenFull::Drop {
            // A sink that may block (a server that is down) is waited for at most the drain
            // limit even at the end of input: `secpipe old.log` must end.
            self.drain.start_now();
        }
        let gave_up = join_within(self.writer.take(), &mut self.drain);
        DrainReport {
            alerts: self.alerts,
            delivered: self.state.delivered.load(Ordering::Relaxed),
            dropped: self.dropped,
            gave_up: gave_up || self.state.stopped_at_drain_limit.load(Ordering::Relaxed),
            spooled: 0,
            refused: self.state.refused.load(Ordering::Relaxed),
            failed: match self.take_error() {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Some(e.to_string()),
                _ => None,
            },
        }
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
        crate::sink::tests::alert(0)
    }

    #[test]
    fn everything_is_delivered_without_shutdown() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let transport = WriteTransport(Box::new(file.reopen().expect("reopen")));
        let mut sink = QueuedSink::start(
            "file".into(),
            transport,
            Encoding::Json,
            WhenFull::Wait,
            SinkMetrics::default(),
        );
        for _ in 0..100 {
            sink.write(&[alert(), alert()]).expect("write");
        }
        let report = Box::new(sink).close();
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
        let transport = WriteTransport(Box::new(Blocked(blocked)));
        let mut sink = QueuedSink::start(
            "blocked".into(),
            transport,
            Encoding::Text,
            WhenFull::Wait,
            SinkMetrics::default(),
        )
        .bound_drain(shutdown.clone(), Duration::ZERO);
        // One batch in the writer's hands, QUEUE_BATCHES in the queue, then the queue is full.
        for _ in 0..=QUEUE_BATCHES {
            sink.write(&[alert()]).expect("queued");
        }
        shutdown.trigger();
        // Without the limit this would wait for the consumer forever.
        sink.write(&[alert()]).expect("dropped, counted");
        let report = Box::new(sink).close();
        assert!(report.gave_up);
        assert_eq!(report.alerts, QUEUE_BATCHES as u64 + 2);
        assert_eq!(report.undelivered(), report.alerts);
        drop(release);
    }

    /// A transport that blocks (a network peer that stopped answering) costs a dropping sink
    /// its alerts, counted, and never makes `write` wait: detection goes on.
    #[test]
    fn a_dropping_sink_never_waits_for_a_blocked_transport() {
        let (release, blocked) = crossbeam_channel::bounded::<()>(0);
        let transport = WriteTransport(Box::new(Blocked(blocked)));
        let mut sink = QueuedSink::start(
            "peer".into(),
            transport,
            Encoding::Json,
            WhenFull::Drop,
            SinkMetrics::default(),
        );
        // No shutdown, no drain limit: a waiting sink would block here for ever.
        for _ in 0..1000 {
            sink.write(&[alert(), alert()]).expect("queued or dropped");
        }
        let dropped = sink.dropped;
        assert!(
            dropped >= 2000 - 2 * (QUEUE_BATCHES as u64 + 1),
            "{dropped}"
        );
        drop(release);
        let report = Box::new(sink).close();
        assert_eq!(report.alerts, 2000);
        assert_eq!(report.dropped, dropped);
        assert!(report.undelivered() >= dropped);
    }

    /// Counts what it is given; flush fails when told to; each tick is reported.
    struct Batching {
        fail_flush: bool,
        ticks: crossbeam_channel::Sender<()>,
    }

    impl Transport for Batching {
        fn send(&mut self, _line: &[u8]) -> io::Result<()> {
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            if self.fail_flush {
                return Err(io::Error::other("the peer refused the batch"));
            }
            Ok(())
        }
        fn delivers_on_flush(&self) -> bool {
            true
        }
        fn tick_every(&self) -> Option<Duration> {
            Some(Duration::from_millis(1))
        }
        fn tick(&mut self) -> io::Result<()> {
            let _ = self.ticks.try_send(());
            Ok(())
        }
    }

    /// A transport that delivers on flush: a batch whose flush failed is not counted as
    /// delivered, though every `send` took its lines.
    #[test]
    fn a_batch_counts_as_delivered_only_when_its_flush_succeeds() {
        for (fail_flush, delivered) in [(false, 3), (true, 0)] {
            let (ticks, _seen) = bounded(1);
            let transport = Batching { fail_flush, ticks };
            let mut sink = QueuedSink::start(
                "batch".into(),
                transport,
                Encoding::Json,
                WhenFull::Wait,
                SinkMetrics::default(),
            );
            sink.write(&[alert(), alert(), alert()]).expect("queued");
            let report = Box::new(sink).close();
            assert_eq!((report.alerts, report.delivered), (3, delivered));
            assert_eq!(report.failed.is_some(), fail_flush);
        }
    }

    /// Gives up on every batch at the drain limit, as a webhook does when the stop comes while
    /// its receiver is down.
    struct StoppedAtDrainLimit;

    impl Transport for StoppedAtDrainLimit {
        fn send(&mut self, _line: &[u8]) -> io::Result<()> {
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            let gave_up = crate::sink::retry::GaveUp {
                error: "connection refused".into(),
                retries: 4,
                at_drain_limit: true,
            };
            Err(gave_up.into_io_error(gave_up.to_string()))
        }
        fn stops_on_error(&self) -> bool {
            false
        }
        fn delivers_on_flush(&self) -> bool {
            true
        }
    }

    /// Alerts the drain limit stopped are not reported as refused by the receiver (which
    /// never said no): the summary says the drain limit.
    #[test]
    fn alerts_stopped_at_the_drain_limit_are_not_counted_as_refused() {
        let mut sink = QueuedSink::start(
            "webhook".into(),
            StoppedAtDrainLimit,
            Encoding::Json,
            WhenFull::Drop,
            SinkMetrics::default(),
        );
        sink.write(&[alert(), alert()]).expect("queued");
        let report = Box::new(sink).close();
        assert_eq!(
            (report.undelivered(), report.refused, report.gave_up),
            (2, 0, true),
            "{report:?}"
        );
    }

    /// The transport's timed work runs while no alerts arrive (an idle sink still re-sends
    /// and sends its digests).
    #[test]
    fn an_idle_sink_ticks() {
        let (ticks, seen) = bounded(1);
        let transport = Batching {
            fail_flush: false,
            ticks,
        };
        let sink = QueuedSink::start(
            "idle".into(),
            transport,
            Encoding::Json,
            WhenFull::Wait,
            SinkMetrics::default(),
        );
        seen.recv().expect("a tick without any alert");
        let report = Box::new(sink).close();
        assert_eq!(report.alerts, 0);
    }
}
