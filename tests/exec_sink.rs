//! `--alerts exec:/path`: the built binary runs a small recorder script for every alert (issue
//! 13, the exec sink). The attack: log lines whose user name is shell code or an option. It
//! must reach the program only inside the JSON on stdin — never as an argument, never run.

mod common;
mod live_support;

use std::path::{Path, PathBuf};

use common::*;

/// Names an attacker can log in with (JSON logs take any string), each of which would do
/// harm if it reached a shell or an argument list. `{dir}` is the test's directory, so a
/// payload that ran would leave a file there.
const HOSTILE: &[&str] = &[
    "$(touch {dir}/pwned-subst)",
    "; touch {dir}/pwned-semicolon",
    "`touch {dir}/pwned-backtick`",
    "| touch {dir}/pwned-pipe",
    "--help",
    "-rf /",
    "x\ny'\"$IFS*",
];

/// An executable shell script in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// One successful login per hostile name at 03:00 UTC: `auth.night_login` (keyed by user)
/// fires once for each.
fn hostile_logins(dir: &Path) -> (PathBuf, Vec<String>) {
    let names: Vec<String> = HOSTILE
        .iter()
        .map(|n| n.replace("{dir}", &dir.display().to_string()))
        .collect();
    let mut log = String::new();
    for (i, name) in names.iter().enumerate() {
        let line = serde_json::json!({
            "ts": format!("2026-11-23T03:{i:02}:00Z"),
            "event": "login_success",
            "user": name,
            "ip": format!("192.0.2.{}", i + 1),
        });
        log.push_str(&line.to_string());
        log.push('\n');
    }
    let path = dir.join("logins.jsonl");
    std::fs::write(&path, log).expect("write log");
    (path, names)
}

#[test]
fn a_hostile_key_reaches_the_program_only_as_json_on_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = dir.path().join("runs");
    std::fs::create_dir(&runs).expect("runs dir");
    // Records, per run: its arguments (one per line), its environment and its stdin.
    let program = script(
        dir.path(),
        "record",
        &format!(
            r#"run="{runs}/$$"
printf '%s\n' "$#" "$@" > "$run.argv"
env > "$run.env"
cat > "$run.stdin""#,
            runs = runs.display()
        ),
    );
    let (log, names) = hostile_logins(dir.path());
    let exec = format!("exec:{}", program.display());
    let out = run_ok(&[
        "--tz",
        "UTC",
        "--alerts",
        "-",
        "--alerts",
        &exec,
        log.to_str().expect("UTF-8 path"),
    ]);
    let alerts = json_lines(&out.stdout);
    let night: Vec<&serde_json::Value> = alerts
        .iter()
        .filter(|a| a["rule"] == "auth.night_login")
        .collect();
    assert_eq!(night.len(), names.len(), "one alert per hostile name");

    let mut keys_seen = Vec::new();
    let mut ids_seen = Vec::new();
    for entry in std::fs::read_dir(&runs).expect("runs") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("stdin") {
            continue;
        }
        let stdin = std::fs::read_to_string(&path).expect("stdin");
        assert!(
            stdin.ends_with('\n') && stdin.lines().count() == 1,
            "{stdin:?}"
        );
        let alert: serde_json::Value = serde_json::from_str(&stdin).expect("JSON on stdin");
        let argv = std::fs::read_to_string(path.with_extension("argv")).expect("argv");
        assert_eq!(argv, "0\n", "no argument at all, whatever the key");
        let env = std::fs::read_to_string(path.with_extension("env")).expect("env");
        let mut names: Vec<&str> = env
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            // Set by /bin/sh itself for the script, not given by secpipe.
            .filter(|k| *k != "PWD")
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "PATH",
                "SECPIPE_ALERT_ID",
                "SECPIPE_RULE",
                "SECPIPE_SEVERITY"
            ],
            "{env}"
        );
        assert!(env.contains(&format!(
            "SECPIPE_ALERT_ID={}\n",
            alert["id"].as_str().expect("id")
        )));
        assert!(env.contains(&format!(
            "SECPIPE_RULE={}\n",
            alert["rule"].as_str().expect("rule")
        )));
        assert!(
            !env.contains("pwned") && !env.contains("--help"),
            "the key is not in the env: {env}"
        );
        if alert["rule"] == "auth.night_login" {
            keys_seen.push(alert["key"]["value"].as_str().expect("key").to_string());
        }
        ids_seen.push(alert["id"].as_str().expect("id").to_string());
    }
    keys_seen.sort();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(keys_seen, expected, "each key arrived intact, as data");
    assert_eq!(ids_seen.len(), alerts.len(), "one run per alert");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pwned"))
        .collect();
    assert!(leftovers.is_empty(), "a payload ran: {leftovers:?}");
}

/// A program that always fails: each alert is tried (default 3 runs), then reported on stderr
/// with the program's status and what it wrote, and counted as not delivered.
#[test]
fn a_program_that_keeps_failing_is_reported_and_its_alerts_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let program = script(
        dir.path(),
        "refuse",
        "cat > /dev/null; echo 'pager API said 503' >&2; exit 3",
    );
    let log = dir.path().join("one.jsonl");
    std::fs::write(
        &log,
        "{\"ts\":\"2026-11-23T03:00:00Z\",\"event\":\"login_success\",\"user\":\"bob\",\"ip\":\"192.0.2.1\"}\n",
    )
    .expect("write log");
    let exec = format!("exec:{}", program.display());
    let out = run_ok(&[
        "--tz",
        "UTC",
        "--drain-timeout",
        "1m",
        "--alerts",
        "-",
        "--alerts",
        &exec,
        log.to_str().expect("UTF-8 path"),
    ]);
    let alerts = json_lines(&out.stdout);
    assert_eq!(alerts.len(), 1, "the other sink still got the alert");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not delivered after 3 runs: exit status 3; stderr: pager API said 503"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("1 of 1 alerts not delivered to {exec}")),
        "{stderr}"
    );
}

#[test]
fn a_relative_or_missing_program_is_refused_at_the_start() {
    let out = run_stdin(&["--alerts", "exec:page-oncall"], Vec::new());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("absolute path"), "{stderr}");
    let out = run_stdin(&["--alerts", "exec:/nonexistent/page-oncall"], Vec::new());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/page-oncall"), "{stderr}");
}

/// A program still running when secpipe gives up at the drain limit and exits is not left
/// behind: it dies with secpipe, long before its own timeout (10 s) or its end.
#[test]
fn a_program_still_running_when_secpipe_exits_dies_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("program.pid");
    let program = script(
        dir.path(),
        "linger",
        &format!("echo $$ > {}\nexec sleep 1000", pid_file.display()),
    );
    let log = dir.path().join("one.jsonl");
    std::fs::write(
        &log,
        "{\"ts\":\"2026-11-23T03:00:00Z\",\"event\":\"login_success\",\"user\":\"bob\",\"ip\":\"192.0.2.1\"}\n",
    )
    .expect("write log");
    let exec = format!("exec:{}", program.display());
    let out = run_ok(&[
        "--tz",
        "UTC",
        "--drain-timeout",
        "1s",
        "--alerts",
        "-",
        "--alerts",
        &exec,
        log.to_str().expect("UTF-8 path"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("1 of 1 alerts not delivered to {exec}")),
        "{stderr}"
    );
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("the program ran")
        .trim()
        .parse()
        .expect("a pid");
    // Gone (or a zombie waiting for init) once secpipe has exited.
    live_support::wait_for("the program to die with secpipe", || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        (stat.is_empty() || stat.split(' ').nth(2) == Some("Z")).then_some(())
    });
}

/// The config file's `exec = { args = […], timeout = … }` gives the program its arguments (the
/// only way it gets any) and a timeout: a run past it is killed and counted, and the next
/// alert's run is made.
#[test]
fn configured_arguments_and_timeout_come_from_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = dir.path().join("runs");
    std::fs::create_dir(&runs).expect("runs dir");
    // The first run hangs (killed at the timeout); the others record their arguments.
    let program = script(
        dir.path(),
        "record",
        &format!(
            r#"if mkdir "{runs}/first" 2>/dev/null; then sleep 600; fi
printf '%s\n' "$@" > "{runs}/$$.argv""#,
            runs = runs.display()
        ),
    );
    let config = dir.path().join("secpipe.toml");
    std::fs::write(
        &config,
        format!(
            "[[alerts]]\nto = \"exec:{}\"\nexec = {{ args = [\"--team\", \"sec ops\"], timeout = \"1s\", attempts = 1 }}\n\n\
             [[alerts]]\nto = \"-\"\n",
            program.display()
        ),
    )
    .expect("config");
    let (log, _names) = hostile_logins(dir.path());
    let out = secpipe()
        .args(["--tz", "UTC", "--drain-timeout", "30s", "--config"])
        .arg(&config)
        .arg(&log)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let alerts = json_lines(&out.stdout);
    assert_eq!(alerts.len(), HOSTILE.len());
    let recorded: Vec<String> = std::fs::read_dir(&runs)
        .expect("runs")
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "argv").then(|| std::fs::read_to_string(path).ok())?
        })
        .collect();
    // Every alert but the one whose run was killed.
    assert_eq!(recorded.len(), HOSTILE.len() - 1, "{stderr}");
    for argv in &recorded {
        assert_eq!(argv, "--team\nsec ops\n");
    }
    assert!(
        stderr.contains(&format!("1 of {} alerts not delivered", HOSTILE.len())),
        "{stderr}"
    );
}
