//! socklog lines, as its svlogd stores them (runit systems: Void Linux, Alpine with runit,
//! small appliances).
//!
//! socklog turns a datagram's `<PRI>` into words and writes `facility.priority: ` in front of
//! the rest of what the sender wrote, which from a local libc is `Mmm dd hh:mm:ss TAG[PID]: MSG`
//! (no host). In `inet` mode it first writes the sender's address and a colon. svlogd then may
//! prefix its own receive time, in UTC: `-t` as a TAI64N label (`@4000000069230f7d0b8d8a2c`),
//! `-tt` as `2026-11-23_21:50:37.12345`, `-ttt` as `2026-11-23T21:50:37.12345`:
//!
//! ```text
//! 2026-11-23_21:50:37.12345 auth.info: Nov 23 21:50:37 sshd[8148]: Failed password for …
//! @4000000069230f7d0b8d8a2c 192.0.2.1: authpriv.warn: Nov 23 21:50:37 dropbear[9]: Bad …
//! auth.info: Nov 23 21:50:37 sshd[8148]: Failed password for …
//! ```
//!
//! The `facility.priority:` word is required: it is what tells such a line from prose. svlogd's
//! time, when present, wins over the sender's (it has a year and a zone); the inet sender's
//! address is the host.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use super::priority::facility_priority;
use super::syslog::{rfc3164, untimed};
use super::time::{self, Civil, LocalClock, Stamp, YearGuess};
use super::{Format, Record, severity_name, text};

/// A socklog line, or `None` when `line` is not one.
pub(super) fn parse<'a>(
    line: &'a [u8],
    clock: &mut LocalClock,
    years: &mut YearGuess,
    received: i64,
) -> Option<Record<'a>> {
    let (stamp, rest) = match svlogd_time(line, clock) {
        Some((ts, rest)) => (Some(ts), rest),
        None => (None, line),
    };
    let (sender, rest) = match inet_sender(rest) {
        Some((sender, rest)) => (Some(sender), rest),
        None => (None, rest),
    };
    let word_len = rest.iter().take(24).position(|&b| b == b':')?;
    let severity = facility_priority(&rest[..word_len])?;
    let sent = rest[word_len + 1..].strip_prefix(b" ")?;
    let mut record = rfc3164(sent, clock, years, received).unwrap_or_else(|| untimed(sent));
    if stamp.is_some() {
        record.ts = stamp.flatten();
    }
    if let Some(sender) = sender {
        record.host = Some(text(sender));
    }
    record.format = Format::Rfc3164;
    record.severity = severity_name(severity).map(Cow::Borrowed);
    Some(record)
}

/// svlogd's timestamp and the space after it → (µs UTC, or `None` when out of range; rest).
fn svlogd_time<'a>(line: &'a [u8], clock: &mut LocalClock) -> Option<(Option<i64>, &'a [u8])> {
    if let Some(label) = line.strip_prefix(b"@") {
        let hex = label.get(..24)?;
        let rest = label[24..].strip_prefix(b" ")?;
        return Some((tai64n_micros(hex), rest));
    }
    let (rest, (year, month, day)) = time::iso_date(line).ok()?;
    let rest = match rest.first() {
        Some(b'_' | b'T') => &rest[1..],
        _ => return None,
    };
    let (rest, (hour, minute, second)) = time::clock_time(rest).ok()?;
    let (rest, micros) = time::fraction(rest).ok()?;
    let rest = rest.strip_prefix(b" ")?;
    let stamp = Stamp {
        civil: Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        },
        offset: Some(0),
    };
    Some((clock.utc_micros(&stamp), rest))
}

/// A TAI64N label (16 hex digits of seconds, 8 of nanoseconds) → µs UTC. daemontools and runit
/// write TAI as UTC + 10 s, ignoring leap seconds, and so does this.
fn tai64n_micros(hex: &[u8]) -> Option<i64> {
    const TAI64_EPOCH: u64 = 1 << 62;
    let seconds = hex_value(hex.get(..16)?)?;
    let nanos = hex_value(hex.get(16..24)?)?;
    let unix = i64::try_from(seconds.checked_sub(TAI64_EPOCH + 10)?).ok()?;
    let micros = unix.checked_mul(1_000_000)? + i64::try_from(nanos / 1000).ok()?;
    (time::MIN_TS..time::MAX_TS)
        .contains(&micros)
        .then_some(micros)
}

fn hex_value(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = char::from(b).to_digit(16)?;
        Some(acc.checked_mul(16)? + u64::from(digit))
    })
}

/// `a.b.c.d: ` (socklog inet mode) → (address, rest).
fn inet_sender(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = input.iter().take(16).position(|&b| b == b':')?;
    let address = &input[..len];
    std::str::from_utf8(address)
        .ok()?
        .parse::<Ipv4Addr>()
        .ok()?;
    let rest = input[len + 1..].strip_prefix(b" ")?;
    Some((address, rest))
}
