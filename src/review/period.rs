//! The period a review covers, the one it compares with, and the chart buckets.
//!
//! Without `--from`/`--to` a review ends at the first full hour after the archive's last
//! event (from the manifests, not the clock, so the same archive gives the same review) and
//! covers one day, or seven with `--week`. With one bound given, the other is one period away;
//! with both, the period is what they say (`custom` unless it is exactly a day or a week).
//!
//! ```
//! use secpipe::review::period::{Period, Length};
//! const H: i64 = 3_600_000_000;
//! let p = Period::resolve(None, None, Length::Day, Some(10 * H + 5)).unwrap();
//! assert_eq!((p.from, p.to), (-13 * H, 11 * H));
//! assert_eq!(p.previous_from(), -37 * H);
//! assert_eq!(p.bucket_width, H);
//! assert_eq!(p.bucket_of(10 * H), Some(23));
//! assert_eq!(p.bucket_of(11 * H), None);
//! ```

use crate::event::TimeRange;

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
/// At most this many chart buckets: a year reads as days, a decade as weeks.
const MAX_BUCKETS: i64 = 400;

/// How long a period is when a bound is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    Day,
    Week,
}

impl Length {
    fn micros(self) -> i64 {
        match self {
            Length::Day => DAY,
            Length::Week => 7 * DAY,
        }
    }
}

/// `[from, to)` in µs UTC, and its chart buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: i64,
    pub to: i64,
    /// Width of one chart bucket: an hour up to a week, else a whole number of days.
    pub bucket_width: i64,
}

impl Period {
    /// The period from the flags; `last_event` is the archive's latest event time, if any.
    pub fn resolve(
        from: Option<i64>,
        to: Option<i64>,
        length: Length,
        last_event: Option<i64>,
    ) -> Result<Period, String> {
        let len = length.micros();
        let (from, to) = match (from, to) {
            (Some(f), Some(t)) => (f, t),
            (Some(f), None) => (f, f.saturating_add(len)),
            (None, Some(t)) => (t.saturating_sub(len), t),
            (None, None) => {
                let last = last_event.ok_or(
                    "the archive holds no events to place a period by; give --from and --to",
                )?;
                let to = last.div_euclid(HOUR).saturating_add(1).saturating_mul(HOUR);
                (to.saturating_sub(len), to)
            }
        };
        if to <= from {
            return Err("--to must be after --from".into());
        }
        let span = to.checked_sub(from).ok_or("the period is too long")?;
        let bucket_width = if span <= 7 * DAY {
            HOUR
        } else {
            // Whole days, as few as keep the count under MAX_BUCKETS.
            let days = (span - 1) / (MAX_BUCKETS * DAY) + 1;
            days.max(1) * DAY
        };
        Ok(Period {
            from,
            to,
            bucket_width,
        })
    }

    /// Start of the previous period (of the same length, ending at `from`).
    pub fn previous_from(&self) -> i64 {
        self.from.saturating_sub(self.to - self.from)
    }

    pub fn range(&self) -> TimeRange {
        TimeRange {
            from: Some(self.from),
            to: Some(self.to),
        }
    }

    pub fn previous_range(&self) -> TimeRange {
        TimeRange {
            from: Some(self.previous_from()),
            to: Some(self.from),
        }
    }

    pub fn contains(&self, t: i64) -> bool {
        self.from <= t && t < self.to
    }

    pub fn buckets(&self) -> usize {
        usize::try_from((self.to - self.from - 1) / self.bucket_width + 1).unwrap_or(0)
    }

    /// The bucket of event time `t`, if it is inside the period.
    pub fn bucket_of(&self, t: i64) -> Option<usize> {
        if !self.contains(t) {
            return None;
        }
        usize::try_from((t - self.from) / self.bucket_width).ok()
    }

    /// Start of bucket `i`.
    pub fn bucket_start(&self, i: usize) -> i64 {
        self.from.saturating_add(
            self.bucket_width
                .saturating_mul(i64::try_from(i).unwrap_or(0)),
        )
    }

    /// `day`, `week` or `custom`.
    pub fn kind(&self) -> &'static str {
        match self.to - self.from {
            DAY => "day",
            x if x == 7 * DAY => "week",
            _ => "custom",
        }
    }

    /// `hour`, `day` or `N days`.
    pub fn bucket_name(&self) -> String {
        match self.bucket_width {
            HOUR => "hour".into(),
            DAY => "day".into(),
            w => format!("{} days", w / DAY),
        }
    }
}

/// µs UTC as RFC 3339 with whole seconds (`2026-01-05T14:00:00Z`).
pub fn format_time(us: i64) -> String {
    match jiff::Timestamp::from_microsecond(us.div_euclid(1_000_000) * 1_000_000) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => "out-of-range".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_has_hourly_buckets_and_a_year_daily_ones() {
        let week = Period::resolve(Some(0), None, Length::Week, None).unwrap();
        assert_eq!(
            (week.kind(), week.buckets(), week.bucket_name().as_str()),
            ("week", 168, "hour")
        );
        let year = Period::resolve(Some(0), Some(365 * DAY), Length::Day, None).unwrap();
        assert_eq!(
            (year.kind(), year.buckets(), year.bucket_name().as_str()),
            ("custom", 365, "day")
        );
    }

    /// `--from 1970 --to 2100` must not make a hundred thousand buckets per host.
    #[test]
    fn a_huge_range_stays_under_the_bucket_cap() {
        let p = Period::resolve(Some(0), Some(130 * 365 * DAY), Length::Day, None).unwrap();
        assert!(p.buckets() as i64 <= MAX_BUCKETS);
        let extreme =
            Period::resolve(Some(i64::MIN / 2), Some(i64::MAX / 2), Length::Day, None).unwrap();
        assert!(extreme.buckets() as i64 <= MAX_BUCKETS);
    }

    #[test]
    fn bad_ranges_are_errors() {
        assert!(Period::resolve(Some(5), Some(5), Length::Day, None).is_err());
        assert!(Period::resolve(None, None, Length::Day, None).is_err());
    }

    #[test]
    fn times_print_in_whole_utc_seconds() {
        assert_eq!(format_time(1_500_000), "1970-01-01T00:00:01Z");
        assert_eq!(format_time(-1), "1969-12-31T23:59:59Z");
        assert_eq!(format_time(i64::MAX), "out-of-range");
    }
}
