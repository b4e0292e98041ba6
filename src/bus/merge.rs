//! Merging the edges' events of one partition in event time.
//!
//! `secpipe run` over one file sees its lines in the file's order; a partition sees the lines
//! of several edges interleaved by when each edge got to publish, which says nothing about
//! time: an edge reading a day of old logs publishes it in seconds, while another is still at
//! its first minute. Fed in that order, the detector would find the slow edge's events late.
//! So the events of each edge wait in their own queue, and the oldest head is released only
//! once every other edge either has something queued (its head is not older), has said in a
//! beat that it has published up to at least that time, has finished, or has gone quiet for
//! longer than [`EDGE_TIMEOUT`] by the others' clocks. Everything here is decided by the
//! messages of the stream alone, in stream order: a worker that replays the stream merges
//! exactly as the one before it did.
//!
//! The queues are bounded ([`MAX_QUEUED`] events, [`MAX_QUEUED_BYTES`]): an edge that holds the others back past it has its
//! oldest events released anyway, counted in [`MergeStats::forced`].

use std::collections::{BTreeMap, VecDeque};

use super::wire::Beat;
use crate::detect::{EventSnap, Names, SnapshotError, SnapshotKind};
use crate::event::Event;

/// An edge whose beats stopped this long before the newest beat of another edge (by the
/// edges' own clocks, as written in their beats) no longer holds the partition back, until it
/// speaks again.
pub const EDGE_TIMEOUT: i64 = 60 * 1_000_000;

/// Events queued in one partition's merge before the oldest is released regardless.
pub const MAX_QUEUED: usize = 200_000;

/// Bytes of events queued in one partition's merge (estimated as the detector's reorder buffer
/// does, and as much as its default) before the oldest is released regardless: lines can be
/// 64 KiB long, so [`MAX_QUEUED`] alone does not bound memory.
pub const MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;

/// Edges one partition keeps track of: each is a name an edge chose, so an edge that changes
/// its name on every restart cannot grow a worker's memory without end. Finished edges are
/// forgotten first.
pub const MAX_EDGES: usize = 4_096;

/// An edge's newest event time, judged as detect judges a jump ahead (`detect::ahead`): one
/// line more than [`crate::detect::MAX_AHEAD_OF_STREAM`] ahead of it does not move it (a
/// planted line would take the partition's time with it), but
/// [`crate::detect::CONFIRM_AHEAD`] such lines in a row do, to the oldest of them (a host
/// quiet for hours, rotated logs read one after the other).
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct NewestTime {
    newest: i64,
    /// Lines in a row ahead of `newest`, and the oldest of them.
    ahead: usize,
    ahead_oldest: i64,
}

impl Default for NewestTime {
    fn default() -> NewestTime {
        NewestTime {
            newest: i64::MIN,
            ahead: 0,
            ahead_oldest: i64::MAX,
        }
    }
}

impl NewestTime {
    /// Judged from `newest` on (a merge restored from a snapshot without it).
    fn starting_at(newest: i64) -> NewestTime {
        NewestTime {
            newest,
            ..NewestTime::default()
        }
    }

    /// The newest believed time; `i64::MIN` before the first line.
    pub fn get(&self) -> i64 {
        self.newest
    }

    pub fn see(&mut self, ts: i64) {
        if self.newest == i64::MIN
            || ts
                <= self
                    .newest
                    .saturating_add(crate::detect::MAX_AHEAD_OF_STREAM)
        {
            self.newest = self.newest.max(ts);
            self.ahead = 0;
            self.ahead_oldest = i64::MAX;
            return;
        }
        self.ahead += 1;
        self.ahead_oldest = self.ahead_oldest.min(ts);
        if self.ahead >= crate::detect::CONFIRM_AHEAD {
            self.newest = self.ahead_oldest;
            self.ahead = 0;
            self.ahead_oldest = i64::MAX;
        }
    }
}

#[derive(Debug, Default)]
struct EdgeState {
    queue: VecDeque<Event>,
    /// The newest event time the edge says it has published (its beats), or its events show.
    newest: i64,
    /// The newest time its events show, judged.
    seen: NewestTime,
    /// The edge's clock in its last beat, and its wall clock when its input is live.
    sent: i64,
    wall: Option<i64>,
    done: bool,
    /// Named by `--edges`: waited for before it has said anything.
    expected: bool,
}

/// Counters of one partition's merge.
#[derive(Clone, Copy, Debug, Default)]
pub struct MergeStats {
    /// Events released before the edges holding them back caught up (queues full in events
    /// or bytes, or more than [`MAX_EDGES`] edges each holding one).
    pub forced: u64,
    /// Edges forgotten at [`MAX_EDGES`].
    pub edges_forgotten: u64,
}

/// One partition's merge of its edges' events (see the module docs).
///
/// ```
/// use secpipe::bus::merge::EdgeMerge;
/// use secpipe::bus::wire::Beat;
/// use secpipe::event::Event;
/// let at = |ts| Event { ts, ..Event::default() };
/// let mut merge = EdgeMerge::new(&["a".to_string(), "b".to_string()]);
/// merge.events("a", vec![at(10), at(30)]);
/// let mut out = Vec::new();
/// merge.release(|ev| out.push(ev.ts));
/// assert!(out.is_empty(), "b has said nothing yet");
/// merge.events("b", vec![at(20)]);
/// merge.beat("b", Beat { newest: 20, sent: 0, wall: None });
/// merge.release(|ev| out.push(ev.ts));
/// assert_eq!(out, [10, 20]);
/// merge.done("b");
/// merge.release(|ev| out.push(ev.ts));
/// assert_eq!(out, [10, 20, 30]);
/// ```
#[derive(Debug, Default)]
pub struct EdgeMerge {
    edges: BTreeMap<String, EdgeState>,
    queued: usize,
    queued_bytes: usize,
    newest_sent: i64,
    stats: MergeStats,
}

impl EdgeMerge {
    /// A merge that waits for `expected` edges from the start.
    pub fn new(expected: &[String]) -> EdgeMerge {
        let mut merge = EdgeMerge {
            newest_sent: i64::MIN,
            ..EdgeMerge::default()
        };
        for name in expected {
            let edge = merge.edge(name);
            edge.expected = true;
        }
        merge
    }

    fn edge(&mut self, name: &str) -> &mut EdgeState {
        if !self.edges.contains_key(name) {
            if self.edges.len() >= MAX_EDGES {
                self.forget_one();
            }
            self.edges.insert(
                name.to_string(),
                EdgeState {
                    newest: i64::MIN,
                    sent: i64::MIN,
                    ..EdgeState::default()
                },
            );
        }
        // Inserted above when missing.
        self.edges.entry(name.to_string()).or_default()
    }

    /// Forget a finished edge with nothing queued (else the one heard from longest ago).
    fn forget_one(&mut self) {
        let victim = self
            .edges
            .iter()
            .filter(|(_, e)| e.queue.is_empty() && !e.expected)
            .min_by_key(|(_, e)| (!e.done, e.sent))
            .map(|(name, _)| name.clone());
        if let Some(name) = victim {
            self.edges.remove(&name);
            self.stats.edges_forgotten += 1;
        }
    }

    /// Events an edge published, in its order.
    pub fn events(&mut self, edge: &str, events: Vec<Event>) {
        let n = events.len();
        self.queued_bytes += events.iter().map(Event::heap_bytes).sum::<usize>();
        let state = self.edge(edge);
        state.done = false;
        for ev in events {
            // As the edge judges its beats' `newest`: one planted line far ahead of the rest
            // must not say the edge has got there, or the partition's time would run to it
            // (each message another MAX_AHEAD_OF_STREAM) and every real event come late.
            state.seen.see(ev.ts);
            state.newest = state.newest.max(state.seen.get());
            state.queue.push_back(ev);
        }
        self.queued += n;
    }

    pub fn beat(&mut self, edge: &str, beat: Beat) {
        let state = self.edge(edge);
        state.newest = state.newest.max(beat.newest);
        state.sent = state.sent.max(beat.sent);
        state.wall = beat.wall;
        self.newest_sent = self.newest_sent.max(beat.sent);
    }

    /// The edge's input ended: it holds nothing back any more.
    pub fn done(&mut self, edge: &str) {
        self.edge(edge).done = true;
    }

    /// Every edge heard of (and every expected one) has finished, and nothing is queued.
    pub fn all_done(&self) -> bool {
        self.queued == 0 && !self.edges.is_empty() && self.edges.values().all(|e| e.done)
    }

    /// Whether `edge` holds back an event at `ts` from another edge.
    fn holds_back(&self, edge: &EdgeState, ts: i64) -> bool {
        if edge.done || !edge.queue.is_empty() || edge.newest >= ts {
            return false;
        }
        if edge.sent == i64::MIN {
            // Never beat: known from its events only, or expected and silent so far.
            return edge.expected || self.newest_sent == i64::MIN;
        }
        !self.gone(edge)
    }

    /// Gone quiet: its last beat is more than [`EDGE_TIMEOUT`] older than another edge's, by
    /// the edges' own clocks.
    fn gone(&self, edge: &EdgeState) -> bool {
        edge.sent != i64::MIN && self.newest_sent.saturating_sub(edge.sent) > EDGE_TIMEOUT
    }

    /// Release, oldest first, every event no edge holds back; `emit` takes them.
    pub fn release(&mut self, mut emit: impl FnMut(Event)) {
        loop {
            let head = self
                .edges
                .iter()
                .filter_map(|(name, e)| e.queue.front().map(|ev| (ev.ts, name)))
                .min();
            let Some((ts, name)) = head else {
                return;
            };
            // Too many edges, each holding an event (only an empty one can be forgotten):
            // release the oldest until one empties, then forget one.
            let too_many_edges = self.edges.len() > MAX_EDGES;
            let forced =
                self.queued > MAX_QUEUED || self.queued_bytes > MAX_QUEUED_BYTES || too_many_edges;
            let blocked = !forced
                && self
                    .edges
                    .iter()
                    .any(|(other, e)| other != name && self.holds_back(e, ts));
            if blocked {
                return;
            }
            let name = name.clone();
            let Some(ev) = self.edges.get_mut(&name).and_then(|e| e.queue.pop_front()) else {
                return;
            };
            self.queued -= 1;
            self.queued_bytes = self.queued_bytes.saturating_sub(Event::heap_bytes(&ev));
            if forced {
                self.stats.forced += 1;
            }
            emit(ev);
            if too_many_edges {
                self.forget_one();
            }
        }
    }

    /// The wall clock all running edges agree has passed, when every one of them is live: the
    /// worker moves the watermark with it, as a live `secpipe run` does when idle.
    pub fn live_wall(&self) -> Option<i64> {
        let mut running = self.edges.values().filter(|e| !e.done).peekable();
        running.peek()?;
        running.map(|e| e.wall).min().flatten()
    }

    /// How far event time has got across the edges: the oldest newest time of the edges
    /// still running (each has published everything up to it), or, once all have finished,
    /// the newest of all. `None` while an edge that is waited for has said nothing.
    pub fn progress(&self) -> Option<i64> {
        let running: Vec<i64> = self
            .edges
            .values()
            .filter(|e| !e.done && !self.gone(e))
            .map(|e| e.newest)
            .collect();
        let progress = if running.is_empty() {
            self.edges.values().map(|e| e.newest).max()?
        } else {
            running.into_iter().min()?
        };
        (progress != i64::MIN).then_some(progress)
    }

    pub fn queued(&self) -> usize {
        self.queued
    }

    pub fn stats(&self) -> MergeStats {
        self.stats
    }
}

/// A merge as a snapshot holds it (see [`crate::detect::SnapshotError`] for what is refused).
#[derive(serde::Serialize, serde::Deserialize)]
struct MergeSnap {
    edges: Vec<(String, EdgeSnap)>,
    newest_sent: i64,
    forced: u64,
    edges_forgotten: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct EdgeSnap {
    queue: Vec<EventSnap>,
    newest: i64,
    sent: i64,
    wall: Option<i64>,
    done: bool,
    expected: bool,
    /// Absent from snapshots written before it: judged afresh from `newest`.
    #[serde(default)]
    seen: Option<NewestTime>,
}

impl EdgeMerge {
    /// The merge's whole state (queued events included), to resume from with
    /// [`EdgeMerge::restore`]: a worker stores it with its partition's detector snapshot, at
    /// the same stream position.
    ///
    /// ```
    /// use secpipe::bus::merge::EdgeMerge;
    /// use secpipe::event::Event;
    /// let at = |ts| Event { ts, ..Event::default() };
    /// let mut merge = EdgeMerge::new(&["a".to_string(), "b".to_string()]);
    /// merge.events("a", vec![at(10)]);
    /// let mut merge = EdgeMerge::restore(&merge.snapshot()).unwrap();
    /// merge.done("b");
    /// let mut out = Vec::new();
    /// merge.release(|ev| out.push(ev.ts));
    /// assert_eq!(out, [10]);
    /// assert!(EdgeMerge::restore(b"not a snapshot").is_err());
    /// ```
    pub fn snapshot(&self) -> Vec<u8> {
        let state = MergeSnap {
            edges: self
                .edges
                .iter()
                .map(|(name, e)| {
                    let edge = EdgeSnap {
                        queue: e.queue.iter().map(EventSnap::of).collect(),
                        newest: e.newest,
                        sent: e.sent,
                        wall: e.wall,
                        done: e.done,
                        expected: e.expected,
                        seen: Some(e.seen),
                    };
                    (name.clone(), edge)
                })
                .collect(),
            newest_sent: self.newest_sent,
            forced: self.stats.forced,
            edges_forgotten: self.stats.edges_forgotten,
        };
        crate::detect::encode_snapshot(SnapshotKind::Merge, [0; 32], &state)
    }

    /// The merge a snapshot of [`EdgeMerge::snapshot`] holds; bad bytes give an error, never a
    /// panic.
    pub fn restore(snapshot: &[u8]) -> Result<EdgeMerge, SnapshotError> {
        let state: MergeSnap =
            crate::detect::decode_snapshot(SnapshotKind::Merge, [0; 32], snapshot)?;
        if state.edges.len() > MAX_EDGES {
            return Err(SnapshotError::Invalid(format!(
                "{} edges, more than {MAX_EDGES}",
                state.edges.len()
            )));
        }
        let mut names = Names::default();
        let mut merge = EdgeMerge {
            newest_sent: state.newest_sent,
            stats: MergeStats {
                forced: crate::detect::snapshot_counter("forced", state.forced)?,
                edges_forgotten: crate::detect::snapshot_counter(
                    "edges forgotten",
                    state.edges_forgotten,
                )?,
            },
            ..EdgeMerge::default()
        };
        for (name, e) in state.edges {
            let queue = e
                .queue
                .into_iter()
                .map(|ev| ev.into_event(&mut names))
                .collect::<Result<VecDeque<Event>, _>>()?;
            if !super::is_bus_name(&name) {
                return Err(SnapshotError::Invalid(format!("edge name {name:?}")));
            }
            merge.queued += queue.len();
            merge.queued_bytes += queue.iter().map(Event::heap_bytes).sum::<usize>();
            let edge = EdgeState {
                seen: e.seen.unwrap_or_else(|| NewestTime::starting_at(e.newest)),
                queue,
                newest: e.newest,
                sent: e.sent,
                wall: e.wall,
                done: e.done,
                expected: e.expected,
            };
            if merge.edges.insert(name, edge).is_some() {
                return Err(SnapshotError::Invalid("an edge is stored twice".into()));
            }
        }
        Ok(merge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ts: i64) -> Event {
        Event {
            ts,
            ..Event::default()
        }
    }

    fn drain(merge: &mut EdgeMerge) -> Vec<i64> {
        let mut out = Vec::new();
        merge.release(|ev| out.push(ev.ts));
        out
    }

    #[test]
    fn a_fast_edge_waits_for_a_slow_one_and_the_order_is_event_time() {
        let mut merge = EdgeMerge::new(&[]);
        merge.events("fast", (0..10).map(|i| at(i * 100)).collect());
        merge.beat(
            "slow",
            Beat {
                newest: 250,
                sent: 1,
                wall: None,
            },
        );
        assert_eq!(drain(&mut merge), [0, 100, 200]);
        merge.events("slow", vec![at(260), at(420)]);
        // slow has published up to 420: what fast has after that waits for it.
        assert_eq!(drain(&mut merge), [260, 300, 400, 420]);
        merge.done("slow");
        assert_eq!(drain(&mut merge), [500, 600, 700, 800, 900]);
        assert_eq!(merge.queued(), 0);
    }

    #[test]
    fn an_edge_that_went_quiet_stops_holding_back_after_the_timeout() {
        let mut merge = EdgeMerge::new(&[]);
        let beat = |newest, sent| Beat {
            newest,
            sent,
            wall: None,
        };
        merge.beat("dead", beat(0, 1_000_000));
        merge.events("alive", vec![at(5)]);
        merge.beat("alive", beat(5, 1_000_000 + EDGE_TIMEOUT));
        assert!(drain(&mut merge).is_empty(), "not yet past the timeout");
        merge.beat("alive", beat(5, 1_000_001 + EDGE_TIMEOUT));
        assert_eq!(drain(&mut merge), [5]);
    }

    #[test]
    fn an_expected_edge_holds_back_before_it_speaks() {
        let mut merge = EdgeMerge::new(&["late".to_string()]);
        merge.events("early", vec![at(1)]);
        merge.done("early");
        assert!(drain(&mut merge).is_empty());
        assert!(!merge.all_done());
        merge.done("late");
        assert_eq!(drain(&mut merge), [1]);
        assert!(merge.all_done());
    }

    #[test]
    fn a_stalled_edge_cannot_make_the_queues_grow_without_bound() {
        let mut merge = EdgeMerge::new(&["stalled".to_string()]);
        let n = MAX_QUEUED + 10;
        merge.events("busy", (0..n as i64).map(at).collect());
        let out = drain(&mut merge);
        assert_eq!(out.len(), 10);
        assert_eq!(merge.stats().forced, 10);
        assert!(merge.queued() <= MAX_QUEUED);
    }

    #[test]
    fn edge_names_are_capped_even_when_each_holds_an_event() {
        // Only an edge with nothing queued can be forgotten: names that each hold one event
        // back behind a silent expected edge would otherwise grow the map without end.
        let mut merge = EdgeMerge::new(&["stalled".to_string()]);
        let n = MAX_EDGES + 100;
        let mut released = 0;
        for i in 0..n {
            merge.events(&format!("edge-{i}"), vec![at(i as i64)]);
            released += drain(&mut merge).len();
            assert!(
                merge.edges.len() <= MAX_EDGES,
                "{} edges",
                merge.edges.len()
            );
        }
        // Nothing lost: each event is either released (and counted as forced) or queued.
        assert_eq!(released + merge.queued(), n);
        assert_eq!(merge.stats().forced, released as u64);
        assert!(merge.stats().edges_forgotten >= 100);
    }

    #[test]
    fn long_lines_cannot_make_the_queues_outgrow_their_bytes() {
        // An attacker on one edge host writes lines of the longest length while the merge
        // waits for another edge: counted in events alone, 200,000 of them would be 12 GiB.
        let mut merge = EdgeMerge::new(&["stalled".to_string()]);
        let long = |ts| Event {
            ts,
            raw: vec![b'x'; 64 * 1024].into_boxed_slice(),
            ..Event::default()
        };
        let n = MAX_QUEUED_BYTES / (64 * 1024) + 100;
        let mut released = 0;
        for i in 0..n {
            merge.events("busy", vec![long(i as i64)]);
            released += drain(&mut merge).len();
            assert!(
                merge.queued_bytes <= MAX_QUEUED_BYTES,
                "{} bytes",
                merge.queued_bytes
            );
        }
        assert!(released >= 100);
        assert_eq!(released + merge.queued(), n);
        assert_eq!(merge.stats().forced, released as u64);
    }

    #[test]
    fn a_real_jump_ahead_moves_progress_once_later_lines_confirm_it_and_a_planted_one_does_not() {
        const HOUR: i64 = 3_600_000_000;
        let mut merge = EdgeMerge::new(&[]);
        // A quiet night: the next lines are three hours later, and stay there.
        merge.events("a", vec![at(0), at(60_000_000)]);
        merge.events("a", (0..10).map(|i| at(3 * HOUR + i)).collect());
        drain(&mut merge);
        assert!(
            merge.progress().is_some_and(|p| p >= 3 * HOUR),
            "{:?}",
            merge.progress()
        );
        // One line ten years ahead among lines of the present does not.
        let ten_years = 10 * 365 * 24 * HOUR;
        merge.events(
            "a",
            vec![at(ten_years), at(3 * HOUR + 20), at(3 * HOUR + 21)],
        );
        drain(&mut merge);
        assert!(
            merge.progress().is_some_and(|p| p < 4 * HOUR),
            "{:?}",
            merge.progress()
        );
    }

    #[test]
    fn newest_time_believes_lines_in_a_row_ahead_and_not_one_between_old_ones() {
        const HOUR: i64 = 3_600_000_000;
        let mut newest = NewestTime::default();
        newest.see(0);
        for i in 0..crate::detect::CONFIRM_AHEAD - 1 {
            newest.see(2 * HOUR + i as i64);
        }
        assert_eq!(newest.get(), 0, "not yet confirmed");
        newest.see(2 * HOUR + 100);
        assert_eq!(newest.get(), 2 * HOUR, "the oldest of the confirming lines");
        for _ in 0..100 {
            newest.see(1_000 * HOUR);
            newest.see(2 * HOUR + 200);
        }
        assert_eq!(newest.get(), 2 * HOUR + 200);
    }

    #[test]
    fn edge_names_chosen_by_senders_are_capped() {
        let mut merge = EdgeMerge::new(&[]);
        for i in 0..(MAX_EDGES + 100) {
            let name = format!("edge-{i}");
            merge.beat(
                &name,
                Beat {
                    newest: 0,
                    sent: i as i64,
                    wall: None,
                },
            );
            merge.done(&name);
        }
        assert!(merge.edges.len() <= MAX_EDGES);
        assert_eq!(merge.stats().edges_forgotten, 100);
    }

    /// What a caller does to a merge.
    enum MergeOp {
        Events(&'static str, Vec<Event>),
        Beat(&'static str, Beat),
        Done(&'static str),
        Release,
    }

    /// A seeded mix of edges publishing out of step, beating, going quiet and finishing.
    fn merge_ops(seed: u64) -> Vec<MergeOp> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let edges = ["a", "b", "c"];
        let mut clock = [0i64; 3];
        let mut line = 0u64;
        let mut ops = Vec::new();
        for _ in 0..(20 + next(80)) {
            let e = next(3) as usize;
            match next(10) {
                0..=4 => {
                    let events = (0..1 + next(4))
                        .map(|_| {
                            clock[e] += next(50) as i64;
                            line += 1;
                            Event {
                                ts: clock[e],
                                line,
                                source: std::sync::Arc::from(edges[e]),
                                raw: vec![b'x'; next(5) as usize].into(),
                                ..Event::default()
                            }
                        })
                        .collect();
                    ops.push(MergeOp::Events(edges[e], events));
                }
                5 | 6 => ops.push(MergeOp::Beat(
                    edges[e],
                    Beat {
                        newest: clock[e],
                        sent: clock[e] + next(3) as i64 * EDGE_TIMEOUT,
                        wall: (next(2) == 0).then_some(clock[e]),
                    },
                )),
                7 => ops.push(MergeOp::Done(edges[e])),
                _ => ops.push(MergeOp::Release),
            }
        }
        ops.push(MergeOp::Release);
        ops
    }

    /// Everything a caller sees of a merge: released events (edge, line, time) and, after
    /// each op, progress, live wall, queued and stats.
    fn run_merge(ops: &[MergeOp], cuts: &[usize]) -> Vec<String> {
        let mut merge = EdgeMerge::new(&["a".to_string()]);
        let mut seen = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            if cuts.contains(&i) {
                let saved = merge.snapshot();
                merge = EdgeMerge::restore(&saved).expect("restore");
                assert_eq!(
                    merge.snapshot(),
                    saved,
                    "snapshot of the restored merge at {i}"
                );
            }
            match op {
                MergeOp::Events(edge, events) => merge.events(edge, events.clone()),
                MergeOp::Beat(edge, beat) => merge.beat(edge, *beat),
                MergeOp::Done(edge) => merge.done(edge),
                MergeOp::Release => merge.release(|ev| {
                    seen.push(format!("{} {} {} {:?}", ev.source, ev.line, ev.ts, ev.raw))
                }),
            }
            seen.push(format!(
                "{:?} {:?} {} {} {:?}",
                merge.progress(),
                merge.live_wall(),
                merge.queued(),
                merge.all_done(),
                merge.stats()
            ));
        }
        seen
    }

    #[test]
    fn a_restored_merge_releases_what_an_uninterrupted_one_does() {
        let mut released = 0;
        for seed in 0..300u64 {
            let ops = merge_ops(seed);
            let whole = run_merge(&ops, &[]);
            released += whole.iter().filter(|l| l.contains('[')).count();
            let n = ops.len();
            let cuts = [seed as usize % n, (seed as usize * 7 + 3) % n];
            assert_eq!(run_merge(&ops, &cuts), whole, "seed {seed}, cuts {cuts:?}");
        }
        assert!(released > 1000, "the streams release events: {released}");
    }

    #[test]
    fn a_bad_merge_snapshot_is_refused() {
        let mut merge = EdgeMerge::new(&["a".to_string()]);
        merge.events("b", vec![at(5), at(6)]);
        let saved = merge.snapshot();
        assert!(EdgeMerge::restore(&saved).is_ok());
        for len in 0..saved.len() {
            assert!(EdgeMerge::restore(&saved[..len]).is_err(), "cut to {len}");
        }
        let detector = crate::detect::Detector::new(
            crate::detect::RuleSet::builtin(),
            crate::detect::DetectOptions::default(),
        );
        assert!(matches!(
            EdgeMerge::restore(&detector.snapshot()),
            Err(SnapshotError::WrongKind { .. })
        ));
    }
}
