//! Counting login attempts, not lines (DESIGN section 3).
//!
//! Lines of one session (same host, app and pid) that report the same attempt count once, using
//! the role classify gave each line ([`Attempt`]):
//!
//! | role | in a session (pid known) | without a pid |
//! |---|---|---|
//! | `Start` | 1, unless an attempt is already open | 1 |
//! | `End` | 0 if it closes an open `Start`, else 1 | 1 |
//! | `Repeat` | `count` (closes an open `Start`) | `count` |
//! | `Summary` | 1 only if the session counted nothing yet | 0 |
//! | `None` | 1 | 1 |
//!
//! Without a pid there is no session to consult; a summary line (`maximum authentication
//! attempts exceeded`, `Connection closed … [preauth]`) only restates attempts its session has
//! already reported, so it counts 0 there rather than double counting.
//!
//! Session state is small (16-byte key, 16-byte state), expires after [`SESSION_IDLE`] and is
//! capped at [`MAX_SESSIONS`]; an evicted session at worst counts one attempt twice.

use std::hash::BuildHasher;

use super::slab::{KeyedSlab, seeded_hasher};
use crate::event::{Attempt, Event};

/// A session idle this long is forgotten (sshd's LoginGraceTime is 2 min).
pub(crate) const SESSION_IDLE: i64 = 10 * 60 * 1_000_000;
/// Most sessions remembered at once (sshd's MaxStartups allows 100 unauthenticated
/// connections per server by default).
pub(crate) const MAX_SESSIONS: usize = 32_768;

/// (hash of host and app, pid). The 64-bit hash uses a fixed seed so that the (astronomically
/// unlikely) case of two sessions sharing a key is at least reproducible.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SessionKey {
    host_app: u64,
    pid: u32,
}

struct Session {
    last_ts: i64,
    /// A `Start` is waiting for its `End`.
    open: bool,
    /// The session has counted at least one attempt.
    counted: bool,
}

/// Per-session attempt state.
pub(crate) struct AttemptCounter {
    sessions: KeyedSlab<SessionKey, Session>,
    fixed: foldhash::fast::FixedState,
}

impl AttemptCounter {
    pub(crate) fn new() -> Self {
        AttemptCounter {
            sessions: KeyedSlab::new(seeded_hasher()),
            fixed: foldhash::fast::FixedState::with_seed(0x5e55_1011),
        }
    }

    /// How many attempts `ev` adds. Call once per event, in processing order.
    pub(crate) fn weight(&mut self, ev: &Event) -> u64 {
        let repeated = ev.count.unwrap_or(1).max(1);
        let Some(pid) = ev.pid else {
            return match ev.attempt {
                Attempt::None | Attempt::Start | Attempt::End => 1,
                Attempt::Repeat => repeated,
                Attempt::Summary => 0,
            };
        };
        self.expire(ev.ts);
        let key = SessionKey {
            host_app: self.fixed.hash_one((
                ev.host.as_deref().unwrap_or(""),
                ev.app.as_deref().unwrap_or(""),
            )),
            pid,
        };
        let id = match self
            .sessions
            .find_by(self.sessions.hash_of(&key), |k| *k == key)
        {
            Some(id) => {
                self.sessions.touch(id);
                id
            }
            None => {
                if self.sessions.len() >= MAX_SESSIONS
                    && let Some(oldest) = self.sessions.oldest()
                {
                    self.sessions.remove(oldest);
                }
                self.sessions.insert(
                    key,
                    Session {
                        last_ts: ev.ts,
                        open: false,
                        counted: false,
                    },
                )
            }
        };
        let Some((_, s)) = self.sessions.get_mut(id) else {
            return 1;
        };
        s.last_ts = s.last_ts.max(ev.ts);
        let weight = match ev.attempt {
            Attempt::None => 1,
            Attempt::Start if s.open => 0,
            Attempt::Start => {
                s.open = true;
                1
            }
            Attempt::End if s.open => {
                s.open = false;
                0
            }
            Attempt::End => 1,
            Attempt::Repeat => {
                s.open = false;
                repeated
            }
            Attempt::Summary if s.counted => 0,
            Attempt::Summary => 1,
        };
        if weight > 0 {
            s.counted = true;
        }
        weight
    }

    fn expire(&mut self, now: i64) {
        while let Some(oldest) = self.sessions.oldest() {
            match self.sessions.get(oldest) {
                Some((_, s)) if s.last_ts < now.saturating_sub(SESSION_IDLE) => {
                    self.sessions.remove(oldest);
                }
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(pid: Option<u32>, attempt: Attempt) -> Event {
        Event {
            host: Some("h".into()),
            app: Some("sshd".into()),
            pid,
            attempt,
            ..Event::default()
        }
    }

    #[test]
    fn one_session_two_attempts_five_lines() {
        let mut c = AttemptCounter::new();
        let total: u64 = [
            Attempt::Start,   // Invalid user
            Attempt::Start,   // pam authentication failure
            Attempt::End,     // Failed password (closes the open attempt)
            Attempt::End,     // Failed password (second attempt)
            Attempt::Summary, // Connection closed … [preauth]
        ]
        .into_iter()
        .map(|a| c.weight(&line(Some(10), a)))
        .sum();
        assert_eq!(total, 2);
    }

    #[test]
    fn summary_counts_only_an_otherwise_silent_session() {
        let mut c = AttemptCounter::new();
        assert_eq!(c.weight(&line(Some(1), Attempt::Summary)), 1);
        assert_eq!(c.weight(&line(Some(1), Attempt::Summary)), 0);
        assert_eq!(c.weight(&line(Some(2), Attempt::End)), 1);
        assert_eq!(c.weight(&line(Some(2), Attempt::Summary)), 0);
    }

    #[test]
    fn repeats_count_n_and_sessions_are_separate() {
        let mut c = AttemptCounter::new();
        let mut repeat = line(Some(3), Attempt::Repeat);
        repeat.count = Some(4);
        assert_eq!(c.weight(&repeat), 4);
        assert_eq!(c.weight(&line(Some(4), Attempt::Start)), 1);
        assert_eq!(c.weight(&line(Some(5), Attempt::End)), 1);
        assert_eq!(c.weight(&line(Some(4), Attempt::End)), 0);
    }

    #[test]
    fn without_pid_each_line_counts_by_role() {
        let mut c = AttemptCounter::new();
        assert_eq!(c.weight(&line(None, Attempt::Start)), 1);
        assert_eq!(c.weight(&line(None, Attempt::End)), 1);
        assert_eq!(c.weight(&line(None, Attempt::Summary)), 0);
        let mut repeat = line(None, Attempt::Repeat);
        repeat.count = Some(3);
        assert_eq!(c.weight(&repeat), 3);
    }

    #[test]
    fn sessions_expire() {
        let mut c = AttemptCounter::new();
        assert_eq!(c.weight(&line(Some(9), Attempt::Start)), 1);
        let mut later = line(Some(9), Attempt::End);
        later.ts = SESSION_IDLE + 1;
        // The old session is gone, so this End stands alone.
        assert_eq!(c.weight(&later), 1);
    }
}
