//! `--alerts http(s)://…`: every alert POSTed as its JSON (DESIGN §5, the `--alerts` JSON line
//! without the newline) to a webhook receiver; with `batch`, up to `max_batch` alerts per
//! request as a JSON array (and no more than [`MAX_BATCH_BYTES`] of body, unless one alert is
//! larger by itself).
//!
//! **Headers.** `Content-Type: application/json`; `Idempotency-Key`: the alert's id (one alert
//! per request) or, for a batch, `batch-` and the hex SHA-256 of its ids joined by `,` (the
//! same batch sent again carries the same key; the ids themselves are in the body, for a
//! receiver that deduplicates per alert). With `secret_file`, `X-Secpipe-Signature:
//! sha256=<hex HMAC-SHA256 over the exact body bytes>` (key: the file's bytes, one trailing
//! newline dropped). Configured `headers` (literal) and `header_files` (value read from a file,
//! e.g. `Authorization`) go with every request. Nothing else from an alert goes into a header
//! ([`super::http`]).
//!
//! **Delivery.** The sink has its own thread behind a queue that drops and counts when full, so
//! a slow or dead receiver never stalls detection or the other sinks. Each request is retried
//! per [`super::retry`] (connection errors, timeouts, 408/425/429/5xx but 501, `Retry-After`),
//! without limit while the run goes on and for at most `--drain-timeout` once it stops. An
//! alert counts as delivered when the receiver answered 2xx to its request; one the receiver
//! refused for good (another 4xx, a redirect) or that was given up on at the drain limit is
//! counted as not delivered (in a batch, the whole batch), reported on stderr, and the sink goes
//! on with the next.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use ring::hmac;
use serde::Deserialize;

use super::encode::Encoding;
use super::http::{self, HttpClient};
use super::queue::Transport;
use super::retry::{DrainClock, RetryOptions, RetryPolicy};

/// Alerts per request with `batch = true` unless `max_batch` says otherwise.
pub const DEFAULT_MAX_BATCH: usize = 100;
/// The most alerts one request may carry.
pub const MAX_BATCH_LIMIT: usize = 1000;
/// A batch request is sent once its body would pass this many bytes, whatever `max_batch`
/// says: an alert with ten 64 KiB evidence lines is large, and a thousand of them must not
/// be held in memory for one request.
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// The optional settings of a webhook sink (`webhook = { … }` in `secpipe.toml`).
///
/// ```
/// use secpipe::sink::webhook::WebhookOptions;
/// let options: WebhookOptions = toml::from_str(r#"
///     batch = true
///     max_batch = 50
///     secret_file = "/etc/secpipe/hook.key"
///     header_files = { Authorization = "/etc/secpipe/hook.auth" }
///     retry = { statuses = [404] }
/// "#).unwrap();
/// assert_eq!(options.max_batch, Some(50));
/// let typo = toml::from_str::<WebhookOptions>("secret = \"x\"").unwrap_err();
/// assert!(typo.to_string().contains("unknown field `secret`"), "{typo}");
/// ```
#[derive(Deserialize, Default, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebhookOptions {
    /// POST a JSON array of alerts rather than one object per request.
    pub batch: Option<bool>,
    /// Alerts per request with `batch` (default [`DEFAULT_MAX_BATCH`]).
    pub max_batch: Option<usize>,
    /// Sign each body with the key in this file (`X-Secpipe-Signature`).
    pub secret_file: Option<PathBuf>,
    /// Headers sent as written (no secrets here: see `header_files`).
    pub headers: Option<BTreeMap<String, String>>,
    /// Headers whose value is read from a file when the sink opens (`Authorization`).
    pub header_files: Option<BTreeMap<String, PathBuf>>,
    /// PEM certificates to trust instead of the Mozilla roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Connect timeout (default 5 s).
    pub connect_timeout: Option<String>,
    /// Timeout of a whole request (default 10 s).
    pub timeout: Option<String>,
    pub retry: Option<RetryOptions>,
}

/// One webhook destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    pub url: String,
    pub options: WebhookOptions,
}

impl WebhookConfig {
    /// `http://…` or `https://…`; `None` when `spec` is not a web address.
    ///
    /// ```
    /// use secpipe::sink::webhook::WebhookConfig;
    /// let c = WebhookConfig::parse("https://hooks.example/secpipe").unwrap().unwrap();
    /// assert_eq!(c.url, "https://hooks.example/secpipe");
    /// assert!(WebhookConfig::parse("http://").unwrap().is_err());
    /// assert!(WebhookConfig::parse("alerts.jsonl").is_none());
    /// ```
    pub fn parse(spec: &str) -> Option<Result<WebhookConfig, String>> {
        if !(spec.starts_with("http://") || spec.starts_with("https://")) {
            return None;
        }
        Some(http::check_url(spec).map(|()| WebhookConfig {
            url: spec.to_string(),
            options: WebhookOptions::default(),
        }))
    }

    /// The same destination with `options`, checked (files are read when the sink opens).
    ///
    /// ```
    /// use secpipe::sink::webhook::{WebhookConfig, WebhookOptions};
    /// let c = WebhookConfig::parse("http://127.0.0.1:9/h").unwrap().unwrap();
    /// let bad = WebhookOptions { max_batch: Some(0), ..Default::default() };
    /// assert!(c.clone().with_options(bad).unwrap_err().contains("max_batch"));
    /// let alone = WebhookOptions { max_batch: Some(10), ..Default::default() };
    /// assert_eq!(c.clone().with_options(alone).unwrap_err(), "max_batch needs batch = true");
    /// let bad = WebhookOptions { timeout: Some("soon".into()), ..Default::default() };
    /// assert!(c.with_options(bad).unwrap_err().contains("timeout"));
    /// ```
    pub fn with_options(self, options: WebhookOptions) -> Result<WebhookConfig, String> {
        let checked = WebhookConfig {
            url: self.url,
            options,
        };
        checked.settings()?;
        Ok(checked)
    }

    /// Options resolved: timeouts, policy, batch size, literal headers checked.
    fn settings(&self) -> Result<Settings, String> {
        let o = &self.options;
        let (connect, request) =
            http::timeouts(o.connect_timeout.as_deref(), o.timeout.as_deref())?;
        let policy = o.retry.clone().unwrap_or_default().policy()?;
        if let Some(n) = o.max_batch
            && !(1..=MAX_BATCH_LIMIT).contains(&n)
        {
            return Err(format!(
                "max_batch = {n}: give 1 to {MAX_BATCH_LIMIT} alerts per request"
            ));
        }
        let max_batch = match (o.batch.unwrap_or(false), o.max_batch) {
            (false, None) => 1,
            (false, Some(_)) => return Err("max_batch needs batch = true".into()),
            (true, n) => n.unwrap_or(DEFAULT_MAX_BATCH),
        };
        let mut headers = Vec::new();
        for (name, value) in o.headers.iter().flatten() {
            http::check_header(name, value)?;
            headers.push((name.clone(), value.clone()));
        }
        Ok(Settings {
            connect,
            request,
            policy,
            max_batch,
            headers,
        })
    }

    /// The sink's name in messages: the URL without credentials.
    pub fn name(&self) -> String {
        http::redact_url(&self.url)
    }

    /// Read the key and header files and start the sink's thread. The receiver need not be up.
    pub fn remote(&self, ctx: &super::OpenContext) -> Result<super::Remote, String> {
        let name = self.name();
        let err = |e: String| format!("--alerts {name}: {e}");
        let mut settings = self.settings().map_err(err)?;
        let files = http::file_headers(self.options.header_files.as_ref()).map_err(err)?;
        settings.headers.extend(files);
        let signer = match &self.options.secret_file {
            Some(path) => {
                let key = http::read_secret("secret_file", path).map_err(err)?;
                Some(hmac::Key::new(hmac::HMAC_SHA256, &key))
            }
            None => None,
        };
        let roots = match &self.options.ca_file {
            Some(path) => Some(http::read_ca_file(path).map_err(err)?),
            None => None,
        };
        let transport = Webhook {
            client: HttpClient::new(
                &self.url,
                settings.connect,
                settings.request,
                settings.headers,
                roots,
            ),
            name: name.clone(),
            policy: settings.policy,
            clock: DrainClock::new(ctx.shutdown.clone(), ctx.drain),
            signer,
            max_batch: settings.max_batch,
            pending: Vec::new(),
            pending_bytes: 0,
            batch_failed: None,
            refused: 0,
        };
        Ok(super::Remote {
            name,
            transport: Box::new(transport),
            encoding: Encoding::Json,
        })
    }
}

struct Settings {
    connect: Duration,
    request: Duration,
    policy: RetryPolicy,
    max_batch: usize,
    headers: Vec<(String, String)>,
}

/// The webhook's side of the sink thread.
struct Webhook {
    client: HttpClient,
    name: String,
    policy: RetryPolicy,
    clock: DrainClock,
    signer: Option<hmac::Key>,
    /// 1: one alert per request, no array.
    max_batch: usize,
    /// Alerts (JSON objects, no newline) waiting for a batch request, and their bytes.
    pending: Vec<Vec<u8>>,
    pending_bytes: usize,
    /// A request of the current queue batch that failed: the flush reports it (one the drain
    /// limit stopped rather than a refusal, if any: the spool then keeps the batch).
    batch_failed: Option<io::Error>,
    /// Requests given up on, for the stderr messages.
    refused: u64,
}

/// The `id` of an encoded alert.
fn alert_id(json: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_slice::<Id>(json)
        .map(|a| a.id)
        .unwrap_or_default()
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `key`.
pub fn signature(key: &hmac::Key, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac::sign(key, body).as_ref()))
}

impl Webhook {
    /// POST one body until the receiver takes it or the policy gives up.
    fn post(&mut self, body: &[u8], idempotency_key: &str) -> io::Result<()> {
        let signature = self.signer.as_ref().map(|key| signature(key, body));
        let mut headers = vec![("Idempotency-Key", idempotency_key)];
        if let Some(signature) = &signature {
            headers.push(("X-Secpipe-Signature", signature.as_str()));
        }
        let client = &self.client;
        let policy = &self.policy;
        match policy.run(&mut self.clock, |_| client.post(body, &headers, policy)) {
            Ok(_) => Ok(()),
            Err(gave_up) => {
                self.refused += 1;
                // The first refusals, then one in a thousand: a receiver that refuses every
                // alert must not flood stderr; the drain report counts them all.
                if self.refused <= 3 || self.refused.is_multiple_of(1000) {
                    crate::report::warn(&format!(
                        "alerts: {}: not delivered: {gave_up}",
                        self.name
                    ));
                }
                Err(gave_up.into_io_error(gave_up.to_string()))
            }
        }
    }

    /// POST the pending alerts as one JSON array.
    fn post_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let alerts = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let mut body = Vec::with_capacity(alerts.iter().map(|a| a.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        let mut ids = String::new();
        for (i, alert) in alerts.iter().enumerate() {
            if i > 0 {
                body.push(b',');
                ids.push(',');
            }
            body.extend_from_slice(alert);
            ids.push_str(&alert_id(alert));
        }
        body.push(b']');
        let key = {
            use sha2::Digest;
            format!(
                "batch-{}",
                hex::encode(sha2::Sha256::digest(ids.as_bytes()))
            )
        };
        if let Err(e) = self.post(&body, &key)
            && (self.batch_failed.is_none() || super::retry::is_at_drain_limit(&e))
        {
            self.batch_failed = Some(e);
        }
    }
}

impl Transport for Webhook {
    fn observe(&mut self, metrics: crate::metrics::SinkMetrics) {
        self.clock.observe(metrics);
    }

    fn send(&mut self, line: &[u8]) -> io::Result<()> {
        let json = line.strip_suffix(b"\n").unwrap_or(line);
        if self.max_batch == 1 {
            let key = http::header_token(&alert_id(json));
            return self.post(json, &key);
        }
        if self.pending_bytes + json.len() > MAX_BATCH_BYTES {
            self.post_pending();
        }
        self.pending_bytes += json.len();
        self.pending.push(json.to_vec());
        if self.pending.len() >= self.max_batch {
            self.post_pending();
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.post_pending();
        match self.batch_failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A refused alert (or batch) is that alert's loss, counted; the next is tried.
    fn stops_on_error(&self) -> bool {
        false
    }

    fn delivers_on_flush(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::Shutdown;
    use crate::sink::AlertSink;
    use crate::sink::http::tests::receiver;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    fn config(url: &str, options: WebhookOptions) -> WebhookConfig {
        WebhookConfig::parse(url)
            .expect("a URL")
            .expect("valid")
            .with_options(options)
            .expect("valid options")
    }

    /// The sink a run without `--state` makes of `config(url, options)`, waiting at most 5 s
    /// at the stop.
    fn open(url: &str, options: WebhookOptions) -> crate::sink::queue::QueuedSink {
        config(url, options)
            .remote(&crate::sink::tests::context(
                &Shutdown::new(),
                Duration::from_secs(5),
            ))
            .map(|r| r.queued())
            .expect("open")
    }

    fn fast_retry() -> Option<RetryOptions> {
        Some(RetryOptions {
            initial: Some("10ms".into()),
            max: Some("20ms".into()),
            ..RetryOptions::default()
        })
    }

    /// Requests as the receiver saw them; answers 200.
    fn recording() -> (String, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let (url, _) = receiver(move |mut stream, request| {
            if let Ok(mut log) = log.lock() {
                log.push(request);
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        });
        (url, seen)
    }

    fn body(request: &str) -> &str {
        request.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
    }

    fn header<'a>(request: &'a str, name: &str) -> Option<&'a str> {
        request.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    #[test]
    fn each_alert_is_posted_with_its_id_and_a_signature_over_the_exact_body() {
        let (url, seen) = recording();
        let mut key_file = tempfile::NamedTempFile::new().expect("temp");
        key_file.write_all(b"s3cret\n").expect("write");
        let options = WebhookOptions {
            secret_file: Some(key_file.path().into()),
            ..WebhookOptions::default()
        };
        let mut sink = open(&url, options);
        let mut alert = crate::sink::tests::alert(7);
        alert.summary = "evil\r\nX-Injected: 1".into();
        sink.write(&[alert.clone(), crate::sink::tests::alert(8)])
            .expect("queued");
        let report = Box::new(sink).close();
        assert_eq!((report.alerts, report.delivered), (2, 2));
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 2);
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"s3cret");
        let mut expected = String::new();
        crate::sink::encode::write_json(&alert, &mut expected);
        let first = &seen[0];
        assert_eq!(body(first), expected, "the body is the alert's JSON line");
        assert_eq!(header(first, "Idempotency-Key"), Some("07"));
        assert_eq!(
            header(first, "X-Secpipe-Signature"),
            Some(signature(&key, expected.as_bytes()).as_str())
        );
        assert!(
            !first.contains("\r\nX-Injected"),
            "alert text never becomes a header"
        );
    }

    #[test]
    fn a_batch_is_one_array_per_request_of_at_most_max_batch() {
        let (url, seen) = recording();
        let options = WebhookOptions {
            batch: Some(true),
            max_batch: Some(2),
            ..WebhookOptions::default()
        };
        let mut sink = open(&url, options);
        let alerts: Vec<_> = (0..5).map(crate::sink::tests::alert).collect();
        sink.write(&alerts).expect("queued");
        let report = Box::new(sink).close();
        assert_eq!(report.delivered, 5);
        let seen = seen.lock().expect("lock");
        let sizes: Vec<usize> = seen
            .iter()
            .map(|r| {
                let v: serde_json::Value = serde_json::from_str(body(r)).expect("JSON array");
                v.as_array().map(Vec::len).unwrap_or(0)
            })
            .collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert!(header(&seen[0], "Idempotency-Key").is_some_and(|k| k.starts_with("batch-")));
    }

    /// Large alerts (ten 64 KiB evidence lines each) are cut into requests of about 1 MiB
    /// however many `max_batch` allows: the sink never holds a huge body.
    #[test]
    fn a_batch_of_large_alerts_is_cut_by_size() {
        let (url, seen) = recording();
        let options = WebhookOptions {
            batch: Some(true),
            max_batch: Some(MAX_BATCH_LIMIT),
            ..WebhookOptions::default()
        };
        let mut sink = open(&url, options);
        let large: Vec<_> = (0..20)
            .map(|n| {
                let mut alert = crate::sink::tests::alert(n);
                alert.evidence = (0..10)
                    .map(|line| crate::alert::Evidence {
                        source: "-".into(),
                        line,
                        ts: 0,
                        raw: vec![b'A'; 64 * 1024].into_boxed_slice(),
                        seq: None,
                    })
                    .collect();
                alert
            })
            .collect();
        sink.write(&large).expect("queued");
        let report = Box::new(sink).close();
        assert_eq!(report.delivered, 20);
        let seen = seen.lock().expect("lock");
        assert!(
            seen.len() >= 13,
            "20 alerts of 640 KiB: {} requests",
            seen.len()
        );
        assert!(seen.iter().all(|r| body(r).len() <= MAX_BATCH_BYTES));
    }

    /// 500, then 429 with Retry-After, then 200: the alert arrives, with the same key each time.
    #[test]
    fn failures_are_retried_until_the_receiver_takes_the_alert() {
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let log = attempts.clone();
        let (url, _) = receiver(move |mut stream, request| {
            let n = log.lock().map(|mut l| {
                l.push(
                    header(&request, "Idempotency-Key")
                        .unwrap_or("")
                        .to_string(),
                );
                l.len()
            });
            let answer = match n {
                Ok(1) => "500 Internal Server Error\r\nContent-Length: 0",
                Ok(2) => "429 Too Many Requests\r\nRetry-After: 0\r\nContent-Length: 0",
                _ => "200 OK\r\nContent-Length: 0",
            };
            let _ = stream.write_all(format!("HTTP/1.1 {answer}\r\n\r\n").as_bytes());
        });
        let options = WebhookOptions {
            retry: fast_retry(),
            ..WebhookOptions::default()
        };
        let mut sink = open(&url, options);
        sink.write(&[crate::sink::tests::alert(3)]).expect("queued");
        let report = Box::new(sink).close();
        assert_eq!(report.delivered, 1);
        assert_eq!(*attempts.lock().expect("lock"), ["03", "03", "03"]);
    }

    /// A final refusal (400) costs that alert, counted; the next alert is still sent.
    #[test]
    fn a_refused_alert_is_counted_and_the_sink_goes_on() {
        let (url, _) = receiver(move |mut stream, request| {
            let status = if request.contains("\"id\":\"01\"") {
                "400 Bad Request"
            } else {
                "200 OK"
            };
            let _ = stream
                .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes());
        });
        let mut sink = open(&url, WebhookOptions::default());
        sink.write(&[crate::sink::tests::alert(1)]).expect("queued");
        sink.write(&[crate::sink::tests::alert(2)]).expect("queued");
        let report = Box::new(sink).close();
        assert_eq!((report.alerts, report.delivered), (2, 1));
        assert_eq!(report.failed, None, "the sink did not stop");
    }

    /// In batch mode a refused batch is that batch's loss, counted: the next batch is still
    /// posted and counted as delivered (the sink's queue does not stop at a refused flush).
    #[test]
    fn a_refused_batch_costs_only_that_batch() {
        let (url, _) = receiver(move |mut stream, request| {
            let status = if request.contains("\"id\":\"01\"") {
                "422 Unprocessable Entity"
            } else {
                "200 OK"
            };
            let _ = stream
                .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes());
        });
        let options = WebhookOptions {
            batch: Some(true),
            ..WebhookOptions::default()
        };
        let mut sink = open(&url, options);
        let batch = |n: u64| {
            [
                crate::sink::tests::alert(n),
                crate::sink::tests::alert(n + 10),
            ]
        };
        sink.write(&batch(1)).expect("queued");
        sink.write(&batch(2)).expect("queued");
        let report = Box::new(sink).close();
        assert_eq!((report.alerts, report.delivered), (4, 2));
        assert_eq!(report.failed, None, "the sink did not stop");
    }

    /// A receiver that is down for good: after shutdown the sink gives up at the drain limit,
    /// and the alert is counted as not delivered.
    #[test]
    fn a_dead_receiver_costs_at_most_the_drain_limit() {
        // A port that was just free: connections are refused.
        let url = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            format!("http://{}/hook", listener.local_addr().expect("addr"))
        };
        let shutdown = Shutdown::new();
        let mut sink = config(&url, WebhookOptions::default())
            .remote(&crate::sink::tests::context(
                &shutdown,
                Duration::from_millis(200),
            ))
            .map(|r| r.queued())
            .expect("open");
        sink.write(&[crate::sink::tests::alert(1)]).expect("queued");
        shutdown.trigger();
        // Without the drain limit this would retry (and wait) for ever.
        let report = Box::new(sink).close();
        assert_eq!((report.alerts, report.undelivered()), (1, 1));
    }

    #[test]
    fn options_are_checked() {
        let c = WebhookConfig::parse("https://h.example/x")
            .expect("url")
            .expect("valid");
        let bad_header = WebhookOptions {
            headers: Some(BTreeMap::from([("X-A".into(), "1\r\nX-B: 2".into())])),
            ..WebhookOptions::default()
        };
        assert!(c.clone().with_options(bad_header).is_err());
        let no_file = WebhookOptions {
            secret_file: Some("/nonexistent/key".into()),
            ..WebhookOptions::default()
        };
        let error = c
            .with_options(no_file)
            .expect("checked at open")
            .remote(&crate::sink::tests::context(
                &Shutdown::new(),
                Duration::ZERO,
            ))
            .map(|r| r.queued())
            .err()
            .expect("no key file");
        assert!(error.contains("secret_file /nonexistent/key"), "{error}");
    }
}
