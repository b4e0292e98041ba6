//! `--alerts alertmanager+http(s)://HOST:PORT`: alerts to a Prometheus Alertmanager
//! (`POST /api/v2/alerts`, a JSON array of postable alerts), which groups, silences,
//! deduplicates and routes them to the pager.
//!
//! **Mapping.** Labels identify an alert to Alertmanager (same labels: one alert), so they hold
//! what names the incident and nothing that changes while it lasts: `alertname` (the rule id;
//! a label *value*, so `auth.bruteforce` is fine), `severity` (lower case), `priority`,
//! `key_field`, `key`, `host` (when the rule is keyed by host) and `source="secpipe"`. Every
//! label name is a literal in this file and matches `[a-zA-Z_][a-zA-Z0-9_]*`. Annotations carry
//! the rest: `summary`, `alert_id`, `window_start`, `window_end`, `first_seen`, `last_seen`,
//! `respond_within`, `count`, `threshold`, `action` and `evidence` (the first
//! [`EVIDENCE_LINES`] raw lines). Attacker-written text (keys, summary, evidence) has its control
//! characters replaced and is capped in length. `startsAt` is the alert's `first_seen` (never
//! later than now: Alertmanager refuses an alert that starts after it ends).
//!
//! **Re-sending.** Alertmanager resolves an alert that is not re-sent before its `endsAt`, and
//! its clients are asked to re-send active alerts every 30 s to 3 min. Each alert is kept
//! *active* for its rule's window (`window_end − window_start`; the rule's cooldown defaults to
//! it, and the Alert does not carry a cooldown of its own), at least [`MIN_ACTIVE`] so that an
//! instant rule (`match`) is seen, or for `active_for` when configured. The active alerts are
//! re-sent every `resend_every` (default 60 s, on the sink's thread: [`Transport::tick`]) with
//! `endsAt = min(now + 3 × resend_every, end of activity)`: two lost re-sends do not resolve an
//! alert early, and a secpipe that stops lets its alerts resolve within three intervals.
//!
//! **Limits.** At most `max_active` (default [`DEFAULT_MAX_ACTIVE`]) alerts are kept for
//! re-sending, each a few KiB at most: a flood of alerts evicts the oldest (counted and said on
//! stderr), so memory stays bounded whatever the input. The sink runs on its own thread behind
//! a queue that drops and counts when full. The first send of an alert is retried per
//! [`super::retry`]; a re-send is tried once (the next tick tries again). An alert counts as
//! delivered when the request carrying its first send is answered 2xx; one whose first send
//! failed stays active and is re-sent at the next ticks, though the report counts it as not
//! delivered.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::encode::Encoding;
use super::http::{self, HttpClient};
use super::queue::Transport;
use super::retry::{Attempt, DrainClock, RetryOptions, RetryPolicy};

/// Default interval between two re-sends of the active alerts.
pub const DEFAULT_RESEND_EVERY: Duration = Duration::from_secs(60);
/// An alert stays active at least this long.
pub const MIN_ACTIVE: Duration = Duration::from_secs(300);
/// And at most this long, whatever its window (a `log.error_surge` window is 24 h).
pub const MAX_ACTIVE: Duration = Duration::from_secs(86_400);
/// Alerts kept for re-sending by default.
pub const DEFAULT_MAX_ACTIVE: usize = 10_000;
/// Evidence lines in the `evidence` annotation.
pub const EVIDENCE_LINES: usize = 3;
/// Characters kept of a label value, of one evidence line, and of the summary.
const LABEL_CAP: usize = 256;
const EVIDENCE_LINE_CAP: usize = 256;
const SUMMARY_CAP: usize = 512;
/// Alerts per request.
const ALERTS_PER_REQUEST: usize = 500;

/// The optional settings of an Alertmanager sink (`alertmanager = { … }` in `secpipe.toml`).
///
/// ```
/// use secpipe::sink::alertmanager::AlertmanagerOptions;
/// let o: AlertmanagerOptions = toml::from_str("resend_every = \"30s\"\nmax_active = 500").unwrap();
/// assert_eq!(o.max_active, Some(500));
/// let typo = toml::from_str::<AlertmanagerOptions>("resend = \"30s\"").unwrap_err();
/// assert!(typo.to_string().contains("unknown field `resend`"), "{typo}");
/// ```
#[derive(Deserialize, Default, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerOptions {
    /// Interval between re-sends of the active alerts (default 60 s; 1 s to 10 min).
    pub resend_every: Option<String>,
    /// How long every alert stays active (default: its rule's window, 5 min to 24 h).
    pub active_for: Option<String>,
    /// Alerts kept for re-sending (default [`DEFAULT_MAX_ACTIVE`]).
    pub max_active: Option<usize>,
    /// `generatorURL` of each alert: this URL with `?alert_id=ID` added.
    pub generator_url: Option<String>,
    /// Headers whose value is read from a file (`Authorization` for a proxy in front).
    pub header_files: Option<BTreeMap<String, PathBuf>>,
    /// PEM certificates to trust instead of the Mozilla roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Connect timeout (default 5 s).
    pub connect_timeout: Option<String>,
    /// Timeout of a whole request (default 10 s).
    pub timeout: Option<String>,
    pub retry: Option<RetryOptions>,
}

/// One Alertmanager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertmanagerConfig {
    /// `http(s)://HOST:PORT` (and a path prefix, if Alertmanager runs under one).
    pub base: String,
    pub options: AlertmanagerOptions,
}

struct Settings {
    connect: Duration,
    request: Duration,
    policy: RetryPolicy,
    resend_every: Duration,
    active_for: Option<Duration>,
    max_active: usize,
}

impl AlertmanagerConfig {
    /// `alertmanager+http://HOST:PORT` or `alertmanager+https://…`; `None` for anything else.
    ///
    /// ```
    /// use secpipe::sink::alertmanager::AlertmanagerConfig;
    /// let c = AlertmanagerConfig::parse("alertmanager+http://127.0.0.1:9093/").unwrap().unwrap();
    /// assert_eq!(c.endpoint(), "http://127.0.0.1:9093/api/v2/alerts");
    /// assert!(AlertmanagerConfig::parse("alertmanager+ftp://x").unwrap().is_err());
    /// assert!(AlertmanagerConfig::parse("http://x").is_none());
    /// ```
    pub fn parse(spec: &str) -> Option<Result<AlertmanagerConfig, String>> {
        let base = spec.strip_prefix("alertmanager+")?;
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Some(Err(format!(
                "{spec}: give alertmanager+http://HOST:PORT or alertmanager+https://HOST:PORT"
            )));
        }
        let base = base.trim_end_matches('/');
        Some(http::check_url(base).map(|()| AlertmanagerConfig {
            base: base.to_string(),
            options: AlertmanagerOptions::default(),
        }))
    }

    /// The same Alertmanager with `options`, checked (files are read when the sink opens).
    ///
    /// ```
    /// use secpipe::sink::alertmanager::{AlertmanagerConfig, AlertmanagerOptions};
    /// let c = AlertmanagerConfig::parse("alertmanager+http://127.0.0.1:9093").unwrap().unwrap();
    /// let bad = AlertmanagerOptions { resend_every: Some("1h".into()), ..Default::default() };
    /// assert!(c.clone().with_options(bad).unwrap_err().contains("resend_every"));
    /// let bad = AlertmanagerOptions { max_active: Some(0), ..Default::default() };
    /// assert!(c.with_options(bad).unwrap_err().contains("max_active"));
    /// ```
    pub fn with_options(self, options: AlertmanagerOptions) -> Result<AlertmanagerConfig, String> {
        let checked = AlertmanagerConfig {
            base: self.base,
            options,
        };
        checked.settings()?;
        Ok(checked)
    }

    /// Where alerts are posted.
    pub fn endpoint(&self) -> String {
        format!("{}/api/v2/alerts", self.base)
    }

    fn settings(&self) -> Result<Settings, String> {
        let o = &self.options;
        let duration = |name: &str, text: &Option<String>| {
            text.as_deref()
                .map(|t| super::retry::option_duration(name, t))
                .transpose()
        };
        let (connect, request) =
            http::timeouts(o.connect_timeout.as_deref(), o.timeout.as_deref())?;
        let resend_every =
            duration("resend_every", &o.resend_every)?.unwrap_or(DEFAULT_RESEND_EVERY);
        if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&resend_every) {
            return Err("resend_every: give 1s to 10m (Alertmanager asks for 30s to 3m)".into());
        }
        let active_for = duration("active_for", &o.active_for)?;
        if active_for.is_some_and(|d| d.is_zero() || d > MAX_ACTIVE) {
            return Err("active_for: give more than zero and at most 24h".into());
        }
        let max_active = o.max_active.unwrap_or(DEFAULT_MAX_ACTIVE);
        if !(1..=1_000_000).contains(&max_active) {
            return Err("max_active: give 1 to 1000000".into());
        }
        if let Some(url) = &o.generator_url {
            http::check_url(url).map_err(|e| format!("generator_url: {e}"))?;
        }
        Ok(Settings {
            connect,
            request,
            policy: o.retry.clone().unwrap_or_default().policy()?,
            resend_every,
            active_for,
            max_active,
        })
    }

    /// The sink's name in messages.
    pub fn name(&self) -> String {
        format!("alertmanager+{}", http::redact_url(&self.base))
    }

    /// Read the header files and start the sink's thread. Alertmanager need not be up.
    pub fn remote(&self, ctx: &super::OpenContext) -> Result<super::Remote, String> {
        let name = self.name();
        let err = |e: String| format!("--alerts {name}: {e}");
        let settings = self.settings().map_err(err)?;
        let headers = http::file_headers(self.options.header_files.as_ref()).map_err(err)?;
        let roots = match &self.options.ca_file {
            Some(path) => Some(http::read_ca_file(path).map_err(err)?),
            None => None,
        };
        let transport = Alertmanager {
            client: HttpClient::new(
                &self.endpoint(),
                settings.connect,
                settings.request,
                headers,
                roots,
            ),
            name: name.clone(),
            policy: settings.policy,
            clock: DrainClock::new(ctx.shutdown.clone(), ctx.drain),
            resend_every: settings.resend_every,
            active: ActiveAlerts::new(
                settings.max_active,
                settings.active_for,
                self.options.generator_url.clone(),
            ),
            fresh: Vec::new(),
            failures: 0,
        };
        Ok(super::Remote {
            name,
            transport: Box::new(transport),
            encoding: Encoding::Json,
        })
    }
}

/// One alert kept for re-sending.
struct Active {
    id: String,
    /// Labels, annotations, startsAt, generatorURL: all but `endsAt`.
    postable: Map<String, Value>,
    /// When it stops being re-sent (and resolves).
    until: SystemTime,
}

/// The alerts being re-sent, oldest first, at most `max` of them.
struct ActiveAlerts {
    by_seq: BTreeMap<u64, Active>,
    /// Seq of each id: an alert given again replaces its older self.
    seq_of: std::collections::HashMap<String, u64>,
    next_seq: u64,
    max: usize,
    active_for: Option<Duration>,
    generator_url: Option<String>,
    /// Evicted at the cap since the last message.
    evicted: u64,
}

impl ActiveAlerts {
    fn new(max: usize, active_for: Option<Duration>, generator_url: Option<String>) -> Self {
        ActiveAlerts {
            by_seq: BTreeMap::new(),
            seq_of: std::collections::HashMap::new(),
            next_seq: 0,
            max,
            active_for,
            generator_url,
            evicted: 0,
        }
    }

    /// Keep an alert (its DESIGN §5 JSON) for sending; its seq, or `None` if it is not JSON
    /// with an id (never from secpipe's own encoder).
    fn insert(&mut self, json: &[u8], now: SystemTime) -> Option<u64> {
        let alert: Value = serde_json::from_slice(json).ok()?;
        let id = alert.get("id")?.as_str()?.to_string();
        let active_for = self.active_for.unwrap_or_else(|| window(&alert));
        let postable = postable(&alert, now, self.generator_url.as_deref());
        if let Some(old) = self.seq_of.remove(&id) {
            self.by_seq.remove(&old);
        }
        while self.by_seq.len() >= self.max {
            let Some((_, oldest)) = self.by_seq.pop_first() else {
                break;
            };
            self.seq_of.remove(&oldest.id);
            self.evicted += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.seq_of.insert(id.clone(), seq);
        self.by_seq.insert(
            seq,
            Active {
                id,
                postable,
                until: now.checked_add(active_for).unwrap_or(now),
            },
        );
        Some(seq)
    }

    /// Forget the alerts whose activity has ended.
    fn expire(&mut self, now: SystemTime) {
        let ended: Vec<u64> = self
            .by_seq
            .iter()
            .filter(|(_, a)| a.until <= now)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in ended {
            if let Some(alert) = self.by_seq.remove(&seq) {
                self.seq_of.remove(&alert.id);
            }
        }
    }
}

/// How long an alert stays active when `active_for` is not set: its rule's window (the
/// cooldown's default), clamped to [`MIN_ACTIVE`, `MAX_ACTIVE`].
fn window(alert: &Value) -> Duration {
    let micros = |field: &str| {
        alert
            .get(field)
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_microsecond())
    };
    let span = match (micros("window_start"), micros("window_end")) {
        (Some(start), Some(end)) => u64::try_from(end.saturating_sub(start)).unwrap_or(0),
        _ => 0,
    };
    Duration::from_micros(span).clamp(MIN_ACTIVE, MAX_ACTIVE)
}

/// Control characters replaced, at most `max` characters.
fn cleaned(value: Option<&Value>, max: usize) -> String {
    match value {
        Some(Value::String(s)) => http::clean(s.as_bytes(), max),
        Some(Value::Null) | None => String::new(),
        Some(other) => http::clean(other.to_string().as_bytes(), max),
    }
}

/// The postable alert of Alertmanager's API v2, without `endsAt`.
fn postable(alert: &Value, now: SystemTime, generator_url: Option<&str>) -> Map<String, Value> {
    let text = |field: &str| cleaned(alert.get(field), LABEL_CAP);
    let key_field = cleaned(alert.pointer("/key/field"), LABEL_CAP);
    let key = cleaned(alert.pointer("/key/value"), LABEL_CAP);
    let mut labels = Map::new();
    let mut label = |name: &str, value: String| {
        // Alertmanager reads an empty value as no label at all.
        if !value.is_empty() {
            labels.insert(name.to_string(), Value::String(value));
        }
    };
    label("alertname", text("rule"));
    label("severity", text("severity").to_ascii_lowercase());
    label("priority", text("priority"));
    if key_field == "host" {
        label("host", key.clone());
    }
    label("key_field", key_field);
    label("key", key);
    label("source", "secpipe".into());

    let evidence: Vec<String> = alert
        .get("evidence")
        .and_then(Value::as_array)
        .map(|events| {
            events
                .iter()
                .take(EVIDENCE_LINES)
                .map(|e| cleaned(e.get("raw"), EVIDENCE_LINE_CAP))
                .collect()
        })
        .unwrap_or_default();
    let action = alert
        .get("action")
        .and_then(Value::as_object)
        .map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{}={}", http::clean(k.as_bytes(), 32), cleaned(Some(v), 64)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let mut annotations = Map::new();
    let mut annotate = |name: &str, value: String| {
        if !value.is_empty() {
            annotations.insert(name.to_string(), Value::String(value));
        }
    };
    annotate("summary", cleaned(alert.get("summary"), SUMMARY_CAP));
    annotate("alert_id", text("id"));
    for field in [
        "window_start",
        "window_end",
        "first_seen",
        "last_seen",
        "respond_within",
        "count",
        "threshold",
    ] {
        annotate(field, text(field));
    }
    annotate("action", action);
    annotate("evidence", evidence.join("\n"));

    // Alertmanager refuses an alert that starts after it ends: a first_seen ahead of this
    // clock (a stream whose clock runs fast) starts now.
    let now_ts = system_to_timestamp(now);
    let starts = alert
        .get("first_seen")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .filter(|t| *t <= now_ts)
        .unwrap_or(now_ts);
    let mut postable = Map::new();
    postable.insert("labels".into(), Value::Object(labels));
    postable.insert("annotations".into(), Value::Object(annotations));
    postable.insert("startsAt".into(), Value::String(starts.to_string()));
    if let Some(base) = generator_url {
        let sep = if base.contains('?') { '&' } else { '?' };
        let id = http::header_token(&text("id"));
        postable.insert(
            "generatorURL".into(),
            Value::String(format!("{base}{sep}alert_id={id}")),
        );
    }
    postable
}

fn system_to_timestamp(t: SystemTime) -> jiff::Timestamp {
    jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// The Alertmanager's side of the sink thread.
struct Alertmanager {
    client: HttpClient,
    name: String,
    policy: RetryPolicy,
    clock: DrainClock,
    resend_every: Duration,
    active: ActiveAlerts,
    /// Seqs of alerts taken since the last flush: sent at the flush.
    fresh: Vec<u64>,
    /// Failed requests, for rate-limiting the messages.
    failures: u64,
}

impl Alertmanager {
    /// The request body for `seqs` (those still active), `endsAt` set for `now`.
    fn body(&self, seqs: &[u64], now: SystemTime) -> Vec<u8> {
        let horizon = now.checked_add(self.resend_every * 3).unwrap_or(now);
        let alerts: Vec<Value> = seqs
            .iter()
            .filter_map(|seq| self.active.by_seq.get(seq))
            .map(|a| {
                let mut postable = a.postable.clone();
                let ends = system_to_timestamp(a.until.min(horizon));
                postable.insert("endsAt".into(), Value::String(ends.to_string()));
                Value::Object(postable)
            })
            .collect();
        serde_json::to_vec(&alerts).unwrap_or_else(|_| b"[]".to_vec())
    }

    fn warn(&mut self, what: &str, error: &str) {
        self.failures += 1;
        if self.failures <= 3 || self.failures.is_multiple_of(100) {
            crate::report::warn(&format!("alerts: {}: {what}: {error}", self.name));
        }
    }

    fn say_evicted(&mut self) {
        if self.active.evicted > 0 {
            crate::report::warn(&format!(
                "alerts: {}: {} active alerts no longer re-sent (more than {} active)",
                self.name, self.active.evicted, self.active.max
            ));
            self.active.evicted = 0;
        }
    }
}

impl Transport for Alertmanager {
    fn observe(&mut self, metrics: crate::metrics::SinkMetrics) {
        self.clock.observe(metrics);
    }

    fn send(&mut self, line: &[u8]) -> io::Result<()> {
        let json = line.strip_suffix(b"\n").unwrap_or(line);
        match self.active.insert(json, SystemTime::now()) {
            Some(seq) => {
                self.fresh.push(seq);
                Ok(())
            }
            None => Err(io::Error::other("not an alert")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let fresh = std::mem::take(&mut self.fresh);
        self.say_evicted();
        let mut failed = None;
        for chunk in fresh.chunks(ALERTS_PER_REQUEST) {
            let body = self.body(chunk, SystemTime::now());
            let (client, policy) = (&self.client, &self.policy);
            match policy.run(&mut self.clock, |_| client.post(&body, &[], policy)) {
                Ok(_) => {}
                Err(gave_up) => {
                    let error = gave_up.to_string();
                    self.warn("not delivered", &error);
                    // A stop at the drain limit wins: the spool then keeps these alerts.
                    if failed.is_none() || gave_up.at_drain_limit {
                        failed = Some(gave_up.into_io_error(error));
                    }
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn stops_on_error(&self) -> bool {
        false
    }

    fn delivers_on_flush(&self) -> bool {
        true
    }

    fn tick_every(&self) -> Option<Duration> {
        Some(self.resend_every)
    }

    /// Re-send the active alerts, one attempt each request: the next tick tries again.
    fn tick(&mut self) -> io::Result<()> {
        let now = SystemTime::now();
        self.active.expire(now);
        self.say_evicted();
        if self.clock.passed() {
            return Ok(());
        }
        let seqs: Vec<u64> = self.active.by_seq.keys().copied().collect();
        for chunk in seqs.chunks(ALERTS_PER_REQUEST) {
            let body = self.body(chunk, now);
            if let Attempt::Retry { error, .. } | Attempt::Fail(error) =
                self.client.post(&body, &[], &self.policy)
            {
                self.warn("re-send failed", &error);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Evidence;
    use crate::shutdown::Shutdown;
    use crate::sink::AlertSink;
    use crate::sink::http::tests::receiver;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    fn encoded(alert: &crate::alert::Alert) -> Vec<u8> {
        let mut out = String::new();
        crate::sink::encode::write_json(alert, &mut out);
        out.into_bytes()
    }

    fn label_name_is_valid(name: &str) -> bool {
        let mut bytes = name.bytes();
        bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
    }

    /// Attacker text (a user name with CR/LF and escapes, an evidence line of 1 MiB), a rule
    /// id with dots: labels have valid names, values are cleaned and capped.
    #[test]
    fn labels_are_valid_and_attacker_text_is_cleaned_and_capped() {
        let mut alert = crate::sink::tests::alert(5);
        alert.rule = "custom.rule.with.dots".into();
        alert.key_field = "user".into();
        alert.key_value = "root\r\n\u{1b}[2Jevil".into();
        alert.summary = "x".repeat(100_000);
        alert.evidence = (0..10)
            .map(|i| Evidence {
                source: "-".into(),
                line: i,
                ts: 0,
                raw: vec![b'A'; 1 << 20].into_boxed_slice(),
                seq: None,
            })
            .collect();
        let alert = serde_json::from_slice(&encoded(&alert)).expect("json");
        let postable = postable(&alert, SystemTime::now(), None);
        let labels = postable["labels"].as_object().expect("labels");
        assert!(labels.keys().all(|k| label_name_is_valid(k)), "{labels:?}");
        assert_eq!(labels["alertname"], "custom.rule.with.dots");
        assert_eq!(labels["severity"], "medium");
        assert_eq!(labels["source"], "secpipe");
        assert_eq!(labels["key"], "root???[2Jevil");
        let size = serde_json::to_vec(&postable).expect("json").len();
        assert!(size < 4096, "one alert is small whatever the input: {size}");
        let evidence = postable["annotations"]["evidence"]
            .as_str()
            .expect("evidence");
        assert_eq!(evidence.lines().count(), EVIDENCE_LINES);
    }

    #[test]
    fn starts_at_is_first_seen_but_never_after_now() {
        let mut alert = crate::sink::tests::alert(1);
        alert.first_seen = 1_700_000_000_000_000;
        let value = serde_json::from_slice(&encoded(&alert)).expect("json");
        let now = SystemTime::now();
        assert_eq!(
            postable(&value, now, None)["startsAt"],
            "2023-11-14T22:13:20Z"
        );
        alert.first_seen = 4_000_000_000_000_000; // 2096: a planted timestamp
        let value = serde_json::from_slice(&encoded(&alert)).expect("json");
        assert_eq!(
            postable(&value, now, None)["startsAt"],
            system_to_timestamp(now).to_string()
        );
    }

    /// `generator_url` links each alert back by its id (a token, whatever the alert says).
    #[test]
    fn the_generator_url_carries_the_alert_id() {
        let value = serde_json::from_slice(&encoded(&crate::sink::tests::alert(4))).expect("json");
        let base = Some("https://soc.example/alerts?src=secpipe");
        let linked = postable(&value, SystemTime::now(), base);
        assert_eq!(
            linked["generatorURL"],
            "https://soc.example/alerts?src=secpipe&alert_id=04"
        );
        assert!(
            postable(&value, SystemTime::now(), None)
                .get("generatorURL")
                .is_none()
        );
    }

    /// A flood of distinct alerts keeps at most `max_active`, evicting the oldest, counted.
    #[test]
    fn the_active_set_is_bounded() {
        let mut active = ActiveAlerts::new(100, None, None);
        let now = SystemTime::now();
        for n in 0..10_000 {
            active.insert(&encoded(&crate::sink::tests::alert(n)), now);
        }
        assert_eq!(active.by_seq.len(), 100);
        assert_eq!(active.seq_of.len(), 100);
        assert_eq!(active.evicted, 9_900);
        // The same alert again replaces itself rather than taking a second place.
        active.insert(&encoded(&crate::sink::tests::alert(9_999)), now);
        assert_eq!(active.by_seq.len(), 100);
    }

    #[test]
    fn an_alert_stays_active_for_its_window_then_expires() {
        let mut alert = crate::sink::tests::alert(1);
        alert.window_start = 0;
        alert.window_end = 3_600_000_000; // a 1 h window
        let mut active = ActiveAlerts::new(10, None, None);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        active.insert(&encoded(&alert), now);
        active.expire(now + Duration::from_secs(3_599));
        assert_eq!(active.by_seq.len(), 1);
        active.expire(now + Duration::from_secs(3_600));
        assert_eq!(active.by_seq.len(), 0);
    }

    /// Alerts are posted at once, then re-sent at each tick with `endsAt` ahead.
    #[test]
    fn alerts_are_posted_then_re_sent_while_active() {
        let bodies = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = bodies.clone();
        let (url, _) = receiver(move |mut stream, request| {
            if let (Ok(mut log), Some((head, body))) = (log.lock(), request.split_once("\r\n\r\n"))
            {
                assert!(head.starts_with("POST /api/v2/alerts "), "{head}");
                log.push(body.to_string());
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        });
        let base = url.trim_end_matches("/hook");
        let options = AlertmanagerOptions {
            resend_every: Some("1s".into()),
            ..AlertmanagerOptions::default()
        };
        let mut sink = AlertmanagerConfig::parse(&format!("alertmanager+{base}"))
            .expect("spec")
            .expect("valid")
            .with_options(options)
            .expect("options")
            .remote(&crate::sink::tests::context(
                &Shutdown::new(),
                Duration::from_secs(5),
            ))
            .map(|r| r.queued())
            .expect("open");
        sink.write(&[crate::sink::tests::alert(1)]).expect("queued");
        // The first send, then a re-send at a tick (patience: a minute on a loaded machine).
        for _ in 0..1200 {
            if bodies.lock().map(|b| b.len()).unwrap_or(0) >= 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let report = Box::new(sink).close();
        assert_eq!(report.delivered, 1);
        let bodies = bodies.lock().expect("lock");
        assert!(bodies.len() >= 2, "sent, then re-sent: {}", bodies.len());
        for body in bodies.iter() {
            let alerts: Value = serde_json::from_str(body).expect("a JSON array");
            let alert = &alerts[0];
            assert_eq!(alert["labels"]["alertname"], "auth.bruteforce");
            let ends: jiff::Timestamp = alert["endsAt"]
                .as_str()
                .expect("endsAt")
                .parse()
                .expect("time");
            assert!(ends > jiff::Timestamp::now(), "endsAt is ahead: {ends}");
        }
    }
}
