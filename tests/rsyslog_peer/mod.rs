//! A real rsyslog (Debian's `rsyslog`, installed by tests/run-all.sh), started on loopback
//! ports with `mmpstrucdata`, which parses each message's RFC 5424 structured data the way a
//! SIEM would: the syslog peer of the alert-output tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::live_support::{free_port, wait_for};

/// A running rsyslogd that writes every message it receives, as
/// `APP-NAME MSGID SEVERITY {structured data as JSON}`, one per line.
pub struct Rsyslog {
    child: Child,
    pub out: PathBuf,
    pub tcp: u16,
    pub udp: u16,
}

impl Rsyslog {
    pub fn start(dir: &Path) -> Rsyslog {
        Rsyslog::start_on(dir, free_port(), free_port())
    }

    /// Listening on these ports (chosen before, for a server that comes up late).
    pub fn start_on(dir: &Path, tcp: u16, udp: u16) -> Rsyslog {
        std::fs::create_dir_all(dir).expect("rsyslog's directory");
        let out = dir.join("received.log");
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{dir}")
module(load="imtcp")
module(load="imudp")
module(load="mmpstrucdata")
template(name="sd" type="string" string="%app-name% %msgid% %syslogseverity% %$!rfc5424-sd%\n")
ruleset(name="received") {{
  action(type="mmpstrucdata")
  action(type="omfile" file="{out}" template="sd")
}}
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="received")
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="received")
"#,
                dir = dir.display(),
                out = out.display()
            ),
        )
        .expect("write rsyslog.conf");
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd (Debian package rsyslog; tests/run-all.sh installs it)");
        let rsyslog = Rsyslog {
            child,
            out,
            tcp,
            udp,
        };
        // Ready when a probe sent over each transport has been written out.
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("probe socket");
        wait_for("rsyslogd to receive a UDP probe", || {
            let _ = probe.send_to(b"<13>1 - - probe - UDP - ready", ("127.0.0.1", udp));
            std::thread::sleep(std::time::Duration::from_millis(100));
            rsyslog
                .received("probe")
                .iter()
                .any(|l| l.starts_with("probe UDP"))
                .then_some(())
        });
        wait_for("rsyslogd to receive a TCP probe", || {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", tcp)).ok()?;
            let message = "<13>1 - - probe - TCP - ready";
            let frame = format!("{} {message}", message.len());
            std::io::Write::write_all(&mut stream, frame.as_bytes()).ok()?;
            drop(stream);
            std::thread::sleep(std::time::Duration::from_millis(100));
            rsyslog
                .received("probe")
                .iter()
                .any(|l| l.starts_with("probe TCP"))
                .then_some(())
        });
        rsyslog
    }

    /// The lines written so far for messages of `app`.
    pub fn received(&self, app: &str) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(&format!("{app} ")))
            .map(str::to_string)
            .collect()
    }

    /// Wait for `count` secpipe messages; their structured data, parsed by rsyslog.
    pub fn alerts(&self, count: usize) -> Vec<serde_json::Value> {
        let lines = wait_for(&format!("{count} alerts at rsyslog"), || {
            let lines = self.received("secpipe");
            (lines.len() >= count).then_some(lines)
        });
        lines
            .iter()
            .map(|l| {
                let json = l.splitn(4, ' ').nth(3).expect("structured data");
                let sd: serde_json::Value = serde_json::from_str(json).expect("rsyslog's JSON");
                sd["secpipe@32473"].clone()
            })
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
