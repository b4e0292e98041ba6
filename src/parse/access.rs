//! nginx / apache access logs, common and combined:
//! `ADDR IDENT USER [dd/Mon/yyyy:hh:mm:ss ±hhmm] "REQUEST" STATUS BYTES ["REFERER" "AGENT"]`.

use std::borrow::Cow;

use nom::IResult;

use super::time::{self, Civil, LocalClock, Stamp};
use super::{Format, Record, text};

type Res<'a, T> = IResult<&'a [u8], T>;

fn fail<T>(input: &[u8]) -> Res<'_, T> {
    Err(nom::Err::Error(nom::error::Error::new(
        input,
        nom::error::ErrorKind::Verify,
    )))
}

/// The parts of one access-log line, borrowed from it. Values are as written: the path keeps
/// its percent-encoding and quoted parts keep their escapes (`\"`, `\x16`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLog<'a> {
    pub remote_addr: &'a str,
    /// The authenticated user; `None` for `-`.
    pub user: Option<&'a str>,
    /// µs UTC; `None` when the date is out of range.
    pub ts: Option<i64>,
    /// The request line as sent, e.g. `GET /a?b=c HTTP/1.1`, or TLS-probe garbage.
    pub request: &'a str,
    /// Method, path and protocol when the request line has that shape.
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
    pub protocol: Option<&'a str>,
    pub status: u16,
    /// `None` for `-`.
    pub bytes: Option<u64>,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl<'a> AccessLog<'a> {
    /// Appends the parts as `fields` (see the module docs of [`crate::parse`]); `-` parts are
    /// left out.
    ///
    /// ```
    /// use secpipe::parse::parse_access_log;
    /// let line = r#"::1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 -"#;
    /// let mut fields = Vec::new();
    /// if let Some(access) = parse_access_log(line) {
    ///     access.push_fields(&mut fields);
    /// }
    /// assert!(fields.iter().any(|(k, v)| k == "remote_addr" && v == "::1"));
    /// assert!(!fields.iter().any(|(k, _)| k == "bytes"));
    /// ```
    pub fn push_fields(&self, fields: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>) {
        let mut push = |key: &'static str, value: Option<Cow<'a, str>>| {
            if let Some(value) = value {
                fields.push((Cow::Borrowed(key), value));
            }
        };
        push("remote_addr", Some(Cow::Borrowed(self.remote_addr)));
        push("user", self.user.map(Cow::Borrowed));
        push("method", self.method.map(Cow::Borrowed));
        push("path", self.path.map(Cow::Borrowed));
        push("protocol", self.protocol.map(Cow::Borrowed));
        push("status", Some(Cow::Owned(self.status.to_string())));
        push(
            "bytes",
            self.bytes.map(|bytes| Cow::Owned(bytes.to_string())),
        );
        push("referer", self.referer.map(Cow::Borrowed));
        push("user_agent", self.user_agent.map(Cow::Borrowed));
    }
}

/// Parses an access-log line, or the message of a syslog line that carries one (nginx logging
/// to syslog: the message after `nginx: `). Dates are read with their own offset.
///
/// ```
/// use secpipe::parse::parse_access_log;
/// let line = r#"203.0.113.7 - frank [10/Oct/2000:13:55:36 -0700] "GET /a?b=c HTTP/1.1" 200 2326 "http://ref/" "Mozilla/5.0""#;
/// let access = parse_access_log(line).unwrap();
/// assert_eq!(access.remote_addr, "203.0.113.7");
/// assert_eq!(access.user, Some("frank"));
/// assert_eq!(access.path, Some("/a?b=c"));
/// assert_eq!(access.status, 200);
/// assert_eq!(access.user_agent, Some("Mozilla/5.0"));
/// assert_eq!(access.ts, Some(971_211_336_000_000));
/// ```
pub fn parse_access_log(message: &str) -> Option<AccessLog<'_>> {
    let parts = access_line(message.as_bytes()).ok()?.1;
    // Every part is cut at an ASCII delimiter of a `str`, so each is valid UTF-8.
    fn as_str(bytes: &[u8]) -> Option<&str> {
        std::str::from_utf8(bytes).ok()
    }
    fn optional(bytes: Option<&[u8]>) -> Option<&str> {
        bytes.and_then(as_str)
    }
    Some(AccessLog {
        remote_addr: as_str(parts.remote_addr)?,
        user: optional(parts.user),
        ts: parts
            .stamp
            .and_then(|stamp| LocalClock::new(jiff::tz::TimeZone::UTC).utc_micros(&stamp)),
        request: as_str(parts.request)?,
        method: optional(parts.request_line.method),
        path: optional(parts.request_line.path),
        protocol: optional(parts.request_line.protocol),
        status: parts.status,
        bytes: parts.bytes,
        referer: optional(parts.referer),
        user_agent: optional(parts.user_agent),
    })
}

/// An access-log line as a [`Record`]: the whole line is the message.
pub(super) fn parse_record<'a>(line: &'a [u8], clock: &mut LocalClock) -> Option<Record<'a>> {
    let first = *line.first()?;
    if !(first.is_ascii_alphanumeric() || first == b':') {
        return None;
    }
    let (_, parts) = access_line(line).ok()?;
    let number = |value: String| Some(Cow::Owned(value));
    let named = [
        ("remote_addr", Some(text(parts.remote_addr))),
        ("user", parts.user.map(text)),
        ("method", parts.request_line.method.map(text)),
        ("path", parts.request_line.path.map(text)),
        ("protocol", parts.request_line.protocol.map(text)),
        ("status", number(parts.status.to_string())),
        (
            "bytes",
            parts.bytes.and_then(|bytes| number(bytes.to_string())),
        ),
        ("referer", parts.referer.map(text)),
        ("user_agent", parts.user_agent.map(text)),
    ];
    let fields = named
        .into_iter()
        .filter_map(|(key, value)| Some((Cow::Borrowed(key), value?)))
        .collect();
    Some(Record {
        format: Format::AccessLog,
        ts: parts.stamp.and_then(|stamp| clock.utc_micros(&stamp)),
        host: None,
        app: None,
        pid: None,
        severity: None,
        message: text(line),
        fields,
    })
}

struct Parts<'a> {
    remote_addr: &'a [u8],
    user: Option<&'a [u8]>,
    stamp: Option<Stamp>,
    request: &'a [u8],
    request_line: RequestLine<'a>,
    status: u16,
    bytes: Option<u64>,
    referer: Option<&'a [u8]>,
    user_agent: Option<&'a [u8]>,
}

fn dash_is_none(value: &[u8]) -> Option<&[u8]> {
    (value != b"-" && !value.is_empty()).then_some(value)
}

/// A run of bytes up to the next space, then the space.
fn word(input: &[u8]) -> Res<'_, &[u8]> {
    let len = input.iter().position(|&b| b == b' ').unwrap_or(input.len());
    if len == 0 || input.get(len) != Some(&b' ') {
        return fail(input);
    }
    Ok((&input[len + 1..], &input[..len]))
}

/// `"..."` with backslash escapes kept as written; returns the inside.
fn quoted(input: &[u8]) -> Res<'_, &[u8]> {
    let Some(inner) = input.strip_prefix(b"\"") else {
        return fail(input);
    };
    let mut at = 0;
    while let Some(&b) = inner.get(at) {
        match b {
            b'\\' => at += 2,
            b'"' => return Ok((&inner[at + 1..], &inner[..at])),
            _ => at += 1,
        }
    }
    fail(input)
}

/// `[10/Oct/2000:13:55:36 -0700]`; the stamp is `None` when it has the shape but bad fields.
fn bracketed_time(input: &[u8]) -> Res<'_, Option<Stamp>> {
    let Some(inner) = input.strip_prefix(b"[") else {
        return fail(input);
    };
    let Some(close) = inner.iter().take(40).position(|&b| b == b']') else {
        return fail(input);
    };
    let rest = &inner[close + 1..];
    Ok((rest, clf_time(&inner[..close])))
}

fn clf_time(text: &[u8]) -> Option<Stamp> {
    let (rest, day) = time::digits::<2>(text).ok()?;
    let rest = rest.strip_prefix(b"/")?;
    let month = time::month_number(rest)?;
    let rest = rest.get(3..)?.strip_prefix(b"/")?;
    let (rest, year) = time::digits::<4>(rest).ok()?;
    let rest = rest.strip_prefix(b":")?;
    let (rest, (hour, minute, second)) = time::clock_time(rest).ok()?;
    let (rest, micros) = time::fraction(rest).ok()?;
    let offset = match rest.strip_prefix(b" ") {
        Some(zone) => match time::utc_offset(zone).ok()? {
            (b"", offset) => Some(offset),
            _ => return None,
        },
        None if rest.is_empty() => None,
        None => return None,
    };
    let civil = Civil {
        year: year as i32,
        month,
        day: day as u8,
        hour,
        minute,
        second,
        micros,
    };
    Some(Stamp { civil, offset })
}

fn access_line(input: &[u8]) -> Res<'_, Parts<'_>> {
    let (rest, remote_addr) = word(input)?;
    if !remote_addr
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-' | b'_' | b'%'))
    {
        return fail(input);
    }
    let (rest, _ident) = word(rest)?;
    let (rest, user) = user_field(rest)?;
    let (rest, stamp) = bracketed_time(rest)?;
    let rest = rest.strip_prefix(b" ").ok_or_else(|| {
        nom::Err::Error(nom::error::Error::new(rest, nom::error::ErrorKind::Char))
    })?;
    let (rest, request) = quoted(rest)?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let (rest, status) = time::digits::<3>(rest)?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let bytes_len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let bytes_text = &rest[..bytes_len];
    let bytes = match bytes_text {
        b"-" => None,
        digits if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
        }
        _ => return fail(input),
    };
    let rest = &rest[bytes_len..];
    // Combined format: ` "referer" "agent"`; anything after it (nginx extras) is ignored.
    let (rest, referer) = match rest.strip_prefix(b" ").map(quoted) {
        Some(Ok((after, referer))) => (after, dash_is_none(referer)),
        _ => (rest, None),
    };
    let (rest, user_agent) = match rest.strip_prefix(b" ").map(quoted) {
        Some(Ok((after, agent))) => (after, dash_is_none(agent)),
        _ => (rest, None),
    };
    let request_line = split_request(request);
    let parts = Parts {
        remote_addr,
        user,
        stamp,
        request,
        request_line,
        status: status as u16,
        bytes,
        referer,
        user_agent,
    };
    Ok((rest, parts))
}

/// The user field, which nginx may quote when it holds spaces.
fn user_field(input: &[u8]) -> Res<'_, Option<&[u8]>> {
    if input.first() == Some(&b'"') {
        let (rest, user) = quoted(input)?;
        let rest = rest.strip_prefix(b" ").unwrap_or(rest);
        return Ok((rest, dash_is_none(user)));
    }
    let (rest, user) = word(input)?;
    Ok((rest, dash_is_none(user)))
}

/// The parts of a request line that has the `METHOD PATH [PROTOCOL]` shape.
#[derive(Default)]
struct RequestLine<'a> {
    method: Option<&'a [u8]>,
    path: Option<&'a [u8]>,
    protocol: Option<&'a [u8]>,
}

/// Splits `METHOD PATH [PROTOCOL]`; garbage (TLS probes, `-`) yields no parts.
fn split_request(request: &[u8]) -> RequestLine<'_> {
    let mut pieces = request.splitn(3, |&b| b == b' ');
    let is_method = |m: &&[u8]| {
        !m.is_empty()
            && m.len() <= 20
            && m.iter()
                .all(|b| b.is_ascii_uppercase() || matches!(b, b'-' | b'_'))
    };
    let Some(method) = pieces.next().filter(is_method) else {
        return RequestLine::default();
    };
    let Some(path) = pieces.next().filter(|p| !p.is_empty()) else {
        return RequestLine::default();
    };
    let protocol = pieces
        .next()
        .filter(|p| p.starts_with(b"HTTP/") || p.starts_with(b"HTTPS/"));
    RequestLine {
        method: Some(method),
        path: Some(path),
        protocol,
    }
}
