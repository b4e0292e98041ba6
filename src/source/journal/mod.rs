//! `--journal [MATCH…]`: the systemd journal, read through `journalctl -o json -f`, resumed
//! after a saved cursor.
//!
//! # Threads and backpressure
//! One thread (`journal`) runs `journalctl --output=json --all --no-pager [--directory=DIR]
//! --follow --lines=all [--after-cursor=C] -- MATCH…` (no shell; the matches are checked
//! first, [`matches`](mod@matches)) and reads its stdout through a small *pump* thread, so
//! that it can look at the shutdown flag while journalctl has nothing to say. Lines go on in big
//! batches like every source's; the channel is bounded, so a slow pipeline stops the reading,
//! the pipe fills and journalctl waits: the journal itself is the buffer, nothing is dropped.
//! journalctl's stderr is secpipe's.
//!
//! The lines are `journalctl -o json` objects, which the parse stage already reads (including
//! the trusted-field check of [`crate::parse::journal_trust`]); this source only frames them
//! and takes each entry's `__CURSOR` with a byte search ([`cursor`]), without parsing the JSON.
//!
//! # Positions
//! - **Resume.** With `--state DIR`, each batch carries an acknowledgement of the cursor of its
//!   last entry ([`store`]); it is saved once the batch is with the sinks and, when archiving,
//!   durable in the archive, as for followed files. A restart starts journalctl with
//!   `--after-cursor=` that cursor. After SIGTERM nothing is read twice; after SIGKILL the
//!   entries since the last save (or, when archiving, since the last sealed file) are read
//!   again: never lost.
//! - **First start** (no saved cursor): from the end of the journal, like `tail -f`: the
//!   journal may hold months of entries, and alerting now on last month's failed logins helps
//!   nobody (`journalctl -o json | secpipe` or `secpipe replay` are for old logs). The end is
//!   taken as a cursor (`journalctl --lines=1`) and saved at once, so that what is written
//!   from then on is read even if secpipe stops before the first new entry. An empty journal
//!   (or no entry matching) is read from its start, as everything in it is then new.
//! - **journalctl ends** while we run (killed, crashed, its journal directory empty): it is
//!   started again after the cursor of the last entry *sent on*, with a backoff (0.1 s
//!   doubling to [`MAX_BACKOFF`]), each time warned and counted
//!   (`secpipe_journal_total{event="journalctl_restart"}`). An entry it was in the middle of
//!   printing is not sent: the restart prints it again, whole.
//! - **An entry without a usable cursor** (a crafted journal file: the key twice, a value
//!   outside the cursor alphabet) is still sent; the position stays at the entry before, so
//!   a restart may read it again rather than skip anything. Counted
//!   (`…{event="cursor_unusable"}`).
//! - **Long entries.** `--all` keeps fields over 4 KiB (journalctl would print them as
//!   `null`); a line longer than `--max-line` is cut and counted like any other, and its
//!   cursor is still found in the part that is cut off ([`cursor::CursorScanner`]).
//!
//! # Our own entries
//! Reading the local journal, secpipe skips and counts its own entries ([`own`]).
//!
//! # Shutdown
//! On a stop the reader kills journalctl (it only reads the journal, so SIGKILL loses
//! nothing), reaps it, sends on every complete line the pipe still held, and ends; the
//! pipeline then drains and saves the cursor of the last entry done with. journalctl also
//! gets SIGKILL from the kernel if the reader thread dies (`PR_SET_PDEATHSIG`), so a killed
//! secpipe leaves no journalctl behind.

pub mod cursor;
pub mod matches;
pub mod own;
pub mod store;

use std::ffi::OsString;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use self::cursor::{CursorScanner, Found, ScanError, find_cursor};
use self::own::OwnEntries;
use self::store::{CursorStore, SharedCursor};
use super::files::READ_BUFFER;
use super::{Liveness, ReadReport, Source, SourceContext, SourceHandle};
use crate::event::now_micros;
use crate::frame::LineBatch;
use crate::frame::ack::PositionKeeper;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// The program run; found on `PATH`.
const JOURNALCTL: &str = "journalctl";

/// How often a reader waiting on journalctl looks at the shutdown flag.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// The first pause before journalctl is started again.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest pause between two starts of journalctl.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// `secpipe_journal_total{event=…}`: journalctl restarts, entries without a usable cursor.
pub static JOURNAL_EVENTS: LazyLock<Family<Vec<(&'static str, String)>, Counter>> =
    LazyLock::new(Family::default);

fn count(event: &str) {
    JOURNAL_EVENTS
        .get_or_create(&vec![("event", event.to_string())])
        .inc();
}

/// `--journal [MATCH…]` and `--journal-dir DIR`.
#[derive(Clone, Debug, Default)]
pub struct JournalConfig {
    pub matches: Vec<String>,
    pub dir: Option<PathBuf>,
}

/// The journal as a [`Source`].
pub struct JournalSource {
    config: JournalConfig,
    /// The `source` name of its events: `journal`, or `journal:DIR`.
    name: Arc<str>,
    cursor: Option<SharedCursor>,
}

impl JournalSource {
    /// Check the matches and open the state directory, if any, before anything is read: a
    /// bad match or state is a usage error.
    pub fn new(config: JournalConfig, state_dir: Option<&Path>) -> Result<JournalSource, String> {
        matches::check_matches(&config.matches)?;
        let (name, journal) = match &config.dir {
            Some(dir) => (
                format!("journal:{}", dir.display()),
                format!("dir:{}", dir.display()),
            ),
            None => ("journal".to_string(), "local".to_string()),
        };
        let cursor = match state_dir {
            Some(dir) => Some(SharedCursor::new(
                CursorStore::open(dir).map_err(|e| format!("--state {}: {e}", dir.display()))?,
                &journal,
            )),
            None => None,
        };
        Ok(JournalSource {
            config,
            name: name.into(),
            cursor,
        })
    }
}

impl Source for JournalSource {
    fn liveness(&self) -> Liveness {
        Liveness::Live
    }

    fn position_keeper(&mut self) -> Option<Box<dyn PositionKeeper>> {
        self.cursor
            .as_ref()
            .map(|c| Box::new(c.keeper()) as Box<dyn PositionKeeper>)
    }

    fn start(self: Box<Self>, ctx: &SourceContext) -> Result<SourceHandle, String> {
        if let Some(cursor) = &self.cursor {
            cursor.count_saves_in(ctx.metrics.clone());
        }
        let own = match self.config.dir {
            // Another machine's journal: it holds none of our entries, and its sender writes
            // every field (see `own`).
            Some(_) => None,
            None => {
                let own = OwnEntries::of_this_process();
                if own.is_none() {
                    crate::report::warn(
                        "--journal: cannot read this boot's id; secpipe's own entries are read too",
                    );
                }
                own
            }
        };
        let mut reader = Reader {
            config: self.config,
            name: self.name,
            max_line: ctx.max_line.max(1),
            saved: self.cursor,
            last_sent: None,
            line: 0,
            own,
            carry: Vec::new(),
            carry_truncated: false,
            scanner: CursorScanner::default(),
            warned_cursor: false,
            report: ReadReport {
                inputs: 1,
                ..ReadReport::default()
            },
        };
        // The start position is decided here, so a missing journalctl is an error of the
        // run's start rather than a warning repeated every ten seconds.
        let start = reader.first_start()?;
        let out = Outlet {
            tx: ctx.tx.clone(),
            shutdown: ctx.shutdown.clone(),
            metrics: ctx.metrics.clone(),
        };
        SourceHandle::spawn("journal", move || reader.run(start, out))
    }
}

/// Where journalctl starts.
#[derive(Clone, Debug, PartialEq, Eq)]
enum StartAt {
    /// After this entry.
    After(String),
    /// At the journal's first entry.
    Beginning,
}

struct Outlet {
    tx: crossbeam_channel::Sender<LineBatch>,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
}

/// The reading thread's state.
struct Reader {
    config: JournalConfig,
    name: Arc<str>,
    max_line: usize,
    /// `--state`: where acknowledged cursors are kept.
    saved: Option<SharedCursor>,
    /// The cursor of the last entry sent on: where a restarted journalctl continues.
    last_sent: Option<String>,
    /// Lines sent so far (the `line` of the next is one more).
    line: u64,
    own: Option<OwnEntries>,
    /// The start of a line whose newline has not come yet (at most `max_line` bytes).
    carry: Vec<u8>,
    /// The carried line is longer than `max_line`.
    carry_truncated: bool,
    /// The cursor of the carried line, from all of its bytes.
    scanner: CursorScanner,
    warned_cursor: bool,
    report: ReadReport,
}

/// What reading one journalctl's output ended with.
enum Ended {
    /// journalctl ended by itself (or could not start): start it again.
    Exited,
    /// Shutdown, or the pipeline is gone.
    Stop,
}

impl Reader {
    /// Where the first journalctl of this run starts: after the saved cursor, else after the
    /// journal's current last entry (saved at once), else at the beginning of an empty
    /// journal.
    fn first_start(&mut self) -> Result<StartAt, String> {
        if let Some(cursor) = self.saved.as_ref().and_then(SharedCursor::get) {
            self.last_sent = Some(cursor.clone());
            return Ok(StartAt::After(cursor));
        }
        let mut probe = self.command(None);
        // Only the cursor (journalctl adds the timestamps and boot id): a huge last entry
        // costs nothing here.
        probe.args(["--lines=1", "--output-fields=__CURSOR"]);
        probe.arg("--").args(&self.config.matches);
        probe.stdin(Stdio::null());
        let output = probe
            .output()
            .map_err(|e| format!("--journal: cannot run {JOURNALCTL}: {e}"))?;
        if !output.status.success() || !output.stderr.is_empty() {
            // No files yet, or no permission (then journalctl shows only the user's own
            // entries): say so, in journalctl's words, before reading.
            let said = String::from_utf8_lossy(&output.stderr);
            crate::report::warn(&format!(
                "--journal: journalctl ({}): {}",
                output.status,
                said.trim().escape_debug()
            ));
        }
        let last =
            output
                .stdout
                .split(|&b| b == b'\n')
                .rev()
                .find_map(|line| match find_cursor(line) {
                    Found::One(c) => Some(String::from_utf8_lossy(c).into_owned()),
                    _ => None,
                });
        match last {
            Some(cursor) => {
                if let Some(saved) = &self.saved {
                    // Nothing is pending before it: it may be kept at once.
                    saved.ack(cursor.clone()).acknowledge();
                }
                self.last_sent = Some(cursor.clone());
                Ok(StartAt::After(cursor))
            }
            None => Ok(StartAt::Beginning),
        }
    }

    /// `journalctl --output=json --all --no-pager [--directory=DIR] [--follow]`.
    fn command(&self, follow: Option<&StartAt>) -> Command {
        let mut cmd = Command::new(JOURNALCTL);
        cmd.args(["--output=json", "--all", "--no-pager"]);
        if let Some(dir) = &self.config.dir {
            let mut arg = OsString::from("--directory=");
            arg.push(dir);
            cmd.arg(arg);
        }
        match follow {
            Some(StartAt::After(cursor)) => {
                // `--follow` alone would print only the first 10 entries after the cursor
                // (its default `--lines=10` applies there too), then follow.
                cmd.args(["--follow", "--lines=all"])
                    .arg(format!("--after-cursor={cursor}"));
            }
            Some(StartAt::Beginning) => {
                cmd.args(["--follow", "--lines=all"]);
            }
            None => {}
        }
        cmd
    }

    /// Start journalctl at `start`, its stdout piped, dying with this thread.
    fn spawn(&self, start: &StartAt) -> io::Result<Child> {
        let mut cmd = self.command(Some(start));
        cmd.arg("--").args(&self.config.matches);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        use std::os::unix::process::CommandExt;
        // A group of its own: a Ctrl-C at the terminal (SIGINT to the foreground group) goes
        // to secpipe alone, which then stops journalctl itself, after taking what it wrote.
        cmd.process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent; it is all
        // the child runs between fork and exec. It makes the kernel kill journalctl when the
        // thread that started it ends, including when secpipe is SIGKILLed, so no reader of
        // the journal is left behind.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn()
    }

    fn run(mut self, first: StartAt, out: Outlet) -> ReadReport {
        let mut start = first;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let sent_before = self.line;
            match self.read_one_journalctl(&start, &out) {
                Ended::Stop => break,
                Ended::Exited => {}
            }
            if out.shutdown.is_triggered() {
                break;
            }
            if self.line > sent_before {
                // It ran and delivered: a new failure starts the backoff over.
                backoff = FIRST_BACKOFF;
            }
            count("journalctl_restart");
            crate::report::warn(&format!(
                "--journal: journalctl ended; starting it again in {backoff:?} after the last \
                 entry read"
            ));
            if out.shutdown.sleep(backoff) {
                break;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            start = match &self.last_sent {
                Some(cursor) => StartAt::After(cursor.clone()),
                None => StartAt::Beginning,
            };
        }
        self.report
    }

    /// Run one journalctl from `start` until it ends or shutdown.
    fn read_one_journalctl(&mut self, start: &StartAt, out: &Outlet) -> Ended {
        let mut child = match self.spawn(start) {
            Ok(child) => child,
            Err(e) => {
                crate::report::warn(&format!("--journal: cannot run {JOURNALCTL}: {e}"));
                return Ended::Exited;
            }
        };
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Ended::Exited;
        };
        let chunks = pump(stdout);
        self.forget_partial_line();
        let mut ended = Ended::Exited;
        loop {
            match chunks.recv_timeout(CHECK_EVERY) {
                Ok(Ok(chunk)) => {
                    if !self.take(&chunk, out) {
                        ended = Ended::Stop;
                        break;
                    }
                }
                Ok(Err(e)) => {
                    crate::report::warn(&format!("--journal: reading journalctl: {e}"));
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            // Looked at after every chunk, not only when journalctl is quiet: one that never
            // pauses (a flood, a long backlog) would otherwise keep the reader from a stop.
            if out.shutdown.is_triggered() {
                // Stop journalctl, then send on what it had already written: the pipe
                // still holds it after the kill, and the pump reads it to the end.
                let _ = child.kill();
                for chunk in chunks.iter() {
                    match chunk {
                        Ok(chunk) if self.take(&chunk, out) => {}
                        _ => break,
                    }
                }
                ended = Ended::Stop;
                break;
            }
        }
        if matches!(ended, Ended::Stop) {
            let _ = child.kill();
        }
        match child.wait() {
            Ok(status) if matches!(ended, Ended::Exited) => {
                crate::report::warn(&format!("--journal: journalctl exited: {status}"));
            }
            Ok(_) => {}
            Err(e) => crate::report::warn(&format!("--journal: journalctl: {e}")),
        }
        ended
    }

    /// An unfinished line of an earlier journalctl will never be finished: its entry comes
    /// again, whole, from the next journalctl (after the last cursor sent).
    fn forget_partial_line(&mut self) {
        self.carry.clear();
        self.carry_truncated = false;
        self.scanner = CursorScanner::default();
    }

    /// Frame `chunk` and send its complete lines on; false when the pipeline is gone.
    fn take(&mut self, chunk: &[u8], out: &Outlet) -> bool {
        out.metrics.bytes_read(&self.name, chunk.len() as u64);
        self.report.frames.bytes += chunk.len() as u64;
        let now = now_micros();
        let mut lines = Lines {
            batches: Vec::new(),
            batch: LineBatch::new(self.name.clone(), self.line + 1, now),
            now,
            cursor: None,
            own: 0,
            dropped_bytes: 0,
        };
        let mut rest = chunk;
        while !rest.is_empty() {
            let (part, complete) = match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    let part = &rest[..i];
                    rest = &rest[i + 1..];
                    (part, true)
                }
                None => (std::mem::take(&mut rest), false),
            };
            if self.carry.is_empty() && !self.carry_truncated && complete {
                // The common case: the whole line is in this chunk.
                let cursor = match find_cursor(part) {
                    Found::One(c) => Ok(c.to_vec()),
                    Found::Missing => Err(ScanError::Missing),
                    Found::Ambiguous => Err(ScanError::Ambiguous),
                    Found::Invalid => Err(ScanError::Invalid),
                };
                self.line_done(part, false, cursor, &mut lines);
                continue;
            }
            self.scanner.push(part);
            let room = self.max_line - self.carry.len();
            if part.len() > room {
                self.carry_truncated = true;
                self.carry.extend_from_slice(&part[..room]);
                lines.dropped_bytes += (part.len() - room) as u64;
            } else {
                self.carry.extend_from_slice(part);
            }
            if complete {
                let cursor = self.scanner.finish();
                let line = std::mem::take(&mut self.carry);
                let truncated = std::mem::replace(&mut self.carry_truncated, false);
                self.line_done(&line, truncated, cursor, &mut lines);
                self.carry = line;
                self.carry.clear();
            }
        }
        self.send(lines, out)
    }

    /// One complete line (without its newline) and its cursor.
    fn line_done(
        &mut self,
        line: &[u8],
        truncated: bool,
        cursor: Result<Vec<u8>, ScanError>,
        lines: &mut Lines,
    ) {
        match cursor {
            Ok(c) => lines.cursor = Some(String::from_utf8_lossy(&c).into_owned()),
            Err(why) => {
                count("cursor_unusable");
                if !self.warned_cursor {
                    self.warned_cursor = true;
                    crate::report::warn(&format!(
                        "--journal: an entry without a usable __CURSOR ({why:?}); it is read, \
                         and the position stays at the entry before it (counted in \
                         secpipe_journal_total)"
                    ));
                }
            }
        }
        if self.own.as_ref().is_some_and(|own| own.is_own(line)) {
            lines.own += 1;
            return;
        }
        let (line, truncated) = if line.len() > self.max_line {
            lines.dropped_bytes += (line.len() - self.max_line) as u64;
            (&line[..self.max_line], true)
        } else {
            (line, truncated)
        };
        if truncated {
            self.report.frames.truncated_lines += 1;
        }
        self.report.frames.lines += 1;
        lines.batch.push(line, truncated);
        if lines.batch.is_full() {
            let next = LineBatch::new(self.name.clone(), lines.batch.next_line(), lines.now);
            lines
                .batches
                .push(std::mem::replace(&mut lines.batch, next));
        }
    }

    /// Send the batches of one chunk, the last one acknowledging the chunk's last cursor.
    fn send(&mut self, mut lines: Lines, out: &Outlet) -> bool {
        if lines.own > 0 {
            out.metrics.dropped("journal_own_entry", lines.own);
        }
        out.metrics.dropped_bytes("truncated", lines.dropped_bytes);
        self.report.frames.dropped_bytes += lines.dropped_bytes;
        // A chunk of only skipped entries still moves the position: an empty batch carries it.
        if !lines.batch.is_empty() || (lines.batches.is_empty() && lines.cursor.is_some()) {
            lines.batches.push(lines.batch);
        }
        if let Some(last) = lines.batches.last_mut() {
            self.line = last.next_line() - 1;
            if let (Some(cursor), Some(saved)) = (&lines.cursor, &self.saved) {
                last.ack = Some(saved.ack(cursor.clone()));
            }
        }
        for batch in lines.batches {
            let n = batch.len() as u64;
            if n > 0 {
                out.metrics.lines_read(&batch.source, n);
            }
            if out.tx.send(batch).is_err() {
                return false;
            }
        }
        if let Some(cursor) = lines.cursor {
            self.last_sent = Some(cursor);
        }
        true
    }
}

/// The lines of one chunk on their way into batches.
struct Lines {
    batches: Vec<LineBatch>,
    batch: LineBatch,
    now: i64,
    /// The cursor of the chunk's last entry that has one.
    cursor: Option<String>,
    /// Our own entries skipped.
    own: u64,
    dropped_bytes: u64,
}

/// Read `stdout` on a thread of its own, in chunks, until end of file; the channel closes
/// after the last. Two chunks in flight: a slow pipeline reaches journalctl through the pipe.
fn pump(mut stdout: impl Read + Send + 'static) -> Receiver<io::Result<Vec<u8>>> {
    let (tx, rx) = bounded(2);
    let pump = move || {
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx.send(Ok(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    };
    // If the thread cannot start, the reader sees a closed channel: journalctl "ended", and
    // is started again after the backoff.
    let _ = std::thread::Builder::new()
        .name("journalctl-pump".into())
        .spawn(pump);
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(saved: Option<SharedCursor>, own: Option<OwnEntries>, max_line: usize) -> Reader {
        Reader {
            config: JournalConfig::default(),
            name: "journal".into(),
            max_line,
            saved,
            last_sent: None,
            line: 0,
            own,
            carry: Vec::new(),
            carry_truncated: false,
            scanner: CursorScanner::default(),
            warned_cursor: false,
            report: ReadReport::default(),
        }
    }

    fn entry(n: u32, pid: u32, pad: usize) -> String {
        format!(
            "{{\"_BOOT_ID\":\"b0\",\"_PID\":\"{pid}\",\"PAD\":\"{}\",\"__CURSOR\":\"s=a;i={n}\"}}\n",
            "x".repeat(pad)
        )
    }

    /// Wherever the chunks are cut, every entry but our own is sent once, an over-long one is
    /// cut, and the cursor acknowledged last is the last entry's, even when that entry is our
    /// own (skipped) or longer than `--max-line`.
    #[test]
    fn entries_cut_anywhere_give_their_lines_and_the_last_cursor() {
        let text = [
            entry(1, 7, 10),
            entry(2, 99, 10), // ours: skipped
            entry(3, 7, 500), // longer than max_line, its cursor past the cut
            entry(4, 99, 10), // ours, and the last
        ]
        .concat();
        let text = text.as_bytes();
        for cut in [1, 17, 64, 200, text.len() - 3, text.len()] {
            let dir = tempfile::tempdir().expect("tempdir");
            let shared = SharedCursor::new(CursorStore::open(dir.path()).expect("store"), "local");
            let mut r = reader(
                Some(shared.clone()),
                Some(OwnEntries::new("b0", 99, None)),
                128,
            );
            let (tx, rx) = crossbeam_channel::unbounded();
            let out = Outlet {
                tx,
                shutdown: Shutdown::new(),
                metrics: Arc::new(Metrics::new()),
            };
            for chunk in text.chunks(cut) {
                assert!(r.take(chunk, &out));
            }
            drop(out);
            let mut lines = Vec::new();
            for mut batch in rx.iter() {
                lines.extend(batch.lines().map(|(n, l, t)| (n, l.len(), t)));
                if let Some(ack) = batch.ack.take() {
                    ack.acknowledge();
                }
            }
            assert_eq!(
                lines,
                vec![(1, entry(1, 7, 10).len() - 1, false), (2, 128, true)]
            );
            assert_eq!(shared.get().as_deref(), Some("s=a;i=4"), "chunks of {cut}");
            assert_eq!(r.last_sent.as_deref(), Some("s=a;i=4"));
        }
    }

    /// A journalctl that died in the middle of a line: the part is not sent, and the restart
    /// (which prints the entry again, whole) starts clean.
    #[test]
    fn a_line_cut_by_a_dying_journalctl_is_not_sent() {
        let mut r = reader(None, None, 1024);
        let (tx, rx) = crossbeam_channel::unbounded();
        let out = Outlet {
            tx,
            shutdown: Shutdown::new(),
            metrics: Arc::new(Metrics::new()),
        };
        let first = entry(1, 7, 10);
        let second = entry(2, 7, 10);
        assert!(r.take(first.as_bytes(), &out));
        assert!(r.take(&second.as_bytes()[..20], &out));
        // What read_one_journalctl does before reading a new journalctl.
        r.forget_partial_line();
        assert!(r.take(second.as_bytes(), &out));
        drop(out);
        let lines: Vec<String> = rx
            .iter()
            .flat_map(|b| {
                b.lines()
                    .map(|(_, l, _)| String::from_utf8_lossy(l).into_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(lines, vec![first.trim_end(), second.trim_end()]);
        assert_eq!(r.last_sent.as_deref(), Some("s=a;i=2"));
    }
}
