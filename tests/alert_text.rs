//! Text alerts show attacker text as it is: a user name cannot print a second (fake) alert line
//! or hide characters; terminal escape sequences are still stripped (issue 10, item 13).

mod common;
use common::*;

/// The night-login alerts for the fixture's two crafted user names, in text form.
fn text_alerts() -> String {
    let out = run_ok(&[
        "--alert-format",
        "text",
        fixture("hostile/alert_text_injection.jsonl")
            .to_str()
            .expect("UTF-8 path"),
    ]);
    String::from_utf8(out.stdout).expect("UTF-8 alerts")
}

#[test]
fn a_newline_in_a_user_name_is_escaped_not_a_fake_critical_line() {
    let text = text_alerts();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "one line per alert:\n{text}");
    let first = lines[0];
    assert!(first.contains(" LOW P3 auth.night_login "), "{first}");
    // The fake severity is visibly part of the user name, behind an escaped newline.
    assert!(
        first.contains(
            r"user=bob\n2026-11-23T03:00:00.000000Z CRITICAL P0 data.namespace_violation"
        ),
        "{first}"
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.starts_with("2026-11-23T03:00:00.000000Z CRITICAL")),
        "{text}"
    );
}

#[test]
fn zero_width_and_line_separators_are_shown_as_escapes() {
    let text = text_alerts();
    let second = text.lines().nth(1).expect("second alert");
    assert!(
        second.contains(r"user=ro\u{200b}ot\u{2028}x\u{2029}y\u{85}z\u{feff} "),
        "{second}"
    );
    for invisible in ['\u{200b}', '\u{2028}', '\u{2029}', '\u{85}', '\u{feff}'] {
        assert!(!text.contains(invisible), "{invisible:?} passed: {text:?}");
    }
}
