//! Signatures through the binary: `keygen`, `--key`, and `verify --pubkey/--expect-head/--json`
//! with every exit code, and the attacks on the unsigned tail of a signed archive (issue 11):
//! rows that no valid signature covers are never `INTACT` and never exit 0.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{json_lines, secpipe};

/// `n` sshd lines of one minute of failed logins from 50 addresses (some reach the
/// bruteforce threshold, so the archive has an alerts file too).
fn sshd_lines(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "Nov 23 10:{:02}:{:02} gate sshd[{}]: Failed password for invalid user u{} from \
                 198.51.100.{} port {} ssh2\n",
                (i / 60) % 60,
                i % 60,
                4000 + i,
                i % 7,
                i % 50,
                40000 + i
            )
        })
        .collect()
}

/// The line of the issue: a login that never happened.
const FORGED: &str =
    "Nov 23 12:00:00 gate sshd[999]: Accepted password for admin from 10.9.9.9 port 4242 ssh2\n";

struct Setup {
    root: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            root: tempfile::tempdir().expect("tempdir"),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
    fn archive(&self) -> PathBuf {
        self.path("archive")
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write input");
        path
    }
    fn keygen(&self, name: &str) -> PathBuf {
        let key = self.path(name);
        let out = run(&["keygen", "--out", s(&key)]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        key
    }
    /// `secpipe --archive ARCHIVE [--key KEY] INPUT`.
    fn archive_run(&self, key: Option<&Path>, input: &Path) -> Output {
        let archive = self.archive();
        let mut args = vec!["--tz", "UTC", "--year", "2026", "--archive", s(&archive)];
        if let Some(key) = key {
            args.extend(["--key", s(key)]);
        }
        args.push(s(input));
        run(&args)
    }
    fn verify(&self, extra: &[&str]) -> Output {
        let archive = self.archive();
        let mut args = vec!["verify", s(&archive)];
        args.extend(extra);
        run(&args)
    }
    fn verify_json(&self, extra: &[&str]) -> (i32, serde_json::Value) {
        let mut args = vec!["--json"];
        args.extend(extra);
        let out = self.verify(&args);
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("verify --json prints one JSON object");
        (out.status.code().unwrap_or(-1), json)
    }
    fn read(&self, relative: &str) -> Vec<u8> {
        std::fs::read(self.archive().join(relative)).expect("read archive file")
    }
    fn put(&self, relative: &str, bytes: &[u8]) {
        std::fs::write(self.archive().join(relative), bytes).expect("write archive file");
    }
    /// A signed archive of 1,000 sshd lines; returns the key.
    fn signed_archive(&self) -> PathBuf {
        let key = self.keygen("archive.key");
        let input = self.write("auth.log", &sshd_lines(1000));
        let out = self.archive_run(Some(&key), &input);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        key
    }
    fn manifests(&self) -> Vec<serde_json::Value> {
        json_lines(&self.read("audit/manifests.jsonl"))
    }
}

fn run(args: &[&str]) -> Output {
    secpipe().args(args).output().expect("run secpipe")
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The checkpoint text without its signature: what anyone can write.
fn strip_signature(checkpoint: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(checkpoint.to_vec()).expect("checkpoint is text");
    let body: Vec<&str> = text.split('\n').take(3).collect();
    format!("{}\n", body.join("\n")).into_bytes()
}

/// The attack: archive 1,000 sshd lines with `--key`; run secpipe again on the same
/// archive without `--key` over one forged line; put the old signed checkpoint back. Before the
/// fix the second run extended the archive and verify said `signature good`, `INTACT`, exit 0.
#[test]
fn forged_line_appended_without_the_key_is_never_intact() {
    let t = Setup::new();
    let key = t.signed_archive();
    let pubkey = format!("{}.pub", s(&key));
    let out = t.verify(&["--pubkey", &pubkey]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).ends_with("INTACT\n"), "{}", stdout(&out));
    let signed_checkpoint = t.read("audit/checkpoint");
    let signed_manifests = t.read("audit/manifests.jsonl");
    let forged = t.write("forged.log", FORGED);

    // 1. A run without the key refuses to extend a signed archive, and changes nothing.
    let out = t.archive_run(None, &forged);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refusing to extend"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("no --key was given"),
        "{}",
        stderr(&out)
    );
    assert_eq!(t.read("audit/manifests.jsonl"), signed_manifests);
    assert_eq!(t.read("audit/checkpoint"), signed_checkpoint);

    // 2. The attacker strips the signature so that the run goes through, then puts the old
    //    signed checkpoint back.
    t.put("audit/checkpoint", &strip_signature(&signed_checkpoint));
    let out = t.archive_run(None, &forged);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    t.put("audit/checkpoint", &signed_checkpoint);
    let manifests = t.manifests();
    let forged_file = manifests
        .iter()
        .rev()
        .find(|m| m["kind"] == "data")
        .expect("the forged run sealed a file");
    assert_eq!(forged_file["rows"]["first_seq"], 1000, "{forged_file}");

    let out = t.verify(&["--pubkey", &pubkey]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(!text.contains("INTACT"), "{text}");
    assert!(text.contains("signature good"), "{text}");
    assert!(text.contains("UNSIGNED"), "{text}");
    let path = forged_file["path"].as_str().expect("path");
    assert!(
        text.contains(&format!("{path}: events seqs 1000..=1000 (1 rows)")),
        "{text}"
    );

    let (code, json) = t.verify_json(&["--pubkey", &pubkey]);
    assert_eq!(code, 3, "{json}");
    assert_eq!(json["status"], "unsigned", "{json}");
    assert_eq!(json["exit_code"], 3, "{json}");
    assert_eq!(json["signature"], "good", "{json}");
    let span = &json["unsigned"][0];
    let signed_lines = json_lines(&signed_manifests).len() as u64;
    assert_eq!(span["first_line"], signed_lines + 1, "{json}");
    assert_eq!(span["last_line"], manifests.len() as u64, "{json}");
    assert_eq!(
        span["since"], manifests[signed_lines as usize]["at"],
        "{json}"
    );
    assert_eq!(span["files"][0]["file"], path, "{json}");
    assert_eq!(span["files"][0]["first_seq"], 1000, "{json}");
    assert_eq!(span["files"][0]["rows"], 1, "{json}");

    // Without --pubkey the signature is not checked, but what it covers is still reported.
    let out = t.verify(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
}

/// Opening a signed archive with another key refuses too: one archive, one key.
#[test]
fn run_with_another_key_is_refused() {
    let t = Setup::new();
    t.signed_archive();
    let other = t.keygen("other.key");
    let before = t.read("audit/manifests.jsonl");
    let forged = t.write("forged.log", FORGED);
    let out = t.archive_run(Some(&other), &forged);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not by the --key given"),
        "{}",
        stderr(&out)
    );
    assert_eq!(t.read("audit/manifests.jsonl"), before);
}

/// A run with the right key refuses an archive whose signed checkpoint does not match its
/// manifests: it was altered, and signing over it would hide that.
#[test]
fn run_with_the_key_refuses_an_archive_whose_checkpoint_does_not_match() {
    let t = Setup::new();
    let key = t.signed_archive();
    let manifests = t.read("audit/manifests.jsonl");
    // The last line (the one the checkpoint names) edited; still valid JSON.
    let text = String::from_utf8(manifests).expect("text");
    let last_start = text.trim_end().rfind('\n').map_or(0, |i| i + 1);
    let edited = format!(
        "{}{}",
        &text[..last_start],
        text[last_start..].replacen("\"kind\":", "\"kind\": ", 1)
    );
    assert_ne!(edited, text);
    t.put("audit/manifests.jsonl", edited.as_bytes());
    let more = t.write("more.log", &sshd_lines(3));
    let out = t.archive_run(Some(&key), &more);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("secpipe verify"), "{}", stderr(&out));
    assert_eq!(t.read("audit/manifests.jsonl"), edited.as_bytes());
}

/// A signature lost behind the chain (a power cut before the checkpoint was made durable, or
/// an old checkpoint put back): the next run with the key extends the chain, but its `resume`
/// line says which lines it does not vouch for, and verify keeps naming them.
#[test]
fn later_run_with_the_key_does_not_bless_the_unsigned_lines() {
    let t = Setup::new();
    let key = t.signed_archive();
    let pubkey = format!("{}.pub", s(&key));
    let old_checkpoint = t.read("audit/checkpoint");
    let signed_lines = t.manifests().len() as u64;
    let more = t.write("more.log", &sshd_lines(10));
    let out = t.archive_run(Some(&key), &more);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lagging_lines = t.manifests().len() as u64;
    t.put("audit/checkpoint", &old_checkpoint);
    assert_eq!(t.verify(&["--pubkey", &pubkey]).status.code(), Some(3));

    let out = t.archive_run(Some(&key), &more);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let warning = format!(
        "manifest lines {}..={lagging_lines} are covered by no valid signature of this key",
        signed_lines + 1
    );
    assert!(stderr(&out).contains(&warning), "{}", stderr(&out));
    let manifests = t.manifests();
    let resume = &manifests[lagging_lines as usize];
    assert_eq!(resume["kind"], "resume", "{resume}");
    assert_eq!(resume["unsigned_lines"]["first"], signed_lines + 1);
    assert_eq!(resume["unsigned_lines"]["last"], lagging_lines);

    // The checkpoint now covers every line, and still the adopted lines are not vouched for.
    let (code, json) = t.verify_json(&["--pubkey", &pubkey]);
    assert_eq!(code, 3, "{json}");
    assert_eq!(json["signature"], "good", "{json}");
    assert_eq!(json["unsigned"].as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(
        json["unsigned"][0]["first_line"],
        signed_lines + 1,
        "{json}"
    );
    assert_eq!(json["unsigned"][0]["last_line"], lagging_lines, "{json}");
    assert_eq!(json["unsigned"][0]["files"][0]["first_seq"], 1000, "{json}");
    assert_eq!(json["unsigned"][0]["files"][0]["rows"], 10, "{json}");
    assert!(
        json["unsigned"][0]["why"]
            .as_str()
            .is_some_and(|why| why.contains("does not vouch")),
        "{json}"
    );
}

/// After a clean close nothing lags: the checkpoint counts every manifest line.
#[test]
fn clean_close_leaves_no_line_unsigned() {
    let t = Setup::new();
    let key = t.signed_archive();
    let more = t.write("more.log", &sshd_lines(10));
    let out = t.archive_run(Some(&key), &more);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let checkpoint = String::from_utf8(t.read("audit/checkpoint")).expect("text");
    let count: usize = checkpoint
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("count line");
    assert_eq!(count, t.manifests().len(), "{checkpoint}");
    let (code, json) = t.verify_json(&["--pubkey", &format!("{}.pub", s(&key))]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["status"], "intact", "{json}");
    assert_eq!(json["warnings"], serde_json::json!([]), "{json}");
    assert_eq!(json["unsigned"], serde_json::json!([]), "{json}");
}

/// Replay replays rows no signature covers, and marks the alerts that rest on them.
#[test]
fn replay_marks_alerts_resting_on_unsigned_rows() {
    let t = Setup::new();
    let key = t.signed_archive();
    let signed_checkpoint = t.read("audit/checkpoint");
    t.put("audit/checkpoint", &strip_signature(&signed_checkpoint));
    // Six failed logins from a new address: an auth.bruteforce alert that rests on them only.
    let planted: String = (0..6)
        .map(|i| {
            format!(
                "Nov 23 11:00:0{i} gate sshd[77{i}]: Failed password for root from 10.9.9.9 \
                 port 5{i} ssh2\n"
            )
        })
        .collect();
    let planted = t.write("planted.log", &planted);
    assert_eq!(t.archive_run(None, &planted).status.code(), Some(0));
    t.put("audit/checkpoint", &signed_checkpoint);
    drop(key);

    let out = run(&["replay", "--tz", "UTC", s(&t.archive())]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("UNSIGNED"), "{}", stderr(&out));
    let alerts = json_lines(&out.stdout);
    let planted_alert = alerts
        .iter()
        .find(|a| a["key"]["value"] == "10.9.9.9")
        .unwrap_or_else(|| panic!("no alert for the planted address: {alerts:?}"));
    assert_eq!(planted_alert["unverified"], true, "{planted_alert}");
    let signed_alerts: Vec<_> = alerts
        .iter()
        .filter(|a| a["key"]["value"] != "10.9.9.9")
        .collect();
    assert!(!signed_alerts.is_empty(), "{alerts:?}");
    for alert in signed_alerts {
        assert!(alert.get("unverified").is_none(), "{alert}");
    }
}

/// Without `--pubkey`, replay cannot tell a stripped signature from an archive written without
/// a key; with it, a checkpoint whose signature was stripped stops the replay (exit 1), and
/// `--force` marks every alert, since no row is vouched for.
#[test]
fn replay_with_pubkey_stops_on_a_stripped_signature() {
    let t = Setup::new();
    let key = t.signed_archive();
    let pubkey = format!("{}.pub", s(&key));
    let archive = t.archive();
    let out = run(&["replay", "--tz", "UTC", "--pubkey", &pubkey, s(&archive)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!json_lines(&out.stdout).is_empty());

    let signed_checkpoint = t.read("audit/checkpoint");
    t.put("audit/checkpoint", &strip_signature(&signed_checkpoint));
    let out = run(&["replay", "--tz", "UTC", "--pubkey", &pubkey, s(&archive)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("bad_signature"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let out = run(&[
        "replay",
        "--tz",
        "UTC",
        "--pubkey",
        &pubkey,
        "--force",
        s(&archive),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let alerts = json_lines(&out.stdout);
    assert!(!alerts.is_empty());
    assert!(alerts.iter().all(|a| a["unverified"] == true), "{alerts:?}");

    let log = t.write("plain.log", FORGED);
    let out = run(&["replay", "--pubkey", &pubkey, s(&log)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn keygen_writes_a_private_key_and_refuses_to_overwrite_it() {
    let t = Setup::new();
    let key = t.path("k");
    let out = run(&["keygen", "--out", s(&key)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = stdout(&out);
    let fingerprint = printed
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: "))
        .expect("a fingerprint line");
    assert_eq!(fingerprint.len(), 64, "{printed}");
    let private = std::fs::read_to_string(&key).expect("private key");
    assert!(
        private.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{private}"
    );
    let public = std::fs::read_to_string(t.path("k.pub")).expect("public key");
    assert!(
        public.starts_with("-----BEGIN PUBLIC KEY-----\n"),
        "{public}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = run(&["keygen", "--out", s(&key)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&key).expect("key"), private);

    // --key and --pubkey take only what keygen wrote: a public key is not a private key.
    let input = t.write("auth.log", &sshd_lines(3));
    let out = t.archive_run(Some(&t.path("k.pub")), &input);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("BEGIN PRIVATE KEY"),
        "{}",
        stderr(&out)
    );
    assert!(!t.archive().join("audit").exists());
    assert_eq!(t.archive_run(Some(&key), &input).status.code(), Some(0));
    let (code, json) = t.verify_json(&["--pubkey", s(&key)]);
    assert_eq!(code, 2, "{json}");
    assert_eq!(json["status"], "inconclusive", "{json}");
}

/// verify's exit codes through the binary: 0 intact, 1 tampered, 2 could not conclude (3, the
/// unsigned verdict, is in the tests above), with the JSON report's fields.
#[test]
fn verify_exit_codes_and_json_fields() {
    let t = Setup::new();
    let key = t.signed_archive();
    let pubkey = format!("{}.pub", s(&key));
    let manifests = t.manifests();

    // 0: intact, with the head anchored.
    let (code, json) = t.verify_json(&["--pubkey", &pubkey]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["status"], "intact");
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["signature"], "good");
    assert_eq!(json["manifests"], manifests.len() as u64);
    let data: Vec<_> = manifests.iter().filter(|m| m["kind"] == "data").collect();
    assert_eq!(json["files"], data.len() as u64);
    let event_rows: u64 = data
        .iter()
        .filter(|m| m["table"] == "events")
        .map(|m| m["rows"]["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(event_rows, 1000);
    assert!(json["rows"].as_u64().is_some_and(|r| r > 1000), "{json}");
    let head = json["head"].as_str().expect("head").to_owned();
    assert_eq!(head.len(), 64);
    let out = t.verify(&["--pubkey", &pubkey, "--expect-head", &head]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains(&format!("head      {head}")));

    // 1: a head that is not in the chain (a deleted tail).
    let (code, json) = t.verify_json(&["--expect-head", &"ab".repeat(32)]);
    assert_eq!(code, 1, "{json}");
    assert_eq!(json["status"], "tampered");
    assert_eq!(json["problems"][0]["class"], "deleted");
    assert_eq!(json["problems"][0]["file"], "audit/manifests.jsonl");

    // 1: the wrong public key.
    let other = t.keygen("other.key");
    let (code, json) = t.verify_json(&["--pubkey", &format!("{}.pub", s(&other))]);
    assert_eq!(code, 1, "{json}");
    assert_eq!(json["signature"], "bad");
    assert_eq!(json["problems"][0]["class"], "bad_signature");

    // 2: could not conclude.
    let out = t.verify(&["--expect-head", "not-a-head"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let missing = t.path("missing.pub");
    let (code, json) = t.verify_json(&["--pubkey", s(&missing)]);
    assert_eq!(code, 2, "{json}");
    assert_eq!(json["status"], "inconclusive");
    let empty = t.path("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let out = run(&["verify", s(&empty)]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("not a secpipe archive"),
        "{}",
        stdout(&out)
    );
    let out = run(&["verify", s(&t.path("no-such-dir"))]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // 1: a flipped byte in a sealed file, named with its class and file.
    let target = data[0]["path"].as_str().expect("path").to_owned();
    let mut bytes = t.read(&target);
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    t.put(&target, &bytes);
    let (code, json) = t.verify_json(&["--pubkey", &pubkey]);
    assert_eq!(code, 1, "{json}");
    assert_eq!(json["status"], "tampered");
    assert_eq!(json["exit_code"], 1);
    assert_eq!(json["problems"][0]["class"], "modified", "{json}");
    assert_eq!(json["problems"][0]["file"], target.as_str(), "{json}");
}
