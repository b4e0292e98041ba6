//! When the wall clock, rather than the events, moves detection's watermark (DESIGN section 2).

/// Stdin is judged current while the newest event time detection believes was at most this
/// far behind the receive time of the batch that brought it.
pub const CURRENT_WITHIN: i64 = 120 * 1_000_000;

/// Stdin that has been current this long (µs of wall clock) is a live pipe: from then on the
/// wall clock moves its watermark after every batch, as for `--listen`. The same wait lets the
/// wall clock judge the first lines of stdin that detection still holds
/// ([`crate::detect::Detector::settle_start`]).
pub const LIVE_AFTER: i64 = 1_000_000;

/// When the wall clock may move the watermark (DESIGN section 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WallClockMode {
    /// Old logs (files, replay): only data moves the watermark; everything is flushed at the
    /// end, so `cat old.log | secpipe` and `secpipe old.log` give the same alerts.
    Never,
    /// `--follow` and `--listen`: after every batch and every idle second, whatever arrived,
    /// so a trickle of stale lines cannot hold alerts back.
    Always,
    /// Stdin, which is old logs (`cat old.log | secpipe`) or a live pipe (`journalctl -f |
    /// secpipe`): only while stdin is current (see [`WallClock`]).
    WhenCurrent,
}

/// Decides, for the ordered stage, when the wall clock moves the watermark.
///
/// Stdin is *current* when the newest event time detection believes (its progress, which a
/// planted future line does not move) was within [`CURRENT_WITHIN`] of the receive time of
/// the batch that last moved it. `journalctl -f` writes lines as they happen, so it is current
/// and stays current through a quiet spell (the judgment is made when lines arrive, not
/// against the idle wall clock), which lets `log.silence` fire for a host that went quiet.
/// `cat old.log` never is: its events are days or years behind their receive time.
///
/// A current pipe gets the wall clock on every idle second and, once it has been current for
/// [`LIVE_AFTER`], after every batch too, whatever the batch held: a trickle of stale lines
/// (one stamped 2020 every half second, or a host whose clock is behind, neither of which
/// moves the progress or makes the pipe idle) cannot hold back the alert of the last attack.
/// The wait keeps `cat today.log | secpipe`, whose last lines are current only for the instant
/// they are drained, judged by its lines.
///
/// ```
/// use secpipe::pipeline::clock::{WallClock, WallClockMode, LIVE_AFTER};
/// let second = 1_000_000;
/// let now = 1_800_000_000 * second;
/// let mut stdin = WallClock::new(WallClockMode::WhenCurrent);
/// // A line of 2020 read today: not current.
/// stdin.after_batch(now, 1_577_836_800 * second);
/// assert!(!stdin.on_idle() && !stdin.ticks_after_batch(now + LIVE_AFTER));
/// // A line written a second before it was read: current, and live a second later.
/// stdin.after_batch(now, now - second);
/// assert!(stdin.on_idle() && !stdin.ticks_after_batch(now));
/// assert!(stdin.ticks_after_batch(now + LIVE_AFTER));
/// assert!(WallClock::new(WallClockMode::Always).ticks_after_batch(now));
/// assert!(!WallClock::new(WallClockMode::Never).on_idle());
/// ```
#[derive(Clone, Debug)]
pub struct WallClock {
    mode: WallClockMode,
    current: bool,
    /// Receive time of the batch that made stdin current (meaningful while `current`).
    current_since: i64,
    /// Detection's progress when `current` was last judged.
    judged_at: i64,
}

impl WallClock {
    pub fn new(mode: WallClockMode) -> WallClock {
        WallClock {
            mode,
            current: false,
            current_since: i64::MAX,
            judged_at: i64::MIN,
        }
    }

    /// A batch received at `received` (µs) went through detection, whose progress (newest
    /// believed event time, `i64::MIN` before any) is now `progress`.
    /// Only a batch that moved the progress is judged: stale lines that arrive during a quiet
    /// spell say nothing about whether the pipe is live.
    pub fn after_batch(&mut self, received: i64, progress: i64) {
        if progress > self.judged_at {
            self.judged_at = progress;
            let current = received.saturating_sub(progress) <= CURRENT_WITHIN;
            if current && !self.current {
                self.current_since = received;
            }
            self.current = current;
        }
    }

    /// Move the watermark by the wall clock (`now`, µs) after a batch.
    pub fn ticks_after_batch(&self, now: i64) -> bool {
        match self.mode {
            WallClockMode::Never => false,
            WallClockMode::Always => true,
            WallClockMode::WhenCurrent => {
                self.current && now.saturating_sub(self.current_since) >= LIVE_AFTER
            }
        }
    }

    /// The input may be live (followed files, listeners, stdin): anything but files alone.
    pub fn input_may_be_live(&self) -> bool {
        self.mode != WallClockMode::Never
    }

    /// Move the watermark by the wall clock on an idle tick.
    pub fn on_idle(&self) -> bool {
        match self.mode {
            WallClockMode::Never => false,
            WallClockMode::Always => true,
            WallClockMode::WhenCurrent => self.current,
        }
    }

    /// Let the wall clock judge the first lines of stdin that detection holds (received at
    /// `held_since`, µs; see [`crate::detect::Detector::settle_start`]): on an idle tick
    /// (`now` is then `None`), or once they have waited [`LIVE_AFTER`].
    pub fn settles_start(&self, held_since: Option<i64>, now: Option<i64>) -> bool {
        self.mode == WallClockMode::WhenCurrent
            && held_since
                .is_some_and(|since| now.is_none_or(|now| now.saturating_sub(since) >= LIVE_AFTER))
    }
}
