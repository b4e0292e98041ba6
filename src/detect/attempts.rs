//! Counting login attempts, not lines (DESIGN section 3), and giving each attempt its
//! session's address.
//!
//! Lines of one session (same host, app and pid) that report the same attempt count once, using
//! the role classify gave each line ([`Attempt`]):
//!
//! | role | in a session (pid known) | without a pid |
//! |---|---|---|
//! | `Start` | 1, unless an attempt is already open (0 while pending, below) | 1 |
//! | `End` | 0 if it closes an open `Start` (1 if that one is pending), else 1 | 1 |
//! | `Repeat` | `count` (closes an open `Start`) | `count` |
//! | `Summary` | 1 only if the session counted nothing yet | 0 |
//! | `None` | 1 | 1 |
//!
//! Without a pid there is no session to consult; a summary line (`maximum authentication
//! attempts exceeded`, `Connection closed … [preauth]`) only restates attempts its session has
//! already reported, so it counts 0 there rather than double counting.
//!
//! # The session's address
//!
//! A session's client address often comes on another line than its failure: `User root not
//! allowed because account is locked` … `Received disconnect from 198.51.100.3 port …: 11: Bye
//! Bye [preauth]`, or a PAM failure whose `rhost=` is a host name (UseDNS, or the attacker's own
//! PTR record) before `Failed password … from 198.51.100.3`. The first address any line of a
//! session names becomes the session's address, and:
//!
//! - an attempt with no address of its own, in a session whose address is known, counts toward
//!   that address ([`Counted::Bound`]);
//! - an attempt with no address in a session whose address is not known yet is *held*
//!   ([`Counted::Held`]): it may only be attributed once the address is known, so no alert is
//!   decided on it before. When a later line names the address, the held attempts are released
//!   ([`AttemptCounter::take_released`]) and count at their own event time. When the session
//!   ends without one (idle, evicted, end of input), they count toward no address and are
//!   counted as unattributed ([`SessionStats`]).
//! - An attempt without an address never swallows one that has an address: an `End` naming
//!   address A closes an open `Start` only when that `Start` named A or nothing; a `Start` that
//!   named nothing is held and then bound to A, so the pair counts once, toward A.
//!
//! The detector processes events in event-time order, so binding is the same in a live run and
//! in a replay.
//!
//! # A login forgives its open attempt
//!
//! With two PAM modules (pam_unix, then pam_ldap or pam_sss), the first one's `authentication
//! failure … user=rda` is followed by `Accepted password for rda` when the second accepts: no
//! attempt failed. fail2ban forgets such a pending failure (F-MLFFORGET on `Accepted`). So in a
//! session of an app with a process per connection, a `Start` that names a user and an address
//! is *pending*: it counts 0 at first and
//!
//! - its `End` (`Failed password`) counts the pair once (1);
//! - a login (`auth.success`) of the same user forgives it: it never counts
//!   ([`SessionStats::attempts_forgiven`]);
//! - anything else of the session (a login as another user, another user's `Start`, a
//!   disconnect, another failure) shows it failed: it is released ([`AttemptCounter::take_released`])
//!   and counts at its own time toward its address; so it is at the end of input
//!   ([`AttemptCounter::finish`]) and when the session is forgotten.
//!
//! A login as another account forgives nothing (fail2ban's "intruder tries to forget failed
//! attempts by a success login"), and a `Start` without a user (pam_unix names no `user=` for an
//! unknown account, which can never log in) counts at once. A pending attempt counts toward
//! the rules that count attempts by address when it is released; rules that count attempts by
//! another key see it only through its `End`.
//!
//! # Tallies
//!
//! Dovecot's login process writes one line per connection when it closes, with the number of
//! attempts that failed in it (`Disconnected (auth failed, 2 attempts in 4 secs): … rip=ADDR`,
//! role `Tally`), possibly minutes after them; each attempt was already reported as it failed
//! by PAM (`pam_unix(dovecot:auth): authentication failure … rhost=ADDR`, role `Start`) and,
//! with `auth_verbose = yes`, by the auth worker (`pam(bob,ADDR): pam_authenticate() failed`,
//! role `End`, completing the PAM line's attempt). These come from different processes, so for
//! the apps of [`is_tallied_at_close`] attempts are matched per (host, address) instead of per
//! session: the reporting lines count at once (so alerts do not wait for the connection to
//! close), and a tally counts only the attempts of its address no reporting line counted yet.
//! One failed login counts once whichever lines the configuration writes. The state is one
//! small entry per (host, address), expires after [`SESSION_IDLE`] (a tally later than that
//! counts its attempts again: at worst twice, never zero times) and is capped at
//! [`MAX_SESSIONS`], evictions counted.
//!
//! # Limits
//!
//! Session state is small (16-byte key, ~80-byte state), expires after [`SESSION_IDLE`] and is
//! capped at [`MAX_SESSIONS`]; at most [`MAX_HELD_PER_SESSION`] held events per session keep
//! their line as evidence (later ones add to the last one's weight), and at most
//! [`MAX_HELD_TOTAL`] across sessions. At either session cap the least recently used session is
//! evicted and counted; an evicted session at worst counts one attempt twice, or loses its held
//! attempts (counted as unattributed).

use std::hash::BuildHasher;
use std::net::IpAddr;

use super::slab::{KeyedSlab, SlabSnap, seeded_hasher};
use super::snapshot::{EventSnap, Names, SnapshotError, counter};
use crate::event::{Attempt, Event, Kind};

/// A session idle this long is forgotten (sshd's LoginGraceTime is 2 min).
pub(crate) const SESSION_IDLE: i64 = 10 * 60 * 1_000_000;
/// Most sessions remembered at once (sshd's MaxStartups allows 100 unauthenticated
/// connections per server by default).
pub(crate) const MAX_SESSIONS: usize = 32_768;
/// Held events (with their line) per session: sshd's MaxAuthTries is 6 by default.
pub(crate) const MAX_HELD_PER_SESSION: usize = 8;
/// Held events across all sessions (each keeps its whole event, a few hundred bytes).
pub(crate) const MAX_HELD_TOTAL: usize = 16_384;

/// The fixed seed of session keys' host hashes (see [`SessionKey`]); snapshots store those
/// hashes, so it must not change between builds that share snapshots.
const SESSION_SEED: u64 = 0x5e55_1011;

/// (hash of host and app, pid). The 64-bit hash uses a fixed seed so that the (astronomically
/// unlikely) case of two sessions sharing a key is at least reproducible.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SessionKey {
    host_app: u64,
    pid: u32,
}

/// (hash of host, address): where a tallying app's attempts are reported.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct TallyKey {
    host: u64,
    addr: IpAddr,
}

struct Reported {
    last_ts: i64,
    /// A `Start` (the PAM line) waits for its `End` (the auth worker's line).
    open: bool,
    /// Attempts counted as they failed that no tally has included yet.
    untallied: u64,
}

struct Session {
    last_ts: i64,
    /// A `Start` is waiting for its `End`.
    open: bool,
    /// The address the open `Start` named, if any.
    open_addr: Option<IpAddr>,
    /// The session has counted at least one attempt.
    counted: bool,
    /// The first address a line of this session named.
    addr: Option<IpAddr>,
    /// Attempts without an address, waiting for `addr`, with their weight.
    held: Vec<(Box<Event>, u64)>,
    /// The open `Start`, not counted yet because a login of its user may still show that it
    /// was no failure (with its address set). See "A login forgives its open attempt".
    pending: Option<Box<Event>>,
}

/// What an event counts for the rules that count attempts per address.
#[derive(Debug, PartialEq)]
pub(crate) enum Counted {
    /// This many attempts, toward the event's own address (none if it has none and no session).
    Own(u64),
    /// This many attempts with no address yet: held until its session names one.
    Held(u64),
    /// This many attempts toward the address this other event carries as `src_ip`: a copy of
    /// the event with its session's address, or the pending `Start` the event completes.
    Bound(Box<Event>, u64),
}

impl Counted {
    /// Attempts the event stands for, whoever they count toward (for rules that count
    /// attempts by another key than the address).
    pub(crate) fn attempts(&self) -> u64 {
        match self {
            Counted::Own(n) | Counted::Held(n) | Counted::Bound(_, n) => *n,
        }
    }
}

/// Counters for the summary: how sessions lent their address, and what the caps cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionStats {
    /// Open attempts that their session's login, as the same user, showed were no failure.
    pub attempts_forgiven: u64,
    /// Attempts without an address of their own that counted toward their session's address.
    pub attempts_bound: u64,
    /// Attempts whose session ended (idle, evicted, end of input) without naming an address.
    pub attempts_unattributed: u64,
    /// Sessions forgotten at `MAX_SESSIONS` or `MAX_HELD_TOTAL` before they went idle.
    pub sessions_evicted: u64,
}

/// Per-session attempt state.
pub(crate) struct AttemptCounter {
    sessions: KeyedSlab<SessionKey, Session>,
    /// Attempts of tallying apps reported per address (see "Tallies").
    reported: KeyedSlab<TallyKey, Reported>,
    fixed: foldhash::fast::FixedState,
    /// Held events across all sessions.
    held_total: usize,
    /// Attempts those events stand for.
    held_weight: u64,
    /// Held attempts released by the last [`AttemptCounter::observe`], bound to their address.
    released: Vec<(Box<Event>, u64)>,
    stats: SessionStats,
}

impl AttemptCounter {
    pub(crate) fn new() -> Self {
        AttemptCounter {
            sessions: KeyedSlab::new(seeded_hasher()),
            reported: KeyedSlab::new(seeded_hasher()),
            fixed: foldhash::fast::FixedState::with_seed(SESSION_SEED),
            held_total: 0,
            held_weight: 0,
            released: Vec::new(),
            stats: SessionStats::default(),
        }
    }

    /// How many attempts `ev` adds. Call once per event, in processing order. `attempt` says
    /// whether a rule counts `ev` as an attempt; other events only lend their address to their
    /// session (which may release held attempts: see [`AttemptCounter::take_released`]).
    pub(crate) fn observe(&mut self, ev: &Event, attempt: bool) -> Counted {
        let repeated = ev.count.unwrap_or(1).max(1);
        if attempt
            && let Some(addr) = ev.src_ip
            && ev.app.as_deref().is_some_and(is_tallied_at_close)
        {
            return Counted::Own(self.tally(ev, addr, repeated));
        }
        let Some(pid) = ev.pid else {
            return Counted::Own(if attempt {
                match ev.attempt {
                    Attempt::None | Attempt::Start | Attempt::End => 1,
                    Attempt::Repeat | Attempt::Tally => repeated,
                    Attempt::Summary => 0,
                }
            } else {
                1
            });
        };
        let binds = ev.app.as_deref().is_some_and(is_connection_per_process);
        // A line that is no attempt changes nothing unless it lends its session an address:
        // skip the lookup (the hot path: most lines are no attempt).
        if !attempt && (ev.src_ip.is_none() || !binds) {
            return Counted::Own(1);
        }
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
                if self.sessions.len() >= MAX_SESSIONS {
                    self.evict_oldest();
                }
                self.sessions.insert(
                    key,
                    Session {
                        last_ts: ev.ts,
                        open: false,
                        open_addr: None,
                        counted: false,
                        addr: None,
                        held: Vec::new(),
                        pending: None,
                    },
                )
            }
        };
        let Some((_, s)) = self.sessions.get_mut(id) else {
            return Counted::Own(1);
        };
        s.last_ts = s.last_ts.max(ev.ts);
        if binds
            && let (Some(known), Some(named)) = (s.addr, ev.src_ip)
            && known != named
        {
            // Another client under the same pid: the old connection ended and its pid was
            // reused. Start afresh rather than lend the old address (its open attempt counts).
            self.released.extend(s.pending.take().map(|p| (p, 1)));
            s.addr = None;
            s.open = false;
            s.open_addr = None;
            s.counted = false;
        }
        if binds
            && s.addr.is_none()
            && let Some(addr) = ev.src_ip
        {
            s.addr = Some(addr);
            if s.open && s.open_addr.is_none() {
                // The open `Start` was held: it counts toward this address now.
                s.open_addr = Some(addr);
            }
            self.held_total -= s.held.len();
            for (mut held, weight) in s.held.drain(..) {
                self.held_weight = self.held_weight.saturating_sub(weight);
                held.src_ip = Some(addr);
                self.stats.attempts_bound = self.stats.attempts_bound.saturating_add(weight);
                self.released.push((held, weight));
            }
        }
        if let Some(pending) = &s.pending {
            let same_user = ev.user.is_some() && ev.user == pending.user;
            if ev.kind == Kind::AuthSuccess && same_user {
                // The user got in: the open attempt was no failure.
                s.pending = None;
                s.open = false;
                self.stats.attempts_forgiven = self.stats.attempts_forgiven.saturating_add(1);
                return Counted::Own(1);
            }
            let restates =
                attempt && ev.attempt == Attempt::Start && (ev.user.is_none() || same_user);
            let completes = attempt && ev.attempt == Attempt::End;
            if !restates && !completes {
                // The session moved on without a login: the attempt failed. It counts at its
                // own time, and stays open for the line that may still complete it.
                self.released.extend(s.pending.take().map(|p| (p, 1)));
                s.counted = true;
                if attempt && ev.attempt == Attempt::Start {
                    // Another user's attempt (fail2ban's "intruder tries to forget failed
                    // attempts by a success login" switches names): a new attempt.
                    s.open = false;
                }
            }
        }
        if !attempt {
            return Counted::Own(1);
        }
        let weight = match ev.attempt {
            Attempt::None => 1,
            Attempt::Start if s.open => 0,
            Attempt::Start => {
                s.open = true;
                // The address the attempt counts toward: its own, else its session's (bound
                // now, or once a line names it: see the release above).
                s.open_addr = ev.src_ip.or(if binds { s.addr } else { None });
                if binds
                    && ev.user.is_some()
                    && let Some(addr) = s.open_addr
                {
                    // A user that may yet log in: wait for the session's next word.
                    let mut pending = Box::new(ev.clone());
                    pending.src_ip = Some(addr);
                    s.pending = Some(pending);
                    return Counted::Own(0);
                }
                1
            }
            // An `End` closes only a `Start` that counts toward the same address (or, both
            // without one, toward nothing): an attempt without an address never swallows one
            // that has an address.
            Attempt::End
                if s.open && s.open_addr == ev.src_ip.or(if binds { s.addr } else { None }) =>
            {
                s.open = false;
                if let Some(pending) = s.pending.take() {
                    s.counted = true;
                    // The pair counts once, as its `Start` would have: at its time, with its
                    // line as evidence, toward its address.
                    return Counted::Bound(pending, 1);
                }
                0
            }
            Attempt::End => {
                s.open = false;
                // An `End` toward another address: the open `Start` failed on its own.
                let unmatched = s.pending.take().map(|p| (p, 1));
                self.released.extend(unmatched);
                1
            }
            Attempt::Repeat | Attempt::Tally => {
                s.open = false;
                repeated
            }
            Attempt::Summary if s.counted => 0,
            Attempt::Summary => 1,
        };
        if weight == 0 {
            return Counted::Own(0);
        }
        s.counted = true;
        if ev.src_ip.is_some() || !binds {
            return Counted::Own(weight);
        }
        if let Some(addr) = s.addr {
            self.stats.attempts_bound = self.stats.attempts_bound.saturating_add(weight);
            let mut bound = Box::new(ev.clone());
            bound.src_ip = Some(addr);
            return Counted::Bound(bound, weight);
        }
        if s.held.len() >= MAX_HELD_PER_SESSION
            && let Some((_, last_weight)) = s.held.last_mut()
        {
            *last_weight = last_weight.saturating_add(weight);
            self.held_weight = self.held_weight.saturating_add(weight);
        } else {
            self.held_weight = self.held_weight.saturating_add(weight);
            s.held.push((Box::new(ev.clone()), weight));
            self.held_total += 1;
            if self.held_total > MAX_HELD_TOTAL {
                self.evict_oldest();
            }
        }
        Counted::Held(weight)
    }

    /// The weight of an attempt line of a tallying app with an address (see "Tallies").
    fn tally(&mut self, ev: &Event, addr: IpAddr, repeated: u64) -> u64 {
        while let Some(oldest) = self.reported.oldest() {
            match self.reported.get(oldest) {
                Some((_, r)) if r.last_ts < ev.ts.saturating_sub(SESSION_IDLE) => {
                    self.reported.remove(oldest);
                }
                _ => break,
            }
        }
        let key = TallyKey {
            host: self.fixed.hash_one(ev.host.as_deref().unwrap_or("")),
            addr,
        };
        let id = match self
            .reported
            .find_by(self.reported.hash_of(&key), |k| *k == key)
        {
            Some(id) => {
                self.reported.touch(id);
                id
            }
            None => {
                if self.reported.len() >= MAX_SESSIONS
                    && let Some(oldest) = self.reported.oldest()
                {
                    // Its untallied attempts will be counted again by their tally: at worst
                    // an attempt counts twice, never not at all.
                    self.reported.remove(oldest);
                    self.stats.sessions_evicted += 1;
                }
                self.reported.insert(
                    key,
                    Reported {
                        last_ts: ev.ts,
                        open: false,
                        untallied: 0,
                    },
                )
            }
        };
        let Some((_, r)) = self.reported.get_mut(id) else {
            return repeated;
        };
        r.last_ts = r.last_ts.max(ev.ts);
        match ev.attempt {
            Attempt::Start if r.open => 0,
            Attempt::Start => {
                r.open = true;
                r.untallied = r.untallied.saturating_add(1);
                1
            }
            Attempt::End if r.open => {
                r.open = false;
                0
            }
            Attempt::End | Attempt::None => {
                r.untallied = r.untallied.saturating_add(1);
                1
            }
            Attempt::Repeat => {
                r.open = false;
                r.untallied = r.untallied.saturating_add(repeated);
                repeated
            }
            Attempt::Tally => {
                r.open = false;
                let reported = r.untallied.min(repeated);
                r.untallied -= reported;
                repeated - reported
            }
            Attempt::Summary => 0,
        }
    }

    /// Held attempts that the last [`AttemptCounter::observe`] bound to their session's newly
    /// known address (`src_ip` set), with their weight, oldest first. Count them before the
    /// event that named the address.
    pub(crate) fn take_released(&mut self) -> std::vec::Drain<'_, (Box<Event>, u64)> {
        self.released.drain(..)
    }

    /// Counters so far; attempts still held count as unattributed.
    pub(crate) fn stats(&self) -> SessionStats {
        SessionStats {
            attempts_unattributed: self
                .stats
                .attempts_unattributed
                .saturating_add(self.held_weight),
            ..self.stats
        }
    }

    /// Forget the least recently used session (at a cap), counting what it loses.
    fn evict_oldest(&mut self) {
        if let Some(oldest) = self.sessions.oldest() {
            self.stats.sessions_evicted += 1;
            self.forget(oldest);
        }
    }

    /// End of input: open attempts that no login forgave failed; they count at their own time
    /// (see [`AttemptCounter::take_released`]).
    pub(crate) fn finish(&mut self) {
        let released = &mut self.released;
        let first = released.len();
        self.sessions.for_each_mut(|_, s| {
            released.extend(s.pending.take().map(|p| (p, 1)));
        });
        // Slots come in no particular order: count in event-time order.
        released[first..]
            .sort_by(|(a, _), (b, _)| (a.ts, &a.source, a.line).cmp(&(b.ts, &b.source, b.line)));
    }

    fn forget(&mut self, id: u32) {
        if let Some((_, mut s)) = self.sessions.remove(id) {
            self.released.extend(s.pending.take().map(|p| (p, 1)));
            let weight = s
                .held
                .iter()
                .fold(0u64, |sum, (_, w)| sum.saturating_add(*w));
            self.held_total -= s.held.len();
            self.held_weight = self.held_weight.saturating_sub(weight);
            self.stats.attempts_unattributed =
                self.stats.attempts_unattributed.saturating_add(weight);
        }
    }

    fn expire(&mut self, now: i64) {
        while let Some(oldest) = self.sessions.oldest() {
            match self.sessions.get(oldest) {
                Some((_, s)) if s.last_ts < now.saturating_sub(SESSION_IDLE) => {
                    self.forget(oldest);
                }
                _ => break,
            }
        }
    }
}

/// Session state as a snapshot holds it (see `detect::snapshot`).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct AttemptsSnap {
    /// Keyed by (hash of host and app, pid): the hash has a fixed seed, so it is a value.
    sessions: SlabSnap<(u64, u32), SessionSnap>,
    reported: SlabSnap<(u64, IpAddr), (i64, bool, u64)>,
    held_weight: u64,
    released: Vec<(EventSnap, u64)>,
    stats: SessionStats,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SessionSnap {
    last_ts: i64,
    open: bool,
    open_addr: Option<IpAddr>,
    counted: bool,
    addr: Option<IpAddr>,
    held: Vec<(EventSnap, u64)>,
    pending: Option<EventSnap>,
}

impl AttemptCounter {
    pub(crate) fn snapshot(&self) -> AttemptsSnap {
        let events = |list: &Vec<(Box<Event>, u64)>| -> Vec<(EventSnap, u64)> {
            list.iter().map(|(ev, w)| (EventSnap::of(ev), *w)).collect()
        };
        AttemptsSnap {
            sessions: self.sessions.snapshot(
                |k| (k.host_app, k.pid),
                |s| SessionSnap {
                    last_ts: s.last_ts,
                    open: s.open,
                    open_addr: s.open_addr,
                    counted: s.counted,
                    addr: s.addr,
                    held: events(&s.held),
                    pending: s.pending.as_deref().map(EventSnap::of),
                },
            ),
            reported: self
                .reported
                .snapshot(|k| (k.host, k.addr), |r| (r.last_ts, r.open, r.untallied)),
            held_weight: self.held_weight,
            released: events(&self.released),
            stats: self.stats,
        }
    }

    /// The counter a snapshot holds; `held_total` is counted again from the sessions.
    pub(crate) fn restore(
        snap: AttemptsSnap,
        names: &mut Names,
    ) -> Result<AttemptCounter, SnapshotError> {
        let mut held_total = 0usize;
        let events = |list: Vec<(EventSnap, u64)>, names: &mut Names| {
            list.into_iter()
                .map(|(ev, w)| Ok((Box::new(ev.into_event(names)?), w)))
                .collect::<Result<Vec<_>, SnapshotError>>()
        };
        let sessions = KeyedSlab::restore(
            snap.sessions,
            seeded_hasher(),
            |(host_app, pid)| Ok(SessionKey { host_app, pid }),
            |s| {
                let held = events(s.held, names)?;
                held_total += held.len();
                let pending = match s.pending {
                    Some(ev) => Some(Box::new(ev.into_event(names)?)),
                    None => None,
                };
                Ok(Session {
                    last_ts: s.last_ts,
                    open: s.open,
                    open_addr: s.open_addr,
                    counted: s.counted,
                    addr: s.addr,
                    held,
                    pending,
                })
            },
        )?;
        let reported = KeyedSlab::restore(
            snap.reported,
            seeded_hasher(),
            |(host, addr)| Ok(TallyKey { host, addr }),
            |(last_ts, open, untallied)| {
                Ok(Reported {
                    last_ts,
                    open,
                    untallied,
                })
            },
        )?;
        Ok(AttemptCounter {
            sessions,
            reported,
            fixed: foldhash::fast::FixedState::with_seed(SESSION_SEED),
            held_total,
            held_weight: snap.held_weight,
            released: events(snap.released, names)?,
            stats: SessionStats {
                sessions_evicted: counter("sessions evicted", snap.stats.sessions_evicted)?,
                ..snap.stats
            },
        })
    }
}

/// Apps whose connections end with a tally of their failed attempts (Dovecot: the login
/// processes, and the auth processes and PAM lines that report each attempt as it fails).
fn is_tallied_at_close(app: &str) -> bool {
    matches!(
        app,
        "dovecot"
            | "dovecot-auth"
            | "auth"
            | "auth-worker"
            | "imap-login"
            | "pop3-login"
            | "submission-login"
            | "managesieve-login"
    )
}

/// Apps whose process serves one client connection, so that its pid identifies a session:
/// sshd forks a process per connection (`sshd-session` and `sshd-auth` since OpenSSH 9.8), and
/// so does dropbear. Other daemons (postfix smtpd, dovecot auth, web servers) serve client
/// after client in one process: an address one of their lines names says nothing about the
/// next line of the same pid, and lending it would let one client's address take the blame
/// for another's failures.
fn is_connection_per_process(app: &str) -> bool {
    matches!(app, "sshd" | "sshd-session" | "sshd-auth" | "dropbear")
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

    fn from(pid: u32, attempt: Attempt, ip: &str) -> Event {
        Event {
            src_ip: ip.parse().ok(),
            ..line(Some(pid), attempt)
        }
    }

    /// The weight as the old counter saw it: attempts, whoever they count toward.
    fn weight(c: &mut AttemptCounter, ev: &Event) -> u64 {
        c.observe(ev, true).attempts()
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
        .map(|a| weight(&mut c, &line(Some(10), a)))
        .sum();
        assert_eq!(total, 2);
    }

    #[test]
    fn summary_counts_only_an_otherwise_silent_session() {
        let mut c = AttemptCounter::new();
        assert_eq!(weight(&mut c, &line(Some(1), Attempt::Summary)), 1);
        assert_eq!(weight(&mut c, &line(Some(1), Attempt::Summary)), 0);
        assert_eq!(weight(&mut c, &line(Some(2), Attempt::End)), 1);
        assert_eq!(weight(&mut c, &line(Some(2), Attempt::Summary)), 0);
    }

    #[test]
    fn repeats_count_n_and_sessions_are_separate() {
        let mut c = AttemptCounter::new();
        let mut repeat = line(Some(3), Attempt::Repeat);
        repeat.count = Some(4);
        assert_eq!(weight(&mut c, &repeat), 4);
        assert_eq!(weight(&mut c, &line(Some(4), Attempt::Start)), 1);
        assert_eq!(weight(&mut c, &line(Some(5), Attempt::End)), 1);
        assert_eq!(weight(&mut c, &line(Some(4), Attempt::End)), 0);
    }

    #[test]
    fn without_pid_each_line_counts_by_role() {
        let mut c = AttemptCounter::new();
        assert_eq!(weight(&mut c, &line(None, Attempt::Start)), 1);
        assert_eq!(weight(&mut c, &line(None, Attempt::End)), 1);
        assert_eq!(weight(&mut c, &line(None, Attempt::Summary)), 0);
        let mut repeat = line(None, Attempt::Repeat);
        repeat.count = Some(3);
        assert_eq!(weight(&mut c, &repeat), 3);
    }

    #[test]
    fn sessions_expire() {
        let mut c = AttemptCounter::new();
        assert_eq!(weight(&mut c, &line(Some(9), Attempt::Start)), 1);
        let mut later = line(Some(9), Attempt::End);
        later.ts = SESSION_IDLE + 1;
        // The old session is gone, so this End stands alone.
        assert_eq!(weight(&mut c, &later), 1);
    }

    /// Issue 9 §3: a PAM failure with `rhost=<host name>` opened an attempt without an address
    /// that swallowed the `Failed password … from <ip>` after it: 8 attempts, nothing counted
    /// toward the address. Now the held PAM attempt is bound to the address the `End` names,
    /// and each pair counts once toward it.
    #[test]
    fn a_start_without_address_does_not_swallow_an_end_with_one() {
        let mut c = AttemptCounter::new();
        let mut toward_ip = 0;
        for pid in 100..108 {
            assert_eq!(
                c.observe(&line(Some(pid), Attempt::Start), true),
                Counted::Held(1)
            );
            let end = from(pid, Attempt::End, "198.51.100.3");
            assert_eq!(c.observe(&end, true), Counted::Own(0));
            for (held, weight) in c.take_released() {
                assert_eq!(held.src_ip, end.src_ip);
                toward_ip += weight;
            }
        }
        assert_eq!(toward_ip, 8);
        assert_eq!(c.stats().attempts_bound, 8);
        assert_eq!(c.stats().attempts_unattributed, 0);
    }

    #[test]
    fn an_end_naming_another_address_than_its_start_counts_on_its_own() {
        let mut c = AttemptCounter::new();
        assert_eq!(
            c.observe(&from(7, Attempt::Start, "192.0.2.1"), true),
            Counted::Own(1)
        );
        assert_eq!(
            c.observe(&from(7, Attempt::End, "192.0.2.2"), true),
            Counted::Own(1)
        );
    }

    /// `User root not allowed because account is locked` (no address) … `Received disconnect
    /// from <ip> … [preauth]` (no attempt, but the address).
    #[test]
    fn a_later_line_without_an_attempt_lends_the_address() {
        let mut c = AttemptCounter::new();
        let mut locked = line(Some(40), Attempt::End);
        locked.ts = 1;
        assert_eq!(c.observe(&locked, true), Counted::Held(1));
        assert_eq!(c.take_released().count(), 0, "nothing before the address");
        let disconnect = from(40, Attempt::None, "198.51.100.3");
        assert_eq!(c.observe(&disconnect, false), Counted::Own(1));
        let released: Vec<_> = c.take_released().collect();
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].0.ts, 1, "counts at its own time");
        assert_eq!(released[0].0.src_ip, disconnect.src_ip);
        assert_eq!(released[0].1, 1);
    }

    #[test]
    fn an_earlier_address_binds_later_attempts_at_once() {
        let mut c = AttemptCounter::new();
        let _ = c.observe(&from(41, Attempt::None, "203.0.113.9"), false);
        match c.observe(&line(Some(41), Attempt::End), true) {
            Counted::Bound(ev, 1) => assert_eq!(ev.src_ip, "203.0.113.9".parse().ok()),
            other => panic!("not bound: {other:?}"),
        }
        assert_eq!(c.stats().attempts_bound, 1);
    }

    #[test]
    fn a_session_ending_without_an_address_counts_its_attempts_unattributed() {
        let mut c = AttemptCounter::new();
        assert_eq!(
            c.observe(&line(Some(42), Attempt::End), true),
            Counted::Held(1)
        );
        assert_eq!(c.stats().attempts_unattributed, 1, "still held at the end");
        let mut later = from(43, Attempt::None, "192.0.2.9");
        later.ts = SESSION_IDLE + 1;
        assert_eq!(c.observe(&later, true), Counted::Own(1));
        assert_eq!(c.stats().attempts_unattributed, 1, "expired");
        // The expired session cannot lend a later address to its old attempt.
        let _ = c.observe(&from(42, Attempt::None, "192.0.2.5"), false);
        assert_eq!(c.take_released().count(), 0);
    }

    /// smtpd and friends serve client after client in one process: the address one client's
    /// line names must not take the blame for another's failure without an address; and the
    /// failure with an address is not swallowed by the one without.
    #[test]
    fn apps_without_a_process_per_connection_lend_no_address() {
        let mut c = AttemptCounter::new();
        let app = |mut ev: Event| {
            ev.app = Some("postfix/smtpd".into());
            ev
        };
        let innocent = app(from(50, Attempt::None, "192.0.2.20"));
        assert_eq!(c.observe(&innocent, false), Counted::Own(1));
        assert_eq!(
            c.observe(&app(line(Some(50), Attempt::Start)), true),
            Counted::Own(1)
        );
        assert_eq!(c.take_released().count(), 0);
        let failed = app(from(50, Attempt::End, "198.51.100.30"));
        assert_eq!(c.observe(&failed, true), Counted::Own(1), "not swallowed");
        assert_eq!(c.stats().attempts_bound, 0);
    }

    /// sshd pids are reused: a new client's address under an old pid starts a new session,
    /// whose attempts do not count toward the old client.
    #[test]
    fn a_new_address_under_the_same_pid_is_a_new_session() {
        let mut c = AttemptCounter::new();
        let _ = c.observe(&from(60, Attempt::None, "192.0.2.30"), false);
        let _ = c.observe(&from(60, Attempt::None, "198.51.100.40"), false);
        match c.observe(&line(Some(60), Attempt::End), true) {
            Counted::Bound(ev, 1) => assert_eq!(ev.src_ip, "198.51.100.40".parse().ok()),
            other => panic!("not bound to the new client: {other:?}"),
        }
    }

    fn by(user: Option<&str>, ev: Event) -> Event {
        Event {
            user: user.map(Into::into),
            ..ev
        }
    }

    fn accepted(pid: u32, user: &str, ip: &str) -> Event {
        Event {
            kind: crate::event::Kind::AuthSuccess,
            ..by(Some(user), from(pid, Attempt::None, ip))
        }
    }

    /// Attempts counted toward an address: by the events themselves and by what they release.
    fn toward_addresses(c: &mut AttemptCounter, ev: &Event, attempt: bool) -> u64 {
        let own = match c.observe(ev, attempt) {
            Counted::Own(n) if attempt && ev.src_ip.is_some() => n,
            Counted::Bound(_, n) => n,
            _ => 0,
        };
        own + c.take_released().map(|(_, w)| w).sum::<u64>()
    }

    /// fail2ban's sshd test log (gh-2070): pam_unix fails, pam_ldap then accepts the same
    /// password. sshd writes the PAM failure twice (the second from the privilege-separated
    /// child, `ruser=rda … [preauth]`, no `user=`) and then `Accepted password for rda`: no
    /// attempt failed, nothing counts.
    #[test]
    fn a_login_of_the_same_user_forgives_the_open_pam_attempt() {
        let mut c = AttemptCounter::new();
        let ip = "192.0.2.113";
        let lines = [
            (by(Some("rda"), from(1556, Attempt::Start, ip)), true),
            (by(None, from(1556, Attempt::Start, ip)), true),
            (accepted(1556, "rda", ip), false),
            (from(1556, Attempt::None, ip), false), // Connection closed by …
        ];
        let total: u64 = lines
            .iter()
            .map(|(ev, attempt)| toward_addresses(&mut c, ev, *attempt))
            .sum();
        assert_eq!(total, 0);
        assert_eq!(c.stats().attempts_forgiven, 1);
        c.finish();
        assert_eq!(
            c.take_released().count(),
            0,
            "nothing left to count at the end"
        );
    }

    /// fail2ban's "intruder tries to forget failed attempts by a success login": failures for
    /// root and sudoer, then a login as another account. Both failures count.
    #[test]
    fn a_login_of_another_user_forgives_nothing() {
        let mut c = AttemptCounter::new();
        let ip = "192.0.2.114";
        let lines = [
            (by(Some("root"), from(1558, Attempt::Start, ip)), true),
            (by(Some("sudoer"), from(1558, Attempt::Start, ip)), true),
            (accepted(1558, "known", ip), false),
        ];
        let total: u64 = lines
            .iter()
            .map(|(ev, attempt)| toward_addresses(&mut c, ev, *attempt))
            .sum();
        assert_eq!(total, 2);
        assert_eq!(c.stats().attempts_forgiven, 0);
    }

    /// The usual failed login: the PAM failure, then `Failed password` of the same attempt.
    /// It counts once, on the `Failed` line, and a login after it forgives nothing.
    #[test]
    fn the_failed_line_completes_a_pending_attempt_once() {
        let mut c = AttemptCounter::new();
        let ip = "203.0.113.7";
        let start = by(Some("root"), from(7, Attempt::Start, ip));
        assert_eq!(c.observe(&start, true), Counted::Own(0), "pending");
        let end = by(Some("root"), from(7, Attempt::End, ip));
        match c.observe(&end, true) {
            Counted::Bound(counted, 1) => {
                assert_eq!(counted.attempt, Attempt::Start, "as its Start")
            }
            other => panic!("not counted once: {other:?}"),
        }
        assert_eq!(toward_addresses(&mut c, &accepted(7, "root", ip), false), 0);
        assert_eq!(c.stats().attempts_forgiven, 0);
    }

    /// A client that drops the connection after the PAM failure, before sshd writes `Failed
    /// password` (fail2ban's gh-1024 log): the attempt happened and counts when its session
    /// moves on, at its own time; at the end of input; or when the session is forgotten.
    #[test]
    fn a_pam_failure_without_a_failed_line_still_counts() {
        let mut c = AttemptCounter::new();
        let ip = "192.0.2.112";
        let mut start = by(Some("root"), from(2716, Attempt::Start, ip));
        start.ts = 5;
        assert_eq!(toward_addresses(&mut c, &start, true), 0);
        let closed = from(2716, Attempt::None, ip);
        assert_eq!(c.observe(&closed, false), Counted::Own(1));
        let released: Vec<_> = c.take_released().collect();
        assert_eq!(released.len(), 1);
        assert_eq!((released[0].0.ts, released[0].1), (5, 1));
        assert_eq!(released[0].0.src_ip, start.src_ip);
        // Its `Failed` line, should it come later, completes what already counted.
        let end = by(Some("root"), from(2716, Attempt::End, ip));
        assert_eq!(c.observe(&end, true), Counted::Own(0));

        let mut c = AttemptCounter::new();
        assert_eq!(toward_addresses(&mut c, &start, true), 0);
        c.finish();
        assert_eq!(
            c.take_released().map(|(_, w)| w).sum::<u64>(),
            1,
            "end of input"
        );

        let mut c = AttemptCounter::new();
        assert_eq!(toward_addresses(&mut c, &start, true), 0);
        let mut later = from(9, Attempt::None, "198.51.100.1");
        later.ts = start.ts + SESSION_IDLE + 1;
        assert_eq!(toward_addresses(&mut c, &later, false), 1, "idle session");
    }

    /// A PAM failure of an unknown account names no `user=` and can never be a login: it counts
    /// at once, as every attempt of an invalid user does.
    #[test]
    fn an_attempt_without_a_user_counts_at_once() {
        let mut c = AttemptCounter::new();
        let start = by(None, from(8, Attempt::Start, "192.0.2.8"));
        assert_eq!(c.observe(&start, true), Counted::Own(1));
    }

    /// Dovecot: one failed login writes the PAM line (start), with `auth_verbose` the auth
    /// worker's line (end), and at the connection's close the login process's tally of N.
    /// Whatever the configuration writes, each attempt counts once, and as soon as it fails.
    #[test]
    fn a_tally_counts_only_what_its_address_did_not_report() {
        let ip = "203.0.113.70";
        let dovecot = |app: &str, attempt: Attempt, count: Option<u64>| Event {
            app: Some(app.into()),
            pid: None,
            count,
            ..from(0, attempt, ip)
        };
        let weights = |lines: &[Event]| -> Vec<u64> {
            let mut c = AttemptCounter::new();
            lines.iter().map(|ev| weight(&mut c, ev)).collect()
        };
        let pam = dovecot("auth", Attempt::Start, None);
        let worker = dovecot("dovecot", Attempt::End, None);
        let tally = |n| dovecot("dovecot", Attempt::Tally, Some(n));
        // auth_verbose with PAM: three lines, one attempt.
        assert_eq!(weights(&[pam.clone(), worker.clone(), tally(1)]), [1, 0, 0]);
        // Default logging with PAM: two lines, one attempt.
        assert_eq!(weights(&[pam.clone(), tally(1)]), [1, 0]);
        // No reporting lines: the tally counts all.
        assert_eq!(weights(&[tally(3)]), [3]);
        // A worker line per attempt, two attempts it did not report (a passdb that logs
        // nothing for them): counted by the tally.
        assert_eq!(
            weights(&[worker.clone(), worker.clone(), worker.clone(), tally(5)]),
            [1, 1, 1, 2]
        );
        // Two connections in parallel: two PAM lines, two tallies of one.
        assert_eq!(
            weights(&[pam.clone(), pam.clone(), tally(1), tally(1)]),
            [1, 0, 0, 1]
        );
        // An sshd failure of the same address reports no dovecot attempt.
        let sshd = from(9, Attempt::End, ip);
        assert_eq!(weights(&[sshd, tally(1)]), [1, 1]);
        // Another host's reports neither.
        let elsewhere = Event {
            host: Some("other".into()),
            ..pam.clone()
        };
        assert_eq!(weights(&[elsewhere, tally(1)]), [1, 1]);
        // A report older than SESSION_IDLE is forgotten: its tally counts again (at worst
        // twice, never zero times).
        let late = Event {
            ts: SESSION_IDLE + 1,
            ..tally(1)
        };
        assert_eq!(weights(&[pam, late]), [1, 1]);
    }

    /// A flood of sessions that never name an address: held state stays bounded and what the
    /// caps cost is counted, never silent.
    #[test]
    fn held_attempts_and_sessions_are_capped_and_evictions_counted() {
        let mut c = AttemptCounter::new();
        let sessions = (MAX_SESSIONS + 1000) as u32;
        for pid in 0..sessions {
            assert_eq!(
                c.observe(&line(Some(pid), Attempt::End), true),
                Counted::Held(1)
            );
        }
        assert!(c.held_total <= MAX_HELD_TOTAL);
        assert!(c.sessions.len() <= MAX_SESSIONS);
        let stats = c.stats();
        assert_eq!(
            stats.sessions_evicted,
            u64::from(sessions) - MAX_HELD_TOTAL as u64
        );
        assert_eq!(stats.attempts_unattributed, u64::from(sessions));
        // Per session: the evidence of the first few, the weight of all.
        let mut c = AttemptCounter::new();
        for _ in 0..20 {
            let _ = c.observe(&line(Some(1), Attempt::End), true);
        }
        let _ = c.observe(&from(1, Attempt::None, "192.0.2.7"), false);
        let released: Vec<_> = c.take_released().collect();
        assert_eq!(released.len(), MAX_HELD_PER_SESSION);
        assert_eq!(released.iter().map(|(_, w)| w).sum::<u64>(), 20);
    }
}
