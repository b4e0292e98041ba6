//! secpipe scored on fail2ban's own annotated test logs for its `sshd` and `dropbear` filters
//! (Debian package `fail2ban`, installed by tests/run-all.sh), through the real binary.
//!
//! fail2ban marks each log line with `# failJSON: {"match": …, "host": …}` and groups lines
//! under `# filterOptions:` (the filter modes a group is tested in). Only lines that the
//! filter's default `mode = normal` is tested on are scored; a per-line `constraint` on the
//! mode is honoured. The bar (issue 9):
//!
//! - recall: ≥ 98 % of the failure lines that name an IP address are an `auth.failure` with that
//!   address, on that line or on a line of the same session (host, app and pid): fail2ban
//!   reports some failures on the line after the one that failed (`User root not allowed
//!   because account is locked` … `Received disconnect from <ip>`), and secpipe binds a
//!   session's address to its attempts in detect;
//! - false alarms: ≤ 6 % of the lines fail2ban marks as no failure are an `auth.failure` that
//!   secpipe would hold against an address (its own, or its session's) in a session where
//!   fail2ban reports no failure at all. fail2ban's own failure regexes match lines such as
//!   `User root not allowed because account is locked` or `Disconnecting: Too many
//!   authentication failures for root`, but having no address there it marks them
//!   `match: false` and reports the failure on the session's next line that names one; secpipe
//!   reports it where it happens and binds the session's address to it. That is the same
//!   attempt, counted once, not a false alarm. Nor is a line whose attempt detection does not
//!   hold against any address: `secpipe run` with a rule that fires at the first attempt says
//!   which addresses are held (a PAM failure whose session then logs in as the same user, as
//!   when pam_unix fails and pam_ldap accepts, gh-2070, counts nothing: fail2ban's
//!   F-MLFFORGET). The plain per-line share (every `match: false` line that is an
//!   `auth.failure`) is printed too, for the record.
//!
//! Last measured (fail2ban 1.0.2): sshd 60/60 failure lines caught, 1/35 false alarms (2.9 %):
//! a PAM failure of root whose client left before `Failed password` (gh-1024), which fail2ban
//! counts only in `mode = aggressive` and secpipe counts as the attempt it was; dropbear 7/7.
//!
//! Failure lines whose `host` is a name (`example.com`) or not a valid address (`192.030.0.6`)
//! name no IP and are not scored for recall. The grammars are our own, written from the forms
//! (OpenSSH and dropbear sources), not from fail2ban's regexes.

mod common;
use common::*;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

const FAIL2BAN_LOGS: &str = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";

/// One log line fail2ban annotated, in normal mode.
struct Expectation {
    line: String,
    failure: bool,
    /// The `host` of a failure line, when it is an IP address (canonical form).
    address: Option<IpAddr>,
}

/// Whether one `filterOptions` entry is (or includes) the default mode.
fn includes_normal_mode(options: &serde_json::Value) -> bool {
    let is_normal = |set: &serde_json::Value| match set.get("mode") {
        None => true,
        Some(mode) => mode == "normal",
    };
    match options {
        serde_json::Value::Array(sets) => sets.iter().any(is_normal),
        set => is_normal(set),
    }
}

/// A failJSON `constraint`, evaluated for normal mode and a filter named `filter`; `None` for a
/// form this reader does not know (such lines are left out, and counted).
fn constraint_holds(constraint: &str, filter: &str) -> Option<bool> {
    constraint
        .split(" and ")
        .map(|term| {
            let term = term.trim();
            if let Some(value) = term.strip_prefix("opts.get('mode') == ") {
                return Some(value.trim_matches('\'') == "normal");
            }
            if let Some(value) = term.strip_prefix("opts.get('mode') != ") {
                return Some(value.trim_matches('\'') != "normal");
            }
            if let Some(value) = term.strip_prefix("name == ") {
                return Some(value.trim_matches('\'') == filter);
            }
            None
        })
        .try_fold(true, |all, term| term.map(|holds| all && holds))
}

/// The normal-mode expectations of one fail2ban test log, and how many annotated lines were
/// left out because of a constraint this reader cannot evaluate.
fn read_expectations(path: &Path, filter: &str) -> (Vec<Expectation>, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut normal = true;
    let mut pending: Option<serde_json::Value> = None;
    let mut expectations = Vec::new();
    let mut unknown_constraints = 0;
    for line in text.lines() {
        if let Some(options) = line.strip_prefix("# filterOptions:") {
            let options: serde_json::Value = serde_json::from_str(options.trim())
                .unwrap_or_else(|e| panic!("filterOptions {options:?}: {e}"));
            normal = includes_normal_mode(&options);
            continue;
        }
        if let Some(json) = line.strip_prefix("# failJSON:") {
            pending = Some(
                serde_json::from_str(json.trim())
                    .unwrap_or_else(|e| panic!("failJSON {json:?}: {e}")),
            );
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some(expected) = pending.take() else {
            continue;
        };
        if !normal {
            continue;
        }
        if let Some(constraint) = expected.get("constraint").and_then(|c| c.as_str()) {
            match constraint_holds(constraint, filter) {
                Some(true) => {}
                Some(false) => continue,
                None => {
                    unknown_constraints += 1;
                    continue;
                }
            }
        }
        let failure = expected["match"] == true;
        let address = expected
            .get("host")
            .and_then(|h| h.as_str())
            .and_then(|h| h.parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical());
        expectations.push(Expectation {
            line: line.to_string(),
            failure,
            address,
        });
    }
    (expectations, unknown_constraints)
}

fn text_of(event: &serde_json::Value, name: &str) -> Option<String> {
    event[name].as_str().map(str::to_string)
}

fn session_of(event: &serde_json::Value) -> Option<(String, String, u64)> {
    Some((
        text_of(event, "host").unwrap_or_default(),
        text_of(event, "app").unwrap_or_default(),
        event["pid"].as_u64()?,
    ))
}

fn is_failure(event: &serde_json::Value) -> bool {
    event["kind"] == "auth.failure"
}

fn address_of(event: &serde_json::Value) -> Option<IpAddr> {
    text_of(event, "src_ip")?.parse().ok()
}

/// The score of one test log.
struct Score {
    /// Failure lines naming an IP that secpipe reports with that IP (line or session).
    caught: usize,
    /// Of those, the ones reported on the line itself.
    caught_on_the_line: usize,
    failures_with_address: usize,
    /// No-failure lines that are an auth.failure held against an address in a session where
    /// fail2ban reports no failure.
    false_alarms: usize,
    /// No-failure lines that are an auth.failure, whatever the session.
    failure_kind_lines: usize,
    no_failures: usize,
    misses: Vec<String>,
    alarms: Vec<String>,
}

fn score(expectations: &[Expectation]) -> Score {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("log");
    let mut text = String::new();
    for expectation in expectations {
        text.push_str(&expectation.line);
        text.push('\n');
    }
    std::fs::write(&input, text).expect("write input");
    let out = run_ok(&[
        "events",
        "--tz",
        "UTC",
        "--year",
        "2005",
        input.to_str().expect("path"),
    ]);
    let events = json_lines(&out.stdout);
    assert_eq!(events.len(), expectations.len(), "one event per line");
    let counted = addresses_with_counted_attempts(dir.path(), &input);

    let mut sessions: HashMap<(String, String, u64), Vec<usize>> = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        if let Some(key) = session_of(event) {
            sessions.entry(key).or_default().push(index);
        }
    }
    let members = |event: &serde_json::Value| -> &[usize] {
        session_of(event)
            .and_then(|key| sessions.get(&key))
            .map_or(&[], Vec::as_slice)
    };
    let mut score = Score {
        caught: 0,
        caught_on_the_line: 0,
        failures_with_address: 0,
        false_alarms: 0,
        failure_kind_lines: 0,
        no_failures: 0,
        misses: Vec::new(),
        alarms: Vec::new(),
    };
    let mut restated_alarms = std::collections::HashSet::new();
    for (expectation, event) in expectations.iter().zip(&events) {
        let shown = || {
            format!(
                "{}  → kind={} reason={} src_ip={}",
                expectation.line, event["kind"], event["reason"], event["src_ip"]
            )
        };
        if !expectation.failure {
            score.no_failures += 1;
            if !is_failure(event) {
                continue;
            }
            score.failure_kind_lines += 1;
            let session = members(event);
            let fail2ban_reports_the_session = session.iter().any(|&i| expectations[i].failure);
            let blamed = address_of(event).is_some()
                || session.iter().any(|&i| address_of(&events[i]).is_some());
            // A session's second PAM line for the same attempt (pam_unix writes it again from
            // the privilege-separated child, `… [preauth]`, in the same second) restates it:
            // detection counts attempts, not lines (DESIGN section 3; an attempt already open
            // counts nothing more), so it is one false alarm, not two.
            let restated = !restated_alarms.insert((
                session_of(event),
                address_of(event),
                event["ts"].to_string(),
            )) && session_of(event).is_some();
            // Detection counts attempts, not lines: a PAM failure whose session then logs in as
            // the same user (pam_unix failed, the next PAM module accepted) counts nothing.
            let held = session
                .iter()
                .filter_map(|&i| address_of(&events[i]))
                .chain(address_of(event))
                .any(|address| counted.contains(&address));
            if blamed && held && !fail2ban_reports_the_session && !restated {
                score.false_alarms += 1;
                score.alarms.push(shown());
            }
            continue;
        }
        let Some(address) = expectation.address else {
            continue;
        };
        score.failures_with_address += 1;
        let on_the_line = is_failure(event) && address_of(event) == Some(address);
        let in_the_session = || {
            let members = members(event);
            let failure_here = members.iter().any(|&i| {
                is_failure(&events[i])
                    && address_of(&events[i]).is_none_or(|other| other == address)
            });
            let address_here = members
                .iter()
                .any(|&i| address_of(&events[i]) == Some(address));
            failure_here && address_here
        };
        if on_the_line {
            score.caught_on_the_line += 1;
        }
        if on_the_line || in_the_session() {
            score.caught += 1;
        } else {
            score.misses.push(shown());
        }
    }
    score
}

/// The addresses `secpipe run` counts at least one login attempt toward (a rule that fires at
/// the first attempt): what detection holds against an address, after session binding and
/// forgiveness, rather than what each line says.
fn addresses_with_counted_attempts(dir: &Path, input: &Path) -> std::collections::HashSet<IpAddr> {
    let config = dir.join("score.toml");
    std::fs::write(
        &config,
        "[rules.\"score.any_attempt\"]\nprimitive = \"count\"\nkinds = [\"auth.failure\"]\n\
         attempts = true\nkey = \"src_ip\"\nthreshold = 1\nwindow = \"1s\"\nseverity = \"LOW\"\n",
    )
    .expect("write config");
    let out = run_ok(&[
        "--config",
        config.to_str().expect("path"),
        "--tz",
        "UTC",
        "--year",
        "2005",
        input.to_str().expect("path"),
    ]);
    json_lines(&out.stdout)
        .iter()
        .filter(|alert| alert["rule"] == "score.any_attempt")
        .filter_map(|alert| alert["key"]["value"].as_str()?.parse().ok())
        .collect()
}

impl Score {
    /// Issue 9's bar: at least `min_lines` failure lines scored (fewer means the failJSON
    /// reader broke), ≥ 98 % of them caught, ≤ 6 % false alarms.
    fn meets_the_bar(&self, min_lines: usize) {
        assert!(
            self.failures_with_address >= min_lines,
            "too few scored lines ({}): did the failJSON reader break?",
            self.failures_with_address
        );
        assert!(
            percent(self.caught, self.failures_with_address) >= 98.0,
            "recall below 98 % (misses printed above)"
        );
        assert!(
            percent(self.false_alarms, self.no_failures) <= 6.0,
            "false alarms above 6 % (printed above)"
        );
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// Scores one fail2ban test log, prints the score and every miss, and returns it; `None` (with a
/// printed reason) when fail2ban's files are not installed.
fn scored(file: &str, filter: &str) -> Option<Score> {
    let path = PathBuf::from(FAIL2BAN_LOGS).join(file);
    if !path.exists() {
        println!(
            "SKIPPED: {} is absent; install Debian's fail2ban (tests/run-all.sh does) to score \
             secpipe on fail2ban's own {filter} test log",
            path.display()
        );
        return None;
    }
    let (expectations, unknown) = read_expectations(&path, filter);
    let score = score(&expectations);
    println!(
        "fail2ban {file} (normal mode): {}/{} failure lines with an IP caught ({:.1} %; {} on the \
         line itself), \
         {}/{} no-failure lines are false alarms ({:.1} %; per line, {} are auth.failure: \
         {:.1} %); {unknown} lines with an unknown constraint left out",
        score.caught,
        score.failures_with_address,
        percent(score.caught, score.failures_with_address),
        score.caught_on_the_line,
        score.false_alarms,
        score.no_failures,
        percent(score.false_alarms, score.no_failures),
        score.failure_kind_lines,
        percent(score.failure_kind_lines, score.no_failures),
    );
    for miss in &score.misses {
        println!("  missed: {miss}");
    }
    for alarm in &score.alarms {
        println!("  false alarm: {alarm}");
    }
    Some(score)
}

#[test]
fn fail2ban_sshd_test_log_meets_the_bar() {
    let Some(score) = scored("sshd", "sshd") else {
        return;
    };
    score.meets_the_bar(50);
}

#[test]
fn fail2ban_dropbear_test_log_meets_the_bar() {
    let Some(score) = scored("dropbear", "dropbear") else {
        return;
    };
    score.meets_the_bar(5);
}

#[test]
fn constraints_are_read_for_normal_mode() {
    assert_eq!(
        constraint_holds("opts.get('mode') != 'aggressive'", "sshd"),
        Some(true)
    );
    assert_eq!(
        constraint_holds("opts.get('mode') == 'aggressive'", "sshd"),
        Some(false)
    );
    assert_eq!(constraint_holds("name == 'sshd'", "sshd"), Some(true));
    assert_eq!(constraint_holds("name == 'sshd'", "dropbear"), Some(false));
    assert_eq!(constraint_holds("something else", "sshd"), None);
    assert!(includes_normal_mode(
        &serde_json::json!([{}, {"mode": "aggressive"}])
    ));
    assert!(!includes_normal_mode(
        &serde_json::json!([{"mode": "ddos"}, {"mode": "aggressive"}])
    ));
    assert!(includes_normal_mode(
        &serde_json::json!({"test.condition": "name=='sshd'", "logtype": "rfc5424"})
    ));
}
