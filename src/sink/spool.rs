//! A network sink's spool in `--state`: alerts survive an outage of the receiver and a crash
//! of secpipe, and are delivered at least once (the alert `id` lets the receiver drop a
//! repeat).
//!
//! The ordered stage appends each alert, encoded for its sink, to the spool
//! (`STATE/delivery/<sink>/NNNNNNNN.spool`, records of a 4-byte length and the bytes); the
//! sink's own thread reads from its *cursor* (`cursor`: segment and offset), hands a batch to
//! the [`Transport`], and moves the cursor past it only once the transport has delivered it.
//! A receiver that is down for an hour costs disk, not memory and not detection: the spool
//! grows, up to [`DEFAULT_SPOOL_BYTES`], and past that new alerts are dropped and counted
//! (the run raises `secpipe.delivery_backlog`). After a crash or a stop before everything was
//! delivered, the next run with the same `--state` and the same sink starts from the cursor:
//! what was delivered but not yet recorded in the cursor is sent again, nothing is skipped.
//!
//! Durability: an appended record is in the kernel before the ordered stage goes on (a
//! SIGKILL loses nothing). The sink's thread syncs the growing segment to disk once a second
//! while it has nothing to deliver; while it is delivering, or waiting for a receiver that is
//! down, it does not, and the kernel's writeback (30 s by default) puts the records on disk:
//! a power loss costs the undelivered alerts not yet written back. The cursor is
//! replaced whole (write and rename); a torn or missing cursor sends the spool again from its
//! oldest segment (repeats, never a loss). A torn last record (a crash in the middle of a
//! write) is cut off when the spool is opened.
//!
//! Every name under the spool is built here (numbers and a hash of the sink's name); nothing
//! from a log line or an alert becomes a path.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use sha2::{Digest, Sha256};

use super::encode::Encoding;
use super::queue::Transport;
use super::retry::{DrainClock, is_at_drain_limit};
use super::{AlertSink, DrainReport};
use crate::alert::Alert;
use crate::metrics::SinkMetrics;

/// A spool holds at most this many bytes on disk by default; past it, new alerts are dropped
/// and counted.
pub const DEFAULT_SPOOL_BYTES: u64 = 64 << 20;

/// A segment is closed and a new one started past this size, so that delivered alerts free
/// their disk space while a long outage lasts.
const SEGMENT_BYTES: u64 = 4 << 20;

/// At most this many alerts per batch handed to the transport.
const BATCH_ALERTS: usize = 100;

/// A record's header: the length of its alert (u32) and when it was spooled (µs, u64),
/// little-endian.
const HEADER: u64 = 12;

/// A record longer than this is not one the spool wrote: the spool is cut there.
const MAX_RECORD: u32 = 16 << 20;

/// How often the thread looks at the spool when nothing wakes it, and syncs a growing segment.
const POLL: Duration = Duration::from_secs(1);

/// Where the sink's thread has delivered up to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Cursor {
    segment: u64,
    offset: u64,
}

impl Cursor {
    fn parse(text: &str) -> Option<Cursor> {
        let (segment, offset) = text.trim().split_once(' ')?;
        Some(Cursor {
            segment: segment.parse().ok()?,
            offset: offset.parse().ok()?,
        })
    }
}

/// The spool directory of one sink: `STATE/delivery/<hash of name and encoding>`.
pub fn spool_dir(state: &Path, name: &str, encoding: Encoding) -> PathBuf {
    let digest = Sha256::digest(format!("{name}\n{encoding:?}").as_bytes());
    state.join("delivery").join(hex::encode(&digest[..8]))
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:08}.spool"))
}

/// The segments in `dir`, oldest first.
fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(number) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".spool"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        found.push(number);
    }
    found.sort_unstable();
    Ok(found)
}

/// Take the spool's lock, or fail if another secpipe holds it: two writers would interleave
/// records and two readers deliver everything twice.
fn lock(dir: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::other(
            "another secpipe is delivering from this spool (same --state and output)",
        )),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The length of the whole records at the start of `file`: a torn last record ends it.
fn whole_records(file: &mut File) -> io::Result<(u64, u64)> {
    let len = file.metadata()?.len();
    let mut reader = io::BufReader::new(&mut *file);
    let (mut at, mut records) = (0u64, 0u64);
    loop {
        let mut head = [0u8; HEADER as usize];
        if at + HEADER > len || reader.read_exact(&mut head).is_err() {
            break;
        }
        let (size, _) = split_header(head);
        if size > MAX_RECORD || at + HEADER + u64::from(size) > len {
            break;
        }
        reader.seek_relative(i64::from(size))?;
        at += HEADER + u64::from(size);
        records += 1;
    }
    Ok((at, records))
}

fn split_header(head: [u8; HEADER as usize]) -> (u32, i64) {
    let [a, b, c, d, rest @ ..] = head;
    (u32::from_le_bytes([a, b, c, d]), i64::from_le_bytes(rest))
}

/// What the ordered stage and the sink's thread share.
#[derive(Default)]
struct Shared {
    /// Bytes in the spool not yet delivered (records and their lengths).
    pending_bytes: AtomicU64,
    /// Alerts in the spool not yet delivered.
    pending: AtomicU64,
    delivered: AtomicU64,
    /// Alerts the receiver refused for good: skipped, not sent again.
    refused: AtomicU64,
    /// The drain limit stopped the transport: what it had not delivered stays in the spool.
    stopped_at_drain_limit: std::sync::atomic::AtomicBool,
    error: std::sync::Mutex<Option<io::Error>>,
}

/// A sink that spools to disk before its thread delivers; see the module docs.
pub struct SpooledSink {
    name: String,
    encoding: Encoding,
    dir: PathBuf,
    out: Option<File>,
    /// The records of one `write`, appended to the segment in one call.
    records: Vec<u8>,
    segment: u64,
    segment_len: u64,
    max_bytes: u64,
    wake: Option<Sender<()>>,
    writer: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
    alerts: u64,
    dropped: u64,
    /// Undelivered alerts the spool held from an earlier run when it was opened.
    carried: u64,
    drain: DrainClock,
    line: String,
    metrics: SinkMetrics,
    /// Held while the sink is open: one process per spool (the kernel drops it if we die).
    _lock: File,
}

impl SpooledSink {
    /// Open (or create) the spool in `dir` and start the thread delivering to `transport`,
    /// beginning with what an earlier run left undelivered.
    pub fn open(
        name: String,
        dir: PathBuf,
        transport: impl Transport,
        encoding: Encoding,
        max_bytes: u64,
        drain: DrainClock,
        metrics: SinkMetrics,
    ) -> io::Result<SpooledSink> {
        fs::create_dir_all(&dir)?;
        let lock = lock(&dir)?;
        let cursor = fs::read_to_string(dir.join("cursor"))
            .ok()
            .and_then(|text| Cursor::parse(&text));
        let mut found = segments(&dir)?;
        // A cursor past every segment, or none: start at the oldest segment there is.
        let mut cursor = match (cursor, found.first()) {
            (Some(c), Some(&first)) if c.segment >= first => c,
            (_, Some(&first)) => Cursor {
                segment: first,
                offset: 0,
            },
            (c, None) => c.unwrap_or_default(),
        };
        // Count what waits, cut torn tails, and drop segments the cursor has passed.
        let (mut pending_bytes, mut pending) = (0u64, 0u64);
        found.retain(|&segment| {
            if segment < cursor.segment {
                let _ = fs::remove_file(segment_path(&dir, segment));
                return false;
            }
            true
        });
        let mut last_len = 0;
        for &segment in &found {
            let path = segment_path(&dir, segment);
            let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
            let (len, records) = whole_records(&mut file)?;
            if len < file.metadata()?.len() {
                file.set_len(len)?;
            }
            // A cursor past the whole records (a power loss kept the cursor but not the
            // segment's tail) moves back to their end, where the next record is appended.
            if segment == cursor.segment && cursor.offset > len {
                cursor.offset = len;
            }
            let skip = if segment == cursor.segment {
                cursor.offset
            } else {
                0
            };
            pending_bytes += len - skip;
            pending += records;
            last_len = len;
        }
        if let Some(&first) = found.first()
            && first == cursor.segment
            && cursor.offset > 0
        {
            // Records before the cursor were delivered: count them out.
            let mut file = File::open(segment_path(&dir, first))?;
            let mut reader = SegmentReader::new(&mut file, 0);
            let mut before = 0;
            while reader.offset < cursor.offset {
                match reader.next_record()? {
                    Some(_) => before += 1,
                    None => break,
                }
            }
            pending = pending.saturating_sub(before);
        }
        let segment = found.last().copied().unwrap_or(cursor.segment);
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&dir, segment))?;
        let shared = Arc::new(Shared::default());
        shared.pending_bytes.store(pending_bytes, Ordering::Relaxed);
        shared.pending.store(pending, Ordering::Relaxed);
        let (wake, woken) = bounded::<()>(1);
        metrics.set_depth(pending);
        let mut transport = transport;
        transport.observe(metrics.clone());
        let reader = SpoolReader {
            dir: dir.clone(),
            cursor,
            shared: shared.clone(),
            woken,
            metrics: metrics.clone(),
        };
        let thread_name = name.clone();
        let writer = std::thread::Builder::new()
            .name(format!("sink {name}"))
            .spawn(move || reader.run(thread_name, transport))?;
        Ok(SpooledSink {
            name,
            encoding,
            dir,
            out: Some(out),
            records: Vec::new(),
            segment,
            segment_len: if found.is_empty() { 0 } else { last_len },
            max_bytes,
            wake: Some(wake),
            writer: Some(writer),
            shared,
            alerts: 0,
            dropped: 0,
            carried: pending,
            drain,
            line: String::new(),
            metrics,
            _lock: lock,
        })
    }

    /// Undelivered alerts an earlier run left in the spool (delivered first).
    pub fn carried(&self) -> u64 {
        self.carried
    }

    fn take_error(&self) -> Option<io::Error> {
        self.shared
            .error
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
    }

    /// Start the next segment once this one is big enough (whole records only: the reader
    /// moves on only when the next segment exists, so this one is complete by then).
    fn roll_if_full(&mut self) -> io::Result<()> {
        if self.segment_len < SEGMENT_BYTES {
            return Ok(());
        }
        self.segment += 1;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&self.dir, self.segment))?;
        self.out = Some(file);
        self.segment_len = 0;
        Ok(())
    }
}

impl AlertSink for SpooledSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Append `alerts` to the spool (dropping and counting them when it is full) and wake the
    /// thread. An error is the spool's (a full disk) and ends the sink. A transport that
    /// failed does not: its alerts are still spooled, for the next run.
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        self.alerts += alerts.len() as u64;
        let Some(out) = self.out.as_mut() else {
            return Err(io::Error::other("the spool was closed"));
        };
        let mut appended = 0u64;
        let now = crate::event::now_micros();
        self.records.clear();
        for alert in alerts {
            self.line.clear();
            self.encoding.encode(alert, &mut self.line);
            let record = self.line.as_bytes();
            let size = HEADER + record.len() as u64;
            let waiting =
                self.shared.pending_bytes.load(Ordering::Relaxed) + self.records.len() as u64;
            if waiting + size > self.max_bytes || record.len() as u64 > u64::from(MAX_RECORD) {
                self.dropped += 1;
                self.metrics.dropped(1);
                continue;
            }
            self.records
                .extend_from_slice(&(record.len() as u32).to_le_bytes());
            self.records.extend_from_slice(&now.to_le_bytes());
            self.records.extend_from_slice(record);
            appended += 1;
        }
        let bytes = self.records.len() as u64;
        // Counted before the records are in the file: the thread may read them at once, and
        // must never take more than was counted.
        self.shared
            .pending_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        let waiting = self.shared.pending.fetch_add(appended, Ordering::Relaxed) + appended;
        if let Err(e) = out.write_all(&self.records) {
            // Whatever part was written is cut off as a torn record by the next open.
            self.shared
                .pending_bytes
                .fetch_sub(bytes, Ordering::Relaxed);
            self.shared.pending.fetch_sub(appended, Ordering::Relaxed);
            return Err(e);
        }
        self.segment_len += bytes;
        self.metrics.given(alerts.len() as u64);
        self.metrics.set_depth(waiting);
        if let Some(wake) = &self.wake
            && let Err(TrySendError::Disconnected(())) = wake.try_send(())
        {
            self.wake = None;
        }
        self.roll_if_full()
    }

    /// Stop appending and give the thread until the spool is delivered, or the drain limit:
    /// what is left stays in the spool for the next run.
    fn close(mut self: Box<Self>) -> DrainReport {
        self.out = None;
        // The thread delivers what the spool holds, then sees the closed channel and ends.
        self.wake = None;
        self.drain.start_now();
        let gave_up = super::queue::join_within(self.writer.take(), &mut self.drain);
        let delivered = self.shared.delivered.load(Ordering::Relaxed);
        DrainReport {
            alerts: self.alerts + self.carried,
            delivered,
            dropped: self.dropped,
            gave_up: gave_up || self.shared.stopped_at_drain_limit.load(Ordering::Relaxed),
            failed: self.take_error().map(|e| e.to_string()),
            spooled: self.shared.pending.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
        }
    }
}

/// Reads records of one segment from an offset.
struct SegmentReader<'a> {
    file: &'a mut File,
    offset: u64,
    seeked: bool,
}

impl<'a> SegmentReader<'a> {
    fn new(file: &'a mut File, offset: u64) -> SegmentReader<'a> {
        SegmentReader {
            file,
            offset,
            seeked: false,
        }
    }

    /// The next whole record and when it was spooled (µs), or `None` at the end of what is
    /// written so far.
    fn next_record(&mut self) -> io::Result<Option<(Vec<u8>, i64)>> {
        if !self.seeked {
            self.file.seek(SeekFrom::Start(self.offset))?;
            self.seeked = true;
        }
        let len = self.file.metadata()?.len();
        let mut head = [0u8; HEADER as usize];
        if self.offset + HEADER > len {
            return Ok(None);
        }
        self.file.read_exact(&mut head)?;
        let (size, spooled_at) = split_header(head);
        if size > MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the spool holds a record secpipe did not write",
            ));
        }
        if self.offset + HEADER + u64::from(size) > len {
            // Not all written yet: read it again next time.
            self.file.seek(SeekFrom::Start(self.offset))?;
            return Ok(None);
        }
        let mut record = vec![0u8; size as usize];
        self.file.read_exact(&mut record)?;
        self.offset += HEADER + u64::from(size);
        Ok(Some((record, spooled_at)))
    }
}

/// The sink's thread: delivers from the cursor.
struct SpoolReader {
    dir: PathBuf,
    cursor: Cursor,
    shared: Arc<Shared>,
    woken: Receiver<()>,
    metrics: SinkMetrics,
}

impl SpoolReader {
    fn run(mut self, name: String, mut transport: impl Transport) {
        if let Err(e) = self.deliver_all(&mut transport) {
            crate::report::warn(&format!(
                "alerts: {name}: {e}; its alerts are kept in the spool for the next run"
            ));
            if let Ok(mut slot) = self.shared.error.lock() {
                *slot = Some(e);
            }
        }
    }

    fn deliver_all(&mut self, transport: &mut impl Transport) -> io::Result<()> {
        let tick_every = transport.tick_every();
        let mut next_tick = tick_every.and_then(|every| Instant::now().checked_add(every));
        let mut last_sync = Instant::now();
        let mut closed = false;
        loop {
            let batch = self.read_batch()?;
            if batch.records.is_empty() {
                if batch.end != self.cursor {
                    // Moved on to a newer segment: the one behind is delivered.
                    self.move_cursor(batch.end)?;
                }
                if closed {
                    return Ok(());
                }
                if last_sync.elapsed() >= POLL {
                    self.sync_segment();
                    last_sync = Instant::now();
                }
                let wait_until =
                    next_tick.map_or(Instant::now() + POLL, |t| t.min(Instant::now() + POLL));
                match self.woken.recv_deadline(wait_until) {
                    Ok(()) => {}
                    Err(RecvTimeoutError::Timeout) => {}
                    // Closed: deliver what is left, then end.
                    Err(RecvTimeoutError::Disconnected) => closed = true,
                }
                if let (Some(at), Some(every)) = (next_tick, tick_every)
                    && Instant::now() >= at
                {
                    transport.tick()?;
                    next_tick = Instant::now().checked_add(every);
                }
                continue;
            }
            let on_flush = transport.delivers_on_flush();
            let delivered_before = self.shared.delivered.load(Ordering::Relaxed);
            let (mut taken, mut bytes) = (0u64, 0u64);
            let mut refusal = false;
            for (record, _) in &batch.records {
                match transport.send(record) {
                    Ok(()) if on_flush => taken += 1,
                    Ok(()) => {
                        self.shared.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if is_at_drain_limit(&e) => {
                        self.stop_at_drain_limit();
                        return Ok(());
                    }
                    // Lost, counted as undelivered; the next is tried (a refused datagram).
                    Err(_) if !transport.stops_on_error() => {
                        refusal = true;
                        self.metrics.failed();
                    }
                    Err(e) => {
                        self.metrics.failed();
                        return Err(e);
                    }
                }
            }
            match transport.flush() {
                Ok(()) => {}
                Err(e) if is_at_drain_limit(&e) => {
                    self.stop_at_drain_limit();
                    return Ok(());
                }
                // The receiver refused this batch for good (a 400): it is not sent again
                // (it would block every later alert), and counts as not delivered.
                Err(_) if !transport.stops_on_error() => {
                    self.metrics.failed();
                    refusal = true;
                    taken = 0;
                }
                Err(e) => {
                    self.metrics.failed();
                    return Err(e);
                }
            }
            let delivered = self.shared.delivered.fetch_add(taken, Ordering::Relaxed) + taken;
            if refusal {
                let took = delivered - delivered_before;
                let lost = (batch.records.len() as u64).saturating_sub(took);
                self.shared.refused.fetch_add(lost, Ordering::Relaxed);
            }
            for (record, _) in &batch.records {
                bytes += HEADER + record.len() as u64;
            }
            let left = self
                .shared
                .pending
                .fetch_sub(batch.records.len() as u64, Ordering::Relaxed)
                .saturating_sub(batch.records.len() as u64);
            self.metrics.set_depth(left);
            let waited = batch
                .oldest
                .map(|at| crate::event::now_micros().saturating_sub(at))
                .and_then(|us| u64::try_from(us).ok())
                .map(Duration::from_micros)
                .unwrap_or_default();
            self.metrics.delivered(delivered - delivered_before, waited);
            self.shared
                .pending_bytes
                .fetch_sub(bytes, Ordering::Relaxed);
            self.move_cursor(batch.end)?;
        }
    }

    /// The drain limit ended a delivery: the batch stays behind the cursor (sent again by the
    /// next run, the id deduplicates what of it did arrive), and so does everything after it.
    /// Skipping it as refused would lose every alert of an outage that lasted until the stop.
    fn stop_at_drain_limit(&self) {
        self.shared
            .stopped_at_drain_limit
            .store(true, Ordering::Relaxed);
    }

    /// Up to [`BATCH_ALERTS`] records from the cursor, moving to the next segment when this
    /// one is complete.
    fn read_batch(&mut self) -> io::Result<Batch> {
        let mut batch = Batch {
            records: Vec::new(),
            end: self.cursor,
            oldest: None,
        };
        loop {
            let path = segment_path(&self.dir, batch.end.segment);
            let mut file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(batch),
                Err(e) => return Err(e),
            };
            let mut reader = SegmentReader::new(&mut file, batch.end.offset);
            while batch.records.len() < BATCH_ALERTS {
                match reader.next_record()? {
                    Some((record, spooled_at)) => {
                        let at = reader.offset;
                        batch.oldest.get_or_insert(spooled_at);
                        batch.records.push((record, at));
                        batch.end.offset = at;
                    }
                    None => break,
                }
            }
            if batch.records.len() >= BATCH_ALERTS {
                return Ok(batch);
            }
            // The writer starts the next segment only after this one is complete.
            let next = batch.end.segment + 1;
            if !segment_path(&self.dir, next).exists() {
                return Ok(batch);
            }
            // Complete now; read what the writer may have added before it rolled.
            if let Some((record, spooled_at)) = reader.next_record()? {
                let at = reader.offset;
                batch.oldest.get_or_insert(spooled_at);
                batch.records.push((record, at));
                batch.end.offset = at;
                continue;
            }
            batch.end = Cursor {
                segment: next,
                offset: 0,
            };
        }
    }

    /// Record the cursor (whole: write and rename) and remove segments wholly before it.
    fn move_cursor(&mut self, to: Cursor) -> io::Result<()> {
        let tmp = self.dir.join("cursor.tmp");
        fs::write(&tmp, format!("{} {}\n", to.segment, to.offset))?;
        fs::rename(&tmp, self.dir.join("cursor"))?;
        for segment in self.cursor.segment..to.segment {
            let _ = fs::remove_file(segment_path(&self.dir, segment));
        }
        self.cursor = to;
        Ok(())
    }

    /// Put the growing segment on disk (see the module docs).
    fn sync_segment(&self) {
        if let Ok(segments) = segments(&self.dir)
            && let Some(&last) = segments.last()
            && let Ok(file) = File::open(segment_path(&self.dir, last))
        {
            let _ = file.sync_data();
        }
    }
}

struct Batch {
    /// Each record and the offset just past it.
    records: Vec<(Vec<u8>, u64)>,
    /// The cursor once the batch is delivered.
    end: Cursor,
    /// When its first record was spooled (µs).
    oldest: Option<i64>,
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::shutdown::Shutdown;

    /// Records what it delivers; refuses every batch while `down`.
    #[derive(Clone, Default)]
    struct Receiver {
        got: Arc<Mutex<Vec<String>>>,
        down: bool,
    }

    impl Transport for Receiver {
        fn send(&mut self, line: &[u8]) -> io::Result<()> {
            if !self.down {
                let text = String::from_utf8_lossy(line).into_owned();
                self.got.lock().expect("lock").push(text);
            }
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            if self.down {
                return Err(io::Error::other("connection refused"));
            }
            Ok(())
        }
        fn delivers_on_flush(&self) -> bool {
            true
        }
    }

    fn alerts(from: u64, n: u64) -> Vec<Alert> {
        (from..from + n).map(crate::sink::tests::alert).collect()
    }

    fn ids(lines: &[String]) -> Vec<String> {
        lines
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("alert JSON");
                v["id"].as_str().expect("id").to_string()
            })
            .collect()
    }

    fn open(dir: &Path, transport: Receiver, max_bytes: u64) -> SpooledSink {
        SpooledSink::open(
            "test".into(),
            dir.to_path_buf(),
            transport,
            Encoding::Json,
            max_bytes,
            DrainClock::default(),
            SinkMetrics::default(),
        )
        .expect("open spool")
    }

    #[test]
    fn every_alert_is_delivered_once_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        let receiver = Receiver::default();
        let mut sink = open(dir.path(), receiver.clone(), DEFAULT_SPOOL_BYTES);
        for batch in 0..30 {
            sink.write(&alerts(batch * 10, 10)).expect("spooled");
        }
        let report = Box::new(sink).close();
        assert_eq!(
            (report.alerts, report.delivered, report.spooled),
            (300, 300, 0)
        );
        let got = receiver.got.lock().expect("lock").clone();
        let expected: Vec<String> = alerts(0, 300).iter().map(|a| a.id.clone()).collect();
        assert_eq!(ids(&got), expected);
    }

    /// The receiver is down for the whole first run: its alerts wait in the spool, and the
    /// next run delivers them before anything new, none lost, none twice.
    #[test]
    fn alerts_a_down_receiver_missed_are_delivered_by_the_next_run() {
        let dir = tempfile::tempdir().expect("dir");
        let down = Receiver {
            down: true,
            ..Receiver::default()
        };
        let mut sink = open(dir.path(), down, DEFAULT_SPOOL_BYTES);
        // The first refusal ends the sink's thread; the spool keeps what it was given.
        let _ = sink.write(&alerts(0, 5));
        let report = Box::new(sink).close();
        assert_eq!(report.delivered, 0);
        assert_eq!(report.spooled, 5);
        assert!(report.failed.is_some());

        let receiver = Receiver::default();
        let mut sink = open(dir.path(), receiver.clone(), DEFAULT_SPOOL_BYTES);
        assert_eq!(sink.carried(), 5);
        sink.write(&alerts(5, 3)).expect("spooled");
        let report = Box::new(sink).close();
        assert_eq!((report.alerts, report.delivered, report.spooled), (8, 8, 0));
        let expected: Vec<String> = alerts(0, 8).iter().map(|a| a.id.clone()).collect();
        assert_eq!(ids(&receiver.got.lock().expect("lock")), expected);

        // Delivered is delivered: a third run sends nothing again.
        let receiver = Receiver::default();
        let sink = open(dir.path(), receiver.clone(), DEFAULT_SPOOL_BYTES);
        assert_eq!(sink.carried(), 0);
        let report = Box::new(sink).close();
        assert_eq!(report.delivered, 0);
        assert!(receiver.got.lock().expect("lock").is_empty());
    }

    /// A crash in the middle of an append leaves a torn record: the next run cuts it off and
    /// delivers the whole ones. A cursor file that is garbage sends the spool again from its
    /// oldest segment (repeats, never a loss).
    #[test]
    fn a_torn_record_and_a_bad_cursor_cost_repeats_never_losses() {
        let dir = tempfile::tempdir().expect("dir");
        let down = Receiver {
            down: true,
            ..Receiver::default()
        };
        let mut sink = open(dir.path(), down, DEFAULT_SPOOL_BYTES);
        let _ = sink.write(&alerts(0, 4));
        let _ = Box::new(sink).close();
        let segment = segment_path(dir.path(), 0);
        let mut file = OpenOptions::new()
            .append(true)
            .open(&segment)
            .expect("segment");
        file.write_all(&500u32.to_le_bytes()).expect("torn length");
        file.write_all(&0i64.to_le_bytes()).expect("torn time");
        file.write_all(b"{\"id\":").expect("torn body");
        drop(file);
        fs::write(dir.path().join("cursor"), "garbage").expect("cursor");

        let receiver = Receiver::default();
        let sink = open(dir.path(), receiver.clone(), DEFAULT_SPOOL_BYTES);
        assert_eq!(sink.carried(), 4);
        let report = Box::new(sink).close();
        assert_eq!(report.delivered, 4);
        let expected: Vec<String> = alerts(0, 4).iter().map(|a| a.id.clone()).collect();
        assert_eq!(ids(&receiver.got.lock().expect("lock")), expected);
    }

    /// A power loss can leave the cursor (renamed in) past the end of its segment (whose last
    /// records were not yet on disk). The next run must not read its new records from that
    /// offset, in the middle of one: it reads them from the segment's end.
    #[test]
    fn a_cursor_past_the_end_of_its_segment_loses_no_new_alert() {
        let dir = tempfile::tempdir().expect("dir");
        let receiver = Receiver::default();
        let mut sink = open(dir.path(), receiver.clone(), DEFAULT_SPOOL_BYTES);
        sink.write(&alerts(0, 4)).expect("spooled");
        let report = Box::new(sink).close();
        assert_eq!(report.delivered, 4);
        // The disk kept only the first two records.
        let segment = segment_path(dir.path(), 0);
        let mut file = File::open(&segment).expect("segment");
        let mut reader = SegmentReader::new(&mut file, 0);
        for _ in 0..2 {
            reader.next_record().expect("read").expect("a record");
        }
        let two = reader.offset;
        OpenOptions::new()
            .write(true)
            .open(&segment)
            .expect("segment")
            .set_len(two)
            .expect("cut");

        let after = Receiver::default();
        let mut sink = open(dir.path(), after.clone(), DEFAULT_SPOOL_BYTES);
        sink.write(&alerts(10, 3)).expect("spooled");
        let report = Box::new(sink).close();
        assert_eq!((report.delivered, report.spooled), (3, 0), "{report:?}");
        let expected: Vec<String> = alerts(10, 3).iter().map(|a| a.id.clone()).collect();
        assert_eq!(ids(&after.got.lock().expect("lock")), expected);
    }

    /// A flood of alerts while the receiver is down fills the spool to its bound, not the
    /// disk: the rest are dropped and counted.
    #[test]
    fn a_full_spool_drops_and_counts() {
        let dir = tempfile::tempdir().expect("dir");
        let down = Receiver {
            down: true,
            ..Receiver::default()
        };
        let mut sink = open(dir.path(), down, 8 << 10);
        let mut given = 0;
        for batch in 0..100 {
            let _ = sink.write(&alerts(batch * 10, 10));
            given += 10;
        }
        assert!(sink.dropped() > 0);
        let on_disk: u64 = segments(dir.path())
            .expect("segments")
            .iter()
            .map(|&s| fs::metadata(segment_path(dir.path(), s)).map_or(0, |m| m.len()))
            .sum();
        assert!(on_disk <= 8 << 10, "{on_disk}");
        let report = Box::new(sink).close();
        assert_eq!(report.alerts, given);
        assert_eq!(report.spooled + report.dropped, given);
    }

    /// Past a segment's size the spool starts another, and delivered segments are removed.
    #[test]
    fn segments_roll_and_delivered_ones_are_removed() {
        let dir = tempfile::tempdir().expect("dir");
        let receiver = Receiver::default();
        let mut sink = open(dir.path(), receiver.clone(), DEFAULT_SPOOL_BYTES);
        let mut long = alerts(0, 1);
        long[0].summary = "x".repeat(64 << 10);
        let n = (SEGMENT_BYTES / (64 << 10)) * 3;
        for i in 0..n {
            let mut a = long.clone();
            a[0].id = format!("{i:032x}");
            sink.write(&a).expect("spooled");
        }
        assert!(sink.segment >= 2, "{}", sink.segment);
        let report = Box::new(sink).close();
        assert_eq!(report.delivered, n);
        assert_eq!(receiver.got.lock().expect("lock").len() as u64, n);
        let left = segments(dir.path()).expect("segments");
        assert!(left.len() <= 1, "{left:?}");
    }

    /// A receiver that refuses one batch for good (a 400) loses that batch, counted, and
    /// takes the next: one poison alert does not block the spool.
    #[test]
    fn a_batch_refused_for_good_is_skipped_not_retried_forever() {
        struct RefusesFirst {
            got: Arc<Mutex<Vec<String>>>,
            refused: bool,
            batch: Vec<String>,
        }
        impl Transport for RefusesFirst {
            fn send(&mut self, line: &[u8]) -> io::Result<()> {
                self.batch.push(String::from_utf8_lossy(line).into_owned());
                Ok(())
            }
            fn flush(&mut self) -> io::Result<()> {
                let batch = std::mem::take(&mut self.batch);
                if !self.refused {
                    self.refused = true;
                    return Err(io::Error::other("400 Bad Request"));
                }
                self.got.lock().expect("lock").extend(batch);
                Ok(())
            }
            fn delivers_on_flush(&self) -> bool {
                true
            }
            fn stops_on_error(&self) -> bool {
                false
            }
        }
        let dir = tempfile::tempdir().expect("dir");
        let got = Arc::new(Mutex::new(Vec::new()));
        let transport = RefusesFirst {
            got: got.clone(),
            refused: false,
            batch: Vec::new(),
        };
        let mut sink = SpooledSink::open(
            "refuses".into(),
            dir.path().to_path_buf(),
            transport,
            Encoding::Json,
            DEFAULT_SPOOL_BYTES,
            DrainClock::default(),
            SinkMetrics::default(),
        )
        .expect("open");
        sink.write(&alerts(0, 1)).expect("spooled");
        wait_until(|| sink.shared.pending.load(Ordering::Relaxed) == 0);
        sink.write(&alerts(1, 2)).expect("spooled");
        let report = Box::new(sink).close();
        assert_eq!((report.alerts, report.delivered, report.spooled), (3, 2, 0));
        assert_eq!(report.refused, 1);
        let expected: Vec<String> = alerts(1, 2).iter().map(|a| a.id.clone()).collect();
        assert_eq!(ids(&got.lock().expect("lock")), expected);
    }

    fn wait_until(done: impl Fn() -> bool) {
        while !done() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Two processes on one spool would interleave records and deliver twice: the second is
    /// refused while the first holds it, and let in once it is gone.
    #[test]
    fn one_process_per_spool() {
        let dir = tempfile::tempdir().expect("dir");
        let first = open(dir.path(), Receiver::default(), DEFAULT_SPOOL_BYTES);
        let second = SpooledSink::open(
            "test".into(),
            dir.path().to_path_buf(),
            Receiver::default(),
            Encoding::Json,
            DEFAULT_SPOOL_BYTES,
            DrainClock::default(),
            SinkMetrics::default(),
        );
        let err = second.err().expect("refused while the first is open");
        assert!(err.to_string().contains("another secpipe"), "{err}");
        let _ = Box::new(first).close();
        let third = open(dir.path(), Receiver::default(), DEFAULT_SPOOL_BYTES);
        let _ = Box::new(third).close();
    }

    /// After a stop signal the spool waits at most the drain limit for a receiver that hangs,
    /// and what it could not deliver stays for the next run.
    #[test]
    fn a_hanging_receiver_costs_at_most_the_drain_limit() {
        struct Hangs(crossbeam_channel::Receiver<()>);
        impl Transport for Hangs {
            fn send(&mut self, _line: &[u8]) -> io::Result<()> {
                let _ = self.0.recv();
                Err(io::Error::other("released"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let dir = tempfile::tempdir().expect("dir");
        let (release, hang) = bounded::<()>(0);
        let shutdown = Shutdown::new();
        let mut sink = SpooledSink::open(
            "hangs".into(),
            dir.path().to_path_buf(),
            Hangs(hang),
            Encoding::Json,
            DEFAULT_SPOOL_BYTES,
            DrainClock::new(shutdown.clone(), Duration::ZERO),
            SinkMetrics::default(),
        )
        .expect("open");
        sink.write(&alerts(0, 3)).expect("spooled");
        shutdown.trigger();
        let report = Box::new(sink).close();
        assert!(report.gave_up);
        assert_eq!((report.delivered, report.spooled), (0, 3));
        drop(release);
    }
}
