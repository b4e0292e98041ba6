//! The classified, owned event: the unit that flows from classify to detect and the archive.
//!
//! ```
//! use secpipe::event::Kind;
//! assert_eq!(Kind::AuthFailure.as_str(), "auth.failure");
//! assert_eq!(Kind::parse("http.request"), Some(Kind::HttpRequest));
//! ```

mod fields;

use std::net::IpAddr;
use std::sync::Arc;

pub use fields::{EventField, FieldType, FieldValue};

/// What an event is, as far as detection cares. The text forms are part of the CLI contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Kind {
    AuthFailure,
    AuthSuccess,
    HttpRequest,
    ApikeyRevokeAttempt,
    DataRead,
    DataDelete,
    DataSearch,
    DataNamespaceViolation,
    InjectionAttempt,
    LogError,
    #[default]
    Other,
    Unparsed,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::AuthFailure,
        Kind::AuthSuccess,
        Kind::HttpRequest,
        Kind::ApikeyRevokeAttempt,
        Kind::DataRead,
        Kind::DataDelete,
        Kind::DataSearch,
        Kind::DataNamespaceViolation,
        Kind::InjectionAttempt,
        Kind::LogError,
        Kind::Other,
        Kind::Unparsed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::AuthFailure => "auth.failure",
            Kind::AuthSuccess => "auth.success",
            Kind::HttpRequest => "http.request",
            Kind::ApikeyRevokeAttempt => "apikey.revoke_attempt",
            Kind::DataRead => "data.read",
            Kind::DataDelete => "data.delete",
            Kind::DataSearch => "data.search",
            Kind::DataNamespaceViolation => "data.namespace_violation",
            Kind::InjectionAttempt => "injection.attempt",
            Kind::LogError => "log.error",
            Kind::Other => "other",
            Kind::Unparsed => "unparsed",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How a line takes part in counting login *attempts* rather than lines (DESIGN section 3).
///
/// One failed SSH login writes several lines; detect groups lines by session (host, app, pid)
/// and uses the role to count each attempt once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Attempt {
    /// Not part of attempt counting (counts as one event where a rule counts events).
    #[default]
    None,
    /// Announces an attempt that a later line of the same session usually completes
    /// (`Invalid user`, the PAM `authentication failure`). Counts 1 unless one is already open.
    Start,
    /// Completes an attempt (`Failed password`): counts 1 unless it closes an open `Start`.
    End,
    /// `message repeated N times: [ Failed … ]`: counts `count` attempts.
    Repeat,
    /// A session summary (`maximum authentication attempts exceeded`, `Connection closed by
    /// invalid user … [preauth]`): counts 1 only when the session has counted nothing yet.
    Summary,
    /// A connection's tally of `count` failed attempts written when it closes (Dovecot's login
    /// process: `Disconnected (auth failed, 2 attempts …): … rip=ADDR`), after the lines that
    /// reported each attempt as it failed (the PAM line, the auth worker's with `auth_verbose`):
    /// counts only the attempts its address has not reported yet.
    Tally,
}

impl Attempt {
    pub fn as_str(self) -> &'static str {
        match self {
            Attempt::None => "none",
            Attempt::Start => "start",
            Attempt::End => "end",
            Attempt::Repeat => "repeat",
            Attempt::Summary => "summary",
            Attempt::Tally => "tally",
        }
    }

    pub fn parse(s: &str) -> Option<Attempt> {
        [
            Attempt::None,
            Attempt::Start,
            Attempt::End,
            Attempt::Repeat,
            Attempt::Summary,
            Attempt::Tally,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// One input line after parse and classify. Owned and self-contained so it can cross threads.
///
/// Times are microseconds since the Unix epoch, UTC.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Event {
    /// Input name: `-` for stdin, the file path, `syslog+udp://peer` …
    pub source: Arc<str>,
    /// 1-based line number within `source`.
    pub line: u64,
    /// Archive-wide row number, set by the pipeline when archiving.
    pub seq: Option<u64>,
    /// Event time (µs, UTC).
    pub ts: i64,
    /// True when the line had no timestamp and `ts` is the receive time.
    pub ts_inferred: bool,
    /// Receive time (µs, UTC).
    pub received: i64,
    // Shared, not owned: consecutive lines nearly always name the same host and app, and the
    // grammars' reasons and the levels come from small sets, so the parse and classify stages
    // hand out one allocation each to many events instead of one per event.
    pub host: Option<Arc<str>>,
    pub app: Option<Arc<str>>,
    pub pid: Option<u32>,
    pub kind: Kind,
    pub reason: Option<Arc<str>>,
    pub src_ip: Option<IpAddr>,
    pub user: Option<Box<str>>,
    pub actor: Option<Box<str>>,
    pub namespace: Option<Box<str>>,
    pub count: Option<u64>,
    pub http_method: Option<Box<str>>,
    pub http_path: Option<Box<str>>,
    pub http_status: Option<u16>,
    pub bytes: Option<u64>,
    /// A client-supplied `X-Forwarded-For` list as logged (`203.0.113.7, 10.0.0.1`). Evidence
    /// only: it becomes `src_ip` only through a proxy the configuration trusts.
    pub forwarded_for: Option<Box<str>>,
    /// The log's own level, lower case (`err`, `warning`, `error`, `critical` …).
    pub severity: Option<Arc<str>>,
    pub message: Box<str>,
    /// The exact input bytes of the line (after framing, without the line terminator).
    pub raw: Box<[u8]>,
    /// Attempt-counting role (internal; not printed by `secpipe events`).
    pub attempt: Attempt,
}

impl Event {
    /// What one event held in a queue costs, estimated: the struct and every string it owns,
    /// rounded up to the allocator's 16-byte granularity (an empty box allocates nothing).
    /// The shared strings (source, host, app, reason, severity) are counted in full for every
    /// event that holds them: an overestimate, which errs on the side of a memory budget. The
    /// reorder buffer and the bus's merge queues hold their caps by it.
    pub fn heap_bytes(&self) -> usize {
        fn owned(len: usize) -> usize {
            if len == 0 {
                0
            } else {
                len.next_multiple_of(16)
            }
        }
        let text = |s: Option<&str>| s.map_or(0, |s| owned(s.len()));
        std::mem::size_of::<Event>().next_multiple_of(16)
            + owned(self.raw.len())
            + owned(self.message.len())
            + owned(self.source.len())
            + text(self.host.as_deref())
            + text(self.app.as_deref())
            + text(self.reason.as_deref())
            + text(self.user.as_deref())
            + text(self.actor.as_deref())
            + text(self.namespace.as_deref())
            + text(self.http_method.as_deref())
            + text(self.http_path.as_deref())
            + text(self.forwarded_for.as_deref())
            + text(self.severity.as_deref())
    }
}

/// Canonical text of an address: IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes plain IPv4.
///
/// ```
/// use secpipe::event::canonical_ip;
/// let ip: std::net::IpAddr = "::ffff:203.0.113.7".parse().unwrap();
/// assert_eq!(canonical_ip(ip).to_string(), "203.0.113.7");
/// ```
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Parse an address as it appears in logs (`[::1]`, `::ffff:1.2.3.4`, `1.2.3.4`) into its
/// canonical form.
///
/// Where a server may write the client's host name instead (Apache `HostnameLookups On`, sshd
/// `UseDNS yes`, PAM `rhost=`), that name comes from a PTR record the owner of the address
/// writes, so it is attacker text: only a whole address is one. A name that starts like an
/// address is none, nor is one that imitates a zone id: a zone (`fe80::1%eth0`) belongs only
/// to an IPv6 link-local or link-scoped multicast address.
///
/// ```
/// use secpipe::event::parse_ip;
/// assert_eq!(parse_ip("[2001:db8::1]").unwrap().to_string(), "2001:db8::1");
/// assert_eq!(parse_ip("192.0.2.1").unwrap().to_string(), "192.0.2.1");
/// assert!(parse_ip("192.0.2.1.5").is_none() && parse_ip("192.0.2.256").is_none());
/// assert_eq!(parse_ip("fe80::1%eth0").unwrap().to_string(), "fe80::1");
/// assert!(parse_ip("example.com").is_none());
/// assert!(parse_ip("192.0.2.1.attacker.example").is_none());
/// assert!(parse_ip("192.0.2.1%.attacker.example").is_none());
/// assert!(parse_ip("2001:db8::1%.attacker.example").is_none());
/// ```
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    // The common case (nearly every address in a log): a plain dotted quad, parsed without the
    // trimming, bracket and zone handling below, none of which it needs.
    if text.len() <= 15 && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return text.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4);
    }
    let t = text.trim().trim_start_matches('[').trim_end_matches(']');
    match t.split_once('%') {
        None => t.parse::<IpAddr>().ok().map(canonical_ip),
        // Zone ids are local detail, not part of the address.
        Some((address, zone)) => {
            let address = address.parse::<std::net::Ipv6Addr>().ok()?;
            let first = address.segments()[0];
            let scoped =
                address.is_unicast_link_local() || matches!(first & 0xff0f, 0xff01 | 0xff02);
            (scoped && !zone.is_empty()).then_some(IpAddr::V6(address))
        }
    }
}

/// Wall clock, µs since the Unix epoch (0 for a clock before 1970).
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Format microseconds since the epoch as RFC 3339 UTC with microseconds:
/// `2026-11-23T12:00:00.000000Z`.
///
/// ```
/// assert_eq!(secpipe::event::format_ts(0), "1970-01-01T00:00:00.000000Z");
/// ```
pub fn format_ts(micros: i64) -> String {
    let mut s = String::with_capacity(27);
    write_ts(&mut s, micros);
    s
}

/// Append the RFC 3339 form of `micros` to `out` without allocating.
pub fn write_ts(out: &mut String, micros: i64) {
    use std::fmt::Write;
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
pub const fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01, proleptic Gregorian.
pub const fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Counts of a batch of events, taken where the batch is classified (a thread of its own) so
/// that the ordered stage and the metrics do not walk the events again.
#[derive(Clone, Debug, Default)]
pub struct EventTally {
    /// Events per kind, indexed by `Kind as usize`.
    pub by_kind: [u64; Kind::ALL.len()],
    /// Journal lines whose trusted fields contradicted their claimed app.
    pub forged_sources: u64,
    /// The newest written (not inferred) event time, `i64::MIN` when none.
    pub newest_dated_ts: i64,
}

/// Event-time bounds (replay `--from`, `--to`), µs UTC: `from` inclusive, `to` exclusive.
///
/// ```
/// let r = secpipe::event::TimeRange { from: Some(10), to: Some(20) };
/// assert!(r.contains(10) && r.contains(19) && !r.contains(20) && !r.contains(9));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TimeRange {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl TimeRange {
    pub fn contains(&self, ts: i64) -> bool {
        self.from.is_none_or(|f| ts >= f) && self.to.is_none_or(|t| ts < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counters and the detector's per-kind engine lists are indexed by `kind as usize`.
    #[test]
    fn every_kind_sits_at_its_own_index_in_all() {
        for (index, kind) in Kind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, index, "{}", kind.as_str());
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1_000_000i64, -1, 0, 1, 365, 10_957, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(
            format_ts(1_767_225_600_123_456),
            "2026-01-01T00:00:00.123456Z"
        );
    }

    /// A PTR name is attacker text: one shaped like an address, or like an address with a zone
    /// id, is not the address it imitates.
    #[test]
    fn host_names_shaped_like_addresses_are_no_address() {
        for name in [
            "192.0.2.1.attacker.example",
            "192.0.2.1.",
            "192.0.2.1%eth0",
            "192.0.2.1%.attacker.example",
            "2001:db8::1%.attacker.example",
            "::ffff:192.0.2.1%x",
            "fe80::1%",
            "3221225985",
            "0xc0000201",
            "192.0.2.1:22",
            "crawl-66-249-66-1.googlebot.com",
        ] {
            assert_eq!(parse_ip(name), None, "{name}");
        }
        for (text, address) in [
            ("fe80::1%eth0", "fe80::1"),
            ("ff02::1%eth0.100", "ff02::1"),
            ("[::ffff:192.0.2.1]", "192.0.2.1"),
            (" 2001:db8::1 ", "2001:db8::1"),
        ] {
            assert_eq!(parse_ip(text), address.parse().ok(), "{text}");
        }
    }

    #[test]
    fn kinds_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
    }
}
