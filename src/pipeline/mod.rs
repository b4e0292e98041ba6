//! pipeline: the stages connected, and the counts they keep.
//!
//! ```text
//! sources ──LineBatch──► parse ──► classify ──EventBatch──► ordered stage
//!                                                          (seq, archive, detect, sinks, acks)
//! ```
//!
//! [`topology`] starts the threads and the services beside them; [`stages`] is the work of the
//! parse and classify threads; [`ordered`] is the one thread that sees every event in order;
//! [`acks`] holds sources' acknowledgements until their batches are durable; [`clock`] decides
//! when the wall clock moves the watermark; [`summary`] counts what happened; [`run`] is a
//! whole detection run, as `run` and `replay` execute it; [`reload`] swaps rules and grammars
//! on `SIGHUP`.

pub mod acks;
pub mod clock;
pub mod ordered;
pub mod reload;
pub mod run;
pub mod stages;
pub mod summary;
pub mod topology;
pub mod unverified;

pub use stages::{EventBatch, MAX_FUTURE, classify_batch, parse_batch};
pub use summary::Summary;
