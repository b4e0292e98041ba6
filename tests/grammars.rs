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
    let text = std::fs::read_to_string(&log).expect("fixture");
    let out = run_ok(&[
        "events",
        "--stats",
        "--tz",
        "UTC",
        "--year",
        "2026",
        log.to_str().expect("path"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    // `pattern hits:` then one `COUNT  NAME` row per pattern, most hits first.
    let (_, table) = err
        .split_once("pattern hits:\n")
        .unwrap_or_else(|| panic!("no pattern hits: {err}"));
    let rows: Vec<(u64, &str)> = table
        .lines()
        .map(|l| {
            let (n, name) = l.trim_start().split_once("  ").expect("COUNT  NAME");
            (n.parse().expect("count"), name)
        })
        .collect();
    let hits = |name: &str| {
        rows.iter()
            .find(|(_, n)| *n == name)
            .unwrap_or_else(|| panic!("no row {name}: {err}"))
            .0
    };
    let lines = text.lines().count() as u64;
    let lines_with = |needle: &str| text.lines().filter(|l| l.contains(needle)).count() as u64;
    // Every line is counted once: by the one pattern that matched it, or as unmatched.
    assert_eq!(rows.iter().map(|(n, _)| n).sum::<u64>(), lines, "{err}");
    // Only `Server listening on 0.0.0.0 port 22.` is described by no grammar.
    assert_eq!(lines_with("Server listening"), 1);
    assert_eq!(hits("(no pattern matched)"), 1, "{err}");
    assert_eq!(hits("sshd/accepted"), lines_with("]: Accepted "), "{err}");
    assert_eq!(
        hits("pam/session_opened"),
        lines_with("session opened"),
        "{err}"
    );
    assert_eq!(
        hits("sudo/command"),
        0,
        "no sudo line in an sshd log: {err}"
    );
    let matched = &rows[..rows.len() - 1];
    assert!(
        matched.windows(2).all(|w| w[0].0 >= w[1].0),
        "most hits first: {err}"
    );
    // The per-kind summary agrees with the hand-written expectations of the fixture.
    let expected = std::fs::read_to_string(log.with_extension("expected.tsv")).expect("tsv");
    let mut kinds = std::collections::BTreeMap::<&str, u64>::new();
    for row in expected.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        *kinds
            .entry(row.split('\t').nth(1).expect("kind"))
            .or_default() += 1;
    }
    let want: Vec<String> = ["auth.failure", "auth.success", "other"]
        .iter()
        .map(|k| format!("{k} {}", kinds.get(k).copied().unwrap_or(0)))
        .collect();
    assert_eq!(kinds.values().sum::<u64>(), lines);
    assert!(
        err.contains(&format!("secpipe: events: {}\n", want.join(", "))),
        "want {want:?}: {err}"
    );
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
