//! Issue 15: `secpipe report` over archives the binary wrote. What a review counts, what it
//! compares, how it matches alerts to bans, what it says about a tampered archive, and what an
//! attacker who writes log lines can do to it. (The page in Chromium: tests/report_html.rs;
//! the numbers against DuckDB: tests/report_duckdb.rs; bounded memory:
//! tests/report_memory.rs.)

mod common;
mod report_support;
use common::*;

use std::path::Path;

const HOUR: i64 = 3_600;

/// RFC 3339 for `secs` (Unix seconds).
fn stamp(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .expect("time")
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn sshd(at: i64, host: &str, pid: u32, msg: &str) -> String {
    format!("{} {host} sshd[{pid}]: {msg}\n", stamp(at))
}

fn archive(dir: &Path, log: &str) -> std::path::PathBuf {
    report_support::archive_with_bans(dir, log)
}

fn report(arch: &Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    report_support::review_json(arch, args)
}

/// Now and the period end: the next full hour, so the period's day ends after now and lines
/// stamped with their receive time (no timestamp of their own) fall inside it.
fn now_and_end() -> (i64, i64) {
    let now = jiff::Timestamp::now().as_second();
    (now, (now / HOUR + 1) * HOUR)
}

/// Yesterday: 203.0.113.7 tried twice on web1, and host old1 logged five lines, then nothing.
/// Today, two minutes ago: 203.0.113.7 tried six times in a minute (a brute force, "would
/// ban" in simulate), 198.51.100.3 once on web2, alice logged in from an IPv6 address, and one line
/// had no envelope at all.
fn two_days(now: i64, end: i64) -> String {
    let yesterday = end - 30 * HOUR;
    let mut log = String::new();
    for i in 0..2 {
        log += &sshd(
            yesterday + i,
            "web1",
            10,
            "Failed password for root from 203.0.113.7 port 22 ssh2",
        );
    }
    for i in 0..5 {
        log += &sshd(
            yesterday + 60 + i,
            "old1",
            20,
            "Connection closed by 192.0.2.50 port 22",
        );
    }
    let attack = now - 120;
    for i in 0..6 {
        log += &sshd(
            attack + i,
            "web1",
            30 + i as u32,
            "Failed password for root from 203.0.113.7 port 22 ssh2",
        );
    }
    log += &sshd(
        attack + 10,
        "web2",
        40,
        "Failed password for invalid user bob from 198.51.100.3 port 22 ssh2",
    );
    log += &sshd(
        attack + 20,
        "web2",
        41,
        "Accepted password for alice from 2001:db8:1:2::9 port 22 ssh2",
    );
    log += "\u{1}\u{2} no envelope here\n";
    log
}

fn count_of(review: &serde_json::Value, kind: &str) -> (u64, u64) {
    let k = review["counts"]["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .find(|k| k["kind"] == kind)
        .unwrap_or_else(|| panic!("no kind {kind}"));
    (
        k["count"]["now"].as_u64().expect("now"),
        k["count"]["previous"].as_u64().expect("previous"),
    )
}

#[test]
fn a_day_review_counts_compares_and_lists_the_simulated_ban_without_calling_it_a_response() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (now, end) = now_and_end();
    let arch = archive(dir.path(), &two_days(now, end));
    let (code, r, stderr) = report(&arch, &["--to", &stamp(end)]);
    assert_eq!(code, 0, "{stderr}");

    assert_eq!(r["archive"]["verdict"], "intact");
    assert_eq!(r["period"]["kind"], "day");
    assert_eq!(r["period"]["to"], stamp(end));
    assert_eq!(r["period"]["previous_from"], stamp(end - 48 * HOUR));

    // 6 + 1 + 1 + the line without an envelope; yesterday 2 + 5.
    assert_eq!(r["counts"]["lines"]["now"], 9);
    assert_eq!(r["counts"]["lines"]["previous"], 7);
    assert_eq!(count_of(&r, "auth.failure"), (7, 2));
    assert_eq!(count_of(&r, "auth.success"), (1, 0));
    assert_eq!(r["counts"]["unparsed"]["now"], 1);
    assert_eq!(r["counts"]["unparsed_per_mille"], 111);
    assert_eq!(r["counts"]["ts_inferred"]["now"], 1);

    let sources = r["sources"]["rows"].as_array().expect("sources");
    let top = &sources[0];
    assert_eq!(top["address"], "203.0.113.7");
    assert_eq!(
        (top["events"].as_u64(), top["failures"].as_u64()),
        (Some(6), Some(6))
    );
    assert_eq!(top["new"], false, "it tried yesterday too");
    assert_eq!(top["banned"], false, "a simulated ban blocked nothing");
    assert!(top["alerts"].as_u64() >= Some(1));
    let other = sources
        .iter()
        .find(|s| s["address"] == "198.51.100.3")
        .expect("198.51.100.3");
    assert_eq!(other["new"], true);
    assert!(
        r["prefixes"]["rows"]
            .as_array()
            .expect("prefixes")
            .iter()
            .any(|p| p["prefix"] == "2001:db8:1:2::/64"),
        "{}",
        r["prefixes"]
    );
    assert_eq!(r["users"]["rows"][0]["user"], "root");
    assert_eq!(r["users"]["rows"][0]["failures"], 6);
    assert_eq!(r["users"]["rows"][0]["new"], false);

    let bans = &r["bans"];
    assert_eq!(bans["issued"]["now"], 1, "{bans}");
    assert_eq!(bans["simulated"], 1);
    assert_eq!(bans["rows"][0]["address"], "203.0.113.7");
    assert_eq!(bans["rows"][0]["mode"], "simulate");
    assert_eq!(bans["rows"][0]["cause_rule"], "auth.bruteforce");
    assert_eq!(bans["rows"][0]["nth"], 1, "the first ban of it");

    let items = r["response"]["items"].as_array().expect("items");
    let brute = items
        .iter()
        .find(|i| i["rule"] == "auth.bruteforce")
        .expect("bruteforce item");
    // A simulated ban blocked nothing: it answers no alert (missed or open, by whether the
    // deadline fell before the end of the period).
    assert!(
        brute["status"] == "open" || brute["status"] == "missed",
        "{brute}"
    );
    assert!(brute["answered"].is_null());
    let rule = r["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|x| x["rule"] == "auth.bruteforce")
        .expect("rule row");
    assert_eq!(rule["alerts"]["now"], 1);
    // Bans are responses, not alerts: not among the rules.
    assert!(
        !r["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .any(|x| x["rule"] == "secpipe.ban")
    );

    let silent = r["hosts"]["silent"].as_array().expect("silent");
    let old1 = silent
        .iter()
        .find(|h| h["host"] == "old1")
        .expect("old1 is silent");
    assert_eq!(old1["last_event"], stamp(end - 30 * HOUR + 64));
    assert!(
        !silent.iter().any(|h| h["host"] == "web1"),
        "web1 logged today: {silent:?}"
    );
    let web1 = r["hosts"]["rows"]
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["host"] == "web1")
        .expect("web1");
    let spark: u64 = web1["sparkline"]
        .as_array()
        .expect("spark")
        .iter()
        .filter_map(|v| v.as_u64())
        .sum();
    assert_eq!(spark, 6, "web1's sparkline holds its six lines of today");
    assert_eq!(r["timeline"]["starts"].as_array().map(Vec::len), Some(24));
    let lines: u64 = r["timeline"]["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(|v| v.as_u64())
        .sum();
    assert_eq!(lines, 9);
}

/// An alert nobody answered: its deadline passed inside the period → `missed`; one whose
/// deadline is after the end of the period → `open`.
#[test]
fn unanswered_alerts_are_missed_or_open_by_their_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Old enough that no ban is decided (stale): no response on record.
    let day = 1_767_225_600; // 2026-01-01T00:00:00Z
    let mut log = String::new();
    for (at, ip) in [
        (day + 3 * HOUR, "203.0.113.8"),
        (day + 23 * HOUR + 1800, "203.0.113.9"),
    ] {
        for i in 0..6 {
            log += &sshd(
                at + i,
                "web1",
                50 + i as u32,
                &format!("Failed password for root from {ip} port 22 ssh2"),
            );
        }
    }
    let arch = archive(dir.path(), &log);
    let (code, r, stderr) = report(&arch, &["--from", "2026-01-01"]);
    assert_eq!(code, 0, "{stderr}");
    let status_of = |ip: &str| {
        r["response"]["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["key"] == ip)
            .map(|i| i["status"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(
        status_of("203.0.113.8").as_deref(),
        Some("missed"),
        "{}",
        r["response"]
    );
    assert_eq!(
        status_of("203.0.113.9").as_deref(),
        Some("open"),
        "{}",
        r["response"]
    );
    let total: u64 = r["response"]["priorities"]
        .as_array()
        .expect("priorities")
        .iter()
        .map(|p| p["missed"].as_u64().unwrap_or(0) + p["open"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(total, 2);
    assert_eq!(r["bans"]["issued"]["now"], 0);
}

#[test]
fn the_same_archive_gives_the_same_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (now, end) = now_and_end();
    let arch = archive(dir.path(), &two_days(now, end));
    let run = || {
        secpipe()
            .arg("report")
            .arg(&arch)
            .args(["--to", &stamp(end), "--json", "-"])
            .output()
            .expect("report")
            .stdout
    };
    let first = run();
    assert!(!first.is_empty());
    assert_eq!(first, run());
}

/// Without --from/--to the period ends at the first full hour after the last event (of the
/// archive, not of the clock): a review of last year's archive is of last year's last day.
#[test]
fn the_default_period_is_placed_by_the_archive_not_the_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let last = 1_767_225_600 + 5 * HOUR + 17 * 60; // 2026-01-01T05:17:00Z
    let log = sshd(
        last - 3 * 24 * HOUR,
        "web1",
        1,
        "Failed password for root from 203.0.113.7 port 22 ssh2",
    ) + &sshd(
        last,
        "web1",
        2,
        "Failed password for root from 203.0.113.7 port 22 ssh2",
    );
    let arch = archive(dir.path(), &log);
    let (_, day, _) = report(&arch, &[]);
    assert_eq!(day["period"]["to"], "2026-01-01T06:00:00Z");
    assert_eq!(day["period"]["from"], "2025-12-31T06:00:00Z");
    assert_eq!(day["counts"]["lines"]["now"], 1);
    let (_, week, _) = report(&arch, &["--week"]);
    assert_eq!(week["period"]["kind"], "week");
    assert_eq!(week["period"]["from"], "2025-12-25T06:00:00Z");
    assert_eq!(week["counts"]["lines"]["now"], 2);
}

/// A review of an archive that does not verify says so first, names the problem, and exits 1;
/// the numbers are still there (someone has to look at what the attacker left).
#[test]
fn a_tampered_archive_is_named_first_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (now, end) = now_and_end();
    let arch = archive(dir.path(), &two_days(now, end));
    let part = std::fs::read_dir(arch.join("events"))
        .expect("events")
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).expect("day").flatten())
        .map(|f| f.path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a parquet file");
    let mut bytes = std::fs::read(&part).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&part, bytes).expect("write");
    let (code, r, _) = report(&arch, &["--to", &stamp(end)]);
    assert_eq!(code, 1);
    assert_eq!(r["archive"]["verdict"], "tampered");
    let problems = r["archive"]["problems"].as_array().expect("problems");
    assert!(
        problems.iter().any(|p| p
            .as_str()
            .is_some_and(|p| p.contains("modified") || p.contains("events/"))),
        "{problems:?}"
    );
    // The altered file is not read: its rows are the attacker's, not evidence.
    let name = part
        .strip_prefix(&arch)
        .expect("inside")
        .to_str()
        .expect("utf-8")
        .to_owned();
    let warnings = r["archive"]["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains("not read") && w.ends_with(&name))),
        "{warnings:?}"
    );
    assert!(
        r["counts"]["lines"]["now"].as_u64() < Some(9)
            || r["counts"]["lines"]["previous"].as_u64() < Some(7)
    );
}

/// Host names are log text: a flood of one-line forged hosts yesterday ("silent" today, every
/// one of them) must not push the real host that stopped logging off the silent list.
#[test]
fn forged_one_line_hosts_do_not_hide_a_real_silent_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (now, end) = now_and_end();
    let yesterday = end - 30 * HOUR;
    let mut log = String::new();
    for i in 0..300 {
        log += &sshd(
            yesterday + i,
            "db1",
            1,
            "Connection closed by 192.0.2.50 port 22",
        );
    }
    for i in 0..12_000 {
        log += &sshd(
            yesterday + 400 + i / 100,
            &format!("forged{i}"),
            1,
            "Connection closed by 192.0.2.51 port 22",
        );
    }
    log += &sshd(
        now - 60,
        "web1",
        2,
        "Connection closed by 192.0.2.52 port 22",
    );
    let arch = archive(dir.path(), &log);
    let (code, r, stderr) = report(&arch, &["--to", &stamp(end)]);
    assert_eq!(code, 0, "{stderr}");
    let silent = r["hosts"]["silent"].as_array().expect("silent");
    assert!(silent.len() <= 100, "the list is capped: {}", silent.len());
    assert_eq!(
        silent[0]["host"],
        "db1",
        "{:?}",
        &silent[..3.min(silent.len())]
    );
    assert_eq!(
        r["hosts"]["exact"], false,
        "12,000 hosts are over the tally's cap"
    );
    assert!(
        r["limits"].as_array().is_some_and(|l| l
            .iter()
            .any(|x| x.as_str().is_some_and(|x| x.starts_with("hosts")))),
        "{}",
        r["limits"]
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (now, end) = now_and_end();
    let arch = archive(dir.path(), &two_days(now, end));
    let code = |args: &[&str]| {
        secpipe()
            .arg("report")
            .args(args)
            .output()
            .expect("report")
            .status
            .code()
    };
    let a = arch.to_str().expect("utf-8 path");
    assert_eq!(
        code(&[a, "--from", "2026-01-02", "--to", "2026-01-01"]),
        Some(2)
    );
    assert_eq!(code(&[a, "--from", "yesterday"]), Some(2));
    assert_eq!(code(&["/nonexistent/archive"]), Some(2));
    assert_eq!(code(&[a, "--json", "-", "--md", "-"]), Some(2));
    // Not an archive: a directory without manifests.
    assert_eq!(
        code(&[dir.path().join("state").to_str().expect("utf-8")]),
        Some(2)
    );
}

/// `--json /dev/null` writes to the device; it must never be replaced by a regular file.
#[test]
fn an_output_that_is_not_a_regular_file_is_written_not_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (now, end) = now_and_end();
    let arch = archive(dir.path(), &two_days(now, end));
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).expect("read fifo"))
    };
    let out = secpipe()
        .arg("report")
        .arg(&arch)
        .args(["--to", &stamp(end), "--json"])
        .arg(&fifo)
        .output()
        .expect("report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&reader.join().expect("reader")).expect("JSON through the fifo");
    assert_eq!(json["counts"]["lines"]["now"], 9);
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata(&fifo)
            .expect("fifo")
            .file_type()
            .is_fifo()
    );
}
