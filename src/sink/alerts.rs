//! Alert output: JSON lines (default) or one readable line per alert, to stdout or a file.

use std::io::{self, Write};

use crate::alert::Alert;

/// How alerts are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AlertFormat {
    #[default]
    Json,
    Text,
}

/// Writes alerts as they are decided, flushing each batch so that a person (or `tail -f`) sees
/// an alert seconds after the attack, not when a buffer fills.
pub struct AlertSink {
    out: Box<dyn Write + Send>,
    format: AlertFormat,
    scratch: String,
}

impl AlertSink {
    pub fn new(out: Box<dyn Write + Send>, format: AlertFormat) -> AlertSink {
        AlertSink {
            out,
            format,
            scratch: String::new(),
        }
    }

    /// Write `alerts` and flush.
    pub fn write(&mut self, alerts: &[Alert]) -> io::Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        self.scratch.clear();
        for alert in alerts {
            match self.format {
                AlertFormat::Json => alert.write_json(&mut self.scratch),
                AlertFormat::Text => alert.write_text(&mut self.scratch),
            }
            self.scratch.push('\n');
        }
        self.out.write_all(self.scratch.as_bytes())?;
        self.out.flush()
    }
}
