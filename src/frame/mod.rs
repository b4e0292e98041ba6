//! frame: cut a byte stream into lines.
//!
//! Newline framing with memchr over large buffers, so a line costs no syscall and no allocation.
//! A line longer than `max_line` keeps its first `max_line` bytes and is counted as truncated;
//! the rest of it up to the newline is skipped (and counted as dropped bytes).
//!
//! ```
//! use secpipe::frame::LineFramer;
//! let mut framer = LineFramer::new(8);
//! let mut lines = Vec::new();
//! framer.push(b"short\nthis one is too long\nlast", |line, truncated| {
//!     lines.push((String::from_utf8_lossy(line).into_owned(), truncated))
//! });
//! framer.finish(|line, truncated| lines.push((String::from_utf8_lossy(line).into_owned(), truncated)));
//! assert_eq!(lines, vec![
//!     ("short".to_string(), false),
//!     ("this one".to_string(), true),
//!     ("last".to_string(), false),
//! ]);
//! ```

pub mod ack;
pub mod octet;

pub use ack::Ack;

/// Default `max_line`: 64 KiB.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// Incremental newline framer. Feed it buffers with [`LineFramer::push`]; complete lines are
/// handed to the callback as slices of the buffer when possible (no copy), and a line split
/// across two buffers is assembled in a small carry buffer.
pub struct LineFramer {
    max_line: usize,
    /// The start of a line whose newline has not been seen yet.
    carry: Vec<u8>,
    /// The carried line is already over `max_line`: skip until its newline.
    carry_truncated: bool,
    /// Lines cut at `max_line`.
    pub truncated_lines: u64,
    /// Bytes skipped past `max_line`.
    pub dropped_bytes: u64,
}

impl LineFramer {
    pub fn new(max_line: usize) -> LineFramer {
        LineFramer {
            max_line: max_line.max(1),
            carry: Vec::new(),
            carry_truncated: false,
            truncated_lines: 0,
            dropped_bytes: 0,
        }
    }

    /// Frame `buf`; call `emit(line, truncated)` for each complete line, without its `\n`.
    pub fn push(&mut self, mut buf: &[u8], mut emit: impl FnMut(&[u8], bool)) {
        while !buf.is_empty() {
            let newline = memchr::memchr(b'\n', buf);
            let (part, rest, complete) = match newline {
                Some(i) => (&buf[..i], &buf[i + 1..], true),
                None => (buf, &[][..], false),
            };
            buf = rest;
            if self.carry.is_empty() && !self.carry_truncated && complete {
                // The hot path: the whole line is inside this buffer.
                if part.len() > self.max_line {
                    self.truncated_lines += 1;
                    self.dropped_bytes += (part.len() - self.max_line) as u64;
                    emit(&part[..self.max_line], true);
                } else {
                    emit(part, false);
                }
                continue;
            }
            self.append_to_carry(part);
            if complete {
                let truncated = self.carry_truncated;
                emit(&self.carry, truncated);
                self.carry.clear();
                self.carry_truncated = false;
            }
        }
    }

    fn append_to_carry(&mut self, part: &[u8]) {
        let room = self.max_line - self.carry.len();
        if part.len() > room {
            if !self.carry_truncated {
                self.truncated_lines += 1;
            }
            self.carry_truncated = true;
            self.carry.extend_from_slice(&part[..room]);
            self.dropped_bytes += (part.len() - room) as u64;
        } else {
            self.carry.extend_from_slice(part);
        }
    }

    /// Whether a line has begun and its newline has not arrived yet (a stream source gives
    /// such a line a deadline, so a sender cannot hold a connection with one byte a minute).
    pub fn in_line(&self) -> bool {
        !self.carry.is_empty() || self.carry_truncated
    }

    /// End of stream: a last line without a trailing newline is still a line.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8], bool)) {
        if !self.carry.is_empty() || self.carry_truncated {
            let truncated = self.carry_truncated;
            emit(&self.carry, truncated);
            self.carry.clear();
            self.carry_truncated = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_all(chunks: &[&[u8]], max: usize) -> (Vec<(Vec<u8>, bool)>, u64, u64) {
        let mut f = LineFramer::new(max);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, |l, t| out.push((l.to_vec(), t)));
        }
        f.finish(|l, t| out.push((l.to_vec(), t)));
        (out, f.truncated_lines, f.dropped_bytes)
    }

    #[test]
    fn lines_split_across_buffers_are_joined() {
        let (out, t, _) = frame_all(&[b"ab", b"c\nde", b"f\n"], 100);
        assert_eq!(
            out,
            vec![(b"abc".to_vec(), false), (b"def".to_vec(), false)]
        );
        assert_eq!(t, 0);
    }

    #[test]
    fn long_line_split_across_buffers_is_truncated_once() {
        let (out, t, dropped) = frame_all(&[b"abcd", b"efgh", b"ij\nk"], 5);
        assert_eq!(out, vec![(b"abcde".to_vec(), true), (b"k".to_vec(), false)]);
        assert_eq!((t, dropped), (1, 5));
    }

    #[test]
    fn empty_lines_are_lines() {
        let (out, _, _) = frame_all(&[b"\n\nx\n"], 10);
        assert_eq!(out.len(), 3);
        assert!(out[0].0.is_empty() && out[1].0.is_empty());
    }

    #[test]
    fn one_mebibyte_line() {
        let big = vec![b'x'; 1 << 20];
        let (out, t, dropped) = frame_all(&[&big, b"\n"], DEFAULT_MAX_LINE);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.len(), DEFAULT_MAX_LINE);
        assert_eq!(t, 1);
        assert_eq!(dropped as usize, (1 << 20) - DEFAULT_MAX_LINE);
    }

    proptest::proptest! {
        #[test]
        fn framing_does_not_depend_on_buffer_boundaries(
            data in proptest::collection::vec(proptest::sample::select(vec![b'a', b'b', b'\n']), 0..200),
            cut in 0usize..200,
            max in 1usize..20,
        ) {
            let cut = cut.min(data.len());
            let whole = frame_all(&[&data], max);
            let split = frame_all(&[&data[..cut], &data[cut..]], max);
            proptest::prop_assert_eq!(whole, split);
        }
    }
}

/// Lines that cross a thread boundary together: one copy of their bytes, with their end offsets.
///
/// Batches, not single lines, go through channels (DESIGN section 1): one allocation per
/// few thousand lines.
///
/// ```
/// use secpipe::frame::LineBatch;
/// let mut batch = LineBatch::new("-".into(), 1, 0);
/// batch.push(b"first", false);
/// batch.push(b"second", true);
/// let lines: Vec<_> = batch.lines().collect();
/// assert_eq!(lines, vec![(1, &b"first"[..], false), (2, &b"second"[..], true)]);
/// ```
///
/// A batch may also carry lines of many sources ([`LineBatch::push_from`]): a syslog listener
/// hears hundreds of peers, and a batch per peer would make batches of a line or two, whose
/// per-batch cost then bounds the rate (issue 10.5). Each line keeps its own source and number:
///
/// ```
/// use std::sync::Arc;
/// use secpipe::frame::LineBatch;
/// let (a, b): (Arc<str>, Arc<str>) = ("syslog+udp://10.0.0.1:514".into(), "syslog+udp://10.0.0.2:514".into());
/// let mut batch = LineBatch::new("syslog+udp://0.0.0.0:514".into(), 1, 0);
/// batch.push_from(&a, 7, b"a7", false);
/// batch.push_from(&b, 1, b"b1", false);
/// batch.push_from(&a, 8, b"a8", false);
/// let runs: Vec<_> = batch.runs().map(|(s, first, lines)| (s.to_string(), first, lines)).collect();
/// assert_eq!(runs, vec![(a.to_string(), 7, 0..1), (b.to_string(), 1, 1..2), (a.to_string(), 8, 2..3)]);
/// let numbers: Vec<u64> = batch.lines().map(|(n, _, _)| n).collect();
/// assert_eq!(numbers, vec![7, 1, 8]);
/// ```
#[derive(Debug)]
pub struct LineBatch {
    pub source: std::sync::Arc<str>,
    /// Line number of the first line (1-based).
    pub first_line: u64,
    /// Receive time of the batch (µs UTC).
    pub received: i64,
    /// Archive replay: the archive row number of the first line (a batch's rows are
    /// contiguous).
    pub first_seq: Option<u64>,
    /// Archive replay: each line's archived event time and `ts_inferred`. They win over
    /// re-parsing, because year inference depends on earlier lines that `--from` may skip.
    pub known_ts: Vec<(i64, bool)>,
    /// What the source is told once this batch is done with ([`ack`]): a followed file with
    /// `--state` then records the read position just after the batch's last line.
    pub ack: Option<Ack>,
    /// The source has ended (a closed connection): nothing more comes under its name, so the
    /// stages may free what they keep per source. The batch may hold no lines.
    pub ends_source: bool,
    data: Vec<u8>,
    ends: Vec<u32>,
    truncated: Vec<u32>,
    /// Lines of several sources: each run of consecutive lines from one source. Empty when
    /// every line is from `source`, numbered on from `first_line`.
    runs: Vec<SourceRun>,
}

/// Consecutive lines of one source in a mixed batch.
#[derive(Clone, Debug)]
struct SourceRun {
    source: std::sync::Arc<str>,
    /// The number of the run's first line within its source.
    first_line: u64,
    /// Index of the run's first line in the batch.
    start: u32,
}

/// A batch is handed on once it holds this many bytes or lines.
pub const BATCH_BYTES: usize = 128 * 1024;
pub const BATCH_LINES: usize = 1024;

impl LineBatch {
    pub fn new(source: std::sync::Arc<str>, first_line: u64, received: i64) -> LineBatch {
        LineBatch {
            source,
            first_line,
            received,
            first_seq: None,
            known_ts: Vec::new(),
            ack: None,
            ends_source: false,
            data: Vec::new(),
            ends: Vec::new(),
            truncated: Vec::new(),
            runs: Vec::new(),
        }
    }

    /// Append line number `line` of `source` (a batch of one source uses [`LineBatch::push`]).
    pub fn push_from(
        &mut self,
        source: &std::sync::Arc<str>,
        line: u64,
        bytes: &[u8],
        truncated: bool,
    ) {
        let index = self.ends.len() as u32;
        let continues = self.runs.last().is_some_and(|run| {
            std::sync::Arc::ptr_eq(&run.source, source)
                && run.first_line + u64::from(index - run.start) == line
        });
        if !continues {
            self.runs.push(SourceRun {
                source: source.clone(),
                first_line: line,
                start: index,
            });
        }
        self.push(bytes, truncated);
    }

    /// Each run of consecutive lines from one source: the source, the number of its first line
    /// and the run's range of line indices in this batch. One run for a single-source batch.
    pub fn runs(
        &self,
    ) -> impl Iterator<Item = (&std::sync::Arc<str>, u64, std::ops::Range<usize>)> + '_ {
        let single =
            self.runs
                .is_empty()
                .then_some((&self.source, self.first_line, 0..self.ends.len()));
        let mixed = self.runs.iter().enumerate().map(|(i, run)| {
            let end = self
                .runs
                .get(i + 1)
                .map_or(self.ends.len(), |next| next.start as usize);
            (&run.source, run.first_line, run.start as usize..end)
        });
        single.into_iter().chain(mixed)
    }

    pub fn push(&mut self, line: &[u8], truncated: bool) {
        if truncated {
            self.truncated.push(self.ends.len() as u32);
        }
        self.data.extend_from_slice(line);
        self.ends.push(self.data.len() as u32);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Bytes of line data held.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Full enough to hand on.
    pub fn is_full(&self) -> bool {
        self.data.len() >= BATCH_BYTES || self.ends.len() >= BATCH_LINES
    }

    /// The line number the next pushed line would get.
    pub fn next_line(&self) -> u64 {
        self.first_line + self.ends.len() as u64
    }

    /// `(line number, bytes, truncated)` for each line; the number is within the line's own
    /// source (see [`LineBatch::runs`]).
    pub fn lines(&self) -> impl Iterator<Item = (u64, &[u8], bool)> + '_ {
        let mut start = 0usize;
        let mut next_truncated = self.truncated.iter().peekable();
        let mut runs = self.runs().peekable();
        let mut run = runs.next();
        self.ends.iter().enumerate().map(move |(i, &end)| {
            let end = end as usize;
            let line = &self.data[start..end];
            start = end;
            let truncated = next_truncated.next_if(|&&t| t as usize == i).is_some();
            while run.as_ref().is_some_and(|(_, _, lines)| i >= lines.end) {
                run = runs.next();
            }
            let number = run
                .as_ref()
                .map_or(self.first_line + i as u64, |(_, first, lines)| {
                    first + (i - lines.start) as u64
                });
            (number, line, truncated)
        })
    }
}
