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
//! a network destination has the format its receiver reads. A table may hold only the keys
//! its destination knows (a misspelt key is an error with its line and column, not a setting
//! silently ignored).

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::SinkConfig;
use super::encode::Encoding;
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
            "; an [[alerts]] table takes to, min_severity and format"
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
            other => return Err(at(format, format!("format {other:?}: use json or text"))),
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
    let to = SinkConfig::parse(spec.to.get_ref(), encoding).map_err(|e| at(&spec.to, e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
