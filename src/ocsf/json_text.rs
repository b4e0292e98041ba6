//! OCSF JSON text: serde_json with one extra rule. Besides what JSON escapes itself, every
//! other control character (DEL, C1) and every character that renders as nothing or reorders
//! text (bidi overrides, zero-width spaces, line separators: `is_invisible` in
//! [`crate::sink::encode`]) is written as a `\uXXXX` escape, so a user name like
//! `admin\u{202e}nimda` cannot look like another name to whoever reads the file, and
//! JavaScript readers (U+2028) cannot be tripped. Decoding gives back exactly the same string:
//! nothing is dropped.
//!
//! ```
//! let v = serde_json::json!({"user": "ad\u{202e}min\",\"class_uid\":1\n"});
//! let text = secpipe::ocsf::json_text::to_line(&v);
//! assert!(!text.contains('\u{202e}') && !text.contains('\n'));
//! let back: serde_json::Value = serde_json::from_str(&text).unwrap();
//! assert_eq!(back, v);
//! ```

use std::io;

use serde::Serialize;

/// `value` as one JSON line (no newline), every string escaped as the module doc says.
pub fn to_line<T: Serialize + ?Sized>(value: &T) -> String {
    let mut bytes = Vec::with_capacity(512);
    let mut ser = serde_json::Serializer::with_formatter(&mut bytes, VisibleFormatter);
    // Serializing a serde_json::Value or plain structs into a Vec cannot fail.
    if value.serialize(&mut ser).is_err() {
        return "null".to_owned();
    }
    // serde_json writes only UTF-8.
    String::from_utf8(bytes).unwrap_or_default()
}

/// The compact formatter, with invisible characters escaped.
struct VisibleFormatter;

impl serde_json::ser::Formatter for VisibleFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if !(c.is_control() || crate::sink::encode::is_invisible(c)) {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::to_line;

    #[test]
    fn invisible_and_control_characters_are_escaped_and_round_trip() {
        let samples = [
            "plain",
            "quote\" back\\ nl\n cr\r tab\t nul\u{0} del\u{7f}",
            "bidi \u{202e}txt.exe\u{202c} zw\u{200b} ls\u{2028} ps\u{2029} bom\u{feff}",
            "tag \u{e0041}\u{e007f} vs\u{fe0f} 漢字 é",
            "\",\"class_uid\":1,\"x\":\"",
        ];
        for s in samples {
            let line = to_line(&serde_json::json!({ "s": s }));
            assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
            assert!(
                !line
                    .chars()
                    .any(|c| c.is_control() || crate::sink::encode::is_invisible(c)),
                "{line:?}"
            );
            let back: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
            assert_eq!(back["s"], s);
            assert_eq!(back.as_object().map(|o| o.len()), Some(1));
        }
    }
}
