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

/// A small deterministic shuffle: each line moves by at most `reach` places.
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

#[test]
fn arrival_order_within_the_lateness_does_not_change_the_alerts() {
    // A shuffle that moves lines by at most 3 places moves them by at most a few minutes in
    // this fixture; a lateness of 10 minutes covers that.
    let lateness = ["--lateness", "10m"];
    let text = std::fs::read_to_string(fixture("rules/auth.bruteforce.fire.log")).expect("fixture");
    let original: Vec<serde_json::Value> = alerts_of_text_with(&lateness, &text)
        .iter()
        .map(essence)
        .collect();
    assert!(!original.is_empty());
    for seed in [1u64, 7, 42, 1234] {
        let mut lines: Vec<&str> = text.lines().collect();
        local_shuffle(&mut lines, seed, 3);
        let shuffled = lines.join("\n") + "\n";
        let got: Vec<serde_json::Value> = alerts_of_text_with(&lateness, &shuffled)
            .iter()
            .map(essence)
            .collect();
        assert_eq!(got, original, "seed {seed}");
    }
}
