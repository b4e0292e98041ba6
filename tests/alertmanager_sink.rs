//! `--alerts alertmanager+http://…` against a real Prometheus Alertmanager (Debian's
//! `prometheus-alertmanager`, installed by tests/run-all.sh), started here on a loopback port
//! with clustering off (issue 13, the Alertmanager sink). Outside CI a machine without it skips
//! these tests, saying so; under CI (`CI` set) a missing Alertmanager fails them.

mod common;
mod live_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;
use live_support::{free_port, wait_for};

const BINARY: &str = "prometheus-alertmanager";

struct Alertmanager {
    child: Child,
    port: u16,
}

impl Alertmanager {
    /// Start one, or `None` (after saying why) when it is not installed outside CI.
    fn start(dir: &Path) -> Option<Alertmanager> {
        let installed = Command::new(BINARY)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "{BINARY} is missing under CI: tests/run-all.sh installs it"
            );
            eprintln!(
                "SKIPPED: {BINARY} is not installed (apt-get install prometheus-alertmanager)"
            );
            return None;
        }
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: none\n  group_by: [alertname]\nreceivers:\n  - name: none\n",
        )
        .expect("write alertmanager.yml");
        let port = free_port();
        let child = Command::new(BINARY)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus-alertmanager");
        let am = Alertmanager { child, port };
        wait_for("Alertmanager to answer", || am.alerts());
        Some(am)
    }

    /// The alerts Alertmanager holds (`GET /api/v2/alerts`).
    fn alerts(&self) -> Option<Vec<serde_json::Value>> {
        let mut response = ureq::get(format!("http://127.0.0.1:{}/api/v2/alerts", self.port))
            .call()
            .ok()?;
        let body = response.body_mut().read_to_string().ok()?;
        serde_json::from_str(&body).ok()
    }

    fn spec(&self) -> String {
        format!("alertmanager+http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The labels the sink gives an alert of stdout.
fn expected_labels(alert: &serde_json::Value) -> serde_json::Value {
    let mut labels = serde_json::json!({
        "alertname": alert["rule"],
        "severity": alert["severity"].as_str().expect("severity").to_ascii_lowercase(),
        "priority": alert["priority"],
        "key_field": alert["key"]["field"],
        "key": alert["key"]["value"],
        "source": "secpipe",
    });
    if alert["key"]["field"] == "host" {
        labels["host"] = alert["key"]["value"].clone();
    }
    labels
}

/// Every alert of the run is in Alertmanager, active, with the labels of the mapping; running
/// the same input again adds nothing (same labels: Alertmanager deduplicates).
#[test]
fn every_alert_reaches_alertmanager_with_its_labels_and_a_second_send_is_deduplicated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(am) = Alertmanager::start(dir.path()) else {
        return;
    };
    let input = fixture("sample/attacks.log");
    let args = [
        "--tz",
        "UTC",
        "--alerts",
        "-",
        "--alerts",
        &am.spec(),
        input.to_str().expect("path"),
    ];
    let alerts = json_lines(&run_ok(&args).stdout);
    assert!(alerts.len() > 3, "the sample has attacks");
    // Alerts of one rule and key (a host silent twice) are one incident to Alertmanager.
    let label_sets: BTreeSet<String> = alerts
        .iter()
        .map(|a| expected_labels(a).to_string())
        .collect();
    let held = wait_for("every alert in Alertmanager", || {
        am.alerts().filter(|held| held.len() >= label_sets.len())
    });
    assert_eq!(held.len(), label_sets.len());
    let held_sets: BTreeSet<String> = held.iter().map(|a| a["labels"].to_string()).collect();
    assert_eq!(held_sets, label_sets, "the labels of the mapping");
    for alert in &held {
        assert_eq!(alert["status"]["state"], "active", "{alert}");
        let id = alert["annotations"]["alert_id"].as_str().expect("alert_id");
        assert!(
            alerts.iter().any(|a| a["id"] == id),
            "alert_id {id} is one of the run's"
        );
    }

    // The same alerts once more (a restart that re-sends): still one alert per label set.
    run_ok(&args);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let again = am.alerts().expect("alerts");
    assert_eq!(again.len(), label_sets.len(), "deduplicated by labels");
}

/// Crafted user names (a newline and a fake CRITICAL alert, invisible characters) are label
/// values Alertmanager accepts: the alerts arrive, with no control character left in them.
#[test]
fn crafted_names_arrive_as_clean_label_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(am) = Alertmanager::start(dir.path()) else {
        return;
    };
    run_ok(&[
        "--tz",
        "UTC",
        "--alerts",
        &am.spec(),
        fixture("hostile/alert_text_injection.jsonl")
            .to_str()
            .expect("path"),
    ]);
    let held = wait_for("two alerts in Alertmanager", || {
        am.alerts().filter(|held| held.len() >= 2)
    });
    assert_eq!(held.len(), 2);
    for alert in &held {
        assert_eq!(alert["labels"]["alertname"], "auth.night_login");
        let key = alert["labels"]["key"].as_str().expect("key");
        assert!(!key.chars().any(char::is_control), "{key:?}");
    }
    assert!(
        held.iter().any(|a| a["labels"]["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("bob?2026-11-23T03:00:00.000000Z CRITICAL"))),
        "{held:?}"
    );
}
