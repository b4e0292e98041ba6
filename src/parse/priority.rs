//! Facility and priority as syslog daemons spell them inside a line, not as `<PRI>`.
//!
//! Several daemons write the message's facility and priority as words, each at its own place:
//!
//! | writer | form | where |
//! |---|---|---|
//! | FreeBSD syslogd `-v` / `-vv` | `<4.6>` / `<auth.info>` | between the timestamp and the host |
//! | busybox syslogd (default), OpenWrt `logread` | `authpriv.info` | after the host (busybox) or the timestamp (logread) |
//! | socklog | `auth.info:` | at the start of the line (after svlogd's timestamp) |
//! | Solaris / illumos | `[ID 800047 auth.info]` | at the start of the message |
//! | macOS `syslog` (ASL) | `<Notice>:` | after `tag[pid]` |
//!
//! Only the closed sets of names below are recognised, so that a host name or a message word is
//! never mistaken for a priority (a host called `auth.info` is not a thing; `web1.example` is).
//! The result is the severity number (0–7), which [`super::severity_name`] spells.

/// `facility.priority` (`authpriv.info`, `auth.warn`, `local7.debug`) or its numeric form
/// (`4.6`, as FreeBSD `-v` writes it) → severity. `None` for anything else.
///
pub(super) fn facility_priority(token: &[u8]) -> Option<u8> {
    // Cheap rejection first: every name and number starts with a lower-case letter or a digit.
    if !token
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return None;
    }
    let dot = token.iter().take(9).position(|&b| b == b'.')?;
    let (facility, priority) = (&token[..dot], &token[dot + 1..]);
    if let (Some(facility), Some(priority)) = (small_number(facility), small_number(priority)) {
        return (facility < 24 && priority < 8).then_some(priority as u8);
    }
    if !is_facility_name(facility) {
        return None;
    }
    severity_of_name(priority)
}

/// `facility.priority ` at the start of `input` → (severity, what follows the space).
///
/// On the hot path (it is tried on the tag of every RFC 3164 line), so it gives up at the
/// first byte a facility name cannot hold: `sshd[7]:` is rejected at `[`.
pub(super) fn leading_facility_priority(input: &[u8]) -> Option<(u8, &[u8])> {
    let dot = input
        .iter()
        .take(9)
        .position(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit()))?;
    if input[dot] != b'.' {
        return None;
    }
    let len = dot
        + 1
        + input[dot + 1..]
            .iter()
            .take(8)
            .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            .count();
    let rest = input[len..].strip_prefix(b" ")?;
    Some((facility_priority(&input[..len])?, rest))
}

/// A syslog priority word, lower case as daemons write it, including the deprecated aliases
/// (`warn`, `error`, `panic`) → severity.
pub(super) fn severity_of_name(name: &[u8]) -> Option<u8> {
    const NAMES: [(&[u8], u8); 11] = [
        (b"emerg", 0),
        (b"panic", 0),
        (b"alert", 1),
        (b"crit", 2),
        (b"err", 3),
        (b"error", 3),
        (b"warning", 4),
        (b"warn", 4),
        (b"notice", 5),
        (b"info", 6),
        (b"debug", 7),
    ];
    NAMES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|&(_, severity)| severity)
}

/// The level names of macOS's Apple System Log (`<Notice>`), capitalised as `syslog` prints
/// them → severity.
pub(super) fn severity_of_asl_level(name: &[u8]) -> Option<u8> {
    const NAMES: [(&[u8], u8); 8] = [
        (b"Emergency", 0),
        (b"Alert", 1),
        (b"Critical", 2),
        (b"Error", 3),
        (b"Warning", 4),
        (b"Notice", 5),
        (b"Info", 6),
        (b"Debug", 7),
    ];
    NAMES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|&(_, severity)| severity)
}

fn is_facility_name(name: &[u8]) -> bool {
    // FreeBSD's and glibc's `facilitynames`, plus Solaris `audit`.
    const NAMES: [&[u8]; 17] = [
        b"kern",
        b"user",
        b"mail",
        b"daemon",
        b"auth",
        b"syslog",
        b"lpr",
        b"news",
        b"uucp",
        b"cron",
        b"authpriv",
        b"ftp",
        b"ntp",
        b"security",
        b"console",
        b"audit",
        b"mark",
    ];
    // local0 … local7
    if let Some(digit) = name.strip_prefix(b"local") {
        return matches!(digit, [b'0'..=b'7']);
    }
    NAMES.contains(&name)
}

/// 1–2 ASCII digits.
fn small_number(text: &[u8]) -> Option<u32> {
    match text {
        [a] if a.is_ascii_digit() => Some(u32::from(a - b'0')),
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_are_recognised() {
        assert_eq!(facility_priority(b"authpriv.info"), Some(6));
        assert_eq!(facility_priority(b"auth.warn"), Some(4));
        assert_eq!(facility_priority(b"local7.err"), Some(3));
        assert_eq!(facility_priority(b"4.6"), Some(6));
        assert_eq!(facility_priority(b"23.0"), Some(0));
    }

    #[test]
    fn host_names_and_words_are_not_priorities() {
        for token in [
            &b"web1.example"[..],
            b"auth.example",
            b"local8.info",
            b"24.6",
            b"4.8",
            b"192.0.2.1",
            b"sshd[12]:",
            b"authinfo",
            b"",
            b".",
        ] {
            assert_eq!(
                facility_priority(token),
                None,
                "{}",
                String::from_utf8_lossy(token)
            );
        }
    }

    #[test]
    fn leading_word_is_found_and_a_tag_is_not() {
        assert_eq!(
            leading_facility_priority(b"authpriv.info dropbear[1]: x"),
            Some((6, &b"dropbear[1]: x"[..]))
        );
        assert_eq!(leading_facility_priority(b"sshd[24200]: x"), None);
        assert_eq!(leading_facility_priority(b"auth.info"), None);
        assert_eq!(leading_facility_priority(b"web.example sshd: x"), None);
        assert_eq!(leading_facility_priority(b"local7.debug: x"), None);
    }

    #[test]
    fn asl_levels() {
        assert_eq!(severity_of_asl_level(b"Notice"), Some(5));
        assert_eq!(severity_of_asl_level(b"notice"), None);
    }
}
