//! `--alerts smtp://[USER@]HOST[:PORT]?from=…&to=…` (and `smtps://` for implicit TLS): alerts
//! by mail through a relay (a local MTA, the company's submission server), one message per
//! alert or, with `digest = "10m"`, one message every ten minutes listing the alerts since the
//! last one.
//!
//! **Settings.** In the URL's query or the `email = { … }` table of `secpipe.toml`
//! ([`EmailOptions`]): `from` (one address), `to` (one or more), `password_file` (the password
//! for AUTH as `USER`: read from a file when the sink opens, never from the command line or the
//! URL, where `ps` and shell histories would show it), `starttls`, `digest`, `ca_file`. The
//! port defaults to 587 (submission, STARTTLS) for `smtp://` and 465 for `smtps://`.
//!
//! **TLS.** `smtps://` speaks TLS from the start. `smtp://` upgrades with STARTTLS, which is
//! *required* unless the relay is on this host (loopback: used when offered): a relay that
//! does not offer it, or whose certificate is not trusted ([`super::tls`]) for its name, gets
//! nothing. `starttls = "off"` turns it off; it is refused with a password to a relay that is
//! not on this host, which would send the password in clear.
//!
//! **Attacker text stays in the body.** The subject is `[secpipe] SEVERITY rule field=key`, and
//! the key is attacker-controlled: every control and invisible character in it is shown as a
//! visible escape (`\r`, `\n`, `\u{…}`, as the text alert format does), the subject is cut to
//! [`SUBJECT_CHARS`], and the message builder encodes what is not ASCII. So no CR or LF can end
//! the header, add a `Bcc:` or a recipient; the envelope's recipients are only the configured
//! `to`. The body shows the same cleaned text and the alert's JSON.
//!
//! **Threads, delivery, limits.** Mail is sent on the sink's own thread, from a queue that drops
//! and counts when full or from the spool in `--state` ([`super::spool`]): a slow or dead relay
//! never stalls detection. A temporary failure (a connection error, a timeout, an SMTP 4xx) is
//! retried per the shared policy ([`super::retry`]: backoff with full jitter, bounded by the drain
//! limit at the stop); a permanent one (5xx: a recipient refused, a failed AUTH) is reported and
//! that alert counted as not delivered. In digest mode an alert counts as delivered when it joins
//! the digest; a digest holds at most [`DIGEST_MAX`] alerts (the rest are counted in it, "and N
//! more"), is sent when due and at the stop, and one that cannot be sent is reported on stderr with
//! the number of alerts it held.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{SmtpTransport, Transport as _};
use serde::Deserialize;
use serde_json::Value;

use super::encode::{Encoding, push_clean};
use super::queue::Transport;
use super::retry::{Attempt, DrainClock, GaveUp, RetryPolicy};

/// The longest subject, in characters (the rest is cut, marked `…`).
pub const SUBJECT_CHARS: usize = 160;

/// The most alerts one digest lists; the rest are counted in it.
pub const DIGEST_MAX: usize = 500;

/// How long one SMTP conversation may stall.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Evidence lines shown per alert in the body (all are in the JSON).
const EVIDENCE_SHOWN: usize = 10;

/// The optional settings of an email sink (the query of its URL, or `email = { … }` in
/// `secpipe.toml`).
///
/// ```
/// use secpipe::sink::email::EmailOptions;
/// let o: EmailOptions = toml::from_str(r#"from = "secpipe@example.com"
/// to = "soc@example.com"
/// digest = "10m""#).unwrap();
/// assert_eq!(o.to, ["soc@example.com"]);
/// let many: EmailOptions = toml::from_str(r#"to = ["a@example.com", "b@example.com"]"#).unwrap();
/// assert_eq!(many.to.len(), 2);
/// // A password is never an option: only the file that holds it.
/// let inline = toml::from_str::<EmailOptions>(r#"password = "hunter2""#).unwrap_err().to_string();
/// assert!(inline.contains("unknown field `password`") && inline.contains("`password_file`"), "{inline}");
/// ```
#[derive(Deserialize, Default, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EmailOptions {
    /// The sender (`From:` and the envelope's `MAIL FROM`).
    pub from: Option<String>,
    /// The recipients.
    #[serde(default, deserialize_with = "super::spec_options::one_or_many")]
    pub to: Vec<String>,
    /// File holding the AUTH password (its first line).
    pub password_file: Option<PathBuf>,
    /// `required`, `opportunistic` or `off` (default: required, or opportunistic on loopback).
    pub starttls: Option<String>,
    /// Send one digest per this period (`"10m"`) instead of a mail per alert.
    pub digest: Option<String>,
    /// PEM file of the CAs to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
}

/// How `smtp://` uses STARTTLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartTls {
    Required,
    /// When the relay offers it.
    Opportunistic,
    Off,
}

/// One email destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailConfig {
    /// `smtps://`: TLS from the first byte.
    pub implicit_tls: bool,
    /// The AUTH user (from the URL).
    pub user: Option<String>,
    pub host: String,
    pub port: u16,
    pub options: EmailOptions,
    from: Mailbox,
    to: Vec<Mailbox>,
    starttls: StartTls,
    digest: Option<Duration>,
    /// The shared retry policy ([`super::retry`]).
    pub retry: RetryPolicy,
}

impl EmailConfig {
    /// `smtp://[USER@]HOST[:PORT]?from=…&to=…[&…]` or `smtps://…`; `None` when `spec` is not a
    /// mail URL at all.
    ///
    /// ```
    /// use secpipe::sink::email::EmailConfig;
    /// let c = EmailConfig::parse(
    ///     "smtp://alerts%40example.com@mail.example?from=secpipe@example.com&to=soc@example.com&password_file=/etc/secpipe/smtp.pw",
    /// ).unwrap().unwrap();
    /// assert_eq!((c.user.as_deref(), c.host.as_str(), c.port), (Some("alerts@example.com"), "mail.example", 587));
    /// let no_to = EmailConfig::parse("smtp://mail.example?from=a@example.com").unwrap();
    /// assert!(no_to.unwrap_err().contains("`to`"));
    /// // A password in the URL would be on the command line for everyone to see.
    /// let inline = EmailConfig::parse("smtp://u:secret@mail.example?from=a@x.example&to=b@x.example");
    /// assert!(inline.unwrap().unwrap_err().contains("password_file"));
    /// assert!(EmailConfig::parse("alerts.jsonl").is_none());
    /// ```
    pub fn parse(spec: &str) -> Option<Result<EmailConfig, String>> {
        Self::parse_with(spec, None)
    }

    /// As [`EmailConfig::parse`], with the settings of a `secpipe.toml` `email = { … }` table
    /// when `table` is given (then the URL has no query: settings live in one place).
    pub fn parse_with(
        spec: &str,
        table: Option<EmailOptions>,
    ) -> Option<Result<EmailConfig, String>> {
        let (implicit_tls, rest) = if let Some(rest) = spec.strip_prefix("smtp://") {
            (false, rest)
        } else if let Some(rest) = spec.strip_prefix("smtps://") {
            (true, rest)
        } else {
            return None;
        };
        let scheme = if implicit_tls { "smtps" } else { "smtp" };
        let parsed =
            super::spec_options::split::<EmailOptions>(rest).and_then(|(authority, options)| {
                let options = match table {
                    None => options,
                    Some(table) if !rest.contains('?') => table,
                    Some(_) => {
                        return Err("give the settings in the URL's query or in the `email` \
                                    table, not both"
                            .into());
                    }
                };
                let authority = authority.trim_end_matches('/');
                let (user, host_port) = match authority.rsplit_once('@') {
                    Some((user, host_port)) => (Some(user), host_port),
                    None => (None, authority),
                };
                if user.is_some_and(|u| u.contains(':')) {
                    return Err("no password in the URL: give it in a file (password_file)".into());
                }
                let user = user.map(super::spec_options::decode).transpose()?;
                EmailConfig::with_options(implicit_tls, user, host_port, options)
            });
        Some(parsed.map_err(|e| format!("{scheme}://{}: {e}", without_userinfo(rest))))
    }

    /// A relay at `host_port` (`HOST`, `HOST:PORT` or `[IPv6]:PORT`) with its settings checked.
    ///
    /// ```
    /// use secpipe::sink::email::{EmailConfig, EmailOptions};
    /// let mut options = EmailOptions {
    ///     from: Some("secpipe@example.com".into()),
    ///     to: vec!["soc@example.com".into()],
    ///     starttls: Some("off".into()),
    ///     password_file: Some("/etc/secpipe/smtp.pw".into()),
    ///     ..Default::default()
    /// };
    /// // A password in clear to another host is refused ...
    /// let clear = EmailConfig::with_options(false, Some("u".into()), "mail.example", options.clone());
    /// assert!(clear.unwrap_err().contains("in clear"));
    /// // ... and allowed to this host's own relay.
    /// assert!(EmailConfig::with_options(false, Some("u".into()), "127.0.0.1:25", options.clone()).is_ok());
    /// options.password_file = None;
    /// options.digest = Some("ten minutes".into());
    /// assert!(EmailConfig::with_options(false, None, "localhost", options).unwrap_err().contains("digest"));
    /// ```
    pub fn with_options(
        implicit_tls: bool,
        user: Option<String>,
        host_port: &str,
        options: EmailOptions,
    ) -> Result<EmailConfig, String> {
        let default_port = if implicit_tls { 465 } else { 587 };
        let (host, port) = split_host_port(host_port, default_port)?;
        let from = options
            .from
            .as_deref()
            .ok_or("give the sender as `from`")?
            .parse::<Mailbox>()
            .map_err(|e| format!("from: {e}"))?;
        if options.to.is_empty() {
            return Err("give at least one recipient as `to`".into());
        }
        let to = options
            .to
            .iter()
            .map(|to| to.parse::<Mailbox>().map_err(|e| format!("to {to:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let local = is_loopback(&host);
        let starttls = match options.starttls.as_deref() {
            None if local => StartTls::Opportunistic,
            None | Some("required") => StartTls::Required,
            Some("opportunistic") => StartTls::Opportunistic,
            Some("off") => StartTls::Off,
            Some(other) => {
                return Err(format!(
                    "starttls = {other:?}: write required, opportunistic or off"
                ));
            }
        };
        if implicit_tls && options.starttls.is_some() {
            return Err("starttls is for smtp://; smtps:// is TLS from the start".into());
        }
        match (&user, &options.password_file) {
            (Some(_), None) => {
                return Err("AUTH needs the password in a file: password_file".into());
            }
            (None, Some(_)) => return Err("password_file needs a user: smtp://USER@HOST".into()),
            _ => {}
        }
        if user.is_some() && !implicit_tls && starttls != StartTls::Required && !local {
            return Err(format!(
                "a password would go to {host} in clear: keep starttls required (or use smtps://)"
            ));
        }
        let digest = match &options.digest {
            None => None,
            Some(text) => match super::retry::option_duration("digest", text)? {
                d if d.is_zero() => return Err("digest must be longer than 0".into()),
                d => Some(d),
            },
        };
        Ok(EmailConfig {
            implicit_tls,
            user,
            host,
            port,
            options,
            from,
            to,
            starttls,
            digest,
            retry: RetryPolicy::default(),
        })
    }

    /// What tells two mail outputs apart (the relay and who gets the mail), for its spool.
    pub fn identity(&self) -> String {
        let to: Vec<String> = self.to.iter().map(ToString::to_string).collect();
        format!("{}?from={}&to={}", self.name(), self.from, to.join(","))
    }

    /// The sink's name in messages (no user name: it may be a secret).
    pub fn name(&self) -> String {
        let scheme = if self.implicit_tls { "smtps" } else { "smtp" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    /// Read the password, set up TLS and start the sink's thread (the relay is first
    /// contacted at the first alert). Retrying stops at the drain limit once `shutdown` is
    /// triggered.
    pub fn remote(&self, ctx: &super::OpenContext) -> Result<super::Remote, String> {
        let name = self.name();
        let fail = |e: String| format!("--alerts {name}: {e}");
        let tls_parameters = || -> Result<TlsParameters, String> {
            let file = super::tls::trust_file(self.options.ca_file.as_deref());
            let mut builder =
                TlsParameters::builder(self.host.clone()).certificate_store(CertificateStore::None);
            for der in super::tls::read_pem_certs(&file)? {
                builder = builder.add_root_certificate(
                    Certificate::from_der(der.to_vec()).map_err(|e| e.to_string())?,
                );
            }
            builder.build_rustls().map_err(|e| format!("TLS: {e}"))
        };
        let tls = match (self.implicit_tls, self.starttls) {
            (true, _) => Tls::Wrapper(tls_parameters().map_err(fail)?),
            (false, StartTls::Required) => Tls::Required(tls_parameters().map_err(fail)?),
            (false, StartTls::Opportunistic) => Tls::Opportunistic(tls_parameters().map_err(fail)?),
            (false, StartTls::Off) => Tls::None,
        };
        let mut builder = SmtpTransport::builder_dangerous(self.host.clone())
            .port(self.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT))
            .hello_name(ClientId::Domain(
                super::encode::rfc5424::hostname().to_string(),
            ));
        if let (Some(user), Some(file)) = (&self.user, &self.options.password_file) {
            let password = read_password(file).map_err(fail)?;
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let transport = Mailer {
            name: name.clone(),
            smtp: builder.build(),
            from: self.from.clone(),
            to: self.to.clone(),
            retry: self.retry.clone(),
            clock: DrainClock::new(ctx.shutdown.clone(), ctx.drain),
            digest: self.digest.map(|every| Digest {
                every,
                alerts: Vec::new(),
                omitted: 0,
            }),
            reported: None,
        };
        Ok(super::Remote {
            name,
            transport: Box::new(transport),
            encoding: Encoding::Json,
        })
    }
}

/// The first line of `file`; an empty one is refused. A file others may read is used, with a
/// warning (as ssh warns about a private key).
fn read_password(file: &std::path::Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let name = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| format!("password_file {name}: {e}"))?;
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(format!("password_file {name}: the first line is empty"));
    }
    if let Ok(meta) = std::fs::metadata(file)
        && meta.permissions().mode() & 0o077 != 0
    {
        crate::report::warn(&format!(
            "password_file {name}: readable by others (mode {:o}); chmod 600 it",
            meta.permissions().mode() & 0o777
        ));
    }
    Ok(password.to_string())
}

/// The URL after the scheme without `USER[:PASSWORD]@`, for messages: a password given there
/// by mistake is not printed back.
fn without_userinfo(rest: &str) -> &str {
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest.get(..authority_end).and_then(|a| a.rfind('@')) {
        Some(at) => rest.get(at + 1..).unwrap_or_default(),
        None => rest,
    }
}

/// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
fn split_host_port(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let bad = || format!("{text:?}: give the relay as HOST or HOST:PORT");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(bad()),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
        return Err(bad());
    }
    let port = match port {
        None => default_port,
        Some(port) => port.parse().map_err(|_| bad())?,
    };
    Ok((host.to_string(), port))
}

/// Whether `host` is this host (`localhost`, 127.0.0.0/8, `::1`).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Alerts waiting for the next digest.
struct Digest {
    every: Duration,
    alerts: Vec<Value>,
    /// Alerts past [`DIGEST_MAX`], counted in the digest.
    omitted: u64,
}

/// Sends each alert, or each digest, through the relay.
struct Mailer {
    name: String,
    smtp: SmtpTransport,
    from: Mailbox,
    to: Vec<Mailbox>,
    retry: RetryPolicy,
    clock: DrainClock,
    digest: Option<Digest>,
    /// The last temporary failure reported on stderr.
    reported: Option<String>,
}

impl Mailer {
    /// Send one message, retrying temporary failures per the policy.
    fn deliver(&mut self, subject: &str, body: String) -> Result<(), GaveUp> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let message = builder.body(body).map_err(|e| GaveUp {
            error: format!("building the message: {e}"),
            retries: 0,
            at_drain_limit: false,
        })?;
        let smtp = &self.smtp;
        let name = &self.name;
        let reported = &mut self.reported;
        self.retry
            .run(&mut self.clock, |_| match smtp.send(&message) {
                Ok(_) => {
                    *reported = None;
                    Attempt::Done(())
                }
                Err(e) if e.is_permanent() => Attempt::Fail(e.to_string()),
                Err(e) => {
                    // Once per reason: a relay down for an hour is one line, not one per try.
                    let reason = e.to_string();
                    if reported.as_deref() != Some(reason.as_str()) {
                        crate::report::warn(&format!("alerts: {name}: {reason}; trying again"));
                        *reported = Some(reason.clone());
                    }
                    Attempt::retry(reason)
                }
            })
            .map(|_| ())
    }

    /// Send the digest if it holds anything.
    fn send_digest(&mut self) -> io::Result<()> {
        let Some(digest) = &mut self.digest else {
            return Ok(());
        };
        if digest.alerts.is_empty() {
            return Ok(());
        }
        let alerts = std::mem::take(&mut digest.alerts);
        let omitted = std::mem::take(&mut digest.omitted);
        let (subject, body) = digest_message(&alerts, omitted);
        if let Err(gave_up) = self.deliver(&subject, body) {
            crate::report::warn(&format!(
                "alerts: {}: a digest of {} alerts was not delivered: {gave_up}",
                self.name,
                alerts.len() as u64 + omitted
            ));
        }
        Ok(())
    }
}

impl Transport for Mailer {
    fn observe(&mut self, metrics: crate::metrics::SinkMetrics) {
        self.clock.observe(metrics);
    }

    fn send(&mut self, line: &[u8]) -> io::Result<()> {
        let alert: Value = serde_json::from_slice(line).map_err(io::Error::other)?;
        if let Some(digest) = &mut self.digest {
            if digest.alerts.len() < DIGEST_MAX {
                digest.alerts.push(alert);
            } else {
                digest.omitted += 1;
            }
            return Ok(());
        }
        let subject = alert_subject(&alert);
        let body = alert_body(&alert, line);
        self.deliver(&subject, body).map_err(|gave_up| {
            let message = format!(
                "alerts: {}: alert {} not delivered: {gave_up}",
                self.name,
                text(&alert, &["id"])
            );
            crate::report::warn(&message);
            gave_up.into_io_error(message)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// A mail the relay refused for good costs that alert (reported, counted), not the sink.
    fn stops_on_error(&self) -> bool {
        false
    }

    fn tick_every(&self) -> Option<Duration> {
        self.digest.as_ref().map(|d| d.every)
    }

    fn tick(&mut self) -> io::Result<()> {
        self.send_digest()
    }
}

impl Drop for Mailer {
    /// The stop: the alerts gathered since the last digest go out now, not never.
    fn drop(&mut self) {
        let _ = self.send_digest();
    }
}

/// A string field of the alert JSON (`["key", "value"]` for a nested one), cleaned for a
/// subject or a body line: every control or invisible character as a visible escape.
fn text(alert: &Value, path: &[&str]) -> String {
    let mut value = alert;
    for name in path {
        value = &value[*name];
    }
    let mut out = String::new();
    match value {
        Value::String(s) => push_clean(&mut out, s),
        Value::Null => {}
        other => push_clean(&mut out, &other.to_string()),
    }
    out
}

/// `[secpipe] HIGH auth.bruteforce src_ip=203.0.113.7`, cleaned and cut to [`SUBJECT_CHARS`].
///
/// ```
/// let alert = serde_json::json!({
///     "severity": "HIGH", "rule": "auth.bruteforce",
///     "key": { "field": "user", "value": "x\r\nBcc: evil@attacker.example" },
/// });
/// let subject = secpipe::sink::email::alert_subject(&alert);
/// assert_eq!(subject, r"[secpipe] HIGH auth.bruteforce user=x\r\nBcc: evil@attacker.example");
/// ```
pub fn alert_subject(alert: &Value) -> String {
    let subject = format!(
        "[secpipe] {} {} {}={}",
        text(alert, &["severity"]),
        text(alert, &["rule"]),
        text(alert, &["key", "field"]),
        text(alert, &["key", "value"])
    );
    cut(subject)
}

/// At most [`SUBJECT_CHARS`] characters, `…` marking a cut.
fn cut(subject: String) -> String {
    match subject.char_indices().nth(SUBJECT_CHARS) {
        Some((at, _)) => format!("{}…", subject.get(..at).unwrap_or_default()),
        None => subject,
    }
}

/// One alert, readable, then its JSON line as every sink writes it (escaped: no raw control
/// character in it).
fn alert_body(alert: &Value, json: &[u8]) -> String {
    let mut body = String::new();
    describe(alert, &mut body);
    body.push_str("\nThe alert as JSON:\n");
    body.push_str(String::from_utf8_lossy(json).trim_end());
    body.push('\n');
    body
}

/// The readable lines of one alert.
fn describe(alert: &Value, body: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(
        body,
        "{} {} ({}, respond within {})",
        text(alert, &["severity"]),
        text(alert, &["rule"]),
        text(alert, &["priority"]),
        text(alert, &["respond_within"])
    );
    let _ = writeln!(
        body,
        "{}={}  count {} of threshold {}",
        text(alert, &["key", "field"]),
        text(alert, &["key", "value"]),
        text(alert, &["count"]),
        text(alert, &["threshold"])
    );
    let _ = writeln!(body, "{}", text(alert, &["summary"]));
    let _ = writeln!(
        body,
        "window {} to {}; alert id {}",
        text(alert, &["window_start"]),
        text(alert, &["window_end"]),
        text(alert, &["id"])
    );
    if let Some(evidence) = alert["evidence"].as_array() {
        for line in evidence.iter().take(EVIDENCE_SHOWN) {
            let _ = writeln!(
                body,
                "  {}:{} {}",
                text(line, &["source"]),
                text(line, &["line"]),
                text(line, &["raw"])
            );
        }
        if evidence.len() > EVIDENCE_SHOWN {
            let _ = writeln!(body, "  … {} more lines", evidence.len() - EVIDENCE_SHOWN);
        }
    }
}

/// One message listing `alerts` (and counting `omitted` more).
fn digest_message(alerts: &[Value], omitted: u64) -> (String, String) {
    use std::fmt::Write;
    let total = alerts.len() as u64 + omitted;
    let worst = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
        .into_iter()
        .find(|s| alerts.iter().any(|a| a["severity"].as_str() == Some(*s)))
        .unwrap_or("LOW");
    let subject = cut(format!("[secpipe] {total} alerts, worst {worst}"));
    let mut body = String::new();
    let _ = writeln!(body, "{total} alerts since the last digest.\n");
    for alert in alerts {
        describe(alert, &mut body);
        body.push('\n');
    }
    if omitted > 0 {
        let _ = writeln!(
            body,
            "… and {omitted} more alerts, not listed (a digest lists at most {DIGEST_MAX})."
        );
    }
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(spec: &str) -> EmailConfig {
        EmailConfig::parse(spec)
            .expect("an smtp URL")
            .expect("valid")
    }

    /// The attack: a key (or summary, or evidence) carrying CR LF and header lines. The
    /// message that goes out has exactly the configured recipients and one of each header.
    #[test]
    fn attacker_text_cannot_add_headers_or_recipients() {
        let cfg = config("smtp://127.0.0.1:2525?from=secpipe@example.test&to=soc@example.test");
        let mut alert = crate::sink::tests::alert(7);
        alert.key_value = "x\r\nBcc: evil@attacker.test\r\nX-Injected: 1\r\n\r\nbody".into();
        alert.summary = "s\nTo: evil2@attacker.test\r\n.\r\nMAIL FROM:<e@attacker.test>".into();
        alert.evidence.push(crate::alert::Evidence {
            source: "auth.log".into(),
            line: 1,
            ts: 0,
            raw: b"Subject: fake\r\nCc: evil3@attacker.test".to_vec().into(),
            seq: None,
        });
        let mut json = String::new();
        Encoding::Json.encode(&alert, &mut json);
        let value: Value = serde_json::from_str(&json).expect("json");
        let mut builder = Message::builder()
            .from(cfg.from.clone())
            .subject(alert_subject(&value))
            .header(ContentType::TEXT_PLAIN);
        for to in &cfg.to {
            builder = builder.to(to.clone());
        }
        let message = builder
            .body(alert_body(&value, json.as_bytes()))
            .expect("message");
        let recipients: Vec<String> = message
            .envelope()
            .to()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(recipients, ["soc@example.test"]);
        let formatted = String::from_utf8(message.formatted()).expect("ASCII message");
        let (head, _body) = formatted.split_once("\r\n\r\n").expect("header and body");
        let names: Vec<&str> = head
            .split("\r\n")
            .filter(|l| !l.starts_with([' ', '\t']))
            .filter_map(|l| l.split_once(':').map(|(name, _)| name))
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "one of each header: {head}");
        for name in names {
            assert!(
                [
                    "From",
                    "To",
                    "Subject",
                    "Content-Type",
                    "Content-Transfer-Encoding",
                    "Date",
                    "MIME-Version",
                    "Message-ID"
                ]
                .contains(&name),
                "unexpected header {name:?} in {head}"
            );
        }
        assert!(!formatted.contains("\r\nBcc:") && !formatted.contains("\r\nCc:"));
    }

    #[test]
    fn the_subject_is_cut_and_keeps_no_line_break() {
        let long = "é\u{2028}".repeat(500);
        let alert = serde_json::json!({
            "severity": "LOW", "rule": "r", "key": { "field": "user", "value": long },
        });
        let subject = alert_subject(&alert);
        assert_eq!(subject.chars().count(), SUBJECT_CHARS + 1);
        assert!(subject.ends_with('…'));
        assert!(!subject.contains(['\r', '\n', '\u{2028}']));
    }

    #[test]
    fn a_digest_counts_what_it_does_not_list() {
        let alerts: Vec<Value> = (0..3)
            .map(|n| serde_json::json!({ "id": format!("{n:02}"), "severity": if n == 1 { "HIGH" } else { "LOW" } }))
            .collect();
        let (subject, body) = digest_message(&alerts, 7);
        assert_eq!(subject, "[secpipe] 10 alerts, worst HIGH");
        assert!(body.contains("alert id 02"), "{body}");
        assert!(body.contains("and 7 more alerts"), "{body}");
    }

    #[test]
    fn relay_addresses_and_defaults() {
        assert_eq!(
            split_host_port("mail.example", 587),
            Ok(("mail.example".into(), 587))
        );
        assert_eq!(split_host_port("[::1]:2525", 587), Ok(("::1".into(), 2525)));
        assert!(split_host_port("mail.example:smtp", 587).is_err());
        assert!(split_host_port(":25", 587).is_err());
        assert_eq!(
            config("smtps://mail.example?from=a@x.test&to=b@x.test").port,
            465
        );
        let remote = config("smtp://mail.example?from=a@x.test&to=b@x.test");
        assert_eq!(remote.starttls, StartTls::Required);
        let local = config("smtp://localhost:25?from=a@x.test&to=b@x.test");
        assert_eq!(local.starttls, StartTls::Opportunistic);
        let two = config("smtp://localhost?from=a@x.test&to=b@x.test&to=c@x.test");
        assert_eq!(two.to.len(), 2);
    }
}
