//! secpipe: a security log-stream pipeline.
//!
//! Data flows one way: [`source`] (bytes) → [`frame`] (lines) → [`parse`] (Record) →
//! [`classify`] (Event) → [`detect`] (Alert) → [`sink`] (alerts out) and [`archive`].
//! [`pipeline`] connects the stages with threads and bounded channels; [`flags`] resolves the
//! command line and config files; [`commands`] holds one function per subcommand.

// `UsageError` carries the config file's text so miette can point into it. It is built once,
// at startup, on the way to exit 2: its size costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

pub mod action;
pub mod alert;
pub mod archive;
pub mod classify;
pub mod commands;
pub mod detect;
pub mod duration;
pub mod event;
pub mod flags;
pub mod frame;
pub mod metrics;
pub mod parse;
pub mod pipeline;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod testfile;
pub mod text;
