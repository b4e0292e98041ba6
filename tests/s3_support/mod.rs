//! A real S3-compatible server for the tests: `moto_server` (PyPI `moto[server]`), started on
//! a free loopback port, killed when the [`Moto`] is dropped; buckets are set up and tampered
//! with by `tests/peers/s3_bucket.py` (boto3), with the same environment secpipe reads.
//!
//! moto differs from S3 where it matters here (README, "Real S3 differs from moto"): it
//! demands `Content-MD5` or `x-amz-sdk-checksum-algorithm` on PUTs to a bucket with Object
//! Lock (the helper sends the latter), it accepts shortening COMPLIANCE retention, and it
//! ignores `encoding-type=url` in listings.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long to wait for moto to answer before the test fails: a bound on a hang, not a
/// measurement (a cold moto start takes a few seconds).
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `moto_server`.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    /// Start moto on a free port and wait until it answers HTTP.
    pub fn start() -> Moto {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("moto_server must be installed (pip install 'moto[server]'): {e}")
            });
        let mut moto = Moto { child, port };
        let start = Instant::now();
        while !moto.answers() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited before answering: {status}");
            }
            assert!(
                start.elapsed() < PATIENCE,
                "moto_server did not answer on port {port} within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        if stream
            .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut head = [0u8; 12];
        matches!(stream.read(&mut head), Ok(n) if n >= 5 && head.starts_with(b"HTTP/"))
    }

    /// The environment secpipe and boto3 read, the way AWS tools find it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// Run `tests/peers/s3_bucket.py ARGS` against this server.
    pub fn bucket_tool(&self, args: &[&str]) -> Output {
        Command::new("python3")
            .arg(peer_script())
            .args(args)
            .envs(self.env())
            .output()
            .expect("python3 runs tests/peers/s3_bucket.py")
    }

    /// [`Self::bucket_tool`], which must succeed.
    pub fn bucket_ok(&self, args: &[&str]) -> String {
        let out = self.bucket_tool(args);
        assert!(
            out.status.success(),
            "s3_bucket.py {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A bucket with versioning, Object Lock and COMPLIANCE default retention of `days`.
    pub fn locked_bucket(&self, name: &str, days: u32) {
        self.bucket_ok(&["create", name, "--lock", &days.to_string()]);
    }

    /// A bucket with versioning and no Object Lock.
    pub fn unlocked_bucket(&self, name: &str) {
        self.bucket_ok(&["create", name, "--no-lock"]);
    }

    /// Upload the local archive `dir` to `s3://bucket/prefix` in the bucket layout.
    pub fn upload(&self, bucket: &str, prefix: &str, dir: &Path) {
        let dir = dir.to_str().expect("a UTF-8 temporary path");
        self.bucket_ok(&["upload", bucket, prefix, dir]);
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/s3_bucket.py")
}

/// A port nothing listens on now (the OS picks it; moto binds it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
