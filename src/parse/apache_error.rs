//! Apache httpd's error log, in the default `ErrorLogFormat` of 2.2 and 2.4:
//!
//! - 2.2: `[Sun Dec 04 04:47:44 2005] [error] [client 192.0.2.1] MESSAGE`
//! - 2.4: `[Tue Feb 14 10:22:11.123456 2012] [auth_basic:error] [pid 1234:tid 5678]
//!   [client 192.0.2.1:51234] AH01617: MESSAGE`
//!
//! The date, the level, the pid and the `[client …]` field are the server's; the message is
//! often the client's words (a user name, a path). The record has app `apache` and keeps
//! `[client ADDR] MESSAGE` as its message, so that `grammars/apache.toml` places the address by
//! the server's own field, at the start, before anything a client wrote.

use super::syslog::ctime_time;
use super::time::LocalClock;
use super::{Format, Record, text};
use std::borrow::Cow;

/// The levels httpd writes (`LogLevel`), which tell an error log from any other bracketed line.
const LEVELS: [&[u8]; 8] = [
    b"emerg", b"alert", b"crit", b"error", b"warn", b"notice", b"info", b"debug",
];

/// One error-log line, or `None` when the line does not start like one.
pub(super) fn parse<'a>(line: &'a [u8], clock: &mut LocalClock) -> Option<Record<'a>> {
    let inner = line.strip_prefix(b"[")?;
    let (rest, stamp) = ctime_time(inner).ok()?;
    let rest = rest.strip_prefix(b"] ")?;
    let (group, mut rest) = bracket(rest)?;
    // `[error]` (2.2) or `[module:error]` (2.4); `trace1`…`trace8` are debug.
    let level = group.rsplit(|&b| b == b':').next()?;
    let known = LEVELS.contains(&level)
        || (level.len() == 6 && level.starts_with(b"trace") && level[5].is_ascii_digit());
    if !known {
        return None;
    }
    let mut pid = None;
    if let Some((group, after)) = bracket(rest)
        && let Some(number) = group.strip_prefix(b"pid ")
    {
        let digits = number.iter().take_while(|b| b.is_ascii_digit()).count();
        pid = std::str::from_utf8(&number[..digits]).ok()?.parse().ok();
        rest = after;
    }
    let severity = if level.starts_with(b"trace") {
        &b"debug"[..]
    } else {
        level
    };
    Some(Record {
        format: Format::ApacheError,
        ts: clock.utc_micros(&stamp),
        host: None,
        app: Some(Cow::Borrowed("apache")),
        pid,
        severity: Some(text(severity)),
        message: text(rest),
        fields: Vec::new(),
    })
}

/// `[inside] rest` → (inside, rest).
fn bracket(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let inner = input.strip_prefix(b"[")?;
    let close = memchr::memchr(b']', inner)?;
    let after = &inner[close + 1..];
    Some((&inner[..close], after.strip_prefix(b" ").unwrap_or(after)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> LocalClock {
        LocalClock::new(jiff::tz::TimeZone::UTC)
    }

    #[test]
    fn both_default_formats_parse() {
        let mut clock = utc();
        let old = b"[Sun Dec 04 04:47:44 2005] [error] [client 192.0.2.1] Directory index forbidden by rule: /var/www/html/";
        let rec = parse(old, &mut clock).expect("2.2 line");
        assert_eq!(rec.format, Format::ApacheError);
        assert_eq!(rec.app.as_deref(), Some("apache"));
        assert_eq!(rec.severity.as_deref(), Some("error"));
        assert_eq!(rec.ts, Some(1_133_671_664_000_000));
        assert_eq!(
            rec.message,
            "[client 192.0.2.1] Directory index forbidden by rule: /var/www/html/"
        );
        let new = b"[Tue Feb 14 10:22:11.123456 2012] [auth_basic:error] [pid 1234:tid 5678] [client 192.0.2.1:51234] AH01617: user bob: authentication failure for \"/\": Password Mismatch";
        let rec = parse(new, &mut clock).expect("2.4 line");
        assert_eq!(rec.pid, Some(1234));
        assert_eq!(rec.severity.as_deref(), Some("error"));
        assert_eq!(rec.ts, Some(1_329_214_931_123_456));
        assert!(
            rec.message
                .starts_with("[client 192.0.2.1:51234] AH01617: user bob")
        );
        let notice = b"[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties";
        assert_eq!(
            parse(notice, &mut clock).map(|r| r.message),
            Some(Cow::Borrowed(
                "workerEnv.init() ok /etc/httpd/conf/workers2.properties"
            ))
        );
    }

    #[test]
    fn other_bracketed_lines_are_not_error_logs() {
        let mut clock = utc();
        for line in [
            &b"[sshd] User root not allowed"[..],
            b"[10/Mar/2026:12:00:01 +0000] 192.0.2.1 TLSv1.2 ECDHE \"GET / HTTP/1.1\" 512",
            b"[Sun Dec 04 04:47:44 2005] [chatty] not a level",
            b"[Sun Dec 04 04:47:44 2005]",
        ] {
            assert!(
                parse(line, &mut clock).is_none(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
