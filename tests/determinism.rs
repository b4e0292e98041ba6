//! The same attack gives the same alert whatever the envelope, and whatever the arrival order
//! within the lateness.

mod common;
use common::*;

use std::io::Write;

/// Six sshd attempts from 203.0.113.9, 30 s apart, as one envelope format.
fn bruteforce_lines(format: &str) -> String {
    let t0: i64 = 1_773_144_000; // 2026-03-10T12:00:00Z
    let mut out = String::new();
    for i in 0..6i64 {
        let t = t0 + 30 * i;
        let pid = 4000 + i;
        let msg = format!(
            "Failed password for root from 203.0.113.9 port {} ssh2",
            50000 + i
        );
        let secs = t % 60;
        let mins = (t / 60) % 60;
        let hours = (t / 3600) % 24;
        let line = match format {
            "rfc3164" => format!("Mar 10 {hours:02}:{mins:02}:{secs:02} gw sshd[{pid}]: {msg}"),
            "rfc5424" => format!(
                "<38>1 2026-03-10T{hours:02}:{mins:02}:{secs:02}.000000Z gw sshd {pid} - - {msg}"
            ),
            "journal" => serde_json::json!({
                "__REALTIME_TIMESTAMP": (t * 1_000_000).to_string(),
                "_HOSTNAME": "gw",
                "SYSLOG_IDENTIFIER": "sshd",
                "_PID": pid.to_string(),
                "_COMM": "sshd",
                "_UID": "0",
                "PRIORITY": "6",
                "MESSAGE": msg,
            })
            .to_string(),
            other => panic!("unknown format {other}"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The parts of an alert that do not depend on where the lines came from.
fn essence(a: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "id": a["id"], "rule": a["rule"], "severity": a["severity"], "key": a["key"],
        "count": a["count"], "window_start": a["window_start"], "first_seen": a["first_seen"],
        "last_seen": a["last_seen"],
        "evidence_ts": a["evidence"].as_array().map(|e| e.iter().map(|x| x["ts"].clone()).collect::<Vec<_>>()),
    })
}

fn alerts_of_text(text: &str) -> Vec<serde_json::Value> {
    alerts_of_text_with(&[], text)
}

fn alerts_of_text_with(extra: &[&str], text: &str) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("input.log");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write input");
    alerts_with(extra, &[&path])
}

#[test]
fn bruteforce_through_journal_json_rfc5424_and_rfc3164_gives_the_same_alert() {
    let per_format: Vec<Vec<serde_json::Value>> = ["rfc3164", "rfc5424", "journal"]
        .iter()
        .map(|f| {
            alerts_of_text(&bruteforce_lines(f))
                .iter()
                .map(essence)
                .collect()
        })
        .collect();
    assert_eq!(per_format[0].len(), 1, "{:#?}", per_format[0]);
    assert_eq!(per_format[0][0]["rule"], "auth.bruteforce");
    assert_eq!(per_format[0][0]["key"]["value"], "203.0.113.9");
    assert_eq!(per_format[0], per_format[1]);
    assert_eq!(per_format[0], per_format[2]);
}

/// A small deterministic shuffle: each step swaps a line with one at most `reach` places
/// later. (A line can be carried further by later swaps: the test checks the result against
/// the lateness itself, through secpipe's own count of late events.)
fn local_shuffle(lines: &mut [&str], seed: u64, reach: usize) {
    let mut x = seed | 1;
    for i in 0..lines.len() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = (i + (x as usize % (reach + 1))).min(lines.len() - 1);
        lines.swap(i, j);
    }
}

/// The alerts and the `late events` count of the stderr summary for `text` run as a file.
fn alerts_and_late_events(extra: &[&str], text: &str) -> (Vec<serde_json::Value>, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("input.log");
    std::fs::write(&path, text).expect("write input");
    let mut args = vec!["--tz", "UTC", "--year", "2026"];
    args.extend_from_slice(extra);
    args.push(path.to_str().expect("path"));
    let out = run_ok(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // `secpipe: N alerts, M late events`
    let late = stderr
        .lines()
        .find_map(|l| {
            l.strip_suffix(" late events")?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no late events count: {stderr}"));
    (json_lines(&out.stdout), late)
}

#[test]
fn arrival_order_within_the_lateness_does_not_change_the_alerts() {
    let lateness = ["--lateness", "10m"];
    let text = std::fs::read_to_string(fixture("rules/auth.bruteforce.fire.log")).expect("fixture");
    let (original, late) = alerts_and_late_events(&lateness, &text);
    assert_eq!(late, 0);
    assert_eq!(rules_of(&original), ["auth.bruteforce"]);
    let original: Vec<serde_json::Value> = original.iter().map(essence).collect();
    for seed in [1u64, 7, 42, 1234] {
        let mut lines: Vec<&str> = text.lines().collect();
        local_shuffle(&mut lines, seed, 3);
        let shuffled = lines.join("\n") + "\n";
        assert_ne!(shuffled, text, "seed {seed} did not reorder anything");
        let (got, late) = alerts_and_late_events(&lateness, &shuffled);
        // Within the lateness means no event arrived late: secpipe counts those.
        assert_eq!(late, 0, "seed {seed} moved a line beyond the lateness");
        let got: Vec<serde_json::Value> = got.iter().map(essence).collect();
        assert_eq!(got, original, "seed {seed}");
    }
}

/// sshd sessions of one address, one every 2 s for 8 minutes, each written as OpenSSH with
/// PAM does: the PAM failure (the attempt starts, pending), `Failed password` two seconds
/// later (it ends), the disconnect. With `unrelated`, one failure of another address, 70 s in.
fn sessions_of_one_address(unrelated: bool) -> String {
    let mut out = String::new();
    for i in 0..240i64 {
        let t = 10 * 3600 + 53 * 60 + 30 + 2 * i;
        let at = |t: i64| format!("Dec 10 {:02}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60);
        let pid = 25000 + i;
        out.push_str(&format!(
            "{} LabSZ sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 \
             euid=0 tty=ssh ruser= rhost=183.62.140.253  user=root\n",
            at(t)
        ));
        if unrelated && i == 35 {
            out.push_str(&format!(
                "{} LabSZ sshd[24914]: Failed password for invalid user cheng from \
                 202.100.179.208 port 32891 ssh2\n",
                at(t + 1)
            ));
        }
        out.push_str(&format!(
            "{} LabSZ sshd[{pid}]: Failed password for root from 183.62.140.253 port {} ssh2\n",
            at(t + 2),
            30000 + i
        ));
        out.push_str(&format!(
            "{} LabSZ sshd[{pid}]: Received disconnect from 183.62.140.253: 11: Bye Bye \
             [preauth]\n",
            at(t + 2)
        ));
    }
    out
}

#[test]
fn another_addresss_line_does_not_change_when_a_cooldown_ends() {
    // Each attempt is decided when its `Failed password` arrives, behind the watermark. One
    // line of another address moved the watermark past the end of the first alert's
    // cooldown before the attempt just inside it was decided: the key's cooldown was freed
    // and that attempt counted afresh, so the next alert's window (its id) depended on a
    // line about someone else. On the bus, where a partition sees only its addresses, the
    // same happened between a worker and `secpipe run`.
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("alone.log");
    let beside = dir.path().join("beside.log");
    std::fs::write(&alone, sessions_of_one_address(false)).unwrap();
    std::fs::write(&beside, sessions_of_one_address(true)).unwrap();
    let of_address = |path: &std::path::Path| -> Vec<(String, String, u64)> {
        alerts_for(&[path])
            .iter()
            .filter(|a| a["key"]["value"] == "183.62.140.253")
            .map(|a| {
                (
                    a["id"].as_str().unwrap_or_default().to_string(),
                    a["window_start"].as_str().unwrap_or_default().to_string(),
                    a["count"].as_u64().unwrap_or_default(),
                )
            })
            .collect()
    };
    let (a, b) = (of_address(&alone), of_address(&beside));
    assert!(a.len() >= 2, "the sessions alert more than once: {a:?}");
    assert_eq!(a, b);
}
