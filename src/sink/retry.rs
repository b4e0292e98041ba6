//! When and how long a network sink tries again: the one retry policy of the webhook,
//! Alertmanager, email and exec sinks.
//!
//! - **What retries.** A connection error or a timeout, and the HTTP statuses a receiver uses
//!   for "not now": 408, 425, 429 and every 5xx except 501 (the receiver will never implement
//!   the method, so asking again cannot help). Any other status is the receiver's final "no":
//!   the alert is counted as not delivered and the sink goes on with the next one. A receiver
//!   that answers 404 during maintenance can be told to be waited for
//!   ([`RetryPolicy::retry_statuses`]), the knob Vector's users asked for most.
//! - **How long between attempts.** Exponential backoff from [`DEFAULT_INITIAL`] (1 s),
//!   doubling, capped at [`DEFAULT_MAX`] (30 s), with *full jitter*: each wait is uniform in
//!   `[0, cap]`, so a hundred secpipes that lost one receiver together do not hammer it in
//!   step when it returns. A `Retry-After` answer (delta-seconds or an HTTP-date) is honoured,
//!   capped at [`DEFAULT_MAX_RETRY_AFTER`]: a hostile or broken receiver cannot park a sink for
//!   a day.
//! - **When to stop.** Not while the run goes on: a queue in front of the sink drops and counts
//!   what arrives meanwhile ([`super::queue::WhenFull::Drop`]), so a dead receiver costs that
//!   sink and never detection. Once the run's shutdown is triggered, retrying goes on for at
//!   most the drain limit (`--drain-timeout`, counted from when the retrying loop first sees the
//!   trigger, as [`super::queue::QueuedSink`] counts it): every wait wakes at the trigger and is
//!   cut to what is left, and past the limit no attempt starts. The sink's thread then reports
//!   the alert as not delivered and the stop is not held.
//!
//! ```
//! use std::time::Duration;
//! use secpipe::shutdown::Shutdown;
//! use secpipe::sink::retry::{Attempt, DrainClock, RetryPolicy};
//!
//! let policy = RetryPolicy { initial: Duration::from_millis(1), ..RetryPolicy::default() };
//! let mut clock = DrainClock::new(Shutdown::new(), Duration::from_secs(5));
//! let mut answers = vec![200, 429, 503]; // popped from the end: 503, 429, then 200
//! let outcome = policy.run(&mut clock, |_| match answers.pop() {
//!     Some(200) => Attempt::Done(()),
//!     Some(status) if policy.retries_status(status) => Attempt::retry(format!("HTTP {status}")),
//!     other => Attempt::Fail(format!("HTTP {other:?}")),
//! });
//! assert_eq!(outcome.map(|done| done.retries), Ok(2));
//! ```

use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

use crate::metrics::SinkMetrics;
use crate::shutdown::Shutdown;

/// The first wait after a failed attempt (before jitter).
pub const DEFAULT_INITIAL: Duration = Duration::from_secs(1);
/// The longest wait between two attempts (before jitter).
pub const DEFAULT_MAX: Duration = Duration::from_secs(30);
/// The longest `Retry-After` believed.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How a network sink retries; see the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first backoff cap; it doubles after each failed attempt.
    pub initial: Duration,
    /// The largest backoff cap.
    pub max: Duration,
    /// A receiver's `Retry-After` is believed up to this long.
    pub max_retry_after: Duration,
    /// Statuses retried besides connection errors, timeouts, 408, 425, 429 and 5xx but 501 (for
    /// example 404 from a receiver under maintenance).
    pub retry_statuses: Vec<u16>,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            initial: DEFAULT_INITIAL,
            max: DEFAULT_MAX,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            retry_statuses: Vec::new(),
        }
    }
}

/// The retry settings a sink's options may carry (`retry = { initial = "1s", max = "30s",
/// statuses = [404] }`); what is left out keeps its default.
#[derive(Deserialize, Default, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetryOptions {
    /// First backoff, a duration such as `"500ms"` or `"2s"`.
    pub initial: Option<String>,
    /// Largest backoff.
    pub max: Option<String>,
    /// Longest `Retry-After` believed.
    pub max_retry_after: Option<String>,
    /// Extra statuses to retry (4xx a receiver sends when it means "later").
    pub statuses: Option<Vec<u16>>,
}

impl RetryOptions {
    /// The policy these options describe, or what is wrong with them.
    ///
    /// ```
    /// use secpipe::sink::retry::RetryOptions;
    /// let options = RetryOptions { max: Some("10s".into()), statuses: Some(vec![404]), ..Default::default() };
    /// let policy = options.policy().unwrap();
    /// assert_eq!(policy.max, std::time::Duration::from_secs(10));
    /// assert!(policy.retries_status(404));
    /// let bad = RetryOptions { statuses: Some(vec![200]), ..Default::default() };
    /// assert!(bad.policy().unwrap_err().contains("200"));
    /// ```
    pub fn policy(&self) -> Result<RetryPolicy, String> {
        let mut policy = RetryPolicy::default();
        let or_default = |name: &str, text: &Option<String>, default: Duration| match text {
            None => Ok(default),
            Some(text) => option_duration(&format!("retry.{name}"), text),
        };
        policy.initial = or_default("initial", &self.initial, policy.initial)?;
        policy.max = or_default("max", &self.max, policy.max)?;
        policy.max_retry_after = or_default(
            "max_retry_after",
            &self.max_retry_after,
            policy.max_retry_after,
        )?;
        if policy.initial.is_zero() || policy.max < policy.initial {
            return Err("retry: `initial` must be above zero and at most `max`".into());
        }
        if let Some(statuses) = &self.statuses {
            if let Some(bad) = statuses.iter().find(|s| !(400..=599).contains(*s)) {
                return Err(format!(
                    "retry.statuses: {bad} is not an error status (400 to 599)"
                ));
            }
            policy.retry_statuses = statuses.clone();
        }
        Ok(policy)
    }
}

/// A duration option of a sink (`"500ms"`, `"1m 30s"`, as everywhere in secpipe), named in the
/// error.
pub fn option_duration(name: &str, text: &str) -> Result<Duration, String> {
    crate::duration::parse(text)
        .map(|micros| Duration::from_micros(u64::try_from(micros).unwrap_or(0)))
        .map_err(|why| {
            format!("{name} = {text:?}: not a duration ({why}); write it like 10s or 500ms")
        })
}

/// What one attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt<T> {
    /// Delivered.
    Done(T),
    /// Worth another try (a connection error, a timeout, 429 …), after at least `retry_after`
    /// when the receiver asked for it.
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// The receiver's final no: trying again cannot help.
    Fail(String),
}

impl<T> Attempt<T> {
    /// Retry at the policy's pace.
    pub fn retry(error: String) -> Attempt<T> {
        Attempt::Retry {
            error,
            retry_after: None,
        }
    }
}

/// A delivery that succeeded, and how many retries it took.
#[derive(Debug, PartialEq, Eq)]
pub struct Delivered<T> {
    pub value: T,
    pub retries: u32,
}

/// A delivery given up on.
#[derive(Debug, PartialEq, Eq)]
pub struct GaveUp {
    /// The last attempt's error.
    pub error: String,
    pub retries: u32,
    /// True when the drain limit ended the retries, false when the receiver said no for good.
    pub at_drain_limit: bool,
}

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.at_drain_limit {
            write!(
                f,
                "{} (gave up at the drain limit after {} retries)",
                self.error, self.retries
            )
        } else {
            write!(f, "{}", self.error)
        }
    }
}

impl GaveUp {
    /// The I/O error a transport returns for this, saying `message`. One the drain limit ended
    /// carries [`AtDrainLimit`]: a stop is not the receiver's "no", and a spool keeps such
    /// alerts for the next run instead of skipping them as refused ([`is_at_drain_limit`]).
    pub fn into_io_error(&self, message: String) -> std::io::Error {
        if self.at_drain_limit {
            std::io::Error::other(AtDrainLimit(message))
        } else {
            std::io::Error::other(message)
        }
    }
}

/// A delivery the drain limit ended: see [`GaveUp::into_io_error`].
#[derive(Debug)]
pub struct AtDrainLimit(pub String);

impl std::fmt::Display for AtDrainLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AtDrainLimit {}

/// Whether a transport's error means the drain limit stopped it (not a refusal).
///
/// ```
/// use secpipe::sink::retry::{GaveUp, is_at_drain_limit};
/// let gave_up = |at_drain_limit| GaveUp { error: "503".into(), retries: 3, at_drain_limit };
/// assert!(is_at_drain_limit(&gave_up(true).into_io_error("not delivered".into())));
/// assert!(!is_at_drain_limit(&gave_up(false).into_io_error("not delivered".into())));
/// ```
pub fn is_at_drain_limit(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<AtDrainLimit>())
}

impl RetryPolicy {
    /// Whether an HTTP status is worth another attempt.
    ///
    /// ```
    /// let policy = secpipe::sink::retry::RetryPolicy::default();
    /// let retried: Vec<u16> = [400, 404, 408, 425, 429, 500, 501, 502, 503, 599]
    ///     .into_iter().filter(|s| policy.retries_status(*s)).collect();
    /// assert_eq!(retried, [408, 425, 429, 500, 502, 503, 599]);
    /// ```
    pub fn retries_status(&self, status: u16) -> bool {
        matches!(status, 408 | 425 | 429)
            || ((500..=599).contains(&status) && status != 501)
            || self.retry_statuses.contains(&status)
    }

    /// A fresh backoff for one delivery.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            policy: self.clone(),
            failures: 0,
        }
    }

    /// Run `attempt` (given the attempt number, from 0) until it is done, it fails for good, or
    /// `clock` says the drain limit has passed. Waits between attempts per the policy.
    pub fn run<T>(
        &self,
        clock: &mut DrainClock,
        mut attempt: impl FnMut(u32) -> Attempt<T>,
    ) -> Result<Delivered<T>, GaveUp> {
        let mut backoff = self.backoff();
        let mut retries = 0u32;
        loop {
            if clock.passed() {
                return Err(GaveUp {
                    error: "not attempted: the drain limit has passed".into(),
                    retries,
                    at_drain_limit: true,
                });
            }
            let (error, retry_after) = match attempt(retries) {
                Attempt::Done(value) => return Ok(Delivered { value, retries }),
                Attempt::Fail(error) => {
                    return Err(GaveUp {
                        error,
                        retries,
                        at_drain_limit: false,
                    });
                }
                Attempt::Retry { error, retry_after } => (error, retry_after),
            };
            if let Some(m) = &clock.metrics {
                m.retried();
            }
            if !clock.sleep(backoff.next(retry_after)) {
                return Err(GaveUp {
                    error,
                    retries,
                    at_drain_limit: true,
                });
            }
            retries = retries.saturating_add(1);
        }
    }
}

/// The waits of one delivery: see the module docs.
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    failures: u32,
}

impl Backoff {
    /// The cap of the next wait before jitter: `initial × 2^failures`, at most `max`.
    pub fn cap(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.policy
            .initial
            .checked_mul(factor)
            .unwrap_or(self.policy.max)
            .min(self.policy.max)
    }

    /// How long to wait after a failed attempt: uniform in `[0, cap]` (full jitter), but at
    /// least the receiver's `retry_after` (capped at the policy's `max_retry_after`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut backoff = secpipe::sink::retry::RetryPolicy::default().backoff();
    /// assert!(backoff.next(None) <= Duration::from_secs(1));
    /// assert!(backoff.next(None) <= Duration::from_secs(2));
    /// // A receiver asking for a day gets the cap (5 min).
    /// assert_eq!(backoff.next(Some(Duration::from_secs(86_400))), Duration::from_secs(300));
    /// ```
    pub fn next(&mut self, retry_after: Option<Duration>) -> Duration {
        let cap = self.cap();
        self.failures = self.failures.saturating_add(1);
        let jittered = full_jitter(cap);
        match retry_after {
            Some(asked) => jittered.max(asked.min(self.policy.max_retry_after)),
            None => jittered,
        }
    }
}

/// Uniform in `[0, cap]`. Without randomness (getrandom failed) the whole cap: waiting longer
/// is safe, waiting in step with other senders only less kind to the receiver.
fn full_jitter(cap: Duration) -> Duration {
    let micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
    match getrandom::u64() {
        Ok(random) if micros < u64::MAX => Duration::from_micros(random % (micros + 1)),
        _ => cap,
    }
}

/// The wait a `Retry-After` header asks for: delta-seconds (`120`) or an HTTP-date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §10.2.3; a date in the past means now). `None`
/// for anything else: the policy's own backoff applies. Not capped here
/// ([`Backoff::next`] caps it).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use secpipe::sink::retry::parse_retry_after;
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37 UTC
/// assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now), Some(Duration::from_secs(60)));
/// assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
/// assert_eq!(parse_retry_after("-1", now), None);
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time": the cap applies.
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    let at = PARSER.parse_timestamp(value).ok()?.as_second();
    let now = i64::try_from(now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs()).ok()?;
    Some(Duration::from_secs(
        u64::try_from(at.saturating_sub(now)).unwrap_or(0),
    ))
}

/// The drain limit as seen from a sink's own thread: nothing until the run's shutdown is
/// triggered, then `drain` from the moment it is first seen.
#[derive(Clone)]
pub struct DrainClock {
    shutdown: Shutdown,
    drain: Duration,
    deadline: Option<Instant>,
    /// No limit could be computed (a drain too long for the clock): wait as long as it takes.
    unbounded: bool,
    /// The one attempt made at once when a wait would outlast the drain limit.
    last_chance_used: bool,
    /// Where the sink counts its retries and failed attempts (`--metrics`).
    metrics: Option<SinkMetrics>,
}

impl Default for DrainClock {
    /// No limit: a run that is never stopped, a drain too long for the clock.
    fn default() -> DrainClock {
        DrainClock::new(Shutdown::new(), Duration::MAX)
    }
}

impl DrainClock {
    pub fn new(shutdown: Shutdown, drain: Duration) -> DrainClock {
        DrainClock {
            shutdown,
            drain,
            deadline: None,
            unbounded: false,
            last_chance_used: false,
            metrics: None,
        }
    }

    /// Count the retries and failed attempts of [`RetryPolicy::run`] there.
    pub fn observe(&mut self, metrics: SinkMetrics) {
        self.metrics = Some(metrics);
    }

    /// Start the clock now if it has not started: a sink that must not hold the end of a run
    /// (a network peer that is down) is waited for at most the drain limit even without a
    /// stop signal.
    pub fn start_now(&mut self) {
        if self.deadline.is_none() && !self.unbounded {
            self.deadline = Instant::now().checked_add(self.drain);
            self.unbounded = self.deadline.is_none();
        }
    }

    /// Whether the drain limit has passed; starts the clock when it first sees the trigger.
    pub fn passed(&mut self) -> bool {
        self.left().is_some_and(|left| left.is_zero())
    }

    /// What is left of the drain limit, `None` while shutdown is not triggered.
    fn left(&mut self) -> Option<Duration> {
        if self.unbounded {
            return None;
        }
        if self.deadline.is_none() && self.shutdown.is_triggered() {
            self.deadline = Instant::now().checked_add(self.drain);
            self.unbounded = self.deadline.is_none();
        }
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Wait `pause` before the next attempt. Before shutdown this is a plain wait that wakes
    /// at the trigger. Once shutdown is triggered, a wait that fits in what is left of the drain
    /// limit is made; one that does not is skipped once (a last attempt now rather than none)
    /// and refused after that. Returns false when no further attempt should start.
    ///
    /// ```
    /// use std::time::Duration;
    /// use secpipe::shutdown::Shutdown;
    /// let shutdown = Shutdown::new();
    /// shutdown.trigger();
    /// let mut clock = secpipe::sink::retry::DrainClock::new(shutdown, Duration::from_secs(5));
    /// // Neither call sleeps the hour: the first returns at once for a last attempt.
    /// assert!(clock.sleep(Duration::from_secs(3600)), "a last attempt at once");
    /// assert!(!clock.sleep(Duration::from_secs(3600)), "then no more");
    /// ```
    pub fn sleep(&mut self, pause: Duration) -> bool {
        let until = Instant::now().checked_add(pause);
        loop {
            let now = Instant::now();
            let rest = match until {
                Some(until) if now >= until => return !self.passed(),
                Some(until) => until - now,
                None => Duration::MAX,
            };
            if let Some(left) = self.left() {
                if left.is_zero() {
                    return false;
                }
                if rest > left {
                    // Sleeping to the limit would end with nothing delivered: try once more now.
                    return !std::mem::replace(&mut self.last_chance_used, true);
                }
                std::thread::sleep(rest);
                continue;
            }
            // Not triggered yet: sleep in short slices so that the trigger wakes us.
            self.shutdown.sleep(rest.min(Duration::from_millis(250)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(4),
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn the_backoff_cap_doubles_from_initial_to_max_and_stays() {
        let mut backoff = RetryPolicy::default().backoff();
        let mut caps = Vec::new();
        for _ in 0..8 {
            caps.push(backoff.cap().as_secs());
            let wait = backoff.next(None);
            assert!(wait <= Duration::from_secs(*caps.last().unwrap_or(&0)));
        }
        assert_eq!(caps, [1, 2, 4, 8, 16, 30, 30, 30]);
        // Thousands of failures (a receiver down for a day) neither overflow nor pass the cap.
        for _ in 0..10_000 {
            assert!(backoff.next(None) <= DEFAULT_MAX);
        }
    }

    #[test]
    fn full_jitter_spreads_the_waits() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut backoff = RetryPolicy::default().backoff();
            seen.insert(backoff.next(None));
        }
        // Fifty senders that failed together do not all come back at once.
        assert!(seen.len() > 40, "{} distinct waits", seen.len());
    }

    /// A receiver cannot park the sink: a Retry-After of a day, or of 10^30 seconds, or a date
    /// in the year 2999, is cut to the policy's cap.
    #[test]
    fn a_hostile_retry_after_is_capped() {
        let now = SystemTime::now();
        for header in [
            "86400",
            "1000000000000000000000000000000",
            "Tue, 31 Dec 2999 23:59:59 GMT",
        ] {
            let asked = parse_retry_after(header, now).expect(header);
            let mut backoff = RetryPolicy::default().backoff();
            assert_eq!(
                backoff.next(Some(asked)),
                DEFAULT_MAX_RETRY_AFTER,
                "{header}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_when_longer_than_the_backoff() {
        let mut backoff = fast().backoff();
        assert_eq!(
            backoff.next(Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn configured_statuses_retry_and_final_ones_do_not() {
        let mut policy = RetryPolicy::default();
        assert!(!policy.retries_status(404));
        assert!(!policy.retries_status(501));
        policy.retry_statuses = vec![404];
        assert!(policy.retries_status(404));
        assert!(!policy.retries_status(400));
    }

    #[test]
    fn a_final_no_is_not_retried() {
        let mut clock = DrainClock::new(Shutdown::new(), Duration::from_secs(5));
        let mut calls = 0;
        let outcome: Result<Delivered<()>, GaveUp> = fast().run(&mut clock, |_| {
            calls += 1;
            Attempt::Fail("HTTP 400".into())
        });
        assert_eq!(calls, 1);
        let gave_up = outcome.expect_err("400 is final");
        assert!(!gave_up.at_drain_limit);
    }

    /// A receiver that stays down is retried while the run goes on, and no longer than the
    /// drain limit once shutdown is triggered: the stop is not held.
    #[test]
    fn retrying_ends_at_the_drain_limit_after_shutdown() {
        let shutdown = Shutdown::new();
        let mut clock = DrainClock::new(shutdown.clone(), Duration::from_millis(100));
        let mut calls = 0u32;
        let mut triggered_at = None;
        let policy = RetryPolicy {
            initial: Duration::from_secs(3600),
            max: Duration::from_secs(3600),
            ..RetryPolicy::default()
        };
        let trigger = shutdown.clone();
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            trigger.trigger();
        });
        let outcome: Result<Delivered<()>, GaveUp> = policy.run(&mut clock, |_| {
            calls += 1;
            if shutdown.is_triggered() {
                triggered_at.get_or_insert_with(Instant::now);
            }
            // A receiver asking for an hour: only the trigger and the drain limit end the wait.
            Attempt::Retry {
                error: "HTTP 503".into(),
                retry_after: Some(Duration::from_secs(3600)),
            }
        });
        let _ = waker.join();
        let gave_up = outcome.expect_err("the receiver never answered");
        assert!(gave_up.at_drain_limit, "{gave_up}");
        // The hour-long wait woke at the trigger, tried once more, and ended at the limit.
        assert_eq!(calls, 2, "{gave_up}");
        assert!(triggered_at.is_some());
    }

    #[test]
    fn without_shutdown_a_failing_receiver_is_retried() {
        let mut clock = DrainClock::new(Shutdown::new(), Duration::ZERO);
        let outcome = fast().run(&mut clock, |n| {
            if n < 20 {
                Attempt::retry("connection refused".into())
            } else {
                Attempt::Done(n)
            }
        });
        assert_eq!(
            outcome,
            Ok(Delivered {
                value: 20,
                retries: 20
            })
        );
    }

    #[test]
    fn nothing_starts_past_the_drain_limit() {
        let shutdown = Shutdown::new();
        shutdown.trigger();
        let mut clock = DrainClock::new(shutdown, Duration::ZERO);
        let mut calls = 0;
        let outcome: Result<Delivered<()>, GaveUp> = fast().run(&mut clock, |_| {
            calls += 1;
            Attempt::Done(())
        });
        assert_eq!(calls, 0);
        assert!(outcome.expect_err("past the limit").at_drain_limit);
    }

    #[test]
    fn retry_options_name_what_is_wrong() {
        let zero = RetryOptions {
            initial: Some("0s".into()),
            ..RetryOptions::default()
        };
        assert!(zero.policy().is_err());
        let inverted = RetryOptions {
            initial: Some("1m".into()),
            max: Some("1s".into()),
            ..RetryOptions::default()
        };
        assert!(inverted.policy().is_err());
        let parsed: RetryOptions =
            toml::from_str("initial = \"500ms\"\nstatuses = [404, 409]").expect("toml");
        let policy = parsed.policy().expect("valid");
        assert_eq!(policy.initial, Duration::from_millis(500));
        assert_eq!(policy.retry_statuses, [404, 409]);
        let unknown = toml::from_str::<RetryOptions>("inital = \"1s\"");
        assert!(unknown.is_err(), "a misspelt key is refused");
    }
}
