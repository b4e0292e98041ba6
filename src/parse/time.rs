//! Timestamps: civil-date arithmetic, RFC 3339 / ISO 8601 grammar, naive → UTC conversion with a
//! per-hour offset cache, epoch numbers judged by magnitude, and RFC 3164 year inference.
//!
//! Everything here works on microseconds since the Unix epoch (UTC). A timestamp outside
//! [`MIN_TS`, `MAX_TS`) is treated as absent: a log line dated 9999 or 1900 says nothing useful
//! about when it happened, and refusing it early keeps every later computation in range.

use jiff::tz::TimeZone;
use nom::IResult;

use crate::event::{civil_from_days, days_from_civil};

/// Earliest accepted event time: 1970-01-01T00:00:00Z.
pub const MIN_TS: i64 = 0;
/// First rejected event time: 2200-01-01T00:00:00Z.
pub const MAX_TS: i64 = days_from_civil(2200, 1, 1) * 86_400 * 1_000_000;

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A wall-clock reading as written in a log line, not yet validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub micros: u32,
}

impl Civil {
    /// Whether every field is in range (a leap second `:60` is accepted and read as `:59`).
    pub fn is_valid(&self) -> bool {
        (1969..2200).contains(&self.year)
            && (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second <= 60
            && self.micros < 1_000_000
    }

    /// Seconds since the epoch if this reading were UTC. Only meaningful when `is_valid`.
    fn naive_seconds(&self) -> i64 {
        let days = days_from_civil(
            i64::from(self.year),
            u32::from(self.month),
            u32::from(self.day),
        );
        days * SECS_PER_DAY
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second.min(59))
    }
}

/// A parsed timestamp: the civil reading plus its UTC offset, if the text carried one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub civil: Civil,
    /// Offset east of UTC in seconds; `None` for a naive reading (interpreted in `--tz`).
    pub offset: Option<i32>,
}

/// Converts naive wall-clock readings to UTC in one time zone.
///
/// Asking jiff for the offset of every line costs more than the whole rest of an RFC 3164 parse,
/// so the offset is cached per local hour. The cache is only filled when the start and the end
/// of that hour resolve to the same offset, so an hour containing a DST transition (or a zone
/// that shifts at :30) is resolved exactly, line by line.
pub struct LocalClock {
    tz: TimeZone,
    /// Naive seconds / 3600 of the cached hour; `i64::MIN` when empty.
    cached_hour: i64,
    cached_offset: i64,
    /// Timestamps a line gave that could not be believed (out of range), since last taken.
    rejected: u64,
}

impl LocalClock {
    pub fn new(tz: TimeZone) -> LocalClock {
        LocalClock {
            tz,
            cached_hour: i64::MIN,
            cached_offset: 0,
            rejected: 0,
        }
    }

    /// A line carried a timestamp that [`utc_micros`](Self::utc_micros) refused (a year 9999
    /// or 0001, a month 13): the line gets its receive time, and this is counted.
    pub fn count_rejected(&mut self) {
        self.rejected += 1;
    }

    /// Rejected timestamps counted since the last call.
    pub fn take_rejected(&mut self) -> u64 {
        std::mem::take(&mut self.rejected)
    }

    /// µs since the epoch of `stamp`, or `None` when a field is out of range or the result falls
    /// outside [`MIN_TS`, `MAX_TS`).
    pub fn utc_micros(&mut self, stamp: &Stamp) -> Option<i64> {
        let civil = &stamp.civil;
        if !civil.is_valid() {
            return None;
        }
        let naive = civil.naive_seconds();
        let offset = match stamp.offset {
            Some(offset) => i64::from(offset),
            None => self.offset_of_naive(naive)?,
        };
        let micros = (naive - offset) * MICROS_PER_SEC + i64::from(civil.micros);
        (MIN_TS..MAX_TS).contains(&micros).then_some(micros)
    }

    /// The offset (local − UTC, seconds) that applies to a naive local time. In a DST gap or
    /// fold jiff's "compatible" rule applies: a time in a fold takes the earlier instant, a time
    /// in a gap is pushed forward by the gap's length.
    fn offset_of_naive(&mut self, naive: i64) -> Option<i64> {
        let hour = naive.div_euclid(3600);
        if hour == self.cached_hour {
            return Some(self.cached_offset);
        }
        let hour_start = hour * 3600;
        let at_start = self.resolve(hour_start)?;
        let at_end = self.resolve(hour_start + 3599)?;
        if at_start == at_end {
            self.cached_hour = hour;
            self.cached_offset = at_start;
            Some(at_start)
        } else {
            self.resolve(naive)
        }
    }

    fn resolve(&self, naive: i64) -> Option<i64> {
        let days = naive.div_euclid(SECS_PER_DAY);
        let secs = naive.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let datetime = jiff::civil::DateTime::new(
            i16::try_from(year).ok()?,
            i8::try_from(month).ok()?,
            i8::try_from(day).ok()?,
            i8::try_from(secs / 3600).ok()?,
            i8::try_from(secs / 60 % 60).ok()?,
            i8::try_from(secs % 60).ok()?,
            0,
        )
        .ok()?;
        let instant = self.tz.to_ambiguous_timestamp(datetime).compatible().ok()?;
        Some(naive - instant.as_second())
    }

    /// The local calendar year at `micros` (µs UTC), for RFC 3164 year inference.
    pub fn local_year(&self, micros: i64) -> Option<i32> {
        let instant = jiff::Timestamp::from_microsecond(micros).ok()?;
        Some(i32::from(self.tz.to_datetime(instant).year()))
    }
}

// ---------------------------------------------------------------------------------------------
// Grammar pieces (nom): fixed-width digit runs are parsed by hand because they are the hot path.

type Res<'a, T> = IResult<&'a [u8], T>;

fn fail<T>(input: &[u8]) -> Res<'_, T> {
    Err(nom::Err::Error(nom::error::Error::new(
        input,
        nom::error::ErrorKind::Digit,
    )))
}

/// Exactly `N` ASCII digits as a number.
pub fn digits<const N: usize>(input: &[u8]) -> Res<'_, u32> {
    let Some(head) = input.get(..N) else {
        return fail(input);
    };
    let mut value = 0u32;
    for &byte in head {
        if !byte.is_ascii_digit() {
            return fail(input);
        }
        value = value * 10 + u32::from(byte - b'0');
    }
    Ok((&input[N..], value))
}

fn byte(expected: u8) -> impl Fn(&[u8]) -> Res<'_, ()> {
    move |input: &[u8]| match input.first() {
        Some(&b) if b == expected => Ok((&input[1..], ())),
        _ => fail(input),
    }
}

fn to_u8(value: u32) -> u8 {
    u8::try_from(value).unwrap_or(u8::MAX)
}

/// `hh:mm:ss` → (hour, minute, second).
pub fn clock_time(input: &[u8]) -> Res<'_, (u8, u8, u8)> {
    let (input, hour) = digits::<2>(input)?;
    let (input, ()) = byte(b':')(input)?;
    let (input, minute) = digits::<2>(input)?;
    let (input, ()) = byte(b':')(input)?;
    let (input, second) = digits::<2>(input)?;
    Ok((input, (to_u8(hour), to_u8(minute), to_u8(second))))
}

/// An optional `.fraction` (1–9 digits, more are skipped), as microseconds.
pub fn fraction(input: &[u8]) -> Res<'_, u32> {
    let Some(rest) = input
        .strip_prefix(b".")
        .or_else(|| input.strip_prefix(b","))
    else {
        return Ok((input, 0));
    };
    let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 {
        return Ok((input, 0));
    }
    let mut micros = 0u32;
    for i in 0..6 {
        let digit = rest
            .get(i)
            .filter(|_| i < len)
            .map_or(0, |b| u32::from(b - b'0'));
        micros = micros * 10 + digit;
    }
    Ok((&rest[len..], micros))
}

/// `Z`, `+hh:mm`, `+hhmm` or `+hh` → seconds east of UTC.
pub fn utc_offset(input: &[u8]) -> Res<'_, i32> {
    match input.first() {
        Some(b'Z' | b'z') => Ok((&input[1..], 0)),
        Some(&sign @ (b'+' | b'-')) => {
            let (rest, hours) = digits::<2>(&input[1..])?;
            let rest = rest.strip_prefix(b":").unwrap_or(rest);
            let (rest, minutes) = match digits::<2>(rest) {
                Ok(done) => done,
                Err(_) => (rest, 0),
            };
            if hours > 23 || minutes > 59 {
                return fail(input);
            }
            let seconds = (hours * 3600 + minutes * 60) as i32;
            Ok((rest, if sign == b'-' { -seconds } else { seconds }))
        }
        _ => fail(input),
    }
}

/// `YYYY-MM-DD`.
pub fn iso_date(input: &[u8]) -> Res<'_, (i32, u8, u8)> {
    let (input, year) = digits::<4>(input)?;
    let (input, ()) = byte(b'-')(input)?;
    let (input, month) = digits::<2>(input)?;
    let (input, ()) = byte(b'-')(input)?;
    let (input, day) = digits::<2>(input)?;
    Ok((input, (year as i32, to_u8(month), to_u8(day))))
}

/// RFC 3339 / ISO 8601: `YYYY-MM-DD[T ]hh:mm:ss[.frac][Z|±hh:mm|±hhmm]`; no offset = naive.
pub fn rfc3339(input: &[u8]) -> Res<'_, Stamp> {
    let (input, (year, month, day)) = iso_date(input)?;
    let input = match input.first() {
        Some(b'T' | b't' | b' ') => &input[1..],
        _ => return fail(input),
    };
    let (input, (hour, minute, second)) = clock_time(input)?;
    let (input, micros) = fraction(input)?;
    let (input, offset) = match utc_offset(input) {
        Ok((rest, offset)) => (rest, Some(offset)),
        Err(_) => (input, None),
    };
    let civil = Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micros,
    };
    Ok((input, Stamp { civil, offset }))
}

/// Three-letter English month name → 1..=12.
pub fn month_number(name: &[u8]) -> Option<u8> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let name = name.get(..3)?;
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(name))
        .map(|i| i as u8 + 1)
}

/// An application-log time value given as text: RFC 3339, or an epoch number.
pub fn text_time(text: &str, clock: &mut LocalClock) -> Option<i64> {
    let text = text.trim();
    if let Ok((rest, stamp)) = rfc3339(text.as_bytes()) {
        return if rest.is_empty() {
            clock.utc_micros(&stamp)
        } else {
            None
        };
    }
    if let Ok(integer) = text.parse::<i64>() {
        return epoch_int(integer);
    }
    text.parse::<f64>().ok().and_then(epoch_time)
}

/// An epoch number whose unit is judged by magnitude: below 10^11 seconds (up to year 5138),
/// below 10^14 milliseconds, below 10^17 microseconds, else nanoseconds.
pub fn epoch_time(value: f64) -> Option<i64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let micros = if value < 1e11 {
        value * 1e6
    } else if value < 1e14 {
        value * 1e3
    } else if value < 1e17 {
        value
    } else {
        value / 1e3
    };
    let micros = micros.round();
    ((MIN_TS as f64)..(MAX_TS as f64))
        .contains(&micros)
        .then_some(micros as i64)
}

/// Integer epoch (seconds / ms / µs / ns by magnitude), exact for integers.
pub fn epoch_int(value: i64) -> Option<i64> {
    let micros = match value {
        v if v < 0 => return None,
        v if v < 100_000_000_000 => v.checked_mul(1_000_000)?,
        v if v < 100_000_000_000_000 => v.checked_mul(1_000)?,
        v if v < 100_000_000_000_000_000 => v,
        v => v / 1_000,
    };
    (MIN_TS..MAX_TS).contains(&micros).then_some(micros)
}

/// RFC 3164 dates have no year. One `YearGuess` per input decides it, line by line.
///
/// The rule (DESIGN section 2), chosen so that no line can move the year of another:
/// - Without `--year`, each line on its own takes the latest year that does not put it more
///   than a day after its receive time: a date later in the year than today is last year (as
///   rsyslog and fail2ban read it), and `Jan  1 00:00:01` received on Dec 31 is next year. A
///   file read after it was written crosses Dec → Jan correctly, lines out of time order never
///   drift, and no planted date moves any other line. A file more than a year old needs
///   `--year`.
/// - With `--year`, the first dated line takes that year. After it, each line takes the year
///   that puts it nearest to where the stream is: the median month of the last
///   [`STREAM_WINDOW`] dated lines (months counted on from January of the year given, so 13
///   is the next January). A real year end (December lines, then January ones) moves the median
///   into the new year after a few January lines, and later lines follow; a file of several
///   years crosses each year end this way. A straggler (`Dec 31` among January lines) belongs
///   to the year before; months that go backwards stay in the year (a gap of exactly six
///   months keeps the year). Planted lines (`Oct 1`, `Jan 1`, as many pairs as an attacker
///   likes) misdate only themselves: to move the year they must be most of the last
///   [`STREAM_WINDOW`] lines, which is also what the detector asks before it believes a jump
///   ahead (`src/detect/ahead.rs`).
/// - Never a date more than a day after the line's receive time: a live stream cannot be moved
///   into next year before it comes.
pub struct YearGuess {
    fixed: Option<i32>,
    /// With `--year`: the months of the last dated lines, counted from January of the year
    /// given, oldest first.
    recent: std::collections::VecDeque<i32>,
}

/// How many recent lines say where the stream is (with `--year`): a planted line moves the
/// year only as one of a majority of them.
pub const STREAM_WINDOW: usize = 8;

/// How far after its receive time an inferred date may fall (clock skew between hosts).
const MAX_AHEAD_OF_RECEIVED: i64 = SECS_PER_DAY * MICROS_PER_SEC;

impl YearGuess {
    pub fn new(fixed: Option<i16>) -> YearGuess {
        YearGuess {
            fixed: fixed.map(i32::from),
            recent: std::collections::VecDeque::with_capacity(STREAM_WINDOW),
        }
    }

    /// Completes `civil` (whose `year` is ignored) and converts it; `None` if it is invalid.
    pub fn resolve(&mut self, civil: Civil, received: i64, clock: &mut LocalClock) -> Option<i64> {
        if !(1..=12).contains(&civil.month) {
            return None;
        }
        let Some(first_year) = self.fixed else {
            return Self::nearest_past(civil, received, clock);
        };
        let month = i32::from(civil.month) - 1;
        let latest = received.saturating_add(MAX_AHEAD_OF_RECEIVED);
        let convert = |index: i32, clock: &mut LocalClock| {
            let year = first_year + index.div_euclid(12);
            clock
                .utc_micros(&Stamp {
                    civil: Civil { year, ..civil },
                    offset: None,
                })
                .map(|ts| (index, ts))
        };
        let resolved = match self.stream_month() {
            None => convert(month, clock),
            Some(at) => {
                // The year of this month nearest to the stream; on a tie (six months either
                // way) the stream's own year.
                let year_of_stream = at.div_euclid(12);
                let mut candidates = [year_of_stream - 1, year_of_stream, year_of_stream + 1]
                    .map(|y| y * 12 + month);
                candidates.sort_by_key(|&index| {
                    ((index - at).abs(), index.div_euclid(12) != year_of_stream)
                });
                // Never after its receive time: then the next nearest. A `--year` that puts
                // the whole input ahead of its receive time is the user's to give.
                candidates
                    .iter()
                    .find_map(|&index| convert(index, clock).filter(|&(_, ts)| ts <= latest))
                    .or_else(|| convert(candidates[0], clock))
            }
        };
        let (index, ts) = resolved?;
        if self.recent.len() == STREAM_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(index);
        Some(ts)
    }

    /// Where the stream is (with `--year`): the lower median of the recent months.
    fn stream_month(&self) -> Option<i32> {
        if self.recent.is_empty() {
            return None;
        }
        let mut months = [0i32; STREAM_WINDOW];
        let n = self.recent.len();
        for (slot, &m) in months.iter_mut().zip(&self.recent) {
            *slot = m;
        }
        let months = &mut months[..n];
        months.sort_unstable();
        months.get((n - 1) / 2).copied()
    }

    /// The latest of next year, this year and last year (local years at `received`) that is at
    /// most a day after `received`.
    fn nearest_past(civil: Civil, received: i64, clock: &mut LocalClock) -> Option<i64> {
        let this_year = clock.local_year(received)?;
        let latest = received.saturating_add(MAX_AHEAD_OF_RECEIVED);
        // A Feb 29 is skipped in the years that have none.
        (this_year - 1..=this_year + 1).rev().find_map(|year| {
            clock
                .utc_micros(&Stamp {
                    civil: Civil { year, ..civil },
                    offset: None,
                })
                .filter(|&ts| ts <= latest)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc_clock() -> LocalClock {
        LocalClock::new(TimeZone::UTC)
    }

    fn micros_of(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>()
            .map(|t| t.as_microsecond())
            .unwrap_or(i64::MIN)
    }

    #[test]
    fn days_round_trip() {
        for days in [-1, 0, 59, 365, 10_957, 20_000, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn rfc3339_variants() {
        let mut clock = utc_clock();
        for (text, expected) in [
            ("2026-11-23T12:00:00Z", "2026-11-23T12:00:00Z"),
            (
                "2026-11-23T12:00:00.123456+0000",
                "2026-11-23T12:00:00.123456Z",
            ),
            ("2026-11-23T14:00:00.5+02:00", "2026-11-23T12:00:00.5Z"),
            ("2026-11-23 07:00:00-05", "2026-11-23T12:00:00Z"),
            ("2026-11-23T12:00:00", "2026-11-23T12:00:00Z"),
        ] {
            let (_, stamp) = rfc3339(text.as_bytes())
                .map_err(|e| format!("{text}: {e}"))
                .unwrap();
            assert_eq!(
                clock.utc_micros(&stamp),
                Some(micros_of(expected)),
                "{text}"
            );
        }
    }

    #[test]
    fn out_of_range_is_none() {
        let mut clock = utc_clock();
        for text in [
            "2026-02-30T00:00:00Z",
            "2026-12-32T25:61:61Z",
            "9999-12-31T23:59:59Z",
            "1900-01-01T00:00:00Z",
        ] {
            let stamp = rfc3339(text.as_bytes()).map(|(_, s)| s);
            assert!(
                stamp.map_or(true, |s| clock.utc_micros(&s).is_none()),
                "{text}"
            );
        }
    }

    #[test]
    fn epoch_by_magnitude() {
        let expected = micros_of("2026-11-23T12:00:00Z");
        let secs = expected / 1_000_000;
        assert_eq!(epoch_int(secs), Some(expected));
        assert_eq!(epoch_int(secs * 1000), Some(expected));
        assert_eq!(epoch_int(secs * 1_000_000), Some(expected));
        assert_eq!(epoch_int(secs * 1_000_000_000), Some(expected));
        assert_eq!(epoch_time(secs as f64 + 0.25), Some(expected + 250_000));
        assert_eq!(epoch_int(i64::MAX), None);
        assert_eq!(epoch_time(f64::NAN), None);
    }

    #[test]
    fn dst_gap_and_fold_in_new_york() {
        let tz = TimeZone::get("America/New_York").unwrap();
        let mut clock = LocalClock::new(tz);
        let naive = |h, m| Stamp {
            civil: Civil {
                year: 2026,
                month: 3,
                day: 8,
                hour: h,
                minute: m,
                second: 0,
                micros: 0,
            },
            offset: None,
        };
        // Before the gap: EST (−5).
        assert_eq!(
            clock.utc_micros(&naive(1, 30)),
            Some(micros_of("2026-03-08T06:30:00Z"))
        );
        // In the gap (02:30 does not exist): compatible pushes forward to 03:30 EDT.
        assert_eq!(
            clock.utc_micros(&naive(2, 30)),
            Some(micros_of("2026-03-08T07:30:00Z"))
        );
        // After: EDT (−4).
        assert_eq!(
            clock.utc_micros(&naive(3, 30)),
            Some(micros_of("2026-03-08T07:30:00Z"))
        );
        // Fold on Nov 1: 01:30 happens twice; the earlier one (EDT) wins.
        let fold = Stamp {
            civil: Civil {
                month: 11,
                day: 1,
                ..naive(1, 30).civil
            },
            offset: None,
        };
        assert_eq!(
            clock.utc_micros(&fold),
            Some(micros_of("2026-11-01T05:30:00Z"))
        );
        let after = Stamp {
            civil: Civil {
                month: 11,
                day: 1,
                ..naive(2, 30).civil
            },
            offset: None,
        };
        assert_eq!(
            clock.utc_micros(&after),
            Some(micros_of("2026-11-01T07:30:00Z"))
        );
    }

    #[test]
    fn half_hour_transition_is_exact() {
        // Lord Howe moves by 30 minutes at 02:00 local; check both sides of it in one hour.
        let tz = TimeZone::get("Australia/Lord_Howe").unwrap();
        let mut clock = LocalClock::new(tz.clone());
        for minute in [0u8, 10, 29, 31, 59] {
            let civil = Civil {
                year: 2026,
                month: 4,
                day: 5,
                hour: 1,
                minute,
                second: 0,
                micros: 0,
            };
            let ours = clock.utc_micros(&Stamp {
                civil,
                offset: None,
            });
            let dt = jiff::civil::date(2026, 4, 5).at(1, minute as i8, 0, 0);
            let theirs = tz
                .to_ambiguous_timestamp(dt)
                .compatible()
                .unwrap()
                .as_microsecond();
            assert_eq!(ours, Some(theirs), "01:{minute:02}");
        }
    }

    fn dec_line(month: u8, day: u8) -> Civil {
        Civil {
            year: 0,
            month,
            day,
            hour: 6,
            minute: 55,
            second: 46,
            micros: 0,
        }
    }

    #[test]
    fn year_inference_goes_back_when_in_future() {
        let mut clock = utc_clock();
        let received = micros_of("2027-01-02T00:00:00Z");
        let mut guess = YearGuess::new(None);
        let ts = guess.resolve(dec_line(12, 31), received, &mut clock);
        assert_eq!(ts, Some(micros_of("2026-12-31T06:55:46Z")));
        // Carried into January: back to 2027.
        let ts = guess.resolve(dec_line(1, 1), received, &mut clock);
        assert_eq!(ts, Some(micros_of("2027-01-01T06:55:46Z")));
        // A straggling December line after January belongs to the previous year.
        let ts = guess.resolve(dec_line(12, 31), received, &mut clock);
        assert_eq!(ts, Some(micros_of("2026-12-31T06:55:46Z")));
    }

    #[test]
    fn year_inference_within_a_day_stays_this_year() {
        let mut clock = utc_clock();
        let received = micros_of("2026-11-23T00:00:00Z");
        let mut guess = YearGuess::new(None);
        // Twelve hours ahead of the receive time (clock skew): still this year.
        let civil = Civil {
            year: 0,
            month: 11,
            day: 23,
            hour: 12,
            minute: 0,
            second: 0,
            micros: 0,
        };
        assert_eq!(
            guess.resolve(civil, received, &mut clock),
            Some(micros_of("2026-11-23T12:00:00Z"))
        );
    }

    #[test]
    fn feb_29_never_panics() {
        let mut clock = utc_clock();
        let mut guess = YearGuess::new(None);
        let received = micros_of("2025-03-10T00:00:00Z");
        let ts = guess.resolve(dec_line(2, 29), received, &mut clock);
        assert_eq!(ts, Some(micros_of("2024-02-29T06:55:46Z")));
        let mut fixed = YearGuess::new(Some(2023));
        assert_eq!(fixed.resolve(dec_line(2, 29), received, &mut clock), None);
    }
    fn at(month: u8, day: u8, hour: u8) -> Civil {
        Civil {
            hour,
            ..dec_line(month, day)
        }
    }

    #[test]
    fn two_planted_dates_do_not_move_later_lines_to_next_year() {
        let mut clock = utc_clock();
        let received = micros_of("2026-03-10T12:00:00Z");
        for fixed in [None, Some(2026)] {
            let mut guess = YearGuess::new(fixed);
            let real = |guess: &mut YearGuess, clock: &mut LocalClock, hour| {
                guess.resolve(at(3, 10, hour), received, clock)
            };
            assert_eq!(
                real(&mut guess, &mut clock, 10),
                Some(micros_of("2026-03-10T10:55:46Z"))
            );
            guess.resolve(at(9, 30, 10), received, &mut clock);
            guess.resolve(at(2, 1, 10), received, &mut clock);
            for hour in [11, 12] {
                assert_eq!(
                    real(&mut guess, &mut clock, hour),
                    Some(micros_of(&format!("2026-03-10T{hour}:55:46Z"))),
                    "--year {fixed:?}"
                );
            }
        }
    }

    #[test]
    fn a_date_later_in_the_year_than_today_is_last_year() {
        let mut clock = utc_clock();
        let received = micros_of("2026-03-10T00:00:00Z");
        let mut guess = YearGuess::new(None);
        assert_eq!(
            guess.resolve(at(9, 30, 6), received, &mut clock),
            Some(micros_of("2025-09-30T06:55:46Z"))
        );
        // And a line dated just after midnight, received on Dec 31, is next year.
        let received = micros_of("2026-12-31T23:59:59Z");
        assert_eq!(
            guess.resolve(at(1, 1, 0), received, &mut clock),
            Some(micros_of("2027-01-01T00:55:46Z"))
        );
    }

    #[test]
    fn months_going_backwards_never_drift_the_year_forward() {
        let mut clock = utc_clock();
        let received = micros_of("2026-11-27T12:00:00Z");
        for fixed in [None, Some(2026)] {
            let mut guess = YearGuess::new(fixed);
            for round in 0..12 {
                for month in [9, 3, 8, 2] {
                    let ts = guess.resolve(at(month, 1, 0), received, &mut clock);
                    let year = year_of(ts);
                    assert_eq!(year, Some(2026), "round {round}, month {month}, {fixed:?}");
                }
            }
        }
    }

    fn year_of(ts: Option<i64>) -> Option<i64> {
        ts.map(|t| civil_from_days(t.div_euclid(86_400_000_000)).0)
    }

    #[test]
    fn with_a_year_planted_year_ends_move_nothing() {
        let mut clock = utc_clock();
        // A file of May 2024 read in 2026: planted `Oct 1`/`Jan 1` pairs look like year ends;
        // however many, each misdates only itself.
        let received = micros_of("2026-11-27T12:00:00Z");
        let mut guess = YearGuess::new(Some(2024));
        assert_eq!(
            year_of(guess.resolve(at(5, 1, 0), received, &mut clock)),
            Some(2024)
        );
        for round in 0..20 {
            for month in [10, 1] {
                guess.resolve(at(month, 1, 0), received, &mut clock);
            }
            let real = guess.resolve(at(5, 2, 0), received, &mut clock);
            assert_eq!(year_of(real), Some(2024), "round {round}");
        }
    }

    #[test]
    fn with_a_year_a_live_stream_is_not_moved_into_next_year_early() {
        let mut clock = utc_clock();
        let received = micros_of("2026-05-02T12:00:00Z");
        let mut guess = YearGuess::new(Some(2026));
        assert_eq!(
            year_of(guess.resolve(at(5, 1, 0), received, &mut clock)),
            Some(2026)
        );
        for month in [6, 10, 12, 1, 2] {
            guess.resolve(at(month, 1, 0), received, &mut clock);
        }
        let real = guess.resolve(at(5, 2, 0), received, &mut clock);
        assert_eq!(year_of(real), Some(2026));
    }

    #[test]
    fn with_a_year_a_file_crosses_each_year_end() {
        let mut clock = utc_clock();
        let received = micros_of("2030-06-01T00:00:00Z");
        let mut guess = YearGuess::new(Some(2024));
        // Three lines a week from November 2024 to February 2026, with a straggler from the
        // old year just after each year end: two year ends, both crossed.
        let mut days: Vec<(u8, u8, i64)> = Vec::new();
        for (months, year) in [(11..=12, 2024), (1..=12, 2025), (1..=2, 2026)] {
            for month in months {
                for day in [3, 10, 17, 24] {
                    days.push((month, day, year));
                    if month == 1 && day == 10 {
                        days.push((12, 31, year - 1));
                    }
                }
            }
        }
        for (month, day, want) in days {
            let ts = guess.resolve(at(month, day, 0), received, &mut clock);
            assert_eq!(year_of(ts), Some(want), "{month}/{day}");
        }
    }

    #[test]
    fn with_a_year_months_that_go_backwards_do_not_move_the_year() {
        let mut clock = utc_clock();
        let received = micros_of("2030-06-01T00:00:00Z");
        let mut guess = YearGuess::new(Some(2024));
        // A file not in time order: June and March lines interleaved, then July and January.
        for (month, day) in [
            (6, 1),
            (3, 1),
            (6, 2),
            (3, 2),
            (7, 1),
            (1, 5),
            (7, 2),
            (1, 6),
        ] {
            let ts = guess.resolve(at(month, day, 0), received, &mut clock);
            assert_eq!(year_of(ts), Some(2024), "{month}/{day}");
        }
    }
}
