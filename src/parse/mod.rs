//! parse: the envelope of one line, auto-detected from its first bytes.
//!
//! Formats: RFC 3164 (with or without `<PRI>`, which covers `journalctl` short, short-iso and
//! short-precise), RFC 5424, `journalctl -o json`, nginx/apache common and combined access logs,
//! JSON application logs and logfmt. A [`Record`] borrows from the line where it can.
//!
//! INTERFACE OWNED BY THE LEAD: keep `Record`, `Format`, `Parser::new`, `Parser::parse` as they
//! are (fields may be added).

use std::borrow::Cow;

/// Which envelope matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Rfc3164,
    Rfc5424,
    JournalJson,
    AccessLog,
    JsonApp,
    Logfmt,
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
    /// Structured fields: RFC 5424 SD params (`sdid.param` keys … or plain param names), JSON
    /// object members (scalars as text), logfmt pairs, access-log parts (`remote_addr`, `user`,
    /// `method`, `path`, `protocol`, `status`, `bytes`, `referer`, `user_agent`).
    pub fields: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

/// Per-input parsing state: time zone, fixed or inferred year.
pub struct Parser {
    _private: (),
}

impl Parser {
    /// `tz`: zone for naive timestamps. `year`: `--year`, else inferred from `received`.
    pub fn new(tz: jiff::tz::TimeZone, year: Option<i16>) -> Parser {
        let _ = (tz, year);
        Parser { _private: () }
    }

    /// Parse one line (without its terminator). `received` (µs UTC) is the reference "now" for
    /// year inference. Never panics, whatever the bytes.
    pub fn parse<'a>(&mut self, line: &'a [u8], received: i64) -> Record<'a> {
        let _ = received;
        Record {
            format: Format::Unparsed,
            ts: None,
            host: None,
            app: None,
            pid: None,
            severity: None,
            message: String::from_utf8_lossy(line),
            fields: Vec::new(),
        }
    }
}
