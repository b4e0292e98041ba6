//! The alert output: stdout or a file (`--alerts`), in JSON lines or text (`--alert-format`).
//! It waits for a slow reader instead of dropping alerts ([`WhenFull::Wait`]): `secpipe
//! old.log | less` must see every alert.

use std::path::PathBuf;

use super::encode::Encoding;
use super::queue::{QueuedSink, WhenFull, WriteTransport};

/// Where the alert output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputDest {
    Stdout,
    File(PathBuf),
}

/// `--alerts` and `--alert-format`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputConfig {
    pub dest: OutputDest,
    pub encoding: Encoding,
}

impl OutputConfig {
    /// Open the output (a file is created, or emptied) and start its thread.
    pub fn open(&self) -> Result<QueuedSink, String> {
        let (name, out): (String, Box<dyn std::io::Write + Send>) = match &self.dest {
            OutputDest::Stdout => ("stdout".into(), Box::new(std::io::stdout())),
            OutputDest::File(path) => (
                path.display().to_string(),
                Box::new(
                    std::fs::File::create(path)
                        .map_err(|e| format!("--alerts {}: {e}", path.display()))?,
                ),
            ),
        };
        Ok(QueuedSink::start(
            name,
            WriteTransport(out),
            self.encoding,
            WhenFull::Wait,
        ))
    }
}
