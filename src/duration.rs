//! Durations as people write them, in one place: command-line flags (`--lateness 1m 30s`) and
//! rules (`window = "1m 30s"`) accept the same spellings and print the same way.
//!
//! Accepted: whole numbers with the units `ms`, `s`, `m`, `h` and `d` (24 hours), written
//! together or apart: `10s`, `500ms`, `5m`, `1h30m`, `1m 30s`, `1d`. Refused: anything else
//! (`5 minutes`, `1.5s`, `-5s`, `1mo`), with the reason.
//!
//! ```
//! use secpipe::duration;
//! assert_eq!(duration::parse("1m 30s"), Ok(90_000_000));
//! assert_eq!(duration::parse("1m30s"), Ok(90_000_000));
//! assert_eq!(duration::format(90_000_000), "1m30s");
//! assert!(duration::parse("soon").is_err());
//! ```

use std::fmt::Write as _;

/// µs in one second.
pub const SECOND: i64 = 1_000_000;

/// Why a text is not a duration (for the caller's error message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(String);

/// Parse a duration into µs: whole numbers with a unit each (`ms`, `s`, `m`, `h`, `d`), written
/// together or apart (`1h30m`, `1h 30m`).
pub fn parse(text: &str) -> Result<i64, DurationError> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(DurationError("empty".into()));
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError(format!("expected a number at {rest:?}")));
        }
        let value: i64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError("too long".into()))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => 1_000,
            "s" => SECOND,
            "m" => 60 * SECOND,
            "h" => 3_600 * SECOND,
            "d" => 86_400 * SECOND,
            "" => return Err(DurationError(format!("{value} needs a unit"))),
            other => return Err(DurationError(format!("unknown unit {other:?}"))),
        };
        total = value
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| DurationError("too long".into()))?;
        rest = rest[unit_len..].trim_start();
    }
    Ok(total)
}

/// `90_000_000` → `1m30s`; `300_000_000` → `5m`; hours rather than days (runbooks say "24 h").
pub fn format(micros: i64) -> String {
    if micros == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut secs = micros / SECOND;
    for (unit, len) in [("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= len {
            let _ = write!(out, "{}{unit}", secs / len);
            secs %= len;
        }
    }
    let rest = micros % SECOND;
    if rest != 0 {
        let _ = write!(out, "{}ms", rest / 1000);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_and_the_short_ones() {
        for (text, secs) in [
            ("10s", 10),
            ("5m", 300),
            ("1h30m", 5_400),
            ("1h 30m", 5_400),
            ("1m 30s", 90),
            ("1m30s", 90),
            ("24h", 86_400),
            ("1d", 86_400),
            ("1h 30m 10s", 5_410),
            (" 10s ", 10),
        ] {
            assert_eq!(parse(text), Ok(secs * SECOND), "{text}");
        }
        assert_eq!(parse("500ms"), Ok(500_000));
    }

    #[test]
    fn refusals() {
        for text in [
            "",
            "m",
            "soon",
            "-5s",
            "5s ago",
            "1mo",
            "1y",
            "10",
            "5 parsecs",
        ] {
            assert!(parse(text).is_err(), "{text:?} was accepted");
        }
    }

    /// A config or flag written to overflow (a number too long for i64, or one that only
    /// overflows once multiplied by its unit or added to the rest) is refused, never wrapped
    /// into a small or negative window.
    #[test]
    fn durations_that_would_overflow_are_refused() {
        let long_number = format!("{}s", "9".repeat(10_000));
        for text in [
            long_number.as_str(),
            "9223372036854775807d",
            "106751992d",
            "106751991d 106751991d",
            "9223372036854775807s 1ms",
        ] {
            assert_eq!(
                parse(text),
                Err(DurationError("too long".into())),
                "{text:.40}"
            );
        }
        // The largest that fits is still taken.
        assert_eq!(parse("106751991d"), Ok(106_751_991 * 86_400 * SECOND));
    }

    #[test]
    fn formats() {
        assert_eq!(format(0), "0s");
        assert_eq!(format(5_400 * SECOND), "1h30m");
        assert_eq!(format(86_400 * SECOND), "24h");
        assert_eq!(format(1_500_000), "1s500ms");
    }
}
