//! Web access logs and JSON application logs through the real binary: one crafted value must
//! not hide an attack from the rules, and a forwarded address must not choose whom an alert
//! blames unless the operator named the proxy (`--trusted-proxy`).

mod common;
use common::*;

/// Runs `secpipe [extra] FILE` over `lines` written to a temporary file; returns the alerts.
fn alerts_of(lines: &[String], extra: &[&str]) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("input.log");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write input");
    alerts_with(extra, &[&path])
}

/// (rule, key value) of each alert.
fn rule_keys(alerts: &[serde_json::Value]) -> Vec<(String, String)> {
    alerts
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap_or("?").to_string(),
                a["key"]["value"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

#[test]
fn space_in_a_basic_auth_user_does_not_hide_injections_or_403s() {
    // The evasion: nginx and apache log the user name raw, so `evil user` used to make all 20
    // lines `unparsed` and give 0 alerts.
    let mut lines = Vec::new();
    for i in 0..10 {
        lines.push(format!(
            r#"198.51.100.4 - evil user [23/Nov/2026:12:00:{i:02} +0000] "GET /item?id={i}%27%20OR%20%271%27=%271 HTTP/1.1" 200 99 "-" "sqlmap/1.7""#
        ));
        lines.push(format!(
            r#"198.51.100.4 - evil user [23/Nov/2026:12:00:{:02} +0000] "GET /admin/{i} HTTP/1.1" 403 12 "-" "curl/8""#,
            i + 10
        ));
    }
    let found = rule_keys(&alerts_of(&lines, &[]));
    for rule in ["http.injection", "http.forbidden_rate"] {
        assert!(
            found.contains(&(rule.to_string(), "198.51.100.4".to_string())),
            "{rule} missing: {found:?}"
        );
    }
}

#[test]
fn one_bad_json_value_does_not_hide_a_brute_force() {
    // Each line carries one value a strict JSON parser refuses; the line used to be dropped.
    let bad = [
        r#""\ud800""#,
        "1e999",
        "123456789012345678901",
        "NaN",
        r#""\udfff""#,
    ];
    let lines: Vec<String> = bad
        .iter()
        .enumerate()
        .map(|(i, value)| {
            format!(
                r#"{{"ts":"2026-11-23T12:00:{i:02}Z","event":"login_failed","user":{value},"ip":"203.0.113.50","request_id":{value}}}"#
            )
        })
        .collect();
    let found = rule_keys(&alerts_of(&lines, &[]));
    assert!(
        found.contains(&("auth.bruteforce".to_string(), "203.0.113.50".to_string())),
        "{found:?}"
    );
}

#[test]
fn a_forwarded_address_is_blamed_only_behind_a_trusted_proxy() {
    // 12 forbidden requests through the load balancer 10.0.0.2; the client put 6.6.6.6 (say,
    // the admin's address) in front of the X-Forwarded-For list, the balancer appended the
    // real client 203.0.113.7.
    let lines: Vec<String> = (0..12)
        .map(|i| {
            format!(
                r#"10.0.0.2 - - [23/Nov/2026:12:00:{i:02} +0000] "GET /admin HTTP/1.1" 403 0 "-" "curl/8" "6.6.6.6, 203.0.113.7""#
            )
        })
        .collect();
    let untrusting = rule_keys(&alerts_of(&lines, &[]));
    assert_eq!(
        untrusting,
        vec![("http.forbidden_rate".to_string(), "10.0.0.2".to_string())]
    );
    let trusting = rule_keys(&alerts_of(&lines, &["--trusted-proxy", "10.0.0.0/8"]));
    assert_eq!(
        trusting,
        vec![("http.forbidden_rate".to_string(), "203.0.113.7".to_string())]
    );
}

#[test]
fn events_keep_the_forwarded_list_as_evidence() {
    let line = r#"10.0.0.2 - - [23/Nov/2026:12:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8" "6.6.6.6, 203.0.113.7""#;
    let out = run_stdin(&["events", "--tz", "UTC"], format!("{line}\n").into_bytes());
    assert!(out.status.success());
    let events = json_lines(&out.stdout);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["kind"], "http.request");
    assert_eq!(events[0]["src_ip"], "10.0.0.2");
    assert_eq!(events[0]["forwarded_for"], "6.6.6.6, 203.0.113.7");
}

#[test]
fn trusted_proxy_must_be_an_address_or_block() {
    for bad in ["proxy.example", "10.0.0.0/40", "10.0.0.0/x"] {
        let out = run_stdin(&["events", "--trusted-proxy", bad], Vec::new());
        assert_eq!(out.status.code(), Some(2), "--trusted-proxy {bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--trusted-proxy"), "{stderr}");
    }
}
