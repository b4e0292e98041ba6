//! `secpipe report --md` rendered by cmark-gfm, the C renderer GitHub's Markdown comes from
//! (Debian `cmark-gfm`, installed by tests/run-all.sh), with the GFM table, autolink,
//! strikethrough and tagfilter extensions. Hostile user, actor and host names from the logs
//! must come out as text: no image, link, script or heading of theirs, and every table row
//! with its header's number of cells. And a tampered archive's page opens with the warning.
//! Fails, does not skip, when cmark-gfm is missing.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

const HOSTILE: &[&str] = &[
    "a|b",
    "[x](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    "root\n# owned",
    "```\n| x | y |",
    "admin\u{202e}nimda",
    "https://evil.example/x",
    "<script>alert(1)</script>",
    "**bold** _it_ ~~del~~",
];

/// A log where every hostile name is a user (6 failed logins: brute force), an actor and a
/// host.
fn hostile_log(dir: &Path) -> std::path::PathBuf {
    let mut log = String::new();
    for (i, name) in HOSTILE.iter().enumerate() {
        for k in 0..6 {
            let line = serde_json::json!({
                "ts": format!("2026-01-07T10:{i:02}:{k:02}Z"),
                "event": "login_failed",
                "user": name,
                "ip": format!("203.0.113.{}", i + 1),
                "host": name,
            });
            log.push_str(&line.to_string());
            log.push('\n');
        }
        let line = serde_json::json!({
            "ts": format!("2026-01-07T11:{i:02}:00Z"),
            "event": "data_access",
            "operation": "read",
            "actor": name,
            "count": 5,
            "host": "api-01",
        });
        log.push_str(&line.to_string());
        log.push('\n');
    }
    let path = dir.join("hostile.log");
    std::fs::write(&path, log).unwrap();
    path
}

fn markdown(archive: &Path, out: &Path) -> String {
    let status = secpipe()
        .args(["report", archive.to_str().unwrap()])
        .args(["--from", "2026-01-07", "--to", "2026-01-08", "--md"])
        .arg(out)
        .output()
        .expect("run secpipe report");
    assert!(
        out.exists(),
        "no Markdown written: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::read_to_string(out).unwrap()
}

fn cmark_gfm(md: &str) -> String {
    let mut child = Command::new("cmark-gfm")
        .args([
            "-e",
            "table",
            "-e",
            "autolink",
            "-e",
            "strikethrough",
            "-e",
            "tagfilter",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cmark-gfm must be installed for this test (apt-get install cmark-gfm)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(md.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// The cell counts of each row of each `<table>` of `html`.
fn table_shapes(html: &str) -> Vec<Vec<usize>> {
    html.split("<table>")
        .skip(1)
        .map(|t| {
            let t = t.split("</table>").next().unwrap_or("");
            t.split("<tr>")
                .skip(1)
                .map(|row| row.matches("<td").count() + row.matches("<th").count())
                .collect()
        })
        .collect()
}

#[test]
fn hostile_names_stay_text_in_github_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let log = hostile_log(dir.path());
    run_ok(&[
        "--tz",
        "UTC",
        "--archive",
        archive.to_str().unwrap(),
        "--alerts",
        dir.path().join("alerts.jsonl").to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    let md = markdown(&archive, &dir.path().join("review.md"));
    let html = cmark_gfm(&md);

    for tag in [
        "<img",
        "<script",
        "<a ",
        "<code",
        "<em>",
        "<del>",
        "<h1>owned",
        "<li>",
    ] {
        assert!(!html.contains(tag), "{tag} in the rendered page:\n{html}");
    }
    // Own headings only: the title and the sections.
    let headings = html.matches("<h").count() - html.matches("<hr").count();
    assert_eq!(
        headings,
        md.lines().filter(|l| l.starts_with('#')).count(),
        "{html}"
    );
    assert!(
        html.lines()
            .filter(|l| l.starts_with("<h"))
            .all(|h| !h.contains("owned"))
    );
    // Every hostile name is shown, as the text it is (entities decode to it).
    for shown in [
        "a|b",
        "[x](javascript:alert(1))",
        "&lt;img src=x onerror=alert(1)&gt;",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "https://evil.example/x",
        "**bold** _it_ ~~del~~",
    ] {
        assert!(html.contains(shown), "{shown} not shown as text:\n{html}");
    }
    assert!(
        !html.contains('\u{202e}'),
        "a bidi override reached the page"
    );
    let shapes = table_shapes(&html);
    assert!(shapes.len() >= 8, "{html}");
    for rows in &shapes {
        assert!(
            rows.iter().all(|&n| n == rows[0]),
            "a row with another cell count than its header: {rows:?}\n{html}"
        );
    }
    // The users table (after its header row) holds every hostile user, one row each.
    let users = html
        .split("<th>User</th>")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or("");
    assert_eq!(users.matches("<tr>").count(), HOSTILE.len(), "{users}");
}

#[test]
fn a_tampered_archive_is_the_first_thing_the_page_says() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let log = hostile_log(dir.path());
    run_ok(&[
        "--tz",
        "UTC",
        "--archive",
        archive.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    // Drop the last manifest's file from the chain's view: remove a sealed events file.
    let day = archive.join("events/date=2026-01-07");
    let file = std::fs::read_dir(&day)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    let md = markdown(&archive, &dir.path().join("review.md"));
    assert!(md.starts_with("> **⚠ TAMPERED: "), "{md}");
    let html = cmark_gfm(&md);
    assert!(
        html.starts_with("<blockquote>\n<p><strong>⚠ TAMPERED: "),
        "{html}"
    );
}
