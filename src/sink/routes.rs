//! Which alerts go where: `--alerts SPEC` (every alert) and the `[[alerts]]` tables of
//! `secpipe.toml`, each with its own severity floor, format and settings:
//!
//! ```toml
//! [[alerts]]                      # the pager: only what cannot wait
//! to = "syslog+tcp://siem.example:6514"
//! min_severity = "high"
//!
//! [[alerts]]                      # everything, for the record
//! to = "/var/log/secpipe/alerts.jsonl"
//! format = "json"
//! ```
//!
//! `to` takes every `--alerts` SPEC. `format` (`json`, `text`) applies to a file or stdout;
//! a network destination has the format its receiver reads. A destination's own settings go
//! in one table named for its kind (`webhook = { batch = true }`, `email = { from = …, to =
//! […] }`, `alertmanager`, `syslog`, `exec`; each kind's `…Options`). A table may hold only
//! the keys its destination knows (a misspelt key is an error with its line and column, not a
//! setting silently ignored).

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::SinkConfig;
use super::alertmanager::AlertmanagerOptions;
use super::email::{EmailConfig, EmailOptions};
use super::encode::Encoding;
use super::exec::{ExecConfig, ExecOptions};
use super::syslog::{SyslogConfig, SyslogOptions};
use super::webhook::WebhookOptions;
use crate::alert::{Alert, Severity};

/// One destination and the alerts it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRoute {
    pub to: SinkConfig,
    /// Alerts below this severity are not sent there.
    pub min_severity: Severity,
}

impl AlertRoute {
    /// Every alert to `to` (`--alerts SPEC`).
    pub fn every_alert(to: SinkConfig) -> AlertRoute {
        AlertRoute {
            to,
            min_severity: Severity::Low,
        }
    }

    /// Whether `alert` goes this way.
    pub fn takes(&self, alert: &Alert) -> bool {
        alert.severity >= self.min_severity
    }
}

/// A mistake in the `[[alerts]]` tables, at a place in the file.
#[derive(Debug)]
pub struct RouteError {
    pub span: Option<Range<usize>>,
    pub message: String,
}

/// The `secpipe.toml` sections other components read are ignored here.
#[derive(Deserialize)]
struct RoutesFile {
    #[serde(default)]
    alerts: Vec<Spanned<RouteSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    to: Spanned<String>,
    min_severity: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    /// The destination's own settings: at most one table, of its kind.
    syslog: Option<Spanned<SyslogOptions>>,
    webhook: Option<Spanned<WebhookOptions>>,
    alertmanager: Option<Spanned<AlertmanagerOptions>>,
    email: Option<Spanned<EmailOptions>>,
    exec: Option<Spanned<ExecOptions>>,
}

impl RouteSpec {
    /// The settings table given, by kind, and where it is.
    fn settings(&self) -> Vec<(&'static str, Range<usize>)> {
        let mut given = Vec::new();
        let spans = [
            ("syslog", self.syslog.as_ref().map(Spanned::span)),
            ("webhook", self.webhook.as_ref().map(Spanned::span)),
            (
                "alertmanager",
                self.alertmanager.as_ref().map(Spanned::span),
            ),
            ("email", self.email.as_ref().map(Spanned::span)),
            ("exec", self.exec.as_ref().map(Spanned::span)),
        ];
        for (kind, span) in spans {
            if let Some(span) = span {
                given.push((kind, span));
            }
        }
        given
    }
}

/// The `[[alerts]]` tables of a config file's `text`, in file order.
///
/// ```
/// use secpipe::alert::Severity;
/// use secpipe::sink::routes::routes_in_config;
/// let text = "[[alerts]]\nto = \"syslog+tcp://siem:6514\"\nmin_severity = \"high\"\n";
/// let routes = routes_in_config(text).unwrap();
/// assert_eq!(routes[0].min_severity, Severity::High);
/// let err = routes_in_config("[[alerts]]\nto = \"-\"\nmin_severty = \"high\"\n").unwrap_err();
/// assert!(err.message.contains("min_severity"), "{}", err.message);
/// ```
pub fn routes_in_config(text: &str) -> Result<Vec<AlertRoute>, RouteError> {
    let file: RoutesFile = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().to_string();
        let hint = if message.starts_with("unknown field") {
            "; check the spelling against the README's \"Alert outputs\""
        } else {
            ""
        };
        RouteError {
            span: e.span(),
            message: format!("{message}{hint}"),
        }
    })?;
    file.alerts
        .iter()
        .map(|spec| route(spec.get_ref()))
        .collect()
}

fn route(spec: &RouteSpec) -> Result<AlertRoute, RouteError> {
    let at = |value: &Spanned<String>, message: String| RouteError {
        span: Some(value.span()),
        message,
    };
    let encoding = match &spec.format {
        None => Encoding::Json,
        Some(format) => match format.get_ref().as_str() {
            "json" => Encoding::Json,
            "text" => Encoding::Text,
            "ocsf" => Encoding::Ocsf,
            other => {
                return Err(at(
                    format,
                    format!("format {other:?}: use json, text or ocsf"),
                ));
            }
        },
    };
    let min_severity = match &spec.min_severity {
        None => Severity::Low,
        Some(text) => Severity::parse(text.get_ref()).ok_or_else(|| {
            at(
                text,
                format!(
                    "min_severity {:?}: use low, medium, high or critical",
                    text.get_ref()
                ),
            )
        })?,
    };
    let to = destination(spec, encoding)?;
    if spec.format.is_some() && !matches!(to, SinkConfig::Output(_)) {
        return Err(at(
            &spec.to,
            format!(
                "{}: format applies to a file or stdout; a network destination has its own",
                spec.to.get_ref()
            ),
        ));
    }
    Ok(AlertRoute { to, min_severity })
}

/// `to` with the settings table of its kind, if one is given.
fn destination(spec: &RouteSpec, encoding: Encoding) -> Result<SinkConfig, RouteError> {
    let url = spec.to.get_ref();
    let at_to = |message: String| RouteError {
        span: Some(spec.to.span()),
        message,
    };
    let settings = spec.settings();
    if let Some((_, span)) = settings.get(1) {
        return Err(RouteError {
            span: Some(span.clone()),
            message: "one destination, one settings table".into(),
        });
    }
    if let Some(email) = &spec.email
        && let Some(parsed) = EmailConfig::parse_with(url, Some(email.get_ref().clone()))
    {
        return parsed.map(SinkConfig::Email).map_err(at_to);
    }
    let to = SinkConfig::parse(url, encoding).map_err(at_to)?;
    let Some((kind, span)) = settings.first().cloned() else {
        return Ok(to);
    };
    let mismatch = || RouteError {
        span: Some(span.clone()),
        message: format!("`{kind}` settings for {url}, which is not a {kind} destination"),
    };
    // Settings of syslog and exec may also come in the URL's query; only one place counts.
    if matches!(kind, "syslog" | "exec") && url.contains('?') {
        return Err(at_to(format!(
            "give the settings in the URL's query or in the `{kind}` table, not both"
        )));
    }
    let configured = match (to, spec) {
        (
            SinkConfig::Webhook(cfg),
            RouteSpec {
                webhook: Some(o), ..
            },
        ) => cfg
            .with_options(o.get_ref().clone())
            .map(SinkConfig::Webhook),
        (
            SinkConfig::Alertmanager(cfg),
            RouteSpec {
                alertmanager: Some(o),
                ..
            },
        ) => cfg
            .with_options(o.get_ref().clone())
            .map(SinkConfig::Alertmanager),
        (
            SinkConfig::Syslog(cfg),
            RouteSpec {
                syslog: Some(o), ..
            },
        ) => SyslogConfig::with_options(cfg.transport, &cfg.address, o.get_ref().clone())
            .map(SinkConfig::Syslog),
        (SinkConfig::Exec(cfg), RouteSpec { exec: Some(o), .. }) => {
            ExecConfig::with_options(cfg.program, o.get_ref().clone()).map(SinkConfig::Exec)
        }
        _ => return Err(mismatch()),
    };
    configured.map_err(|message| RouteError {
        span: Some(span),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_route_can_write_ocsf() {
        let text = "[[alerts]]\nto = \"/tmp/lake.ocsf.jsonl\"\nformat = \"ocsf\"\n";
        let routes = routes_in_config(text).expect("routes");
        match &routes[0].to {
            SinkConfig::Output(out) => assert_eq!(out.encoding, Encoding::Ocsf),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn routes_keep_file_order_and_their_floors() {
        let text = r#"
[rules."auth.bruteforce"]
threshold = 3

[[alerts]]
to = "syslog+tcp://siem.example:6514"
min_severity = "critical"

[[alerts]]
to = "/tmp/all.jsonl"
format = "text"
"#;
        let routes = routes_in_config(text).expect("routes");
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].min_severity, Severity::Critical);
        assert!(matches!(routes[0].to, SinkConfig::Syslog(_)));
        assert_eq!(routes[1].min_severity, Severity::Low);
        match &routes[1].to {
            SinkConfig::Output(out) => assert_eq!(out.encoding, Encoding::Text),
            other => panic!("{other:?}"),
        }
        let mut alert = crate::sink::tests::alert(1);
        alert.severity = Severity::High;
        assert!(!routes[0].takes(&alert));
        assert!(routes[1].takes(&alert));
        alert.severity = Severity::Critical;
        assert!(routes[0].takes(&alert));
    }

    #[test]
    fn mistakes_point_at_their_place() {
        let text = "[[alerts]]\nto = \"-\"\nmin_severity = \"urgent\"\n";
        let err = routes_in_config(text).expect_err("unknown severity");
        let span = err.span.expect("a place");
        assert_eq!(&text[span], "\"urgent\"");
        let err =
            routes_in_config("[[alerts]]\nto = \"syslog+udp://siem\"\n").expect_err("no port");
        assert!(err.message.contains("HOST:PORT"), "{}", err.message);
        let err = routes_in_config("[[alerts]]\nmin_severity = \"high\"\n").expect_err("no to");
        assert!(err.message.contains("to"), "{}", err.message);
        let err =
            routes_in_config("[[alerts]]\nto = \"syslog+udp://siem:514\"\nformat = \"text\"\n")
                .expect_err("a format for the network");
        assert!(err.message.contains("network"), "{}", err.message);
    }

    #[test]
    fn each_destination_takes_the_settings_table_of_its_kind() {
        let text = r#"
[[alerts]]
to = "https://hooks.example/secpipe"
webhook = { batch = true, max_batch = 20 }

[[alerts]]
to = "smtp://relay.example"
min_severity = "critical"
email = { from = "secpipe@example.com", to = ["soc@example.com", "oncall@example.com"] }

[[alerts]]
to = "exec:/usr/local/bin/page"
exec = { args = ["--team", "sec"], timeout = "5s" }
"#;
        let routes = routes_in_config(text).expect("routes");
        match &routes[0].to {
            SinkConfig::Webhook(cfg) => {
                assert_eq!(
                    (cfg.options.batch, cfg.options.max_batch),
                    (Some(true), Some(20))
                );
            }
            other => panic!("{other:?}"),
        }
        match &routes[1].to {
            SinkConfig::Email(cfg) => {
                assert_eq!((cfg.host.as_str(), cfg.port), ("relay.example", 587));
                assert_eq!(cfg.options.to.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(routes[1].min_severity, Severity::Critical);
        match &routes[2].to {
            SinkConfig::Exec(cfg) => assert_eq!(cfg.options.args, ["--team", "sec"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn settings_that_cannot_apply_are_refused_at_their_place() {
        let cases = [
            // A table of another kind.
            (
                "[[alerts]]\nto = \"syslog+tcp://siem:6514\"\nwebhook = { batch = true }\n",
                "not a webhook destination",
            ),
            // Two tables.
            (
                "[[alerts]]\nto = \"exec:/bin/true\"\nexec = {}\nsyslog = {}\n",
                "one settings table",
            ),
            // Settings in two places.
            (
                "[[alerts]]\nto = \"syslog+tls://siem:6514?server_name=siem\"\nsyslog = { ca_file = \"/ca.pem\" }\n",
                "not both",
            ),
            (
                "[[alerts]]\nto = \"smtp://relay?from=a@example.com&to=b@example.com\"\nemail = { from = \"a@example.com\", to = [\"b@example.com\"] }\n",
                "not both",
            ),
            // A misspelt setting inside the table.
            (
                "[[alerts]]\nto = \"https://hooks.example/x\"\nwebhook = { bacth = true }\n",
                "bacth",
            ),
        ];
        for (text, expected) in cases {
            let err = routes_in_config(text).expect_err(text);
            assert!(err.message.contains(expected), "{text}: {}", err.message);
            assert!(err.span.is_some(), "{text}");
        }
    }
}
