//! Helpers for the live-source tests: run the real binary, wait (bounded) for what it reports
//! on its metrics endpoint, stop it with a signal and read its end-of-run summary.
//!
//! Counting: in these tests every line becomes one event, and the stderr summary
//! (`secpipe: N lines …`) counts the events the ordered stage finished with, while
//! `secpipe_lines_read_total` on `/metrics` counts what each input read. A test waits on the
//! metric while running and checks the summary after SIGTERM.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Every wait in these tests gives up after this long, with a message saying what it waited
/// for. It bounds a hang; no test asserts how fast anything is.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Poll `check` until it returns `Some`, or fail the test naming `what`.
pub fn wait_for<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    wait_for_within(PATIENCE, what, check)
}

/// [`wait_for`] with its own bound, for waits on work that takes long on a busy machine.
pub fn wait_for_within<T>(
    patience: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        if start.elapsed() > patience {
            panic!("gave up after {patience:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port that was free a moment ago on 127.0.0.1 (TCP, and UDP on the same number).
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
        let port = tcp.local_addr().expect("probe address").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running `secpipe` with its stdout (the alerts) and stderr going to files.
pub struct Running {
    pub child: Child,
    pub metrics_port: u16,
    stderr_path: PathBuf,
    stdout_path: PathBuf,
}

impl Running {
    /// Start `secpipe ARGS… --metrics 127.0.0.1:PORT` in `dir` and wait until `/healthz` answers.
    pub fn start(dir: &Path, args: &[&str]) -> Running {
        Running::start_with_env(dir, args, &[])
    }

    /// [`Running::start`] with these environment variables set for secpipe.
    pub fn start_with_env(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Running {
        let metrics_port = free_port();
        let stderr_path = dir.join(format!("stderr-{metrics_port}.txt"));
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let stdout_path = dir.join(format!("stdout-{metrics_port}.txt"));
        let stdout = std::fs::File::create(&stdout_path).expect("stdout file");
        let child = Command::new(env!("CARGO_BIN_EXE_secpipe"))
            .args(args)
            .arg("--metrics")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start secpipe");
        let mut running = Running {
            child,
            metrics_port,
            stderr_path,
            stdout_path,
        };
        wait_for("secpipe's /healthz", || {
            if let Ok(Some(status)) = running.child.try_wait() {
                panic!("secpipe exited early ({status}): {}", running.stderr());
            }
            http_get(metrics_port, "/healthz").filter(|body| body.contains("ok"))
        });
        running
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// What secpipe wrote to stdout so far: the alerts, one JSON object per line.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Wait until an alert of `rule` whose key is `key_value` is on stdout; returns its line.
    pub fn wait_alert(&self, rule: &str, key_value: &str) -> serde_json::Value {
        wait_for(&format!("a {rule} alert for {key_value} on stdout"), || {
            self.stdout()
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|a| a["rule"] == rule && a["key"]["value"] == key_value)
        })
    }

    /// The current `/metrics` text.
    pub fn metrics(&self) -> String {
        http_get(self.metrics_port, "/metrics").unwrap_or_default()
    }

    /// A metric's value (`name{labels}` exactly as exposed), 0 when not exposed yet.
    pub fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics(), series)
    }

    /// Wait until `series` equals `want`.
    pub fn wait_metric(&self, series: &str, want: f64) {
        let start = Instant::now();
        loop {
            let seen = self.metric(series);
            if seen == want {
                return;
            }
            if start.elapsed() > PATIENCE {
                // The last value says which way it went wrong: lines lost or read twice.
                panic!(
                    "gave up after {PATIENCE:?} waiting for {series} == {want}; last seen {seen}"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send SIGTERM and wait (bounded) for the exit; returns the status and the stderr.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        signal(&self.child, "TERM");
        let status = wait_for("secpipe to exit after SIGTERM", || {
            self.child.try_wait().expect("wait for secpipe")
        });
        let stderr = self.stderr();
        (status, stderr)
    }

    /// SIGKILL: no draining, no final checkpoint.
    /// SIGTERM, then assert a clean exit (0) whose stderr summary counts `lines` lines;
    /// returns the stderr.
    pub fn terminate_expecting_lines(self, lines: u64) -> String {
        let (status, stderr) = self.terminate();
        assert!(status.success(), "exit status {status}: {stderr}");
        assert_eq!(summary_lines(&stderr), lines, "{stderr}");
        stderr
    }

    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed assertion must not leave a listener running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `secpipe ARGS` on a pipe, as `journalctl -f | secpipe ARGS` runs: stdin is the pipe
/// (returned, held open by the test), stdout goes to `stdout_path`, stderr is piped.
pub fn start_on_a_pipe(args: &[&str], stdout_path: &Path) -> (Child, std::process::ChildStdin) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(stdout_path).expect("stdout file"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start secpipe");
    let stdin = child.stdin.take().expect("stdin");
    (child, stdin)
}

pub fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{name} failed");
}

/// GET `path` from 127.0.0.1:`port`; the body of a 200 response.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// The value of `series` in Prometheus text, 0 when absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse::<f64>().ok())?
        })
        .unwrap_or(0.0)
}

/// The line count from the summary on stderr (`secpipe: N lines (…`).
pub fn summary_lines(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("secpipe: ")?;
            let (n, rest) = rest.split_once(' ')?;
            rest.starts_with("lines (").then(|| n.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no summary line in stderr:\n{stderr}"))
}

/// `secpipe_lines_read_total{input="…"}`.
pub fn lines_read(input: &str) -> String {
    format!("secpipe_lines_read_total{{input=\"{input}\"}}")
}

/// Append numbered lines `first..first+count` to `path`.
pub fn append_lines(path: &Path, prefix: &str, first: u64, count: u64) {
    let mut text = String::new();
    for i in first..first + count {
        text.push_str(&format!(
            "{prefix} line {i} sshd[{i}]: Failed password for root from 203.0.113.7\n"
        ));
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
}

/// Rotate like logrotate's copytruncate: copy `path` to `rotated`, then cut `path` to zero.
pub fn copytruncate(path: &Path, rotated: &Path) {
    std::fs::copy(path, rotated).expect("copy");
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open")
        .set_len(0)
        .expect("truncate");
}
