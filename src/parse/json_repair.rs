//! Repairing the one bad value of an otherwise good JSON line, so the event is not lost.
//!
//! A client-controlled value can make a whole JSON log line invalid for a strict parser: a
//! user name logged with a lone surrogate escape (`"\ud800"`, which some JSON encoders write
//! for invalid input), a number out of range (`1e999`, a 20-digit id), `NaN` or `Infinity`
//! (Python's `json.dumps` writes them), raw control bytes inside a string, or an unknown
//! escape (`\x41`). Dropping such a line would let one crafted value hide the event it belongs
//! to, so [`repair`] rewrites only those values and the line is parsed again:
//!
//! | found | becomes |
//! |---|---|
//! | a lone surrogate escape, or `\u` without four hex digits | `\uFFFD` (the replacement character) |
//! | a number that is not finite or does not fit 64 bits, `NaN`, `Infinity` | the same text, quoted |
//! | a raw byte below 0x20 in a string | its `\u00XX` escape |
//! | an unknown escape `\q` | `\\q` (the backslash kept as text) |
//!
//! Only lines the strict parser refused are repaired: valid lines cost nothing. Keys are never
//! touched, so a key the line names twice is still named twice (see `json.rs`, "Duplicate
//! keys").

/// A copy of `line` with the values above repaired, or `None` when nothing needed repair (the
/// line is broken some other way, and stays unparsed).
///
/// ```text
/// let fixed = repair(br#"{"user":"\ud800x","id":123456789012345678901,"v":1e999}"#).unwrap();
/// assert_eq!(fixed, br#"{"user":"\uFFFDx","id":"123456789012345678901","v":"1e999"}"#);
/// ```
pub(super) fn repair(line: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(line.len() + 16);
    let mut changed = false;
    let mut at = 0;
    let mut in_string = false;
    while let Some(&b) = line.get(at) {
        if in_string {
            match b {
                b'"' => {
                    in_string = false;
                    out.push(b);
                    at += 1;
                }
                b'\\' => {
                    let (used, fixed) = escape(line, at, &mut out);
                    changed |= fixed;
                    at += used;
                }
                0x00..=0x1F => {
                    out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
                    changed = true;
                    at += 1;
                }
                _ => {
                    out.push(b);
                    at += 1;
                }
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                out.push(b);
                at += 1;
            }
            b'-' | b'0'..=b'9' | b'N' | b'I' => {
                let len = line[at..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                    .count();
                let token = &line[at..at + len];
                if is_safe_number(token) || len == 0 {
                    out.extend_from_slice(token);
                } else {
                    out.push(b'"');
                    out.extend_from_slice(token);
                    out.push(b'"');
                    changed = true;
                }
                at += len.max(1);
            }
            _ => {
                out.push(b);
                at += 1;
            }
        }
    }
    changed.then_some(out)
}

/// A number a strict parser reads without loss: an integer that fits 64 bits, or a finite
/// float. (`true`/`false`/`null` never get here: they start with other letters.)
fn is_safe_number(token: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(token) else {
        return false;
    };
    if text.bytes().all(|c| c.is_ascii_digit() || c == b'-') {
        return text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok();
    }
    text.bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
        && text.parse::<f64>().is_ok_and(f64::is_finite)
}

/// Copies (or repairs) the escape at `line[at]` (a backslash) into `out`; returns the bytes
/// used and whether it was repaired.
fn escape(line: &[u8], at: usize, out: &mut Vec<u8>) -> (usize, bool) {
    const REPLACEMENT: &[u8] = b"\\uFFFD";
    match line.get(at + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
            out.extend_from_slice(&line[at..at + 2]);
            (2, false)
        }
        Some(b'u') => {
            let Some(unit) = hex4(line, at + 2) else {
                out.extend_from_slice(REPLACEMENT);
                return (2, true);
            };
            match unit {
                0xD800..=0xDBFF => {
                    let low = (line.get(at + 6..at + 8) == Some(b"\\u"))
                        .then(|| hex4(line, at + 8))
                        .flatten();
                    if low.is_some_and(|low| (0xDC00..=0xDFFF).contains(&low)) {
                        out.extend_from_slice(&line[at..at + 12]);
                        (12, false)
                    } else {
                        out.extend_from_slice(REPLACEMENT);
                        (6, true)
                    }
                }
                0xDC00..=0xDFFF => {
                    out.extend_from_slice(REPLACEMENT);
                    (6, true)
                }
                _ => {
                    out.extend_from_slice(&line[at..at + 6]);
                    (6, false)
                }
            }
        }
        // An unknown escape, or a backslash at the very end: keep the backslash as text.
        _ => {
            out.extend_from_slice(b"\\\\");
            (1, true)
        }
    }
}

fn hex4(line: &[u8], at: usize) -> Option<u32> {
    let digits = std::str::from_utf8(line.get(at..at + 4)?).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repaired(line: &str) -> Option<String> {
        repair(line.as_bytes()).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    #[test]
    fn bad_values_are_repaired_and_the_rest_kept() {
        assert_eq!(
            repaired(r#"{"user":"\ud800x","id":123456789012345678901,"v":1e999}"#).as_deref(),
            Some(r#"{"user":"\uFFFDx","id":"123456789012345678901","v":"1e999"}"#)
        );
        assert_eq!(
            repaired(r#"{"a":NaN,"b":-Infinity,"c":[1,2.5,-3e2]}"#).as_deref(),
            Some(r#"{"a":"NaN","b":"-Infinity","c":[1,2.5,-3e2]}"#)
        );
        assert_eq!(
            repaired("{\"m\":\"a\tb\",\"e\":\"\\q\",\"lo\":\"\\udc00\"}").as_deref(),
            Some(r#"{"m":"a\u0009b","e":"\\q","lo":"\uFFFD"}"#)
        );
    }

    #[test]
    fn good_lines_and_pairs_need_no_repair() {
        assert_eq!(
            repaired(r#"{"emoji":"\ud83d\ude00","n":-12,"f":1.5e10}"#),
            None
        );
        assert_eq!(repaired(r#"{"big":18446744073709551615}"#), None);
        // Broken some other way: not this module's to fix.
        assert_eq!(repaired(r#"{"a":"#), None);
    }
}
