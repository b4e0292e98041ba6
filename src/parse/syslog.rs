//! RFC 3164 (BSD syslog and the `journalctl` short formats) and RFC 5424.
//!
//! RFC 3164 as real daemons write it varies around the tag: the host may be missing, the tag may
//! be `[app]`, and busybox, OpenWrt `logread`, FreeBSD `-v`, Solaris and macOS put the priority
//! into the line as words ([`super::priority`]); socklog lines are in `socklog.rs`. [`header`]
//! says how each is told apart without letting a message word become the host or the app.
//!
//! The grammars are nom parsers over bytes. Slices are cut at ASCII delimiters only, so every
//! piece of a valid UTF-8 line is valid UTF-8 and is borrowed, not copied.

use std::borrow::Cow;

use nom::IResult;

use super::time::{self, Civil, LocalClock, Stamp, YearGuess};
use super::{Format, Record, priority, severity_name, text};

type Res<'a, T> = IResult<&'a [u8], T>;

fn fail<T>(input: &[u8]) -> Res<'_, T> {
    Err(nom::Err::Error(nom::error::Error::new(
        input,
        nom::error::ErrorKind::Verify,
    )))
}

/// `<PRI>` → (facility, severity). PRI is 1–3 digits, at most 191.
fn pri(input: &[u8]) -> Res<'_, (u8, u8)> {
    let Some(rest) = input.strip_prefix(b"<") else {
        return fail(input);
    };
    let len = rest
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(1..=3).contains(&len) || rest.get(len) != Some(&b'>') {
        return fail(input);
    }
    let value = rest[..len]
        .iter()
        .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
    if value > 191 {
        return fail(input);
    }
    Ok((&rest[len + 1..], ((value >> 3) as u8, (value & 7) as u8)))
}

/// A line starting with `<`: RFC 5424 if `<PRI>1 ` follows, else RFC 3164 with PRI.
pub(super) fn parse_with_pri<'a>(
    line: &'a [u8],
    clock: &mut LocalClock,
    years: &mut YearGuess,
    received: i64,
) -> Option<Record<'a>> {
    let (rest, (_facility, severity)) = pri(line).ok()?;
    let severity = severity_name(severity).map(Cow::Borrowed);
    if let Some(body) = rest.strip_prefix(b"1 ") {
        return Some(rfc5424(body, severity, clock));
    }
    let mut record = rfc3164(rest, clock, years, received).unwrap_or_else(|| untimed(rest));
    record.severity = severity;
    Some(record)
}

/// `<PRI>` followed by no recognisable timestamp: RFC 3164 §4.3.3 says to keep the message
/// (and the tag, if there is one); the host is unknown.
pub(super) fn untimed(rest: &[u8]) -> Record<'_> {
    let (app, pid, message) = tag(rest);
    Record {
        format: Format::Rfc3164,
        ts: None,
        host: None,
        app: app.map(text),
        pid,
        severity: None,
        message: text(message),
        fields: Vec::new(),
    }
}

/// A line without PRI: RFC 3164 / journalctl short formats, recognised by their timestamp.
pub(super) fn parse_without_pri<'a>(
    line: &'a [u8],
    clock: &mut LocalClock,
    years: &mut YearGuess,
    received: i64,
) -> Option<Record<'a>> {
    match line.first() {
        Some(b'A'..=b'Z') => rfc3164(line, clock, years, received),
        // svlogd's own timestamp (`2026-11-23_21:50:37.12345`) also starts with a digit.
        Some(b'0'..=b'9') => super::socklog::parse(line, clock, years, received)
            .or_else(|| rfc3164(line, clock, years, received)),
        Some(b'@' | b'a'..=b'z') => super::socklog::parse(line, clock, years, received),
        _ => None,
    }
}

/// Which timestamp shape a 3164 line uses; only the BSD shape needs year inference.
enum LineTime {
    NoYear(Civil),
    Full(Stamp),
}

/// `Dec 10 06:55:46`, `Jun  9 06:06:20`, `Nov 23 12:00:00.123456` (journalctl short-precise).
// Inlined into `line_time`, where it is the hot path, although `ctime_time` calls it too.
#[inline(always)]
fn bsd_time(input: &[u8]) -> Res<'_, Civil> {
    let Some(month) = time::month_number(input) else {
        return fail(input);
    };
    let rest = input.get(3..).unwrap_or_default();
    let Some(rest) = rest.strip_prefix(b" ") else {
        return fail(input);
    };
    // The day is space-padded (`" 9"`) by the RFC, zero-padded or bare by some senders.
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let day_len = rest
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(1..=2).contains(&day_len) {
        return fail(input);
    }
    let day = rest[..day_len]
        .iter()
        .fold(0u8, |acc, b| acc * 10 + (b - b'0'));
    let Some(rest) = rest[day_len..].strip_prefix(b" ") else {
        return fail(input);
    };
    let (rest, (hour, minute, second)) = time::clock_time(rest)?;
    let (rest, micros) = time::fraction(rest)?;
    Ok((
        rest,
        Civil {
            year: 0,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        },
    ))
}

/// journalctl short-full: `Mon 2026-11-23 12:00:00 UTC`. The zone is honoured when it is
/// `UTC`/`GMT`/`Z` or a numeric offset; other abbreviations are ambiguous and read in `--tz`.
fn full_time(input: &[u8]) -> Res<'_, Stamp> {
    let weekday = input.get(..4).unwrap_or_default();
    if !(weekday.len() == 4
        && weekday[..3].iter().all(u8::is_ascii_alphabetic)
        && weekday[3] == b' ')
    {
        return fail(input);
    }
    let (rest, (year, month, day)) = time::iso_date(&input[4..])?;
    let Some(rest) = rest.strip_prefix(b" ") else {
        return fail(input);
    };
    let (rest, (hour, minute, second)) = time::clock_time(rest)?;
    let (rest, micros) = time::fraction(rest)?;
    let Some(rest) = rest.strip_prefix(b" ") else {
        return fail(input);
    };
    let zone_len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let zone = &rest[..zone_len];
    let offset = if zone.eq_ignore_ascii_case(b"UTC") || zone.eq_ignore_ascii_case(b"GMT") {
        Some(0)
    } else if let Ok((b"", offset)) = time::utc_offset(zone) {
        Some(offset)
    } else if !zone.is_empty() && zone.iter().all(u8::is_ascii_alphabetic) {
        None
    } else {
        return fail(input);
    };
    let civil = Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micros,
    };
    Ok((&rest[zone_len..], Stamp { civil, offset }))
}

/// C's `ctime()` / `asctime()` shape, as OpenWrt's `logread` prints it:
/// `Thu Mar  5 10:15:01 2026`. Naive, read in `--tz`.
pub(super) fn ctime_time(input: &[u8]) -> Res<'_, Stamp> {
    let weekday = input.get(..4).unwrap_or_default();
    if !(weekday.len() == 4
        && weekday[..3].iter().all(u8::is_ascii_alphabetic)
        && weekday[3] == b' ')
    {
        return fail(input);
    }
    let (rest, civil) = bsd_time(&input[4..])?;
    let Some(rest) = rest.strip_prefix(b" ") else {
        return fail(input);
    };
    let (rest, year) = time::digits::<4>(rest)?;
    let civil = Civil {
        year: year as i32,
        ..civil
    };
    Ok((
        rest,
        Stamp {
            civil,
            offset: None,
        },
    ))
}

fn line_time(input: &[u8]) -> Res<'_, LineTime> {
    if let Ok((rest, civil)) = bsd_time(input) {
        return Ok((rest, LineTime::NoYear(civil)));
    }
    if let Ok((rest, stamp)) = time::rfc3339(input) {
        return Ok((rest, LineTime::Full(stamp)));
    }
    if let Ok((rest, stamp)) = full_time(input) {
        return Ok((rest, LineTime::Full(stamp)));
    }
    let (rest, stamp) = ctime_time(input)?;
    Ok((rest, LineTime::Full(stamp)))
}

pub(super) fn rfc3164<'a>(
    input: &'a [u8],
    clock: &mut LocalClock,
    years: &mut YearGuess,
    received: i64,
) -> Option<Record<'a>> {
    let (rest, stamp) = line_time(input).ok()?;
    let rest = rest.strip_prefix(b" ")?;
    let ts = match stamp {
        LineTime::NoYear(civil) => years.resolve(civil, received, clock),
        LineTime::Full(stamp) => clock.utc_micros(&stamp),
    };
    let header = header(rest);
    Some(Record {
        format: Format::Rfc3164,
        ts,
        host: header.host.map(text),
        app: header.app.map(text),
        pid: header.pid,
        severity: header.severity.and_then(severity_name).map(Cow::Borrowed),
        message: text(header.message),
        fields: Vec::new(),
    })
}

struct Header<'a> {
    host: Option<&'a [u8]>,
    app: Option<&'a [u8]>,
    pid: Option<u32>,
    /// A severity the line spells out (see [`super::priority`]), when it has one.
    severity: Option<u8>,
    message: &'a [u8],
}

/// `[<fac.pri>] [HOST] [fac.pri] TAG[PID]: MSG` after the timestamp.
///
/// The host is optional, and nothing marks its absence but the shape of the first token: a host
/// name never holds `[` or ends in `:`, so a first token that parses as a tag (`su:`,
/// `sshd[7]:`, `sshd[7]`, `[sshd]:`, `[sshd]`) means the sender left the host out
/// (busybox `-S`, fail2ban's test logs, `logger` to a file). A first token that is a
/// facility.priority word (OpenWrt `logread`) also has no host before it. Otherwise the first
/// token is the host and the tag must follow it: a message word after an untagged host never
/// becomes the app.
fn header(input: &[u8]) -> Header<'_> {
    let input = trim_start_spaces(input);
    // FreeBSD syslogd -v / -vv: `<4.6> ` or `<auth.info> ` before the host.
    let (mut severity, input) = match verbose_priority(input) {
        Some((severity, rest)) => (Some(severity), rest),
        None => (None, input),
    };
    let first_len = input.iter().position(|&b| b == b' ').unwrap_or(input.len());
    let first = &input[..first_len];
    let after_first = input.get(first_len + 1..).unwrap_or_default();
    if let Some(level) = priority::facility_priority(first) {
        return tagged(None, after_first, Some(level));
    }
    // Every tag shape ends in `:` or `]`; a host name ends in neither.
    if first.ends_with(b":") || first.ends_with(b"]") {
        let (app, pid, message) = tag(input);
        if app.is_some() {
            return with_message_prefix(Header {
                host: None,
                app,
                pid,
                severity,
                message,
            });
        }
        // `fe80::` as a host also ends in `:`; a token that is no tag is the host after all.
    }
    // busybox syslogd writes `HOST facility.priority TAG: MSG`.
    let mut rest = after_first;
    if let Some((level, after_priority)) = priority::leading_facility_priority(after_first) {
        severity = Some(level);
        rest = after_priority;
    }
    let mut header = tagged((!first.is_empty()).then_some(first), rest, None);
    header.severity = header.severity.or(severity);
    header
}

fn tagged<'a>(host: Option<&'a [u8]>, rest: &'a [u8], severity: Option<u8>) -> Header<'a> {
    let (app, pid, message) = tag(rest);
    with_message_prefix(Header {
        host,
        app,
        pid,
        severity,
        message,
    })
}

/// `<auth.info> ` / `<4.6> ` → (severity, rest).
fn verbose_priority(input: &[u8]) -> Option<(u8, &[u8])> {
    let inner = input.strip_prefix(b"<")?;
    let close = inner.iter().take(24).position(|&b| b == b'>')?;
    let severity = priority::facility_priority(&inner[..close])?;
    let rest = inner[close + 1..].strip_prefix(b" ")?;
    Some((severity, trim_start_spaces(rest)))
}

/// Strips what some systems put between the tag and the text, keeping its severity:
/// Solaris/illumos `[ID 800047 auth.info] ` and macOS ASL `<Notice>: ` (after `tag[pid] `).
fn with_message_prefix(mut header: Header<'_>) -> Header<'_> {
    let message = header.message;
    match message.first() {
        Some(b'[') => {
            if let Some((level, rest)) = solaris_message_id(message) {
                header.severity = Some(level);
                header.message = rest;
            }
        }
        Some(b'<') if header.app.is_some() => {
            if let Some((level, rest)) = asl_level(message) {
                header.severity = Some(level);
                header.message = rest;
            }
        }
        _ => {}
    }
    header
}

/// `[ID 800047 auth.info] rest` → (severity, rest).
fn solaris_message_id(message: &[u8]) -> Option<(u8, &[u8])> {
    let after_id = message.strip_prefix(b"[ID ")?;
    let digits = after_id.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let after_number = after_id[digits..].strip_prefix(b" ")?;
    let close = after_number.iter().take(24).position(|&b| b == b']')?;
    let severity = priority::facility_priority(&after_number[..close])?;
    let rest = &after_number[close + 1..];
    Some((severity, rest.strip_prefix(b" ").unwrap_or(rest)))
}

/// `<Notice>: rest` → (severity, rest).
fn asl_level(message: &[u8]) -> Option<(u8, &[u8])> {
    let inner = message.strip_prefix(b"<")?;
    let close = inner.iter().take(10).position(|&b| b == b'>')?;
    let severity = priority::severity_of_asl_level(&inner[..close])?;
    let rest = inner[close + 1..].strip_prefix(b":")?;
    Some((severity, rest.strip_prefix(b" ").unwrap_or(rest)))
}

fn trim_start_spaces(input: &[u8]) -> &[u8] {
    let skip = input.iter().take_while(|&&b| b == b' ').count();
    &input[skip..]
}

/// (app, pid, message) of a tag and what follows it.
pub(super) type Tagged<'a> = (Option<&'a [u8]>, Option<u32>, &'a [u8]);

/// `app[pid]: msg`, `app: msg`, `app[pid] msg`, `[app]: msg`, `[app] msg`; anything else is all
/// message, with no app. App names may hold parentheses, dots, slashes and dashes
/// (`sshd(pam_unix)`, `/usr/sbin/cron`). A bracketed name must start with a letter, so a
/// kernel time (`[12.5]`) or a Solaris message id (`[ID 1 auth.info]`) is no app.
pub(super) fn tag(input: &[u8]) -> Tagged<'_> {
    let untagged = (None, None, input);
    if input.first() == Some(&b'[') {
        return bracketed_tag(input).unwrap_or(untagged);
    }
    let name_len = input
        .iter()
        .position(|&b| matches!(b, b' ' | b'[' | b':'))
        .unwrap_or(input.len());
    if name_len == 0 {
        return untagged;
    }
    let name = &input[..name_len];
    let mut at = name_len;
    let mut pid = None;
    let mut has_pid = false;
    if input.get(at) == Some(&b'[') {
        let Some(close) = input[at..].iter().position(|&b| b == b']') else {
            return untagged;
        };
        pid = parse_u32(&input[at + 1..at + close]);
        has_pid = true;
        at += close + 1;
    }
    match input.get(at) {
        Some(b':') => match input.get(at + 1) {
            Some(b' ') => (Some(name), pid, &input[at + 2..]),
            None => (Some(name), pid, &[]),
            Some(_) => untagged,
        },
        Some(b' ') if has_pid => (Some(name), pid, &input[at + 1..]),
        None if has_pid => (Some(name), pid, &[]),
        _ => untagged,
    }
}

/// `[app]: msg` or `[app] msg` (fail2ban's `__daemon_re` accepts both; seen from old BSDs).
fn bracketed_tag(input: &[u8]) -> Option<Tagged<'_>> {
    let inner = input.strip_prefix(b"[")?;
    let close = inner.iter().take(64).position(|&b| b == b']')?;
    let name = &inner[..close];
    let starts_with_letter = name.first().is_some_and(u8::is_ascii_alphabetic);
    if !starts_with_letter || name.iter().any(|&b| matches!(b, b' ' | b'[' | b':')) {
        return None;
    }
    let after = &inner[close + 1..];
    let after = after.strip_prefix(b":").unwrap_or(after);
    match after.first() {
        Some(b' ') => Some((Some(name), None, &after[1..])),
        None => Some((Some(name), None, after)),
        Some(_) => None,
    }
}

fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, b| {
        acc.checked_mul(10)?.checked_add(u32::from(b - b'0'))
    })
}

/// One space-delimited RFC 5424 header token; `-` is nil.
fn token(input: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let len = input.iter().position(|&b| b == b' ').unwrap_or(input.len());
    let value = &input[..len];
    let rest = input.get(len + 1..).unwrap_or_default();
    ((value != b"-" && !value.is_empty()).then_some(value), rest)
}

/// `TIMESTAMP HOST APP PROCID MSGID SD [MSG]` after `<PRI>1 `. Lenient: a bad timestamp gives
/// `ts: None`, malformed structured data is kept as part of the message.
fn rfc5424<'a>(
    body: &'a [u8],
    severity: Option<Cow<'a, str>>,
    clock: &mut LocalClock,
) -> Record<'a> {
    let (timestamp, rest) = token(body);
    let ts = timestamp.and_then(|value| match time::rfc3339(value) {
        Ok((b"", stamp)) => clock.utc_micros(&stamp),
        _ => None,
    });
    if timestamp.is_some() && ts.is_none() {
        // Written but not believable (year 9999, 0001, garbage): receive time, counted.
        clock.count_rejected();
    }
    let (host, rest) = token(rest);
    let (app, rest) = token(rest);
    let (procid, rest) = token(rest);
    let (msgid, rest) = token(rest);
    let mut fields = Vec::new();
    if let Some(msgid) = msgid {
        fields.push((Cow::Borrowed("msgid"), text(msgid)));
    }
    let message = if let Some(after_nil) = rest.strip_prefix(b"-") {
        after_nil
    } else if rest.first() == Some(&b'[') {
        let before = fields.len();
        match structured_data(rest, &mut fields) {
            Some(after) => after,
            None => {
                fields.truncate(before);
                rest
            }
        }
    } else {
        rest
    };
    let message = message.strip_prefix(b" ").unwrap_or(message);
    let message = message.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(message);
    Record {
        format: Format::Rfc5424,
        ts,
        host: host.map(text),
        app: app.map(text),
        pid: procid.and_then(parse_u32),
        severity,
        message: text(message),
        fields,
    }
}

/// One or more `[id name="value" ...]` elements; pushes every param under its plain name and
/// returns what follows, or `None` when the data is malformed.
fn structured_data<'a>(
    mut input: &'a [u8],
    fields: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
) -> Option<&'a [u8]> {
    while let Some(element) = input.strip_prefix(b"[") {
        let id_len = element
            .iter()
            .position(|&b| matches!(b, b' ' | b']' | b'=' | b'"'))?;
        if id_len == 0 {
            return None;
        }
        let mut rest = &element[id_len..];
        loop {
            match rest.first()? {
                b']' => {
                    rest = &rest[1..];
                    break;
                }
                b' ' => {
                    let param = &rest[1..];
                    let name_len = param
                        .iter()
                        .position(|&b| matches!(b, b'=' | b' ' | b']' | b'"'))?;
                    let value_start = param.get(name_len..)?.strip_prefix(b"=\"")?;
                    let (value, after) = sd_value(value_start)?;
                    fields.push((text(&param[..name_len]), value));
                    rest = after;
                }
                _ => return None,
            }
        }
        input = rest;
    }
    Some(input)
}

/// A PARAM-VALUE up to its closing unescaped `"`. `\"`, `\\` and `\]` are unescaped; any other
/// backslash is literal, as RFC 5424 says.
fn sd_value(input: &[u8]) -> Option<(Cow<'_, str>, &[u8])> {
    let mut at = 0;
    let mut escaped = false;
    while at < input.len() {
        match input[at] {
            b'\\' => {
                escaped = true;
                at += 2;
            }
            b'"' => break,
            _ => at += 1,
        }
    }
    let raw = input.get(..at)?;
    let after = input.get(at + 1..)?;
    if !escaped {
        return Some((text(raw), after));
    }
    let mut unescaped = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && matches!(raw.get(i + 1), Some(b'"' | b'\\' | b']')) {
            i += 1;
        }
        unescaped.push(raw[i]);
        i += 1;
    }
    Some((
        Cow::Owned(String::from_utf8_lossy(&unescaped).into_owned()),
        after,
    ))
}
