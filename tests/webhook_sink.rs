//! `--alerts http://…` against a real HTTP receiver: `tests/peers/webhook_receiver.py`
//! (Python's stdlib `http.server`), started here on an ephemeral loopback port and scripted to
//! fail before it accepts (issue 13, the webhook sink).

mod common;
mod live_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::*;
use live_support::{Running, free_port, wait_for};

/// A running receiver; its log has one JSON object per request it got.
struct Receiver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Receiver {
    /// Start the receiver answering requests in `script` order (`500,429:1,200`: the first
    /// request 500, the second 429 with `Retry-After: 1`, then 200 from then on).
    fn start(dir: &Path, script: &str) -> Receiver {
        Receiver::start_on(dir, script, 0)
    }

    /// As [`Receiver::start`], on `port` (0: any free one).
    fn start_on(dir: &Path, script: &str, port: u16) -> Receiver {
        let port_file = dir.join("port");
        let log = dir.join("requests.jsonl");
        let child = Command::new("python3")
            .arg(root().join("tests/peers/webhook_receiver.py"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(&log)
            .arg("--script")
            .arg(script)
            .arg("--port")
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 tests/peers/webhook_receiver.py");
        let port = wait_for("the receiver to listen", || {
            std::fs::read_to_string(&port_file)
                .ok()?
                .trim()
                .parse()
                .ok()
        });
        Receiver { child, port, log }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/secpipe", self.port)
    }

    /// Every request received so far.
    fn requests(&self) -> Vec<serde_json::Value> {
        json_lines(&std::fs::read(&self.log).unwrap_or_default())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn header<'a>(request: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    request["headers"]
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))?
        .1
        .as_str()
}

/// The receiver fails (500), asks for time (429, Retry-After: 1), then takes everything: every
/// alert arrives, once per id after deduplication by Idempotency-Key, and each body is exactly
/// the alert's JSON line as stdout has it.
#[test]
fn every_alert_arrives_through_500_and_429_and_none_twice_beyond_its_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(dir.path(), "500,429:1,200");
    let out = run_ok(&[
        "--tz",
        "UTC",
        "--drain-timeout",
        "1m",
        "--alerts",
        "-",
        "--alerts",
        &receiver.url(),
        fixture("sample/attacks.log").to_str().expect("path"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let alerts: Vec<&str> = stdout.lines().collect();
    assert!(alerts.len() > 3, "the sample has attacks");
    let requests = receiver.requests();
    let statuses: Vec<u64> = requests
        .iter()
        .filter_map(|r| r["status"].as_u64())
        .collect();
    assert_eq!(&statuses[..3], [500, 429, 200], "the script ran");
    // Keep what the receiver took (200), deduplicated by key.
    let mut taken = std::collections::BTreeMap::new();
    for request in requests.iter().filter(|r| r["status"] == 200) {
        let key = header(request, "Idempotency-Key").expect("Idempotency-Key");
        let body = request["body"].as_str().expect("body");
        assert!(
            taken.insert(key.to_string(), body.to_string()).is_none(),
            "taken twice: {key}"
        );
    }
    assert_eq!(taken.len(), alerts.len(), "every alert arrived once");
    for line in alerts {
        let alert: serde_json::Value = serde_json::from_str(line).expect("JSON");
        let id = alert["id"].as_str().expect("id");
        assert_eq!(
            taken.get(id).map(String::as_str),
            Some(line),
            "body of {id}"
        );
    }
    // The retried alert carried the same key each time.
    let first_key = header(&requests[0], "Idempotency-Key");
    assert!(
        requests[..3]
            .iter()
            .all(|r| header(r, "Idempotency-Key") == first_key)
    );
    for request in &requests {
        assert_eq!(request["path"], "/secpipe");
        assert_eq!(header(request, "Content-Type"), Some("application/json"));
    }
}

/// Crafted user names (a newline and a fake CRITICAL alert, invisible characters) stay inside
/// the JSON body: no request carries a header that secpipe did not set.
#[test]
fn alert_text_never_becomes_a_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(dir.path(), "200");
    run_ok(&[
        "--tz",
        "UTC",
        "--alerts",
        &receiver.url(),
        fixture("hostile/alert_text_injection.jsonl")
            .to_str()
            .expect("path"),
    ]);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for request in &requests {
        let names: Vec<String> = request["headers"]
            .as_object()
            .expect("headers")
            .keys()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        for name in &names {
            assert!(
                [
                    "host",
                    "user-agent",
                    "accept",
                    "accept-encoding",
                    "content-type",
                    "content-length",
                    "idempotency-key",
                    "transfer-encoding",
                ]
                .contains(&name.as_str()),
                "unexpected header {name}: {request}"
            );
        }
        let key = header(request, "Idempotency-Key").expect("key");
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
        let body: serde_json::Value =
            serde_json::from_str(request["body"].as_str().expect("body")).expect("JSON body");
        assert_eq!(body["rule"], "auth.night_login");
    }
}

/// A receiver that answers 503 to everything costs only its own sink: the run ends (the drain
/// limit, 1 s, bounds the retries), stdout has every alert, and the summary counts the
/// undelivered ones.
#[test]
fn a_receiver_that_stays_down_costs_only_its_sink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(dir.path(), "503");
    let started = std::time::Instant::now();
    let out = secpipe()
        .args(["--tz", "UTC", "--drain-timeout", "1s", "--alerts", "-"])
        .args(["--alerts", &receiver.url()])
        .arg(fixture("sample/attacks.log"))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let alerts = json_lines(&out.stdout);
    assert!(!alerts.is_empty());
    assert!(
        stderr.contains(&format!(
            "{n} of {n} alerts not delivered to {url}",
            n = alerts.len(),
            url = receiver.url()
        )),
        "{stderr}"
    );
    assert!(
        receiver.requests().iter().all(|r| r["status"] == 503),
        "the receiver was asked"
    );
    eprintln!("run with a dead receiver took {:?}", started.elapsed());
}

/// The receiver is down for a whole live run with `--state`, stopped by SIGTERM: at the drain
/// limit the webhook gives up, and what it gave up on stays in the spool (a stop is not the
/// receiver's "no"). The next run, receiver up and nothing new to read, delivers every alert
/// of the first.
#[test]
fn alerts_a_webhook_missed_at_the_drain_limit_arrive_with_the_next_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let log = dir.path().join("attacks.log");
    std::fs::copy(fixture("sample/attacks.log"), &log).expect("copy the sample");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/secpipe");
    let alerts_file = dir.path().join("first.jsonl");
    let (state_arg, log_arg, alerts_arg) = (
        state.display().to_string(),
        log.display().to_string(),
        alerts_file.display().to_string(),
    );
    let first = Running::start(
        dir.path(),
        &[
            "--tz",
            "UTC",
            "--drain-timeout",
            "1s",
            "--follow",
            "--state",
            &state_arg,
            "--alerts",
            &alerts_arg,
            "--alerts",
            &url,
            &log_arg,
        ],
    );
    wait_for("alerts of the first run", || {
        let text = std::fs::read(&alerts_file).ok()?;
        (!json_lines(&text).is_empty()).then_some(())
    });
    let (status, stderr) = first.terminate();
    assert!(status.success(), "{stderr}");
    let alerts = json_lines(&std::fs::read(&alerts_file).expect("the first run's alerts"));
    assert!(!alerts.is_empty(), "the sample has attacks");
    let receiver = Receiver::start_on(dir.path(), "200", port);
    assert_eq!(receiver.url(), url);
    let second = secpipe()
        .args(["--tz", "UTC", "--state"])
        .arg(&state)
        .args(["--alerts", &url, "/dev/null"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    let mut got: Vec<String> = Vec::new();
    for request in receiver.requests() {
        let body: serde_json::Value =
            serde_json::from_str(request["body"].as_str().expect("body")).expect("JSON body");
        let each = match body {
            serde_json::Value::Array(items) => items,
            one => vec![one],
        };
        got.extend(
            each.iter()
                .map(|a| a["id"].as_str().expect("id").to_string()),
        );
    }
    got.sort();
    got.dedup();
    let mut expected: Vec<String> = alerts
        .iter()
        .map(|a| a["id"].as_str().expect("id").to_string())
        .collect();
    expected.sort();
    assert_eq!(got, expected, "{stderr}");
}

/// `replay` re-raises old alerts: it posts to a webhook only with `--deliver`.
#[test]
fn replay_posts_only_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(dir.path(), "200");
    let log = fixture("sample/attacks.log");
    let refused = secpipe()
        .args(["replay", "--alerts", &receiver.url()])
        .arg(&log)
        .output()
        .expect("run");
    assert_eq!(
        refused.status.code(),
        Some(2),
        "replay refuses without --deliver"
    );
    assert!(receiver.requests().is_empty());
    let out = secpipe()
        .args(["replay", "--deliver", "--alerts", &receiver.url()])
        .arg(&log)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!receiver.requests().is_empty());
}

#[test]
fn a_webhook_url_without_a_host_is_a_usage_error() {
    for spec in [
        "http://",
        "https:///path",
        "alertmanager+ftp://127.0.0.1:9093",
    ] {
        let out = secpipe()
            .args(["--alerts", spec, "/dev/null"])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {stderr}");
        assert!(stderr.contains("http"), "{spec}: {stderr}");
    }
}

/// The config file's `webhook = { secret_file = … }` signs every request: the receiver checks
/// `X-Secpipe-Signature` (HMAC-SHA256 of the exact body under the key file's bytes, trailing
/// newline dropped) as README shows, and a batch arrives as one array.
#[test]
fn a_configured_secret_signs_each_batch_the_receiver_can_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(dir.path(), "200");
    let key = dir.path().join("hook.key");
    std::fs::write(&key, "k3y-from-a-file\n").expect("key");
    let config = dir.path().join("secpipe.toml");
    std::fs::write(
        &config,
        format!(
            "[[alerts]]\nto = {url:?}\nwebhook = {{ secret_file = {key:?}, batch = true }}\n\n\
             [[alerts]]\nto = \"-\"\n",
            url = receiver.url(),
            key = key.display().to_string(),
        ),
    )
    .expect("config");
    let out = secpipe()
        .args(["--tz", "UTC", "--config"])
        .arg(&config)
        .arg(fixture("sample/attacks.log"))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts = json_lines(&out.stdout);
    assert!(!alerts.is_empty());
    let requests = receiver.requests();
    let signer = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k3y-from-a-file");
    let mut ids = Vec::new();
    for request in &requests {
        let body = request["body"].as_str().expect("body");
        let bytes: Vec<u8> = body.chars().map(|c| c as u32 as u8).collect();
        let expected = format!("sha256={}", hex::encode(ring::hmac::sign(&signer, &bytes)));
        assert_eq!(
            header(request, "X-Secpipe-Signature"),
            Some(expected.as_str())
        );
        let batch: Vec<serde_json::Value> = serde_json::from_slice(&bytes).expect("an array");
        ids.extend(batch.iter().map(|a| a["id"].to_string()));
    }
    let mut expected: Vec<String> = alerts.iter().map(|a| a["id"].to_string()).collect();
    expected.sort();
    ids.sort();
    assert_eq!(ids, expected);
    // A wrong key does not verify: the check above can fail.
    let wrong = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"another key");
    let first = requests[0]["body"].as_str().expect("body");
    let bytes: Vec<u8> = first.chars().map(|c| c as u32 as u8).collect();
    let forged = format!("sha256={}", hex::encode(ring::hmac::sign(&wrong, &bytes)));
    assert_ne!(
        header(&requests[0], "X-Secpipe-Signature"),
        Some(forged.as_str())
    );
}
