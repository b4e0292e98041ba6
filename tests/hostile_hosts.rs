//! Hostile input: invented host names. One line per name costs an attacker a few bytes; each
//! used to become a HIGH `log.silence` alert ten minutes later, all built in memory at once.

mod common;
use common::*;

/// One RFC 5424 line per invented host, `step_ms` apart, then one real host every minute for
/// `tail_minutes` so every deadline passes.
fn invented_hosts(hosts: u32, step_ms: u64, tail_minutes: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(hosts as usize * 80);
    let at = |ms: u64| {
        let secs = ms / 1000;
        format!(
            "2026-11-27T{:02}:{:02}:{:02}.{:03}Z",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60,
            ms % 1000
        )
    };
    for i in 0..u64::from(hosts) {
        out.extend_from_slice(
            format!("<13>1 {} fake-{i:07} app 1 - - hello\n", at(i * step_ms)).as_bytes(),
        );
    }
    let end = u64::from(hosts) * step_ms;
    for m in 0..tail_minutes {
        out.extend_from_slice(
            format!(
                "<13>1 {} realhost app 1 - - still here\n",
                at(end + m * 60_000)
            )
            .as_bytes(),
        );
    }
    out
}

#[test]
fn a_hundred_thousand_invented_hosts_give_a_bounded_number_of_alerts() {
    // 100,000 hosts over 1,000 s: their deadlines span two 10-minute periods.
    let out = run_stdin(&["--tz", "UTC"], invented_hosts(100_000, 10, 30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts = json_lines(&out.stdout);
    let silence: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"] == "log.silence")
        .collect();
    let storms: Vec<_> = silence
        .iter()
        .filter(|a| a["key"]["value"] == "*")
        .collect();
    let single = silence.len() - storms.len();
    assert_eq!(single, 40, "20 one by one per period, two periods");
    assert_eq!(storms.len(), 2, "{storms:#?}");
    let folded: u64 = storms
        .iter()
        .map(|a| a["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(
        folded + single as u64,
        100_000,
        "every invented host is accounted for"
    );
    for storm in &storms {
        assert_eq!(storm["evidence"].as_array().expect("evidence").len(), 10);
        assert_eq!(storm["severity"], "HIGH");
    }
    // The real host kept logging: never silent.
    assert!(silence.iter().all(|a| a["key"]["value"] != "realhost"));
}

#[test]
fn a_host_that_logged_for_a_while_is_not_evicted_by_invented_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("secpipe.toml");
    std::fs::write(&config, "[options]\nmax_keys = 1000\n").expect("config");
    // `db1` logs for three minutes, then 20,000 invented hosts flood a cap of 1,000 keys, then
    // `gw` talks for half an hour: db1 went quiet and must be alerted.
    let mut input = Vec::new();
    for m in 0..3 {
        input.extend_from_slice(
            format!("<13>1 2026-11-27T00:{m:02}:00Z db1 app 1 - - tick\n").as_bytes(),
        );
    }
    for i in 0..20_000 {
        input.extend_from_slice(
            format!("<13>1 2026-11-27T00:03:00Z fake-{i} app 1 - - hi\n").as_bytes(),
        );
    }
    for m in 4..40 {
        input.extend_from_slice(
            format!("<13>1 2026-11-27T00:{m:02}:00Z gw app 1 - - tick\n").as_bytes(),
        );
    }
    let out = run_stdin(
        &["--tz", "UTC", "--config", config.to_str().expect("path")],
        input,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts = json_lines(&out.stdout);
    assert!(
        alerts
            .iter()
            .any(|a| a["rule"] == "log.silence" && a["key"]["value"] == "db1"),
        "{:#?}",
        alerts
            .iter()
            .map(|a| (&a["rule"], &a["key"]))
            .collect::<Vec<_>>()
    );
    let overflow = alerts
        .iter()
        .filter(|a| a["rule"] == "secpipe.state_overflow")
        .count();
    assert_eq!(overflow, 1, "the cap was hit, and said so once");
}
