//! A real S3-compatible server for the bucket-archive tests: PyPI `moto[server]` on a
//! loopback port, buckets made with boto3, the environment secpipe reads (as the AWS tools
//! do), and a TCP proxy in front of the server that a test can make refuse or hang, to play a
//! network outage during uploads.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// A moto server on 127.0.0.1, killed when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        // Another moto may already listen on any fixed port (other tests, other users): ask
        // the kernel for a free one, and believe only our own child's "Running on" line.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("moto_server must be installed (pip install 'moto[server]')");
            let stderr = child.stderr.take().expect("stderr");
            let mut lines = BufReader::new(stderr).lines();
            let mut said = String::new();
            let running = loop {
                match lines.next() {
                    Some(Ok(line)) => {
                        said.push_str(&line);
                        said.push('\n');
                        if line.contains(&format!("Running on http://127.0.0.1:{port}")) {
                            break true;
                        }
                    }
                    // It exited (the port was taken after all): try another.
                    _ => break false,
                }
            };
            if running {
                // Keep draining its log so it never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines {});
                return Moto { child, port };
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("moto_server on {port} did not start:\n{said}");
        }
        panic!("moto_server did not start on any of 5 free ports");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment secpipe reads to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        env(&self.endpoint())
    }

    /// Run `tests/peers/s3_bucket.py ARGS` against this server (create, overwrite, restore,
    /// delete, drop, put).
    pub fn bucket_tool(&self, args: &[&str]) -> std::process::Output {
        Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/s3_bucket.py"))
            .args(args)
            .envs(self.env())
            .output()
            .expect("python3 tests/peers/s3_bucket.py")
    }

    /// [`Moto::bucket_tool`], which must succeed; its stdout.
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

    /// A bucket with versioning; `locked`: with Object Lock and a COMPLIANCE default
    /// retention of one day, as the README's recipe sets it up.
    pub fn bucket(&self, name: &str, locked: bool) {
        boto(
            &self.endpoint(),
            r#"
import sys
name, locked = sys.argv[2], sys.argv[3] == "1"
if locked:
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})
else:
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
"#,
            &[name, if locked { "1" } else { "0" }],
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment secpipe needs to reach `endpoint`.
pub fn env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ALLOW_HTTP", "true".into()),
    ]
}

/// Run `secpipe ARGS` against `endpoint`; (exit code, stdout, stderr).
pub fn secpipe(endpoint: &str, dir: &Path, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .args(args)
        .envs(env(endpoint))
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start secpipe");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    let out = child.wait_with_output().expect("wait for secpipe");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run a boto3 script with `s3` (a client of `endpoint`) defined; argv[1] is the endpoint.
pub fn boto(endpoint: &str, script: &str, args: &[&str]) -> String {
    let prelude = "import sys, boto3\ns3 = boto3.client('s3', endpoint_url=sys.argv[1], \
                   aws_access_key_id='test', aws_secret_access_key='test', \
                   region_name='us-east-1')\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .arg(endpoint)
        .args(args)
        .output()
        .expect("python3 with boto3 (installed with moto)");
    assert!(
        out.status.success(),
        "boto3 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every key under `bucket/prefix/` with its version count, one `key versions` per line.
pub fn keys(endpoint: &str, bucket: &str, prefix: &str) -> Vec<(String, usize)> {
    let text = boto(
        endpoint,
        r#"
import collections
bucket, prefix = sys.argv[2], sys.argv[3] + "/"
counts = collections.Counter()
for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
    for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
        counts[v["Key"][len(prefix):]] += 1
for key, n in sorted(counts.items()):
    print(key, n)
"#,
        &[bucket, prefix],
    );
    text.lines()
        .filter_map(|l| {
            let (key, n) = l.rsplit_once(' ')?;
            Some((key.to_owned(), n.parse().ok()?))
        })
        .collect()
}

/// Copy the archive at `bucket/prefix` into the directory `into` in the local layout: the
/// manifest objects, in number order, become `audit/manifests.jsonl`, the highest checkpoint
/// `audit/checkpoint`.
pub fn download(endpoint: &str, bucket: &str, prefix: &str, into: &Path) {
    boto(
        endpoint,
        r#"
import os
bucket, prefix, into = sys.argv[2], sys.argv[3] + "/", sys.argv[4]
keys = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    keys += [o["Key"] for o in page.get("Contents", [])]
body = lambda k: s3.get_object(Bucket=bucket, Key=k)["Body"].read()
num = lambda k: int(k.rsplit("/", 1)[1].split(".")[0])
manifests = sorted((k for k in keys if k.startswith(prefix + "audit/manifests/")), key=num)
checkpoints = sorted((k for k in keys if k.startswith(prefix + "audit/checkpoints/")), key=num)
os.makedirs(os.path.join(into, "audit"), exist_ok=True)
with open(os.path.join(into, "audit", "manifests.jsonl"), "wb") as f:
    for k in manifests:
        f.write(body(k) + b"\n")
if checkpoints:
    open(os.path.join(into, "audit", "checkpoint"), "wb").write(body(checkpoints[-1]))
for k in keys:
    rel = k[len(prefix):]
    if rel.startswith("events/") or rel.startswith("alerts/"):
        path = os.path.join(into, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").write(body(k))
"#,
        &[bucket, prefix, &into.display().to_string()],
    );
}

/// What the proxy does with connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Pass bytes both ways.
    Forward = 0,
    /// Close each new connection at once (a refused or reset connection).
    Refuse = 1,
    /// Accept and never answer (a PUT that hangs).
    Hang = 2,
}

/// A TCP proxy on a loopback port in front of `127.0.0.1:upstream`.
pub struct Proxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
}

impl Proxy {
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let mode = Arc::new(AtomicU8::new(Mode::Forward as u8));
        let shared = Arc::clone(&mode);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                match shared.load(Ordering::SeqCst) {
                    0 => {
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                            continue;
                        };
                        pipe(client, server, Arc::clone(&shared));
                    }
                    1 => drop(client),
                    // Hold the connection open, read and drop what comes, answer nothing.
                    _ => {
                        std::thread::spawn(move || {
                            let mut client = client;
                            let mut sink = [0u8; 8192];
                            while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
                        });
                    }
                }
            }
        });
        Proxy { port, mode }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Copy both ways until either side closes; a connection forwarded before the mode changed
/// is cut when it next carries bytes, as a network outage would.
fn pipe(client: TcpStream, server: TcpStream, mode: Arc<AtomicU8>) {
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let copy = move |mut from: TcpStream, mut to: TcpStream, mode: Arc<AtomicU8>| {
        let mut buf = [0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(n) if n > 0 && mode.load(Ordering::SeqCst) == 0 => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                _ => break,
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
        let _ = from.shutdown(std::net::Shutdown::Both);
    };
    let up = Arc::clone(&mode);
    std::thread::spawn(move || copy(client, server, up));
    std::thread::spawn(move || copy(server2, client2, mode));
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    listener.local_addr().expect("probe address").port()
}
