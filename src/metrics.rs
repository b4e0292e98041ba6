//! Metrics for `--metrics ADDR`: Prometheus text (OpenMetrics) on `/metrics`, and `/healthz`.
//!
//! The counters are plain atomics that every stage updates directly (sources count what they
//! read and drop, the ordered stage what it parsed, classified and alerted), so scraping never
//! stops the pipeline. The endpoint is a deliberately tiny HTTP/1.1 responder: one GET, one
//! response, connection closed. Pulling in a web framework for two fixed paths would be most of
//! the binary.
//!
//! Labels are bounded on purpose: lines are counted per *input* (a file path or a listener
//! URL), never per syslog peer, because peers are attacker-chosen and one label value per
//! spoofed source address would be a memory leak with a scrape endpoint.
//!
//! ```
//! let metrics = secpipe::metrics::Metrics::new();
//! metrics.lines_read("auth.log", 3);
//! metrics.dropped("channel_full", 2);
//! let text = metrics.render();
//! assert!(text.contains(r#"secpipe_lines_read_total{input="auth.log"} 3"#));
//! assert!(text.contains(r#"secpipe_dropped_total{reason="channel_full"} 2"#));
//! ```

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::alert::Alert;
use crate::event::{EventTally, Kind};
use crate::shutdown::Shutdown;

type Labels = Vec<(&'static str, String)>;

/// Every counter secpipe exports.
pub struct Metrics {
    registry: Registry,
    lines_read: Family<Labels, Counter>,
    bytes_read: Family<Labels, Counter>,
    dropped: Family<Labels, Counter>,
    dropped_bytes: Family<Labels, Counter>,
    truncated: Counter,
    parsed: Counter,
    unparsed: Counter,
    forged_sources: Counter,
    events: Family<Labels, Counter>,
    alerts: Family<Labels, Counter>,
    event_time_lag: Gauge<f64, AtomicU64>,
    watermark_lag: Gauge<f64, AtomicU64>,
    state_keys: Family<Labels, Gauge>,
    archive_rows: Counter,
    archive_bytes: Gauge,
    connections: Gauge,
    checkpoints_saved: Counter,
    reloads: Family<Labels, Counter>,
    timestamps_not_believed: Family<Labels, Counter>,
    reorder_forced: Counter,
    reorder_held_events: Gauge,
    reorder_held_bytes: Gauge,
    sinks: SinkFamilies,
    /// The same drop counts, readable back for the end-of-run summary.
    drops_by_reason: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// The same dropped bytes, for the summary.
    dropped_bytes_by_reason: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
    total_bytes: std::sync::atomic::AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("secpipe"),
            lines_read: Family::default(),
            bytes_read: Family::default(),
            dropped: Family::default(),
            dropped_bytes: Family::default(),
            truncated: Counter::default(),
            parsed: Counter::default(),
            unparsed: Counter::default(),
            forged_sources: Counter::default(),
            events: Family::default(),
            alerts: Family::default(),
            event_time_lag: Gauge::default(),
            watermark_lag: Gauge::default(),
            state_keys: Family::default(),
            archive_rows: Counter::default(),
            archive_bytes: Gauge::default(),
            connections: Gauge::default(),
            checkpoints_saved: Counter::default(),
            reloads: Family::default(),
            timestamps_not_believed: Family::default(),
            reorder_forced: Counter::default(),
            reorder_held_events: Gauge::default(),
            reorder_held_bytes: Gauge::default(),
            sinks: SinkFamilies::default(),
            drops_by_reason: Default::default(),
            dropped_bytes_by_reason: Default::default(),
            total_bytes: Default::default(),
        };
        let r = &mut m.registry;
        r.register(
            "lines_read",
            "Lines (messages) read, per input: a file path or a listener URL",
            m.lines_read.clone(),
        );
        r.register("bytes_read", "Bytes read, per input", m.bytes_read.clone());
        r.register(
            "dropped",
            "Messages dropped, by reason (udp_receive_buffer: datagrams the kernel dropped; \
             incomplete_frame; connection_limit, address_limit, evicted, line_deadline, \
             framing_error, tls_handshake and metrics_connection_limit count connections)",
            m.dropped.clone(),
        );
        r.register(
            "dropped_bytes",
            "Bytes received and not kept, by reason (truncated: past --max-line; \
             incomplete_frame: a connection closed mid-message; framing_error: after a corrupt \
             octet count)",
            m.dropped_bytes.clone(),
        );
        r.register(
            "truncated",
            "Messages longer than --max-line, cut and kept",
            m.truncated.clone(),
        );
        r.register(
            "parsed",
            "Lines whose envelope was recognised",
            m.parsed.clone(),
        );
        r.register("unparsed", "Lines no envelope matched", m.unparsed.clone());
        r.register(
            "forged_source",
            "Journal entries not counted: their trusted fields (_COMM, _EXE, _UID) disagree \
             with the app they claim",
            m.forged_sources.clone(),
        );
        r.register("events", "Events, by kind", m.events.clone());
        r.register(
            "reloads",
            "SIGHUP reloads of rules and grammars, by result (done; failed: the previous ones \
             kept running)",
            m.reloads.clone(),
        );
        r.register("alerts", "Alerts, by rule and severity", m.alerts.clone());
        r.register(
            "event_time_lag_seconds",
            "Wall clock minus the newest event time seen (the detector's watermark trails \
             this by --lateness)",
            m.event_time_lag.clone(),
        );
        r.register(
            "archive_rows",
            "Event rows handed to the archive",
            m.archive_rows.clone(),
        );
        r.register(
            "archive_bytes",
            "Bytes of sealed archive files (known at close)",
            m.archive_bytes.clone(),
        );
        let uploads = &*crate::archive::store::UPLOAD_STATS;
        r.register(
            "archive_uploads",
            "Sealed archive files uploaded to a bucket archive",
            uploads.files.clone(),
        );
        r.register(
            "archive_upload_bytes",
            "Bytes of sealed archive files uploaded to a bucket archive",
            uploads.bytes.clone(),
        );
        r.register(
            "archive_upload_retries",
            "Bucket requests tried again after a transient failure (no answer, 5xx, 429)",
            uploads.retries.clone(),
        );
        r.register(
            "archive_upload_failures",
            "Bucket requests that still failed after retrying for five minutes (the run then \
             stops as on a full disk)",
            uploads.failures.clone(),
        );
        let bus = &*crate::bus::worker::BUS_GAUGES;
        r.register(
            "bus_consumer_lag",
            "Messages of a partition's stream its worker has not applied yet (secpipe worker)",
            bus.lag.clone(),
        );
        r.register(
            "bus_partitions_owned",
            "Partitions this worker holds the lease of (secpipe worker)",
            bus.owned.clone(),
        );
        r.register(
            "connections_open",
            "Open syslog TCP/TLS connections",
            m.connections.clone(),
        );
        r.register(
            "journal",
            "--journal: journalctl restarts (event=journalctl_restart) and entries without a \
             usable cursor (event=cursor_unusable)",
            crate::source::journal::JOURNAL_EVENTS.clone(),
        );
        r.register(
            "checkpoints_saved",
            "Times the --state checkpoints were written",
            m.checkpoints_saved.clone(),
        );
        r.register(
            "watermark_lag_seconds",
            "Wall clock minus the detector's watermark: how far behind real time alerts are \
             decided (--lateness while input is idle; 0 until the first event)",
            m.watermark_lag.clone(),
        );
        r.register(
            "state_keys",
            "Keys the detector holds, per rule (capped per rule; see secpipe.state_overflow)",
            m.state_keys.clone(),
        );
        r.register(
            "timestamps_not_believed",
            "Timestamps not believed, by reason: future (over a day after receive time), \
             out_of_range (e.g. year 9999 or 0001), ahead_of_stream (far ahead of the \
             stream's own progress); the events are kept at another time",
            m.timestamps_not_believed.clone(),
        );
        r.register(
            "reorder_forced",
            "Events processed before the watermark passed them because the reorder buffer \
             was full (--reorder-buffer-events, --reorder-buffer-mib)",
            m.reorder_forced.clone(),
        );
        r.register(
            "reorder_held_events",
            "Events waiting in the reorder buffer",
            m.reorder_held_events.clone(),
        );
        r.register(
            "reorder_held_bytes",
            "Bytes (estimated) of the events waiting in the reorder buffer",
            m.reorder_held_bytes.clone(),
        );
        m.sinks.register(r);
        m
    }

    /// The counters of one alert output, labelled with its name (outputs are configured, so
    /// the label values are bounded).
    ///
    /// ```
    /// let metrics = secpipe::metrics::Metrics::new();
    /// let sink = metrics.sink("syslog+tcp://siem:6514");
    /// sink.delivered(2, std::time::Duration::from_millis(3));
    /// sink.retried();
    /// let text = metrics.render();
    /// assert!(text.contains(r#"secpipe_sink_delivered_total{sink="syslog+tcp://siem:6514"} 2"#), "{text}");
    /// assert!(text.contains(r#"secpipe_sink_retries_total{sink="syslog+tcp://siem:6514"} 1"#), "{text}");
    /// ```
    pub fn sink(&self, name: &str) -> SinkMetrics {
        self.sinks.get(name)
    }

    /// Event-time judgments from detection (totals so far) and the reorder buffer's fill.
    ///
    /// ```
    /// let metrics = secpipe::metrics::Metrics::new();
    /// metrics.observe_time((10, 4096), 7, 2);
    /// metrics.observe_time((10, 4096), 9, 2);
    /// let text = metrics.render();
    /// assert!(text.contains("secpipe_reorder_forced_total 9"), "{text}");
    /// assert!(text.contains(r#"secpipe_timestamps_not_believed_total{reason="ahead_of_stream"} 2"#), "{text}");
    /// assert!(text.contains("secpipe_reorder_held_bytes 4096"), "{text}");
    /// ```
    pub fn observe_time(&self, held: (usize, usize), forced_total: u64, ahead_total: u64) {
        self.reorder_forced
            .inc_by(forced_total.saturating_sub(self.reorder_forced.get()));
        let ahead = self
            .timestamps_not_believed
            .get_or_create(&vec![("reason", "ahead_of_stream".to_string())]);
        ahead.inc_by(ahead_total.saturating_sub(ahead.get()));
        self.reorder_held_events
            .set(i64::try_from(held.0).unwrap_or(i64::MAX));
        self.reorder_held_bytes
            .set(i64::try_from(held.1).unwrap_or(i64::MAX));
    }

    pub fn lines_read(&self, input: &str, lines: u64) {
        self.lines_read
            .get_or_create(&vec![("input", input.to_string())])
            .inc_by(lines);
    }

    pub fn bytes_read(&self, input: &str, bytes: u64) {
        self.bytes_read
            .get_or_create(&vec![("input", input.to_string())])
            .inc_by(bytes);
        self.total_bytes
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bytes read from an input that reports its own total to the summary (stdin).
    pub fn input_bytes_read(&self, input: &str, bytes: u64) {
        self.bytes_read
            .get_or_create(&vec![("input", input.to_string())])
            .inc_by(bytes);
    }

    /// Total bytes read by the followers and listeners (for the summary).
    pub fn total_bytes_read(&self) -> u64 {
        self.total_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn dropped(&self, reason: &'static str, n: u64) {
        self.dropped
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc_by(n);
        if let Ok(mut drops) = self.drops_by_reason.lock() {
            *drops.entry(reason).or_insert(0) += n;
        }
    }

    /// Bytes received from an input and not kept (the rest of an oversized message, a
    /// message the sender never finished), by reason.
    pub fn dropped_bytes(&self, reason: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        self.dropped_bytes
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc_by(n);
        if let Ok(mut drops) = self.dropped_bytes_by_reason.lock() {
            *drops.entry(reason).or_insert(0) += n;
        }
    }

    /// Summary lines for stderr at exit, empty when nothing was dropped.
    ///
    /// ```
    /// let metrics = secpipe::metrics::Metrics::new();
    /// assert_eq!(metrics.render_drops(), "");
    /// metrics.dropped("connection_limit", 1);
    /// assert_eq!(metrics.render_drops(), "secpipe: dropped: connection_limit 1\n");
    /// metrics.dropped_bytes("incomplete_frame", 12);
    /// assert!(metrics.render_drops().ends_with("secpipe: dropped bytes: incomplete_frame 12\n"));
    /// ```
    pub fn render_drops(&self) -> String {
        let mut out = String::new();
        for (what, map) in [
            ("dropped", &self.drops_by_reason),
            ("dropped bytes", &self.dropped_bytes_by_reason),
        ] {
            let Ok(drops) = map.lock() else {
                continue;
            };
            if drops.is_empty() {
                continue;
            }
            let parts: Vec<String> = drops.iter().map(|(r, n)| format!("{r} {n}")).collect();
            out.push_str(&format!("secpipe: {what}: {}\n", parts.join(", ")));
        }
        out
    }

    pub fn truncated(&self, n: u64) {
        self.truncated.inc_by(n);
    }

    pub fn connection_opened(&self) {
        self.connections.inc();
    }

    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    pub fn checkpoint_saved(&self) {
        self.checkpoints_saved.inc();
    }

    /// A `SIGHUP` reload finished: `result` is `done` or `failed`.
    ///
    /// ```
    /// let m = secpipe::metrics::Metrics::new();
    /// m.reloaded("failed");
    /// assert!(m.render().contains(r#"secpipe_reloads_total{result="failed"} 1"#));
    /// ```
    pub fn reloaded(&self, result: &'static str) {
        self.reloads
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
    }

    pub fn archive_rows(&self, rows: u64) {
        self.archive_rows.inc_by(rows);
    }

    pub fn archive_bytes(&self, bytes: u64) {
        self.archive_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Count one parsed batch: parsed/unparsed, events by kind, timestamps not believed
    /// (`future`, `out_of_range`), event-time lag.
    pub fn observe_batch(&self, tally: &EventTally, not_believed: [(&str, u64); 2], now: i64) {
        let by_kind = tally.by_kind;
        let newest = tally.newest_dated_ts;
        self.forged_sources.inc_by(tally.forged_sources);
        for kind in Kind::ALL {
            let n = by_kind[kind as usize];
            if n == 0 {
                continue;
            }
            if kind == Kind::Unparsed {
                self.unparsed.inc_by(n);
            } else {
                self.parsed.inc_by(n);
            }
            self.events
                .get_or_create(&vec![("kind", kind.as_str().to_string())])
                .inc_by(n);
        }
        for (reason, n) in not_believed {
            if n > 0 {
                self.timestamps_not_believed
                    .get_or_create(&vec![("reason", reason.to_string())])
                    .inc_by(n);
            }
        }
        if newest != i64::MIN {
            self.event_time_lag.set((now - newest) as f64 / 1_000_000.0);
        }
    }

    /// The detector's progress, from the ordered stage (per batch or idle tick, not per
    /// event): its watermark (µs, `i64::MIN` before the first event) against the wall clock
    /// `now`, and the keys each rule holds.
    ///
    /// ```
    /// let metrics = secpipe::metrics::Metrics::new();
    /// metrics.observe_detector(12_500_000, 10_000_000, &[("auth.bruteforce".to_string(), 3)]);
    /// let text = metrics.render();
    /// assert!(text.contains("secpipe_watermark_lag_seconds 2.5"), "{text}");
    /// assert!(text.contains(r#"secpipe_state_keys{rule="auth.bruteforce"} 3"#), "{text}");
    /// ```
    pub fn observe_detector(&self, now: i64, watermark: i64, keys: &[(String, usize)]) {
        if watermark != i64::MIN {
            self.watermark_lag
                .set(now.saturating_sub(watermark) as f64 / 1_000_000.0);
        }
        for (rule, n) in keys {
            self.state_keys
                .get_or_create(&vec![("rule", rule.clone())])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// Rules a reload removed: their `state_keys` gauges go, rather than show the last count
    /// of a rule that no longer runs.
    ///
    /// ```
    /// let metrics = secpipe::metrics::Metrics::new();
    /// metrics.observe_detector(1, 1, &[("auth.bruteforce".to_string(), 3)]);
    /// metrics.forget_rules(&["auth.bruteforce".to_string()]);
    /// assert!(!metrics.render().contains("auth.bruteforce"));
    /// ```
    pub fn forget_rules(&self, rules: &[String]) {
        for rule in rules {
            self.state_keys.remove(&vec![("rule", rule.clone())]);
        }
    }

    pub fn observe_alerts(&self, alerts: &[Alert]) {
        for a in alerts {
            self.alerts
                .get_or_create(&vec![
                    ("rule", a.rule.clone()),
                    ("severity", a.severity.as_str().to_string()),
                ])
                .inc();
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Bind the metrics endpoint now (so a bad address is a usage error before any input is read).
pub fn bind(addr: &str) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A request head bigger than this is not a scrape.
const MAX_REQUEST: usize = 8 * 1024;

/// Scrapes answered at once; more connections are closed at once and counted
/// (`metrics_connection_limit`), so the endpoint cannot be made to hold every descriptor.
pub const MAX_SCRAPES: usize = 32;

/// A scrape that has not been answered by then is dropped (a client sending its request a byte
/// at a time must not hold one of the [`MAX_SCRAPES`] slots).
const SCRAPE_DEADLINE: Duration = Duration::from_secs(5);

/// After a failed accept (EMFILE when descriptors run out, and the like), wait this long before
/// the next: the failure repeats at once, and retrying at once spins a core at 100%.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serve `/metrics` and `/healthz` until `shutdown` and the runtime ends. Call inside the
/// runtime that owns the listener.
pub async fn serve(listener: std::net::TcpListener, metrics: Arc<Metrics>, shutdown: Shutdown) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            crate::report::warn(&format!("--metrics: {e}"));
            return;
        }
    };
    let scrapes = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPES));
    loop {
        // No shutdown branch here: a scrape during the drain should still work, and /healthz
        // says 503 then. The socket closes when the runtime ends, after the drain.
        let Ok((stream, _peer)) = listener.accept().await else {
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            continue;
        };
        let Ok(permit) = scrapes.clone().try_acquire_owned() else {
            // Dropping the stream closes it: the descriptor is given back at once.
            metrics.dropped("metrics_connection_limit", 1);
            continue;
        };
        let metrics = metrics.clone();
        let healthy = !shutdown.is_triggered();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(SCRAPE_DEADLINE, respond(stream, &metrics, healthy)).await;
            drop(permit);
        });
    }
}

async fn respond(
    mut stream: tokio::net::TcpStream,
    metrics: &Metrics,
    healthy: bool,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_REQUEST {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let first_line = head.split(|&b| b == b'\r').next().unwrap_or(&[]);
    let mut parts = first_line.split(|&b| b == b' ');
    let method = parts.next().unwrap_or(&[]);
    let path = parts.next().unwrap_or(&[]);
    // Ignore a query string: `/metrics?x=y` is still the metrics.
    let path = path.split(|&b| b == b'?').next().unwrap_or(&[]);
    let (status, content_type, body) = match (method, path) {
        (b"GET", b"/metrics") => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        (b"GET", b"/healthz") if healthy => ("200 OK", "text/plain", "ok\n".to_string()),
        (b"GET", b"/healthz") => (
            "503 Service Unavailable",
            "text/plain",
            "shutting down\n".to_string(),
        ),
        (b"GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_string(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 9 minutes: a webhook on loopback to a receiver back from an outage.
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

/// The per-output families.
struct SinkFamilies {
    alerts: Family<Labels, Counter>,
    delivered: Family<Labels, Counter>,
    dropped: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    depth: Family<Labels, Gauge>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Default for SinkFamilies {
    fn default() -> SinkFamilies {
        SinkFamilies {
            alerts: Family::default(),
            delivered: Family::default(),
            dropped: Family::default(),
            retries: Family::default(),
            failures: Family::default(),
            depth: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl SinkFamilies {
    fn register(&self, r: &mut Registry) {
        r.register(
            "sink_alerts",
            "Alerts given to each alert output (after its severity floor)",
            self.alerts.clone(),
        );
        r.register(
            "sink_delivered",
            "Alerts each output's receiver took",
            self.delivered.clone(),
        );
        r.register(
            "sink_dropped",
            "Alerts dropped at an output's full queue or spool (see secpipe.delivery_backlog)",
            self.dropped.clone(),
        );
        r.register(
            "sink_retries",
            "Delivery attempts repeated after a failure (a refused connection, a 5xx, a 429)",
            self.retries.clone(),
        );
        r.register(
            "sink_failures",
            "Delivery attempts that failed, retried or not",
            self.failures.clone(),
        );
        r.register(
            "sink_queue_depth",
            "Alerts waiting for an output: in its queue, or in its spool in --state",
            self.depth.clone(),
        );
        r.register(
            "sink_delivery_seconds",
            "From an alert handed to an output to its receiver taking it",
            self.latency.clone(),
        );
    }

    fn get(&self, name: &str) -> SinkMetrics {
        let labels = vec![("sink", name.to_string())];
        SinkMetrics {
            alerts: self.alerts.get_or_create(&labels).clone(),
            delivered: self.delivered.get_or_create(&labels).clone(),
            dropped: self.dropped.get_or_create(&labels).clone(),
            retries: self.retries.get_or_create(&labels).clone(),
            failures: self.failures.get_or_create(&labels).clone(),
            depth: self.depth.get_or_create(&labels).clone(),
            latency: self.latency.get_or_create(&labels).clone(),
        }
    }
}

/// One alert output's counters; clones share them (the sink and its transport's thread).
#[derive(Clone)]
pub struct SinkMetrics {
    alerts: Counter,
    delivered: Counter,
    dropped: Counter,
    retries: Counter,
    failures: Counter,
    depth: Gauge,
    latency: Histogram,
}

impl Default for SinkMetrics {
    /// Counters registered nowhere (a sink built without `--metrics`, tests).
    fn default() -> SinkMetrics {
        SinkMetrics {
            alerts: Counter::default(),
            delivered: Counter::default(),
            dropped: Counter::default(),
            retries: Counter::default(),
            failures: Counter::default(),
            depth: Gauge::default(),
            latency: latency_histogram(),
        }
    }
}

impl SinkMetrics {
    pub fn given(&self, n: u64) {
        self.alerts.inc_by(n);
    }
    /// `n` alerts taken by the receiver, the oldest `waited` after it was handed over.
    pub fn delivered(&self, n: u64, waited: Duration) {
        self.delivered.inc_by(n);
        if n > 0 {
            self.latency.observe(waited.as_secs_f64());
        }
    }
    pub fn dropped(&self, n: u64) {
        self.dropped.inc_by(n);
    }
    /// An attempt that will be made again.
    pub fn retried(&self) {
        self.retries.inc();
        self.failures.inc();
    }
    /// An attempt that failed for good.
    pub fn failed(&self) {
        self.failures.inc();
    }
    pub fn set_depth(&self, waiting: u64) {
        self.depth.set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }
}
