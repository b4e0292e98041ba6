//! Manifest lines (`audit/manifests.jsonl`) and the checkpoint (`audit/checkpoint`).
//!
//! A manifest line is hashed exactly as stored, without its terminating `\n`; the chain head
//! is the SHA-256 of the last line. Verification never re-serialises a line: it parses the
//! stored bytes only to read fields, and hashes the bytes.
//!
//! ```
//! use secpipe::archive::manifest::{Manifest, line_hash};
//! let m = Manifest::pause("00".repeat(16), "00".repeat(32), "2026-11-23T00:00:00.000000Z".into());
//! let line = m.to_line();
//! assert!(!line.contains('\n'));
//! assert_eq!(Manifest::parse(line.as_bytes()).unwrap().kind, "pause");
//! assert_eq!(line_hash(line.as_bytes()).len(), 64);
//! ```

use serde::{Deserialize, Serialize};

use super::canonical::sha256;

/// Format version of manifests and checkpoints.
pub const VERSION: u32 = 1;

/// The `prev` of the first manifest line.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `rows` of a data manifest: the file holds seqs `first_seq .. first_seq + count`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowRange {
    pub first_seq: u64,
    pub count: u64,
}

/// Event-time range of a file's rows (RFC 3339 UTC).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub min: String,
    pub max: String,
}

/// One manifest line. `kind` is `data` (a sealed file), `resume` (a run continued this chain)
/// or `pause` (a run closed cleanly).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub v: u32,
    pub archive: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<RowRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_root: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_sha256: Option<String>,
    /// Wall-clock time the line was written.
    pub at: String,
    /// `resume` only: unsealed leftovers of a crashed run moved to `audit/discarded/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discarded: Vec<String>,
    /// `resume` only: the lines of the chain that this run, started with a key, found covered
    /// by no valid signature of that key (a crash before the checkpoint caught up, an archive
    /// written without a key, or lines appended by someone else). The run's signatures extend
    /// over them without vouching for them, and verify keeps reporting them as unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsigned_lines: Option<LineRange>,
    pub prev: String,
}

/// 1-based manifest lines `first ..= last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRange {
    pub first: u64,
    pub last: u64,
}

impl Manifest {
    fn bare(kind: &str, archive: String, prev: String, at: String) -> Manifest {
        Manifest {
            v: VERSION,
            archive,
            kind: kind.to_owned(),
            table: None,
            file_seq: None,
            path: None,
            sha256: None,
            bytes: None,
            rows: None,
            row_root: None,
            time: None,
            schema_sha256: None,
            at,
            discarded: Vec::new(),
            unsigned_lines: None,
            prev,
        }
    }

    /// A `pause` line (clean close).
    pub fn pause(archive: String, prev: String, at: String) -> Manifest {
        Manifest::bare("pause", archive, prev, at)
    }

    /// A `resume` line (a run continues an existing chain).
    pub fn resume(archive: String, prev: String, at: String, discarded: Vec<String>) -> Manifest {
        Manifest {
            discarded,
            ..Manifest::bare("resume", archive, prev, at)
        }
    }

    /// A `data` line with no file fields yet (the writer fills them).
    pub fn data(archive: String, prev: String, at: String) -> Manifest {
        Manifest::bare("data", archive, prev, at)
    }

    /// The JSON line, without the terminating newline.
    pub fn to_line(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| unreachable!("manifest serialises: {e}"))
    }

    /// Read the fields of a stored line.
    pub fn parse(line: &[u8]) -> Result<Manifest, String> {
        serde_json::from_slice(line).map_err(|e| e.to_string())
    }
}

/// Hex SHA-256 of a stored manifest line (bytes without the terminating `\n`).
pub fn line_hash(line: &[u8]) -> String {
    hex::encode(sha256(&[line]))
}

/// Split the manifests file into lines. The second value is a trailing fragment without a
/// newline (a torn append), if any.
pub fn split_lines(bytes: &[u8]) -> (Vec<&[u8]>, Option<&[u8]>) {
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // `split` yields a final empty piece after a trailing newline.
    let tail = lines.pop().filter(|t| !t.is_empty());
    (lines, tail)
}

/// The checkpoint: a C2SP signed-note style text.
///
/// ```text
/// secpipe/archive/<archive_id hex>
/// <number of manifest lines>
/// <head: hex SHA-256 of the last manifest line>
///
/// — secpipe <keyhash> <base64 Ed25519 signature over the three body lines incl. newlines>
/// ```
/// `keyhash` is the first 16 hex digits of the key fingerprint (hex SHA-256 of the 32-byte
/// public key). Without a key the signature line is absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub archive: String,
    pub count: u64,
    pub head: String,
    /// (keyhash, base64 signature)
    pub signature: Option<(String, String)>,
}

/// Origin line prefix.
pub const ORIGIN_PREFIX: &str = "secpipe/archive/";

impl Checkpoint {
    /// The signed body: three lines, each ending in `\n`.
    pub fn body(&self) -> String {
        format!(
            "{ORIGIN_PREFIX}{}\n{}\n{}\n",
            self.archive, self.count, self.head
        )
    }

    /// Full text.
    pub fn to_text(&self) -> String {
        let mut text = self.body();
        if let Some((keyhash, sig)) = &self.signature {
            text.push_str(&format!("\n\u{2014} secpipe {keyhash} {sig}\n"));
        }
        text
    }

    /// Parse a checkpoint text.
    pub fn parse(text: &str) -> Result<Checkpoint, String> {
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        let archive = origin
            .strip_prefix(ORIGIN_PREFIX)
            .ok_or("the first line is not `secpipe/archive/<id>`")?
            .to_owned();
        let count = lines
            .next()
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or("the second line is not a manifest count")?;
        let head = lines.next().ok_or("the head line is missing")?.to_owned();
        if head.len() != 64 || !head.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("the head line is not 64 hex digits".into());
        }
        let mut signature = None;
        match lines.next() {
            None | Some("") => {}
            Some(_) => return Err("expected a blank line after the body".into()),
        }
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let rest = line
                .strip_prefix("\u{2014} secpipe ")
                .ok_or("a signature line must start with `— secpipe `")?;
            let (keyhash, sig) = rest
                .split_once(' ')
                .ok_or("a signature line needs a key hash and a signature")?;
            if signature.is_some() {
                return Err("more than one signature line".into());
            }
            signature = Some((keyhash.to_owned(), sig.to_owned()));
        }
        Ok(Checkpoint {
            archive,
            count,
            head,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips() {
        let c = Checkpoint {
            archive: "ab".repeat(16),
            count: 3,
            head: "cd".repeat(32),
            signature: Some(("0123456789abcdef".into(), "c2ln".into())),
        };
        assert_eq!(Checkpoint::parse(&c.to_text()), Ok(c.clone()));
        let unsigned = Checkpoint {
            signature: None,
            ..c
        };
        assert_eq!(Checkpoint::parse(&unsigned.to_text()), Ok(unsigned));
    }

    #[test]
    fn torn_tail_is_separated() {
        let (lines, tail) = split_lines(b"a\nb\nc");
        assert_eq!(lines, vec![&b"a"[..], &b"b"[..]]);
        assert_eq!(tail, Some(&b"c"[..]));
        let (lines, tail) = split_lines(b"a\n");
        assert_eq!(lines, vec![&b"a"[..]]);
        assert_eq!(tail, None);
    }
}
