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
//! *marker* the server writes just before the address: the word before it (`from`, `FROM`,
//! `by`) or the `key=` of its token (`rhost=`). If another address token on the line carries
//! the same marker, a crafted name could have produced either one, so the event keeps its kind
//! but gets no `src_ip` and the reason [`AMBIGUOUS_ADDRESS`]; the pipeline counts such lines.
//!
//! When the word before the address is itself attacker text (inside a `user`/`actor` capture,
//! as in `… user <name> <address> port 22`), there is no server marker to compare: such a
//! grammar pins the address by what follows it up to the end anchor, which a name cannot
//! extend.
//!
//! Cost: a line with one `from` pays one substring search; tokens are parsed only when the
//! marker occurs twice.

use std::ops::Range;

/// The `reason` of an event whose line held two candidate addresses.
pub const AMBIGUOUS_ADDRESS: &str = "ambiguous_address";

/// True when `message`, whose grammar put the address at `address`, holds another address
/// with the same server marker, so a crafted client string could have put either there.
/// `attacker` are the byte ranges of the client-controlled captures (user, actor, namespace).
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
    // Fast path: the marker appears once, so no other address can carry it.
    let needle = marker.text(message);
    if memchr::memmem::find_iter(message.as_bytes(), needle.as_bytes()).nth(1).is_none() {
        return false;
    }
    let ours = message.get(address.clone()).and_then(crate::event::parse_ip);
    address_tokens(message)
        .filter(|(range, _)| !overlaps(range, &address))
        .any(|(range, ip)| {
            Some(ip) != ours
                && marker_before(message, range.start)
                    .is_some_and(|m| m.text(message) == needle && m.kind == marker.kind)
        })
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
    fn a_server_written_second_address_with_another_marker_is_not() {
        let line = "Connection from 192.0.2.1 port 5 on 10.0.0.1 port 22";
        assert!(!is_ambiguous(line, at(line, "192.0.2.1"), &[]));
        let line = "PAM: Authentication failure for bob from 192.0.2.1 via 10.0.0.1";
        assert!(!is_ambiguous(line, at(line, "192.0.2.1"), &[]));
    }

    #[test]
    fn a_second_rhost_is_ambiguous() {
        let line = "authentication failure; ruser=x rhost=6.6.6.6 rhost=192.0.2.1 user=root";
        assert!(is_ambiguous(line, at(line, "192.0.2.1"), &[]));
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
        assert!(!is_ambiguous(line, at(line, "192.0.2.1"), &[33..40]));
    }

    #[test]
    fn a_marker_inside_attacker_text_is_no_marker() {
        let line = "Connection closed by invalid user a 6.6.6.6 a 192.0.2.1 port 22 [preauth]";
        let name = line.find("a 6.6").expect("name");
        assert!(!is_ambiguous(
            line,
            at(line, "192.0.2.1"),
            &[name..name + 11]
        ));
    }
}
