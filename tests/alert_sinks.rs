//! Alerts go to every `--alerts` output; one that fails (a full disk) is reported and left out,
//! and the others still get every alert (issue 12, part 4).

mod common;
use common::*;

fn sample() -> String {
    fixture("sample/attacks.log")
        .to_str()
        .expect("UTF-8 path")
        .to_string()
}

#[test]
fn every_output_gets_every_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.jsonl");
    let b = dir.path().join("b.jsonl");
    let out = secpipe()
        .args(["--tz", "UTC", "--alerts"])
        .arg(&a)
        .arg("--alerts")
        .arg(&b)
        .arg(sample())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = std::fs::read(&a).expect("a");
    assert!(!json_lines(&a).is_empty(), "the sample has attacks");
    assert_eq!(
        a,
        std::fs::read(&b).expect("b"),
        "both outputs got the same alerts"
    );
}

#[test]
fn a_full_disk_on_one_output_does_not_silence_the_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("alerts.jsonl");
    let alone = run_ok(&["--tz", "UTC", &sample()]);
    let out = secpipe()
        .args(["--tz", "UTC", "--alerts", "/dev/full", "--alerts"])
        .arg(&good)
        .arg(sample())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "one output still works: {stderr}");
    assert_eq!(
        std::fs::read(&good).expect("alerts"),
        alone.stdout,
        "{stderr}"
    );
    assert!(
        stderr.contains("/dev/full"),
        "the failure is reported: {stderr}"
    );
    assert!(
        stderr.contains("alerts not delivered to /dev/full"),
        "{stderr}"
    );
}

#[test]
fn when_the_only_output_fails_the_run_fails() {
    let out = secpipe()
        .args(["--tz", "UTC", "--alerts", "/dev/full"])
        .arg(sample())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("No space left"), "{stderr}");
}

#[test]
fn one_output_named_twice_is_a_usage_error() {
    let out = secpipe()
        .args(["--alerts", "x.jsonl", "--alerts", "x.jsonl", "/dev/null"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("named twice"));
}

/// The same output spelled two ways is still one output: two writers on it would each
/// truncate it and write from their own offset, and on stdout every alert would come twice
/// (a blocker fed by the pipe would act on each alert twice).
#[test]
fn one_output_spelled_two_ways_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    for spellings in [
        ["x.jsonl", "./x.jsonl"],
        ["x.jsonl", "sub/../x.jsonl"],
        ["-", "/dev/stdout"],
    ] {
        std::fs::create_dir_all(dir.path().join("sub")).expect("mkdir");
        let out = secpipe()
            .current_dir(dir.path())
            .args([
                "--alerts",
                spellings[0],
                "--alerts",
                spellings[1],
                "/dev/null",
            ])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spellings:?}: {stderr}");
        assert!(stderr.contains("named twice"), "{spellings:?}: {stderr}");
    }
}

/// `secpipe … | head -c0`: a reader that goes away is not a failure (exit 0), and stderr says
/// the output was closed, not that it may have failed.
#[test]
fn a_closed_output_is_reported_as_closed_not_failed() {
    // A pipe whose reader is gone before secpipe starts: every write meets EPIPE.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .env("TZ", "UTC")
        .args(["--tz", "UTC"])
        .arg(sample())
        .stdout(writer)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("alerts not delivered to stdout"))
        .unwrap_or_else(|| panic!("no undelivered line: {stderr}"));
    assert!(line.ends_with(": it was closed"), "{line}");
}

/// `[[alerts]]` in the config file: each destination takes the alerts at or above its own
/// severity floor; a config that names destinations replaces the default stdout, and
/// `--alerts` adds to them.
#[test]
fn config_file_destinations_take_alerts_at_their_own_floor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pager = dir.path().join("pager.jsonl");
    let all = dir.path().join("all.txt");
    let config = dir.path().join("secpipe.toml");
    std::fs::write(
        &config,
        format!(
            "[[alerts]]\nto = {pager:?}\nmin_severity = \"high\"\n\n\
             [[alerts]]\nto = {all:?}\nformat = \"text\"\n",
            pager = pager.display().to_string(),
            all = all.display().to_string(),
        ),
    )
    .expect("config");
    let out = secpipe()
        .args(["--tz", "UTC", "--config"])
        .arg(&config)
        .arg(sample())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "the config named the destinations");
    let every = alerts_for(&[&fixture("sample/attacks.log")]);
    let severe: Vec<&serde_json::Value> = every
        .iter()
        .filter(|a| matches!(a["severity"].as_str(), Some("HIGH" | "CRITICAL")))
        .collect();
    assert!(
        !severe.is_empty() && severe.len() < every.len(),
        "the sample mixes severities"
    );
    let paged = json_lines(&std::fs::read(&pager).expect("pager file"));
    let ids = |alerts: &[&serde_json::Value]| -> Vec<String> {
        alerts.iter().map(|a| a["id"].to_string()).collect()
    };
    assert_eq!(ids(&paged.iter().collect::<Vec<_>>()), ids(&severe));
    let text = std::fs::read_to_string(&all).expect("text file");
    for alert in &every {
        let id = alert["id"].as_str().expect("id");
        assert!(
            text.contains(id),
            "{id} missing from the text output:\n{text}"
        );
    }

    // `--alerts -` adds stdout to the config's destinations.
    let out = secpipe()
        .args(["--tz", "UTC", "--alerts", "-", "--config"])
        .arg(&config)
        .arg(sample())
        .output()
        .expect("run");
    assert_eq!(json_lines(&out.stdout).len(), every.len());
}

/// A misspelt key in an `[[alerts]]` table is an error at its line and column, not a
/// setting silently ignored (a pager that never pages).
#[test]
fn a_misspelt_alerts_key_is_a_usage_error_at_its_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("secpipe.toml");
    std::fs::write(&config, "[[alerts]]\nto = \"-\"\nmin_severty = \"high\"\n").expect("config");
    let out = secpipe()
        .arg("--config")
        .arg(&config)
        .arg("/dev/null")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("secpipe.toml:3:1"), "{stderr}");
    assert!(stderr.contains("min_severity"), "{stderr}");
}

/// A service restarted writes on after the alerts of its earlier runs: the file is its alert
/// log. (It was emptied at every start, so a restart lost them.)
#[test]
fn an_alerts_file_is_appended_to_not_emptied_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alerts.jsonl");
    let sample = fixture("sample/attacks.log");
    let run = || {
        secpipe()
            .args(["--tz", "UTC", "--year", "2026", "--alerts"])
            .arg(&out)
            .arg(&sample)
            .output()
            .unwrap()
    };
    assert!(run().status.success());
    let first = json_lines(&std::fs::read(&out).unwrap()).len();
    assert!(first > 0);
    assert!(run().status.success());
    assert_eq!(json_lines(&std::fs::read(&out).unwrap()).len(), 2 * first);
}
