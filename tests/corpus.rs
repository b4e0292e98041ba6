//! Extra checks on real public logs (../shared/corpus, Loghub). A user who clones the project
//! does not have that folder: then these tests say so and check nothing else. CI has it, and
//! there (`SECPIPE_REQUIRE_CORPUS=1`, set by tests/run-all.sh) a missing file fails them.

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn corpus(name: &str) -> Option<PathBuf> {
    corpus_file(name)
}

fn first_ipv4(s: &str) -> Option<String> {
    s.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|w| w.split('.').count() == 4 && w.split('.').all(|p| p.parse::<u8>().is_ok()))
        .map(str::to_string)
}

/// `Dec 10 06:55:46 LabSZ sshd[24200]: msg` → (seconds since Jan 1 of a non-leap year, pid, msg).
fn split_sshd(line: &str) -> Option<(i64, u32, &str)> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DAYS_BEFORE: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let month = MONTHS.iter().position(|m| line.starts_with(m))?;
    let day: i64 = line.get(4..6)?.trim().parse().ok()?;
    let h: i64 = line.get(7..9)?.parse().ok()?;
    let m: i64 = line.get(10..12)?.parse().ok()?;
    let s: i64 = line.get(13..15)?.parse().ok()?;
    let rest = line.get(16..)?;
    let open = rest.find("sshd[")?;
    let close = rest[open..].find("]: ")? + open;
    let pid = rest[open + 5..close].parse().ok()?;
    let t = ((DAYS_BEFORE[month] + day - 1) * 24 + h) * 3600 + m * 60 + s;
    Some((t, pid, &rest[close + 3..]))
}

/// An independent, deliberately plain reading of "failed attempts": per sshd session (pid), the
/// first line that starts or reports a failure is attempt one; every further `Failed …` line is
/// one more; `message repeated N times: [ Failed …` is N more. A rejected public key is not an
/// attempt. Returns attempt times per IP.
fn oracle_attempts(text: &str) -> BTreeMap<String, Vec<i64>> {
    // pid -> `Failed` lines seen so far in that session; absent: no failure line yet
    let mut sessions: BTreeMap<u32, u32> = BTreeMap::new();
    let mut attempts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for line in text.lines() {
        let Some((t, pid, msg)) = split_sshd(line) else {
            continue;
        };
        let failed = msg.starts_with("Failed ") && !msg.starts_with("Failed publickey");
        let repeated = msg.starts_with("message repeated ")
            && msg.contains("[ Failed ")
            && !msg.contains("[ Failed publickey");
        let start = msg.starts_with("Invalid user ")
            || msg.starts_with("Illegal user ")
            || (msg.starts_with("pam_unix(sshd:auth): authentication failure;")
                && msg.contains("rhost="));
        if !(failed || repeated || start) {
            continue;
        }
        let Some(ip) = first_ipv4(msg) else { continue };
        let times = attempts.entry(ip).or_default();
        if repeated {
            let n: usize = msg["message repeated ".len()..]
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            times.extend(std::iter::repeat_n(t, n));
            continue;
        }
        match sessions.get_mut(&pid) {
            // The session's first failure line is attempt one.
            None => {
                sessions.insert(pid, u32::from(failed));
                times.push(t);
            }
            // Its first `Failed` line reports that same attempt; each later one is another.
            Some(n) if failed => {
                *n += 1;
                if *n >= 2 {
                    times.push(t);
                }
            }
            Some(_) => {}
        }
    }
    attempts
}

fn ips_with_5_in_5_minutes(attempts: &BTreeMap<String, Vec<i64>>) -> BTreeSet<String> {
    attempts
        .iter()
        .filter(|(_, times)| {
            let mut t = (*times).clone();
            t.sort();
            t.windows(5).any(|w| w[4] - w[0] < 300)
        })
        .map(|(ip, _)| ip.clone())
        .collect()
}

#[test]
fn bruteforce_names_exactly_the_ips_with_5_attempts_in_5_minutes() {
    let Some(path) = corpus("OpenSSH_2k.log") else {
        return;
    };
    let text = std::fs::read_to_string(&path).expect("corpus");
    let expected = ips_with_5_in_5_minutes(&oracle_attempts(&text));
    assert!(
        expected.len() >= 3,
        "the sample has several brute-forcers: {expected:?}"
    );
    let out = run_ok(&[
        "--tz",
        "UTC",
        "--year",
        "2025",
        path.to_str().expect("path"),
    ]);
    let named: BTreeSet<String> = json_lines(&out.stdout)
        .iter()
        .filter(|a| a["rule"] == "auth.bruteforce")
        .map(|a| a["key"]["value"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(named, expected);
}

#[test]
fn failure_lines_are_tagged_with_their_source_ip() {
    let Some(path) = corpus("OpenSSH_2k.log") else {
        return;
    };
    let text = std::fs::read_to_string(&path).expect("corpus");
    let out = run_ok(&[
        "events",
        "--tz",
        "UTC",
        "--year",
        "2025",
        path.to_str().expect("path"),
    ]);
    let events = json_lines(&out.stdout);
    assert_eq!(events.len(), text.lines().count());
    let is_failure = |l: &str| {
        (l.contains("Failed password")
            || l.contains("Failed none")
            || l.contains("Invalid user ")
            || (l.contains("authentication failure;") && l.contains("rhost=")))
            || l.contains("more authentication failure")
            || l.contains("input_userauth_request: invalid user")
            || l.contains("Too many authentication failures")
            || (l.contains("message repeated") && l.contains("Failed password"))
    };
    let (mut failures, mut tagged, mut false_alarms, mut others) = (0, 0, 0, 0);
    for (line, ev) in text.lines().zip(&events) {
        if is_failure(line) {
            failures += 1;
            // A PAM `rhost=` is a host name when sshd resolved it (UseDNS): never an address,
            // even when the name starts with one (`5.36.59.76.dynamic-dsl-ip.omantel.net.om`).
            let rhost = line
                .split_ascii_whitespace()
                .find_map(|w| w.strip_prefix("rhost="));
            let ip_ok = match rhost {
                Some(host) if host.parse::<std::net::IpAddr>().is_err() => ev["src_ip"].is_null(),
                _ => match first_ipv4(line.get(16..).unwrap_or("")) {
                    Some(ip) => ev["src_ip"] == ip.as_str(),
                    None => true,
                },
            };
            if ev["kind"] == "auth.failure" && ip_ok {
                tagged += 1;
            }
        } else {
            others += 1;
            if ev["kind"] == "auth.failure" {
                false_alarms += 1;
            }
        }
    }
    let recall = tagged as f64 / failures as f64;
    eprintln!(
        "failure lines {failures}, tagged {tagged} ({:.1}%), non-failure lines tagged as failures {false_alarms} of {others}",
        recall * 100.0
    );
    assert!(recall >= 0.95, "recall {recall}");
    assert!(
        false_alarms * 50 <= others,
        "{false_alarms} of {others} non-failure lines tagged auth.failure"
    );
}

#[test]
fn every_corpus_line_becomes_one_event() {
    for name in ["OpenSSH_2k.log", "Linux_2k.log", "Apache_2k.log"] {
        let Some(path) = corpus(name) else { continue };
        let lines = std::fs::read(&path)
            .expect("corpus")
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        let out = run_ok(&["events", "--tz", "UTC", path.to_str().expect("path")]);
        assert_eq!(json_lines(&out.stdout).len(), lines, "{name}");
    }
}
