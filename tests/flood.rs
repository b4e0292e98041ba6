//! A flood of distinct attacking IPs: state stays within the per-rule cap, the overflow is
//! reported once, and nothing is lost or panics.

mod common;
use common::*;

fn flood(ips: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(ips as usize * 90);
    for i in 0..ips {
        // One failed attempt per address, 1000 a second: all of them inside one 5-minute window.
        let secs = i / 1000;
        let line = format!(
            "Mar 10 {:02}:{:02}:{:02} gw sshd[{}]: Failed password for root from 10.{}.{}.{} port 22 ssh2\n",
            12 + secs / 3600,
            (secs / 60) % 60,
            secs % 60,
            10_000 + i,
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

#[test]
fn a_flood_of_distinct_ips_stays_within_the_state_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("secpipe.toml");
    std::fs::write(&config, "[options]\nmax_keys = 20000\n").expect("config");
    let ips = 200_000;
    let out = run_stdin(
        &[
            "--tz",
            "UTC",
            "--year",
            "2026",
            "--config",
            config.to_str().expect("path"),
        ],
        flood(ips),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts = json_lines(&out.stdout);
    let overflow: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"] == "secpipe.state_overflow")
        .collect();
    assert_eq!(
        overflow.len(),
        1,
        "one overflow alert per capped rule: {overflow:#?}"
    );
    assert!(
        alerts.iter().all(|a| a["rule"] != "auth.bruteforce"),
        "one attempt per address is no brute force"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("secpipe: {ips} lines")), "{err}");
}
