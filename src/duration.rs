//! Durations as people write them, in one place: command-line flags (`--lateness 1m 30s`) and
//! rules (`window = "1m 30s"`) accept the same spellings and print the same way.
//!
//! Accepted: jiff's friendly format (`10s`, `500ms`, `5m`, `1h30m`, `1m 30s`, `90 seconds`,
//! `2 hours, 30 minutes`), ISO 8601 (`PT1M30S`) and days as 24 hours (`1d`). Refused: negative
//! durations, and months or years, whose length depends on the calendar.
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

/// Parse a duration into µs.
pub fn parse(text: &str) -> Result<i64, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError("empty".into()));
    }
    let span: jiff::Span = text
        .parse()
        .map_err(|e: jiff::Error| DurationError(e.to_string()))?;
    if span.is_negative() {
        return Err(DurationError("negative".into()));
    }
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err(DurationError(
            "months and years have no fixed length; use days (1d = 24h)".into(),
        ));
    }
    let exact = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| DurationError(e.to_string()))?;
    i64::try_from(exact.as_micros()).map_err(|_| DurationError("too long".into()))
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
            ("90 seconds", 90),
            ("5 minutes", 300),
            ("PT1M30S", 90),
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

    #[test]
    fn formats() {
        assert_eq!(format(0), "0s");
        assert_eq!(format(5_400 * SECOND), "1h30m");
        assert_eq!(format(86_400 * SECOND), "24h");
        assert_eq!(format(1_500_000), "1s500ms");
    }
}
