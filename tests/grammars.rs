//! `secpipe events` on each grammar fixture gives the expected kind, reason, source IP and user
//! for every line (fixtures/grammars/<grammar>.log and .expected.tsv), through the real binary:
//! real envelope parsing, then classification.

mod common;
use common::*;

fn field(ev: &serde_json::Value, name: &str) -> String {
    match &ev[name] {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn every_fixture_line_classifies_as_expected() {
    let dir = fixture("grammars");
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/grammars")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    entries.sort();
    assert!(entries.len() >= 6, "grammar fixtures: {entries:?}");
    for log in entries {
        let expected_path = log.with_extension("expected.tsv");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let out = run_ok(&[
            "events",
            "--tz",
            "UTC",
            "--year",
            "2026",
            log.to_str().expect("path"),
        ]);
        let events = json_lines(&out.stdout);
        for row in expected.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let cols: Vec<&str> = row.split('\t').collect();
            assert_eq!(
                cols.len(),
                5,
                "{}: bad row {row:?}",
                expected_path.display()
            );
            let line: usize = cols[0].parse().expect("line number");
            let ev = &events[line - 1];
            let got = [
                field(ev, "kind"),
                field(ev, "reason"),
                field(ev, "src_ip"),
                field(ev, "user"),
            ];
            assert_eq!(
                got.iter().map(String::as_str).collect::<Vec<_>>(),
                cols[1..].to_vec(),
                "{}:{line}: {}",
                log.display(),
                field(ev, "message")
            );
            checked += 1;
        }
    }
    assert!(checked >= 80, "only {checked} fixture lines checked");
}

#[test]
fn stats_counts_pattern_hits_and_unmatched_lines() {
    let log = fixture("grammars/sshd.log");
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
