//! `secpipe.toml` holds what the flags hold (`[run]`, `[block] mode`, `[[alerts]]`), flags win
//! over it, and `secpipe config check FILE` says what it sets up or where it is wrong.

mod common;
use common::*;

use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Sorted alert ids of a JSON-lines file.
fn alert_ids(path: &Path) -> Vec<String> {
    let mut ids: Vec<String> = json_lines(&std::fs::read(path).unwrap_or_default())
        .iter()
        .filter_map(|a| a["id"].as_str().map(String::from))
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_run_from_the_config_file_alone_gives_the_alerts_of_the_same_flags() {
    let dir = tempfile::tempdir().unwrap();
    let attacks = fixture("sample/attacks.log").display().to_string();
    // Relative paths are the config's directory's: the run starts elsewhere.
    let config = write(
        dir.path(),
        "secpipe.toml",
        &format!(
            r#"
[run]
inputs = ["{attacks}"]
tz = "UTC"
year = 2026
lateness = "5s"
archive = "archive"

[[alerts]]
to = "from-config.jsonl"
"#
        ),
    );
    let out = secpipe()
        .current_dir("/")
        .args(["--config", &config])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_config = alert_ids(&dir.path().join("from-config.jsonl"));
    assert!(
        dir.path().join("archive").is_dir(),
        "the archive is the config's archive/"
    );

    let flags_out = dir.path().join("from-flags.jsonl");
    run_ok(&[
        "--tz",
        "UTC",
        "--year",
        "2026",
        "--lateness",
        "5s",
        "--alerts",
        &flags_out.display().to_string(),
        &attacks,
    ]);
    let from_flags = alert_ids(&flags_out);
    assert!(from_flags.len() >= 10, "{from_flags:?}");
    assert_eq!(from_config, from_flags);
}

#[test]
fn a_flag_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let attacks = fixture("sample/attacks.log").display().to_string();
    // In the file, a lateness that is not a duration: the flag replaces it before it is
    // checked, so the run works; so does the INPUT over the file's inputs.
    let config = write(
        dir.path(),
        "secpipe.toml",
        "[run]\ninputs = [\"/nonexistent.log\"]\nlateness = \"never\"\ntz = \"UTC\"\n",
    );
    let out = secpipe()
        .args([
            "--config",
            &config,
            "--lateness",
            "5s",
            "--year",
            "2026",
            &attacks,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!json_lines(&out.stdout).is_empty());
    // The same under the `run` subcommand, whose flags clap keeps apart.
    let out = secpipe()
        .args([
            "run",
            "--config",
            &config,
            "--lateness",
            "5s",
            "--year",
            "2026",
            &attacks,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!json_lines(&out.stdout).is_empty());
    // Without the flag, the file's value is used, and is an error at its place.
    let out = secpipe().args(["--config", &config]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("secpipe.toml:3:12: [run] lateness: never"),
        "{err}"
    );
}

#[test]
fn config_check_summarises_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "secpipe.toml",
        r#"
[run]
follow = true
inputs = ["auth.log"]
state = "state"
listen = ["syslog+udp://127.0.0.1:5514"]

[block]
mode = "simulate"

[[alerts]]
to = "alerts.jsonl"

[rules."auth.bruteforce"]
threshold = 3
"#,
    );
    let out = secpipe()
        .args(["config", "check", &config])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(": ok"), "{stdout}");
    assert!(stdout.contains("auth.log (followed)"), "{stdout}");
    assert!(stdout.contains("syslog+udp://127.0.0.1:5514"), "{stdout}");
    assert!(stdout.contains("block: simulate"), "{stdout}");
    assert!(stdout.contains("alerts.jsonl"), "{stdout}");
    // Nothing was opened or created: no state directory, no alerts file.
    assert!(!dir.path().join("state").exists());
    assert!(!dir.path().join("alerts.jsonl").exists());
    // The input does not exist yet: a warning, not an error.
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn config_check_points_at_each_kind_of_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        // toml syntax
        ("[run\nfollow = true\n", "secpipe.toml:1:5"),
        // an unknown key, with the closest one
        (
            "[run]\nlisten = []\nfolow = true\n",
            "secpipe.toml:3:1: unknown field `folow`",
        ),
        // a value a flag would refuse
        (
            "[run]\nmax_line = 0\n",
            "secpipe.toml:2:12: [run] max_line: must be at least 1",
        ),
        (
            "[run]\ntz = \"Mars/Olympus\"\n",
            "secpipe.toml:2:6: [run] tz: Mars/Olympus",
        ),
        (
            "[run]\nlisten = [\"syslog+tcp://nowhere\"]\n",
            "secpipe.toml:2:10: [run] listen:",
        ),
        (
            "[run]\nkey = \"missing.key\"\narchive = \"a\"\n",
            "secpipe.toml:2:7: [run] key:",
        ),
        // a rule, a destination and a block setting: their own loaders, same form
        (
            "[rules.\"auth.bruteforce\"]\nthreshold = \"five\"\n",
            "secpipe.toml:2:13",
        ),
        ("[[alerts]]\nto = \"ftp://x\"\n", "secpipe.toml:2:"),
        (
            "[block]\nmode = \"simulate\"\nmax_per_minut = 5\n",
            "secpipe.toml:3:1",
        ),
    ];
    for (text, expected) in cases {
        let config = write(dir.path(), "secpipe.toml", text);
        let out = secpipe()
            .args(["config", "check", &config])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(
            err.contains(expected),
            "{text}: expected {expected:?} in\n{err}"
        );
    }
}

#[test]
fn the_other_commands_that_read_the_config_accept_its_run_table() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "secpipe.toml",
        "[run]\nfollow = true\n\n[block]\nmode = \"simulate\"\n\n[rules.\"auth.bruteforce\"]\nthreshold = 7\n",
    );
    let out = run_ok(&["rules", "--config", &config]);
    assert!(String::from_utf8_lossy(&out.stdout).contains('7'));
}

#[test]
fn the_packaged_default_config_checks_and_reads_the_journal_not_stdin() {
    let packaged = root().join("packaging/secpipe.toml").display().to_string();
    let out = run_ok(&["config", "check", &packaged]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("inputs: the journal\n"), "{stdout}");
    assert!(stdout.contains("state: /var/lib/secpipe"), "{stdout}");
    assert!(!stdout.contains("alerts to: stdout"), "{stdout}");
}
