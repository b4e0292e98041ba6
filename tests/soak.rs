//! Soak: syslog over UDP (many senders) and TCP (many connections) plus a followed file that is
//! rotated, together at about 20,000 lines/s, for `SECPIPE_SOAK_SECS` seconds (default 60, so CI
//! runs it; run it by hand for 600 with a release build, see the README).
//!
//! What it proves, without any wall-clock assertion:
//! - every line sent is read or counted as dropped (UDP: the kernel's receive-buffer drops,
//!   which secpipe reports; TCP and the file: nothing may be dropped), and every line read
//!   reaches the end of the pipeline;
//! - RSS, sampled every few seconds, stays within the 256 MiB budget and does not grow after
//!   warm-up;
//! - the alerts of the live run equal those of a batch run over the same lines: a replay of the
//!   run's own archive (the lines secpipe received), and, when nothing was dropped, a plain run
//!   over a file of every line sent.
//!
//! Sample RSS and counts are printed on stderr (`cargo test --test soak -- --nocapture`).

mod live_support;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use live_support::{Running, free_port, metric_value, summary_lines};

const UDP_SENDERS: usize = 100;
const TCP_CONNECTIONS: usize = 20;
/// Lines per second, per transport (20,000 in all).
const UDP_RATE: u64 = 8_000;
const TCP_RATE: u64 = 8_000;
const FILE_RATE: u64 = 4_000;
/// The followed file is rotated (renamed, then created afresh) this often.
const ROTATE_EVERY: Duration = Duration::from_secs(10);
/// Distinct attacking addresses: each crosses the brute-force threshold within a second, so
/// there are alerts to compare.
const ATTACKERS: u64 = 500;
/// RSS after warm-up may not grow by more than this (allocator noise, not a leak).
const RSS_SLACK_KIB: u64 = 48 * 1024;

fn soak_duration() -> Duration {
    let secs = std::env::var("SECPIPE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(60);
    Duration::from_secs(secs.max(5))
}

/// Every line sent, by every sender thread, for the batch run to compare with: written to a
/// file as it goes (ten minutes at 20,000 lines/s would be gigabytes in memory).
type Sent = Arc<Mutex<std::io::BufWriter<std::fs::File>>>;

/// Record `lines` as sent.
fn record(sent: &Sent, lines: Vec<String>) {
    let mut out = sent.lock().expect("sent");
    for l in lines {
        writeln!(out, "{l}").expect("write sent.log");
    }
}

/// One failed SSH login, stamped now (RFC 5424 with microseconds, so the live run and the
/// batch run read the same event time).
fn line(transport: &str, sender: usize, n: u64) -> String {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ");
    let ip = (n * 7 + sender as u64) % ATTACKERS;
    format!(
        "<38>1 {now} {transport}{sender} sshd {n} - - Failed password for root from 198.51.{}.{} port 22 ssh2",
        ip / 250,
        ip % 250
    )
}

/// Call `send(tick)` every 10 ms until `stop`, with `per_second / 100` lines per tick.
fn paced(stop: &AtomicBool, per_second: u64, mut send: impl FnMut(u64, u64)) {
    let start = Instant::now();
    let mut done = 0u64;
    let mut tick = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = (start.elapsed().as_secs_f64() * per_second as f64) as u64;
        if due > done {
            send(tick, due - done);
            done = due;
            tick += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The alerts on stdout, as (rule, key, window start): what makes an alert the same alert.
fn alert_keys(stdout: &str) -> BTreeSet<(String, String, String)> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|a| {
            (
                a["rule"].as_str().unwrap_or("").to_string(),
                a["key"]["value"].as_str().unwrap_or("").to_string(),
                a["window_start"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn run_batch(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("batch run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn soak_udp_tcp_and_a_rotated_file_at_20000_lines_per_second() {
    let duration = soak_duration();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let udp_url = format!("syslog+udp://127.0.0.1:{port}");
    let tcp_url = format!("syslog+tcp://127.0.0.1:{port}");
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "").expect("create the followed file");
    let secpipe = Running::start(
        dir.path(),
        &[
            "--listen",
            &udp_url,
            "--listen",
            &tcp_url,
            "--follow",
            "auth.log",
            "--archive",
            "archive",
            // Files roll (and their buffers are freed) every 10 s instead of every 60 s, so
            // that even the short CI run reaches the archive's steady state and RSS can be
            // judged flat. (The 10-minute hand run in the report used the default.)
            "--roll-secs",
            "10",
        ],
    );
    let sent_path = dir.path().join("sent.log");
    let sent: Sent = Arc::new(Mutex::new(std::io::BufWriter::new(
        std::fs::File::create(&sent_path).expect("sent.log"),
    )));
    let stop = Arc::new(AtomicBool::new(false));
    let target: SocketAddr = ([127, 0, 0, 1], port).into();

    let udp = {
        let (sent, stop) = (sent.clone(), stop.clone());
        std::thread::spawn(move || {
            let sockets: Vec<UdpSocket> = (0..UDP_SENDERS)
                .map(|_| UdpSocket::bind("127.0.0.1:0").expect("udp sender"))
                .collect();
            let mut n = 0u64;
            let mut count = 0u64;
            paced(&stop, UDP_RATE, |_, lines| {
                let mut batch = Vec::new();
                for _ in 0..lines {
                    let s = (n % UDP_SENDERS as u64) as usize;
                    let text = line("udp", s, n);
                    if sockets[s].send_to(text.as_bytes(), target).is_ok() {
                        count += 1;
                        batch.push(text);
                    }
                    n += 1;
                }
                record(&sent, batch);
            });
            count
        })
    };
    let tcp = {
        let (sent, stop) = (sent.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut streams: Vec<TcpStream> = (0..TCP_CONNECTIONS)
                .map(|i| {
                    // Each connection from its own loopback address, like separate hosts.
                    let socket =
                        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                            .expect("socket");
                    let from = SocketAddr::from(([127, 0, 2, 1 + i as u8], 0));
                    socket.bind(&from.into()).expect("bind");
                    socket.connect(&target.into()).expect("tcp connect");
                    socket.into()
                })
                .collect();
            let mut n = 0u64;
            paced(&stop, TCP_RATE, |_, lines| {
                let mut texts: Vec<String> = vec![String::new(); TCP_CONNECTIONS];
                let mut batch = Vec::new();
                for _ in 0..lines {
                    let c = (n % TCP_CONNECTIONS as u64) as usize;
                    let text = line("tcp", c, n);
                    texts[c].push_str(&text);
                    texts[c].push('\n');
                    batch.push(text);
                    n += 1;
                }
                for (stream, text) in streams.iter_mut().zip(&texts) {
                    stream.write_all(text.as_bytes()).expect("tcp send");
                }
                record(&sent, batch);
            });
            n
        })
    };
    let file = {
        let (sent, stop, log) = (sent.clone(), stop.clone(), log.clone());
        std::thread::spawn(move || {
            let open = |p: &std::path::Path| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .expect("open the followed file")
            };
            let mut writer = open(&log);
            let mut rotated_at = Instant::now();
            let mut rotations = 0u32;
            let mut n = 0u64;
            paced(&stop, FILE_RATE, |_, lines| {
                let mut text = String::new();
                let mut batch = Vec::new();
                for _ in 0..lines {
                    let l = line("file", 0, n);
                    text.push_str(&l);
                    text.push('\n');
                    batch.push(l);
                    n += 1;
                }
                writer.write_all(text.as_bytes()).expect("append");
                record(&sent, batch);
                if rotated_at.elapsed() >= ROTATE_EVERY {
                    // Like logrotate without copytruncate: rename, then a new file.
                    rotations += 1;
                    let old = log.with_extension(format!("log.{rotations}"));
                    std::fs::rename(&log, old).expect("rotate");
                    writer = open(&log);
                    rotated_at = Instant::now();
                }
            });
            (n, rotations)
        })
    };

    // Sample RSS while the senders run.
    let mut samples: Vec<(u64, u64)> = Vec::new();
    let start = Instant::now();
    while start.elapsed() < duration {
        std::thread::sleep(Duration::from_secs(5).min(duration));
        samples.push((start.elapsed().as_secs(), rss_kib(secpipe.child.id())));
    }
    stop.store(true, Ordering::Relaxed);
    let udp_sent = udp.join().expect("udp sender");
    let tcp_sent = tcp.join().expect("tcp sender");
    let (file_sent, rotations) = file.join().expect("file writer");

    let read_of = |m: &str| -> u64 {
        m.lines()
            .filter(|l| l.starts_with("secpipe_lines_read_total{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    let udp_series = format!("secpipe_lines_read_total{{input=\"{udp_url}\"}}");
    let tcp_series = format!("secpipe_lines_read_total{{input=\"{tcp_url}\"}}");
    let kernel_drops = r#"secpipe_dropped_total{reason="udp_receive_buffer"}"#;
    // Everything sent is read, or (UDP only) counted as dropped by the kernel. A slow (debug)
    // build may still be working through a backlog: the wait is bounded, generously, and says
    // where it stood if it gives up.
    let patience = Duration::from_secs(60).max(duration);
    let waited = Instant::now();
    let metrics = loop {
        let m = secpipe.metrics();
        let udp = metric_value(&m, &udp_series) as u64 + metric_value(&m, kernel_drops) as u64;
        let tcp = metric_value(&m, &tcp_series) as u64;
        let all = read_of(&m) + metric_value(&m, kernel_drops) as u64;
        if udp == udp_sent && tcp == tcp_sent && all == udp_sent + tcp_sent + file_sent {
            break m;
        }
        assert!(
            waited.elapsed() < patience,
            "gave up waiting for every line to be read or counted: sent udp {udp_sent} tcp \
             {tcp_sent} file {file_sent}; read or counted udp {udp} tcp {tcp}, all {all}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let dropped = metric_value(&metrics, kernel_drops) as u64;
    let read = read_of(&metrics);
    // After the senders stopped, once secpipe caught up: counted for the peak, not for
    // flatness (a slow debug build may still be working through a backlog).
    let drained = (start.elapsed().as_secs(), rss_kib(secpipe.child.id()));
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "exit {status}: {stderr}");
    assert_eq!(
        summary_lines(&stderr),
        read,
        "every line read was processed: {stderr}"
    );
    // Only the drop lines: other summary lines use some of the same words (the session table
    // says how many sessions it `evicted`).
    let drops: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("secpipe: dropped"))
        .collect();
    for reason in [
        "channel_full",
        "connection_limit",
        "address_limit",
        "evicted",
    ] {
        assert!(
            drops.iter().all(|l| !l.contains(reason)),
            "{reason}: {stderr}"
        );
    }

    eprintln!(
        "soak {}s: sent udp {udp_sent}, tcp {tcp_sent}, file {file_sent} ({rotations} rotations); \
         read {read}, udp dropped by the kernel (counted) {dropped}",
        duration.as_secs()
    );
    eprintln!("soak RSS samples (s, KiB): {samples:?}, drained {drained:?}");
    let peak = samples
        .iter()
        .map(|s| s.1)
        .max()
        .unwrap_or(0)
        .max(drained.1);
    // The budget (DESIGN section 8) is for the release build; a debug build's allocations are
    // not the product's, so there it is only reported.
    if cfg!(debug_assertions) {
        eprintln!("soak: peak RSS {peak} KiB (debug build: the 256 MiB budget is not checked)");
    } else {
        assert!(peak <= 256 * 1024, "peak RSS {peak} KiB over budget");
    }
    // Flat after warm-up: the first third is warm-up; later samples stay near its highest.
    let warm = samples.len().div_ceil(3);
    let warm_peak = samples[..warm].iter().map(|s| s.1).max().unwrap_or(0);
    let late_peak = samples[warm..].iter().map(|s| s.1).max().unwrap_or(0);
    assert!(
        late_peak <= warm_peak + RSS_SLACK_KIB,
        "RSS grew after warm-up: {samples:?}"
    );

    // Alerts: the live run against a batch run over the lines it received (its archive) ...
    let live = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("stdout-"))
        .map(|e| std::fs::read_to_string(e.path()).expect("stdout"))
        .expect("live stdout");
    let live_alerts = alert_keys(&live);
    assert!(!live_alerts.is_empty(), "the soak input makes alerts");
    let replayed = alert_keys(&run_batch(dir.path(), &["replay", "archive"]));
    assert_eq!(
        live_alerts, replayed,
        "live alerts against a replay of the archive"
    );
    // ... and, when nothing was dropped, over a file of every line sent.
    if dropped == 0 {
        sent.lock().expect("sent").flush().expect("flush sent.log");
        let batch = alert_keys(&run_batch(dir.path(), &["sent.log"]));
        assert_eq!(
            live_alerts, batch,
            "live alerts against a batch run of every line sent"
        );
    } else {
        eprintln!("soak: {dropped} datagrams dropped (counted): compared with the replay only");
    }
}
