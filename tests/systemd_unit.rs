//! Issue 17: the shipped systemd unit (`packaging/secpipe.service`) is hardened and valid, with
//! and without the blocking drop-in (`packaging/blocking.conf`), and the default config
//! (`packaging/secpipe.toml`) writes only where the unit lets it.
//!
//! The judge is systemd's own `systemd-analyze` (Debian 12: systemd 252): `security
//! --offline=yes` scores the exposure (0 = locked down, 10 = unprotected) and `verify` rejects
//! unknown directives and bad values. Without systemd-analyze the tests fail: every Debian with
//! systemd has it, and tests/run-all.sh installs it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The highest exposure the issue accepts.
const MAX_EXPOSURE: f64 = 2.5;

fn packaging(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging")
        .join(file)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `systemd-analyze security --offline=yes UNIT`: the overall exposure it prints and its whole
/// table (one line per check).
fn exposure(unit: &Path) -> (f64, String) {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(unit)
        .output()
        .expect("systemd-analyze (apt-get install systemd)");
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "systemd-analyze security failed: {}\n{table}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (parse_exposure(&table), table)
}

/// The number in "→ Overall exposure level for secpipe.service: 1.7 OK 🙂".
fn parse_exposure(table: &str) -> f64 {
    let line = table
        .lines()
        .find(|l| l.contains("Overall exposure level for "))
        .unwrap_or_else(|| panic!("no overall exposure line in:\n{table}"));
    let after = line
        .rsplit_once(".service: ")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("unexpected exposure line: {line}"));
    let number = after.split_whitespace().next().unwrap_or_default();
    number
        .parse()
        .unwrap_or_else(|e| panic!("exposure {number:?} in {line:?}: {e}"))
}

/// A temp dir holding `secpipe.service` (the shipped one) and, when asked, the blocking drop-in
/// in `secpipe.service.d/`, where systemd merges drop-ins from.
fn unit_dir(with_blocking: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        packaging("secpipe.service"),
        dir.path().join("secpipe.service"),
    )
    .expect("copy unit");
    if with_blocking {
        let dropins = dir.path().join("secpipe.service.d");
        std::fs::create_dir(&dropins).expect("mkdir drop-in dir");
        std::fs::copy(packaging("blocking.conf"), dropins.join("blocking.conf"))
            .expect("copy drop-in");
    }
    dir
}

/// The check line of one setting in the table, e.g. "✗ CapabilityBoundingSet=~CAP_NET_ADMIN …".
fn check_line<'a>(table: &'a str, setting: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(setting))
        .unwrap_or_else(|| panic!("no {setting} line in:\n{table}"))
}

#[test]
fn shipped_unit_exposure_is_at_most_2_5() {
    let dir = unit_dir(false);
    let (score, table) = exposure(&dir.path().join("secpipe.service"));
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}:\n{table}"
    );
    // Without the drop-in the service cannot touch the firewall.
    assert!(
        check_line(&table, "CapabilityBoundingSet=~CAP_NET_ADMIN").starts_with('✓'),
        "{table}"
    );
    assert!(
        check_line(&table, "RestrictAddressFamilies=~AF_NETLINK").starts_with('✓'),
        "{table}"
    );
}

#[test]
fn unit_with_blocking_dropin_exposure_is_at_most_2_5() {
    let dir = unit_dir(true);
    let (score, table) = exposure(&dir.path().join("secpipe.service"));
    // The drop-in was merged: the table now shows what it grants.
    assert!(
        check_line(&table, "CapabilityBoundingSet=~CAP_NET_ADMIN").starts_with('✗'),
        "drop-in not merged:\n{table}"
    );
    assert!(
        check_line(&table, "RestrictAddressFamilies=~AF_NETLINK").starts_with('✗'),
        "drop-in not merged:\n{table}"
    );
    assert!(
        score <= MAX_EXPOSURE,
        "exposure with blocking {score} > {MAX_EXPOSURE}:\n{table}"
    );
}

/// The score check can fail: a unit with no hardening scores far above the limit.
#[test]
fn exposure_check_fails_an_unhardened_unit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = dir.path().join("secpipe.service");
    std::fs::write(
        &unit,
        "[Service]\nExecStart=/usr/bin/secpipe run --config /etc/secpipe/secpipe.toml\n",
    )
    .expect("write unit");
    let (score, table) = exposure(&unit);
    assert!(
        score > MAX_EXPOSURE,
        "an unhardened unit scored {score}:\n{table}"
    );
}

/// `systemd-analyze verify` knows every directive and value (an unknown key or a typo is a
/// warning on stderr, which fails the test). It insists that ExecStart's program exists, so
/// this runs a copy that names the built binary; `--man=no` because secpipe(1) is installed
/// only by the package (tests/package_install.rs checks it there).
#[test]
fn unit_and_dropin_pass_systemd_analyze_verify() {
    let dir = unit_dir(true);
    let unit = dir.path().join("secpipe.service");
    let text = read(&unit).replace("/usr/bin/secpipe", env!("CARGO_BIN_EXE_secpipe"));
    std::fs::write(&unit, text).expect("write unit");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

/// The value of `Key=` in the unit (the first one).
fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
}

/// The default config and the unit agree: the config file is where ExecStart reads it, state
/// and alerts go to the directories the unit makes writable (everything else is read-only
/// under ProtectSystem=strict), alerts never go to stdout (the journal the service reads),
/// and blocking stays off until the admin adds the drop-in.
#[test]
fn default_config_writes_only_where_the_unit_allows() {
    let unit = read(&packaging("secpipe.service"));
    assert_eq!(unit_value(&unit, "ConfigurationDirectory"), "secpipe");
    assert!(
        unit_value(&unit, "ExecStart").ends_with(" --config /etc/secpipe/secpipe.toml"),
        "ExecStart does not read /etc/secpipe/secpipe.toml"
    );
    let state_dir = format!("/var/lib/{}", unit_value(&unit, "StateDirectory"));
    let logs_dir = format!("/var/log/{}", unit_value(&unit, "LogsDirectory"));
    let writable = |path: &str| {
        [&state_dir, &logs_dir]
            .iter()
            .any(|dir| path == dir.as_str() || path.starts_with(&format!("{dir}/")))
    };

    let config: toml::Table = read(&packaging("secpipe.toml"))
        .parse()
        .expect("secpipe.toml is TOML");
    let run = config["run"].as_table().expect("[run]");
    let state = run["state"].as_str().expect("run.state");
    assert!(writable(state), "state {state} is not writable by the unit");
    let alerts = config["alerts"].as_array().expect("[[alerts]]");
    assert!(!alerts.is_empty(), "no [[alerts]] output");
    for alert in alerts {
        let to = alert["to"].as_str().expect("alerts.to");
        assert_ne!(to, "-", "alerts to stdout would feed the journal it reads");
        assert!(writable(to), "alerts to {to}: not writable by the unit");
    }
    assert!(
        run.contains_key("journal"),
        "the default config reads the journal"
    );
    assert_eq!(config["block"]["mode"].as_str(), Some("off"));
}

/// The journal source tells its own entries from others by this boot's id, which it reads
/// from `/proc/sys/kernel/random/boot_id` (`src/source/journal/own.rs`). `ProcSubset=pid`
/// mounts the service's /proc with `subset=pid`, where /proc/sys does not exist: secpipe then
/// skips none of its own entries and reads its warnings and summaries back from the journal.
/// So the unit (with or without the drop-in) must leave the non-process /proc files visible.
#[test]
fn unit_leaves_the_boot_id_readable_for_own_entry_skipping() {
    for with_blocking in [false, true] {
        let dir = unit_dir(with_blocking);
        let (_, table) = exposure(&dir.path().join("secpipe.service"));
        assert!(
            check_line(&table, "ProcSubset=").starts_with('✗'),
            "ProcSubset=pid hides /proc/sys/kernel/random/boot_id (blocking drop-in: \
             {with_blocking}):\n{table}"
        );
    }
}
