//! Tests of the whole parse stage through `Parser::parse`, with realistic lines.

use std::borrow::Cow;

use jiff::tz::TimeZone;
use proptest::prelude::*;

use super::*;

fn utc_parser(year: Option<i16>) -> Parser {
    Parser::new(TimeZone::UTC, year)
}

/// µs since the epoch of an RFC 3339 instant (test fixture text only).
fn us(instant: &str) -> i64 {
    match instant.parse::<jiff::Timestamp>() {
        Ok(t) => t.as_microsecond(),
        Err(e) => panic!("bad fixture {instant}: {e}"),
    }
}

fn field<'r>(record: &'r Record<'_>, key: &str) -> Option<&'r str> {
    record
        .fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_ref())
}

fn is_borrowed(text: Option<&Cow<'_, str>>) -> bool {
    matches!(text, Some(Cow::Borrowed(_)))
}

// ---------------------------------------------------------------------------------------------
// RFC 3164 and the journalctl short formats

#[test]
fn openssh_line_borrows_everything() {
    let line = b"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186";
    let record = utc_parser(Some(2026)).parse(line, 0);
    assert_eq!(record.format, Format::Rfc3164);
    assert_eq!(record.ts, Some(us("2026-12-10T06:55:46Z")));
    assert_eq!(record.host.as_deref(), Some("LabSZ"));
    assert_eq!(record.app.as_deref(), Some("sshd"));
    assert_eq!(record.pid, Some(24200));
    assert_eq!(record.severity, None);
    assert_eq!(record.message, "Invalid user webmaster from 173.234.31.186");
    assert!(record.fields.is_empty());
    assert!(is_borrowed(Some(&record.message)));
    assert!(is_borrowed(record.host.as_ref()));
    assert!(is_borrowed(record.app.as_ref()));
}

#[test]
fn linux_line_with_space_padded_day_and_parenthesised_app() {
    let line = b"Jun  9 06:06:20 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 rhost=218.188.2.4 ";
    let record = utc_parser(Some(2005)).parse(line, 0);
    assert_eq!(record.format, Format::Rfc3164);
    assert_eq!(record.ts, Some(us("2005-06-09T06:06:20Z")));
    assert_eq!(record.host.as_deref(), Some("combo"));
    assert_eq!(record.app.as_deref(), Some("sshd(pam_unix)"));
    assert_eq!(record.pid, Some(19939));
    assert!(record.message.starts_with("authentication failure;"));
}

#[test]
fn app_name_shapes() {
    let mut parser = utc_parser(Some(2026));
    // (line, app, pid, message)
    type Case = (
        &'static [u8],
        Option<&'static str>,
        Option<u32>,
        &'static str,
    );
    let cases: [Case; 6] = [
        (
            b"Nov 23 12:00:00 h org.gnome.Shell.desktop[1234]: hi",
            Some("org.gnome.Shell.desktop"),
            Some(1234),
            "hi",
        ),
        (
            b"Nov 23 12:00:00 h /usr/sbin/cron[5]: (root) CMD",
            Some("/usr/sbin/cron"),
            Some(5),
            "(root) CMD",
        ),
        (
            b"Nov 23 12:00:00 h systemd-logind: New session 4",
            Some("systemd-logind"),
            None,
            "New session 4",
        ),
        (
            b"Nov 23 12:00:00 h kernel: [ 1.234] usb 1-1",
            Some("kernel"),
            None,
            "[ 1.234] usb 1-1",
        ),
        (
            b"Nov 23 12:00:00 h no tag on this message",
            None,
            None,
            "no tag on this message",
        ),
        (
            b"Nov 23 12:00:00 h pam_unix(sshd:auth): check pass",
            None,
            None,
            "pam_unix(sshd:auth): check pass",
        ),
    ];
    for (line, app, pid, message) in cases {
        let record = parser.parse(line, 0);
        assert_eq!(
            record.format,
            Format::Rfc3164,
            "{}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(record.host.as_deref(), Some("h"));
        assert_eq!(record.app.as_deref(), app);
        assert_eq!(record.pid, pid);
        assert_eq!(record.message, message);
    }
}

#[test]
fn missing_host_is_detected_by_the_tag() {
    let record =
        utc_parser(Some(2026)).parse(b"<34>Oct 11 22:14:15 su: 'su root' failed for lonvick", 0);
    assert_eq!(record.format, Format::Rfc3164);
    assert_eq!(record.host, None);
    assert_eq!(record.app.as_deref(), Some("su"));
    assert_eq!(record.message, "'su root' failed for lonvick");
}

/// (line, host, app, pid, severity, message) of one envelope case.
type EnvelopeCase = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<u32>,
    Option<&'static str>,
    &'static str,
);

fn assert_envelopes(cases: &[EnvelopeCase]) {
    let mut parser = utc_parser(Some(2026));
    for &(line, host, app, pid, severity, message) in cases {
        let record = parser.parse(line.as_bytes(), 0);
        assert_eq!(record.format, Format::Rfc3164, "{line}");
        assert_eq!(record.host.as_deref(), host, "host of {line}");
        assert_eq!(record.app.as_deref(), app, "app of {line}");
        assert_eq!(record.pid, pid, "pid of {line}");
        assert_eq!(record.severity.as_deref(), severity, "severity of {line}");
        assert_eq!(record.message, message, "message of {line}");
    }
}

#[test]
fn a_tag_first_means_no_host() {
    assert_envelopes(&[
        (
            "Nov 23 21:50:37 sshd[8148]: Connection closed by 61.0.0.1 [preauth]",
            None,
            Some("sshd"),
            Some(8148),
            None,
            "Connection closed by 61.0.0.1 [preauth]",
        ),
        (
            "Mar  3 00:17:22 [sshd]: User root from 211.188.220.49 not allowed because not listed in AllowUsers",
            None,
            Some("sshd"),
            None,
            None,
            "User root from 211.188.220.49 not allowed because not listed in AllowUsers",
        ),
        (
            "Jun 25 23:53:34 [sshd] User root from 1.2.3.4 not allowed because not listed in AllowUsers",
            None,
            Some("sshd"),
            None,
            None,
            "User root from 1.2.3.4 not allowed because not listed in AllowUsers",
        ),
        (
            "Nov 23 21:50:37 sshd[8148] Connection closed by 61.0.0.1",
            None,
            Some("sshd"),
            Some(8148),
            None,
            "Connection closed by 61.0.0.1",
        ),
        (
            "Nov 23 21:50:37 gw [sshd]: hello",
            Some("gw"),
            Some("sshd"),
            None,
            None,
            "hello",
        ),
    ]);
}

#[test]
fn a_message_word_never_becomes_the_app() {
    assert_envelopes(&[
        // A host and no tag: the first message word is not the app.
        (
            "Nov 23 21:50:37 gw Failed password for root from 192.0.2.1 port 22 ssh2",
            Some("gw"),
            None,
            None,
            None,
            "Failed password for root from 192.0.2.1 port 22 ssh2",
        ),
        // A kernel time in brackets is no `[app]`.
        (
            "Nov 23 21:50:37 gw [12.5] usb reset",
            Some("gw"),
            None,
            None,
            None,
            "[12.5] usb reset",
        ),
        // An IPv6 host that ends in `:` is still the host.
        (
            "Nov 23 21:50:37 fe80:: sshd[1]: x",
            Some("fe80::"),
            Some("sshd"),
            Some(1),
            None,
            "x",
        ),
        // A dotted host name is not a facility.priority word.
        (
            "Nov 23 21:50:37 web1.example sshd[1]: x",
            Some("web1.example"),
            Some("sshd"),
            Some(1),
            None,
            "x",
        ),
        // A message that merely contains a Solaris id keeps it.
        (
            "Nov 23 21:50:37 gw sshd[1]: x [ID 800047 auth.info] y",
            Some("gw"),
            Some("sshd"),
            Some(1),
            None,
            "x [ID 800047 auth.info] y",
        ),
    ]);
}

#[test]
fn solaris_and_macos_message_prefixes_give_the_severity() {
    assert_envelopes(&[
        (
            "Mar 29 05:59:23 dusky sshd[20878]: [ID 800047 auth.info] Failed keyboard-interactive for <invalid username> from 205.186.180.55 port 42742 ssh2",
            Some("dusky"),
            Some("sshd"),
            Some(20878),
            Some("info"),
            "Failed keyboard-interactive for <invalid username> from 205.186.180.55 port 42742 ssh2",
        ),
        (
            "Nov 23 21:50:37 mac.local sshd[123] <Notice>: Failed password for root from 192.0.2.1 port 22 ssh2",
            Some("mac.local"),
            Some("sshd"),
            Some(123),
            Some("notice"),
            "Failed password for root from 192.0.2.1 port 22 ssh2",
        ),
    ]);
}

#[test]
fn small_system_envelopes() {
    assert_envelopes(&[
        // busybox syslogd: host, then facility.priority, then the tag.
        (
            "Nov 23 21:50:37 router authpriv.info dropbear[1234]: Bad password attempt for 'root' from 192.0.2.7:5543",
            Some("router"),
            Some("dropbear"),
            Some(1234),
            Some("info"),
            "Bad password attempt for 'root' from 192.0.2.7:5543",
        ),
        // busybox syslogd -S: no host, no priority.
        (
            "Nov 23 21:50:37 dropbear[1234]: Child connection from 192.0.2.7:5543",
            None,
            Some("dropbear"),
            Some(1234),
            None,
            "Child connection from 192.0.2.7:5543",
        ),
        // FreeBSD syslogd -vv and -v.
        (
            "Nov 23 21:50:37 <auth.info> bsd1 sshd[99]: Failed password for root from 192.0.2.8 port 22 ssh2",
            Some("bsd1"),
            Some("sshd"),
            Some(99),
            Some("info"),
            "Failed password for root from 192.0.2.8 port 22 ssh2",
        ),
        (
            "Nov 23 21:50:37 <4.3> bsd1 sshd[99]: error: x",
            Some("bsd1"),
            Some("sshd"),
            Some(99),
            Some("err"),
            "error: x",
        ),
        // socklog without svlogd time, and behind svlogd -tt / -t, and in inet mode.
        (
            "auth.info: Nov 23 21:50:37 sshd[8148]: Failed password for root from 192.0.2.9 port 22 ssh2",
            None,
            Some("sshd"),
            Some(8148),
            Some("info"),
            "Failed password for root from 192.0.2.9 port 22 ssh2",
        ),
        (
            "2026-11-23_21:50:37.12345 auth.notice: Nov 23 21:50:37 sshd[8148]: x",
            None,
            Some("sshd"),
            Some(8148),
            Some("notice"),
            "x",
        ),
        (
            "@400000006b04b537075bca00 192.0.2.1: authpriv.warn: Nov 23 21:50:37 dropbear[9]: y",
            Some("192.0.2.1"),
            Some("dropbear"),
            Some(9),
            Some("warning"),
            "y",
        ),
    ]);
}

#[test]
fn small_system_timestamps() {
    let mut parser = utc_parser(Some(2026));
    let logread = parser.parse(
        b"Thu Nov 26 10:15:01 2026 authpriv.warn dropbear[1234]: Bad password attempt for 'root' from 192.0.2.7:5543",
        0,
    );
    assert_eq!(logread.ts, Some(us("2026-11-26T10:15:01Z")));
    assert_eq!(
        (logread.host, logread.app.as_deref(), logread.pid),
        (None, Some("dropbear"), Some(1234))
    );
    assert_eq!(logread.severity.as_deref(), Some("warning"));
    // svlogd's UTC time wins over the sender's naive one, even in another zone.
    let mut paris = Parser::new(
        jiff::tz::TimeZone::get("Europe/Paris").expect("zone"),
        Some(2026),
    );
    let svlogd = paris.parse(
        b"2026-11-23_21:50:37.12345 auth.info: Nov 23 22:50:37 sshd[8148]: x",
        0,
    );
    assert_eq!(svlogd.ts, Some(us("2026-11-23T21:50:37.12345Z")));
    let tai = parser.parse(
        b"@400000006b04b537075bca00 auth.info: Nov 23 21:50:37 sshd[8148]: x",
        0,
    );
    assert_eq!(tai.ts, Some(us("2026-11-23T21:50:37.123456Z")));
    // Without svlogd's time, the sender's is used.
    let bare = parser.parse(b"auth.info: Nov 23 21:50:37 sshd[8148]: x", 0);
    assert_eq!(bare.ts, Some(us("2026-11-23T21:50:37Z")));
}

#[test]
fn prose_is_not_a_socklog_line() {
    let mut parser = utc_parser(Some(2026));
    for line in [
        "hello: world",
        "note.info: x",
        "2026-11-23_21:50:37.12345 just text",
        "@4000zzzz auth.info: x",
    ] {
        let record = parser.parse(line.as_bytes(), 0);
        assert_eq!(record.format, Format::Unparsed, "{line}");
        assert_eq!(record.message, line);
    }
    // A naive ISO time with a host is still a journalctl short-iso line, read in `--tz`.
    let iso = parser.parse(b"2026-11-23T12:00:00 web1 sshd[42]: x", 0);
    assert_eq!(iso.format, Format::Rfc3164);
    assert_eq!(iso.host.as_deref(), Some("web1"));
}

#[test]
fn pri_gives_severity() {
    let mut parser = utc_parser(Some(2026));
    for (pri, name) in [
        (0, "emerg"),
        (13, "notice"),
        (38, "info"),
        (34, "crit"),
        (191, "debug"),
        (11, "err"),
    ] {
        let line = format!("<{pri}>Dec 10 06:55:46 LabSZ sshd[1]: x");
        let record = parser.parse(line.as_bytes(), 0);
        assert_eq!(record.format, Format::Rfc3164, "{line}");
        assert_eq!(record.severity.as_deref(), Some(name), "{line}");
    }
    // Out-of-range PRI is not syslog.
    assert_eq!(
        parser
            .parse(b"<192>Dec 10 06:55:46 LabSZ sshd[1]: x", 0)
            .format,
        Format::Unparsed
    );
}

#[test]
fn pri_without_timestamp_keeps_tag_and_message() {
    let record = utc_parser(None).parse(b"<13>sshd[12]: Connection closed", 0);
    assert_eq!(record.format, Format::Rfc3164);
    assert_eq!(record.severity.as_deref(), Some("notice"));
    assert_eq!(
        (record.ts, record.host.as_deref(), record.app.as_deref()),
        (None, None, Some("sshd"))
    );
    assert_eq!(record.pid, Some(12));
    assert_eq!(record.message, "Connection closed");
    let plain = utc_parser(None).parse(b"<13>just text", 0);
    assert_eq!(
        (plain.format, plain.app, plain.message),
        (Format::Rfc3164, None, Cow::Borrowed("just text"))
    );
}

#[test]
fn leading_byte_order_mark_is_skipped() {
    let record = utc_parser(Some(2026)).parse(b"\xEF\xBB\xBFDec 10 06:55:46 LabSZ sshd[1]: x", 0);
    assert_eq!(record.format, Format::Rfc3164);
    assert_eq!(record.host.as_deref(), Some("LabSZ"));
}

#[test]
fn journalctl_short_variants() {
    let mut parser = utc_parser(Some(2026));
    let expected = us("2026-11-23T12:00:00Z");
    let cases: [(&[u8], i64); 6] = [
        (
            b"2026-11-23T12:00:00+0000 web1 sshd[42]: Accepted publickey",
            expected,
        ),
        (
            b"2026-11-23T13:00:00+01:00 web1 sshd[42]: Accepted publickey",
            expected,
        ),
        (
            b"Nov 23 12:00:00.123456 web1 sshd[42]: Accepted publickey",
            expected + 123_456,
        ),
        (
            b"2026-11-23T12:00:00.123456+0000 web1 sshd[42]: Accepted publickey",
            expected + 123_456,
        ),
        (
            b"Mon 2026-11-23 12:00:00 UTC web1 sshd[42]: Accepted publickey",
            expected,
        ),
        (
            b"Mon 2026-11-23 12:00:00.5 UTC web1 sshd[42]: Accepted publickey",
            expected + 500_000,
        ),
    ];
    for (line, ts) in cases {
        let record = parser.parse(line, 0);
        let shown = String::from_utf8_lossy(line);
        assert_eq!(record.format, Format::Rfc3164, "{shown}");
        assert_eq!(record.ts, Some(ts), "{shown}");
        assert_eq!(record.host.as_deref(), Some("web1"), "{shown}");
        assert_eq!(record.app.as_deref(), Some("sshd"), "{shown}");
        assert_eq!(record.pid, Some(42), "{shown}");
        assert_eq!(record.message, "Accepted publickey", "{shown}");
    }
}

#[test]
fn journalctl_markers_are_unparsed_not_dropped() {
    let mut parser = utc_parser(None);
    for line in [
        "-- Boot 5c1ad0b2f3a24e0b9a5c3a3c1f0f6b5e --",
        "-- No entries --",
        "-- Logs begin at Mon 2026-11-23 12:00:00 UTC. --",
    ] {
        let record = parser.parse(line.as_bytes(), 0);
        assert_eq!(record.format, Format::Unparsed, "{line}");
        assert_eq!(record.message, line);
    }
}

#[test]
fn out_of_range_time_keeps_the_rest() {
    let record = utc_parser(Some(2026)).parse(b"Dec 32 25:61:61 LabSZ sshd[1]: hello", 0);
    assert_eq!(record.format, Format::Rfc3164);
    assert_eq!(record.ts, None);
    assert_eq!(record.host.as_deref(), Some("LabSZ"));
    assert_eq!(record.app.as_deref(), Some("sshd"));
    assert_eq!(record.message, "hello");
    let far = utc_parser(None).parse(b"9999-12-31T23:59:59Z web1 app: far future", 0);
    assert_eq!(far.format, Format::Rfc3164);
    assert_eq!(far.ts, None);
    assert_eq!(far.message, "far future");
}

// ---------------------------------------------------------------------------------------------
// Year inference and time zones

#[test]
fn year_is_inferred_from_received_and_carried_over_new_year() {
    let received = us("2027-01-01T08:00:00Z");
    let mut parser = utc_parser(None);
    let december = parser.parse(b"Dec 31 23:59:58 h app: a", received);
    assert_eq!(december.ts, Some(us("2026-12-31T23:59:58Z")));
    let january = parser.parse(b"Jan  1 00:00:01 h app: b", received);
    assert_eq!(january.ts, Some(us("2027-01-01T00:00:01Z")));
    let later = parser.parse(b"Jan  1 07:00:00 h app: c", received);
    assert_eq!(later.ts, Some(us("2027-01-01T07:00:00Z")));
}

#[test]
fn date_more_than_a_day_ahead_belongs_to_last_year() {
    let received = us("2026-03-01T00:00:00Z");
    let ahead = utc_parser(None).parse(b"Mar  5 10:00:00 h app: x", received);
    assert_eq!(ahead.ts, Some(us("2025-03-05T10:00:00Z")));
    let slightly_ahead = utc_parser(None).parse(b"Mar  1 20:00:00 h app: x", received);
    assert_eq!(slightly_ahead.ts, Some(us("2026-03-01T20:00:00Z")));
}

#[test]
fn fixed_year_carries_across_new_year() {
    // Read after it was written: a year end is never placed after the receive time.
    let received = us("2026-06-01T00:00:00Z");
    let mut parser = utc_parser(Some(2025));
    let dec = parser.parse(b"Dec 31 23:59:59 h app: x", received);
    let jan = parser.parse(b"Jan  1 00:00:01 h app: x", received);
    assert_eq!(dec.ts, Some(us("2025-12-31T23:59:59Z")));
    assert_eq!(jan.ts, Some(us("2026-01-01T00:00:01Z")));
}

#[test]
fn fixed_year_wins_and_feb_29_in_common_year_is_none() {
    let received = us("2026-11-23T00:00:00Z");
    let record = utc_parser(Some(2019)).parse(b"Feb 29 10:00:00 h app: x", received);
    assert_eq!(record.ts, None);
    assert_eq!(record.message, "x");
    let leap = utc_parser(Some(2020)).parse(b"Feb 29 10:00:00 h app: x", received);
    assert_eq!(leap.ts, Some(us("2020-02-29T10:00:00Z")));
}

#[test]
fn naive_times_are_read_in_the_parser_zone() {
    let tz = TimeZone::get("America/New_York").unwrap_or(TimeZone::UTC);
    // A fresh parser per line: one parser would carry the year across the month jumps.
    let parse = |line: &'static [u8]| Parser::new(tz.clone(), Some(2026)).parse(line, 0).ts;
    assert_eq!(
        parse(b"Jul  1 12:00:00 h app: x"),
        Some(us("2026-07-01T16:00:00Z"))
    );
    assert_eq!(
        parse(b"Dec  1 12:00:00 h app: x"),
        Some(us("2026-12-01T17:00:00Z"))
    );
    // Around the spring-forward gap, hour by hour (the offset cache must not leak across).
    let mut parser = Parser::new(tz.clone(), Some(2026));
    let before = parser.parse(b"Mar  8 01:59:59 h app: x", 0);
    assert_eq!(before.ts, Some(us("2026-03-08T06:59:59Z")));
    let after = parser.parse(b"Mar  8 03:00:00 h app: x", 0);
    assert_eq!(after.ts, Some(us("2026-03-08T07:00:00Z")));
    // An explicit offset is not affected by the zone.
    let explicit = parser.parse(b"2026-07-01T12:00:00Z h app: x", 0);
    assert_eq!(explicit.ts, Some(us("2026-07-01T12:00:00Z")));
}

// ---------------------------------------------------------------------------------------------
// RFC 5424

#[test]
fn rfc5424_with_structured_data() {
    let line = br#"<34>1 2026-11-23T12:00:00.123Z web1 auth 4242 LOGIN [origin ip="203.0.113.7" user="al\"ice"][meta note="a\]b\\c" x="-"] failed login"#;
    let record = utc_parser(None).parse(line, 0);
    assert_eq!(record.format, Format::Rfc5424);
    assert_eq!(record.ts, Some(us("2026-11-23T12:00:00.123Z")));
    assert_eq!(record.host.as_deref(), Some("web1"));
    assert_eq!(record.app.as_deref(), Some("auth"));
    assert_eq!(record.pid, Some(4242));
    assert_eq!(record.severity.as_deref(), Some("crit"));
    assert_eq!(record.message, "failed login");
    assert_eq!(field(&record, "msgid"), Some("LOGIN"));
    assert_eq!(field(&record, "ip"), Some("203.0.113.7"));
    assert_eq!(record.field("IP"), Some("203.0.113.7"));
    assert_eq!(field(&record, "user"), Some("al\"ice"));
    assert_eq!(field(&record, "note"), Some("a]b\\c"));
    assert_eq!(field(&record, "x"), Some("-"));
}

#[test]
fn rfc5424_structured_data_values_hold_brackets_and_quotes() {
    let line = br#"<38>1 2019-07-08T17:40:17.954167-04:00 hostname.example.com sshd 55555 - [timeQuality tzKnown="1" isSynced="0"][xxx@123 test="[brackets]" q="say \"hi\" \] ok" tail="a]\"]b"] Failed unknown for invalid user redmond from 192.0.2.2 port 55555 ssh2"#;
    let record = utc_parser(None).parse(line, 0);
    assert_eq!(record.format, Format::Rfc5424);
    assert_eq!(record.ts, Some(us("2019-07-08T21:40:17.954167Z")));
    assert_eq!(record.app.as_deref(), Some("sshd"));
    assert_eq!(record.pid, Some(55555));
    assert_eq!(
        record.message,
        "Failed unknown for invalid user redmond from 192.0.2.2 port 55555 ssh2"
    );
    assert_eq!(field(&record, "tzKnown"), Some("1"));
    assert_eq!(field(&record, "test"), Some("[brackets]"));
    assert_eq!(field(&record, "q"), Some("say \"hi\" ] ok"));
    assert_eq!(field(&record, "tail"), Some("a]\"]b"));
}

#[test]
fn rfc5424_nil_values_and_bom() {
    let record = utc_parser(None).parse(b"<165>1 - - - - - - \xEF\xBB\xBFhello", 0);
    assert_eq!(record.format, Format::Rfc5424);
    assert_eq!(
        (record.ts, record.host, record.app, record.pid),
        (None, None, None, None)
    );
    assert_eq!(record.severity.as_deref(), Some("notice"));
    assert_eq!(record.message, "hello");
    assert!(record.fields.is_empty());
    let bare = utc_parser(None).parse(b"<14>1 2026-11-23T12:00:00+01:00 h a - - -", 0);
    assert_eq!(bare.ts, Some(us("2026-11-23T11:00:00Z")));
    assert_eq!(bare.message, "");
}

#[test]
fn rfc5424_malformed_sd_stays_in_message() {
    let record =
        utc_parser(None).parse(b"<14>1 2026-11-23T12:00:00Z h a - - [broken x=\"1 rest", 0);
    assert_eq!(record.format, Format::Rfc5424);
    assert_eq!(record.message, "[broken x=\"1 rest");
    assert!(record.fields.is_empty());
}

// ---------------------------------------------------------------------------------------------
// JSON

#[test]
fn journal_json() {
    let line = br#"{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1795435200123456","_HOSTNAME":"web1","SYSLOG_IDENTIFIER":"sshd","_COMM":"sshd","_PID":"812","PRIORITY":"6","MESSAGE":"Accepted publickey for alice"}"#;
    let record = utc_parser(None).parse(line, 0);
    assert_eq!(record.format, Format::JournalJson);
    assert_eq!(record.ts, Some(1_795_435_200_123_456));
    assert_eq!(record.host.as_deref(), Some("web1"));
    assert_eq!(record.app.as_deref(), Some("sshd"));
    assert_eq!(record.pid, Some(812));
    assert_eq!(record.severity.as_deref(), Some("info"));
    assert_eq!(record.message, "Accepted publickey for alice");
    assert!(
        is_borrowed(Some(&record.message)),
        "unescaped strings borrow from the line"
    );
    assert_eq!(field(&record, "__CURSOR"), Some("s=1"));
}

#[test]
fn journal_json_message_as_byte_array_and_comm_fallback() {
    // "bad \xff byte" as journald writes it.
    let line = br#"{"_HOSTNAME":"h","_COMM":"nginx","SYSLOG_PID":"7","MESSAGE":[98,97,100,32,255,32,98,121,116,101]}"#;
    let record = utc_parser(None).parse(line, 0);
    assert_eq!(record.format, Format::JournalJson);
    assert_eq!(record.message, "bad \u{FFFD} byte");
    assert_eq!(record.app.as_deref(), Some("nginx"));
    assert_eq!(record.pid, Some(7));
    assert_eq!(record.ts, None);
}

#[test]
fn json_app_log() {
    let line = br#"{"Timestamp":"2026-11-23T12:00:00.5Z","LEVEL":"WARN","msg":"login failed \"x\"","user":"alice","ip":"203.0.113.7","attempt":3,"ok":false,"ctx":{"req":{"id":"r1"}},"tags":["a"],"gone":null}"#;
    let record = utc_parser(None).parse(line, 0);
    assert_eq!(record.format, Format::JsonApp);
    assert_eq!(record.ts, Some(us("2026-11-23T12:00:00.5Z")));
    assert_eq!(record.severity.as_deref(), Some("warn"));
    assert_eq!(record.message, "login failed \"x\"");
    assert_eq!(field(&record, "user"), Some("alice"));
    assert_eq!(field(&record, "attempt"), Some("3"));
    assert_eq!(field(&record, "ok"), Some("false"));
    assert_eq!(field(&record, "ctx.req.id"), Some("r1"));
    assert_eq!(field(&record, "tags"), None);
    assert_eq!(field(&record, "gone"), None);
}

#[test]
fn json_epoch_times_by_magnitude() {
    let expected = us("2026-11-23T12:00:00Z");
    let secs = expected / 1_000_000;
    let mut parser = utc_parser(None);
    for line in [
        format!(r#"{{"ts":{secs},"msg":"m"}}"#),
        format!(r#"{{"time":"{}","msg":"m"}}"#, secs * 1000),
        format!(r#"{{"@timestamp":{}.0,"msg":"m"}}"#, secs),
        format!(r#"{{"timestamp":{},"msg":"m"}}"#, secs * 1_000_000_000),
    ] {
        assert_eq!(
            parser.parse(line.as_bytes(), 0).ts,
            Some(expected),
            "{line}"
        );
    }
    let far = parser.parse(br#"{"ts":"9999-12-31T23:59:59Z","msg":"m"}"#, 0);
    assert_eq!((far.format, far.ts), (Format::JsonApp, None));
}

#[test]
fn broken_json_is_unparsed() {
    let mut parser = utc_parser(None);
    for line in [
        &br#"{"msg":"truncat"#[..],
        b"{",
        b"{not json}",
        br#"{"a":1}}"#,
        b"[1,2]",
        b"{\"a\":\xff\"}",
    ] {
        let record = parser.parse(line, 0);
        assert_eq!(
            record.format,
            Format::Unparsed,
            "{}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(record.message, String::from_utf8_lossy(line));
    }
    // The scratch space is reused correctly after failures.
    assert_eq!(parser.parse(br#"{"msg":"ok"}"#, 0).message, "ok");
}

#[test]
fn deeply_nested_json_does_not_overflow() {
    let depth = 100_000;
    let mut line = "{\"a\":".repeat(depth);
    line.push('1');
    line.push_str(&"}".repeat(depth));
    let record = utc_parser(None).parse(line.as_bytes(), 0);
    // Too deep for simd-json: kept as an unparsed line rather than a crash.
    assert_eq!(record.format, Format::Unparsed);
    let shallow = utc_parser(None).parse(
        br#"{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":1}}}}}}}}},"msg":"m"}"#,
        0,
    );
    assert_eq!(shallow.format, Format::JsonApp);
    assert_eq!(shallow.message, "m");
    // Flattening stops at the depth limit instead of building ever longer keys.
    assert!(
        shallow
            .fields
            .iter()
            .all(|(key, _)| key.matches('.').count() < 9)
    );
}

#[test]
fn json_with_invalid_utf8_is_repaired() {
    let record = utc_parser(None).parse(b"{\"msg\":\"caf\xe9\",\"user\":\"bob\"}", 0);
    assert_eq!(record.format, Format::JsonApp);
    assert_eq!(record.message, "caf\u{FFFD}");
    assert_eq!(field(&record, "user"), Some("bob"));
}

#[test]
fn json_with_one_bad_value_keeps_the_event() {
    let mut parser = utc_parser(None);
    // Each of these values alone used to make the whole line unparsed.
    let cases: [(&[u8], &str); 7] = [
        (br#""\ud800x""#, "\u{FFFD}x"),
        (br#""\udc00""#, "\u{FFFD}"),
        (br#"1e999"#, "1e999"),
        (br#"123456789012345678901"#, "123456789012345678901"),
        (br#"NaN"#, "NaN"),
        (b"\"tab\there\"", "tab\there"),
        (br#""\q""#, r"\q"),
    ];
    for (value, want) in cases {
        let mut line = br#"{"event":"login_failed","ip":"203.0.113.9","user":"#.to_vec();
        line.extend_from_slice(value);
        line.extend_from_slice(br#","ts":"2026-11-23T12:00:00Z"}"#);
        let record = parser.parse(&line, 0);
        let shown = String::from_utf8_lossy(&line).into_owned();
        assert_eq!(record.format, Format::JsonApp, "{shown}");
        assert_eq!(field(&record, "ip"), Some("203.0.113.9"), "{shown}");
        assert_eq!(field(&record, "event"), Some("login_failed"), "{shown}");
        assert_eq!(record.ts, Some(us("2026-11-23T12:00:00Z")), "{shown}");
        assert_eq!(field(&record, "user"), Some(want), "{shown}");
    }
    // A valid surrogate pair is still the character it encodes.
    let record = parser.parse(br#"{"user":"\ud83d\ude00","n":1e999}"#, 0);
    assert_eq!(field(&record, "user"), Some("\u{1F600}"));
}

// ---------------------------------------------------------------------------------------------
// Access logs

#[test]
fn access_log_combined() {
    let line = br#"203.0.113.7 - frank [10/Oct/2000:13:55:36 -0700] "GET /a?b=c%20d HTTP/1.1" 200 2326 "http://ref/" "Mozilla/5.0 (X11)""#;
    let record = utc_parser(None).parse(line, 0);
    assert_eq!(record.format, Format::AccessLog);
    assert_eq!(record.ts, Some(us("2000-10-10T20:55:36Z")));
    assert_eq!(record.message, String::from_utf8_lossy(line));
    for (key, value) in [
        ("remote_addr", "203.0.113.7"),
        ("user", "frank"),
        ("method", "GET"),
        ("path", "/a?b=c%20d"),
        ("protocol", "HTTP/1.1"),
        ("status", "200"),
        ("bytes", "2326"),
        ("referer", "http://ref/"),
        ("user_agent", "Mozilla/5.0 (X11)"),
    ] {
        assert_eq!(field(&record, key), Some(value), "{key}");
    }
}

#[test]
fn access_log_common_ipv6_and_dash_bytes() {
    let line = br#"2001:db8::1 - - [23/Nov/2026:12:00:00 +0000] "POST /login HTTP/2.0" 403 -"#;
    let record = utc_parser(None).parse(line, 0);
    assert_eq!(record.format, Format::AccessLog);
    assert_eq!(record.ts, Some(us("2026-11-23T12:00:00Z")));
    assert_eq!(field(&record, "remote_addr"), Some("2001:db8::1"));
    assert_eq!(field(&record, "status"), Some("403"));
    assert_eq!(field(&record, "user"), None);
    assert_eq!(field(&record, "bytes"), None);
    assert_eq!(field(&record, "referer"), None);
}

#[test]
fn access_log_garbage_request_lines() {
    let mut parser = utc_parser(None);
    for request in [
        r"\x16\x03\x01\x00\xA5\x01\x00\x00\xA1\x03\x03",
        "-",
        "",
        r#"GET /x\"y HTTP/1.1"#,
    ] {
        let line =
            format!(r#"198.51.100.9 - - [23/Nov/2026:12:00:00 +0000] "{request}" 400 157 "-" "-""#);
        let record = parser.parse(line.as_bytes(), 0);
        assert_eq!(record.format, Format::AccessLog, "{line}");
        assert_eq!(field(&record, "status"), Some("400"));
        assert_eq!(field(&record, "remote_addr"), Some("198.51.100.9"));
        if request.starts_with("GET") {
            assert_eq!(field(&record, "path"), Some(r#"/x\"y"#));
        } else {
            assert_eq!(field(&record, "method"), None, "{line}");
        }
    }
}

#[test]
fn access_log_crafted_user_names_are_parsed_around() {
    // Both servers log the basic-auth user raw except for quotes, backslashes and control
    // bytes: spaces, brackets, addresses and JSON fragments get through.
    let mut parser = utc_parser(None);
    for user in [
        "a b",
        "x from 6.6.6.6 port 22 ssh2",
        "6.6.6.6",
        "- 6.6.6.6 -",
        "[10/Oct/2000:13:55:36 -0700]",
        r"x\x22 6.6.6.6 \x22",
        r#"\"},{\"ip\":\"6.6.6.6"#,
        r#"{"ip":"6.6.6.6"}"#,
        "admin: Failed password for root from 6.6.6.6 port 22 ssh2",
        r"a\x0Ab",
        "\u{1b}[31mred\u{1b}[0m",
        "a  b",
    ] {
        for addr in ["203.0.113.7", "2001:db8::7"] {
            let line = format!(
                r#"{addr} - {user} [23/Nov/2026:12:00:00 +0000] "GET /admin?id=1 HTTP/1.1" 403 12 "-" "curl/8""#
            );
            let record = parser.parse(line.as_bytes(), 0);
            assert_eq!(record.format, Format::AccessLog, "{line}");
            assert_eq!(field(&record, "remote_addr"), Some(addr), "{line}");
            assert_eq!(field(&record, "user"), Some(user), "{line}");
            assert_eq!(field(&record, "path"), Some("/admin?id=1"), "{line}");
            assert_eq!(field(&record, "status"), Some("403"), "{line}");
            assert_eq!(field(&record, "forwarded_for"), None, "{line}");
            assert_eq!(record.ts, Some(us("2026-11-23T12:00:00Z")), "{line}");
        }
    }
}

#[test]
fn access_log_vhost_variants() {
    let mut parser = utc_parser(None);
    for (prefix, vhost, addr) in [
        // apache vhost_combined (Debian: `%v:%p %h %l %u %t`)
        (
            "www.example.com:443 203.0.113.7",
            "www.example.com:443",
            "203.0.113.7",
        ),
        (
            "www.example.com:80 2001:db8::7",
            "www.example.com:80",
            "2001:db8::7",
        ),
        // SUSE's `%v %h …`, nginx `$server_name $remote_addr …`
        ("example.org 203.0.113.7", "example.org", "203.0.113.7"),
    ] {
        let line = format!(
            r#"{prefix} - bob [23/Nov/2026:12:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "ua""#
        );
        let record = parser.parse(line.as_bytes(), 0);
        assert_eq!(record.format, Format::AccessLog, "{line}");
        assert_eq!(field(&record, "vhost"), Some(vhost), "{line}");
        assert_eq!(field(&record, "remote_addr"), Some(addr), "{line}");
        assert_eq!(field(&record, "user"), Some("bob"), "{line}");
    }
    // A client host name (HostnameLookups On) is still the address position, not a vhost.
    let line = br#"client.example.net - - [23/Nov/2026:12:00:00 +0000] "GET / HTTP/1.1" 200 5"#;
    let record = parser.parse(line, 0);
    assert_eq!(field(&record, "remote_addr"), Some("client.example.net"));
    assert_eq!(field(&record, "vhost"), None);
}

#[test]
fn access_log_forwarded_lists_are_kept_apart_from_the_address() {
    let mut parser = utc_parser(None);
    let date = "[23/Nov/2026:12:00:00 +0000]";
    let request = r#""GET / HTTP/1.1" 200 5"#;
    for (line, addr, forwarded, user) in [
        // nginx `main`: the list quoted after the agent.
        (
            format!(r#"10.0.0.2 - - {date} {request} "-" "ua" "198.51.100.7, 10.0.0.9""#),
            Some("10.0.0.2"),
            Some("198.51.100.7, 10.0.0.9"),
            None,
        ),
        // `$http_x_forwarded_for - $remote_user …`: only the list, no connecting address.
        (
            format!(r#"198.51.100.7, 10.0.0.9 - alice {date} {request}"#),
            None,
            Some("198.51.100.7, 10.0.0.9"),
            Some("alice"),
        ),
        // The list, then the connecting address.
        (
            format!(r#"198.51.100.7, 10.0.0.9 10.0.0.2 - - {date} {request}"#),
            Some("10.0.0.2"),
            Some("198.51.100.7, 10.0.0.9"),
            None,
        ),
        // The address, then the list (one entry or several).
        (
            format!(r#"10.0.0.2 198.51.100.7 - - {date} {request}"#),
            Some("10.0.0.2"),
            Some("198.51.100.7"),
            None,
        ),
        (
            format!(r#"10.0.0.2 198.51.100.7, [2001:db8::5]:443 - bob {date} {request}"#),
            Some("10.0.0.2"),
            Some("198.51.100.7, [2001:db8::5]:443"),
            Some("bob"),
        ),
        // An extra quoted value that is not an address list is not a forwarded list.
        (
            format!(r#"10.0.0.2 - - {date} {request} "-" "ua" "0.005""#),
            Some("10.0.0.2"),
            None,
            None,
        ),
    ] {
        let record = parser.parse(line.as_bytes(), 0);
        assert_eq!(record.format, Format::AccessLog, "{line}");
        assert_eq!(field(&record, "remote_addr"), addr, "{line}");
        assert_eq!(field(&record, "forwarded_for"), forwarded, "{line}");
        assert_eq!(field(&record, "user"), user, "{line}");
        assert_eq!(field(&record, "status"), Some("200"), "{line}");
    }
}

#[test]
fn access_log_cut_inside_a_huge_request_is_still_a_request() {
    // An attacker who pads the request target past `--max-line` must not turn the line into
    // an unparsed one: the framer cuts it inside the quoted request.
    let mut line =
        br#"203.0.113.7 - - [23/Nov/2026:12:00:00 +0000] "GET /search?q=<script>"#.to_vec();
    line.resize(64 * 1024, b'A');
    let record = utc_parser(None).parse(&line, 0);
    assert_eq!(record.format, Format::AccessLog);
    assert_eq!(field(&record, "remote_addr"), Some("203.0.113.7"));
    assert_eq!(field(&record, "method"), Some("GET"));
    assert!(field(&record, "path").is_some_and(|p| p.starts_with("/search?q=<script>AAA")));
    assert_eq!(field(&record, "status"), None);
}

#[test]
fn access_log_without_ident_field() {
    let line = br#"203.0.113.7 alice [23/Nov/2026:12:00:00 +0000] "GET / HTTP/1.1" 401 0"#;
    let record = utc_parser(None).parse(line, 0);
    assert_eq!(record.format, Format::AccessLog);
    assert_eq!(field(&record, "remote_addr"), Some("203.0.113.7"));
    assert_eq!(field(&record, "user"), Some("alice"));
    assert_eq!(field(&record, "status"), Some("401"));
}

#[test]
fn apache_ssl_request_log() {
    let mut parser = utc_parser(None);
    // mod_ssl `ssl_common`: `%t %h %{SSL_PROTOCOL}x %{SSL_CIPHER}x "%r" %b`, no status.
    let line = br#"[23/Nov/2026:12:00:00 +0000] 203.0.113.7 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 "GET /index.html HTTP/1.1" 2326"#;
    let record = parser.parse(line, 0);
    assert_eq!(record.format, Format::AccessLog);
    assert_eq!(record.ts, Some(us("2026-11-23T12:00:00Z")));
    assert_eq!(field(&record, "remote_addr"), Some("203.0.113.7"));
    assert_eq!(field(&record, "ssl_protocol"), Some("TLSv1.2"));
    assert_eq!(
        field(&record, "ssl_cipher"),
        Some("ECDHE-RSA-AES128-GCM-SHA256")
    );
    assert_eq!(field(&record, "path"), Some("/index.html"));
    assert_eq!(field(&record, "bytes"), Some("2326"));
    assert_eq!(field(&record, "status"), None);
    // `ssl_combined` adds referer and agent; a garbage request line is still a request.
    let line = br#"[23/Nov/2026:12:00:01 +0000] 2001:db8::7 TLSv1.3 TLS_AES_256_GCM_SHA384 "\x16\x03\x01" - "-" "zgrab/0.x""#;
    let record = parser.parse(line, 0);
    assert_eq!(record.format, Format::AccessLog);
    assert_eq!(field(&record, "remote_addr"), Some("2001:db8::7"));
    assert_eq!(field(&record, "user_agent"), Some("zgrab/0.x"));
    assert_eq!(field(&record, "method"), None);
}

#[test]
fn access_log_inside_syslog_message() {
    let line = br#"Nov 23 12:00:00 web1 nginx: 192.0.2.1 - - [23/Nov/2026:12:00:00 +0000] "GET /wp-login.php HTTP/1.1" 404 153 "-" "curl/8.0""#;
    let record = utc_parser(Some(2026)).parse(line, 0);
    assert_eq!(record.format, Format::Rfc3164);
    assert_eq!(record.app.as_deref(), Some("nginx"));
    let access = parse_access_log(&record.message);
    assert_eq!(
        access.as_ref().and_then(|a| a.remote_addr),
        Some("192.0.2.1")
    );
    assert_eq!(access.as_ref().and_then(|a| a.path), Some("/wp-login.php"));
    assert_eq!(access.as_ref().and_then(|a| a.status), Some(404));
    assert_eq!(access.as_ref().and_then(|a| a.user_agent), Some("curl/8.0"));
    assert_eq!(access.and_then(|a| a.ts), Some(us("2026-11-23T12:00:00Z")));
    assert_eq!(parse_access_log("Invalid user admin from 1.2.3.4"), None);
}

// ---------------------------------------------------------------------------------------------
// logfmt

#[test]
fn logfmt_line() {
    let line = br#"ts=2026-11-23T12:00:00Z level=ERROR msg="db down: \"primary\"" user=alice ip=1.2.3.4 retry"#;
    let record = utc_parser(None).parse(line, 0);
    assert_eq!(record.format, Format::Logfmt);
    assert_eq!(record.ts, Some(us("2026-11-23T12:00:00Z")));
    assert_eq!(record.severity.as_deref(), Some("error"));
    assert_eq!(record.message, "db down: \"primary\"");
    assert_eq!(field(&record, "user"), Some("alice"));
    assert_eq!(field(&record, "ip"), Some("1.2.3.4"));
    assert_eq!(field(&record, "retry"), Some(""));
}

#[test]
fn prose_is_not_logfmt() {
    let mut parser = utc_parser(None);
    for line in [
        "user=alice logged in from somewhere",
        "Connection closed by 1.2.3.4 port=22 user=x",
        "hello world",
        "=a b=c",
        "a=\"unterminated b=c",
    ] {
        let record = parser.parse(line.as_bytes(), 0);
        assert_eq!(record.format, Format::Unparsed, "{line}");
        assert_eq!(record.message, line);
    }
}

#[test]
fn logfmt_odd_value_does_not_lose_the_line() {
    let mut parser = utc_parser(None);
    // An attacker-chosen value that opens a quote and never closes it.
    let record = parser.parse(br#"event=login_failed ip=203.0.113.9 user="admin"#, 0);
    assert_eq!(record.format, Format::Logfmt);
    assert_eq!(field(&record, "ip"), Some("203.0.113.9"));
    assert_eq!(field(&record, "user"), Some("admin"));
    // A stray quoted token, a bare `=` and a key glued to a quote are skipped, not fatal.
    let record = parser.parse(br#"event=login_failed "x y" =z a"b=c ip=203.0.113.9"#, 0);
    assert_eq!(record.format, Format::Logfmt);
    assert_eq!(field(&record, "event"), Some("login_failed"));
    assert_eq!(field(&record, "ip"), Some("203.0.113.9"));
    let record = parser.parse(br#"a=1 "quoted" b=2"#, 0);
    assert_eq!(
        (record.format, field(&record, "b")),
        (Format::Logfmt, Some("2"))
    );
}

// ---------------------------------------------------------------------------------------------
// Bytes

#[test]
fn invalid_utf8_is_owned_lossy() {
    let record = utc_parser(Some(2026)).parse(b"Dec 10 06:55:46 LabSZ sshd[1]: user \xff\xfe x", 0);
    assert_eq!(record.format, Format::Rfc3164);
    assert_eq!(record.message, "user \u{FFFD}\u{FFFD} x");
    assert!(!is_borrowed(Some(&record.message)));
    assert!(is_borrowed(record.host.as_ref()));
    let unparsed = utc_parser(None).parse(b"\xff\x00\r", 0);
    assert_eq!(unparsed.format, Format::Unparsed);
    assert_eq!(unparsed.message, "\u{FFFD}\u{0}\r");
}

#[test]
fn nul_cr_and_huge_lines() {
    let record = utc_parser(Some(2026)).parse(b"Dec 10 06:55:46 LabSZ sshd[1]: a\0b\r", 0);
    assert_eq!(record.message, "a\0b\r");
    let mut huge = b"Dec 10 06:55:46 LabSZ sshd[1]: ".to_vec();
    huge.resize(1 << 20, b'x');
    let record = utc_parser(Some(2026)).parse(&huge, 0);
    assert_eq!(record.format, Format::Rfc3164);
    assert_eq!(record.message.len(), (1 << 20) - 31);
    let mut json = br#"{"msg":""#.to_vec();
    json.resize(1 << 20, b'y');
    json.extend_from_slice(br#""}"#);
    assert_eq!(utc_parser(None).parse(&json, 0).format, Format::JsonApp);
    assert_eq!(
        utc_parser(None).parse(&vec![b'a'; 1 << 20], 0).format,
        Format::Unparsed
    );
}

#[test]
fn parser_can_move_to_a_worker_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Parser>();
}

#[test]
fn empty_line() {
    let record = utc_parser(None).parse(b"", 0);
    assert_eq!(record.format, Format::Unparsed);
    assert_eq!(record.message, "");
}

const VALID_LINES: [&str; 8] = [
    "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
    "<34>1 2026-11-23T12:00:00.123Z web1 auth 4242 LOGIN [origin ip=\"203.0.113.7\" u=\"a\\\"b\"] msg",
    r#"{"__REALTIME_TIMESTAMP":"1795435200123456","_HOSTNAME":"h","MESSAGE":[104,105]}"#,
    r#"{"ts":1795435200,"level":"info","msg":"x","a":{"b":[1,{"c":2}]}}"#,
    r#"2001:db8::1 - - [23/Nov/2026:12:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "ua""#,
    r#"ts=2026-11-23T12:00:00Z level=error msg="db \"down\"" user=alice"#,
    "Mon 2026-11-23 12:00:00 UTC web1 sshd[42]: Accepted publickey",
    "Feb 29 23:59:60.999999 h a[4294967296]: x",
];

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..300), received in any::<i64>()) {
        let mut parser = Parser::new(TimeZone::UTC, None);
        let record = parser.parse(&line, received);
        if record.format == Format::Unparsed {
            let without_bom = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&line);
            prop_assert_eq!(record.message, String::from_utf8_lossy(without_bom));
        }
    }

    #[test]
    fn mutated_valid_lines_never_panic(
        which in 0..VALID_LINES.len(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
        year in proptest::option::of(any::<i16>()),
        received in any::<i64>(),
    ) {
        let mut line = VALID_LINES[which].as_bytes().to_vec();
        for (position, byte, action) in edits {
            let at = position % (line.len() + 1);
            match action {
                0 => line.insert(at, byte),
                1 if at < line.len() => { line.remove(at); }
                _ => line.truncate(at),
            }
        }
        let tz = TimeZone::get("Europe/Berlin").unwrap_or(TimeZone::UTC);
        let mut parser = Parser::new(tz, year);
        let _ = parser.parse(&line, received);
        // Reusing the parser (and its JSON scratch) on the original line still works.
        let again = parser.parse(VALID_LINES[which].as_bytes(), received);
        prop_assert_ne!(again.format, Format::Unparsed);
    }
}
