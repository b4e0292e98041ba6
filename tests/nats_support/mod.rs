//! Helpers for the NATS scale-out tests (issue 16): a real `nats-server` with JetStream on a
//! loopback port, edges (`secpipe run --emit nats://…`) and workers (`secpipe worker nats://…`)
//! of the built binary, and readers of what they leave behind: the alerts on the workers'
//! stdout, the messages of a JetStream stream and the entries of a key-value bucket.
//!
//! Every wait is bounded and fails naming what it waited for; no test asserts how fast anything
//! is. Every process started here is killed when its handle drops, so a failed assertion leaves
//! no server or worker running.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use futures_util::StreamExt;

use crate::common::json_lines;
use crate::live_support::{free_port, wait_for_within};

/// How long a wait on edges and workers may take before the test gives up: a debug build on a
/// busy 2-core machine, so generous. It bounds a hang; it is not a speed requirement.
pub const PEER_PATIENCE: Duration = Duration::from_secs(300);

/// The stream edges publish events to, and the one workers publish alerts to (the spec's names).
pub const EVENTS_STREAM: &str = "SECPIPE_EVENTS";
pub const ALERTS_STREAM: &str = "SECPIPE_ALERTS";
/// Key-value buckets: partition leases (`<family>.<p>` → worker id) and fleet facts
/// (`partitions`, `done.<family>.<p>`).
pub const LEASES_BUCKET: &str = "secpipe_leases";
pub const FLEET_BUCKET: &str = "secpipe_fleet";

/// Where Debian's `nats-server` is, if it is installed (`/usr/sbin` is not on every PATH).
pub fn nats_server_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
}

/// Run a future to completion on a small runtime of its own (the tests themselves are sync).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the test's NATS client")
        .block_on(future)
}

/// A `nats-server -js` on a loopback port with its store in a temporary directory; killed on drop.
pub struct NatsServer {
    child: Child,
    pub port: u16,
    log_path: PathBuf,
    _store: tempfile::TempDir,
}

impl NatsServer {
    /// Start a server and wait until it accepts clients and JetStream answers. `None` (after
    /// saying so on stderr) when `nats-server` is not installed; `tests/run-all.sh` installs it.
    pub fn start() -> Option<NatsServer> {
        let Some(binary) = nats_server_binary() else {
            eprintln!(
                "nats-server is not installed (apt-get install nats-server; tests/run-all.sh \
                 does): NATS scale-out test skipped"
            );
            return None;
        };
        // Another process can take the probed port before the server binds it: then the server
        // exits saying so, and we try another port.
        for _ in 0..10 {
            if let Some(server) = NatsServer::try_start(&binary) {
                return Some(server);
            }
        }
        panic!("nats-server found no free loopback port in 10 attempts");
    }

    fn try_start(binary: &Path) -> Option<NatsServer> {
        let store = tempfile::tempdir().expect("nats-server store directory");
        let port = free_port();
        let log_path = store.path().join("nats-server.log");
        let log = File::create(&log_path).expect("nats-server log file");
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path().join("store"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file handle"))
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        let mut server = NatsServer {
            child,
            port,
            log_path,
            _store: store,
        };
        let ready = wait_for_within(PEER_PATIENCE, "nats-server to be ready", || {
            let log = server.log();
            if log.contains("Server is ready") {
                return Some(true);
            }
            match server.child.try_wait() {
                Ok(Some(_)) if log.contains("address already in use") => Some(false),
                Ok(Some(status)) => panic!("nats-server exited ({status}):\n{log}"),
                _ => None,
            }
        });
        if !ready {
            return None;
        }
        let url = server.url();
        // The account-info request answers once JetStream is up. It is read as plain JSON: the
        // client's own `query_account` does not parse 2.9.10's answer.
        wait_for_within(PEER_PATIENCE, "JetStream to answer", || {
            block_on(async {
                let client = async_nats::connect(url.as_str()).await.ok()?;
                let answer = client.request("$JS.API.INFO", "".into()).await.ok()?;
                let info: serde_json::Value = serde_json::from_slice(&answer.payload).ok()?;
                (info.get("error").is_none() && info.get("limits").is_some()).then_some(())
            })
        });
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `secpipe` edge or worker, its stdout and stderr in files named after it.
pub struct Peer {
    pub name: String,
    child: Child,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    args: Vec<String>,
}

impl Peer {
    /// Start `secpipe ARGS…` in `dir` with stdin closed.
    pub fn start(dir: &Path, name: &str, args: &[String]) -> Peer {
        // A restarted peer keeps the same name: number the files so the first run's stay.
        let mut n = 0;
        let (stdout_path, stderr_path) = loop {
            let stem = if n == 0 {
                name.to_string()
            } else {
                format!("{name}.{n}")
            };
            let out = dir.join(format!("{stem}.stdout"));
            if !out.exists() {
                break (out, dir.join(format!("{stem}.stderr")));
            }
            n += 1;
        };
        let child = Command::new(env!("CARGO_BIN_EXE_secpipe"))
            .args(args)
            .env("TZ", "UTC")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path).expect("stdout file"))
            .stderr(File::create(&stderr_path).expect("stderr file"))
            .spawn()
            .expect("start secpipe");
        Peer {
            name: name.to_string(),
            child,
            stdout_path,
            stderr_path,
            args: args.to_vec(),
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait (bounded by [`PEER_PATIENCE`]) for the exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let what = format!("{} to exit (secpipe {})", self.name, self.args.join(" "));
        let child = &mut self.child;
        wait_for_within(PEER_PATIENCE, &what, || child.try_wait().expect("wait"))
    }

    /// Wait for the exit and assert it is 0.
    pub fn wait_success(&mut self) {
        let status = self.wait_exit();
        assert!(
            status.success(),
            "{} (secpipe {}) exited {status}; stderr:\n{}",
            self.name,
            self.args.join(" "),
            self.stderr()
        );
    }

    /// SIGKILL: no draining, no acknowledgement, no final checkpoint.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `secpipe run --emit URL --edge-id ID` with the fixtures' zone and year, then `extra`, then
/// the inputs.
pub fn edge_args(url: &str, id: &str, extra: &[&str], inputs: &[&Path]) -> Vec<String> {
    let mut args: Vec<String> = ["run", "--emit", url, "--edge-id", id]
        .into_iter()
        .chain(["--tz", "UTC", "--year", "2026"])
        .chain(extra.iter().copied())
        .map(String::from)
        .collect();
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    args
}

/// `secpipe worker URL --id ID --tz UTC` then `extra`.
pub fn worker_args(url: &str, id: &str, extra: &[&str]) -> Vec<String> {
    ["worker", url, "--id", id, "--tz", "UTC"]
        .into_iter()
        .chain(extra.iter().copied())
        .map(String::from)
        .collect()
}

/// What the equivalence compares of one alert (the spec: same id, rule, key, window, count).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AlertFacts {
    pub rule: String,
    pub key_field: String,
    pub key_value: String,
    pub window_start: String,
    pub count: u64,
}

/// Alerts by id.
pub type AlertSet = BTreeMap<String, AlertFacts>;

fn facts_of(alert: &serde_json::Value) -> (String, AlertFacts) {
    let text = |v: &serde_json::Value| {
        v.as_str()
            .unwrap_or_else(|| panic!("{v} in {alert}"))
            .to_string()
    };
    let id = text(&alert["id"]);
    let facts = AlertFacts {
        rule: text(&alert["rule"]),
        key_field: text(&alert["key"]["field"]),
        key_value: text(&alert["key"]["value"]),
        window_start: text(&alert["window_start"]),
        count: alert["count"]
            .as_u64()
            .unwrap_or_else(|| panic!("no count in {alert}")),
    };
    (id, facts)
}

/// The alerts printed on some stdouts (JSON lines), and how often each id was printed.
/// Panics when one id is printed with different facts: an id names one alert.
pub fn printed_alerts(stdouts: &[String]) -> (AlertSet, BTreeMap<String, usize>) {
    let mut set = AlertSet::new();
    let mut times = BTreeMap::<String, usize>::new();
    for stdout in stdouts {
        for alert in json_lines(stdout.as_bytes()) {
            let (id, facts) = facts_of(&alert);
            if let Some(before) = set.get(&id) {
                assert_eq!(before, &facts, "alert id {id} printed with different facts");
            }
            set.insert(id.clone(), facts);
            *times.entry(id).or_default() += 1;
        }
    }
    (set, times)
}

/// The alerts of `secpipe run --tz UTC --year 2026 EXTRA… FILES…`: what the fleet must match.
pub fn expected_alerts(extra: &[&str], files: &[&Path]) -> AlertSet {
    let alerts = crate::common::alerts_with(extra, files);
    let (set, times) =
        printed_alerts(&[alerts.iter().map(|a| format!("{a}\n")).collect::<String>()]);
    assert!(
        times.values().all(|&n| n == 1),
        "secpipe run printed an alert id twice"
    );
    set
}

/// The expected alerts must show what a split could break: several rules of several key
/// families (a test over one rule of one family would not prove the partitioning).
pub fn assert_nontrivial(expected: &AlertSet) {
    let rules: BTreeSet<&str> = expected.values().map(|f| f.rule.as_str()).collect();
    let families: BTreeSet<&str> = expected.values().map(|f| f.key_field.as_str()).collect();
    assert!(
        rules.len() >= 4 && families.len() >= 3,
        "the input makes too few rules ({rules:?}) of too few key families ({families:?}) fire"
    );
}

/// Assert two alert sets are equal, naming the alerts that differ rather than dumping both.
pub fn assert_same_alerts(expected: &AlertSet, got: &AlertSet, what: &str) {
    let missing: Vec<_> = expected
        .iter()
        .filter(|(id, _)| !got.contains_key(*id))
        .take(10)
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|(id, _)| !expected.contains_key(*id))
        .take(10)
        .collect();
    let differing: Vec<_> = expected
        .iter()
        .filter_map(|(id, f)| got.get(id).filter(|g| *g != f).map(|g| (id, f, g)))
        .take(10)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differing.is_empty(),
        "{what}: {} alerts expected (secpipe run), {} got; first missing: {missing:#?}\n\
         first extra: {extra:#?}\nfirst differing (expected, got): {differing:#?}",
        expected.len(),
        got.len()
    );
}

/// One message of a JetStream stream, read directly by sequence number.
pub struct StreamMessage {
    pub sequence: u64,
    pub subject: String,
    pub headers: async_nats::HeaderMap,
    pub payload: Vec<u8>,
}

impl StreamMessage {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.as_str())
    }
}

/// Every message now in `stream` (empty when the stream does not exist yet).
pub fn stream_messages(url: &str, stream: &str) -> Vec<StreamMessage> {
    block_on(async {
        let client = async_nats::connect(url)
            .await
            .expect("connect to nats-server");
        let js = async_nats::jetstream::new(client);
        let Ok(mut handle) = js.get_stream(stream).await else {
            return Vec::new();
        };
        let state = handle.info().await.expect("stream info").state.clone();
        let mut messages = Vec::new();
        if state.messages == 0 {
            return messages;
        }
        for seq in state.first_sequence..=state.last_sequence {
            match handle.get_raw_message(seq).await {
                Ok(m) => messages.push(StreamMessage {
                    sequence: m.sequence,
                    subject: m.subject.to_string(),
                    headers: m.headers,
                    payload: m.payload.to_vec(),
                }),
                // A sequence number can be a deleted message; the rest must be readable.
                Err(e)
                    if matches!(
                        e.kind(),
                        async_nats::jetstream::stream::RawMessageErrorKind::NoMessageFound
                    ) => {}
                Err(e) => panic!("read {stream} message {seq}: {e}"),
            }
        }
        messages
    })
}

/// How many messages `stream` holds now (0 when it does not exist yet).
pub fn stream_message_count(url: &str, stream: &str) -> u64 {
    block_on(async {
        let client = async_nats::connect(url)
            .await
            .expect("connect to nats-server");
        let js = async_nats::jetstream::new(client);
        match js.get_stream(stream).await {
            Ok(mut handle) => handle.info().await.expect("stream info").state.messages,
            Err(_) => 0,
        }
    })
}

/// Messages per subject now in `stream` (empty when the stream does not exist yet): cheap
/// evidence of progress without reading every message.
pub fn stream_subject_counts(url: &str, stream: &str) -> BTreeMap<String, usize> {
    block_on(async {
        let client = async_nats::connect(url)
            .await
            .expect("connect to nats-server");
        let js = async_nats::jetstream::new(client);
        let Ok(handle) = js.get_stream(stream).await else {
            return BTreeMap::new();
        };
        let mut subjects = handle.info_with_subjects(">").await.expect("stream info");
        let mut counts = BTreeMap::new();
        while let Some(entry) = subjects.next().await {
            let (subject, count) = entry.expect("a subject of the stream");
            counts.insert(subject, count);
        }
        counts
    })
}

/// Every live entry of a key-value bucket as text (empty when the bucket does not exist yet).
pub fn kv_entries(url: &str, bucket: &str) -> BTreeMap<String, String> {
    block_on(async {
        let client = async_nats::connect(url)
            .await
            .expect("connect to nats-server");
        let js = async_nats::jetstream::new(client);
        let Ok(store) = js.get_key_value(bucket).await else {
            return BTreeMap::new();
        };
        let mut entries = BTreeMap::new();
        let Ok(mut keys) = store.keys().await else {
            return entries;
        };
        while let Some(key) = keys.next().await {
            let key = key.expect("a key of the bucket");
            // A key can expire or be deleted between the listing and the read.
            if let Ok(Some(value)) = store.get(key.as_str()).await {
                entries.insert(key, String::from_utf8_lossy(&value).into_owned());
            }
        }
        entries
    })
}

/// The partition leases of a `secpipe_leases` listing (`<family>.<p>` → worker id), without
/// the workers' own entries the bucket also holds (`worker.<id>`).
pub fn partition_leases(entries: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    const FAMILIES: [&str; 4] = ["src_ip", "user", "actor", "host"];
    entries
        .iter()
        .filter(|(key, _)| {
            key.split_once('.')
                .is_some_and(|(family, p)| FAMILIES.contains(&family) && p.parse::<u32>().is_ok())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Assert that the alerts stream holds each expected alert exactly once (by `Nats-Msg-Id`), on
/// the subject of its key family (`sp.alerts.<family>.<p>`), and nothing else: a takeover or a
/// republish must not page twice.
pub fn assert_alerts_stream_holds_each_once(url: &str, expected: &AlertSet) {
    let messages = stream_messages(url, ALERTS_STREAM);
    let mut times = BTreeMap::<String, usize>::new();
    for m in &messages {
        let id = m
            .header("Nats-Msg-Id")
            .unwrap_or_else(|| {
                panic!(
                    "alert message {} on {} has no Nats-Msg-Id",
                    m.sequence, m.subject
                )
            })
            .to_string();
        if let Some(facts) = expected.get(&id) {
            let prefix = format!("sp.alerts.{}.", facts.key_field);
            assert!(
                m.subject.starts_with(&prefix),
                "alert {id} ({facts:?}) is on {}, not under {prefix}",
                m.subject
            );
        }
        *times.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(
        twice.is_empty(),
        "{ALERTS_STREAM} holds alerts more than once: {twice:?}"
    );
    let held: BTreeSet<&String> = times.keys().collect();
    let want: BTreeSet<&String> = expected.keys().collect();
    let missing: Vec<_> = want.difference(&held).take(10).collect();
    let extra: Vec<_> = held.difference(&want).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{ALERTS_STREAM} holds {} alerts, {} expected; first missing {missing:?}, first extra {extra:?}",
        held.len(),
        want.len()
    );
}

/// Split `text`'s lines into two time-ordered halves by alternating blocks of `block` lines:
/// each edge sees every part of the timeline, so the workers' merge of the two is exercised
/// everywhere, not only at one boundary.
pub fn split_alternating(text: &str, block: usize) -> (String, String) {
    let (mut a, mut b) = (String::new(), String::new());
    for (i, line) in text.lines().enumerate() {
        let half = if (i / block).is_multiple_of(2) {
            &mut a
        } else {
            &mut b
        };
        half.push_str(line);
        half.push('\n');
    }
    (a, b)
}

/// A deterministic, time-ordered log of `seconds` seconds from 2026-03-10 00:00:00 UTC (keep it
/// under 20 days), about 2.2 lines per second, that makes rules of every key family fire many
/// times: sshd failures (`auth.bruteforce`, by `src_ip`), nginx 403s and bursts
/// (`http.forbidden_rate`, `http.request_rate`, by `src_ip`), logins of one user from several
/// addresses, some at night (`auth.concurrent_ips`, `auth.night_login`, by `user`), bulk reads
/// (`data.bulk_read`, by `actor`), application errors (`log.error_surge`, by `host`) and one
/// host that goes quiet for 1000 s of every 20000 (`log.silence`, by `host`).
pub fn synthetic_log(seconds: u64) -> String {
    const MONTH_DAY: u64 = 10; // March 10
    let mut out = String::new();
    for s in 0..seconds {
        let (day, hms) = (MONTH_DAY + s / 86_400, s % 86_400);
        let (h, m, sec) = (hms / 3600, hms % 3600 / 60, hms % 60);
        let syslog = format!("Mar {day:2} {h:02}:{m:02}:{sec:02}");
        let iso = format!("2026-03-{day:02}T{h:02}:{m:02}:{sec:02}Z");
        let clf = format!("{day:02}/Mar/2026:{h:02}:{m:02}:{sec:02} +0000");
        let mut host = format!("h{}", s % 4);
        if host == "h3" && (5000..6000).contains(&(s % 20_000)) {
            host = "h0".into();
        }
        let pid = 1000 + s % 9000;
        out.push_str(&format!(
            "{syslog} {host} sshd[{pid}]: Failed password for root from 203.0.113.{} port {} ssh2\n",
            (s / 7) % 250,
            40_000 + s % 20_000
        ));
        out.push_str(&format!(
            "198.51.100.{} - - [{clf}] \"GET /admin/{s} HTTP/1.1\" 403 512 \"-\" \"Mozilla/5.0\"\n",
            (s / 15) % 200
        ));
        if s.is_multiple_of(60) {
            out.push_str(&format!(
                "{syslog} {host} sshd[{pid}]: Accepted password for user{} from 192.0.2.{} port 50000 ssh2\n",
                (s / 120) % 10,
                s % 7 + 1
            ));
        }
        if s.is_multiple_of(30) {
            let agent = (s / 60) % 5;
            out.push_str(&format!(
                "ts={iso} event=data_access operation=read agent_id=agent-{agent} namespace=team-a \
                 agent_namespace=team-a count=600 ip=10.0.0.{agent}\n"
            ));
        }
        if s.is_multiple_of(10) {
            out.push_str(&format!(
                "{{\"ts\": \"{iso}\", \"level\": \"ERROR\", \"host\": \"db{}\", \"message\": \"query failed {s}\"}}\n",
                (s / 10) % 3
            ));
        }
        if s % 3600 == 1800 {
            for i in 0..110 {
                out.push_str(&format!(
                    "192.0.2.{} - - [{clf}] \"GET /p/{i} HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\"\n",
                    100 + (s / 3600) % 50
                ));
            }
        }
    }
    out
}
