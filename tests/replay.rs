//! `secpipe replay` (issue 4): the live run, a replay of its archive and a replay of the raw
//! file (plain, gzip, zstd) print the same alerts, across a new year; `--from/--to` select by
//! event time; `--config` re-tunes rules over old evidence; a tampered archive is refused.

mod common;
use common::*;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

/// The year of the fixture's first line; its January lines belong to the next year.
const FIRST_YEAR: &str = "2025";

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// One RFC 3164 sshd line, as syslog writes it: no year, day padded to two columns.
fn sshd_line(month: usize, day: u32, secs_of_day: u32, pid: u32, msg: &str) -> String {
    format!(
        "{} {day:2} {:02}:{:02}:{:02} gw sshd[{pid}]: {msg}\n",
        MONTHS[month - 1],
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

/// `count` failed password attempts from `ip`, one sshd session (pid) each, `every` seconds
/// apart from `start` (seconds since Dec 28 00:00). Every other attempt is an unknown user,
/// which sshd reports in two lines that count as one attempt.
fn burst(lines: &mut Vec<(u32, String)>, ip: &str, start: u32, count: u32, every: u32) {
    for i in 0..count {
        let t = start + i * every;
        if i % 2 == 0 {
            lines.push((t, format!("Invalid user admin{i} from {ip}")));
            lines.push((
                t,
                format!(
                    "Failed password for invalid user admin{i} from {ip} port {} ssh2",
                    40000 + i
                ),
            ));
        } else {
            lines.push((
                t,
                format!("Failed password for root from {ip} port {} ssh2", 40000 + i),
            ));
        }
    }
}

const DAY: u32 = 86_400;
/// Seconds from Dec 28 00:00 to Jan 1 00:00.
const NEW_YEAR: u32 = 4 * DAY;

/// Attackers of the fixture, and when they strike (seconds from Dec 28 00:00).
const BEFORE_MIDNIGHT: &str = "203.0.113.7"; // Dec 31 23:50, 6 attempts
const ACROSS_MIDNIGHT: &str = "198.51.100.9"; // 3 attempts before Jan 1 00:00, 3 after
const AFTER_MIDNIGHT: &str = "203.0.113.8"; // Jan 1 00:20, 7 attempts
const EARLY: &str = "192.0.2.10"; // Dec 29 14:00, 5 attempts
const LATE: &str = "192.0.2.20"; // Jan 2 16:00, 8 attempts
const SLOW: &str = "192.0.2.44"; // Jan 2 11:00, 3 attempts: under the default threshold of 5

/// Seven days of sshd lines from gateway `gw`, Dec 28 to Jan 3: benign logins and
/// disconnects every few minutes, and brute-force bursts on both sides of midnight Dec 31.
fn new_year_log() -> String {
    let mut lines: Vec<(u32, String)> = Vec::new();
    // Benign traffic every 7 minutes keeps the host from going silent (log.silence, 10 min).
    let mut t = 0;
    let mut n = 0u32;
    while t < 7 * DAY {
        let msg = match n % 3 {
            0 => format!(
                "Accepted publickey for alice from 10.0.0.5 port {} ssh2",
                50000 + n % 1000
            ),
            1 => {
                "Received disconnect from 10.0.0.5 port 50000:11: disconnected by user".to_string()
            }
            _ => "Connection closed by 10.0.0.6 port 41000 [preauth]".to_string(),
        };
        lines.push((t, msg));
        t += 7 * 60;
        n += 1;
    }
    burst(&mut lines, EARLY, DAY + 14 * 3600, 5, 20);
    burst(&mut lines, BEFORE_MIDNIGHT, NEW_YEAR - 10 * 60, 6, 15);
    burst(&mut lines, ACROSS_MIDNIGHT, NEW_YEAR - 45, 6, 15);
    burst(&mut lines, AFTER_MIDNIGHT, NEW_YEAR + 20 * 60, 7, 10);
    burst(&mut lines, SLOW, NEW_YEAR + DAY + 11 * 3600, 3, 30);
    burst(&mut lines, LATE, NEW_YEAR + DAY + 16 * 3600, 8, 5);
    // Stable sort: lines of one second keep their order (Invalid user before Failed password).
    lines.sort_by_key(|(t, _)| *t);
    let mut text = String::new();
    let mut pid = 1000;
    let mut last_session_start = None;
    for (t, msg) in lines {
        // A new sshd process per connection; the two lines of one attempt share it.
        if !(msg.starts_with("Failed password for invalid user") && last_session_start == Some(t)) {
            pid += 1;
        }
        if msg.starts_with("Invalid user") {
            last_session_start = Some(t);
        }
        let (month, day) = if t < NEW_YEAR {
            (12, 28 + t / DAY)
        } else {
            (1, 1 + (t - NEW_YEAR) / DAY)
        };
        text.push_str(&sshd_line(month, day, t % DAY, pid, &msg));
    }
    text
}

/// A scratch directory holding the fixture as `auth.log`, plus its archive from a live run.
struct Scene {
    dir: tempfile::TempDir,
    /// What the live run printed.
    live: Output,
}

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("auth.log"), new_year_log()).expect("write fixture");
        // Small files (50 rows, row groups of at most 50) so replay merges many files and
        // `--from/--to` has files and row groups to prune.
        let live = secpipe()
            .current_dir(dir.path())
            .args(["--tz", "UTC", "--year", FIRST_YEAR, "--archive", "archive"])
            .args(["--roll-rows", "50", "auth.log"])
            .output()
            .expect("run secpipe");
        assert!(
            live.status.success(),
            "{}",
            String::from_utf8_lossy(&live.stderr)
        );
        Scene { dir, live }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `secpipe replay ARGS...` run inside the scene's directory.
    fn replay(&self, args: &[&str]) -> Output {
        secpipe()
            .current_dir(self.dir.path())
            .arg("replay")
            .args(["--tz", "UTC"])
            .args(args)
            .output()
            .expect("run secpipe replay")
    }

    fn replay_ok(&self, args: &[&str]) -> Output {
        let out = self.replay(args);
        assert!(
            out.status.success(),
            "replay {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// A copy of the archive at `rel`, to tamper with.
    fn copy_archive(&self, rel: &str) -> PathBuf {
        let to = self.path(rel);
        copy_dir(&self.path("archive"), &to);
        to
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("zstd")
}

/// Alerts with the fields a raw replay cannot know removed from their evidence: the archive
/// `seq` (a raw file has no archive, so it is null there) and, with `drop_source`, the input
/// name (which names the file read, `auth.log.gz` rather than `auth.log`).
fn without_archive_fields(alerts: &[Value], drop_source: bool) -> Vec<Value> {
    let mut alerts = alerts.to_vec();
    for alert in &mut alerts {
        if let Some(evidence) = alert["evidence"].as_array_mut() {
            for e in evidence {
                if let Some(e) = e.as_object_mut() {
                    e.remove("seq");
                    if drop_source {
                        e.remove("source");
                    }
                }
            }
        }
    }
    alerts
}

/// The distinct keys that `rule` alerted on, sorted (an escalation is a second alert).
fn keys_of(alerts: &[Value], rule: &str) -> Vec<String> {
    let keys: std::collections::BTreeSet<String> = alerts
        .iter()
        .filter(|a| a["rule"] == rule)
        .map(|a| a["key"]["value"].as_str().unwrap_or("?").to_string())
        .collect();
    keys.into_iter().collect()
}

fn stdout(out: &Output) -> &str {
    std::str::from_utf8(&out.stdout).expect("UTF-8 alerts")
}

#[test]
fn live_archive_and_raw_replays_agree_across_new_year() {
    let scene = Scene::new();
    let live = json_lines(&scene.live.stdout);

    // The fixture's attacks, with the year carried across Dec→Jan.
    let brute = keys_of(&live, "auth.bruteforce");
    for ip in [
        EARLY,
        BEFORE_MIDNIGHT,
        ACROSS_MIDNIGHT,
        AFTER_MIDNIGHT,
        LATE,
    ] {
        assert!(brute.contains(&ip.to_string()), "{ip} missing in {brute:?}");
    }
    assert!(!brute.contains(&SLOW.to_string()), "{brute:?}");
    let across = live
        .iter()
        .find(|a| a["rule"] == "auth.bruteforce" && a["key"]["value"] == ACROSS_MIDNIGHT)
        .expect("alert across midnight");
    assert_eq!(
        across["window_start"].as_str().map(|s| &s[..10]),
        Some("2025-12-31")
    );
    assert_eq!(
        across["last_seen"].as_str().map(|s| &s[..10]),
        Some("2026-01-01")
    );
    // Evidence carries the archive row numbers.
    assert!(across["evidence"][0]["seq"].is_u64(), "{across}");

    // Archive replay: byte for byte what the live run printed, evidence `seq` included.
    let from_archive = scene.replay_ok(&["archive"]);
    assert_eq!(stdout(&from_archive), stdout(&scene.live));

    // Raw replays of the same lines: gzip under a `.log` name (detected by content) and the
    // same name in other directories, so `source` matches too. Only `seq` differs: a raw file
    // has no archive rows, so it is null there; compare with it removed.
    let text = std::fs::read(scene.path("auth.log")).expect("read fixture");
    let expected = without_archive_fields(&live, false);
    for (dir, bytes) in [
        ("plain", text.clone()),
        ("gzip", gzip(&text)),
        ("zstd", zstd(&text)),
    ] {
        std::fs::create_dir(scene.path(dir)).expect("mkdir");
        std::fs::write(scene.path(dir).join("auth.log"), bytes).expect("write");
        let out = secpipe()
            .current_dir(scene.path(dir))
            .args(["replay", "--tz", "UTC", "--year", FIRST_YEAR, "auth.log"])
            .output()
            .expect("run replay");
        assert!(
            out.status.success(),
            "{dir}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let raw = json_lines(&out.stdout);
        assert!(
            raw.iter().all(|a| a["evidence"][0]["seq"].is_null()),
            "{dir}"
        );
        assert_eq!(without_archive_fields(&raw, false), expected, "{dir}");
    }

    // Compressed files under their usual names: the evidence `source` names them, the rest
    // is the same.
    std::fs::write(scene.path("auth.log.gz"), gzip(&text)).expect("write");
    std::fs::write(scene.path("auth.log.zst"), zstd(&text)).expect("write");
    for name in ["auth.log.gz", "auth.log.zst"] {
        let out = scene.replay_ok(&["--year", FIRST_YEAR, name]);
        let raw = json_lines(&out.stdout);
        assert_eq!(raw[0]["evidence"][0]["source"], name);
        assert_eq!(
            without_archive_fields(&raw, true),
            without_archive_fields(&live, true),
            "{name}"
        );
    }
}

/// Every evidence event of every alert lies in [from, to).
#[track_caller]
fn assert_evidence_within(alerts: &[Value], from: &str, to: &str) {
    for a in alerts {
        for e in a["evidence"].as_array().expect("evidence") {
            let ts = e["ts"].as_str().expect("ts");
            assert!(ts >= from && ts < to, "{ts} outside [{from}, {to}): {a}");
        }
    }
}

#[test]
fn from_and_to_select_alerts_by_event_time() {
    let scene = Scene::new();

    // The last hour of the year: the burst before midnight, not the ones after, and not the
    // one across midnight, whose three attempts before midnight are under the threshold.
    let out = scene.replay_ok(&[
        "--from",
        "2025-12-31T23:00:00Z",
        "--to",
        "2026-01-01T00:00:00+00:00",
        "archive",
    ]);
    let alerts = json_lines(&out.stdout);
    assert_eq!(keys_of(&alerts, "auth.bruteforce"), vec![BEFORE_MIDNIGHT]);
    assert_evidence_within(&alerts, "2025-12-31T23:00:00", "2026-01-01T00:00:00");

    // Plain dates are midnight UTC; the same range from the archive and from the raw file.
    let args = ["--from", "2026-01-01", "--to", "2026-01-02"];
    let from_archive = json_lines(&scene.replay_ok(&[&args[..], &["archive"]].concat()).stdout);
    // Across midnight: its three attempts after midnight are under the threshold.
    assert_eq!(
        keys_of(&from_archive, "auth.bruteforce"),
        vec![AFTER_MIDNIGHT]
    );
    assert_evidence_within(&from_archive, "2026-01-01", "2026-01-02");
    let from_raw = json_lines(
        &scene
            .replay_ok(&[&args[..], &["--year", FIRST_YEAR, "auth.log"]].concat())
            .stdout,
    );
    assert_eq!(
        without_archive_fields(&from_raw, false),
        without_archive_fields(&from_archive, false)
    );

    // Files whose manifest time range misses [from, to) are not even opened.
    let stderr =
        String::from_utf8_lossy(&scene.replay_ok(&[&args[..], &["archive"]].concat()).stderr)
            .to_string();
    let opened = inputs_read(&stderr);
    let all = event_files(&scene.path("archive")).len();
    assert!(
        opened > 0 && opened * 3 < all,
        "opened {opened} of {all} files: {stderr}"
    );

    // Open-ended: only --from.
    let late = json_lines(
        &scene
            .replay_ok(&["--from", "2026-01-02T12:00:00Z", "archive"])
            .stdout,
    );
    assert_eq!(keys_of(&late, "auth.bruteforce"), vec![LATE]);
}

/// The number of inputs the end summary says were read (`… from N input(s)`).
fn inputs_read(stderr: &str) -> usize {
    stderr
        .split(" input(s)")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no input count in {stderr}"))
}

#[test]
fn a_tuned_rule_finds_what_the_default_missed() {
    let scene = Scene::new();
    let default = json_lines(&scene.replay_ok(&["archive"]).stdout);
    assert!(!keys_of(&default, "auth.bruteforce").contains(&SLOW.to_string()));

    std::fs::write(
        scene.path("tuned.toml"),
        "[rules.\"auth.bruteforce\"]\nthreshold = 3\n",
    )
    .expect("write config");
    let tuned = json_lines(
        &scene
            .replay_ok(&["--config", "tuned.toml", "archive"])
            .stdout,
    );
    let slow = tuned
        .iter()
        .find(|a| a["rule"] == "auth.bruteforce" && a["key"]["value"] == SLOW)
        .unwrap_or_else(|| panic!("{SLOW} not found with threshold 3"));
    assert_eq!(slow["count"], 3);
    assert_eq!(slow["threshold"], 3);
    // Its evidence comes from the archive: it carries row numbers.
    assert!(slow["evidence"][0]["seq"].is_u64(), "{slow}");
}

/// The events files of an archive, relative to it, in name order.
fn event_files(archive: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for day in std::fs::read_dir(archive.join("events")).expect("events dir") {
        let day = day.expect("entry").path();
        for f in std::fs::read_dir(&day).expect("day dir") {
            let f = f.expect("entry").path();
            let rel = f.strip_prefix(archive).expect("inside archive");
            files.push(rel.display().to_string());
        }
    }
    files.sort();
    files
}

#[test]
fn a_tampered_archive_is_refused_and_force_marks_what_it_cannot_vouch_for() {
    let scene = Scene::new();
    let live = json_lines(&scene.live.stdout);

    // One byte flipped in the middle of an events file.
    let flipped = scene.copy_archive("flipped");
    let files = event_files(&flipped);
    let victim = &files[files.len() / 2];
    let mut bytes = std::fs::read(flipped.join(victim)).expect("read parquet");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(flipped.join(victim), bytes).expect("write parquet");
    let out = scene.replay(&["flipped"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "alerts from a tampered archive: {}",
        stdout(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(victim.as_str()), "{stderr}");

    // A file whose bytes changed but still decode (a hex digit of its own row_root in the
    // footer metadata): --force replays it, and exactly the alerts with evidence in it are
    // marked unverified.
    let edited = scene.copy_archive("edited");
    let after_midnight = live
        .iter()
        .find(|a| a["key"]["value"] == AFTER_MIDNIGHT)
        .expect("alert after midnight");
    let victim = file_holding(
        &edited,
        after_midnight["evidence"][0]["seq"].as_u64().expect("seq"),
    );
    let mut bytes = std::fs::read(edited.join(&victim)).expect("read parquet");
    let at = find(&bytes, b"row_root").expect("row_root in footer") + b"row_root".len();
    let digit = at
        + bytes[at..]
            .iter()
            .position(|b| b.is_ascii_hexdigit())
            .expect("hex");
    bytes[digit] = if bytes[digit] == b'0' { b'1' } else { b'0' };
    std::fs::write(edited.join(&victim), bytes).expect("write parquet");

    let refused = scene.replay(&["edited"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());
    assert!(String::from_utf8_lossy(&refused.stderr).contains(victim.as_str()));

    let forced = scene.replay(&["--force", "edited"]);
    assert_eq!(
        forced.status.code(),
        Some(1),
        "tampering found is still exit 1"
    );
    let alerts = json_lines(&forced.stdout);
    assert_eq!(alerts.len(), live.len());
    let (first, count) = seq_range_of(&edited, &victim);
    let mut marked = 0;
    for a in &alerts {
        let rests_on_victim = a["evidence"].as_array().expect("evidence").iter().any(|e| {
            e["seq"]
                .as_u64()
                .is_some_and(|s| s >= first && s < first + count)
        });
        assert_eq!(a["unverified"] == true, rests_on_victim, "{a}");
        marked += usize::from(rests_on_victim);
    }
    assert!(marked > 0, "no alert rests on {victim}");

    // A manifest line edited: the chain itself is in doubt, so nothing is vouched for.
    let chain = scene.copy_archive("chain");
    let manifests = chain.join("audit/manifests.jsonl");
    let text = std::fs::read_to_string(&manifests).expect("read manifests");
    let edited_text = text.replacen("\"count\":", "\"count\":1", 1);
    assert_ne!(edited_text, text);
    std::fs::write(&manifests, edited_text).expect("write manifests");
    let out = scene.replay(&["chain"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("manifests.jsonl") || stderr.contains(&files[0]),
        "{stderr}"
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// (path, first_seq, count) of each data file, from the manifest chain.
fn manifest_files(archive: &Path) -> Vec<(String, u64, u64)> {
    let text = std::fs::read_to_string(archive.join("audit/manifests.jsonl")).expect("manifests");
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("manifest JSON"))
        .filter_map(|m| {
            let path = m["path"].as_str()?.to_string();
            Some((
                path,
                m["rows"]["first_seq"].as_u64()?,
                m["rows"]["count"].as_u64()?,
            ))
        })
        .collect()
}

/// (first_seq, count) of an archive file.
fn seq_range_of(archive: &Path, rel: &str) -> (u64, u64) {
    manifest_files(archive)
        .into_iter()
        .find(|(path, _, _)| path == rel)
        .map(|(_, first, count)| (first, count))
        .unwrap_or_else(|| panic!("{rel} not in the manifests"))
}

/// The events file that holds row `seq`.
fn file_holding(archive: &Path, seq: u64) -> String {
    manifest_files(archive)
        .into_iter()
        .find(|(path, first, count)| {
            path.starts_with("events/") && (*first..first + count).contains(&seq)
        })
        .map(|(path, _, _)| path)
        .unwrap_or_else(|| panic!("no events file holds row {seq}"))
}

#[test]
fn a_directory_that_is_not_an_archive_or_a_missing_file_is_a_usage_error() {
    let scene = Scene::new();
    std::fs::create_dir(scene.path("logs")).expect("mkdir");
    let out = scene.replay(&["logs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("logs") && stderr.contains("not a secpipe archive"),
        "{stderr}"
    );

    let out = scene.replay(&["missing.log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("missing.log") && stderr.contains("No such file"),
        "{stderr}"
    );
}

/// Loghub's `OpenSSH_2k.log` (real sshd lines, all of Dec 10), when present; required where
/// `SECPIPE_REQUIRE_CORPUS=1` (CI): see `common::corpus_file`.
fn openssh_corpus() -> Option<PathBuf> {
    corpus_file("OpenSSH_2k.log")
}

/// `copies` copies of RFC 3164 `text`, copy `i` dated `i` days after `first_day` (the year is
/// only for the calendar: RFC 3164 prints none). The source's lines must all be of one day,
/// so event time only grows. Lines without a timestamp are kept as they are.
fn shifted_copies(text: &str, copies: i64, first_day: jiff::civil::Date) -> String {
    let mut out = String::with_capacity(text.len() * copies as usize);
    for copy in 0..copies {
        let day = first_day
            .checked_add(jiff::Span::new().days(copy))
            .expect("date in range");
        let stamp = format!("{} {:2}", MONTHS[day.month() as usize - 1], day.day());
        for line in text.lines() {
            // `Dec 10 06:55:46 …`: the first six bytes are the month and the padded day.
            if line.len() > 15 && MONTHS.iter().any(|m| line.starts_with(m)) {
                out.push_str(&stamp);
                out.push_str(&line[6..]);
            } else {
                out.push_str(line);
            }
            out.push('\n');
        }
    }
    out
}

/// Issue 4's "done when": 60,000 real sshd lines over 30 days from Dec 18 across the new year;
/// the live run with `--archive`, a replay of the archive and a replay of the gzipped raw file
/// print the same alerts.
#[test]
fn sixty_thousand_real_lines_over_thirty_days_replay_the_same() {
    let Some(src) = openssh_corpus() else { return };
    let text = std::fs::read_to_string(src).expect("read corpus");
    let corpus = shifted_copies(&text, 30, jiff::civil::date(2025, 12, 18));
    assert_eq!(corpus.lines().count(), 60_000);
    assert!(
        corpus.starts_with("Dec 18 ")
            && corpus
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("Jan 16 "))
    );

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("auth.log"), &corpus).expect("write corpus");
    let live = secpipe()
        .current_dir(dir.path())
        .args([
            "--tz",
            "UTC",
            "--year",
            FIRST_YEAR,
            "--archive",
            "archive",
            "auth.log",
        ])
        .output()
        .expect("run secpipe");
    assert!(
        live.status.success(),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );
    let alerts = json_lines(&live.stdout);
    // Attacks on both sides of the new year, so the year really was carried.
    let first_seen = |prefix: &str| {
        alerts.iter().any(|a| {
            a["first_seen"]
                .as_str()
                .is_some_and(|t| t.starts_with(prefix))
        })
    };
    assert!(
        first_seen("2025-12-") && first_seen("2026-01-"),
        "alerts do not span the new year"
    );

    let from_archive = secpipe()
        .current_dir(dir.path())
        .args(["replay", "--tz", "UTC", "archive"])
        .output()
        .expect("run replay");
    assert!(
        from_archive.status.success(),
        "{}",
        String::from_utf8_lossy(&from_archive.stderr)
    );
    assert_eq!(
        stdout(&from_archive),
        stdout(&live),
        "archive replay differs from the live run"
    );

    // The raw file gzipped, under the same name in another directory so evidence `source`
    // matches; only evidence `seq` differs (null without an archive), so it is compared without.
    std::fs::create_dir(dir.path().join("gz")).expect("mkdir");
    std::fs::write(dir.path().join("gz/auth.log"), gzip(corpus.as_bytes())).expect("write gz");
    let from_raw = secpipe()
        .current_dir(dir.path().join("gz"))
        .args(["replay", "--tz", "UTC", "--year", FIRST_YEAR, "auth.log"])
        .output()
        .expect("run replay");
    assert!(
        from_raw.status.success(),
        "{}",
        String::from_utf8_lossy(&from_raw.stderr)
    );
    assert_eq!(
        without_archive_fields(&json_lines(&from_raw.stdout), false),
        without_archive_fields(&alerts, false),
        "raw gzip replay differs from the live run"
    );
    println!(
        "60,000 corpus lines, Dec 18 to Jan 16: {} alerts, the same live, from the archive and from gzip",
        alerts.len()
    );
}
