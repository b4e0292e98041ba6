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

impl OutputDest {
    /// Whether `self` and `other` name one output, however spelled (`x`, `./x`, `d/../x`;
    /// `-` and `/dev/stdout`): two writers on one output would each truncate it and write from
    /// their own offset, and on stdout every alert would come twice.
    pub fn same_as(&self, other: &OutputDest) -> bool {
        match (self.identity(), other.identity()) {
            (Some(a), Some(b)) => a == b,
            // An output that does not exist yet: the same file name in the same directory.
            _ => match (self.spelled(), other.spelled()) {
                (Some(a), Some(b)) => a == b,
                _ => self == other,
            },
        }
    }

    /// Device and inode of what the output is now, if it exists.
    fn identity(&self) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let path = match self {
            OutputDest::Stdout => std::path::Path::new("/dev/stdout"),
            OutputDest::File(path) => path,
        };
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.dev(), meta.ino()))
    }

    /// A file's name in its directory, resolved (the directory must exist).
    fn spelled(&self) -> Option<PathBuf> {
        let OutputDest::File(path) = self else {
            return None;
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => std::path::Path::new("."),
        };
        Some(std::fs::canonicalize(dir).ok()?.join(path.file_name()?))
    }
}

/// `--alerts` and `--alert-format`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputConfig {
    pub dest: OutputDest,
    pub encoding: Encoding,
}

impl OutputConfig {
    /// The output's name in messages.
    pub fn name(&self) -> String {
        match &self.dest {
            OutputDest::Stdout => "stdout".into(),
            OutputDest::File(path) => path.display().to_string(),
        }
    }

    /// Open the output (a file is created, or appended to) and start its thread. Appended: the
    /// file is a service's alert log (`/var/log/secpipe/alerts.jsonl`), and a restart emptying
    /// it lost every alert before it (found by `tests/service_boot.rs`).
    pub fn open(&self, metrics: crate::metrics::SinkMetrics) -> Result<QueuedSink, String> {
        let out: Box<dyn std::io::Write + Send> = match &self.dest {
            OutputDest::Stdout => Box::new(std::io::stdout()),
            OutputDest::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("--alerts {}: {e}", path.display()))?,
            ),
        };
        let name = self.name();
        Ok(QueuedSink::start(
            name,
            WriteTransport(out),
            self.encoding,
            WhenFull::Wait,
            metrics,
        ))
    }
}
