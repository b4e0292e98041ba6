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

/// A flag that needs another (`--key` needs `--archive`) given on the command line while the
/// other is in the file: the file's half counts, as for any other flag. Clap's `requires`
/// refused this before the file was even read.
#[test]
fn a_flag_on_the_command_line_may_need_a_flag_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("archive.key");
    run_ok(&["keygen", "--out", &key.display().to_string()]);
    let config = write(dir.path(), "secpipe.toml", "[run]\narchive = \"archive\"\n");
    let attacks = fixture("sample/attacks.log").display().to_string();
    let out = secpipe()
        .args(["--config", &config, "--key", &key.display().to_string()])
        .args([
            "--alerts",
            &dir.path().join("a.jsonl").display().to_string(),
        ])
        .arg(&attacks)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("archive").is_dir());
}

/// The other way round: a key in the file whose partner is nowhere (`key` without `archive`,
/// `edge_id` without `emit` …) would be silently ignored, an archive the operator believes
/// signed that does not exist. It is a mistake at its place in the file.
#[test]
fn a_key_whose_partner_flag_is_missing_is_a_mistake_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k"), b"").unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "[run]\nkey = \"k\"\n",
            "secpipe.toml:2:7: [run] key: needs --archive",
        ),
        (
            "[run]\nfollow = true\nspool = \"sp\"\n",
            "secpipe.toml:3:9: [run] spool: needs --archive",
        ),
        (
            "[run]\njournal_dir = \"j\"\n",
            "secpipe.toml:2:15: [run] journal_dir: needs --journal",
        ),
        (
            "[run]\nedge_id = \"e1\"\n",
            "secpipe.toml:2:11: [run] edge_id: needs --emit",
        ),
        (
            "[run]\nnats_partitions = 3\n",
            "secpipe.toml:2:19: [run] nats_partitions: needs --emit",
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
    // On the command line alone it is refused too.
    let out = secpipe()
        .args(["--edge-id", "e1"])
        .write_stdin("")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--edge-id needs --emit"), "{err}");
}

/// The files an `[[alerts]]` destination reads (a webhook's `secret_file` and `header_files`)
/// are the config file's directory's, like every other relative path in it: systemd starts
/// the service in `/`, where `hook.secret` is not. They were the working directory's, and a
/// service whose config worked in its directory failed to start.
#[test]
fn the_files_an_alert_destination_reads_are_the_config_directorys() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook.secret"), "s3cret\n").unwrap();
    std::fs::write(dir.path().join("hook.auth"), "Bearer abc\n").unwrap();
    let config = write(
        dir.path(),
        "secpipe.toml",
        r#"
[[alerts]]
to = "http://127.0.0.1:9/hook"
webhook = { secret_file = "hook.secret", header_files = { Authorization = "hook.auth" } }
"#,
    );
    let out = secpipe()
        .current_dir("/")
        .args(["--config", &config])
        .write_stdin("")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("No such file"), "{err}");
}

/// A limit that checks two flags at once ("--roll-rows and --roll-secs must be at least 1")
/// started its message with the first flag, so a mistake in the second one's key was reported
/// nowhere in the file. Each is now reported at its own key.
#[test]
fn a_mistake_in_the_second_of_two_related_keys_is_reported_at_that_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "[run]\nreorder_buffer_mib = 0\n",
            "secpipe.toml:2:22: [run] reorder_buffer_mib: must be at least 1",
        ),
        (
            "[run]\nreorder_buffer_events = 0\n",
            "secpipe.toml:2:25: [run] reorder_buffer_events: must be at least 1",
        ),
        (
            "[run]\narchive = \"a\"\nroll_secs = 0\n",
            "secpipe.toml:3:13: [run] roll_secs: must be at least 1",
        ),
        (
            "[run]\narchive = \"a\"\nroll_rows = 0\n",
            "secpipe.toml:3:13: [run] roll_rows: must be at least 1",
        ),
        (
            "[run]\ntls_key = \"k.pem\"\n",
            "secpipe.toml:2:11: [run] tls_key: needs --tls-cert",
        ),
        (
            "[run]\ntls_cert = \"c.pem\"\n",
            "secpipe.toml:2:12: [run] tls_cert: needs --tls-key",
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
        // The report wraps long messages: compare them on one line.
        let flat = err
            .lines()
            .map(|l| l.trim().trim_start_matches('│').trim())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            flat.contains(expected),
            "{text}: expected {expected:?} in\n{err}"
        );
    }
}

/// `config check` lists the rules that will run: a rule the file disables is not among them
/// (it was, so a check of a file that had turned auth.bruteforce off still showed it running),
/// and is named as disabled.
#[test]
fn config_check_does_not_count_a_disabled_rule_as_running() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "secpipe.toml",
        "[rules.\"auth.bruteforce\"]\nenabled = false\n",
    );
    let out = secpipe()
        .args(["config", "check", &config])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let rules = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("rules:"))
        .unwrap_or_default();
    assert!(rules.contains("rules: 12 ("), "{stdout}");
    assert!(!rules.contains("auth.bruteforce,"), "{stdout}");
    assert!(stdout.contains("disabled: auth.bruteforce"), "{stdout}");
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

/// `config check` refuses what `run` would refuse before reading anything: a journal match
/// that is not FIELD=VALUE, a metrics address that is not one, an archive key or a TLS
/// certificate that is not one. They were checked only when the run was built, so the check
/// said "ok" about a file the service then failed to start with (and the run put a bad key's
/// message at `archive`).
#[test]
fn config_check_refuses_what_the_run_would_refuse_at_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "[run]\njournal = [\"no-equals\"]\n",
            "secpipe.toml:2:11: [run] journal:",
        ),
        (
            "[run]\nmetrics = \"nope\"\n",
            "secpipe.toml:2:11: [run] metrics: nope:",
        ),
        // A key or certificate that opens but is not one.
        (
            "[run]\narchive = \"a\"\nkey = \"garbage.pem\"\n",
            "secpipe.toml:3:7: [run] key:",
        ),
        (
            "[run]\nlisten = [\"syslog+tls://127.0.0.1:6514\"]\ntls_cert = \"garbage.pem\"\ntls_key = \"garbage.pem\"\n",
            "secpipe.toml:3:12: [run] tls_cert:",
        ),
    ];
    std::fs::write(dir.path().join("garbage.pem"), "not a PEM file\n").unwrap();
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
fn a_journal_dir_that_is_not_there_is_refused_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "secpipe.toml",
        "[run]\njournal = []\njournal_dir = \"remote\"\n",
    );
    let out = secpipe()
        .args(["config", "check", &config])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("secpipe.toml:3:15: [run] journal_dir:"),
        "{err}"
    );
    std::fs::create_dir(dir.path().join("remote")).unwrap();
    run_ok(&["config", "check", &config]);
}
