//! A flood of distinct attacking IPs: state stays within the per-rule cap (measured on
//! `/metrics` while the run holds it), memory stays within budget, the overflow is reported
//! once, and nothing is lost or panics.

mod common;
mod live_support;
use common::*;
use live_support::{free_port, metric_value, wait_for};

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

/// Peak resident memory of process `pid` so far (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"))
}

#[test]
fn a_flood_of_distinct_ips_stays_within_the_state_cap() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("secpipe.toml");
    let max_keys = 20_000;
    std::fs::write(&config, format!("[options]\nmax_keys = {max_keys}\n")).expect("config");
    let ips = 200_000;
    // The flood is piped in and stdin is held open once it is written, so the run is still
    // there to be measured (its state on /metrics, its memory in /proc) after every line has
    // reached the detector.
    let metrics_port = free_port();
    let stdout_path = dir.path().join("alerts.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .args(["--tz", "UTC", "--year", "2026", "--config"])
        .arg(&config)
        .args(["--metrics", &format!("127.0.0.1:{metrics_port}")])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start secpipe");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        stdin.write_all(&flood(ips)).expect("write the flood");
        stdin
    });
    let metrics = || live_support::http_get(metrics_port, "/metrics").unwrap_or_default();
    wait_for("every flood line to be parsed", || {
        (metric_value(&metrics(), "secpipe_parsed_total") == f64::from(ips)).then_some(())
    });
    // All 200,000 addresses are inside one 5-minute window; only the last 10 s (the lateness)
    // are still in the reorder buffer. The brute-force rule holds exactly its cap of keys.
    let bruteforce_keys = r#"secpipe_state_keys{rule="auth.bruteforce"}"#;
    wait_for("the brute-force state to reach its cap", || {
        (metric_value(&metrics(), bruteforce_keys) >= f64::from(max_keys)).then_some(())
    });
    let text = metrics();
    assert_eq!(
        metric_value(&text, bruteforce_keys),
        f64::from(max_keys),
        "{text}"
    );
    let all_keys: f64 = text
        .lines()
        .filter(|l| l.starts_with("secpipe_state_keys{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    // Besides the capped rule, only `log.silence` holds a key (the one host `gw`).
    assert_eq!(all_keys, f64::from(max_keys) + 1.0, "{text}");
    let rss_kib = peak_rss_kib(child.id());
    eprintln!("flood of {ips} addresses: {all_keys} keys held, peak RSS {rss_kib} KiB");
    assert!(rss_kib <= 256 * 1024, "peak RSS {rss_kib} KiB over 256 MiB");

    drop(writer.join().expect("writer"));
    let status = wait_for("secpipe to exit at end of input", || {
        child.try_wait().expect("wait")
    });
    let output = child.wait_with_output().expect("stderr");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "{status}: {err}");
    let alerts = json_lines(&std::fs::read(&stdout_path).expect("alerts"));
    let overflow: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"] == "secpipe.state_overflow")
        .collect();
    assert_eq!(
        overflow.len(),
        1,
        "one overflow alert per capped rule: {overflow:#?}"
    );
    assert_eq!(overflow[0]["key"]["value"], "auth.bruteforce");
    assert!(
        alerts.iter().all(|a| a["rule"] != "auth.bruteforce"),
        "one attempt per address is no brute force"
    );
    assert!(err.contains(&format!("secpipe: {ips} lines")), "{err}");
    assert!(err.contains(&format!("auth.failure {ips}")), "{err}");
}
