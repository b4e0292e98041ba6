//! Finding an entry's `__CURSOR` in a `journalctl -o json` line, without parsing the JSON.
//!
//! The cursor is journald's own name for an entry's position (`s=…;i=…;b=…;m=…;t=…;x=…`); it
//! is what a restart hands back to `journalctl --after-cursor=`. The field order of
//! `journalctl -o json` is not fixed (systemd 252 prints fields in hash order), so the key is
//! searched for anywhere in the line with `memchr::memmem`.
//!
//! Why a byte search is sound: journalctl JSON-escapes every key and value, so the bytes
//! `"__CURSOR":"` (with their unescaped quotes) only ever appear as a key. A value that
//! contains them (`FOO=a"__CURSOR":"--output=cat`) is printed as `a\"__CURSOR\":\"…` and does
//! not match. A line that still holds the key twice (a crafted journal file with a data field
//! of that name) has no usable cursor, and neither has one whose value is outside the cursor
//! alphabet ([`is_cursor`]): whatever reaches `--after-cursor=` or the state file is letters,
//! digits, `=` and `;`.
//!
//! ```
//! use secpipe::source::journal::cursor::{find_cursor, Found};
//! let line = br#"{"MESSAGE":"hi","__CURSOR":"s=ab;i=1;b=cd;m=3e9;t=60a2;x=9d"}"#;
//! assert_eq!(find_cursor(line), Found::One(b"s=ab;i=1;b=cd;m=3e9;t=60a2;x=9d"));
//! // A value that quotes the key is escaped, so it is not taken for it.
//! let forged = br#"{"FOO":"a\"__CURSOR\":\"--output=cat","__CURSOR":"s=ab;i=2"}"#;
//! assert_eq!(find_cursor(forged), Found::One(b"s=ab;i=2"));
//! assert_eq!(find_cursor(br#"{"__CURSOR":"s=1","__CURSOR":"s=2"}"#), Found::Ambiguous);
//! assert_eq!(find_cursor(br#"{"__CURSOR":"--output=cat"}"#), Found::Invalid);
//! ```

use std::sync::LazyLock;

use memchr::memmem::Finder;

/// The key as journalctl prints it, with the quote that opens the value.
pub const CURSOR_KEY: &[u8] = b"\"__CURSOR\":\"";

/// Longer cursors are refused: journald's own are about 120 bytes.
pub const MAX_CURSOR: usize = 512;

static FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(CURSOR_KEY));

/// What a line says about its cursor.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<'a> {
    /// Exactly one cursor, in the cursor alphabet.
    One(&'a [u8]),
    /// No `__CURSOR` key (not journalctl output, or a line cut before it).
    Missing,
    /// The key more than once: a crafted journal file.
    Ambiguous,
    /// The value is too long, unterminated or outside the cursor alphabet.
    Invalid,
}

/// Whether `cursor` may be saved and passed to `journalctl --after-cursor=`: at most
/// [`MAX_CURSOR`] bytes in journald's own form, `;`-separated `KEY=HEX` items with KEY one of
/// `s i b m t x` (so never an option, a quote, a newline or a shell character). The form, not
/// only the alphabet: a cursor journalctl cannot parse (`abc`) makes every journalctl exit at
/// once with "Failed to seek to cursor", and the journal would go unread for ever.
///
/// ```
/// use secpipe::source::journal::cursor::is_cursor;
/// assert!(is_cursor(b"s=55d4;i=1;b=0123;m=3e9;t=60a24181e43e8;x=9d41"));
/// assert!(!is_cursor(b"-D/etc"));
/// assert!(!is_cursor(b"s=1\n--output=cat"));
/// assert!(!is_cursor(b""));
/// assert!(!is_cursor(b"abc"));
/// assert!(!is_cursor(b"s=1;;i=2"));
/// ```
pub fn is_cursor(cursor: &[u8]) -> bool {
    (1..=MAX_CURSOR).contains(&cursor.len())
        && cursor.split(|&b| b == b';').all(|item| match item {
            [key, b'=', value @ ..] => {
                b"sibmtx".contains(key)
                    && !value.is_empty()
                    && value.iter().all(u8::is_ascii_hexdigit)
            }
            _ => false,
        })
}

/// The cursor of the complete line `line`.
pub fn find_cursor(line: &[u8]) -> Found<'_> {
    let mut hits = FINDER.find_iter(line);
    let Some(first) = hits.next() else {
        return Found::Missing;
    };
    if hits.next().is_some() {
        return Found::Ambiguous;
    }
    let value = &line[first + CURSOR_KEY.len()..];
    let Some(end) = memchr::memchr(b'"', &value[..value.len().min(MAX_CURSOR + 1)]) else {
        return Found::Invalid;
    };
    if is_cursor(&value[..end]) {
        Found::One(&value[..end])
    } else {
        Found::Invalid
    }
}

/// The cursor of a line that arrives in pieces and may be longer than `--max-line`: the
/// pipeline gets the line cut at `--max-line`, but its cursor may sit in the part that is cut
/// off, and without it a restart would read the entry again. The scanner sees every byte of
/// the line, keeping only the cursor (at most [`MAX_CURSOR`] bytes), so a line of any length
/// still yields it. Only lines that do not fit in one read buffer come here; the others are
/// searched whole with [`find_cursor`].
///
/// ```
/// use secpipe::source::journal::cursor::{CursorScanner, Found};
/// let mut scan = CursorScanner::default();
/// scan.push(br#"{"MESSAGE":"very long","__CUR"#);
/// scan.push(br#"SOR":"s=ab;i="#);
/// scan.push(br#"7","X":"y"}"#);
/// assert_eq!(scan.finish().as_deref(), Ok(&b"s=ab;i=7"[..]));
/// ```
#[derive(Default)]
pub struct CursorScanner {
    /// How many bytes of [`CURSOR_KEY`] the last bytes seen match.
    matched: usize,
    /// Inside the value of a found key: its bytes so far.
    value: Option<Vec<u8>>,
    /// The value has ended (its closing quote was seen).
    closed: bool,
    /// Keys seen.
    keys: u32,
    /// The value went past [`MAX_CURSOR`] or its line ended inside it.
    invalid: bool,
}

impl CursorScanner {
    /// More bytes of the line (without its newline).
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if let Some(value) = self.value.as_mut().filter(|_| !self.closed) {
                if b == b'"' {
                    self.closed = true;
                } else if value.len() < MAX_CURSOR + 1 {
                    value.push(b);
                } else {
                    self.invalid = true;
                }
                continue;
            }
            // The key starts with its only repeated byte, `"`, so after a mismatch the match
            // restarts at 1 (this byte is a `"`) or 0.
            self.matched = if b == CURSOR_KEY[self.matched] {
                self.matched + 1
            } else {
                usize::from(b == b'"')
            };
            if self.matched == CURSOR_KEY.len() {
                self.matched = 0;
                self.keys += 1;
                if self.value.is_none() {
                    self.value = Some(Vec::new());
                }
            }
        }
    }

    /// The line has ended: its cursor, or why there is none. Resets the scanner.
    pub fn finish(&mut self) -> Result<Vec<u8>, ScanError> {
        let scanned = std::mem::take(self);
        match (scanned.keys, scanned.value) {
            (0, _) | (_, None) => Err(ScanError::Missing),
            (1, Some(value)) if scanned.closed && !scanned.invalid && is_cursor(&value) => {
                Ok(value)
            }
            (1, Some(_)) => Err(ScanError::Invalid),
            _ => Err(ScanError::Ambiguous),
        }
    }
}

/// Why a scanned line has no usable cursor (as [`Found`]).
#[derive(Debug, PartialEq, Eq)]
pub enum ScanError {
    Missing,
    Ambiguous,
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scanner and the whole-line search agree, wherever the line is split.
    #[test]
    fn scanning_in_pieces_finds_what_the_whole_line_search_finds() {
        let lines: [&[u8]; 6] = [
            br#"{"A":"\"__CURSOR\":\"x","__CURSOR":"s=ab;i=1","B":"c"}"#,
            br#"{"__CURSOR":"s=1","__CURSOR":"s=2"}"#,
            br#"{"__CURSOR":"s=1 --output=cat"}"#,
            br#"{"MESSAGE":"no cursor"}"#,
            br#"{"""__CURSOR":"s=9"}"#,
            br#"{"__CURSOR":"s=unterminated"#,
        ];
        for line in lines {
            let whole = match find_cursor(line) {
                Found::One(c) => Ok(c.to_vec()),
                Found::Missing => Err(ScanError::Missing),
                Found::Ambiguous => Err(ScanError::Ambiguous),
                Found::Invalid => Err(ScanError::Invalid),
            };
            for cut in 0..=line.len() {
                let mut scan = CursorScanner::default();
                scan.push(&line[..cut]);
                scan.push(&line[cut..]);
                assert_eq!(
                    scan.finish(),
                    whole,
                    "{} cut at {cut}",
                    String::from_utf8_lossy(line)
                );
            }
        }
    }

    #[test]
    fn an_endless_cursor_value_is_invalid_and_bounded() {
        let mut scan = CursorScanner::default();
        scan.push(br#"{"__CURSOR":""#);
        for _ in 0..10_000 {
            scan.push(b"aaaaaaaaaa");
        }
        assert!(
            scan.value
                .as_ref()
                .is_some_and(|v| v.len() <= MAX_CURSOR + 1)
        );
        scan.push(b"\"}");
        assert_eq!(scan.finish(), Err(ScanError::Invalid));
    }
}
