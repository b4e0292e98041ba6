//! Attacks on the NATS scale-out (issue 16) against a real `nats-server` with JetStream on
//! loopback: what a second run on the same bus, or a publisher on it, can make workers do.
//! Skipped, saying so, when `nats-server` is not installed (tests/run-all.sh installs it).

mod common;

use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secpipe::bus::{Family, Route, route};
use secpipe::event::{Event, EventField};

/// Where Debian's `nats-server` is (`/usr/sbin` is not on every PATH).
fn nats_server_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
}

/// A `nats-server -js` on a free loopback port, its store in a temporary directory; killed on
/// drop.
struct Server {
    child: Child,
    port: u16,
    _store: tempfile::TempDir,
}

impl Server {
    fn start() -> Option<Server> {
        let Some(binary) = nats_server_binary() else {
            eprintln!(
                "SKIPPED: nats-server is not installed (apt-get install nats-server; \
                 tests/run-all.sh installs it)"
            );
            return None;
        };
        let store = tempfile::tempdir().expect("store directory");
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port");
            probe.local_addr().expect("probe address").port()
        };
        let log = File::create(store.path().join("server.log")).expect("server log");
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path().join("js"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        let server = Server {
            child,
            port,
            _store: store,
        };
        // Ready when it accepts connections; a server that never does fails the test here
        // rather than hanging it.
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "nats-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `count` failed sshd logins of `ip` a second apart from `start` (`HH:MM`), on host `host`.
fn failures(dir: &Path, name: &str, host: &str, ip: &str, start: &str, count: u32) -> PathBuf {
    let path = dir.join(name);
    let mut f = File::create(&path).expect("create log");
    for i in 0..count {
        writeln!(
            f,
            "Mar 10 {start}:{i:02} {host} sshd[{}]: Failed password for root from {ip} port 4000 ssh2",
            1000 + i
        )
        .expect("write log");
    }
    path
}

fn emit(url: &str, edge: &str, input: &Path) {
    let out = common::secpipe()
        .args([
            "--emit",
            url,
            "--edge-id",
            edge,
            "--tz",
            "UTC",
            "--year",
            "2026",
        ])
        .arg(input)
        .output()
        .expect("run the edge");
    assert!(
        out.status.success(),
        "edge {edge}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A worker with `--once`, its stdout and stderr in files under `dir`.
struct Worker {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Worker {
    fn start(dir: &Path, url: &str, id: &str, extra: &[&str]) -> Worker {
        let stdout = dir.join(format!("{id}.out"));
        let stderr = dir.join(format!("{id}.err"));
        let child = Command::new(assert_cmd::cargo::cargo_bin("secpipe"))
            .env("TZ", "UTC")
            .args(["worker", url, "--once", "--id", id, "--tz", "UTC"])
            .args(extra)
            .stdout(File::create(&stdout).expect("stdout file"))
            .stderr(File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start the worker");
        Worker {
            child,
            stdout,
            stderr,
        }
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for its exit (success expected); its alerts.
    fn finish(mut self) -> Vec<serde_json::Value> {
        let status = self.child.wait().expect("wait for the worker");
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        assert!(status.success(), "worker failed ({status}): {stderr}");
        common::json_lines(&std::fs::read(&self.stdout).expect("worker stdout"))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ip_partition(ip: &str, partitions: u32) -> u32 {
    let family = Family {
        field: EventField::SrcIp,
        ipv6_prefix: 64,
        counts_attempts: true,
    };
    let ev = Event {
        src_ip: ip.parse::<IpAddr>().ok(),
        ..Event::default()
    };
    match route(&family, &ev, partitions) {
        Route::One(p) => p,
        other => panic!("{ip} routes to {other:?}"),
    }
}

fn bruteforce_keys(alerts: &[serde_json::Value]) -> Vec<String> {
    alerts
        .iter()
        .filter(|a| a["rule"] == "auth.bruteforce")
        .map(|a| a["key"]["value"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A second run on the same bus: the `done` marks of the first are still in the fleet bucket.
/// A `--once` worker must not take them for the end of the new input, even for a partition
/// another worker owns and has not applied yet.
#[test]
fn a_once_worker_does_not_take_an_earlier_runs_end_for_this_one() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = server.url();
    let dir = tempfile::tempdir().expect("work directory");
    let first = failures(dir.path(), "a.log", "web1", "203.0.113.7", "12:00", 10);
    emit(&url, "a", &first);
    let alerts = Worker::start(dir.path(), &url, "w1", &[]).finish();
    assert_eq!(bruteforce_keys(&alerts), ["203.0.113.7"]);

    // The second run: another host's brute force.
    let ip = "198.51.100.9";
    let second = failures(dir.path(), "b.log", "web2", ip, "13:00", 10);
    emit(&url, "b", &second);
    // w2 owns every partition but the one of that address; nobody has applied that one.
    let p = ip_partition(ip, secpipe::bus::DEFAULT_PARTITIONS);
    let mut others: Vec<String> = (0..secpipe::bus::DEFAULT_PARTITIONS)
        .filter(|q| *q != p)
        .map(|q| format!("src_ip:{q}"))
        .collect();
    others.extend(["user:0-1023", "host:0-1023", "actor:0-1023"].map(String::from));
    let mut w2 = Worker::start(dir.path(), &url, "w2", &["--partitions", &others.join(",")]);
    // However long it waits, it cannot be finished: partition src_ip.{p} has new messages.
    // (Before the fix it exited at once, on the first run's marks.)
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        w2.running(),
        "w2 exited while src_ip.{p} was not applied: {}",
        std::fs::read_to_string(&w2.stderr).unwrap_or_default()
    );
    let w3 = Worker::start(
        dir.path(),
        &url,
        "w3",
        &["--partitions", &format!("src_ip:{p}")],
    );
    let mut printed = w3.finish();
    printed.extend(w2.finish());
    assert_eq!(bruteforce_keys(&printed), [ip]);
}

/// Publish `payload` with `headers` to `subject` through JetStream, waiting for it to be stored.
fn publish(url: &str, subject: &str, headers: &[(&str, &str)], payload: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = async_nats::connect(url).await.expect("connect");
        let js = async_nats::jetstream::new(client);
        let mut map = async_nats::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, *value);
        }
        js.publish_with_headers(subject.to_string(), map, payload.to_vec().into())
            .await
            .expect("publish")
            .await
            .expect("stored");
    });
}

/// Someone who can publish to `sp.alerts.*` writes one message per partition saying every
/// alert up to the end of time is published already. The partitions' owners must still
/// publish the alerts of the stream (the mark points past anything the stream holds).
#[test]
fn a_forged_through_mark_past_the_stream_does_not_silence_a_partition() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = server.url();
    let dir = tempfile::tempdir().expect("work directory");
    let ip = "203.0.113.7";
    let input = failures(dir.path(), "a.log", "web1", ip, "12:00", 10);
    emit(&url, "a", &input);
    for p in 0..secpipe::bus::DEFAULT_PARTITIONS {
        publish(
            &url,
            &format!("sp.alerts.src_ip.{p}"),
            &[(secpipe::bus::THROUGH_HEADER, "18446744073709551615.0")],
            b"{}",
        );
    }
    let alerts = Worker::start(dir.path(), &url, "w1", &[]).finish();
    assert_eq!(bruteforce_keys(&alerts), [ip]);
}
