//! nginx / apache access logs, as the servers write them by default and in common variants:
//!
//! - common / combined: `ADDR IDENT USER [dd/Mon/yyyy:hh:mm:ss ±hhmm] "REQUEST" STATUS BYTES
//!   ["REFERER" "AGENT" [extras…]]`;
//! - a virtual host first: apache `vhost_combined` (`%v:%p`, `www.example.com:443 ADDR …`),
//!   SUSE's and nginx's `%v` / `$server_name` without a port;
//! - an `X-Forwarded-For` list: in the address position (`$http_x_forwarded_for - $remote_user`,
//!   apache's `%{X-Forwarded-For}i %l %u`), after the address, or quoted after the user agent
//!   (nginx's `main` format, `"$http_x_forwarded_for"`);
//! - no ident field (`ADDR USER [date]`);
//! - apache mod_ssl's `ssl_request_log` (`ssl_common`, `ssl_combined`): `[date] ADDR PROTOCOL
//!   CIPHER "REQUEST" BYTES ["REFERER" "AGENT"]`, which has no status;
//! - request lines that are `-`, empty or garbage (TLS probes): still a request, with its status;
//!   a request cut short by `--max-line` is still a request (without status).
//!
//! # Which parts an attacker writes
//!
//! The server writes the address, the date, the status and the byte count. The client chooses
//! the basic-auth user name, the request line, the referer, the agent and any forwarded list.
//! Both servers escape `"` (apache `\"`, nginx `\x22`) and control bytes in those values, but
//! not spaces, brackets or addresses: a user name can be `a b`, `x from 6.6.6.6 port 22 ssh2` or
//! `[10/Oct/2000:13:55:36 -0700]`. So the line is cut at its first `] "` preceded by a valid
//! date: a user name cannot contain that (its quote would be escaped). What comes before the
//! date is read from the left (the address is the server's first field) and the user name is
//! whatever is left, spaces and all. The client address is never taken from the user name.

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
    /// The connecting client (the server's own field); `None` for `-` or when the line logs
    /// only a forwarded list in its place.
    pub remote_addr: Option<&'a str>,
    /// An `X-Forwarded-For` list as written (`203.0.113.7, 10.0.0.1`): client-supplied.
    pub forwarded_for: Option<&'a str>,
    /// The virtual host of `vhost_combined` (with its port when logged).
    pub vhost: Option<&'a str>,
    /// The authenticated user; `None` for `-`. May hold spaces.
    pub user: Option<&'a str>,
    /// µs UTC; `None` when the date is out of range.
    pub ts: Option<i64>,
    /// The request line as sent, e.g. `GET /a?b=c HTTP/1.1`, or TLS-probe garbage.
    pub request: &'a str,
    /// Method, path and protocol when the request line has that shape.
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
    pub protocol: Option<&'a str>,
    /// `None` only in `ssl_request_log`, which logs none.
    pub status: Option<u16>,
    /// `None` for `-`.
    pub bytes: Option<u64>,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// `ssl_request_log`: the TLS protocol and cipher.
    pub ssl_protocol: Option<&'a str>,
    pub ssl_cipher: Option<&'a str>,
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
        let parts = Parts {
            remote_addr: self.remote_addr.map(str::as_bytes),
            forwarded_for: self.forwarded_for.map(str::as_bytes),
            vhost: self.vhost.map(str::as_bytes),
            user: self.user.map(str::as_bytes),
            stamp: None,
            request: self.request.as_bytes(),
            request_line: RequestLine {
                method: self.method.map(str::as_bytes),
                path: self.path.map(str::as_bytes),
                protocol: self.protocol.map(str::as_bytes),
            },
            status: self.status,
            bytes: self.bytes,
            referer: self.referer.map(str::as_bytes),
            user_agent: self.user_agent.map(str::as_bytes),
            ssl_protocol: self.ssl_protocol.map(str::as_bytes),
            ssl_cipher: self.ssl_cipher.map(str::as_bytes),
        };
        parts.push_fields(fields);
    }
}

/// Parses an access-log line, or the message of a syslog line that carries one (nginx logging
/// to syslog: the message after `nginx: `). Dates are read with their own offset.
///
/// ```
/// use secpipe::parse::parse_access_log;
/// let line = r#"203.0.113.7 - frank [10/Oct/2000:13:55:36 -0700] "GET /a?b=c HTTP/1.1" 200 2326 "http://ref/" "Mozilla/5.0""#;
/// let access = parse_access_log(line).unwrap();
/// assert_eq!(access.remote_addr, Some("203.0.113.7"));
/// assert_eq!(access.user, Some("frank"));
/// assert_eq!(access.path, Some("/a?b=c"));
/// assert_eq!(access.status, Some(200));
/// assert_eq!(access.user_agent, Some("Mozilla/5.0"));
/// assert_eq!(access.ts, Some(971_211_336_000_000));
///
/// // A basic-auth user name with spaces and an address in it: the address stays the server's.
/// let line = r#"203.0.113.7 - x from 6.6.6.6 port 22 [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 401 0"#;
/// let access = parse_access_log(line).unwrap();
/// assert_eq!(access.remote_addr, Some("203.0.113.7"));
/// assert_eq!(access.user, Some("x from 6.6.6.6 port 22"));
/// ```
pub fn parse_access_log(message: &str) -> Option<AccessLog<'_>> {
    let parts = access_line(message.as_bytes())?;
    // Every part is cut at an ASCII delimiter of a `str`, so each is valid UTF-8.
    fn as_str(bytes: &[u8]) -> Option<&str> {
        std::str::from_utf8(bytes).ok()
    }
    fn optional(bytes: Option<&[u8]>) -> Option<&str> {
        bytes.and_then(as_str)
    }
    Some(AccessLog {
        remote_addr: optional(parts.remote_addr),
        forwarded_for: optional(parts.forwarded_for),
        vhost: optional(parts.vhost),
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
        ssl_protocol: optional(parts.ssl_protocol),
        ssl_cipher: optional(parts.ssl_cipher),
    })
}

/// An access-log line as a [`Record`]: the whole line is the message.
pub(super) fn parse_record<'a>(line: &'a [u8], clock: &mut LocalClock) -> Option<Record<'a>> {
    let first = *line.first()?;
    if !(first.is_ascii_alphanumeric() || matches!(first, b':' | b'[' | b'-')) {
        return None;
    }
    let parts = access_line(line)?;
    let mut fields = Vec::with_capacity(12);
    parts.push_fields(&mut fields);
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
    remote_addr: Option<&'a [u8]>,
    forwarded_for: Option<&'a [u8]>,
    vhost: Option<&'a [u8]>,
    user: Option<&'a [u8]>,
    stamp: Option<Stamp>,
    request: &'a [u8],
    request_line: RequestLine<'a>,
    status: Option<u16>,
    bytes: Option<u64>,
    referer: Option<&'a [u8]>,
    user_agent: Option<&'a [u8]>,
    ssl_protocol: Option<&'a [u8]>,
    ssl_cipher: Option<&'a [u8]>,
}

impl<'a> Parts<'a> {
    /// The record `fields` of an access log, in a fixed order; absent parts are left out.
    fn push_fields(&self, fields: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>) {
        let mut push = |key: &'static str, value: Option<Cow<'a, str>>| {
            if let Some(value) = value {
                fields.push((Cow::Borrowed(key), value));
            }
        };
        let number = |n: u64| Cow::Owned(n.to_string());
        push("remote_addr", self.remote_addr.map(text));
        push("forwarded_for", self.forwarded_for.map(text));
        push("vhost", self.vhost.map(text));
        push("user", self.user.map(text));
        push("method", self.request_line.method.map(text));
        push("path", self.request_line.path.map(text));
        push("protocol", self.request_line.protocol.map(text));
        push("status", self.status.map(|s| number(s.into())));
        push("bytes", self.bytes.map(number));
        push("referer", self.referer.map(text));
        push("user_agent", self.user_agent.map(text));
        push("ssl_protocol", self.ssl_protocol.map(text));
        push("ssl_cipher", self.ssl_cipher.map(text));
    }
}

fn dash_is_none(value: &[u8]) -> Option<&[u8]> {
    (value != b"-" && !value.is_empty()).then_some(value)
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

/// The longest bracketed date, `[10/Oct/2000:13:55:36.123456 -0700]`, without brackets.
const MAX_DATE_LEN: usize = 40;

/// Whether `inner` (between `[` and `]`) has the shape of a date, even with bad fields: such a
/// line is an access log whose date is out of range, not some other format.
fn looks_like_clf_date(inner: &[u8]) -> bool {
    inner.len() >= 20
        && inner[0].is_ascii_digit()
        && inner[1].is_ascii_digit()
        && inner[2] == b'/'
        && inner.get(6) == Some(&b'/')
        && inner.get(11) == Some(&b':')
}

/// Finds the date that ends the server-written prefix: the first `] "` whose bracket holds a
/// date. Returns (start of `[`, the stamp, the rest after `] `).
fn find_date(line: &[u8]) -> Option<(usize, Option<Stamp>, &[u8])> {
    for quote in memchr::memchr_iter(b'"', line) {
        let Some(close) = quote.checked_sub(2).filter(|&c| &line[c..quote] == b"] ") else {
            continue;
        };
        let window_start = close.saturating_sub(MAX_DATE_LEN + 1);
        let Some(open) = memchr::memrchr(b'[', &line[window_start..close]) else {
            continue;
        };
        let open = window_start + open;
        let inner = &line[open + 1..close];
        if !looks_like_clf_date(inner) {
            continue;
        }
        return Some((open, clf_time(inner), &line[close + 2..]));
    }
    None
}

fn access_line(line: &[u8]) -> Option<Parts<'_>> {
    if line.first() == Some(&b'[') {
        return ssl_request_line(line);
    }
    let (open, stamp, after_date) = find_date(line)?;
    let prefix = line[..open].strip_suffix(b" ")?;
    let mut parts = prefix_parts(prefix)?;
    parts.stamp = stamp;
    let Ok((rest, request)) = quoted(after_date) else {
        // The request never closes: the line was cut at `--max-line` inside it (a huge
        // request target). Still the request of that address, with what is left of it.
        let request = after_date.get(1..).unwrap_or_default();
        parts.request = request;
        parts.request_line = split_request(request);
        return Some(parts);
    };
    parts.request = request;
    parts.request_line = split_request(request);
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let (rest, status) = time::digits::<3>(rest).ok()?;
    parts.status = Some(status as u16);
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let (rest, bytes) = byte_count(rest)?;
    parts.bytes = bytes;
    combined_tail(rest, &mut parts);
    Some(parts)
}

/// `ssl_request_log`: `[date] ADDR PROTOCOL CIPHER "REQUEST" BYTES ["REFERER" "AGENT"]`.
fn ssl_request_line(line: &[u8]) -> Option<Parts<'_>> {
    let inner = line.get(1..)?;
    let close = inner
        .iter()
        .take(MAX_DATE_LEN + 1)
        .position(|&b| b == b']')?;
    let date = &inner[..close];
    if !looks_like_clf_date(date) {
        return None;
    }
    let rest = inner[close + 1..].strip_prefix(b" ")?;
    let mut tokens = rest.splitn(4, |&b| b == b' ');
    let addr = tokens.next().filter(|t| is_address_token(t))?;
    let protocol = tokens.next()?;
    let cipher = tokens.next()?;
    let rest = tokens.next()?;
    let (rest, request) = quoted(rest).ok()?;
    let rest = rest.strip_prefix(b" ")?;
    let (rest, bytes) = byte_count(rest)?;
    let mut parts = empty_parts();
    parts.remote_addr = dash_is_none(addr);
    parts.stamp = clf_time(date);
    parts.request = request;
    parts.request_line = split_request(request);
    parts.bytes = bytes;
    parts.ssl_protocol = dash_is_none(protocol);
    parts.ssl_cipher = dash_is_none(cipher);
    combined_tail(rest, &mut parts);
    Some(parts)
}

fn empty_parts<'a>() -> Parts<'a> {
    Parts {
        remote_addr: None,
        forwarded_for: None,
        vhost: None,
        user: None,
        stamp: None,
        request: b"",
        request_line: RequestLine::default(),
        status: None,
        bytes: None,
        referer: None,
        user_agent: None,
        ssl_protocol: None,
        ssl_cipher: None,
    }
}

/// `-` or digits up to the next space or the end.
fn byte_count(rest: &[u8]) -> Option<(&[u8], Option<u64>)> {
    let len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let bytes = match &rest[..len] {
        b"-" => None,
        digits if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
        }
        _ => return None,
    };
    Some((&rest[len..], bytes))
}

/// Combined format: ` "referer" "agent"`, then nginx's `main` ` "x_forwarded_for"` when the
/// next quoted value is an address list. Other extras are ignored.
fn combined_tail<'a>(rest: &'a [u8], parts: &mut Parts<'a>) {
    let next_quoted = |rest: &mut &'a [u8]| -> Option<&'a [u8]> {
        let (after, value) = quoted(rest.strip_prefix(b" ")?).ok()?;
        *rest = after;
        Some(value)
    };
    let mut rest = rest;
    let Some(referer) = next_quoted(&mut rest) else {
        return;
    };
    parts.referer = dash_is_none(referer);
    let Some(agent) = next_quoted(&mut rest) else {
        return;
    };
    parts.user_agent = dash_is_none(agent);
    if parts.forwarded_for.is_none()
        && let Some(forwarded) = next_quoted(&mut rest)
        && is_forwarded_list(forwarded)
    {
        parts.forwarded_for = Some(forwarded);
    }
}

/// What may stand in the server's address position: an address or a host name
/// (`HostnameLookups On`), or `-`.
fn is_address_token(token: &[u8]) -> bool {
    !token.is_empty()
        && token
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-' | b'_' | b'%'))
}

/// One entry of a forwarded list: an address, optionally `[v6]:port` or `v4:port`, or the
/// `unknown` / obfuscated identifiers proxies write.
pub(crate) fn forwarded_entry_address(entry: &str) -> Option<std::net::IpAddr> {
    let entry = entry.trim();
    if let Some(ip) = crate::event::parse_ip(entry) {
        return Some(ip);
    }
    // `[2001:db8::1]:443`
    if let Some(rest) = entry.strip_prefix('[')
        && let Some((v6, _port)) = rest.split_once("]:")
    {
        return crate::event::parse_ip(v6);
    }
    // `203.0.113.7:51234`: exactly one colon, so not IPv6.
    let (host, port) = entry.split_once(':')?;
    if port.contains(':') || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    crate::event::parse_ip(host)
}

fn is_ip_token(token: &[u8]) -> bool {
    std::str::from_utf8(token)
        .ok()
        .and_then(forwarded_entry_address)
        .is_some()
}

/// A quoted value that is an `X-Forwarded-For` list: addresses or `unknown`, comma separated.
fn is_forwarded_list(value: &[u8]) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    !value.trim().is_empty()
        && value.split(',').all(|entry| {
            let entry = entry.trim();
            entry.eq_ignore_ascii_case("unknown") || forwarded_entry_address(entry).is_some()
        })
}

/// `www.example.com:443`: a host name with a port, as apache's `%v:%p` writes it.
fn is_vhost_with_port(token: &[u8]) -> bool {
    let Some(colon) = memchr::memrchr(b':', token) else {
        return false;
    };
    let (host, port) = (&token[..colon], &token[colon + 1..]);
    !host.is_empty()
        && !port.is_empty()
        && port.iter().all(u8::is_ascii_digit)
        && host
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && host.iter().any(u8::is_ascii_alphabetic)
}

/// A read position in the prefix before the date; tokens are separated by single spaces.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// The next token and the cursor after it (and its space).
    fn token(self) -> (&'a [u8], Cursor<'a>) {
        let rest = self.text.get(self.at..).unwrap_or_default();
        let (len, skip) = match memchr::memchr(b' ', rest) {
            Some(space) => (space, space + 1),
            None => (rest.len(), rest.len()),
        };
        let next = Cursor {
            text: self.text,
            at: self.at + skip,
        };
        (&rest[..len], next)
    }

    fn rest(self) -> &'a [u8] {
        self.text.get(self.at..).unwrap_or_default()
    }

    fn is_done(self) -> bool {
        self.at >= self.text.len()
    }

    /// A comma-separated list that starts here: tokens while they end in `,`, then one more.
    /// Returns (the list as written, the cursor after it).
    fn comma_list(self) -> (&'a [u8], Cursor<'a>) {
        let start = self.at;
        let mut cursor = self;
        let mut end;
        loop {
            let (token, after) = cursor.token();
            end = cursor.at + token.len();
            cursor = after;
            if token.last() != Some(&b',') || cursor.is_done() {
                break;
            }
        }
        (self.text.get(start..end).unwrap_or_default(), cursor)
    }
}

/// The parts before the date: `[VHOST ]ADDR[ FORWARDED][ IDENT] USER`, read from the left.
/// The user name is the rest, spaces and all.
fn prefix_parts(prefix: &[u8]) -> Option<Parts<'_>> {
    let mut parts = empty_parts();
    let start = Cursor {
        text: prefix,
        at: 0,
    };
    let (first, after_first) = start.token();
    let (mut addr, mut addr_at, mut rest) = (first, start, after_first);
    if is_vhost_with_port(first) && !is_ip_token(first) {
        parts.vhost = Some(first);
        (addr, rest) = after_first.token();
        addr_at = after_first;
    } else if !is_ip_token(first) && first.last() != Some(&b',') {
        // `%v %h …` / `$server_name $remote_addr …`: a name, then an address, then two more
        // fields at least (ident and user).
        let (second, after_second) = after_first.token();
        if is_ip_token(second) && !after_second.is_done() {
            parts.vhost = Some(first);
            (addr, addr_at, rest) = (second, after_first, after_second);
        }
    }
    if addr.last() == Some(&b',') {
        // A forwarded list logged in place of the address (`$http_x_forwarded_for - …`):
        // client-supplied, so it is not the address. A real address may follow it.
        let (list, after) = addr_at.comma_list();
        parts.forwarded_for = Some(list);
        rest = after;
        let (next, after_next) = rest.token();
        if is_ip_token(next) && !after_next.is_done() {
            parts.remote_addr = Some(next);
            rest = after_next;
        }
    } else {
        if !is_address_token(addr) {
            return None;
        }
        parts.remote_addr = dash_is_none(addr);
        // `ADDR XFF-LIST - USER` or `ADDR XFF - USER`: only with the `-` ident after it, so
        // that a user name in a format without ident cannot pass for a forwarded address.
        let (next, after_next) = rest.token();
        let (list, after_list) = if next.last() == Some(&b',') {
            rest.comma_list()
        } else {
            (next, after_next)
        };
        let (ident, after_ident) = after_list.token();
        if is_forwarded_list(list) && ident == b"-" && !after_ident.is_done() {
            parts.forwarded_for = Some(list);
            rest = after_list;
        }
    }
    // Ident and user. Ident is `-` in practice (identd is long gone): anything else means the
    // format has no ident field and all that is left is the user name.
    let (ident, after_ident) = rest.token();
    let user = if ident == b"-" {
        after_ident.rest()
    } else {
        rest.rest()
    };
    parts.user = dash_is_none(user);
    Some(parts)
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
