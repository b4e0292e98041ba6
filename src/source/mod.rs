//! source: where lines come from. Every input is a [`Source`]: stdin and files read once
//! ([`files`]), followed files ([`follow`]), syslog listeners ([`syslog`]), the systemd
//! journal ([`journal`]), an archive being replayed ([`archive`]).
//!
//! The contract, the same for all of them:
//! - A source is built from its own config before anything is read, so that a taken port, a bad
//!   certificate or an unreadable state directory is a usage error, not a failure later.
//! - [`Source::start`] gets a [`SourceContext`] (the channel to the parse stage, shutdown,
//!   metrics, the I/O runtime, limits) and returns a [`SourceHandle`] whose threads end once the
//!   input ends or shutdown is triggered, with everything read already sent; joining it returns
//!   what was read ([`ReadReport`]).
//! - A source that can resume attaches an [`Ack`](crate::frame::Ack) to its batches and hands
//!   its [`PositionKeeper`] over through [`Source::position_keeper`]: a position is kept only
//!   once the batch is done with (and, when archiving, durable in the archive).
//! - Lines are sent in big batches ([`crate::frame::LineBatch`]); the channel is bounded, so a
//!   slow pipeline slows the source instead of growing memory.
//!
//! Adding a source is one file implementing [`Source`], a config type beside it, and one line
//! where `flags::hiargs` assembles a run's sources.

pub mod archive;
pub mod checkpoint;
pub mod files;
pub mod follow;
pub mod journal;
pub mod stdin;
pub mod syslog;

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

pub use files::{BatchInputs, FrameCounts, InputSpec};

use crate::frame::LineBatch;
use crate::frame::ack::PositionKeeper;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// What every source is started with.
#[derive(Clone)]
pub struct SourceContext {
    /// To the parse stage.
    pub tx: Sender<LineBatch>,
    pub shutdown: Shutdown,
    pub metrics: Arc<Metrics>,
    /// For sources that wait on sockets.
    pub runtime: tokio::runtime::Handle,
    /// `--max-line`: longer lines are cut and counted.
    pub max_line: usize,
}

/// Whether a source's input ends by itself; decides when the wall clock may move detection's
/// watermark ([`crate::pipeline::clock::WallClockMode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Liveness {
    /// Files, an archive: read to their end.
    Ends,
    /// Stdin: old logs (`cat old.log | secpipe`) or a live pipe (`journalctl -f | secpipe`),
    /// judged by its events.
    MaybeLive,
    /// Followed files and listeners: never end by themselves.
    Live,
}

/// One kind of input.
pub trait Source: Send {
    fn liveness(&self) -> Liveness;

    /// Where the positions this source acknowledges are kept, if it can resume. Taken once,
    /// before [`Source::start`].
    fn position_keeper(&mut self) -> Option<Box<dyn PositionKeeper>> {
        None
    }

    /// Start reading.
    fn start(self: Box<Self>, ctx: &SourceContext) -> Result<SourceHandle, String>;
}

/// What a source's threads read, for the summary.
#[derive(Clone, Debug, Default)]
pub struct ReadReport {
    /// Inputs opened (files, stdin, followed files, listeners).
    pub inputs: u64,
    pub frames: FrameCounts,
    /// Inputs that could not be opened or read, with why.
    pub errors: Vec<String>,
}

impl ReadReport {
    pub fn add(&mut self, other: ReadReport) {
        self.inputs += other.inputs;
        self.frames.add(&other.frames);
        self.errors.extend(other.errors);
    }
}

/// A started source's threads.
pub struct SourceHandle {
    threads: Vec<JoinHandle<ReadReport>>,
}

impl SourceHandle {
    /// Run `reader` on a thread named `name` (profiles and `top -H` show it apart).
    pub fn spawn(
        name: &str,
        reader: impl FnOnce() -> ReadReport + Send + 'static,
    ) -> Result<SourceHandle, String> {
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(reader)
            .map_err(|e| format!("cannot start a {name} thread: {e}"))?;
        Ok(SourceHandle {
            threads: vec![thread],
        })
    }

    /// The threads of several handles as one.
    pub fn join_all(handles: Vec<SourceHandle>) -> SourceHandle {
        SourceHandle {
            threads: handles.into_iter().flat_map(|h| h.threads).collect(),
        }
    }

    /// Wait for the threads; what they read, together.
    pub fn join(self) -> std::thread::Result<ReadReport> {
        let mut report = ReadReport::default();
        for thread in self.threads {
            report.add(thread.join()?);
        }
        Ok(report)
    }
}
