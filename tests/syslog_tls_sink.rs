//! `--alerts syslog+tls://…` (RFC 5425) against `openssl s_server` on loopback, with a test CA
//! and server certificates made here by `openssl` (issue 13, the syslog sink over TLS): the
//! alerts arrive octet-counted over TLS; a server whose certificate is for another name, or
//! from a CA that is not trusted, gets nothing, and the refusal is reported and counted.

mod common;
mod live_support;
mod test_certs;

use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use common::*;
use live_support::{free_port, wait_for};
use test_certs::{make_ca, make_server_cert};

/// `openssl s_server` on a loopback port, writing what it receives to `received.bin`.
struct SServer {
    child: Child,
    /// Held open: s_server reads its stdin to send to the client; EOF there would end it.
    _stdin: ChildStdin,
    port: u16,
    received: std::path::PathBuf,
}

impl SServer {
    fn start(dir: &Path, cert: &str) -> SServer {
        let port = free_port();
        let received = dir.join(format!("received-{port}.bin"));
        let mut child = Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-cert",
                &format!("{cert}.pem"),
                "-key",
                &format!("{cert}.key"),
                "-quiet",
            ])
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&received).expect("output file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let stdin = child.stdin.take().expect("s_server stdin");
        wait_for("s_server to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        SServer {
            child,
            _stdin: stdin,
            port,
            received,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.received).unwrap_or_default()
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Split octet-counted frames (`LEN SP MSG`, RFC 5425 §4.3); `None` if the bytes are not
/// exactly a sequence of whole frames.
fn frames(mut bytes: &[u8]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let space = bytes.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(bytes.get(..space)?)
            .ok()?
            .parse()
            .ok()?;
        let message = bytes.get(space + 1..space + 1 + len)?;
        out.push(String::from_utf8(message.to_vec()).ok()?);
        bytes = bytes.get(space + 1 + len..)?;
    }
    Some(out)
}

#[test]
fn alerts_arrive_octet_counted_over_tls_at_a_server_with_a_trusted_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_ca(dir.path());
    make_server_cert(dir.path(), "good", "DNS:localhost,IP:127.0.0.1");
    let server = SServer::start(dir.path(), "good");
    let ca = dir.path().join("ca.pem");
    // The certificate is checked against the IP address of the URL (its IP SAN).
    let url = format!(
        "syslog+tls://127.0.0.1:{}?ca_file={}",
        server.port,
        ca.display()
    );
    {
        let out = run_ok(&[
            "--tz",
            "UTC",
            "--alerts",
            "-",
            "--alerts",
            &url,
            fixture("sample/attacks.log").to_str().expect("UTF-8 path"),
        ]);
        let alerts = json_lines(&out.stdout);
        assert!(!alerts.is_empty(), "the sample has attacks");
        let received = wait_for(&format!("{} frames at s_server", alerts.len()), || {
            let got = frames(&server.bytes())?;
            (got.len() >= alerts.len()).then_some(got)
        });
        assert_eq!(received.len(), alerts.len(), "each alert once");
        for (message, alert) in received.iter().zip(&alerts) {
            assert!(message.starts_with('<'), "RFC 5424: {message}");
            let id = alert["id"].as_str().expect("id");
            let rule = alert["rule"].as_str().expect("rule");
            assert!(
                message.contains(rule) && message.contains(id),
                "{message} for {alert}"
            );
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("not delivered"), "{stderr}");
    }
}

/// The attack: someone answers on the SIEM's address with a certificate for another name
/// (issued by the same, trusted CA), or with one no trusted CA issued. Nothing is sent to it;
/// the refusal is on stderr, and the alerts are counted as not delivered.
#[test]
fn a_server_with_a_certificate_for_another_name_or_an_untrusted_ca_gets_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_ca(dir.path());
    make_server_cert(dir.path(), "other", "DNS:other.example");
    let server = SServer::start(dir.path(), "other");
    let ca = dir.path().join("ca.pem");
    let cases = [
        (
            format!(
                "syslog+tls://127.0.0.1:{}?ca_file={}",
                server.port,
                ca.display()
            ),
            "not valid for name",
        ),
        // The system's CAs (Debian's bundle) did not issue it.
        (
            format!("syslog+tls://127.0.0.1:{}", server.port),
            "UnknownIssuer",
        ),
    ];
    for (url, why) in cases {
        let out = run_ok(&[
            "--tz",
            "UTC",
            "--drain-timeout",
            "1s",
            "--alerts",
            "-",
            "--alerts",
            &url,
            fixture("sample/attacks.log").to_str().expect("UTF-8 path"),
        ]);
        let alerts = json_lines(&out.stdout);
        assert!(!alerts.is_empty(), "the sample has attacks");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let name = url.split('?').next().expect("name");
        assert!(
            stderr.contains(&format!("alerts: {name}: ")) && stderr.contains(why),
            "the refusal is reported: {stderr}"
        );
        assert_eq!(
            stderr.matches(why).count(),
            1,
            "reported once, not at every attempt: {stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "{n} of {n} alerts not delivered to {name}",
                n = alerts.len()
            )),
            "{stderr}"
        );
    }
    assert!(server.bytes().is_empty(), "s_server received nothing");
}

#[test]
fn a_bad_tls_setting_is_refused_at_the_start() {
    for (spec, expected) in [
        (
            "syslog+tls://127.0.0.1:6514?ca_file=/nonexistent/ca.pem",
            "/nonexistent/ca.pem",
        ),
        ("syslog+tls://127.0.0.1:6514?cafile=/x.pem", "`cafile`"),
        (
            "syslog+tcp://127.0.0.1:6514?server_name=siem",
            "syslog+tls only",
        ),
    ] {
        let out = run_stdin(&["--alerts", spec], Vec::new());
        assert!(!out.status.success(), "{spec}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{spec}: {stderr}");
    }
}
