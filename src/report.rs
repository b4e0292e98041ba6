//! The one place library code tells the operator something on stderr while a run goes on: a
//! file that appeared or was truncated, a listener bound, a sink that failed. Commands print
//! their own results and summaries; everything below them reports through here, so the form
//! (`secpipe: …`, one line) and the destination stay the same everywhere.

/// Something the operator should know; the run goes on.
pub fn warn(message: &str) {
    eprintln!("secpipe: {message}");
}

/// A fact worth one line (a bound address, a signal being handled).
pub fn note(message: &str) {
    eprintln!("secpipe: {message}");
}
