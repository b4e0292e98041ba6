//! The review page as a person gets it: an archive made by the binary from the logs in
//! `fixtures/report/` (see `generate.py` there for what they hold), reviewed by the binary,
//! and the page opened in Debian's headless Chromium, which gives back the DOM it built and a
//! screenshot. The checks run on Chromium's DOM, not on our bytes: what matters is what a
//! browser makes of the page, hostile names included.
//!
//! Chromium is a real peer: `tests/run-all.sh` installs it and a missing one fails the test.
//! `SECPIPE_SKIP_CHROMIUM=1` skips it, saying so. `SECPIPE_REPORT_SCREENSHOT=FILE` keeps the
//! screenshot of the intact archive's page at FILE, for a person to look at.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The reviewed day of the fixture; the day before is the previous period.
const DAY_2: &[&str] = &[
    "--from",
    "2026-01-06T00:00:00Z",
    "--to",
    "2026-01-07T00:00:00Z",
];

/// Chromium, or `None` (with the reason printed) when the environment asks to skip it.
fn chromium() -> Option<PathBuf> {
    if std::env::var("SECPIPE_SKIP_CHROMIUM").is_ok_and(|v| v == "1") {
        eprintln!("SECPIPE_SKIP_CHROMIUM=1: the report page is not opened in Chromium");
        return None;
    }
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    });
    assert!(
        found.is_some(),
        "chromium is not installed: tests/run-all.sh installs it (apt-get install chromium); \
         set SECPIPE_SKIP_CHROMIUM=1 to skip this test"
    );
    found
}

/// Headless Chromium on `page` with no network and a profile of its own, plus `extra` flags;
/// its stdout.
fn headless(chromium: &Path, work: &Path, page: &Path, extra: &[&str]) -> String {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            work.join("profile").display()
        ))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed on {}: {}\n{}",
        page.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The archive of the fixture logs. auth.log goes first: files are read one after another, so
/// the host that went quiet must be seen before the other files' lines (all late by then)
/// move the watermark past its deadline.
fn fixture_archive(dir: &Path) -> PathBuf {
    let archive = dir.join("archive");
    let mut args: Vec<String> = ["--tz", "UTC", "--year", "2026", "--archive"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(archive.display().to_string());
    for log in ["auth.log", "access.log", "app.log"] {
        args.push(fixture(&format!("report/{log}")).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&args);
    archive
}

/// `secpipe report ARCHIVE PERIOD... --json`, then the page of that review. Returns the
/// page's path and the exit code of `report`.
///
/// The review comes from the binary (from the archive alone); the page is rendered by the
/// library from the JSON the binary wrote, until `report --html` is wired.
fn review_page(archive: &Path, period: &[&str], out: &Path, name: &str) -> (PathBuf, Option<i32>) {
    let page = out.join(format!("{name}.html"));
    let status = secpipe()
        .args(["report", &archive.display().to_string()])
        .args(period)
        .arg("--html")
        .arg(&page)
        .output()
        .expect("run secpipe report");
    assert!(
        page.is_file(),
        "report wrote no {}: {}",
        page.display(),
        String::from_utf8_lossy(&status.stderr)
    );
    (page, status.status.code())
}

/// The DOM after `<body>`, as Chromium serializes it.
fn body(dom: &str) -> &str {
    let start = dom.find("<body>").expect("a body in the DOM");
    &dom[start + "<body>".len()..]
}

/// The text of the first element named `tag` (tags inside it removed).
fn first_text(html: &str, tag: &str) -> String {
    let open = html
        .find(&format!("<{tag}"))
        .unwrap_or_else(|| panic!("no <{tag}>"));
    let start = open + html[open..].find('>').expect("tag end") + 1;
    let end = start + html[start..].find(&format!("</{tag}>")).expect("close");
    let mut text = String::new();
    let mut in_tag = false;
    for c in html[start..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// The row of the table in section `id` whose first cell contains `first`, as text cells.
fn row(dom: &str, id: &str, first: &str) -> Vec<String> {
    row_where(dom, id, |cells| {
        cells.first().is_some_and(|c| c.contains(first))
    })
    .unwrap_or_else(|| panic!("no row starting with {first:?} in section {id}"))
}

/// The first row of the tables in section `id` that some cell of equals `cell`.
fn row_with(dom: &str, id: &str, cell: &str) -> Vec<String> {
    row_where(dom, id, |cells| cells.iter().any(|c| c == cell))
        .unwrap_or_else(|| panic!("no row with a cell {cell:?} in section {id}"))
}

fn row_where(dom: &str, id: &str, pick: impl Fn(&[String]) -> bool) -> Option<Vec<String>> {
    let section_start = dom
        .find(&format!("<section id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id}"));
    let section = &dom[section_start..];
    let section = &section[..section.find("</section>").expect("section end")];
    for tr in section.split("<tr").skip(1) {
        let tr = &tr[..tr.find("</tr>").unwrap_or(tr.len())];
        let cells = cells(tr);
        if pick(&cells) {
            return Some(cells);
        }
    }
    None
}

/// The text of each `<td>` and `<th>` in a row, in order (cells do not nest).
fn cells(tr: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut at = 0;
    while let Some(i) = tr[at..].find("<t") {
        let start = at + i;
        let rest = &tr[start..];
        let tag = match rest.get(1..3) {
            Some("td") => "td",
            Some("th") => "th",
            _ => {
                at = start + 2;
                continue;
            }
        };
        if !matches!(rest.as_bytes().get(3), Some(b'>' | b' ')) {
            at = start + 2;
            continue;
        }
        let end = rest
            .find(&format!("</{tag}>"))
            .map_or(rest.len(), |e| e + tag.len() + 3);
        cells.push(first_text(&rest[..end], tag));
        at = start + end;
    }
    cells
}

#[test]
fn the_page_of_a_real_archive_reads_right_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = fixture_archive(dir.path());
    let (page, code) = review_page(&archive, DAY_2, dir.path(), "review");
    assert_eq!(code, Some(0));
    // The same archive and period, the same page.
    let (again, _) = review_page(&archive, DAY_2, dir.path(), "again");
    assert_eq!(
        std::fs::read(&page).expect("page"),
        std::fs::read(&again).expect("page again")
    );

    let dom = headless(&chromium, dir.path(), &page, &["--dump-dom"]);
    let body = body(&dom);

    // The hostile user is text on the page (Chromium serializes text `<` as `&lt;`) and made
    // no element and no attribute.
    assert!(!dom.contains("<img"), "an img element in the DOM");
    assert!(
        !dom.contains("onerror=\""),
        "an onerror attribute in the DOM"
    );
    assert!(!dom.contains("<script"), "a script element in the DOM");
    let hostile = row(body, "users", "onerror");
    assert_eq!(hostile[0], "&lt;img src=x onerror=alert(1)&gt;new");
    // The 300-character user name arrives cut, whole words of it on the page.
    assert!(dom.contains(&format!("admin{}", "A".repeat(150))));
    assert!(!dom.contains(&"A".repeat(250)));
    // The bidi override in a host name is shown as its code point, not obeyed.
    assert!(!dom.contains('\u{202e}'), "U+202E in the DOM");
    assert!(row(body, "hosts", "1gpj.exe")[0].contains("web\\u{202e}1gpj.exe"));

    // First thing: the verdict, quiet and green.
    assert!(
        body.trim_start()
            .starts_with("<section id=\"verdict\" class=\"verdict good\">"),
        "{}",
        &body[..body.len().min(300)]
    );
    assert!(first_text(body, "section").starts_with("Archive verified intact."));
    assert!(first_text(body, "section").contains("signature none (hash chain only"));

    // Numbers the fixture fixes (generate.py): 348 lines on the reviewed day, 584 the day
    // before; 13 auth failures; 5 alerts (db-2's silence, decided at the end of its quiet
    // window on the reviewed day, among them), none the day before.
    assert_eq!(
        row(body, "counts", "Lines archived")[1..],
        ["348", "584", "-40 %"]
    );
    assert_eq!(
        row(body, "counts", "auth.failure")[1..],
        ["13", "2", "+550 %"]
    );
    assert_eq!(row(body, "alerts", "all")[1..], ["5", "0", "new"]);
    // The brute-forcer: new, 8 failures, one alert; its bruteforce item is listed as missed
    // (nothing answered it on record).
    let brute = row(body, "sources", "203.0.113.7");
    assert_eq!(brute[1..], ["8", "8", "1"]);
    assert!(brute[0].contains("new"), "{brute:?}");
    let item = row_with(body, "response", "auth.bruteforce");
    assert!(item.iter().any(|c| c == "missed"), "{item:?}");
    // So is db-2's silence, decided ten minutes after its last line, past midnight.
    let quiet = row_with(body, "response", "log.silence");
    assert!(quiet.iter().any(|c| c == "missed"), "{quiet:?}");
    // The bulk reader and the host that went quiet, flagged.
    assert_eq!(row(body, "users", "agent-7")[1..], ["2", "1,200"]);
    let silent = row(body, "hosts", "db-2");
    assert!(silent[0].contains("SILENT"), "{silent:?}");
    assert_eq!(silent[1], "2026-01-05 23:55:00");
    // The silence rule fired on the reviewed day only.
    assert_eq!(row(body, "rules", "log.silence")[2..5], ["1", "0", "new"]);

    let png = dir.path().join("review.png");
    headless(
        &chromium,
        dir.path(),
        &page,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,4000",
        ],
    );
    let shot = std::fs::read(&png).expect("screenshot");
    assert!(shot.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    if let Some(keep) = std::env::var_os("SECPIPE_REPORT_SCREENSHOT") {
        std::fs::copy(&png, &keep).expect("keep screenshot");
    }
}

#[test]
fn a_tampered_archive_is_said_first_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = fixture_archive(dir.path());
    // One byte flipped in the middle of an events file of the reviewed day.
    let day = archive.join("events/date=2026-01-06");
    let mut parts: Vec<PathBuf> = std::fs::read_dir(&day)
        .expect("events of the day")
        .flatten()
        .map(|e| e.path())
        .collect();
    parts.sort();
    let target = parts.first().expect("an events file");
    let mut bytes = std::fs::read(target).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(target, bytes).expect("write");

    let (page, code) = review_page(&archive, DAY_2, dir.path(), "tampered");
    assert_eq!(code, Some(1), "report over a tampered archive exits 1");
    let dom = headless(&chromium, dir.path(), &page, &["--dump-dom"]);
    let body = body(&dom);
    // The body's first element is the red banner, and the first heading on the page says it.
    assert!(
        body.trim_start().starts_with(
            "<section id=\"verdict\" class=\"verdict bad\" role=\"alert\"><h1>Archive tampered</h1>"
        ),
        "{}",
        &body[..body.len().min(300)]
    );
    assert_eq!(first_text(body, "h1"), "Archive tampered");
    // Verify's finding names the file.
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .expect("file name");
    assert!(
        first_text(body, "section").contains(name),
        "{}",
        first_text(body, "section")
    );
    assert!(first_text(&dom, "title").contains("ARCHIVE NOT INTACT"));
}

#[test]
fn a_simulated_ban_is_listed_on_the_page_but_answers_no_alert() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    // Bans are decided only on current evidence (old lines are refused as stale), so this
    // brute force is stamped now, and the review covers the day of its last line (the
    // default period).
    let now = jiff::Timestamp::now();
    let log: String = (1..=6)
        .map(|i| {
            format!(
                "<38>1 {now} gw sshd {} - - Failed password for invalid user u{i} from \
                 203.0.113.7 port 4242 ssh2\n",
                100 + i
            )
        })
        .collect();
    let log_path = dir.path().join("auth.log");
    std::fs::write(&log_path, log).expect("log");
    let (archive, state) = (dir.path().join("archive"), dir.path().join("state"));
    let out = run_ok(&[
        "--block",
        "simulate",
        "--state",
        &state.display().to_string(),
        "--archive",
        &archive.display().to_string(),
        &log_path.display().to_string(),
    ]);
    assert_eq!(
        rules_of(&json_lines(&out.stdout)),
        ["auth.bruteforce", "secpipe.ban"]
    );
    let (page, code) = review_page(&archive, &[], dir.path(), "bans");
    assert_eq!(code, Some(0));
    let dom = headless(&chromium, dir.path(), &page, &["--dump-dom"]);
    let body = body(&dom);
    let ban = row(body, "bans", "203.0.113.7");
    assert_eq!(ban[3..], ["simulate", "auth.bruteforce", "1"], "{ban:?}");
    assert_eq!(row(body, "bans", "Issued")[1..], ["1", "0", "new"]);
    // "Would ban" blocked nothing: the address is not marked banned, and the alert stays
    // open (its hour ends after the period, which ends at the next full hour).
    let source = row(body, "sources", "203.0.113.7");
    assert!(!source[0].contains("banned"), "{source:?}");
    let item = row_with(body, "response", "auth.bruteforce");
    assert!(item.iter().any(|c| c == "open"), "{item:?}");
    assert_eq!(row(body, "response", "P1")[1..], ["1", "0", "0", "1"]);
}
