//! An alert as one RFC 5424 syslog message, for a SIEM that reads syslog: the alert's fields as
//! structured data (`[secpipe@32473 …]`), its summary as the message.
//!
//! ```text
//! <84>1 2026-11-23T03:00:00.000000Z gw secpipe 4242 ALERT [secpipe@32473 id="…" rule="auth.bruteforce" severity="HIGH" …] BOM203.0.113.7 made 5 failed …
//! ```
//!
//! Facility 10 (security/authorization); the syslog severity follows the alert's: CRITICAL is
//! crit (2), HIGH err (3), MEDIUM warning (4), LOW notice (5). `32473` is the enterprise
//! number RFC 5612 reserves for documentation: secpipe has none of its own.
//!
//! Attacker text (the key, the summary, action values) is data, never framing: in parameter
//! values `"`, `\` and `]` are escaped with a backslash (RFC 5424 §6.3.3), and every control
//! or invisible character, in values and in the message alike, is written as a visible
//! `\u{…}` escape, so no newline reaches a newline-framed receiver and no crafted name can
//! close the structured data and add parameters of its own. Values are cut at
//! [`MAX_VALUE_BYTES`] so that a message stays well inside what receivers take (rsyslog's
//! default is 8 KiB).

use std::fmt::Write;

use crate::action::Action;
use crate::alert::{Alert, Severity};

/// Longest parameter value or message written, in bytes; longer text is cut (on a character
/// boundary) and marked with `…`.
pub const MAX_VALUE_BYTES: usize = 1024;

/// The structured-data ID of secpipe's parameters.
pub const SD_ID: &str = "secpipe@32473";

/// Facility 10: security/authorization messages.
const FACILITY: u8 = 10;

/// Append `alert` as one RFC 5424 message (no trailing newline), from `hostname` (already a
/// valid HOSTNAME field, or `-`) and process `pid`.
///
/// ```
/// use secpipe::alert::{Alert, Severity};
/// let alert = Alert {
///     id: "00".into(), rule: "auth.bruteforce".into(), severity: Severity::High,
///     priority: "P1".into(), respond_within: "1h".into(),
///     key_field: "user".into(), key_value: "x\"] [evil@1 a=\"b".into(),
///     count: 5, threshold: 5, window_start: 0, window_end: 0, first_seen: 0, last_seen: 0,
///     summary: "5 failures\nfake".into(), evidence: vec![], action: vec![], unverified: false,
/// };
/// let mut out = String::new();
/// secpipe::sink::encode::rfc5424::write(&alert, "gw", 7, &mut out);
/// assert!(out.starts_with("<83>1 1970-01-01T00:00:00.000000Z gw secpipe 7 ALERT [secpipe@32473 "));
/// assert!(out.contains(r#" key="x\"\] [evil@1 a=\"b""#), "{out}");
/// assert!(!out.contains('\n'));
/// ```
pub fn write(alert: &Alert, hostname: &str, pid: u32, out: &mut String) {
    let pri = u16::from(FACILITY) * 8 + u16::from(severity(alert.severity));
    let _ = write!(out, "<{pri}>1 ");
    crate::event::write_ts(out, alert.window_end);
    let _ = write!(out, " {hostname} secpipe {pid} ALERT [{SD_ID}");
    param(out, "id", &alert.id);
    param(out, "rule", &alert.rule);
    param(out, "severity", alert.severity.as_str());
    param(out, "priority", &alert.priority);
    param(out, "respond_within", &alert.respond_within);
    param(out, "key_field", &alert.key_field);
    param(out, "key", &alert.key_value);
    param(out, "count", &alert.count.to_string());
    param(out, "threshold", &alert.threshold.to_string());
    for (name, at) in [
        ("window_start", alert.window_start),
        ("window_end", alert.window_end),
    ] {
        param(out, name, &crate::event::format_ts(at));
    }
    for (name, value) in Action::pairs(&alert.action) {
        // Action names come from the operator's rules; one that is not a valid PARAM-NAME is
        // left out rather than written broken.
        if is_param_name(&name) {
            param(out, &name, &value);
        }
    }
    if alert.unverified {
        param(out, "unverified", "true");
    }
    // The message is UTF-8, which RFC 5424 says to mark with a BOM.
    out.push_str("] \u{feff}");
    push_visible(out, &alert.summary, false);
}

/// This host's name as a HOSTNAME field (printable US-ASCII, at most 255), or `-`.
pub fn hostname() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that.
        let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
        match std::str::from_utf8(&buf[..end]) {
            Ok(name) if ok && !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()) => {
                name.to_string()
            }
            _ => "-".to_string(),
        }
    })
}

/// The syslog severity of an alert severity.
fn severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
    }
}

/// ` name="value"`, the value escaped.
fn param(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    push_visible(out, value, true);
    out.push('"');
}

/// A PARAM-NAME: 1 to 32 printable US-ASCII characters other than `=`, space, `]` and `"`.
fn is_param_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'=' | b']' | b'"'))
}

/// Append `text`, cut at [`MAX_VALUE_BYTES`], with control and invisible characters as
/// `\u{…}`; inside a parameter value (`in_value`) also `"`, `\` and `]` escaped.
fn push_visible(out: &mut String, text: &str, in_value: bool) {
    let cut = if text.len() > MAX_VALUE_BYTES {
        let mut end = MAX_VALUE_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        &text[..end]
    } else {
        text
    };
    for c in cut.chars() {
        match c {
            '"' | '\\' | ']' if in_value => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || super::is_invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    if cut.len() < text.len() {
        out.push('…');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(key: &str, summary: &str) -> Alert {
        let mut a = crate::sink::tests::alert(1);
        a.key_value = key.into();
        a.summary = summary.into();
        a
    }

    #[test]
    fn a_crafted_key_cannot_close_the_structured_data_or_add_a_message() {
        let mut out = String::new();
        write(
            &alert(
                "bob\"] [x@1 rule=\"fake\"]\n<11>1 - - - - - forged",
                "s\r\n",
            ),
            "gw",
            1,
            &mut out,
        );
        assert!(!out.contains('\n') && !out.contains('\r'), "{out}");
        // The only unescaped `]` is the one that ends secpipe's structured data.
        let unescaped = out
            .char_indices()
            .filter(|&(i, c)| c == ']' && !out[..i].ends_with('\\'))
            .count();
        assert_eq!(unescaped, 1, "{out}");
        assert!(
            out.contains(r#"key="bob\"\] [x@1 rule=\"fake\"\]\u{a}<11>1"#),
            "{out}"
        );
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let mut out = String::new();
        let long = "é".repeat(MAX_VALUE_BYTES);
        write(&alert(&long, &long), "-", 1, &mut out);
        assert!(out.len() < 3 * MAX_VALUE_BYTES, "{}", out.len());
        assert_eq!(out.matches('…').count(), 2);
    }

    #[test]
    fn severities_map_to_syslog_levels_under_facility_10() {
        for (s, pri) in [
            (Severity::Critical, "<82>"),
            (Severity::High, "<83>"),
            (Severity::Medium, "<84>"),
            (Severity::Low, "<85>"),
        ] {
            let mut a = alert("k", "s");
            a.severity = s;
            let mut out = String::new();
            write(&a, "-", 1, &mut out);
            assert!(out.starts_with(pri), "{out}");
        }
    }
}
