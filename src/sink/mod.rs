//! sink: where alerts go, and (for `secpipe events`) events.
//!
//! Every alert destination is an [`AlertSink`]; the ordered stage writes each batch of alerts
//! to all of them through [`AlertSinks`], each taking the alerts at or above its severity
//! floor ([`routes`]). How alerts are written ([`encode::Encoding`]) is chosen per sink and
//! kept apart from where they go ([`queue::Transport`]). Every sink runs its transport on its
//! own thread. The alert output (stdout, `--alerts FILE`) is behind a bounded queue that
//! waits ([`queue::QueuedSink`]), so a consumer that stops reading slows detection (and every
//! other sink) until shutdown bounds the wait (`--drain-timeout`). A destination that reaches
//! others ([`Remote`]: syslog, webhook, Alertmanager, mail, a program) never stalls
//! detection: with `--state` it delivers from a spool on disk, at least once across outages
//! and restarts ([`spool`]); without, from a queue that drops and counts when full. Drops
//! raise `secpipe.delivery_backlog`. A sink that fails is reported and left out, and the
//! others go on. Adding a destination is a [`queue::Transport`] in its own file, a config type
//! beside it, and one arm in [`SinkConfig`].
//!
//! The Parquet archive is not a sink: the ordered stage writes it before detection sees the
//! events ([`crate::archive`]).

pub mod alertmanager;
pub mod email;
pub mod encode;
pub mod events;
pub mod exec;
pub mod http;
pub mod output;
pub mod queue;
pub mod retry;
pub mod routes;
pub mod spec_options;
pub mod spool;
pub mod syslog;
pub mod tls;
pub mod webhook;

use std::io;
use std::time::Duration;

use crate::alert::{Alert, Severity};
use crate::shutdown::Shutdown;

/// Where alerts go.
pub trait AlertSink: Send {
    /// The destination, for messages (`stdout`, a path, an address).
    fn name(&self) -> &str;
    /// Hand over a batch of alerts. An error means the sink failed for good.
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()>;
    /// No more alerts: deliver what is queued (bounded once shutdown is triggered) and report.
    fn close(self: Box<Self>) -> DrainReport;
    /// Alerts dropped so far (a full queue or spool), for `secpipe.delivery_backlog`.
    fn dropped(&self) -> u64 {
        0
    }
    /// Alerts given to [`AlertSink::write`] that the transport has neither taken nor dropped
    /// yet: a bus worker acknowledges an alert only once this is 0 (0 for a sink whose write
    /// is done when it returns).
    fn in_flight(&self) -> u64 {
        0
    }
}

/// What a sink could deliver, reported by [`AlertSink::close`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Alerts given to [`AlertSink::write`].
    pub alerts: u64,
    /// Alerts the transport took.
    pub delivered: u64,
    /// Alerts dropped at a full queue (a sink that does not wait).
    pub dropped: u64,
    /// The drain limit gave up waiting for the transport.
    pub gave_up: bool,
    /// Why the transport stopped taking alerts, if it failed (a closed pipe is not a failure).
    pub failed: Option<String>,
    /// Undelivered alerts kept in the sink's spool in `--state`: the next run delivers them.
    pub spooled: u64,
    /// Alerts the receiver refused for good (a datagram, a batch answered 400), each said on
    /// stderr by the sink.
    pub refused: u64,
}

impl DrainReport {
    pub fn undelivered(&self) -> u64 {
        self.alerts.saturating_sub(self.delivered)
    }
}

/// One alert destination as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkConfig {
    /// Stdout or a file (`--alerts`).
    Output(output::OutputConfig),
    /// A syslog server (`--alerts syslog+udp://…`, `syslog+tcp://…`, `syslog+tls://…`).
    Syslog(syslog::SyslogConfig),
    /// A webhook receiver (`--alerts http(s)://…`).
    Webhook(webhook::WebhookConfig),
    /// A Prometheus Alertmanager (`--alerts alertmanager+http(s)://HOST:PORT`).
    Alertmanager(alertmanager::AlertmanagerConfig),
    /// Mail through an SMTP relay (`--alerts smtp://…`, `smtps://…`).
    Email(email::EmailConfig),
    /// A program run for each alert (`--alerts exec:/path`).
    Exec(exec::ExecConfig),
}

impl SinkConfig {
    /// An `--alerts` SPEC: `-` for stdout, a destination that reaches others
    /// (`syslog+udp|tcp|tls://…`, `http(s)://…`, `alertmanager+http(s)://…`, `smtp(s)://…`,
    /// `exec:/PATH`: each kind's `parse`), else a file path; stdout and files are written in
    /// `encoding`.
    pub fn parse(spec: &str, encoding: encode::Encoding) -> Result<SinkConfig, String> {
        if let Some(syslog) = syslog::SyslogConfig::parse(spec) {
            return syslog.map(SinkConfig::Syslog);
        }
        if let Some(webhook) = webhook::WebhookConfig::parse(spec) {
            return webhook.map(SinkConfig::Webhook);
        }
        if let Some(alertmanager) = alertmanager::AlertmanagerConfig::parse(spec) {
            return alertmanager.map(SinkConfig::Alertmanager);
        }
        if let Some(email) = email::EmailConfig::parse(spec) {
            return email.map(SinkConfig::Email);
        }
        if let Some(exec) = exec::ExecConfig::parse(spec) {
            return exec.map(SinkConfig::Exec);
        }
        // A URL of a scheme no destination takes is a mistake (`sylog+tcp://…`), not a file
        // named like one: say so rather than write alerts to `./sylog+tcp:/…`.
        if let Some((scheme, _)) = spec.split_once("://")
            && !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err(format!(
                "{spec}: no alert destination has the scheme {scheme}:// (a file path with \
                 :// in it can be written ./{spec})"
            ));
        }
        let dest = if spec == "-" {
            output::OutputDest::Stdout
        } else {
            output::OutputDest::File(spec.into())
        };
        Ok(SinkConfig::Output(output::OutputConfig { dest, encoding }))
    }

    /// Relative file paths (an alert file, and the key, header, password and CA files the
    /// destination reads) taken from `dir` (the config file's directory): a config names the
    /// same files wherever the run was started.
    pub fn with_files_in(self, dir: &std::path::Path) -> SinkConfig {
        use std::path::PathBuf;
        let within = |path: PathBuf| {
            if path.is_relative() {
                dir.join(path)
            } else {
                path
            }
        };
        let headers_within = |files: Option<std::collections::BTreeMap<String, PathBuf>>| {
            files.map(|files| files.into_iter().map(|(k, p)| (k, within(p))).collect())
        };
        match self {
            SinkConfig::Output(output::OutputConfig {
                dest: output::OutputDest::File(path),
                encoding,
            }) => SinkConfig::Output(output::OutputConfig {
                dest: output::OutputDest::File(within(path)),
                encoding,
            }),
            SinkConfig::Syslog(mut c) => {
                c.options.ca_file = c.options.ca_file.map(within);
                SinkConfig::Syslog(c)
            }
            SinkConfig::Webhook(mut c) => {
                c.options.secret_file = c.options.secret_file.map(within);
                c.options.header_files = headers_within(c.options.header_files);
                c.options.ca_file = c.options.ca_file.map(within);
                SinkConfig::Webhook(c)
            }
            SinkConfig::Alertmanager(mut c) => {
                c.options.header_files = headers_within(c.options.header_files);
                c.options.ca_file = c.options.ca_file.map(within);
                SinkConfig::Alertmanager(c)
            }
            SinkConfig::Email(mut c) => {
                c.options.password_file = c.options.password_file.map(within);
                c.options.ca_file = c.options.ca_file.map(within);
                SinkConfig::Email(c)
            }
            other => other,
        }
    }

    /// The destination's name in messages.
    pub fn name(&self) -> String {
        match self {
            SinkConfig::Output(cfg) => cfg.name(),
            SinkConfig::Syslog(cfg) => cfg.name(),
            SinkConfig::Webhook(cfg) => cfg.name(),
            SinkConfig::Alertmanager(cfg) => cfg.name(),
            SinkConfig::Email(cfg) => cfg.name(),
            SinkConfig::Exec(cfg) => cfg.name(),
        }
    }

    /// What tells this destination from every other, for the name of its spool in `--state`
    /// (two mail outputs through one relay to different people are two spools).
    fn identity(&self) -> String {
        match self {
            SinkConfig::Email(cfg) => cfg.identity(),
            SinkConfig::Webhook(cfg) => cfg.url.clone(),
            other => other.name(),
        }
    }

    /// Whether both name one destination (a file however spelled, stdout as `-` or
    /// `/dev/stdout`, the same syslog server).
    pub fn same_destination(&self, other: &SinkConfig) -> bool {
        match (self, other) {
            (SinkConfig::Output(a), SinkConfig::Output(b)) => a.dest.same_as(&b.dest),
            (a, b) => a == b,
        }
    }

    /// Whether alerts sent there reach people or other systems (a SIEM, a pager, a mailbox, a
    /// program), rather than a file or the terminal: `replay` sends there only when asked
    /// (`--deliver`), and with `--state` they are delivered from a spool.
    pub fn reaches_others(&self) -> bool {
        match self {
            SinkConfig::Output(_) => false,
            SinkConfig::Syslog(_) | SinkConfig::Email(_) | SinkConfig::Exec(_) => true,
            SinkConfig::Webhook(_) | SinkConfig::Alertmanager(_) => true,
        }
    }

    /// Open the destination. A destination that reaches others delivers from a spool in
    /// `--state` when there is one ([`spool`]), else from a queue that drops and counts when
    /// full ([`queue`]).
    pub fn open(&self, ctx: &OpenContext) -> Result<Box<dyn AlertSink>, String> {
        let remote = match self {
            SinkConfig::Output(cfg) => {
                let metrics = ctx.metrics.sink(&cfg.name());
                let sink = cfg
                    .open(metrics)?
                    .bound_drain(ctx.shutdown.clone(), ctx.drain);
                return Ok(Box::new(sink));
            }
            SinkConfig::Syslog(cfg) => cfg.remote()?,
            SinkConfig::Webhook(cfg) => cfg.remote(ctx)?,
            SinkConfig::Alertmanager(cfg) => cfg.remote(ctx)?,
            SinkConfig::Email(cfg) => cfg.remote(ctx)?,
            SinkConfig::Exec(cfg) => cfg.remote(ctx)?,
        };
        remote.open(ctx, &self.identity())
    }
}

/// What every sink of a run opens with.
#[derive(Clone)]
pub struct OpenContext {
    /// Bounds the wait for a sink once the run stops.
    pub shutdown: Shutdown,
    /// `--drain-timeout`.
    pub drain: Duration,
    /// `--state`: where network sinks keep their spools.
    pub state: Option<std::path::PathBuf>,
    /// The most bytes one spool may hold.
    pub spool_bytes: u64,
    /// Where each sink counts what it delivered (`--metrics`).
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

/// A destination on the network, before its delivery is chosen: its name in messages, the
/// transport that reaches it and the encoding it reads.
pub struct Remote {
    pub name: String,
    pub transport: Box<dyn queue::Transport>,
    pub encoding: encode::Encoding,
}

impl Remote {
    fn open(self, ctx: &OpenContext, identity: &str) -> Result<Box<dyn AlertSink>, String> {
        let drain = retry::DrainClock::new(ctx.shutdown.clone(), ctx.drain);
        let metrics = ctx.metrics.sink(&self.name);
        Ok(match &ctx.state {
            Some(state) => {
                let dir = spool::spool_dir(state, identity, self.encoding);
                let sink = spool::SpooledSink::open(
                    self.name.clone(),
                    dir.clone(),
                    self.transport,
                    self.encoding,
                    ctx.spool_bytes,
                    drain,
                    metrics,
                )
                .map_err(|e| format!("--alerts {}: spool {}: {e}", self.name, dir.display()))?;
                if sink.carried() > 0 {
                    crate::report::note(&format!(
                        "alerts: {}: {} alerts left undelivered by an earlier run are sent first",
                        self.name,
                        sink.carried()
                    ));
                }
                Box::new(sink)
            }
            None => Box::new(
                queue::QueuedSink::start(
                    self.name,
                    self.transport,
                    self.encoding,
                    queue::WhenFull::Drop,
                    metrics,
                )
                .bound_drain(ctx.shutdown.clone(), ctx.drain),
            ),
        })
    }
}

/// Every alert destination of a run.
pub struct AlertSinks {
    sinks: Vec<Member>,
}

struct Member {
    sink: Box<dyn AlertSink>,
    /// Alerts below it are not given to this sink.
    min_severity: Severity,
    /// Drops already reported by `secpipe.delivery_backlog`, and when (wall clock, µs).
    dropped_reported: u64,
    backlog_alerted_at: Option<i64>,
    /// Why the sink stopped taking alerts; it is not written to again.
    failed: Option<io::Error>,
    /// Alerts not given to it after it failed.
    skipped: u64,
}

impl AlertSinks {
    /// Each sink with the lowest severity it takes.
    pub fn new(sinks: Vec<(Box<dyn AlertSink>, Severity)>) -> AlertSinks {
        AlertSinks {
            sinks: sinks
                .into_iter()
                .map(|(sink, min_severity)| Member {
                    sink,
                    min_severity,
                    dropped_reported: 0,
                    backlog_alerted_at: None,
                    failed: None,
                    skipped: 0,
                })
                .collect(),
        }
    }

    /// Alerts some working sink has taken but not delivered yet ([`AlertSink::in_flight`]).
    pub fn in_flight(&self) -> u64 {
        self.sinks
            .iter()
            .filter(|m| m.failed.is_none())
            .map(|m| m.sink.in_flight())
            .sum()
    }

    /// Give `alerts` to every sink that has not failed. A sink that fails now is reported once
    /// on stderr (quietly when it is a closed pipe: `secpipe | head`) and left out from then on;
    /// the others still get every alert. Returns an error only when the last working sink has
    /// failed with something other than a closed pipe: then nobody hears about attacks.
    pub fn write(&mut self, alerts: &[Alert]) -> Result<(), String> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut newly_failed = None;
        let mut kept = Vec::new();
        for member in &mut self.sinks {
            let alerts = if alerts.iter().all(|a| a.severity >= member.min_severity) {
                alerts
            } else {
                kept.clear();
                kept.extend(
                    alerts
                        .iter()
                        .filter(|a| a.severity >= member.min_severity)
                        .cloned(),
                );
                &kept[..]
            };
            if alerts.is_empty() {
                continue;
            }
            if member.failed.is_some() {
                member.skipped += alerts.len() as u64;
                continue;
            }
            if let Err(e) = member.sink.write(alerts) {
                let message = format!("{}: {e}", member.sink.name());
                if e.kind() != io::ErrorKind::BrokenPipe {
                    crate::report::warn(&format!("alerts: {message}; no more alerts go there"));
                    newly_failed = Some(message);
                }
                member.failed = Some(e);
            }
        }
        let all_failed = self.sinks.iter().all(|m| m.failed.is_some());
        match newly_failed {
            Some(message) if all_failed => Err(format!("alerts: {message}")),
            _ => Ok(()),
        }
    }

    /// `secpipe.delivery_backlog` for each sink that dropped alerts since the last such alert
    /// about it, at most one a minute per sink (the drops of that minute are counted in the
    /// next): a receiver that is down for a day makes a few dozen alerts, not one per drop.
    pub fn backlog_alerts(&mut self, now: i64) -> Vec<Alert> {
        const EVERY: i64 = 60_000_000;
        let mut raised = Vec::new();
        for member in &mut self.sinks {
            let dropped = member.sink.dropped();
            let new = dropped.saturating_sub(member.dropped_reported);
            if new == 0 || member.backlog_alerted_at.is_some_and(|at| now - at < EVERY) {
                continue;
            }
            member.dropped_reported = dropped;
            member.backlog_alerted_at = Some(now);
            let name = member.sink.name().to_string();
            raised.push(Alert::about_secpipe(
                "secpipe.delivery_backlog",
                Severity::High,
                ("sink", name.clone()),
                new,
                now,
                format!(
                    "{new} alerts were dropped for {name} ({dropped} in all): it is down or too \
                     slow; the other outputs, and the archive if there is one, have them"
                ),
            ));
        }
        raised
    }

    /// Write [`AlertSinks::backlog_alerts`]: where one is dropped in turn, that drop is not
    /// reported again (it would raise a backlog alert a minute about nothing but itself).
    pub fn write_backlog(&mut self, backlog: &[Alert]) -> Result<(), String> {
        let before: Vec<u64> = self.sinks.iter().map(|m| m.sink.dropped()).collect();
        let written = self.write(backlog);
        for (member, before) in self.sinks.iter_mut().zip(before) {
            let own = member.sink.dropped().saturating_sub(before);
            member.dropped_reported = member.dropped_reported.saturating_add(own);
        }
        written
    }

    /// Close every sink; each one's name and what it could not deliver, and an error when
    /// every sink has failed (a failure the last writes only found at the close included).
    pub fn close(self) -> (Vec<(String, DrainReport)>, Option<String>) {
        let mut reports = Vec::with_capacity(self.sinks.len());
        let mut working = 0;
        let mut first_failure = None;
        for member in self.sinks {
            let name = member.sink.name().to_string();
            let mut report = member.sink.close();
            report.alerts += member.skipped;
            let closed_pipe = member
                .failed
                .as_ref()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe);
            if let Some(e) = &member.failed
                && !closed_pipe
            {
                report.failed = Some(e.to_string());
            }
            match &report.failed {
                Some(e) => {
                    first_failure.get_or_insert(format!("alerts: {name}: {e}"));
                }
                None if !closed_pipe => working += 1,
                None => {}
            }
            reports.push((name, report));
        }
        let all_failed = working == 0 && first_failure.is_some();
        (reports, first_failure.filter(|_| all_failed))
    }
}

/// Append `s` to `out` as a JSON string literal (with quotes). Attacker-controlled text passes
/// through here, so every control character is escaped.
///
/// ```
/// let mut out = String::new();
/// secpipe::sink::json_str(&mut out, "a\"b\n\u{1b}[31m");
/// assert_eq!(out, r#""a\"b\n\u001b[31m""#);
/// ```
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f | 0x7f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::queue::{QueuedSink, Transport, WhenFull, WriteTransport};
    use super::*;

    /// A destination that fails every write (a full disk, a peer that refuses).
    struct Failing;

    impl Transport for Failing {
        fn send(&mut self, _line: &[u8]) -> io::Result<()> {
            Err(io::Error::other("no space left"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Every file an `[[alerts]]` destination reads is taken from the config's directory
    /// when relative, and left alone when absolute.
    #[test]
    fn a_configs_destination_files_are_its_directorys() {
        let text = r#"
[[alerts]]
to = "syslog+tls://siem:6514"
syslog = { ca_file = "ca.pem" }

[[alerts]]
to = "alertmanager+https://am:9093"
alertmanager = { ca_file = "/etc/ca.pem", header_files = { Authorization = "am.auth" } }

[[alerts]]
to = "smtp://u@relay:25"
email = { from = "a@example.com", to = ["b@example.com"], password_file = "smtp.pass", ca_file = "ca.pem" }

[[alerts]]
to = "alerts.jsonl"
"#;
        let dir = std::path::Path::new("/etc/secpipe");
        let routes = match routes::routes_in_config(text) {
            Ok(routes) => routes,
            Err(e) => panic!("{}", e.message),
        };
        let sinks: Vec<SinkConfig> = routes
            .into_iter()
            .map(|r| r.to.with_files_in(dir))
            .collect();
        let at = |name: &str| Some(dir.join(name));
        match &sinks[..] {
            [
                SinkConfig::Syslog(syslog),
                SinkConfig::Alertmanager(am),
                SinkConfig::Email(email),
                SinkConfig::Output(file),
            ] => {
                assert_eq!(syslog.options.ca_file, at("ca.pem"));
                assert_eq!(am.options.ca_file, Some("/etc/ca.pem".into()));
                let auth = am
                    .options
                    .header_files
                    .as_ref()
                    .and_then(|h| h.get("Authorization"));
                assert_eq!(auth.cloned(), at("am.auth"));
                assert_eq!(email.options.password_file, at("smtp.pass"));
                assert_eq!(email.options.ca_file, at("ca.pem"));
                assert_eq!(
                    file.dest,
                    output::OutputDest::File(dir.join("alerts.jsonl"))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// What a sink opens with in a test: no state, no metrics endpoint.
    pub(crate) fn context(shutdown: &Shutdown, drain: Duration) -> OpenContext {
        OpenContext {
            shutdown: shutdown.clone(),
            drain,
            state: None,
            spool_bytes: spool::DEFAULT_SPOOL_BYTES,
            metrics: Default::default(),
        }
    }

    impl Remote {
        /// The network sink a run without `--state` makes of it.
        pub(crate) fn queued(self) -> QueuedSink {
            QueuedSink::start(
                self.name,
                self.transport,
                self.encoding,
                WhenFull::Drop,
                Default::default(),
            )
        }
    }

    /// An alert as the tests of every sink write it.
    pub(crate) fn alert(n: u64) -> Alert {
        Alert {
            id: format!("{n:02}"),
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
    fn a_failing_sink_does_not_silence_the_others() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let good = QueuedSink::start(
            "file".into(),
            WriteTransport(Box::new(file.reopen().expect("reopen"))),
            encode::Encoding::Json,
            WhenFull::Wait,
            Default::default(),
        );
        let bad = QueuedSink::start(
            "bad".into(),
            Failing,
            encode::Encoding::Json,
            WhenFull::Wait,
            Default::default(),
        );
        let mut sinks = AlertSinks::new(vec![
            (Box::new(bad), Severity::Low),
            (Box::new(good), Severity::Low),
        ]);
        for n in 0..50 {
            // The failing sink's error surfaces on a later write; the run goes on.
            assert!(sinks.write(&[alert(n)]).is_ok(), "one sink still works");
        }
        let (reports, all_failed) = sinks.close();
        assert_eq!(all_failed, None, "one sink worked");
        let text = std::fs::read_to_string(file.path()).expect("read");
        assert_eq!(text.lines().count(), 50, "the working sink got every alert");
        let (name, bad) = &reports[0];
        assert_eq!((name.as_str(), bad.alerts, bad.delivered), ("bad", 50, 0));
        assert_eq!(reports[1].1.delivered, 50);
    }

    /// The only sink failed on the last alerts of a run (all decided at its end): the write
    /// was queued before the failure, so only the close can tell, and it does.
    #[test]
    fn a_failure_found_only_at_the_close_still_fails_the_run() {
        let bad = QueuedSink::start(
            "bad".into(),
            Failing,
            encode::Encoding::Json,
            WhenFull::Wait,
            Default::default(),
        );
        let mut sinks = AlertSinks::new(vec![(Box::new(bad), Severity::Low)]);
        sinks.write(&[alert(1)]).expect("queued before the failure");
        let (reports, all_failed) = sinks.close();
        assert_eq!(all_failed.as_deref(), Some("alerts: bad: no space left"));
        assert_eq!(reports[0].1.failed.as_deref(), Some("no space left"));
    }

    #[test]
    fn when_every_sink_has_failed_the_run_is_told() {
        let bad = QueuedSink::start(
            "bad".into(),
            Failing,
            encode::Encoding::Text,
            WhenFull::Wait,
            Default::default(),
        );
        let mut sinks = AlertSinks::new(vec![(Box::new(bad), Severity::Low)]);
        let mut outcome = Ok(());
        for n in 0..1000 {
            outcome = sinks.write(&[alert(n)]);
            if outcome.is_err() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let error = outcome.expect_err("the only sink failed");
        assert!(error.contains("bad: no space left"), "{error}");
    }

    #[test]
    fn json_str_round_trips_through_serde() {
        let samples = [
            "",
            "plain",
            "quote\" back\\ nl\n tab\t",
            "\u{0}\u{1f}\u{7f}é漢字",
            "\u{2028}",
        ];
        for s in samples {
            let mut out = String::new();
            super::json_str(&mut out, s);
            let back: String = serde_json::from_str(&out).expect("valid JSON");
            assert_eq!(back, s);
        }
    }

    /// Drops as many alerts as it is given.
    struct Overflowing {
        dropped: u64,
    }

    impl AlertSink for Overflowing {
        fn name(&self) -> &str {
            "syslog+tcp://pager:6514"
        }
        fn write(&mut self, alerts: &[Alert]) -> io::Result<()> {
            self.dropped += alerts.len() as u64;
            Ok(())
        }
        fn close(self: Box<Self>) -> DrainReport {
            DrainReport::default()
        }
        fn dropped(&self) -> u64 {
            self.dropped
        }
    }

    /// A sink that drops alerts raises `secpipe.delivery_backlog` about itself, at most once a
    /// minute, counting every drop since the last one; a sink that drops nothing raises none.
    #[test]
    fn drops_raise_one_backlog_alert_a_minute() {
        let mut sinks = AlertSinks::new(vec![
            (Box::new(Overflowing { dropped: 0 }), Severity::Low),
            (Box::new(Overflowing { dropped: 0 }), Severity::Critical),
        ]);
        assert!(sinks.backlog_alerts(0).is_empty());
        sinks.write(&[alert(1), alert(2)]).expect("written");
        let raised = sinks.backlog_alerts(1_000_000);
        assert_eq!(
            raised.len(),
            1,
            "the second sink took nothing below CRITICAL"
        );
        assert_eq!(raised[0].rule, "secpipe.delivery_backlog");
        assert_eq!((raised[0].key_field.as_str(), raised[0].count), ("sink", 2));
        assert_eq!(raised[0].key_value, "syslog+tcp://pager:6514");
        sinks.write(&[alert(3)]).expect("written");
        assert!(sinks.backlog_alerts(30_000_000).is_empty(), "once a minute");
        sinks.write(&[alert(4)]).expect("written");
        let raised = sinks.backlog_alerts(61_000_001);
        assert_eq!(raised.len(), 1);
        assert_eq!(
            raised[0].count, 2,
            "the drops of the quiet minute are counted"
        );
        assert!(
            sinks.backlog_alerts(200_000_000).is_empty(),
            "nothing new dropped"
        );
    }

    /// The backlog alert goes to every sink, the one that drops too: dropping it there is not
    /// a new backlog (else a sink that is down raises one a minute for ever, with no alert
    /// lost but its own).
    #[test]
    fn a_dropped_backlog_alert_raises_no_further_backlog() {
        let mut sinks =
            AlertSinks::new(vec![(Box::new(Overflowing { dropped: 0 }), Severity::Low)]);
        sinks.write(&[alert(1)]).expect("written");
        let raised = sinks.backlog_alerts(1_000_000);
        assert_eq!(raised.len(), 1);
        sinks.write_backlog(&raised).expect("written");
        assert!(
            sinks.backlog_alerts(62_000_000).is_empty(),
            "only the backlog alert itself was dropped"
        );
        sinks.write(&[alert(2)]).expect("written");
        let raised = sinks.backlog_alerts(123_000_000);
        assert_eq!(
            (raised.len(), raised[0].count),
            (1, 1),
            "a real drop still is"
        );
    }
}
