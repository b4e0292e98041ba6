//! Issue 12 part 5: a `block` action is typed, built from the key address, never by filling
//! `{key}` into a string. Attacker-written names cannot become what is blocked, and a rule
//! that declares `block` on a non-address key fails at load, naming line and column.

mod common;
use common::*;

use std::net::IpAddr;

/// sshd failures from `addr` for each user name, one a second from 12:00:00.
fn failures(users: &[&str], addr: &str) -> String {
    users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            format!(
                "Mar 10 12:00:{i:02} gw sshd[{}]: Failed password for invalid user {user} from \
                 {addr} port 4242 ssh2\n",
                100 + i
            )
        })
        .collect()
}

/// Names an attacker would type as a user name to make it the block target.
const CRAFTED: [&str; 3] = ["{key}", "1.2.3.4; rm -rf /", "0.0.0.0/0"];

fn with_config(config: &str, log: &str) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("c.toml");
    std::fs::write(&config_path, config).expect("write config");
    let log_path = dir.path().join("auth.log");
    std::fs::write(&log_path, log).expect("write log");
    let (c, l) = (
        config_path.display().to_string(),
        log_path.display().to_string(),
    );
    (dir, c, l)
}

fn run(args: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let out = secpipe()
        .args(["--tz", "UTC", "--year", "2026"])
        .args(args)
        .output()
        .expect("run secpipe");
    (
        out.status.code().unwrap_or(-1),
        json_lines(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every block target in `alerts` is an address or CIDR network, and none is attacker text.
fn assert_blocks_are_addresses(alerts: &[serde_json::Value]) {
    for a in alerts {
        let Some(block) = a["action"]["block"].as_str() else {
            continue;
        };
        let addr = block.split_once('/').map_or(block, |(addr, _)| addr);
        assert!(
            addr.parse::<IpAddr>().is_ok(),
            "block target {block:?}: {a}"
        );
        for text in CRAFTED {
            assert!(!block.contains(text), "{a}");
        }
    }
}

/// A new rule keyed by user name, every failure alerting; its `action` line is line 7.
const USER_RULE: &str = "[rules.\"ssh.user_guess\"]\nprimitive = \"count\"\n\
                         kinds = [\"auth.failure\"]\nkey = \"user\"\nthreshold = 1\n\
                         window = \"1m\"\n";

/// Run `config` over failures with the crafted user names: the config must be refused (exit 2)
/// before anything is alerted, with an error that says each of `says`.
fn assert_refused(config: &str, says: &[&str]) {
    let (_dir, config, log) = with_config(config, &failures(&CRAFTED, "203.0.113.7"));
    let (code, alerts, err) = run(&["--config", &config, &log]);
    assert_eq!(code, 2, "{err}\n{alerts:#?}");
    assert!(alerts.is_empty(), "{alerts:#?}");
    for part in says {
        assert!(err.contains(part), "no {part:?} in: {err}");
    }
}

#[test]
fn a_block_keyed_by_user_name_fails_at_load_and_never_blocks_the_name() {
    assert_refused(
        &format!("{USER_RULE}action = {{ block = \"{{key}}\", for = \"15m\" }}\n"),
        &["c.toml:4:7", "not an address"],
    );
}

#[test]
fn a_default_rule_rekeyed_to_user_keeps_no_block() {
    // auth.bruteforce blocks; a user config that keys it by user name must not inherit that.
    assert_refused(
        "[rules.\"auth.bruteforce\"]\nkey = \"user\"\n",
        &["c.toml:2:7", "declares `block`"],
    );
}

#[test]
fn a_note_cannot_carry_the_key() {
    // Only `block` takes the key; a note with `{key}` would look like a command template.
    assert_refused(
        &format!("{USER_RULE}action = {{ run = \"iptables -A INPUT -s {{key}} -j DROP\" }}\n"),
        &["c.toml:7:", "not filled in"],
    );
}

/// Run the default rules over `log`: exactly one auth.bruteforce alert, every block target an
/// address. Returns that alert's action.
fn bruteforce_action(log: &str) -> serde_json::Value {
    let (_dir, _, log) = with_config("", log);
    let (code, alerts, err) = run(&[&log]);
    assert_eq!(code, 0, "{err}");
    assert_blocks_are_addresses(&alerts);
    let brute: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"] == "auth.bruteforce")
        .collect();
    assert_eq!(brute.len(), 1, "{alerts:#?}");
    brute[0]["action"].clone()
}

#[test]
fn crafted_user_names_leave_the_block_on_the_address() {
    let log = failures(
        &[CRAFTED[0], CRAFTED[1], CRAFTED[2], "{key}", "x"],
        "203.0.113.7",
    );
    let action = bruteforce_action(&log);
    assert_eq!(action["block"], "203.0.113.7");
    assert_eq!(action["for"], "15m");
}

#[test]
fn an_ipv6_attacker_is_blocked_by_its_64() {
    // Five addresses of one /64, one failure each: the /64 is the attacker and what is blocked.
    let log: String = (0..5)
        .map(|i| {
            failures(&["root"], &format!("2001:db8:1:2::{:x}", 0xa0 + i))
                .replace(":00 ", &format!(":{i:02} "))
        })
        .collect();
    assert_eq!(bruteforce_action(&log)["block"], "2001:db8:1:2::/64");
}

#[test]
fn a_block_wider_than_a_site_fails_at_load() {
    assert_refused(
        "[rules.\"auth.bruteforce\"]\nipv6_prefix = 0\n",
        &["c.toml:2:15", "ipv6_prefix"],
    );
}
