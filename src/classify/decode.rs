//! The normal form of a request part before the injection patterns look at it: the decodings
//! ModSecurity's core rule set (OWASP CRS) applies, so that an attack is found in whatever
//! encoding the server itself would undo.
//!
//! [`View::Plain`], in this order:
//! 1. `urlDecodeUni`: `%XX`, IIS `%uXXXX`, and `+` as a space in a query; repeated (at most
//!    [`MAX_DECODE_ROUNDS`] times) because attackers double- and triple-encode.
//! 2. `utf8toUnicode`, leniently: overlong UTF-8 forms (`%c0%af` is `/`, `%c0%ae` is `.`,
//!    `%e0%80%af` is `/`) decode to their character, as old IIS and Tomcat servers did, which
//!    is the point of sending them.
//! 3. `htmlEntityDecode`: `&lt;`, `&#60;`, `&#x3c;` (numeric ones also without `;`).
//! 4. `jsDecode`: `\xHH`, `\uHHHH`. (Other backslash escapes are left alone: `..\..\` and
//!    `c:\windows\` are traversal, not JavaScript.)
//! 5. `removeNulls`; fullwidth forms (U+FF01–U+FF5E) and the division slashes to ASCII (IIS's
//!    best-fit mapping); `normalizePath`'s `//` → `/` and `/./` → `/` (`..` is kept: it is
//!    what the traversal patterns look for).
//!
//! [`View::Obfuscated`] then adds `cssDecode` (`\3c `) and removes SQL comment markers (`UN/**/ION`,
//! `/*!50000union*/`); it is a second look, only taken when the plain view found nothing and
//! the text holds a backslash or `/*`, because CSS escapes would break Windows paths in the
//! plain view (`\b` of `\boot.ini` is a hex digit).
//!
//! [`View::CommandLine`] is [`View::Plain`] with `cmdLine`'s deletions: `\`, `"`, `'` and `^`
//! removed and `$IFS` / `${IFS}` read as a space, so `w'h'o'a'm'i` and `c^a^t` are the commands
//! a shell runs. Only command-injection patterns count in it: removing quotes would make SQL
//! text look odd to the other patterns.
//!
//! Case and whitespace runs are left to the patterns, which are case-insensitive and allow
//! `\s*`.

use std::borrow::Cow;

/// Double and triple encoding are common; more rounds than this are not worth the time.
pub(crate) const MAX_DECODE_ROUNDS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum View {
    /// URL, overlong UTF-8, HTML entity and JavaScript decoding, NULs removed, path slashes
    /// normalized.
    Plain,
    /// [`View::Plain`] plus CSS escapes and SQL comment markers removed.
    Obfuscated,
    /// [`View::Plain`] with the shell's quoting and escapes removed.
    CommandLine,
}

/// `text` in the normal form of `view`. `query_plus`: `+` after `?` is a space (URLs; not user
/// agents, which write `+http://`). Borrows when nothing needed decoding.
pub(crate) fn normalize(text: &str, query_plus: bool, view: View) -> Cow<'_, str> {
    let mut current = Cow::Borrowed(text);
    for _ in 0..MAX_DECODE_ROUNDS {
        let has_plus = query_plus
            && current
                .find('?')
                .is_some_and(|q| current[q..].contains('+'));
        if !current.contains('%') && !has_plus {
            break;
        }
        let decoded = url_decode_uni(&current, query_plus);
        if decoded == current.as_ref() {
            break;
        }
        current = Cow::Owned(decoded);
    }
    let mut out = current;
    if out.contains('&') {
        out = Cow::Owned(html_entity_decode(&out));
    }
    if out.contains('\\') {
        out = Cow::Owned(js_decode(&out));
    }
    if needs_char_cleanup(&out) {
        out = Cow::Owned(char_cleanup(&out));
    }
    if view == View::Obfuscated {
        if out.contains('\\') {
            out = Cow::Owned(css_decode(&out));
        }
        if out.contains("/*") || out.contains("*/") {
            out = Cow::Owned(remove_comment_markers(&out));
        }
    }
    if view == View::CommandLine && out.contains(['\\', '"', '\'', '^', '$']) {
        out = Cow::Owned(command_line(&out));
    }
    out
}

/// Whether [`View::CommandLine`] could differ from [`View::Plain`] on `text`.
pub(crate) fn may_be_shell_quoted(text: &str) -> bool {
    text.contains(['\\', '"', '\'', '^', '$', '%', '&'])
}

/// `cmdLine`'s deletions: the characters a shell drops (`\`, quotes, cmd.exe's `^`), and the
/// `$IFS` word splitter as a space.
fn command_line(text: &str) -> String {
    let spaced = text.replace("${IFS}", " ").replace("$IFS", " ");
    spaced
        .chars()
        .filter(|c| !matches!(c, '\\' | '"' | '\'' | '^'))
        .collect()
}

/// Whether [`View::Obfuscated`] could differ from [`View::Plain`] on `text`.
pub(crate) fn may_be_obfuscated(text: &str) -> bool {
    text.contains('\\') || text.contains("/*") || text.contains("*/") || text.contains('%')
}

fn hex_value(b: u8) -> Option<u32> {
    char::from(b).to_digit(16)
}

fn hex_number(digits: &[u8]) -> Option<u32> {
    digits
        .iter()
        .try_fold(0u32, |acc, &b| Some(acc.checked_mul(16)? + hex_value(b)?))
}

/// `%XX` and `%uXXXX` (and `+` in a query) decoded to bytes, then read as lenient UTF-8.
fn url_decode_uni(text: &str, query_plus: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut in_query = false;
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        match b {
            b'%' => {
                if let Some(unit) = bytes
                    .get(at + 1..at + 6)
                    .filter(|d| d[0] == b'u' || d[0] == b'U')
                    .and_then(|d| hex_number(&d[1..]))
                {
                    let c = char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER);
                    let mut utf8 = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                    at += 6;
                    continue;
                }
                if let Some(byte) = bytes.get(at + 1..at + 3).and_then(hex_number) {
                    out.push(byte as u8);
                    at += 3;
                    continue;
                }
                out.push(b);
            }
            b'+' if query_plus && in_query => out.push(b' '),
            b'?' => {
                in_query = true;
                out.push(b);
            }
            _ => out.push(b),
        }
        at += 1;
    }
    lenient_utf8(&out)
}

/// UTF-8 that also accepts overlong forms (`C0 AF` is `/`), the way vulnerable servers read it;
/// anything else invalid becomes U+FFFD.
pub(crate) fn lenient_utf8(bytes: &[u8]) -> String {
    if let Ok(valid) = std::str::from_utf8(bytes) {
        return valid.to_owned();
    }
    let mut out = String::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let lead = bytes[at];
        let (len, initial) = match lead {
            0x00..=0x7F => (1, u32::from(lead)),
            0xC0..=0xDF => (2, u32::from(lead & 0x1F)),
            0xE0..=0xEF => (3, u32::from(lead & 0x0F)),
            0xF0..=0xF7 => (4, u32::from(lead & 0x07)),
            _ => (0, 0),
        };
        let continuation = bytes.get(at + 1..at + len.max(1));
        let code = match continuation {
            Some(rest) if len > 0 && rest.iter().all(|&c| c & 0xC0 == 0x80) => Some(
                rest.iter()
                    .fold(initial, |acc, &c| (acc << 6) | u32::from(c & 0x3F)),
            ),
            _ => None,
        };
        match code {
            Some(code) => {
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                at += len;
            }
            None => {
                out.push(char::REPLACEMENT_CHARACTER);
                at += 1;
            }
        }
    }
    out
}

/// `&lt;` `&gt;` `&quot;` `&apos;` `&amp;` and a few more by name (with `;`), `&#60;` and
/// `&#x3c;` by number (the `;` optional, as browsers accept).
fn html_entity_decode(text: &str) -> String {
    const NAMED: [(&str, char); 12] = [
        ("lt;", '<'),
        ("gt;", '>'),
        ("quot;", '"'),
        ("apos;", '\''),
        ("amp;", '&'),
        ("nbsp;", ' '),
        ("sol;", '/'),
        ("bsol;", '\\'),
        ("colon;", ':'),
        ("lpar;", '('),
        ("rpar;", ')'),
        ("semi;", ';'),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        if let Some((c, used)) = numeric_entity(after) {
            out.push(c);
            rest = &after[used..];
            continue;
        }
        let named = NAMED.iter().find(|(name, _)| {
            after
                .get(..name.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(name))
        });
        match named {
            Some((name, c)) => {
                out.push(*c);
                rest = &after[name.len()..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `#60;`, `#x3c;`, `#X3C` (after the `&`): the character and the bytes used.
fn numeric_entity(after: &str) -> Option<(char, usize)> {
    let bytes = after.as_bytes();
    if bytes.first() != Some(&b'#') {
        return None;
    }
    let (hex, start) = match bytes.get(1) {
        Some(b'x' | b'X') => (true, 2),
        _ => (false, 1),
    };
    let digits = bytes[start..]
        .iter()
        .take(8)
        .take_while(|b| {
            if hex {
                b.is_ascii_hexdigit()
            } else {
                b.is_ascii_digit()
            }
        })
        .count();
    if digits == 0 {
        return None;
    }
    let number = &after[start..start + digits];
    let code = u32::from_str_radix(number, if hex { 16 } else { 10 }).ok()?;
    let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut used = start + digits;
    if bytes.get(used) == Some(&b';') {
        used += 1;
    }
    Some((c, used))
}

/// `\xHH` and `\uHHHH`; other backslashes stay.
fn js_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut copied = 0;
    while let Some(offset) = memchr::memchr(b'\\', &bytes[at..]) {
        let slash = at + offset;
        let escape = match bytes.get(slash + 1) {
            Some(b'x' | b'X') => bytes
                .get(slash + 2..slash + 4)
                .and_then(hex_number)
                .map(|code| (code, 4)),
            Some(b'u' | b'U') => bytes
                .get(slash + 2..slash + 6)
                .and_then(hex_number)
                .map(|code| (code, 6)),
            _ => None,
        };
        match escape {
            Some((code, len)) => {
                out.push_str(&text[copied..slash]);
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                at = slash + len;
                copied = at;
            }
            None => at = slash + 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// `\3c ` / `\00003c`: CSS escapes of one to six hex digits, with one optional space after.
fn css_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut copied = 0;
    while let Some(offset) = memchr::memchr(b'\\', &bytes[at..]) {
        let slash = at + offset;
        let digits = bytes[slash + 1..]
            .iter()
            .take(6)
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if digits == 0 {
            at = slash + 1;
            continue;
        }
        let code = hex_number(&bytes[slash + 1..slash + 1 + digits]).unwrap_or(0xFFFD);
        out.push_str(&text[copied..slash]);
        out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
        at = slash + 1 + digits;
        if bytes.get(at) == Some(&b' ') {
            at += 1;
        }
        copied = at;
    }
    out.push_str(&text[copied..]);
    out
}

/// `/*`, `*/` and MySQL's `/*!50000` version markers removed, their contents kept:
/// `UN/**/ION` → `UNION`, `/*!50000union*/` → `union`.
///
/// One pass over the bytes: a text made of nothing but markers costs no more than any other.
fn remove_comment_markers(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut at, mut copied) = (0, 0);
    while at + 1 < bytes.len() {
        let marker = matches!(&bytes[at..at + 2], b"/*" | b"*/");
        if !marker {
            at += 1;
            continue;
        }
        out.push_str(&text[copied..at]);
        let opens_version = &bytes[at..at + 2] == b"/*" && bytes.get(at + 2) == Some(&b'!');
        at += 2;
        if opens_version {
            at += 1;
            while bytes.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
        }
        copied = at;
    }
    out.push_str(&text[copied..]);
    out
}

fn needs_char_cleanup(text: &str) -> bool {
    text.contains('\0') || text.contains("//") || text.contains("/./") || !text.is_ascii()
}

/// NULs removed, fullwidth ASCII and the division slashes mapped to ASCII, `//` and `/./`
/// collapsed to `/`.
fn char_cleanup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = match c {
            '\0' => continue,
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFF01 + 0x21).unwrap_or(c),
            '\u{2215}' | '\u{2044}' => '/',
            '\u{2216}' | '\u{FE68}' => '\\',
            other => other,
        };
        if c == '/' && out.ends_with('/') {
            continue;
        }
        if c == '/' && out.ends_with("/.") {
            out.pop();
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> String {
        normalize(text, true, View::Plain).into_owned()
    }

    #[test]
    fn url_decoding_repeats_and_reads_plus_in_the_query_only() {
        assert_eq!(plain("%252e%252e%252f"), "../");
        assert_eq!(plain("/s?q=a+b"), "/s?q=a b");
        assert_eq!(plain("/a+b"), "/a+b");
        assert_eq!(
            normalize("/plain", true, View::Plain),
            Cow::Borrowed("/plain")
        );
    }

    #[test]
    fn iis_percent_u_and_overlong_utf8_decode_to_their_character() {
        assert_eq!(plain("%u003cscript%u003e"), "<script>");
        assert_eq!(plain("..%c0%af..%c0%afetc"), "../../etc");
        assert_eq!(plain("%c0%ae%c0%ae/"), "../");
        assert_eq!(plain("..%e0%80%afx"), "../x");
        assert_eq!(plain("..%c1%9cx"), "..\\x");
        // A lone surrogate or a broken sequence is a replacement character, not a crash.
        assert_eq!(plain("%ud800"), "\u{FFFD}");
        assert_eq!(plain("%ff%fe"), "\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn entities_js_escapes_nulls_and_fullwidth_forms() {
        assert_eq!(plain("&lt;script&gt;"), "<script>");
        assert_eq!(plain("&#60;img&#x3E;&#X3c"), "<img><");
        assert_eq!(plain("fish&chips&amp;more"), "fish&chips&more");
        assert_eq!(plain(r"\x3cscript\u003e"), "<script>");
        assert_eq!(plain(r"..\..\windows\win.ini"), r"..\..\windows\win.ini");
        assert_eq!(plain("<scr%00ipt>"), "<script>");
        assert_eq!(plain("\u{FF1C}script\u{FF1E}"), "<script>");
        assert_eq!(plain("/etc//passwd"), "/etc/passwd");
        assert_eq!(plain("/etc/./passwd"), "/etc/passwd");
    }

    #[test]
    fn line_long_runs_of_markers_and_escapes_decode_whole() {
        // 64 KiB (the longest line) of one decoder's trigger each; the decoders walk the text
        // once, so a run of markers is not a way to make detection slow.
        let long = |unit: &str| unit.repeat(64 * 1024 / unit.len());
        assert_eq!(normalize(&long("/*"), true, View::Obfuscated), "");
        assert_eq!(normalize(&long("*/"), true, View::Obfuscated), "");
        assert_eq!(
            normalize(&long("&lt;"), true, View::Plain),
            "<".repeat(16 * 1024)
        );
        assert_eq!(normalize(&long("/./"), true, View::Plain), "/");
        assert_eq!(
            normalize(&long("$IFS"), true, View::CommandLine),
            " ".repeat(16 * 1024)
        );
        assert_eq!(
            normalize(&long(r"\x41"), true, View::Plain),
            "A".repeat(16 * 1024)
        );
        let view = |t: &str| normalize(t, true, View::Obfuscated).into_owned();
        assert_eq!(view("a/*/b*/*/c"), "a/bc");
        assert_eq!(view("/*!"), "");
    }

    #[test]
    fn command_line_view_drops_shell_quoting() {
        let view = |t: &str| normalize(t, true, View::CommandLine).into_owned();
        assert_eq!(view("x;w'h'o'a'm'i"), "x;whoami");
        assert_eq!(view(r#"x|c^a^t${IFS}/e"t"c/hos\ts"#), "x|cat /etc/hosts");
        assert_eq!(view("%3Bw%27h%27oami"), ";whoami");
    }

    #[test]
    fn obfuscated_view_adds_css_escapes_and_sql_comments() {
        let view = |t: &str| normalize(t, true, View::Obfuscated).into_owned();
        assert_eq!(view(r"\3c script\3e"), "<script>");
        assert_eq!(view("UN/**/ION SEL/**/ECT"), "UNION SELECT");
        assert_eq!(view("/*!50000union*/ select"), "union select");
    }
}
