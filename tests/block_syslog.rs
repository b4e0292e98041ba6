//! Issue 13 §2: the sender address of a UDP syslog datagram is forgeable, so an attacker could
//! write "Failed password … from <victim>" lines and have the victim banned. Alerts resting on
//! UDP evidence therefore ban nothing (unless `[block] trust_udp`); the same lines over TCP do.
//! Both runs are `--block simulate`: the decision is what is tested, no firewall is touched.

mod live_support;
use live_support::{Running, free_port};

use std::io::Write;

/// Six sshd failures from 203.0.113.7, RFC 5424, stamped now.
fn failures() -> Vec<String> {
    let now = jiff::Timestamp::now();
    (1..=6)
        .map(|i| {
            format!(
                "<38>1 {now} gw sshd {} - - Failed password for invalid user u{i} from \
                 203.0.113.7 port 4242 ssh2",
                100 + i
            )
        })
        .collect()
}

fn start(dir: &std::path::Path, listen: &str) -> Running {
    Running::start(
        dir,
        &[
            "--listen",
            listen,
            "--block",
            "simulate",
            "--lateness",
            "1s",
            "--tz",
            "UTC",
        ],
    )
}

#[test]
fn forged_udp_lines_alert_but_ban_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let secpipe = start(dir.path(), &format!("syslog+udp://127.0.0.1:{port}"));
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("sender");
    for line in failures() {
        socket
            .send_to(line.as_bytes(), ("127.0.0.1", port))
            .expect("send");
    }
    secpipe.wait_alert("auth.bruteforce", "203.0.113.7");
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "{stderr}");
    let stdout = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("stdout-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(!stdout.contains("secpipe.ban"), "{stdout}");
    assert!(stderr.contains("block (simulate): 0 bans"), "{stderr}");
    assert!(stderr.contains("spoofable_source 1"), "{stderr}");
}

#[test]
fn the_same_lines_over_tcp_ban_the_attacker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let secpipe = start(dir.path(), &format!("syslog+tcp://127.0.0.1:{port}"));
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    for line in failures() {
        stream
            .write_all(format!("{line}\n").as_bytes())
            .expect("send");
    }
    stream.flush().expect("flush");
    let ban = secpipe.wait_alert("secpipe.ban", "203.0.113.7");
    assert_eq!(ban["action"]["mode"], "simulate");
    let alert = secpipe.wait_alert("auth.bruteforce", "203.0.113.7");
    assert_eq!(ban["action"]["cause"], alert["id"]);
    drop(stream);
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("block (simulate): 1 bans"), "{stderr}");
}
