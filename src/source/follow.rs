//! `--follow`: read a file as it grows and across rotation, like `tail -F`.
//!
//! One thread per followed path. It reads in big buffers until end of file, then polls every
//! [`POLL`] (no inotify: polling a stat is cheap, works on every filesystem, including NFS
//! and bind mounts where inotify events never arrive, and a tenth of a second of latency is
//! nothing next to a detection window). At each end of file it asks what the path is now:
//!
//! - **another inode** (rename-and-create rotation): the old file is drained to its end first
//!   (the writer may have appended after our last read, until it reopened), then the new file
//!   is read from its start;
//! - **no file** (renamed, not yet recreated): keep the old one open and wait;
//! - **the same inode, shorter than what we read, or with different first bytes**
//!   (copytruncate): read it again from the start;
//! - **nothing there yet**: wait for it to appear.
//!
//! With `--state`, batches carry an acknowledgement of a [`Checkpoint`] (the byte after the last
//! complete line, and its number), so a restart can resume exactly. A last line without its
//! newline is not sent until the newline arrives: at shutdown it stays unread and a restart
//! reads it whole.
//!
//! [`FollowedFiles`] is the [`Source`] of a run's followed paths.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::checkpoint::{Checkpoint, CheckpointStore, FINGERPRINT_BYTES, FileKey, SharedStore};
use super::files::READ_BUFFER;
use super::{Liveness, ReadReport, Source, SourceContext, SourceHandle};
use crate::event::now_micros;
use crate::frame::ack::PositionKeeper;
use crate::frame::{LineBatch, LineFramer};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// How often an idle file is looked at again.
pub const POLL: Duration = Duration::from_millis(200);

/// One followed path and where to start in it.
pub struct Follower {
    path: PathBuf,
    /// The `source` name of its events: the path as given.
    name: Arc<str>,
    max_line: usize,
    /// From `--state`: used when the file at `path` is still the checkpointed one.
    resume: Option<Checkpoint>,
}

/// The file currently being read.
struct OpenFile {
    file: File,
    key: FileKey,
    /// Bytes read so far.
    offset: u64,
    /// Offset just after the last complete line (what a checkpoint may record).
    line_end: u64,
    /// Number of the last complete line.
    line: u64,
    framer: LineFramer,
}

/// Where a follower's lines go and what it answers to.
struct Outlet {
    tx: Sender<LineBatch>,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
    /// `--state`: where acknowledged positions are recorded.
    state: Option<SharedStore>,
    /// Bytes read, for the summary.
    bytes: std::cell::Cell<u64>,
    /// Bytes cut from lines longer than `--max-line`, for the summary.
    dropped_bytes: std::cell::Cell<u64>,
}

impl Outlet {
    /// Send one batch; false when the pipeline is gone.
    fn send(&self, batch: LineBatch) -> bool {
        self.metrics.lines_read(&batch.source, batch.len() as u64);
        self.tx.send(batch).is_ok()
    }
}

/// What one pass over the open file found.
enum Pass {
    /// Read to the end of file.
    AtEnd,
    /// The pipeline is gone or shutting down: stop.
    Stop,
    /// The file was cut and rewritten under the read (copytruncate): read it from the start.
    Cut,
}

impl Follower {
    pub fn new(path: PathBuf, max_line: usize) -> Follower {
        Follower {
            name: path.display().to_string().into(),
            path,
            max_line,
            resume: None,
        }
    }

    /// The `source` name of its events (the path as given).
    pub fn name(&self) -> Arc<str> {
        self.name.clone()
    }

    /// Resume from `cp` when the file is still the one it names.
    pub fn resume_from(mut self, cp: Option<Checkpoint>) -> Follower {
        self.resume = cp;
        self
    }

    /// Open the file at the path, resuming from the checkpoint when it names this file.
    fn open(&mut self) -> io::Result<OpenFile> {
        let mut file = File::open(&self.path)?;
        let key = FileKey::of(&file)?;
        let (mut offset, mut line) = (0, 0);
        // The checkpoint applies once, to the file it was taken from; a later file at the same
        // path (after rotation) starts at 0.
        if let Some(cp) = self.resume.take()
            && cp.resumes_in(&file)?
        {
            file.seek(SeekFrom::Start(cp.offset))?;
            (offset, line) = (cp.offset, cp.line);
        }
        Ok(OpenFile {
            file,
            key,
            offset,
            line_end: offset,
            line,
            framer: LineFramer::new(self.max_line),
        })
    }

    /// Read `open` to its end, sending batches.
    fn read_to_end(&self, open: &mut OpenFile, buf: &mut [u8], out: &Outlet) -> Pass {
        loop {
            let n = match open.file.read(buf) {
                Ok(0) => return Pass::AtEnd,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // A read error on a followed file (say, a vanished NFS server) is not the
                    // end of the service: report it, and the next poll looks at the path again.
                    crate::report::warn(&format!("{}: {e}", self.name));
                    return Pass::AtEnd;
                }
            };
            // A copytruncate between the last look at the path and this read leaves our offset
            // inside the writer's new content, and the chunk would be the middle of it taken
            // for a continuation of the old. The file's first bytes tell: the new content does
            // not start like the old did. Such a chunk is dropped (it is read again from the
            // start); one read just before the cut is dropped too, as the two cannot be told
            // apart, and copytruncate keeps those lines in the rotated copy.
            if !open.key.same_content(&open.file).unwrap_or(true) {
                return Pass::Cut;
            }
            let chunk = &buf[..n];
            let chunk_start = open.offset;
            open.offset += n as u64;
            out.metrics.bytes_read(&self.name, n as u64);
            out.bytes.set(out.bytes.get() + n as u64);
            let now = now_micros();
            let mut batches = Vec::new();
            let mut batch = LineBatch::new(self.name.clone(), open.line + 1, now);
            let dropped_before = open.framer.dropped_bytes;
            open.framer.push(chunk, |line, truncated| {
                batch.push(line, truncated);
                if batch.is_full() {
                    let next = LineBatch::new(batch.source.clone(), batch.next_line(), now);
                    batches.push(std::mem::replace(&mut batch, next));
                }
            });
            // Cut bytes are counted when cut, as for files read once: a flood of over-long
            // lines must not show as "0 dropped bytes".
            let dropped = open.framer.dropped_bytes - dropped_before;
            out.metrics.dropped_bytes("truncated", dropped);
            out.dropped_bytes.set(out.dropped_bytes.get() + dropped);
            if !batch.is_empty() {
                batches.push(batch);
            }
            // Every line that ended in this chunk ended at or before its last newline, so that
            // is where a restart may pick up once these batches are done.
            if let Some(last) = batches.last_mut() {
                open.line = last.next_line() - 1;
                if let Some(i) = memchr::memrchr(b'\n', chunk) {
                    open.line_end = chunk_start + i as u64 + 1;
                }
                if usize::from(open.key.fingerprint_len) < FINGERPRINT_BYTES
                    && let Ok(key) = FileKey::of(&open.file)
                {
                    // The file was shorter than a fingerprint when opened; a longer one now
                    // identifies it better for the next restart.
                    open.key = key;
                }
                last.ack = out.state.as_ref().map(|state| {
                    state.ack(Checkpoint {
                        path: self.name.clone(),
                        key: open.key.clone(),
                        offset: open.line_end,
                        line: open.line,
                    })
                });
            }
            for batch in batches {
                if !out.send(batch) {
                    return Pass::Stop;
                }
            }
            // Checked only between whole chunks, so a stop never splits a chunk's batches and
            // the last checkpoint sent is exactly where reading stopped.
            if out.shutdown.is_triggered() {
                return Pass::Stop;
            }
        }
    }

    /// Follow the path until shutdown or until the pipeline goes away; what was read.
    fn run(self, out: Outlet) -> ReadReport {
        self.follow(&out);
        let mut report = ReadReport {
            inputs: 1,
            ..ReadReport::default()
        };
        report.frames.bytes = out.bytes.get();
        report.frames.dropped_bytes = out.dropped_bytes.get();
        report
    }

    fn follow(mut self, out: &Outlet) {
        let shutdown = &out.shutdown;
        let mut buf = vec![0u8; READ_BUFFER];
        let mut current: Option<OpenFile> = None;
        let mut reported_missing = false;
        loop {
            if shutdown.is_triggered() {
                return;
            }
            let Some(open) = current.as_mut() else {
                match self.open() {
                    Ok(open) => current = Some(open),
                    Err(e) => {
                        if !reported_missing {
                            crate::report::warn(&format!(
                                "{}: {e}; waiting for it to appear",
                                self.name
                            ));
                            reported_missing = true;
                        }
                        if shutdown.sleep(POLL) {
                            return;
                        }
                    }
                }
                continue;
            };
            // Look before reading: after a copytruncate the writer may already have written
            // past our old offset, and reading on from there would take the middle of the new
            // content for a continuation of the old.
            match self.what_changed(open) {
                Change::Nothing => {}
                Change::Rotated => {
                    // Drain the old file: the writer may have appended between our last read
                    // and its reopen. Then start on the new file.
                    // A cut of the renamed file is not ours to follow any more: what was
                    // read of it is sent, and the new file is next either way.
                    if let Pass::Stop = self.read_to_end(open, &mut buf, out) {
                        return;
                    }
                    if !self.send_partial_line(open, out) {
                        return;
                    }
                    current = None;
                    reported_missing = false;
                    continue;
                }
                Change::Truncated => {
                    if !self.read_again_from_the_start(open, out) {
                        current = None;
                        continue;
                    }
                }
            }
            match self.read_to_end(open, &mut buf, out) {
                Pass::Stop => return,
                // Straight back to the top of the loop: it finds the cut and starts over.
                Pass::Cut => continue,
                Pass::AtEnd => {}
            }
            if shutdown.sleep(POLL) {
                return;
            }
        }
    }

    /// After a truncation: finish the partial line of the old content, then start over at byte
    /// 0 with a new key. False when the file must be opened again (or the pipeline is gone).
    fn read_again_from_the_start(&self, open: &mut OpenFile, out: &Outlet) -> bool {
        if !self.send_partial_line(open, out) {
            return false;
        }
        if open.file.seek(SeekFrom::Start(0)).is_err() {
            return false;
        }
        crate::report::warn(&format!("{}: truncated; reading from the start", self.name));
        open.offset = 0;
        open.line_end = 0;
        open.line = 0;
        open.framer = LineFramer::new(self.max_line);
        if let Ok(key) = FileKey::of(&open.file) {
            open.key = key;
        }
        true
    }

    /// A last line without a newline in a file we leave will never be finished: it is still a
    /// line (DESIGN: nothing is lost silently), so send it on its own. False when the pipeline
    /// is gone.
    fn send_partial_line(&self, open: &mut OpenFile, out: &Outlet) -> bool {
        let mut batch = LineBatch::new(self.name.clone(), open.line + 1, now_micros());
        open.framer
            .finish(|line, truncated| batch.push(line, truncated));
        batch.is_empty() || out.send(batch)
    }

    fn what_changed(&self, open: &OpenFile) -> Change {
        match std::fs::metadata(&self.path) {
            Ok(meta) if !open.key.same_inode(&meta) => Change::Rotated,
            Ok(meta) => {
                let rewritten = !open.key.same_content(&open.file).unwrap_or(true);
                if meta.len() < open.offset || rewritten {
                    Change::Truncated
                } else {
                    Change::Nothing
                }
            }
            // Renamed away and not recreated yet: keep reading the old file.
            Err(_) => Change::Nothing,
        }
    }
}

enum Change {
    Nothing,
    Rotated,
    Truncated,
}

/// The followed paths of a run (`--follow`), one thread each, and their positions
/// (`--state`). With no path (`--follow` over stdin alone) it follows nothing but still makes
/// the run live and keeps `--state`.
pub struct FollowedFiles {
    paths: Vec<PathBuf>,
    state: Option<SharedStore>,
}

impl FollowedFiles {
    /// Open the state directory, if any, before anything is read: a bad one is a usage error.
    pub fn new(
        paths: Vec<PathBuf>,
        state_dir: Option<&std::path::Path>,
    ) -> Result<FollowedFiles, String> {
        let state = match state_dir {
            Some(dir) => Some(SharedStore::new(
                CheckpointStore::open(dir)
                    .map_err(|e| format!("--state {}: {e}", dir.display()))?,
            )),
            None => None,
        };
        Ok(FollowedFiles { paths, state })
    }
}

impl Source for FollowedFiles {
    fn liveness(&self) -> Liveness {
        Liveness::Live
    }

    fn position_keeper(&mut self) -> Option<Box<dyn PositionKeeper>> {
        self.state
            .as_ref()
            .map(|state| Box::new(state.clone()) as Box<dyn PositionKeeper>)
    }

    fn start(self: Box<Self>, ctx: &SourceContext) -> Result<SourceHandle, String> {
        if let Some(state) = &self.state {
            state.count_saves_in(ctx.metrics.clone());
        }
        let mut handles = Vec::new();
        for path in self.paths {
            let follower = Follower::new(path, ctx.max_line);
            let resume = self.state.as_ref().and_then(|s| s.get(&follower.name()));
            let out = Outlet {
                tx: ctx.tx.clone(),
                shutdown: ctx.shutdown.clone(),
                metrics: ctx.metrics.clone(),
                state: self.state.clone(),
                bytes: std::cell::Cell::new(0),
                dropped_bytes: std::cell::Cell::new(0),
            };
            let follower = follower.resume_from(resume);
            let name = format!("follow {}", follower.name);
            handles.push(SourceHandle::spawn(&name, move || follower.run(out))?);
        }
        Ok(SourceHandle::join_all(handles))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(prefix: &str, count: u64) -> String {
        (0..count)
            .map(|i| format!("{prefix} line {i}: Failed password for root from 203.0.113.7\n"))
            .collect()
    }

    fn received(rx: &crossbeam_channel::Receiver<LineBatch>) -> Vec<(u64, String)> {
        rx.try_iter()
            .flat_map(|batch| {
                batch
                    .lines()
                    .map(|(n, l, _)| (n, String::from_utf8_lossy(l).into_owned()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The race behind a copytruncate: the follower looked at the path (nothing changed), then
    /// the file was cut and rewritten longer, then it reads on from its old offset. That read
    /// lands in the middle of the new content; it must not be taken for more of the old file.
    #[test]
    fn a_cut_between_the_look_and_the_read_is_read_again_from_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        std::fs::write(&path, lines("before", 300)).expect("write");
        let mut follower = Follower::new(path.clone(), 64 * 1024);
        let (tx, rx) = crossbeam_channel::unbounded();
        let out = Outlet {
            tx,
            shutdown: Shutdown::new(),
            metrics: Arc::new(Metrics::new()),
            state: None,
            bytes: std::cell::Cell::new(0),
            dropped_bytes: std::cell::Cell::new(0),
        };
        let mut buf = vec![0u8; 4096];
        let mut open = follower.open().expect("open");
        assert!(matches!(
            follower.read_to_end(&mut open, &mut buf, &out),
            Pass::AtEnd
        ));
        assert_eq!(received(&rx).len(), 300);

        // Cut and rewrite longer: the old offset is now inside the new content.
        std::fs::write(&path, lines("after", 400)).expect("rewrite");
        assert!(matches!(
            follower.read_to_end(&mut open, &mut buf, &out),
            Pass::Cut
        ));
        assert_eq!(
            received(&rx),
            vec![],
            "nothing of the new content at the old offset"
        );

        assert!(matches!(follower.what_changed(&open), Change::Truncated));
        assert!(follower.read_again_from_the_start(&mut open, &out));
        assert!(matches!(
            follower.read_to_end(&mut open, &mut buf, &out),
            Pass::AtEnd
        ));
        let after = received(&rx);
        let want: Vec<(u64, String)> = lines("after", 400)
            .lines()
            .enumerate()
            .map(|(i, l)| (i as u64 + 1, l.to_string()))
            .collect();
        assert_eq!(after, want);
    }
}
