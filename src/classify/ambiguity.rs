//! Attacker text never chooses the blamed address.
//!
//! A user name, `ruser`, a disconnect reason or a client version string is written by the
//! client, and most servers log it unescaped, with spaces. A client that logs in as
//! `x from 198.51.100.9 port 22 ssh2` makes sshd write two `from <address>` phrases on one line,
//! and a grammar that takes the wrong one blames (and a block action later blocks) an address
//! the attacker picked, e.g. the admin's. A grammar's regex alone cannot always tell the two
//! apart: `Failed password for root from 192.0.2.12 port 22 ssh2: ruser from 198.51.100.9 port 22
//! ssh2` is a real line either way the client-supplied parts are read.
//!
//! The rule, applied to every grammar match that captured an address: the address stands only
//! when no other address on the line sits in the same kind of position. The position is the
//! *marker* the server writes just before the address (the word before it, `from`, `FROM`,
//! `Client`, or the `key=` of its token, `rhost=`, `rip=`) and the word it writes after it
//! (`port`, `lip=`). If another address token on the line has the same marker and the same
//! word after it, a crafted name could have produced either one, so the event keeps its kind
//! but gets no `src_ip` and the reason [`AMBIGUOUS_ADDRESS`]; the pipeline counts such lines.
//! When nothing follows one of the two, the same marker is enough: the grammar may have taken
//! a client's trailing text (`ssh1: ruser from …`) for the server's.
//!
//! A name that merely contains an address (`Invalid user x from 9.9.9.9 from 192.0.2.1 port
//! 22`) does not cost the line its address: `9.9.9.9` is followed by `from`, not by `port`, so
//! it is not where the server writes an address, and an attacker cannot hide its own attempts
//! that way.
//!
//! When the word before the address is itself attacker text (inside a `user`/`actor` capture,
//! as in `… user <name> <address> port 22`), there is no server marker to compare: such a
//! grammar pins the address by what follows it up to the end anchor, which a name cannot
//! extend.
//!
//! Cost: a line with one `from` pays a scan for the byte `f`; tokens are parsed only when the
//! marker occurs twice.

use std::ops::Range;

/// The `reason` of an event whose line held two candidate addresses.
pub const AMBIGUOUS_ADDRESS: &str = "ambiguous_address";

/// True when `message`, whose grammar put the address at `address`, holds another address
/// with the same server marker, so a crafted client string could have put either there.
/// `attacker` are the byte ranges of the client-controlled captures (user, actor, namespace,
/// http_path).
///
/// ```
/// use secpipe::classify::ambiguity::is_ambiguous;
/// let line = "Failed password for root from 192.0.2.12 port 22 ssh2: ruser from 198.51.100.9 port 22 ssh2";
/// let at = line.find("198.51").unwrap();
/// assert!(is_ambiguous(line, at..at + 12, &[]));
/// let plain = "Failed password for root from 192.0.2.12 port 22 ssh2";
/// let at = plain.find("192.0").unwrap();
/// assert!(!is_ambiguous(plain, at..at + 10, &[20..24]));
/// ```
pub fn is_ambiguous(message: &str, address: Range<usize>, attacker: &[Range<usize>]) -> bool {
    let Some(marker) = marker_before(message, address.start) else {
        return false;
    };
    if attacker
        .iter()
        .any(|r| r.start <= marker.range.start && marker.range.end <= r.end)
    {
        return false;
    }
    // Fast path: the marker appears once, so no other address can carry it. A scan for its
    // first byte, not a substring searcher: building one per line costs more than the scan.
    let needle = marker.text(message);
    let (hay, pin) = (message.as_bytes(), needle.as_bytes());
    let Some(&first) = pin.first() else {
        return false;
    };
    let occurrences = memchr::memchr_iter(first, hay)
        .filter(|&i| hay.get(i..).is_some_and(|rest| rest.starts_with(pin)))
        .take(2)
        .count();
    if occurrences < 2 {
        return false;
    }
    let ours = message
        .get(address.clone())
        .and_then(crate::event::parse_ip);
    let our_next = next_word_key(message, address.end);
    address_tokens(message)
        .filter(|(range, _)| !overlaps(range, &address))
        .any(|(range, ip)| {
            Some(ip) != ours
                && marker_before(message, range.start)
                    .is_some_and(|m| m.text(message) == needle && m.kind == marker.kind)
                // The server writes the same thing after every address of its template: a
                // rival followed by other words (`from 9.9.9.9 from 192.0.2.1 port 22`) is
                // not in an address position. An address with nothing after it (either one)
                // proves nothing, so then any rival counts.
                && match (our_next, next_word_key(message, range.end)) {
                    (Some(ours), Some(theirs)) => ours == theirs,
                    _ => true,
                }
        })
}

/// What follows the token that holds the address ending at `end`: the next word, reduced to
/// its `key=` when it has one (`lip=192.0.2.1,` → `lip=`) and stripped of punctuation.
fn next_word_key(message: &str, end: usize) -> Option<&str> {
    let rest = message.get(end..)?;
    let token_end = rest.find(|c: char| c.is_ascii_whitespace())?;
    let word = rest.get(token_end..)?.split_ascii_whitespace().next()?;
    let word = match word.find('=') {
        Some(eq) => word.get(..=eq)?,
        None => word.trim_matches(|c: char| {
            matches!(
                c,
                '"' | '\'' | ',' | ';' | ':' | '.' | '(' | ')' | '[' | ']'
            )
        }),
    };
    (!word.is_empty()).then_some(word)
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MarkerKind {
    /// `key=` glued to the address: `rhost=203.0.113.7`.
    Key,
    /// The previous word: `from 203.0.113.7`, `FROM '203.0.113.7'`.
    Word,
}

struct Marker {
    kind: MarkerKind,
    range: Range<usize>,
}

impl Marker {
    fn text<'m>(&self, message: &'m str) -> &'m str {
        message.get(self.range.clone()).unwrap_or("")
    }
}

/// What the server wrote just before the address that starts at `at`.
fn marker_before(message: &str, at: usize) -> Option<Marker> {
    let bytes = message.as_bytes();
    let token_start = bytes
        .get(..at)?
        .iter()
        .rposition(|b| b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    // Inside the token: `rhost=` (through its `=`), or opening quotes/brackets to skip.
    let glued = bytes.get(token_start..at)?;
    if let Some(eq) = glued.iter().rposition(|&b| b == b'=') {
        return Some(Marker {
            kind: MarkerKind::Key,
            range: token_start..token_start + eq + 1,
        });
    }
    if !glued.iter().all(|b| b"'\"[(<".contains(b)) {
        return None;
    }
    let before = bytes.get(..token_start)?;
    let word_end = before.iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
    let word_start = before
        .get(..word_end)?
        .iter()
        .rposition(|b| b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    Some(Marker {
        kind: MarkerKind::Word,
        range: word_start..word_end,
    })
}

/// Every whitespace-separated token of `message` that is an address once quotes, brackets,
/// a `key=` and trailing punctuation are taken off: (byte range of the address, address).
fn address_tokens(message: &str) -> impl Iterator<Item = (Range<usize>, std::net::IpAddr)> + '_ {
    let mut offset = 0;
    message.split_ascii_whitespace().filter_map(move |token| {
        let start = offset + message.get(offset..)?.find(token)?;
        offset = start + token.len();
        let after_key = token.rfind('=').map_or(0, |i| i + 1);
        let inner = token.get(after_key..)?;
        let lead = inner.len() - inner.trim_start_matches(['\'', '"', '[', '(', '<']).len();
        let inner = inner.get(lead..)?;
        // Trailing punctuation goes (`[2001:db8::1]:`, `1.2.3.4,`); a `:` only when it is
        // not part of an IPv6 `::`.
        let mut trimmed = inner;
        loop {
            let before = trimmed.len();
            trimmed = trimmed.trim_end_matches(['\'', '"', ']', ')', '>', ',', ';', '.']);
            if let Some(t) = trimmed.strip_suffix(':')
                && !t.ends_with(':')
            {
                trimmed = t;
            }
            if trimmed.len() == before {
                break;
            }
        }
        // Only digits, hex, dots and colons can make an address: skip words cheaply.
        if trimmed.is_empty()
            || !trimmed
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
        {
            return None;
        }
        let ip = crate::event::parse_ip(trimmed)?;
        let from = start + after_key + lead;
        Some((from..from + trimmed.len(), ip))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: &str, ip: &str) -> Range<usize> {
        let i = line.rfind(ip).expect("address in line");
        i..i + ip.len()
    }

    #[test]
    fn a_second_from_address_makes_the_line_ambiguous() {
        let line = "Failed password for x from 6.6.6.6 port 22 ssh2 from 192.0.2.1 port 22 ssh2";
        assert!(is_ambiguous(line, at(line, "192.0.2.1"), &[]));
    }

    #[test]
    fn a_rival_not_followed_by_the_servers_words_is_no_candidate() {
        let line = "Invalid user x from 9.9.9.9 from 192.0.2.1 port 40406";
        assert!(!is_ambiguous(line, at(line, "192.0.2.1"), &[]));
    }

    #[test]
    fn an_address_at_the_end_has_any_same_marker_rival() {
        let line = "Failed password for root from 192.0.2.12 port 22 ssh1: ruser from 6.6.6.6";
        assert!(is_ambiguous(line, at(line, "6.6.6.6"), &[]));
        let line = "user=<x>, rip=6.6.6.6, lip=10.0.0.1, y>, rip=192.0.2.1, lip=10.0.0.1";
        let first = line.find("6.6.6.6").expect("address");
        assert!(is_ambiguous(line, first..first + 7, &[]));
    }

    #[test]
    fn a_server_written_second_address_with_another_marker_is_not() {
        let line = "Connection from 192.0.2.1 port 5 on 10.0.0.1 port 22";
        assert!(!is_ambiguous(line, at(line, "192.0.2.1"), &[]));
        let line = "PAM: Authentication failure for bob from 192.0.2.1 via 10.0.0.1";
        assert!(!is_ambiguous(line, at(line, "192.0.2.1"), &[]));
    }

    #[test]
    fn a_second_rhost_is_ambiguous() {
        let line = "authentication failure; ruser=x rhost=6.6.6.6 rhost=192.0.2.1";
        assert!(is_ambiguous(line, at(line, "192.0.2.1"), &[]));
        // Here only one `rhost=` is followed by what PAM writes next (` user=`).
        let line = "authentication failure; ruser=x rhost=6.6.6.6 rhost=192.0.2.1 user=root";
        assert!(!is_ambiguous(line, at(line, "192.0.2.1"), &[]));
    }

    #[test]
    fn quoted_and_bracketed_addresses_are_found() {
        let line = "FAILED LOGIN 1 FROM '6.6.6.6' FOR 'x' FROM '192.0.2.1' FOR 'root'";
        assert!(is_ambiguous(line, at(line, "192.0.2.1"), &[]));
        let line = "from [2001:db8::1]: from 2001:db8::2";
        assert!(is_ambiguous(line, at(line, "2001:db8::2"), &[]));
    }

    #[test]
    fn the_same_address_twice_is_not_ambiguous() {
        let line = "Failed password for root from 192.0.2.1 port 22 ssh2: from 192.0.2.1";
        assert!(!is_ambiguous(line, at(line, "192.0.2.1"), &[]));
    }

    #[test]
    fn an_address_inside_a_name_without_the_marker_is_not_a_rival() {
        // The attacker cannot make its own line lose the address by naming an address.
        let line = "Failed password for invalid user 6.6.6.6 from 192.0.2.1 port 22 ssh2";
        assert!(!is_ambiguous(
            line,
            at(line, "192.0.2.1"),
            std::slice::from_ref(&(33..40))
        ));
    }

    #[test]
    fn a_marker_inside_attacker_text_is_no_marker() {
        let line = "Connection closed by invalid user a 6.6.6.6 a 192.0.2.1 port 22 [preauth]";
        let name = line.find("a 6.6").expect("name");
        assert!(!is_ambiguous(
            line,
            at(line, "192.0.2.1"),
            std::slice::from_ref(&(name..name + 11))
        ));
    }
}
