//! `SIGHUP` reloads rules and grammars of a live `secpipe run` without losing window state,
//! and systemd notification (`NOTIFY_SOCKET`) with a real datagram socket playing systemd.
//!
//! The runs follow a file (`--follow`) stamped with the current time, so they are live while
//! they are signalled; `--lateness 1s` keeps the wall-clock watermark close. Before a reload
//! the tests wait until the attempts are *in the rule's window* (`secpipe_state_keys`), not
//! only read: an attempt still in the reorder buffer is judged by whatever rules are in force
//! when it is released, which would make a "state survives" test pass without any state.
//! Every wait is bounded; no test asserts how long anything took.

mod live_support;

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

use live_support::{Running, free_port, lines_read, signal, wait_for};

/// One sshd failed-password line stamped now, from its own process (one attempt a line).
fn attempt_line(ip: &str, pid: u32) -> String {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ");
    format!(
        "<38>1 {now} gateway sshd {pid} - - Failed password for root from {ip} port {} ssh2\n",
        40_000 + pid
    )
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    file.write_all(text.as_bytes()).expect("append");
    file.flush().expect("flush");
}

fn append_attempts(path: &Path, ip: &str, pids: std::ops::Range<u32>) {
    let text: String = pids.map(|pid| attempt_line(ip, pid)).collect();
    append(path, &text);
}

const BRUTEFORCE_KEYS: &str = r#"secpipe_state_keys{rule="auth.bruteforce"}"#;
const RELOADS_DONE: &str = r#"secpipe_reloads_total{result="done"}"#;
const RELOADS_FAILED: &str = r#"secpipe_reloads_total{result="failed"}"#;

/// A followed `auth.log` (empty) and a config file with `config`, in a fresh directory.
fn setup(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("auth.log"), "").expect("auth.log");
    std::fs::write(dir.path().join("secpipe.toml"), config).expect("config");
    dir
}

fn start(dir: &Path, extra: &[&str]) -> Running {
    let mut args = vec![
        "--follow",
        "auth.log",
        "--lateness",
        "1s",
        "--config",
        "secpipe.toml",
    ];
    args.extend_from_slice(extra);
    Running::start(dir, &args)
}

/// Rewrite the config and send SIGHUP; wait until `series` (a reload result) reaches `want`.
fn reload_with(secpipe: &Running, dir: &Path, config: &str, series: &str, want: f64) {
    std::fs::write(dir.join("secpipe.toml"), config).expect("rewrite config");
    signal(&secpipe.child, "HUP");
    secpipe.wait_metric(series, want);
}

/// Every brute-force alert on stdout, in order.
fn bruteforce_alerts(secpipe: &Running) -> Vec<serde_json::Value> {
    secpipe
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|a| a["rule"] == "auth.bruteforce")
        .collect()
}

/// The sshd pids of an alert's evidence lines.
fn evidence_pids(alert: &serde_json::Value) -> Vec<u32> {
    alert["evidence"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let raw = e["raw"].as_str()?;
            raw.split(" sshd ").nth(1)?.split(' ').next()?.parse().ok()
        })
        .collect()
}

const OTHER_RULE: &str = "[rules.\"http.request_rate\"]\nthreshold = 200\n";
const OTHER_RULE_CHANGED: &str = "[rules.\"http.request_rate\"]\nthreshold = 300\n";

#[test]
fn four_attempts_then_sighup_then_a_fifth_still_alerts() {
    let dir = setup(OTHER_RULE);
    let log = dir.path().join("auth.log");
    let secpipe = start(dir.path(), &[]);
    append_attempts(&log, "203.0.113.40", 1..5);
    secpipe.wait_metric(BRUTEFORCE_KEYS, 1.0);
    // First the same rules, then another rule changed: auth.bruteforce keeps its window both
    // times.
    reload_with(&secpipe, dir.path(), OTHER_RULE, RELOADS_DONE, 1.0);
    reload_with(&secpipe, dir.path(), OTHER_RULE_CHANGED, RELOADS_DONE, 2.0);
    assert!(bruteforce_alerts(&secpipe).is_empty());
    append_attempts(&log, "203.0.113.40", 5..6);
    let alert = secpipe.wait_alert("auth.bruteforce", "203.0.113.40");
    assert_eq!(alert["count"], 5, "{alert}");
    assert_eq!(evidence_pids(&alert), [1, 2, 3, 4, 5], "{alert}");
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("changed, starting afresh: http.request_rate"),
        "{stderr}"
    );
    assert!(stderr.contains("13 rules kept their state"), "{stderr}");
}

/// Decided: a rule whose definition changed starts afresh, even when only its threshold was
/// lowered (see `src/detect/reload.rs` for why). Four attempts before a reload that lowers
/// the threshold to 3 do not count: the first alert rests on three attempts after it. Had the
/// state been kept, the first attempt after the reload would have fired with a count of 5.
#[test]
fn a_lowered_threshold_starts_the_rule_afresh() {
    let dir = setup(OTHER_RULE);
    let log = dir.path().join("auth.log");
    let secpipe = start(dir.path(), &[]);
    append_attempts(&log, "203.0.113.41", 1..5);
    secpipe.wait_metric(BRUTEFORCE_KEYS, 1.0);
    let lowered = "[rules.\"auth.bruteforce\"]\nthreshold = 3\n";
    reload_with(&secpipe, dir.path(), lowered, RELOADS_DONE, 1.0);
    secpipe.wait_metric(BRUTEFORCE_KEYS, 0.0);
    append_attempts(&log, "203.0.113.41", 5..8);
    let alert = secpipe.wait_alert("auth.bruteforce", "203.0.113.41");
    assert_eq!(alert["count"], 3, "{alert}");
    assert_eq!(alert["threshold"], 3, "{alert}");
    assert_eq!(evidence_pids(&alert), [5, 6, 7], "{alert}");
    assert_eq!(bruteforce_alerts(&secpipe).len(), 1);
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "{stderr}");
}

#[test]
fn a_broken_config_keeps_the_old_rules_and_a_fixed_one_applies() {
    let dir = setup(OTHER_RULE);
    let log = dir.path().join("auth.log");
    let secpipe = start(dir.path(), &[]);
    let misspelt = "[rules.\"auth.bruteforce\"]\ntreshold = 2\n";
    reload_with(&secpipe, dir.path(), misspelt, RELOADS_FAILED, 1.0);
    let stderr = secpipe.stderr();
    assert!(stderr.contains("secpipe.toml:2:1"), "{stderr}");
    assert!(stderr.contains("did you mean `threshold`"), "{stderr}");
    assert!(
        stderr.contains("still running on the previous rules"),
        "{stderr}"
    );
    // The old threshold (5) is in force: four attempts do not alert, the fifth does.
    append_attempts(&log, "203.0.113.42", 1..5);
    secpipe.wait_metric(BRUTEFORCE_KEYS, 1.0);
    assert!(bruteforce_alerts(&secpipe).is_empty());
    append_attempts(&log, "203.0.113.42", 5..6);
    let alert = secpipe.wait_alert("auth.bruteforce", "203.0.113.42");
    assert_eq!(
        (alert["count"].as_u64(), alert["threshold"].as_u64()),
        (Some(5), Some(5))
    );
    // Fixed: threshold 2 applies to what comes next.
    let fixed = "[rules.\"auth.bruteforce\"]\nthreshold = 2\n";
    reload_with(&secpipe, dir.path(), fixed, RELOADS_DONE, 1.0);
    append_attempts(&log, "203.0.113.43", 10..12);
    let alert = secpipe.wait_alert("auth.bruteforce", "203.0.113.43");
    assert_eq!(
        (alert["count"].as_u64(), alert["threshold"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(secpipe.metric(RELOADS_FAILED), 1.0);
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "{stderr}");
}

const VPN_GRAMMAR: &str = r#"apps = ["myvpn"]

[[pattern]]
name = "refused"
kind = "auth.failure"
reason = "bad_password"
regex = '^login refused for \S+ from (?P<src_ip>\S+)$'
"#;

fn vpn_line(pid: u32) -> String {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ");
    format!("<38>1 {now} gateway myvpn {pid} - - login refused for bob from 198.51.100.77\n")
}

#[test]
fn a_grammar_added_by_reload_classifies_lines_after_the_switch() {
    let dir = setup("");
    let grammars = dir.path().join("grammars");
    std::fs::create_dir(&grammars).expect("grammars dir");
    let log = dir.path().join("auth.log");
    let secpipe = start(dir.path(), &["--grammars", "grammars"]);
    let failures = r#"secpipe_events_total{kind="auth.failure"}"#;
    append(&log, &vpn_line(1));
    secpipe.wait_metric(&lines_read("auth.log"), 1.0);
    secpipe.wait_metric(r#"secpipe_events_total{kind="other"}"#, 1.0);
    assert_eq!(secpipe.metric(failures), 0.0);
    std::fs::write(grammars.join("myvpn.toml"), VPN_GRAMMAR).expect("grammar");
    signal(&secpipe.child, "HUP");
    secpipe.wait_metric(RELOADS_DONE, 1.0);
    let text: String = (2..7).map(vpn_line).collect();
    append(&log, &text);
    secpipe.wait_metric(failures, 5.0);
    // And the rules see them: five refused logins are a brute force.
    let alert = secpipe.wait_alert("auth.bruteforce", "198.51.100.77");
    assert_eq!(alert["count"], 5, "{alert}");
    // A broken grammar afterwards changes nothing: the VPN lines still classify.
    std::fs::write(
        grammars.join("broken.toml"),
        "apps = [\"x\"]\n[[pattern]]\nname = 1\n",
    )
    .expect("broken grammar");
    signal(&secpipe.child, "HUP");
    secpipe.wait_metric(RELOADS_FAILED, 1.0);
    assert!(
        secpipe.stderr().contains("broken.toml:"),
        "{}",
        secpipe.stderr()
    );
    append(&log, &vpn_line(8));
    secpipe.wait_metric(failures, 6.0);
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "{stderr}");
}

fn count_entries(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// The fewest and most entries of `dir` over ten looks 100 ms apart. A metrics scrape's socket
/// or a blocking-pool thread comes and goes; a leak stays, so "after" is its fewest.
fn entries_over_a_second(dir: &str) -> (usize, usize) {
    let looks: Vec<usize> = (0..10)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            count_entries(dir)
        })
        .collect();
    (
        looks.iter().copied().min().unwrap_or(0),
        looks.iter().copied().max().unwrap_or(0),
    )
}

/// Attack: a flood of SIGHUPs. None ends the run; they are merged (far fewer reloads than
/// signals); descriptors and threads do not grow; and the pipeline still detects after it.
#[test]
fn a_flood_of_sighups_neither_ends_nor_stalls_nor_leaks() {
    let dir = setup(OTHER_RULE);
    let log = dir.path().join("auth.log");
    let mut secpipe = start(dir.path(), &[]);
    // One reload first, so that whatever a reload opens once is open before counting.
    signal(&secpipe.child, "HUP");
    secpipe.wait_metric(RELOADS_DONE, 1.0);
    let pid = secpipe.child.id() as libc::pid_t;
    let fds = format!("/proc/{pid}/fd");
    let tasks = format!("/proc/{pid}/task");
    let ((_, fds_before), (_, tasks_before)) =
        (entries_over_a_second(&fds), entries_over_a_second(&tasks));
    const SIGNALS: u32 = 2_000;
    for _ in 0..SIGNALS {
        // SAFETY: kill(2) with our own child's pid and a valid signal number.
        let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
        assert_eq!(rc, 0, "kill -HUP");
    }
    // The last of them is served (merged into a reload after the flood).
    wait_for("a reload after the flood", || {
        (secpipe.metric(RELOADS_DONE) >= 2.0).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1_500));
    let reloads = secpipe.metric(RELOADS_DONE);
    assert!(reloads < f64::from(SIGNALS) / 10.0, "{reloads} reloads");
    let still_running = secpipe.child.try_wait().expect("wait for secpipe");
    assert!(
        still_running.is_none(),
        "SIGHUP ended the run: {still_running:?}"
    );
    append_attempts(&log, "203.0.113.44", 1..6);
    let alert = secpipe.wait_alert("auth.bruteforce", "203.0.113.44");
    assert_eq!(alert["count"], 5, "{alert}");
    let ((fds_after, _), (tasks_after, _)) =
        (entries_over_a_second(&fds), entries_over_a_second(&tasks));
    assert!(
        fds_after <= fds_before,
        "descriptors after the flood: {fds_after}, before: {fds_before}"
    );
    assert!(
        tasks_after <= tasks_before,
        "threads after the flood: {tasks_after}, before: {tasks_before}"
    );
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "exit {status}: {stderr}");
}

/// A datagram socket playing systemd's notify socket.
struct FakeSystemd {
    socket: UnixDatagram,
    path: std::path::PathBuf,
}

impl FakeSystemd {
    fn bind(dir: &Path) -> FakeSystemd {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(live_support::PATIENCE))
            .expect("read timeout");
        FakeSystemd { socket, path }
    }

    /// The next notification (fails the test after the patience).
    fn next(&self) -> String {
        let mut buf = [0u8; 4096];
        let n = self
            .socket
            .recv(&mut buf)
            .expect("a notification from secpipe");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Skip notifications (STATUS=, WATCHDOG=1) until one starting with `prefix`.
    fn wait_for(&self, prefix: &str) -> String {
        loop {
            let message = self.next();
            if message.starts_with(prefix) {
                return message;
            }
        }
    }
}

#[test]
fn ready_comes_after_the_listener_is_bound_then_reloading_and_stopping() {
    let dir = tempfile::tempdir().expect("temp dir");
    let systemd = FakeSystemd::bind(dir.path());
    let port = free_port();
    let url = format!("syslog+tcp://127.0.0.1:{port}");
    let env = [
        ("NOTIFY_SOCKET", systemd.path.display().to_string()),
        ("WATCHDOG_USEC", "400000".to_string()),
    ];
    let secpipe = Running::start_with_env(dir.path(), &["--listen", &url], &env);
    // READY=1 is the first thing said, and a client may connect as soon as it is.
    assert_eq!(systemd.next(), "READY=1");
    let mut client =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect right after READY=1");
    let line =
        "<38>Nov 28 08:00:00 gw sshd[7]: Failed password for root from 192.0.2.9 port 1 ssh2\n";
    client.write_all(line.as_bytes()).expect("send a line");
    drop(client);
    // While the pipeline moves (idle ticks count), the watchdog is pinged and a status given.
    systemd.wait_for("WATCHDOG=1");
    let status = systemd.wait_for("STATUS=");
    assert!(status.contains("lines read"), "{status}");
    signal(&secpipe.child, "HUP");
    let reloading = systemd.wait_for("RELOADING=1");
    assert!(reloading.contains("\nMONOTONIC_USEC="), "{reloading}");
    systemd.wait_for("READY=1");
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "{stderr}");
    systemd.wait_for("STOPPING=1");
}

#[test]
fn without_notify_socket_sighup_still_reloads() {
    let dir = setup("");
    let secpipe = start(dir.path(), &[]);
    signal(&secpipe.child, "HUP");
    secpipe.wait_metric(RELOADS_DONE, 1.0);
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("SIGHUP: reload applied"), "{stderr}");
}

/// The watchdog stops when the ordered stage is stuck. Staged honestly: alerts go to stdout,
/// a pipe nobody reads, and that output *waits* for its reader (README, "slow consumer slows
/// the pipeline"); once the pipe and the sink's queue are full, the ordered stage blocks
/// handing over alerts. Attacks are appended until the pings fall silent for three idle ticks
/// (a live stage pings at least once per one-second tick); then the pipe is read, and the
/// pings must come back. A watchdog pinged by a timer would never fall silent: the test would
/// give up waiting.
#[test]
fn the_watchdog_stops_while_the_ordered_stage_is_stuck_and_resumes_after() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let dir = setup("");
    let log = dir.path().join("auth.log");
    let systemd = FakeSystemd::bind(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .args(["--follow", "auth.log", "--lateness", "1s"])
        .env("NOTIFY_SOCKET", &systemd.path)
        .env("WATCHDOG_USEC", "400000")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start secpipe");
    let mut alerts_pipe = child.stdout.take().expect("stdout pipe");
    assert_eq!(systemd.next(), "READY=1");
    systemd.wait_for("WATCHDOG=1");
    let silence = Duration::from_secs(3);
    systemd
        .socket
        .set_read_timeout(Some(silence))
        .expect("read timeout");
    let mut round = 0u32;
    let stalled = loop {
        assert!(round < 200, "the pings never stopped");
        // 100 addresses × 5 attempts: 100 alerts a round, about 200 KB of JSON.
        let text: String = (0..100u32)
            .flat_map(|i| {
                let ip = format!("10.{}.{}.{}", round / 200, round % 200, i + 1);
                (0..5u32).map(move |n| attempt_line(&ip, 1000 + i * 5 + n))
            })
            .collect();
        append(&log, &text);
        round += 1;
        // Drain what was said; a silence of three ticks means the stage is stuck.
        let mut buf = [0u8; 512];
        let mut heard = 0;
        let silent = loop {
            match systemd.socket.recv(&mut buf) {
                // Still pinging: the next round adds more alerts.
                Ok(_) if heard >= 1 => break false,
                Ok(_) => heard += 1,
                Err(_) => break true,
            }
        };
        if silent {
            break true;
        }
    };
    assert!(stalled);
    // Unblock: read the alerts. The stage moves again and so do the pings.
    let reader = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = alerts_pipe.read_to_end(&mut sink);
        sink.len()
    });
    systemd
        .socket
        .set_read_timeout(Some(live_support::PATIENCE))
        .expect("read timeout");
    systemd.wait_for("WATCHDOG=1");
    signal(&child, "TERM");
    let status = wait_for("secpipe to exit", || child.try_wait().expect("wait"));
    assert!(status.success(), "{status}");
    let bytes = reader.join().expect("reader");
    assert!(bytes > 0);
}

/// A SIGHUP while secpipe is still starting (reading its config, compiling grammars, opening
/// the archive: before its reload handler exists) must not end it. SIGHUP's default action
/// kills the process, an end systemd counts as clean, so `Restart=on-failure` would leave the
/// service down (a logrotate `postrotate` that signals at the wrong moment is enough). Staged
/// with a config file that is a FIFO: opening it for writing waits until secpipe opens it to
/// read, so the signal is sent while secpipe is inside its startup, reading its config.
#[test]
fn a_sighup_while_starting_does_not_end_the_run() {
    use std::process::{Command, Stdio};
    let dir = setup("");
    let config = dir.path().join("secpipe.toml");
    std::fs::remove_file(&config).expect("remove the config file");
    let made = Command::new("mkfifo")
        .arg(&config)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    let systemd = FakeSystemd::bind(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .args([
            "--follow",
            "auth.log",
            "--lateness",
            "1s",
            "--config",
            "secpipe.toml",
        ])
        .env("NOTIFY_SOCKET", &systemd.path)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start secpipe");
    let first = std::fs::OpenOptions::new()
        .write(true)
        .open(&config)
        .expect("open the config FIFO once secpipe reads it");
    signal(&child, "HUP");
    // An empty config; the later reads of the file get the same from a thread.
    drop(first);
    std::thread::spawn(move || {
        while let Ok(writer) = std::fs::OpenOptions::new().write(true).open(&config) {
            drop(writer);
        }
    });
    let ready = wait_for("READY=1, or secpipe's end", || {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(Err(status));
        }
        let mut buf = [0u8; 512];
        let _ = systemd
            .socket
            .set_read_timeout(Some(Duration::from_millis(100)));
        match systemd.socket.recv(&mut buf) {
            Ok(n) if buf[..n].starts_with(b"READY=1") => Some(Ok(())),
            _ => None,
        }
    });
    assert!(ready.is_ok(), "the SIGHUP ended secpipe: {ready:?}");
    signal(&child, "TERM");
    let status = wait_for("secpipe to exit", || child.try_wait().expect("wait"));
    assert!(status.success(), "{status}");
}

/// A rule a reload removes (here: disables) drops its state, and its
/// `secpipe_state_keys{rule=…}` gauge goes with it. It stayed at its last value for ever: a
/// dashboard showed a rule that no longer runs still holding keys.
#[test]
fn a_removed_rule_leaves_no_state_keys_gauge_behind() {
    let dir = setup("");
    let log = dir.path().join("auth.log");
    let secpipe = start(dir.path(), &[]);
    append_attempts(&log, "203.0.113.77", 1..3);
    secpipe.wait_metric(BRUTEFORCE_KEYS, 1.0);
    reload_with(
        &secpipe,
        dir.path(),
        "[rules.\"auth.bruteforce\"]\nenabled = false\n",
        RELOADS_DONE,
        1.0,
    );
    let metrics = secpipe.metrics();
    assert!(
        metrics.contains("secpipe_state_keys{rule=\"auth.concurrent_ips\"}"),
        "the other rules' gauges stay: {metrics}"
    );
    assert!(
        !metrics.contains(BRUTEFORCE_KEYS),
        "the removed rule's gauge is still there: {metrics}"
    );
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "{stderr}");
}
