//! Bad input is a test case: secpipe never panics on input and never loses a line silently.

mod common;
use common::*;

/// The summary line on stderr: `secpipe: N lines (...) ...: P parsed, U unparsed, T truncated`.
fn summary_counts(stderr: &[u8]) -> (u64, u64, u64, u64) {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .find(|l| l.contains(" lines (") && l.contains(" parsed"))
        .unwrap_or_else(|| panic!("no summary in stderr: {text}"));
    let num_before = |word: &str| -> u64 {
        let idx = line
            .find(word)
            .unwrap_or_else(|| panic!("no {word} in {line}"));
        line[..idx]
            .trim_end()
            .rsplit([' ', ':', ','])
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number before {word} in {line}"))
    };
    (
        num_before(" lines ("),
        num_before(" parsed"),
        num_before(" unparsed"),
        num_before(" truncated"),
    )
}

fn garbage() -> Vec<u8> {
    let mut data = Vec::new();
    // binary garbage, deterministic
    let mut x: u32 = 2463534242;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.push((x & 0xff) as u8);
    }
    data.push(b'\n');
    data.extend_from_slice(
        b"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user \xff\xfe from 1.2.3.4\n",
    );
    data.extend_from_slice(
        b"{\"__REALTIME_TIMESTAMP\":\"1700000000000000\",\"MESSAGE\":[70,97,105\n",
    );
    data.extend_from_slice(b"{\"level\":\"error\",\"msg\":\"trunc\n");
    data.extend_from_slice(b"<34>1 9999-99-99T99:99:99Z - - - - - future\n");
    data.extend_from_slice(b"<34>1 2999-01-01T00:00:00Z host app - - - from the future\n");
    data.extend_from_slice(b"\0\0\0\r\n");
    data.extend_from_slice(&vec![b'A'; 1 << 20]);
    data.extend_from_slice(b"\nlast line without newline");
    data
}

#[test]
fn garbage_never_panics_and_every_line_is_counted() {
    let data = garbage();
    let expected_lines = data.split(|&b| b == b'\n').count() as u64;
    // `events` prints exactly one event per line, each valid JSON, numbered in order.
    let out = run_stdin(&["events", "--tz", "UTC"], data.clone());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = json_lines(&out.stdout);
    assert_eq!(events.len() as u64, expected_lines);
    for (i, ev) in events.iter().enumerate() {
        assert_eq!(ev["line"], (i + 1) as u64);
    }
    // The crafted lines at the end, each what its bytes say it is.
    let tail: Vec<(&str, bool)> = events[events.len() - 8..]
        .iter()
        .map(|e| (e["kind"].as_str().unwrap_or("?"), e["ts_inferred"] == true))
        .collect();
    assert_eq!(
        tail,
        [
            // sshd with a non-UTF-8 user: still a failed login from 1.2.3.4, at its own time
            ("auth.failure", false),
            // JSON cut off mid-object, journal and application: no envelope
            ("unparsed", true),
            ("unparsed", true),
            // RFC 5424, <34> = auth.crit, with an impossible and a far-future date: kept,
            // classified by severity, at the receive time
            ("log.error", true),
            ("log.error", true),
            // NULs, the 1 MiB line, the last line without a newline: no envelope
            ("unparsed", true),
            ("unparsed", true),
            ("unparsed", true),
        ]
    );
    assert_eq!(events[events.len() - 8]["src_ip"], "1.2.3.4");
    assert_eq!(
        events[events.len() - 2]["message"].as_str().map(str::len),
        Some(64 * 1024),
        "the 1 MiB line is cut at --max-line (64 KiB)"
    );
    // Random bytes never make a security event: at most an envelope with no grammar.
    for ev in &events[..events.len() - 8] {
        assert!(
            ev["kind"] == "unparsed" || ev["kind"] == "other",
            "random bytes became {ev}"
        );
    }
    // The summary of both commands counts what `events` printed, line for line.
    let unparsed = events.iter().filter(|e| e["kind"] == "unparsed").count() as u64;
    for cmd in [&["--tz", "UTC"][..], &["events", "--tz", "UTC"][..]] {
        let out = run_stdin(cmd, data.clone());
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (lines, parsed, unparsed_counted, truncated) = summary_counts(&out.stderr);
        assert_eq!(lines, expected_lines, "{cmd:?}");
        assert_eq!(
            (parsed, unparsed_counted),
            (expected_lines - unparsed, unparsed),
            "{cmd:?}"
        );
        assert_eq!(truncated, 1, "the 1 MiB line is cut at 64 KiB and counted");
    }
}

#[test]
fn a_timestamp_from_the_future_does_not_move_event_time() {
    let out = run_stdin(
        &["events", "--tz", "UTC"],
        b"<34>1 2100-01-01T00:00:00Z host app - - - from the future\n".to_vec(),
    );
    let events = json_lines(&out.stdout);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["ts_inferred"], true);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 future timestamps ignored"));
}
