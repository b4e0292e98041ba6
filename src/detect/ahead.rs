//! Events that claim a time far ahead of the stream's progress, held until later lines vouch
//! for them (DESIGN section 2: event time cannot be hijacked).
//!
//! A replay of old logs has no clock to judge a line by, only the lines around it. A real jump
//! ahead (the next file of a rotated set, a host back after a quiet night, `cat` of several
//! days) is followed by many lines from the new time; a planted line is followed by lines from
//! the old time again. So a jump is held here, in arrival order, and judged only when:
//! - [`CONFIRM_AHEAD`] dated events in a row are held and, in a stream that has shown more than
//!   one host, they name at least two hosts (one host whose clock is wrong, or one forged
//!   identity, cannot move a fleet's stream alone); or
//! - [`MAX_AHEAD_HELD`] events are held (the memory bound: events are judged, never dropped);
//! - the wall clock is there to judge them by (live input, see `Detector::settle_start`), or
//!   input ends.
//!
//! A line from the old time before that disbelieves everything held (see `Detector`). The very
//! first dated lines of an input are held the same way: with nothing before them, they have
//! to agree with each other.
//!
//! Judging ([`verdicts`]): the median time of the held dated events is what most of them say.
//! An event more than [`MAX_AHEAD_OF_STREAM`] above it is believed only if a later held event
//! vouches for it (is not more than that below it): a sparse log, each line hours after the
//! last, vouches for itself line by line, while a planted line among real ones has no later
//! line near its time. The newest such events (vouched for by nothing but each other) have no
//! later line yet and are judged again with the lines that follow. So to move a replay's
//! watermark, an attacker who can write lines has to write [`CONFIRM_AHEAD`] of them in a row
//! with no real line between them (in a fleet's stream under two host names, or else
//! [`MAX_AHEAD_HELD`]), or more than half of an input's first [`CONFIRM_AHEAD`] dated lines.
//! A line planted *behind* at the very start only starts the watermark early: nothing later
//! becomes late, though its host may be found silent.

use super::snapshot::{EventSnap, Names, SnapshotError};
use crate::event::Event;

use super::MAX_AHEAD_OF_STREAM;

/// Dated events in a row that make a jump ahead of the stream judged (in a stream of several
/// hosts, from at least two of them).
pub const CONFIRM_AHEAD: usize = 8;

/// Events held at most: at this count they are judged whatever their hosts. With lines of at
/// most `max_line` (64 KiB by default), a few MiB.
pub const MAX_AHEAD_HELD: usize = 64;

/// What becomes of one held event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Its time is believed.
    Believe,
    /// Planted or mis-stamped: placed at the stream's progress and counted.
    Disbelieve,
    /// Ahead of the others and nothing after it yet: judged again with the next lines.
    JudgeAgain,
    /// A line without a timestamp: it claims nothing, and is placed like the lines around it.
    Undated,
}

/// The held events, in arrival order.
#[derive(Default)]
pub(super) struct AheadHold {
    /// Boxed: they move on into the reorder buffer, which holds boxes.
    #[allow(clippy::vec_box)]
    events: Vec<Box<Event>>,
    /// Held events with a timestamp of their own.
    dated: usize,
    /// The held dated events name at least two hosts.
    hosts_differ: bool,
}

impl AheadHold {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Receive time of the oldest held event.
    pub fn first_received(&self) -> Option<i64> {
        self.events.first().map(|ev| ev.received)
    }

    pub fn push(&mut self, ev: Box<Event>) {
        if !ev.ts_inferred {
            if !self.hosts_differ
                && let Some(first) = self.events.iter().find(|e| !e.ts_inferred)
            {
                self.hosts_differ = first.host != ev.host;
            }
            self.dated += 1;
        }
        self.events.push(ev);
    }

    /// Enough is held to judge it (see the module docs).
    pub fn ready(&self, stream_has_hosts: bool) -> bool {
        self.events.len() >= MAX_AHEAD_HELD
            || (self.dated >= CONFIRM_AHEAD && (self.hosts_differ || !stream_has_hosts))
    }

    /// Everything held, in arrival order; the hold is empty after.
    #[allow(clippy::vec_box)]
    pub fn take(&mut self) -> Vec<Box<Event>> {
        self.dated = 0;
        self.hosts_differ = false;
        std::mem::take(&mut self.events)
    }
}

/// The hold as a snapshot holds it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct AheadSnap {
    events: Vec<EventSnap>,
    hosts_differ: bool,
}

impl AheadHold {
    pub(super) fn snapshot(&self) -> AheadSnap {
        AheadSnap {
            events: self.events.iter().map(|ev| EventSnap::of(ev)).collect(),
            hosts_differ: self.hosts_differ,
        }
    }

    /// The hold a snapshot holds; its count of dated events is counted again.
    pub(super) fn restore(snap: AheadSnap, names: &mut Names) -> Result<AheadHold, SnapshotError> {
        let events = snap
            .events
            .into_iter()
            .map(|ev| ev.into_event(names).map(Box::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AheadHold {
            dated: events.iter().filter(|ev| !ev.ts_inferred).count(),
            events,
            hosts_differ: snap.hosts_differ,
        })
    }
}

/// One verdict per held event (see the module docs). `wall_clock`: live input's clock, µs;
/// an event more than [`MAX_AHEAD_OF_STREAM`] after it is disbelieved, and the newest is
/// judged by it instead of waiting.
///
/// ```text
/// median ────────┐ +1 h
/// sparse log:    a   b      c       d        → all believed (each vouched for by the next)
/// planted:       a b P c d e                 → P disbelieved (nothing after it near its time)
/// ```
#[allow(clippy::vec_box)]
pub(super) fn verdicts(events: &[Box<Event>], wall_clock: Option<i64>) -> Vec<Verdict> {
    let mut dated: Vec<i64> = events
        .iter()
        .filter(|ev| !ev.ts_inferred)
        .map(|ev| ev.ts)
        .collect();
    dated.sort_unstable();
    // The lower middle: with as many planted lines ahead as real ones, the real ones win.
    let Some(&median) = dated.get(dated.len().saturating_sub(1) / 2) else {
        return vec![Verdict::Undated; events.len()];
    };
    let believable = median.saturating_add(MAX_AHEAD_OF_STREAM);
    // Right to left: an event is vouched for by the newest later event that is itself believed
    // (or, for the newest ones, judged again with it).
    let mut verdicts = vec![Verdict::Undated; events.len()];
    let mut later_believed = i64::MIN;
    let mut later_again = i64::MIN;
    let mut later_dated = false;
    for (i, ev) in events.iter().enumerate().rev() {
        if ev.ts_inferred {
            continue;
        }
        let near = ev.ts.saturating_sub(MAX_AHEAD_OF_STREAM);
        let verdict =
            if wall_clock.is_some_and(|now| ev.ts > now.saturating_add(MAX_AHEAD_OF_STREAM)) {
                Verdict::Disbelieve
            } else if ev.ts <= believable || later_believed >= near {
                Verdict::Believe
            } else if !later_dated || later_again >= near {
                // Nothing after it yet, or only lines that are themselves waiting: the live clock
                // has nothing against it; old logs wait for the next lines.
                if wall_clock.is_some() {
                    Verdict::Believe
                } else {
                    Verdict::JudgeAgain
                }
            } else {
                Verdict::Disbelieve
            };
        match verdict {
            Verdict::Believe => later_believed = later_believed.max(ev.ts),
            Verdict::JudgeAgain => later_again = later_again.max(ev.ts),
            Verdict::Disbelieve | Verdict::Undated => {}
        }
        later_dated = true;
        verdicts[i] = verdict;
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    fn dated(ts: i64) -> Box<Event> {
        Box::new(Event {
            ts,
            ..Event::default()
        })
    }

    fn of(times: &[i64], wall_clock: Option<i64>) -> Vec<Verdict> {
        let events: Vec<Box<Event>> = times.iter().map(|&t| dated(t)).collect();
        verdicts(&events, wall_clock)
    }

    use Verdict::{Believe as B, Disbelieve as D, JudgeAgain as J};

    #[test]
    fn a_sparse_log_vouches_for_itself_line_by_line() {
        let times: Vec<i64> = (0..8).map(|i| i * 5 * H).collect();
        // The upper half waits for the next lines, which vouch for it in turn.
        assert_eq!(of(&times, None), [B, B, B, B, J, J, J, J]);
    }

    #[test]
    fn a_planted_line_among_real_ones_is_disbelieved() {
        let year = 8766 * H;
        assert_eq!(of(&[0, 1, year, 2, 3, 4], None), [B, B, D, B, B, B]);
        assert_eq!(of(&[year, 0, 1, 2, 3, 4], None), [D, B, B, B, B, B]);
        // The newest planted line is judged again with what comes next.
        assert_eq!(of(&[0, 1, 2, 3, year], None), [B, B, B, B, J]);
    }

    #[test]
    fn half_planted_is_not_enough() {
        let year = 8766 * H;
        assert_eq!(of(&[year, year + 1, 0, 1], None), [D, D, B, B]);
        // Two planted lines at the end are judged with what follows them, together.
        assert_eq!(of(&[0, 1, 2, 3, year, year + 1], None), [B, B, B, B, J, J]);
    }

    #[test]
    fn the_wall_clock_judges_the_newest_and_the_future() {
        let now = 100 * H;
        assert_eq!(of(&[0, 1, 50 * H], Some(now)), [B, B, B]);
        assert_eq!(of(&[0, 1, 2, 200 * H], Some(now)), [B, B, B, D]);
    }
}
