//! Grammars through the real binary: `events --stats`, a user grammar directory, a bad user
//! grammar. The grammar fixtures themselves are annotated files (`fixtures/expect/*.log`)
//! checked with `secpipe test` in tests/secpipe_test.rs.

mod common;
use common::*;

#[test]
fn stats_counts_pattern_hits_and_unmatched_lines() {
    let log = fixture("expect/sshd.log");
    let out = run_ok(&[
        "events",
        "--stats",
        "--tz",
        "UTC",
        log.to_str().expect("path"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pattern hits:"), "{err}");
    assert!(err.contains("sshd/"), "{err}");
    assert!(err.contains("(no pattern matched)"), "{err}");
}

#[test]
fn a_user_grammar_dir_adds_patterns() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("myapp.toml"),
        r#"apps = ["myapp"]

[[pattern]]
name = "login_failed"
kind = "auth.failure"
reason = "bad_password"
regex = '^login failed for (?P<user>\S+) from (?P<src_ip>\S+)$'
"#,
    )
    .expect("write grammar");
    let out = run_stdin(
        &[
            "events",
            "--tz",
            "UTC",
            "--grammars",
            dir.path().to_str().expect("path"),
        ],
        b"Mar 10 12:00:00 h myapp[7]: login failed for eve from 192.0.2.5\n".to_vec(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = json_lines(&out.stdout);
    assert_eq!(events[0]["kind"], "auth.failure");
    assert_eq!(events[0]["src_ip"], "192.0.2.5");
    assert_eq!(events[0]["user"], "eve");
}

#[test]
fn a_bad_user_grammar_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("broken.toml"),
        "apps = [\"x\"]\n\n[[pattern]]\nname = \"p\"\nkind = \"auth.failure\"\nregex = '(unclosed'\n",
    )
    .expect("write grammar");
    let out = run_stdin(
        &["events", "--grammars", dir.path().to_str().expect("path")],
        Vec::new(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.toml:6:"), "{err}");
}
