//! How alerts are written out, chosen per sink: JSON lines (the default, for machines) or one
//! readable line per alert (for a terminal). Both treat every field an attacker could have
//! written (key, summary, evidence, action) as hostile: JSON escapes every control character;
//! text strips terminal escape sequences and shows every invisible character as an escape.
//! OCSF Detection Findings ([`crate::ocsf`]) escape controls and invisible characters too.

pub mod rfc5424;

use crate::action::Action;
use crate::alert::Alert;
use crate::sink::json_str;

/// How a sink writes alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Encoding {
    #[default]
    Json,
    Text,
    /// RFC 5424 syslog ([`rfc5424`]), for the syslog sink.
    Syslog,
    /// OCSF 1.3.0 Detection Finding JSON lines ([`crate::ocsf::detection_finding`]), for
    /// security lakes and SIEMs that read OCSF.
    Ocsf,
}

impl Encoding {
    /// Append `alert` to `out` as one line, newline included.
    pub fn encode(self, alert: &Alert, out: &mut String) {
        match self {
            Encoding::Json => write_json(alert, out),
            Encoding::Text => write_text(alert, out),
            Encoding::Syslog => rfc5424::write(alert, rfc5424::hostname(), std::process::id(), out),
            Encoding::Ocsf => crate::ocsf::write_alert(alert, out),
        }
        out.push('\n');
    }
}

/// One JSON object, no trailing newline. All attacker-controlled text (key, summary,
/// evidence, action) is JSON-escaped; raw evidence bytes are shown as lossy UTF-8.
///
/// ```
/// use secpipe::alert::{Alert, Severity};
/// let alert = Alert {
///     id: "00".into(), rule: "auth.bruteforce".into(), severity: Severity::Medium,
///     priority: "P2".into(), respond_within: "4h".into(),
///     key_field: "src_ip".into(), key_value: "203.0.113.7".into(),
///     count: 5, threshold: 5, window_start: 0, window_end: 0, first_seen: 0, last_seen: 0,
///     summary: "say \"hi\"".into(), evidence: vec![], action: vec![], unverified: false,
/// };
/// let mut out = String::new();
/// secpipe::sink::encode::write_json(&alert, &mut out);
/// let v: serde_json::Value = serde_json::from_str(&out).unwrap();
/// assert_eq!(v["summary"], "say \"hi\"");
/// assert_eq!(v["key"]["value"], "203.0.113.7");
/// ```
pub fn write_json(alert: &Alert, out: &mut String) {
    use std::fmt::Write;
    out.push_str("{\"id\":");
    json_str(out, &alert.id);
    out.push_str(",\"rule\":");
    json_str(out, &alert.rule);
    let _ = write!(
        out,
        ",\"severity\":\"{}\",\"priority\":",
        alert.severity.as_str()
    );
    json_str(out, &alert.priority);
    out.push_str(",\"respond_within\":");
    json_str(out, &alert.respond_within);
    out.push_str(",\"key\":{\"field\":");
    json_str(out, &alert.key_field);
    out.push_str(",\"value\":");
    json_str(out, &alert.key_value);
    let _ = write!(
        out,
        "}},\"count\":{},\"threshold\":{}",
        alert.count, alert.threshold
    );
    for (name, ts) in [
        ("window_start", alert.window_start),
        ("window_end", alert.window_end),
        ("first_seen", alert.first_seen),
        ("last_seen", alert.last_seen),
    ] {
        let _ = write!(out, ",\"{name}\":\"");
        crate::event::write_ts(out, ts);
        out.push('"');
    }
    out.push_str(",\"summary\":");
    json_str(out, &alert.summary);
    out.push_str(",\"evidence\":[");
    for (i, ev) in alert.evidence.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"source\":");
        json_str(out, &ev.source);
        let _ = write!(out, ",\"line\":{},\"ts\":\"", ev.line);
        crate::event::write_ts(out, ev.ts);
        out.push_str("\",\"raw\":");
        json_str(out, &String::from_utf8_lossy(&ev.raw));
        match ev.seq {
            Some(seq) => {
                let _ = write!(out, ",\"seq\":{seq}}}");
            }
            None => out.push_str(",\"seq\":null}"),
        }
    }
    out.push_str("],");
    if alert.unverified {
        out.push_str("\"unverified\":true,");
    }
    out.push_str("\"action\":{");
    for (i, (name, value)) in Action::pairs(&alert.action).iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(out, name);
        out.push(':');
        json_str(out, value);
    }
    out.push_str("}}");
}

/// One readable line for a terminal. Terminal escape sequences in attacker-controlled text
/// are removed, so a log line cannot repaint the screen, and every other invisible
/// character (newline, zero-width space, line separator …) is shown as an escape, so a log
/// line cannot fake a second alert line or hide text (see `push_clean`).
///
/// ```
/// use secpipe::alert::{Alert, Severity};
/// let alert = Alert {
///     id: "00".into(), rule: "auth.bruteforce".into(), severity: Severity::Medium,
///     priority: "P2".into(), respond_within: "4h".into(),
///     key_field: "user".into(), key_value: "root\u{1b}[2J".into(),
///     count: 5, threshold: 5, window_start: 0, window_end: 0, first_seen: 0, last_seen: 0,
///     summary: "5 failures".into(), evidence: vec![], action: vec![], unverified: false,
/// };
/// let mut out = String::new();
/// secpipe::sink::encode::write_text(&alert, &mut out);
/// assert!(!out.contains('\u{1b}'));
/// assert!(out.contains("user=root "));
/// ```
pub fn write_text(alert: &Alert, out: &mut String) {
    use std::fmt::Write;
    crate::event::write_ts(out, alert.window_end);
    let _ = write!(
        out,
        " {} {} {} ",
        alert.severity.as_str(),
        alert.priority,
        alert.rule
    );
    push_clean(out, &alert.key_field);
    out.push('=');
    push_clean(out, &alert.key_value);
    let _ = write!(out, " count={}/{} ", alert.count, alert.threshold);
    push_clean(out, &alert.summary);
    if !alert.action.is_empty() {
        out.push_str(" action:");
        for (name, value) in &Action::pairs(&alert.action) {
            out.push(' ');
            push_clean(out, name);
            out.push('=');
            push_clean(out, value);
        }
    }
    let _ = write!(out, " respond within {}", alert.respond_within);
    out.push_str(" id=");
    push_clean(out, &alert.id);
}

/// Append `s` for a terminal: terminal escape sequences (CSI `ESC [ … final`, OSC
/// `ESC ] … BEL/ST`, any other `ESC x`, and C1 CSI `U+009B … final`) are stripped, because they
/// act on the screen; every other character that is not plainly visible is written as a
/// visible escape instead of being dropped or turned into a space, so attacker text can neither
/// start a new (fake) alert line nor hide what it contains:
/// `\n`, `\r`, `\t`, a backslash as `\\`, and other controls, C1 controls, line and
/// paragraph separators, zero-width and other invisible format characters, bidi overrides and
/// variation selectors as `\u{hex}`.
///
/// ```
/// use secpipe::alert::{Alert, Severity};
/// let alert = Alert {
///     id: "00".into(), rule: "auth.night_login".into(), severity: Severity::Low,
///     priority: "P3".into(), respond_within: "24h".into(),
///     key_field: "user".into(),
///     key_value: "bob\n2026-11-23T03:00:00.000000Z CRITICAL P0 data.namespace_violation".into(),
///     count: 1, threshold: 1, window_start: 0, window_end: 0, first_seen: 0, last_seen: 0,
///     summary: "ro\u{200b}ot\u{2028}x".into(), evidence: vec![], action: vec![], unverified: false,
/// };
/// let mut out = String::new();
/// secpipe::sink::encode::write_text(&alert, &mut out);
/// assert_eq!(out.lines().count(), 1);
/// assert!(out.contains(r"user=bob\n2026-11-23T03:00:00.000000Z CRITICAL P0"), "{out}");
/// assert!(out.contains(r"ro\u{200b}ot\u{2028}x"), "{out}");
/// ```
pub(crate) fn push_clean(out: &mut String, s: &str) {
    use std::fmt::Write;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    // CSI: parameters and intermediates, then one final byte in @..~.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') | Some('P') | Some('X') | Some('^') | Some('_') => {
                    // String sequences end at BEL or ST (ESC \).
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next_if_eq(&'\\');
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Escaped too, so that a literal `\n` typed by the attacker stays distinguishable
            // from an escaped newline.
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || is_invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// Characters that render as nothing (or move text around) on a terminal: line and paragraph
/// separators, zero-width and other invisible format characters (Unicode `Cf` and the
/// invisible fillers), bidi controls, variation selectors and tag characters. A name made of
/// them looks like another name, or hides what follows.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{115f}'..='\u{1160}'
            | '\u{17b4}'..='\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff0}'..='\u{fffb}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Evidence, Severity};
    use std::sync::Arc;

    fn sample() -> Alert {
        Alert {
            id: "abc".into(),
            rule: "auth.bruteforce".into(),
            severity: Severity::High,
            priority: "P1".into(),
            respond_within: "1h".into(),
            key_field: "src_ip".into(),
            key_value: "203.0.113.7".into(),
            count: 5,
            threshold: 5,
            window_start: 0,
            window_end: 60_000_000,
            first_seen: 1,
            last_seen: 2,
            summary: "203.0.113.7 made 5 failed login attempts in 5m".into(),
            evidence: vec![Evidence {
                source: Arc::from("a\"uth\n.log"),
                line: 3,
                ts: 1,
                raw: b"Failed \"x\" \\ \x1b[31mred\x00 \xff\xfe end"
                    .to_vec()
                    .into(),
                seq: Some(9),
            }],
            action: vec![Action::Block {
                target: crate::action::BlockTarget::new([203, 0, 113, 7].into(), 64)
                    .expect("an address"),
                duration: Some(15 * 60 * 1_000_000),
            }],
            unverified: false,
        }
    }

    #[test]
    fn json_is_valid_and_escaped() {
        let mut out = String::new();
        write_json(&sample(), &mut out);
        assert!(!out.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(v["rule"], "auth.bruteforce");
        assert_eq!(v["severity"], "HIGH");
        assert_eq!(v["priority"], "P1");
        assert_eq!(v["key"]["field"], "src_ip");
        assert_eq!(v["count"], 5);
        assert_eq!(v["window_end"], "1970-01-01T00:01:00.000000Z");
        assert_eq!(v["evidence"][0]["source"], "a\"uth\n.log");
        assert_eq!(
            v["evidence"][0]["raw"],
            "Failed \"x\" \\ \u{1b}[31mred\u{0} \u{fffd}\u{fffd} end"
        );
        assert_eq!(v["evidence"][0]["seq"], 9);
        assert_eq!(v["action"]["block"], "203.0.113.7");
        assert_eq!(v["action"]["for"], "15m");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "id",
            "rule",
            "severity",
            "priority",
            "respond_within",
            "key",
            "count",
            "threshold",
            "window_start",
            "window_end",
            "first_seen",
            "last_seen",
            "summary",
            "evidence",
            "action",
        ] {
            assert!(keys.contains(&k), "missing {k}");
        }
    }

    #[test]
    fn text_strips_terminal_control() {
        let mut a = sample();
        a.key_value = "evil\u{1b}]0;title\u{7}\u{1b}[2J\u{1b}[31mX\r\u{8}\u{9b}1mY\u{202e}Z".into();
        a.summary = "line1\nline2\u{0}".into();
        let mut out = String::new();
        write_text(&a, &mut out);
        assert!(out.chars().all(|c| !c.is_control()), "{out:?}");
        assert!(out.contains(r"src_ip=evilX\r\u{8}Y\u{202e}Z "), "{out:?}");
        assert!(out.contains(r"line1\nline2\u{0}"), "{out:?}");
        assert!(out.contains("block=203.0.113.7"));
        assert!(out.starts_with("1970-01-01T00:01:00.000000Z HIGH P1 auth.bruteforce"));
    }
}
