//! parse: the envelope of one line, auto-detected from its first bytes.
//!
//! Formats: RFC 3164 (with or without `<PRI>`, which covers `journalctl` short, short-iso,
//! short-precise, short-iso-precise and short-full), RFC 5424, `journalctl -o json`,
//! nginx/apache common and combined access logs, JSON application logs and logfmt. A [`Record`]
//! borrows from the line where it can.
//!
//! Detection, in order:
//! - `<` → syslog with PRI: RFC 5424 when `<N>1 ` follows, else RFC 3164.
//! - `{` → JSON: `journalctl -o json` when it has `__REALTIME_TIMESTAMP`, or `MESSAGE` with
//!   `_HOSTNAME` / `SYSLOG_IDENTIFIER`; otherwise a JSON application log.
//! - a syslog timestamp (`Dec 10 06:55:46`, `2026-11-23T12:00:00+0000`,
//!   `Mon 2026-11-23 12:00:00 UTC`, OpenWrt `logread`'s `Thu Mar  5 10:15:01 2026`) → RFC 3164 /
//!   journalctl short formats. After the timestamp: an optional FreeBSD `-v` priority
//!   (`<auth.info>`), an optional host (absent when the first token is already a tag: `sshd[7]:`,
//!   `[sshd]:`, `[sshd]`), an optional busybox `facility.priority` word, the tag, and in the
//!   message an optional Solaris `[ID 800047 auth.info]` or macOS `<Notice>:` prefix, which is
//!   removed and gives the severity.
//! - a socklog line (`auth.info: …`, optionally after svlogd's timestamp and an inet sender's
//!   address) → RFC 3164, see `socklog.rs`.
//! - `ADDR ident user [date] "request" status bytes` and its variants (vhost first, forwarded
//!   lists, no ident, apache's `[date] ADDR TLS CIPHER "request" bytes`) → access log.
//! - `[Www Mmm dd hh:mm:ss[.ffffff] yyyy] [module:level]` → Apache's error log, see
//!   `apache_error.rs`.
//! - at least two `key=value` pairs, the first token being one → logfmt.
//! - anything else → [`Format::Unparsed`], the whole line as message. Nothing is dropped.
//!
//! Structured `fields` schemes:
//! - RFC 5424: each SD param under its plain param name (`ip`, not `origin@1.ip`), value
//!   unescaped; the SD-ID is not kept. A non-nil MSGID is added as `msgid`.
//! - JSON: every scalar member under its key as written, value as text (`true`, `42`, `1.5`);
//!   nested objects are flattened with dotted keys (`user.name`), arrays are skipped, `null`s
//!   are skipped. `journalctl -o json` `MESSAGE` given as an array of bytes is decoded lossily.
//! - logfmt: every pair as written (quoted values unescaped); a bare key has an empty value.
//! - access logs: `remote_addr`, `forwarded_for`, `vhost`, `user`, `method`, `path`,
//!   `protocol`, `status`, `bytes`, `referer`, `user_agent`, `ssl_protocol`, `ssl_cipher`
//!   (absent ones, written `-`, are left out), see [`parse_access_log`].

mod access;
mod apache_error;
pub mod journal_trust;
mod json;
mod json_repair;
mod logfmt;
mod priority;
mod socklog;
mod syslog;
mod time;

use std::borrow::Cow;

pub(crate) use access::forwarded_entry_address;
pub use access::{AccessLog, parse_access_log};

/// Time settings for parsing: the zone of timestamps that name none (`--tz`) and the year of
/// those that omit it (`--year`, else inferred).
#[derive(Clone, Debug)]
pub struct ParseSettings {
    pub tz: jiff::tz::TimeZone,
    pub year: Option<i16>,
}

/// Which envelope matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Rfc3164,
    Rfc5424,
    JournalJson,
    AccessLog,
    JsonApp,
    Logfmt,
    /// Apache httpd's error log (`[date] [level] [pid N] [client ADDR] message`).
    ApacheError,
    /// No envelope matched: the whole line is the message.
    Unparsed,
}

/// The envelope of one line. `ts` is µs since the epoch, UTC; `None` when the line had none.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<'a> {
    pub format: Format,
    pub ts: Option<i64>,
    pub host: Option<Cow<'a, str>>,
    pub app: Option<Cow<'a, str>>,
    pub pid: Option<u32>,
    /// The log's own level, lower case: syslog severities as `emerg`, `alert`, `crit`, `err`,
    /// `warning`, `notice`, `info`, `debug`; a JSON/logfmt `level` as given, lower-cased.
    pub severity: Option<Cow<'a, str>>,
    pub message: Cow<'a, str>,
    /// Structured fields: RFC 5424 SD params (plain param names), JSON object members (scalars
    /// as text), logfmt pairs, access-log parts (`remote_addr`, `forwarded_for`, `user`,
    /// `method`, `path`, `status`, `referer`, `user_agent` …). See the module docs.
    pub fields: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Record<'a> {
    /// A record for a line no envelope matched: the whole line is the message.
    ///
    /// ```
    /// use secpipe::parse::{Format, Record};
    /// let record = Record::unparsed(b"-- Boot 8f2c --");
    /// assert_eq!(record.format, Format::Unparsed);
    /// assert_eq!(record.message, "-- Boot 8f2c --");
    /// ```
    pub fn unparsed(line: &'a [u8]) -> Record<'a> {
        Record {
            format: Format::Unparsed,
            ts: None,
            host: None,
            app: None,
            pid: None,
            severity: None,
            message: text(line),
            fields: Vec::new(),
        }
    }

    /// The first field whose key equals `name`, ignoring ASCII case.
    ///
    /// ```
    /// use secpipe::parse::Parser;
    /// let mut parser = Parser::new(jiff::tz::TimeZone::UTC, None);
    /// let record = parser.parse(br#"{"msg":"login failed","IP":"203.0.113.7"}"#, 0);
    /// assert_eq!(record.field("ip"), Some("203.0.113.7"));
    /// ```
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_ref())
    }
}

/// Per-input parsing state: time zone, fixed or inferred year, JSON scratch space.
pub struct Parser {
    clock: time::LocalClock,
    years: time::YearGuess,
    /// Made on the first JSON line: most sources never send one, and a listener keeps a
    /// parser per connection.
    json: Option<Box<json::JsonScratch>>,
}

impl Parser {
    /// `tz`: zone for naive timestamps. `year`: `--year`, else inferred from `received`.
    ///
    /// ```
    /// use secpipe::parse::{Format, Parser};
    /// let mut parser = Parser::new(jiff::tz::TimeZone::UTC, Some(2026));
    /// let record = parser.parse(b"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user admin", 0);
    /// assert_eq!(record.format, Format::Rfc3164);
    /// assert_eq!(record.app.as_deref(), Some("sshd"));
    /// assert_eq!(record.pid, Some(24200));
    /// ```
    pub fn new(tz: jiff::tz::TimeZone, year: Option<i16>) -> Parser {
        Parser {
            clock: time::LocalClock::new(tz),
            years: time::YearGuess::new(year),
            json: None,
        }
    }

    /// Lines since the last call whose written timestamp was refused as out of range or
    /// malformed (they carry no `ts`, so they get their receive time).
    ///
    /// ```
    /// use secpipe::parse::Parser;
    /// let mut parser = Parser::new(jiff::tz::TimeZone::UTC, None);
    /// let record = parser.parse(b"<34>1 9999-12-31T23:59:59Z host sshd 1 - - hi", 0);
    /// assert_eq!(record.ts, None);
    /// assert_eq!(parser.take_rejected_timestamps(), 1);
    /// assert_eq!(parser.take_rejected_timestamps(), 0);
    /// ```
    pub fn take_rejected_timestamps(&mut self) -> u64 {
        self.clock.take_rejected()
    }

    /// Parse one line (without its terminator). `received` (µs UTC) is the reference "now" for
    /// year inference. Never panics, whatever the bytes.
    ///
    /// ```
    /// use secpipe::parse::{Format, Parser};
    /// let mut parser = Parser::new(jiff::tz::TimeZone::UTC, None);
    /// let record = parser.parse(b"ts=2026-11-23T12:00:00Z level=ERROR msg=\"db down\"", 0);
    /// assert_eq!(record.format, Format::Logfmt);
    /// assert_eq!(record.severity.as_deref(), Some("error"));
    /// assert_eq!(record.message, "db down");
    /// ```
    pub fn parse<'a>(&mut self, line: &'a [u8], received: i64) -> Record<'a> {
        // A file written by some Windows tools starts with a byte-order mark.
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        let parsed = match line.first() {
            Some(b'<') => syslog::parse_with_pri(line, &mut self.clock, &mut self.years, received),
            Some(b'{') => json::parse(
                line,
                self.json.get_or_insert_with(Box::default),
                &mut self.clock,
            ),
            Some(b'[') => {
                syslog::parse_without_pri(line, &mut self.clock, &mut self.years, received)
                    .or_else(|| apache_error::parse(line, &mut self.clock))
                    .or_else(|| access::parse_record(line, &mut self.clock))
                    .or_else(|| logfmt::parse(line, &mut self.clock))
            }
            Some(_) => syslog::parse_without_pri(line, &mut self.clock, &mut self.years, received)
                .or_else(|| access::parse_record(line, &mut self.clock))
                .or_else(|| logfmt::parse(line, &mut self.clock)),
            None => None,
        };
        parsed.unwrap_or_else(|| Record::unparsed(line))
    }
}

/// Bytes as text: borrowed when valid UTF-8, else an owned lossy copy.
pub(crate) fn text(bytes: &[u8]) -> Cow<'_, str> {
    // `str::from_utf8` validates a word at a time; `from_utf8_lossy` walks chunk by chunk and
    // costs several times more on the valid lines that are the common case.
    match std::str::from_utf8(bytes) {
        Ok(valid) => Cow::Borrowed(valid),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Syslog severity number (0–7) → its conventional lower-case name.
pub(crate) fn severity_name(severity: u8) -> Option<&'static str> {
    const NAMES: [&str; 8] = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    NAMES.get(usize::from(severity)).copied()
}

/// Lower-cases a level name, borrowing when it already is lower case.
pub(crate) fn lower_case(level: Cow<'_, str>) -> Cow<'_, str> {
    if level.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(level.to_ascii_lowercase())
    } else {
        level
    }
}

/// Fills ts, severity, message, host, app and pid of a JSON or logfmt record from its fields,
/// by the well-known names (case-insensitive, first present wins). `message` is left as the
/// whole line when no message field exists.
pub(crate) fn apply_app_fields(record: &mut Record<'_>, clock: &mut time::LocalClock) {
    const TIME: [&str; 4] = ["ts", "timestamp", "time", "@timestamp"];
    const LEVEL: [&str; 3] = ["level", "severity", "levelname"];
    const MESSAGE: [&str; 2] = ["message", "msg"];
    const HOST: [&str; 2] = ["host", "hostname"];
    const APP: [&str; 3] = ["app", "service", "logger"];
    let find = |names: &[&str]| {
        record
            .fields
            .iter()
            .find(|(key, _)| names.iter().any(|name| key.eq_ignore_ascii_case(name)))
            .map(|(_, value)| value.clone())
    };
    let written = find(&TIME);
    let ts = written
        .as_ref()
        .and_then(|value| time::text_time(value, clock));
    if written.is_some() && ts.is_none() {
        clock.count_rejected();
    }
    let severity = find(&LEVEL).map(lower_case);
    let message = find(&MESSAGE);
    let host = find(&HOST);
    let app = find(&APP);
    let pid = find(&["pid"]).and_then(|value| value.trim().parse().ok());
    record.ts = ts;
    record.severity = severity;
    if let Some(message) = message {
        record.message = message;
    }
    record.host = host;
    record.app = app;
    record.pid = pid;
}

#[cfg(test)]
mod tests;
