//! Acknowledgements: how a source learns that a batch it sent is done with.
//!
//! A source that can resume (a followed file with `--state`, later a message bus) attaches an
//! [`Ack`] to each batch. The pipeline carries it beside the batch's lines and calls it once the
//! batch's events are with the sinks and, when archiving, once the archive holds them durably
//! (sealed and in the manifest chain): acknowledged any earlier, a position would survive a
//! SIGKILL that the unsealed rows before it do not, and the restart would resume after lines the
//! archive then discards. Acknowledgements are called in the order the batches were sent.
//!
//! ```
//! use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
//! use secpipe::frame::ack::{Ack, Acknowledge};
//! struct Offset(Arc<AtomicU64>, u64);
//! impl Acknowledge for Offset {
//!     fn acknowledge(self: Box<Self>) {
//!         self.0.store(self.1, Ordering::Relaxed);
//!     }
//! }
//! let resume_at = Arc::new(AtomicU64::new(0));
//! let ack = Ack::new(Offset(resume_at.clone(), 4096));
//! ack.acknowledge();
//! assert_eq!(resume_at.load(Ordering::Relaxed), 4096);
//! ```

/// What a source is told when one of its batches is done.
pub trait Acknowledge: Send {
    fn acknowledge(self: Box<Self>);
}

/// One batch's acknowledgement.
pub struct Ack(Box<dyn Acknowledge>);

impl Ack {
    pub fn new(ack: impl Acknowledge + 'static) -> Ack {
        Ack(Box::new(ack))
    }

    /// The batch is done with: tell its source.
    pub fn acknowledge(self) {
        self.0.acknowledge();
    }
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ack")
    }
}

/// Where acknowledged positions are kept durably (a checkpoint file, a bus consumer): saved
/// when due while the run goes on, and for good once the run has drained.
pub trait PositionKeeper: Send {
    /// Save what was acknowledged since the last save, if a save is due.
    fn save_if_due(&mut self);
    /// Save everything acknowledged, now.
    fn save(&mut self) -> Result<(), String>;
}
