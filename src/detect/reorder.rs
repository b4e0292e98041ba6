//! The reorder buffer: events wait here, in processing order, until the watermark passes them.
//!
//! Order is (ts, source, line), then arrival: the same lines give the same order whatever
//! order they arrived in, and two identical keys (the same line read twice) keep their arrival
//! order. A binary heap keeps insertion at O(log n) whatever the arrival order (a sorted deque
//! costs O(n) per out-of-order event: 1 M lines shuffled within the lateness took 20 s of CPU).
//!
//! The buffer is bounded by a count and by an estimate of the bytes its events hold, because
//! what it holds is chosen by the input: lines without timestamps, a million lines with one
//! timestamp or a sender stamping lines a day ahead would otherwise keep everything. The
//! detector asks [`ReorderBuffer::is_over`] after each push and forces the oldest events
//! through, counting them; nothing is dropped here.
//!
//! A held event keeps only what detection reads: its `message` is dropped (the archive and
//! `secpipe events` already had it, and `raw` still holds the line) and `raw` is cut to what
//! an alert's evidence shows.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use super::snapshot::{EventSnap, Names, SnapshotError, counter, invalid};
use crate::event::Event;

/// Default cap on held events. With the 10 s default lateness this holds a 25,000 lines/s
/// stream's worth; a denser stream has its watermark forced forward (counted).
pub const DEFAULT_MAX_HELD_EVENTS: usize = 262_144;

/// Default cap on the bytes held events take (estimated, see `held_bytes`): with the keys
/// the rules hold at their cap, this keeps a run within its 256 MiB budget.
pub const DEFAULT_MAX_HELD_BYTES: usize = 64 * 1024 * 1024;

/// One waiting event and its place in the order. The key is copied out of the box (the source
/// is a shared pointer, compared by address first) so that comparisons, a heap's whole cost,
/// never touch the event itself: a flood of lines with one timestamp compares on source and
/// line at every level of the heap.
struct Held {
    ts: i64,
    line: u64,
    arrival: u64,
    source: Arc<str>,
    /// What the event was counted as in [`ReorderBuffer::bytes`] (see [`held_bytes`]).
    bytes: usize,
    ev: Box<Event>,
}

impl Held {
    fn key_cmp(&self, other: &Held) -> Ordering {
        self.ts
            .cmp(&other.ts)
            .then_with(|| {
                if Arc::ptr_eq(&self.source, &other.source) {
                    Ordering::Equal
                } else {
                    self.source.cmp(&other.source)
                }
            })
            .then_with(|| self.line.cmp(&other.line))
            .then_with(|| self.arrival.cmp(&other.arrival))
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        self.key_cmp(other).is_eq()
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Held) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    fn cmp(&self, other: &Held) -> Ordering {
        #[cfg(test)]
        tests::COMPARISONS.with(|c| c.set(c.get() + 1));
        self.key_cmp(other)
    }
}

/// Events waiting for the watermark, smallest (ts, source, line, arrival) first.
///
/// Most input comes in order (one file, one sender), so events that sort at or after the last
/// one held go to an in-order run, pushed and taken at its ends in O(1) without comparisons
/// at every level of a heap; only events that arrive out of order go to the heap. The next
/// event is the smaller of the two fronts.
pub(crate) struct ReorderBuffer {
    run: VecDeque<Held>,
    heap: BinaryHeap<Reverse<Held>>,
    next_arrival: u64,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
}

impl ReorderBuffer {
    /// A buffer that reports [`is_over`](Self::is_over) beyond `max_events` events or
    /// `max_bytes` held bytes (each at least 1).
    pub(crate) fn new(max_events: usize, max_bytes: usize) -> ReorderBuffer {
        ReorderBuffer {
            run: VecDeque::new(),
            heap: BinaryHeap::new(),
            next_arrival: 0,
            bytes: 0,
            max_events: max_events.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Hold `ev`, stripped to what detection reads (see the module docs).
    pub(crate) fn push(&mut self, mut ev: Box<Event>, evidence_raw: usize) {
        ev.message = Box::default();
        if ev.raw.len() > evidence_raw {
            ev.raw = Box::from(&ev.raw[..evidence_raw]);
        }
        let bytes = held_bytes(&ev);
        self.bytes += bytes;
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        let held = Held {
            ts: ev.ts,
            line: ev.line,
            arrival,
            source: ev.source.clone(),
            bytes,
            ev,
        };
        // Its arrival is the largest yet, so it sorts after the run's last event exactly when
        // its (ts, source, line) is not smaller.
        if self
            .run
            .back()
            .is_none_or(|last| held.key_cmp(last).is_ge())
        {
            self.run.push_back(held);
        } else {
            self.heap.push(Reverse(held));
        }
    }

    /// Whether the next event in order is the run's front (else the heap's top).
    fn run_first(&self) -> Option<bool> {
        match (self.run.front(), self.heap.peek()) {
            (None, None) => None,
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (Some(r), Some(Reverse(h))) => Some(r.key_cmp(h).is_lt()),
        }
    }

    /// Event time of the next event in order.
    pub(crate) fn first_ts(&self) -> Option<i64> {
        if self.run_first()? {
            self.run.front().map(|h| h.ts)
        } else {
            self.heap.peek().map(|Reverse(h)| h.ts)
        }
    }

    /// Take the next event in order.
    pub(crate) fn pop(&mut self) -> Option<Box<Event>> {
        let held = if self.run_first()? {
            self.run.pop_front()?
        } else {
            self.heap.pop()?.0
        };
        self.bytes = self.bytes.saturating_sub(held.bytes);
        Some(held.ev)
    }

    /// Beyond either cap: the caller must force events through.
    pub(crate) fn is_over(&self) -> bool {
        self.len() > self.max_events || self.bytes > self.max_bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.run.len() + self.heap.len()
    }

    /// The caps it was made with: (events, bytes).
    pub(crate) fn caps(&self) -> (usize, usize) {
        (self.max_events, self.max_bytes)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The buffer as a snapshot holds it: each event with its arrival number, the in-order run
/// in its order, the heap in any order (its order is total: arrivals are unique).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ReorderSnap {
    run: Vec<(u64, EventSnap)>,
    heap: Vec<(u64, EventSnap)>,
    next_arrival: u64,
}

impl ReorderBuffer {
    pub(crate) fn snapshot(&self) -> ReorderSnap {
        let snap = |h: &Held| (h.arrival, EventSnap::of(&h.ev));
        ReorderSnap {
            run: self.run.iter().map(snap).collect(),
            heap: self.heap.iter().map(|Reverse(h)| snap(h)).collect(),
            next_arrival: self.next_arrival,
        }
    }

    /// The buffer a snapshot holds, with the caps of this run; each event's bytes are counted
    /// again (held events were already stripped, so they count as they did).
    pub(crate) fn restore(
        snap: ReorderSnap,
        max_events: usize,
        max_bytes: usize,
        names: &mut Names,
    ) -> Result<ReorderBuffer, SnapshotError> {
        let mut buffer = ReorderBuffer::new(max_events, max_bytes);
        let mut held = |(arrival, ev): (u64, EventSnap)| -> Result<Held, SnapshotError> {
            if arrival >= snap.next_arrival {
                return Err(invalid("a held event arrived after the buffer's count"));
            }
            let ev = Box::new(ev.into_event(names)?);
            let bytes = held_bytes(&ev);
            buffer.bytes += bytes;
            Ok(Held {
                ts: ev.ts,
                line: ev.line,
                arrival,
                source: ev.source.clone(),
                bytes,
                ev,
            })
        };
        let run = snap
            .run
            .into_iter()
            .map(&mut held)
            .collect::<Result<VecDeque<Held>, _>>()?;
        let heap = snap
            .heap
            .into_iter()
            .map(|h| held(h).map(Reverse))
            .collect::<Result<Vec<_>, _>>()?;
        if run
            .iter()
            .zip(run.iter().skip(1))
            .any(|(a, b)| a.key_cmp(b).is_gt())
        {
            return Err(invalid("the reorder buffer's run is out of order"));
        }
        buffer.run = run;
        buffer.heap = BinaryHeap::from(heap);
        buffer.next_arrival = counter("arrivals", snap.next_arrival)?;
        Ok(buffer)
    }
}

/// What one held event costs: the event ([`Event::heap_bytes`]) and its heap slot.
fn held_bytes(ev: &Event) -> usize {
    ev.heap_bytes() + std::mem::size_of::<Reverse<Held>>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Comparisons made by [`Held::cmp`] on this thread.
        pub(super) static COMPARISONS: Cell<u64> = const { Cell::new(0) };
    }

    fn event(ts: i64, source: &Arc<str>, line: u64) -> Box<Event> {
        Box::new(Event {
            ts,
            source: source.clone(),
            line,
            message: "a message the buffer need not keep".into(),
            raw: vec![b'x'; 10_000].into(),
            ..Event::default()
        })
    }

    /// A deterministic shuffle that moves each item at most `reach` places.
    fn local_shuffle<T>(items: &mut [T], reach: usize) {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..items.len() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let j = (i + (state as usize) % reach).min(items.len() - 1);
            items.swap(i, j);
        }
    }

    #[test]
    fn shuffled_input_comes_out_in_order_with_arrival_breaking_ties() {
        let a: Arc<str> = Arc::from("a.log");
        let b: Arc<str> = Arc::from("b.log");
        // Pairs of events with one key each (the same line read twice), then shuffled.
        let mut input: Vec<(Box<Event>, u64)> = Vec::new();
        for i in 0..2_000u64 {
            let ts = (i / 4) as i64;
            let source = if i % 2 == 0 { &a } else { &b };
            input.push((event(ts, source, i), 0));
        }
        local_shuffle(&mut input, 50);
        let mut buffer = ReorderBuffer::new(usize::MAX, usize::MAX);
        for (tag, (ev, _)) in input.iter().enumerate() {
            let mut first = ev.clone();
            first.pid = Some(tag as u32 * 2);
            let mut second = ev.clone();
            second.pid = Some(tag as u32 * 2 + 1);
            buffer.push(first, 64);
            buffer.push(second, 64);
        }
        let mut out = Vec::new();
        while let Some(ev) = buffer.pop() {
            out.push(ev);
        }
        assert_eq!(out.len(), 4_000);
        for pair in out.windows(2) {
            let (x, y) = (&pair[0], &pair[1]);
            let key = |e: &Event| (e.ts, e.source.clone(), e.line);
            assert!(key(x) <= key(y), "{:?} before {:?}", key(x), key(y));
            if key(x) == key(y) {
                assert!(x.pid < y.pid, "equal keys keep arrival order");
            }
        }
    }

    #[test]
    fn out_of_order_insertion_costs_log_n_comparisons() {
        let source: Arc<str> = Arc::from("-");
        let n = 200_000usize;
        let mut times: Vec<i64> = (0..n as i64).collect();
        local_shuffle(&mut times, 10_000);
        let mut buffer = ReorderBuffer::new(usize::MAX, usize::MAX);
        COMPARISONS.with(|c| c.set(0));
        for (line, ts) in times.into_iter().enumerate() {
            buffer.push(
                Box::new(Event {
                    ts,
                    source: source.clone(),
                    line: line as u64,
                    ..Event::default()
                }),
                64,
            );
        }
        let mut last = i64::MIN;
        while let Some(ev) = buffer.pop() {
            assert!(ev.ts >= last);
            last = ev.ts;
        }
        let comparisons = COMPARISONS.with(Cell::get);
        // n log2 n is 3.5 M here: push and pop together stay within a small multiple of it,
        // where a sorted array's shifting is n^2 / 4 element moves (10^10).
        let n_log_n = n as u64 * 18;
        assert!(
            comparisons <= 3 * n_log_n,
            "{comparisons} comparisons for {n} events"
        );
    }

    #[test]
    fn held_events_keep_one_copy_of_the_line_and_bytes_are_accounted() {
        let source: Arc<str> = Arc::from("-");
        let mut buffer = ReorderBuffer::new(usize::MAX, usize::MAX);
        buffer.push(event(1, &source, 1), 4096);
        assert_eq!(buffer.len(), 1);
        let bytes = buffer.bytes();
        assert!((4096..4096 + 1024).contains(&bytes), "{bytes}");
        let ev = buffer.pop().expect("held");
        assert!(ev.message.is_empty(), "message dropped, raw kept");
        assert_eq!(ev.raw.len(), 4096, "raw cut to what evidence shows");
        assert_eq!(buffer.bytes(), 0);
    }

    #[test]
    fn a_full_buffer_says_so_by_count_and_by_bytes() {
        let source: Arc<str> = Arc::from("-");
        let mut by_count = ReorderBuffer::new(3, usize::MAX);
        for line in 0..3 {
            by_count.push(event(0, &source, line), 16);
        }
        assert!(!by_count.is_over());
        by_count.push(event(0, &source, 3), 16);
        assert!(by_count.is_over());
        let mut by_bytes = ReorderBuffer::new(usize::MAX, 10_000);
        by_bytes.push(event(0, &source, 0), 4096);
        by_bytes.push(event(0, &source, 1), 4096);
        assert!(!by_bytes.is_over());
        by_bytes.push(event(0, &source, 2), 4096);
        assert!(by_bytes.is_over());
    }
}
