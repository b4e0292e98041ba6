//! secpipe: a security log-stream pipeline.
//!
//! Data flows one way: [`source`] (bytes) → [`frame`] (lines) → [`parse`] (Record) →
//! [`classify`] (Event) → [`detect`] (Alert) → [`sink`] (alerts out) and [`archive`].

pub mod alert;
pub mod archive;
pub mod classify;
pub mod detect;
pub mod event;
pub mod parse;
