//! sink: where alerts go, and (for `secpipe events`) events.
//!
//! Every alert destination is an [`AlertSink`]; the ordered stage writes each batch of alerts
//! to all of them through [`AlertSinks`]. How alerts are written ([`encode::Encoding`]) is
//! chosen per sink and kept apart from where they go ([`queue::Transport`]). Every sink runs its
//! transport on its own thread behind a bounded queue ([`queue::QueuedSink`]): one that may
//! block for long (the network) drops and counts at a full queue, so it never stalls
//! detection; the alert output (stdout, `--alerts FILE`) waits instead, so a consumer that
//! stops reading slows detection (and every other sink) until shutdown bounds the wait
//! (`--drain-timeout`). A sink that fails is reported and left out, and the others go
//! on. Adding a destination is a [`queue::Transport`] (or an [`AlertSink`]) in its own file, a
//! config type beside it, and one arm in [`SinkConfig::open`].
//!
//! The Parquet archive is not a sink: the ordered stage writes it before detection sees the
//! events ([`crate::archive`]).

pub mod alertmanager;
pub mod encode;
pub mod events;
pub mod http;
pub mod output;
pub mod queue;
pub mod retry;
pub mod syslog;
pub mod webhook;

use std::io;
use std::time::Duration;

use crate::alert::Alert;
use crate::shutdown::Shutdown;

/// Where alerts go.
pub trait AlertSink: Send {
    /// The destination, for messages (`stdout`, a path, an address).
    fn name(&self) -> &str;
    /// Hand over a batch of alerts. An error means the sink failed for good.
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()>;
    /// No more alerts: deliver what is queued (bounded once shutdown is triggered) and report.
    fn close(self: Box<Self>) -> DrainReport;
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
    /// A syslog server (`--alerts syslog+udp://…`, `syslog+tcp://…`).
    Syslog(syslog::SyslogConfig),
    /// A webhook receiver (`--alerts http(s)://…`).
    Webhook(webhook::WebhookConfig),
    /// A Prometheus Alertmanager (`--alerts alertmanager+http(s)://HOST:PORT`).
    Alertmanager(alertmanager::AlertmanagerConfig),
}

impl SinkConfig {
    /// An `--alerts` SPEC: `syslog+udp://HOST:PORT` or `syslog+tcp://HOST:PORT`, a webhook
    /// `http(s)://…`, an Alertmanager `alertmanager+http(s)://HOST:PORT`, `-` for stdout, else
    /// a file path; stdout and files are written in `encoding` (the network sinks have their
    /// own).
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
        let dest = if spec == "-" {
            output::OutputDest::Stdout
        } else {
            output::OutputDest::File(spec.into())
        };
        Ok(SinkConfig::Output(output::OutputConfig { dest, encoding }))
    }

    /// Whether both name one destination (a file however spelled, stdout as `-` or
    /// `/dev/stdout`, the same syslog server).
    pub fn same_destination(&self, other: &SinkConfig) -> bool {
        match (self, other) {
            (SinkConfig::Output(a), SinkConfig::Output(b)) => a.dest.same_as(&b.dest),
            (a, b) => a == b,
        }
    }

    /// Whether alerts sent there reach people or other systems (a syslog server, later a pager
    /// or a block list), rather than a file or the terminal: `replay` sends there only when
    /// asked (`--deliver`).
    pub fn reaches_others(&self) -> bool {
        match self {
            SinkConfig::Output(_) => false,
            SinkConfig::Syslog(_) => true,
            SinkConfig::Webhook(_) | SinkConfig::Alertmanager(_) => true,
        }
    }

    /// Open the destination. `shutdown` and `drain` bound the wait for it once the run stops.
    pub fn open(&self, shutdown: &Shutdown, drain: Duration) -> Result<Box<dyn AlertSink>, String> {
        let sink = match self {
            SinkConfig::Output(cfg) => cfg.open()?,
            SinkConfig::Syslog(cfg) => cfg.open()?,
            SinkConfig::Webhook(cfg) => cfg.open(shutdown, drain)?,
            SinkConfig::Alertmanager(cfg) => cfg.open(shutdown, drain)?,
        };
        Ok(Box::new(sink.bound_drain(shutdown.clone(), drain)))
    }
}

/// Every alert destination of a run.
pub struct AlertSinks {
    sinks: Vec<Member>,
}

struct Member {
    sink: Box<dyn AlertSink>,
    /// Why the sink stopped taking alerts; it is not written to again.
    failed: Option<io::Error>,
    /// Alerts not given to it after it failed.
    skipped: u64,
}

impl AlertSinks {
    pub fn new(sinks: Vec<Box<dyn AlertSink>>) -> AlertSinks {
        AlertSinks {
            sinks: sinks
                .into_iter()
                .map(|sink| Member {
                    sink,
                    failed: None,
                    skipped: 0,
                })
                .collect(),
        }
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
        for member in &mut self.sinks {
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
        );
        let bad = QueuedSink::start(
            "bad".into(),
            Failing,
            encode::Encoding::Json,
            WhenFull::Wait,
        );
        let mut sinks = AlertSinks::new(vec![Box::new(bad), Box::new(good)]);
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
        );
        let mut sinks = AlertSinks::new(vec![Box::new(bad)]);
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
        );
        let mut sinks = AlertSinks::new(vec![Box::new(bad)]);
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
}
