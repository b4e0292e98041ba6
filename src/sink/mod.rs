//! sink: where results go — alerts (JSON lines or text) and, for `secpipe events`, events.
//! The Parquet archive is its own stage, [`crate::archive`].

pub mod alerts;
pub mod events;

/// Append `s` to `out` as a JSON string literal (with quotes). Attacker-controlled text passes
/// through here, so every control character is escaped.
///
/// ```
/// let mut out = String::new();
/// secpipe::sink::json_str(&mut out, "a\"b\n\u{1b}[31m");
/// assert_eq!(out, r#""a\"b\n\u001b[31m""#);
/// ```
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f | 0x7f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_str_round_trips_through_serde() {
        let samples = [
            "",
            "plain",
            "quote\" back\\ nl\n tab\t",
            "\u{0}\u{1f}\u{7f}é漢字",
            "\u{2028}",
        ];
        for s in samples {
            let mut out = String::new();
            super::json_str(&mut out, s);
            let back: String = serde_json::from_str(&out).expect("valid JSON");
            assert_eq!(back, s);
        }
    }
}
