//! `--alert-format ocsf`: every alert line is an OCSF 1.3.0 Detection Finding that the PyPI
//! validator `py-ocsf-models` accepts (tests/peers/ocsf_validate_alerts.py), and attacker-written
//! names (JSON injection, newlines, bidi overrides, zero-width and bell characters) stay exact
//! string values that neither add fields nor show up as raw invisible characters.

mod archive_support;
mod common;

use common::fixture;

/// The hostile user names: a JSON-structure injection with a newline and a fake alert line,
/// a bidi override, a zero-width space and BEL; and a quote injection through sshd's own line.
const EVIL_JSON_USER: &str =
    "eve\"},\"class_uid\":1,\"x\":{\"a\":\"\n2026 CRITICAL \u{202e}toor\u{200b}\u{7}";
const EVIL_SSHD_USER: &str = "x\",\"class_uid\":1";

fn hostile_log() -> String {
    let json_user = serde_json::to_string(EVIL_JSON_USER).expect("json");
    let mut log = String::new();
    // auth.bruteforce keyed by src_ip (an address: src_endpoint.ip).
    for i in 0..5 {
        log.push_str(&format!(
            "2026-01-03T10:00:0{i}Z web1 sshd[{i}]: Failed password for root from 203.0.113.7 port 22 ssh2\n"
        ));
    }
    // auth.night_login keyed by user (user.name), with the hostile names.
    log.push_str(&format!(
        "{{\"ts\":\"2026-01-03T03:00:00Z\",\"event\":\"login_success\",\"ip\":\"198.51.100.7\",\"user\":{json_user}}}\n"
    ));
    log.push_str(&format!(
        "2026-01-03T03:00:01Z web1 sshd[9]: Accepted password for {EVIL_SSHD_USER} from 198.51.100.8 port 22 ssh2\n"
    ));
    log
}

#[test]
fn every_alert_line_validates_as_a_detection_finding_and_hostile_names_stay_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.log");
    std::fs::write(&input, hostile_log()).expect("write");
    let alerts = dir.path().join("alerts.ocsf");
    common::run_ok(&[
        "run",
        "--tz",
        "UTC",
        "--alert-format",
        "ocsf",
        "--alerts",
        alerts.to_str().expect("utf-8"),
        input.to_str().expect("utf-8"),
    ]);
    let bytes = std::fs::read(&alerts).expect("alerts written");
    let text = String::from_utf8(bytes).expect("UTF-8");

    // Nothing invisible or controlling reaches the file as a raw character: every one is an
    // escape (\u202e, \u200b, \u0007, \n) inside a JSON string.
    for bad in ['\u{202e}', '\u{200b}', '\u{7}'] {
        assert!(!text.contains(bad), "raw {bad:?} in {text}");
    }
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "one line per alert: {text}");

    // py-ocsf-models validates each line, and the required-field table of OCSF 1.3.0.
    let report = archive_support::python(
        include_str!("peers/ocsf_validate_alerts.py"),
        &[
            alerts.to_str().expect("path"),
            fixture("ocsf/required-1.3.0.json").to_str().expect("path"),
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&report).expect("validator JSON");
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["valid"], 3, "{report}");
    assert_eq!(report["class_uids"], serde_json::json!([2004, 2004, 2004]));
    assert!(
        report["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .all(|v| v == "1.3.0")
    );
    assert_eq!(
        report["ips"],
        serde_json::json!(["203.0.113.7"]),
        "{report}"
    );
    let mut users: Vec<String> = report["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u.as_str().expect("a string").to_owned())
        .collect();
    users.sort();
    let mut expected = vec![EVIL_JSON_USER.to_owned(), EVIL_SSHD_USER.to_owned()];
    expected.sort();
    assert_eq!(users, expected, "names come back exactly");

    // The injections added no field: class_uid is 2004 and the top-level keys are OCSF's.
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(v["class_uid"], 2004);
        assert_eq!(v["type_uid"], 200401);
        assert!(v.get("x").is_none(), "{line}");
        let severity = v["severity_id"].as_i64().expect("severity_id");
        assert!((2..=5).contains(&severity));
    }
}

#[test]
fn severities_map_to_ocsf_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.log");
    std::fs::write(&input, hostile_log()).expect("write");
    let out = common::run_ok(&[
        "run",
        "--tz",
        "UTC",
        "--alert-format",
        "ocsf",
        input.to_str().expect("utf-8"),
    ]);
    for v in common::json_lines(&out.stdout) {
        let expected = match v["finding_info"]["title"].as_str().expect("title") {
            "auth.night_login" => 2, // LOW
            "auth.bruteforce" => 4,  // HIGH: 5 in a minute
            other => panic!("unexpected alert {other}"),
        };
        assert_eq!(v["severity_id"], expected, "{v}");
    }
}
