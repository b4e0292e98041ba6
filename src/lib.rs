//! secpipe: a security log-stream pipeline.
//!
//! # The stages
//!
//! ```text
//! source ─► frame ─► parse ─► classify ─► [ordered stage: archive ─► detect ─► sink, acks]
//!  bytes     lines    Record    Event                  rows          Alert
//! ```
//!
//! - [`source`]: where lines come from; every input is a [`source::Source`] (stdin and files,
//!   followed files, syslog listeners, an archive being replayed).
//! - [`frame`]: bytes into lines ([`frame::LineBatch`]), and acknowledgements ([`frame::ack`]).
//! - [`parse`]: a line into a `Record` (syslog, JSON, logfmt, access logs …, time and year).
//! - [`classify`]: a record into an [`event::Event`] with declarative grammars.
//! - [`detect`]: events into [`alert::Alert`]s, in event-time windows, deterministically; the
//!   rule pack is `rules/default.toml`.
//! - [`block`]: containment: `block` actions decided right after detection (never-block
//!   policy, circuit breaker, ban ledger) and applied in nftables on their own thread.
//! - [`sink`]: where alerts go ([`sink::AlertSink`]): stdout and files, and destinations that
//!   reach others (syslog, webhook, Alertmanager, mail, a program) through a
//!   [`sink::queue::Transport`] on their own thread, delivered from a spool in `--state`
//!   ([`sink::spool`]) or a bounded queue; which alerts go where is [`sink::routes`];
//!   [`archive`]: the Parquet archive, its
//!   hash chain and signatures, `verify`, all through an [`archive::store::ArchiveStore`].
//! - [`review`]: `secpipe report`, the daily or weekly security review computed from an archive
//!   (verify first, then bounded tallies over its events and alerts), rendered as JSON, HTML or
//!   Markdown.
//! - [`pipeline`]: the threads that connect the stages, the ordered stage, acknowledgements and
//!   the counts; [`flags`]: the command line and config files resolved into each component's
//!   config, and the one place a run is assembled ([`flags::hiargs`]); [`commands`]: one short
//!   function per subcommand (config → build → run → exit code).
//! - Beside them: [`metrics`] (Prometheus), [`shutdown`] (signals, the I/O runtime),
//!   [`report`] (the one place library code speaks on stderr), [`testfile`] (`secpipe test`).
//! - At the bottom, used by all: [`event`] (the event, and in [`event::EventField`] the one list of
//!   its fields that rules, grammar captures, test files, the events writer and the archive
//!   columns go by), [`alert`], [`action`] (typed responses: a block target is built from a
//!   parsed address), [`duration`] (the one duration syntax of flags and rules), [`text`]
//!   (line and column, "did you mean").
//!
//! Imports point one way, down the stack: commands → flags → pipeline, review → source, sink, archive
//! → detect, classify, parse, frame, metrics → alert, action, event, duration, text. (Unit
//! tests may reach up.)
//!
//! # Where a new thing goes
//!
//! - **A source**: a file under `src/source/` implementing [`source::Source`], its config type
//!   beside it, and one line in `flags::hiargs::RunConfig::build` where sources are assembled.
//! - **An alert sink**: a [`sink::queue::Transport`] in a file under `src/sink/` (made by its
//!   config's `remote`, so it is spooled and counted like the others; retries through
//!   [`sink::retry`]), its config and `…Options` types beside it, one arm in
//!   [`sink::SinkConfig`]'s `parse`, `open` and `name`, and its settings table in
//!   [`sink::routes`]. Encoding ([`sink::encode::Encoding`]) is chosen per sink.
//! - **An archive store**: an [`archive::store::ArchiveStore`] in a file under
//!   `src/archive/store/`, as [`archive::store::LocalStore`] is; its module doc says
//!   what a store must guarantee (durable before published, publish never overwrites, whole
//!   manifest lines, names that stay inside).
//! - **A grammar**: a TOML file in `grammars/` (format in any of them); **a rule**: the rule
//!   pack or a `--config` file (format in `DESIGN.md` section 4).
//!
//! # Invariants every component keeps
//!
//! - **Acknowledge after durable.** A source's position is acknowledged only once its batch is
//!   with the sinks and, when archiving, sealed in the archive ([`pipeline::acks`]); a crash
//!   then repeats lines, never loses them. A spooled sink moves its cursor only once the
//!   receiver took the alert: delivery is at least once, the alert `id` tells repeats.
//! - **No hash-map order in output.** Alerts, the archive and every report come out in an order
//!   fixed by the input (the ordered stage is one thread; maps are sorted or `BTreeMap`s), so
//!   the same lines give the same alerts, byte for byte.
//! - **Attacker text is data.** It is escaped in JSON, cleaned for terminals, never part of a
//!   command line, a path or a block target (built from a parsed address, not from text).
//! - **Limits are counted when hit.** A full queue, a cap of keys or connections, a cut line:
//!   counted in the summary and `--metrics`, never a crash, never a silent loss; memory stays
//!   bounded whatever the input.
//! - **Blocking stays off the ordered stage.** A sink that can block has its own thread and a
//!   bounded queue or spool that drops and counts when full ([`sink::queue`],
//!   [`sink::spool`]); `nft` runs on the blocker's own thread. The one exception is the alert
//!   output (stdout, `--alerts FILE`), which waits for its reader so that it misses nothing: a
//!   stalled reader stalls detection until a stop bounds the wait.

// `UsageError` carries the config file's text so miette can point into it. It is built once,
// at startup, on the way to exit 2: its size costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

pub mod action;
pub mod alert;
pub mod archive;
pub mod block;
pub mod bus;
pub mod classify;
pub mod commands;
pub mod detect;
pub mod duration;
pub mod event;
pub mod flags;
pub mod frame;
pub mod metrics;
pub mod notify;
pub mod ocsf;
pub mod parse;
pub mod pipeline;
pub mod report;
pub mod review;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod testfile;
pub mod text;
