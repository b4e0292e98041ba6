//! Issue 13 §2, the command line of blocking without a firewall: `[block]` config errors,
//! what `--block` needs, `secpipe bans` over a ledger, and `unban` refusing what is not an
//! address. (The firewall itself: tests/block_nft.rs.)

mod common;
use common::*;

/// Six sshd failures from 203.0.113.7 stamped now (UTC): an attack going on, which a ban is
/// for (one that ended longer ago than its ban is not acted on).
fn failures_now() -> String {
    let stamp = jiff::Timestamp::now()
        .strftime("%b %e %H:%M:%S")
        .to_string();
    (1..=6)
        .map(|i| {
            format!(
                "{stamp} gw sshd[10{i}]: Failed password for invalid user u{i} from 203.0.113.7 \
                 port 4242 ssh2\n"
            )
        })
        .collect()
}

fn stderr_of(cmd: &mut assert_cmd::Command) -> (i32, String) {
    let out = cmd.write_stdin("").output().expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_misspelt_block_key_is_an_error_at_its_line_with_a_suggestion_even_when_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secpipe.toml");
    std::fs::write(
        &path,
        "[block]\nallow = [\"192.0.2.0/24\"]\nmax_per_minit = 5\n",
    )
    .expect("w");
    let config = path.display().to_string();
    let (code, err) = stderr_of(secpipe().args(["--config", &config]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("secpipe.toml:3:1"), "{err}");
    assert!(err.contains("did you mean `max_per_minute`?"), "{err}");
}

#[test]
fn enforce_without_a_ledger_directory_is_refused_before_reading() {
    let (code, err) = stderr_of(secpipe().args(["--block", "enforce"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--block enforce needs --state DIR"), "{err}");
    let (code, err) = stderr_of(secpipe().args(["--block", "simulate", "--block-allow", "x/8"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("allow x/8"), "{err}");
}

#[test]
fn unban_refuses_anything_that_is_not_an_address_it_could_have_banned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().display().to_string();
    for crafted in [
        "1.2.3.4; rm -rf /",
        "0.0.0.0/0",
        "::/0",
        "2001:db8::1/64",
        "{key}",
    ] {
        let (code, err) = stderr_of(secpipe().args(["unban", crafted, "--state", &state]));
        assert_eq!(code, 2, "{crafted}: {err}");
        assert!(err.contains("not a banned address"), "{err}");
    }
    // Nothing was recorded for any of them.
    assert!(!dir.path().join("unban").exists());
}

#[test]
fn bans_lists_live_bans_less_pending_unbans_and_skips_expired_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = secpipe::event::now_micros();
    let hour = 3_600_000_000i64;
    let rec = |address: &str, until: i64, count: u32| {
        serde_json::json!({"address": address, "rule": "auth.bruteforce", "alert_id": "abc",
            "since": now - hour, "until": until, "count": count})
        .to_string()
    };
    let ledger = [
        rec("203.0.113.7", now + hour, 2),
        rec("2001:db8:1::/64", now + hour, 1),
        rec("198.51.100.9", now - 1, 1),
        rec("192.0.2.44", now + hour, 1),
    ]
    .join("\n");
    std::fs::write(dir.path().join("bans.jsonl"), ledger).expect("ledger");
    std::fs::create_dir(dir.path().join("unban")).expect("dir");
    std::fs::write(
        dir.path().join("unban/1-1.json"),
        serde_json::json!({"address": "192.0.2.44", "at": now}).to_string(),
    )
    .expect("request");
    let state = dir.path().display().to_string();
    let out = run_ok(&["bans", "--state", &state, "--json"]);
    let bans = json_lines(&out.stdout);
    let listed: Vec<(&str, u64)> = bans
        .iter()
        .map(|b| {
            (
                b["address"].as_str().unwrap_or(""),
                b["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(listed, [("2001:db8:1::/64", 1), ("203.0.113.7", 2)]);
    assert_eq!(bans[1]["rule"], "auth.bruteforce");
    assert_eq!(bans[1]["alert_id"], "abc");
    assert!(bans[1]["until"].as_str().is_some_and(|t| t.ends_with('Z')));
    let text = run_ok(&["bans", "--state", &state]);
    assert_eq!(String::from_utf8_lossy(&text.stdout).lines().count(), 2);
}

#[test]
fn simulated_bans_are_audit_rows_in_the_chained_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = failures_now();
    let log_path = dir.path().join("auth.log");
    std::fs::write(&log_path, log).expect("log");
    let archive = dir.path().join("archive");
    let (archive_arg, log_arg) = (
        archive.display().to_string(),
        log_path.display().to_string(),
    );
    let out = run_ok(&["--block", "simulate", "--archive", &archive_arg, &log_arg]);
    let alerts = json_lines(&out.stdout);
    assert_eq!(rules_of(&alerts), ["auth.bruteforce", "secpipe.ban"]);
    assert_eq!(alerts[1]["action"]["cause"], alerts[0]["id"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("6 event rows, 2 alert rows"), "{stderr}");
    assert!(stderr.contains("block (simulate): 1 bans"), "{stderr}");
    run_ok(&["verify", &archive_arg]);
}

#[test]
fn unban_of_an_address_that_is_not_banned_says_so_and_points_at_a_covering_ban() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = secpipe::event::now_micros();
    let rec = serde_json::json!({"address": "2001:db8:1::/64", "rule": "auth.bruteforce",
        "alert_id": "abc", "since": now, "until": now + 3_600_000_000i64, "count": 1});
    std::fs::write(dir.path().join("bans.jsonl"), rec.to_string()).expect("ledger");
    let state = dir.path().display().to_string();
    let out = run_ok(&["unban", "2001:db8:1::5", "--state", &state]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("inside the ban of 2001:db8:1::/64"), "{err}");
    let out = run_ok(&["unban", "203.0.113.8", "--state", &state]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not banned"));
    // No request was left: the /64 is still listed.
    assert!(!dir.path().join("unban").exists());
    let listed = run_ok(&["bans", "--state", &state]);
    assert!(String::from_utf8_lossy(&listed.stdout).starts_with("2001:db8:1::/64\t"));
    let (code, err) = stderr_of(secpipe().args(["bans", "--state", "/nonexistent/secpipe"]));
    assert_eq!(code, 2, "{err}");
}
