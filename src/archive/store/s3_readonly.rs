//! [`S3ReadOnlyStore`]: an archive in an S3 bucket, read only, so that `verify s3://…` can
//! recompute the chain on the bucket itself. Objects are read with ranged GETs through the
//! signed client of `s3_inspect` (so a Parquet reader fetches only what it decodes), in the
//! bucket layout of issue 14: the tables as on disk, `audit/manifests/<n:08>.json` (manifest
//! line n, no newline) and `audit/checkpoints/<k:08>.note` (the highest k is current).
//!
//! It writes nothing: every write method is an error. (The writing store over the
//! `object_store` crate replaces it for `run --archive s3://…`; this one only reads.)
//!
//! Threads: one tokio runtime with one worker, owned by the store; every method blocks the
//! calling thread on it, so verify's reader threads can share the store.

use std::sync::Mutex;

use super::s3_inspect::{InspectError, InspectLimits, MAX_RESPONSE_BYTES, S3Inspector, S3Location};
use super::{ArchiveStore, Durability, ObjectName, ObjectReader, ReadAt, Staged, StoreError};

/// Where the manifest objects are.
const MANIFEST_DIR: &str = "audit/manifests/";
/// The most current objects listed under one prefix: keys someone with write access planted
/// by the million must not exhaust memory (a name costs about 100 bytes here).
const MAX_NAMES: usize = 500_000;
/// GET requests in flight when reading the manifest objects.
const GETS_IN_FLIGHT: usize = 16;
/// Where the checkpoints are.
const CHECKPOINT_DIR: &str = "audit/checkpoints/";

/// A read-only archive at `s3://bucket/prefix`.
pub struct S3ReadOnlyStore {
    runtime: tokio::runtime::Runtime,
    inspector: std::sync::Arc<S3Inspector>,
    /// Names of the manifest objects and the checkpoint that were read, for the storage report.
    read: Mutex<ReadObjects>,
}

/// What [`S3ReadOnlyStore`] read of the audit trail.
#[derive(Clone, Debug, Default)]
pub struct ReadObjects {
    /// The manifest objects, in chain order.
    pub manifests: Vec<String>,
    /// The highest manifest number among them (a gap below it is a missing object).
    pub highest_manifest: u64,
    /// The current checkpoint object.
    pub checkpoint: Option<String>,
}

impl S3ReadOnlyStore {
    /// Connect to `location` with configuration from the environment (see `s3_inspect`).
    pub fn connect(location: &S3Location) -> Result<S3ReadOnlyStore, InspectError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| InspectError::Config(format!("cannot start a tokio runtime: {e}")))?;
        let inspector = runtime.block_on(S3Inspector::from_env(location))?;
        Ok(S3ReadOnlyStore {
            runtime,
            inspector: std::sync::Arc::new(inspector),
            read: Mutex::new(ReadObjects::default()),
        })
    }

    /// The audit objects read so far.
    pub fn read_objects(&self) -> ReadObjects {
        self.read.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn error(&self, at: &str, e: InspectError) -> StoreError {
        StoreError::Io {
            at: self.location_of(at),
            source: std::io::Error::other(e.to_string()),
        }
    }

    /// The current (not deleted) keys under archive name prefix `under`, as archive names.
    fn current_names(&self, under: &str) -> Result<Vec<String>, StoreError> {
        let key_prefix = self.inspector.location().key_prefix();
        let mut names = Vec::new();
        let summary = self
            .runtime
            .block_on(self.inspector.list_versions_under(
                under,
                InspectLimits::default(),
                |version| {
                    if version.is_latest && !version.delete_marker && names.len() <= MAX_NAMES {
                        let name = version
                            .key
                            .strip_prefix(&key_prefix)
                            .unwrap_or(&version.key);
                        names.push(name.to_owned());
                    }
                },
            ))
            .map_err(|e| self.error(under, e))?;
        if let Some(why) = summary.incomplete {
            return Err(self.error(under, InspectError::Config(why)));
        }
        if names.len() > MAX_NAMES {
            return Err(self.error(
                under,
                InspectError::Config(format!(
                    "more than {MAX_NAMES} objects: not an archive secpipe wrote (keys planted \
                     to exhaust memory?); list them with the AWS CLI"
                )),
            ));
        }
        names.sort();
        Ok(names)
    }

    fn get(&self, name: &str) -> Result<Option<bytes::Bytes>, StoreError> {
        self.runtime
            .block_on(self.inspector.get(name))
            .map_err(|e| self.error(name, e))
    }

    /// The objects `names`, in that order, a few GETs at a time (one object per manifest line:
    /// one request after another would take minutes on a long chain).
    fn get_many(&self, names: &[String]) -> Result<Vec<Option<bytes::Bytes>>, StoreError> {
        let mut found: Vec<Option<bytes::Bytes>> = vec![None; names.len()];
        let result = self.runtime.block_on(async {
            let mut in_flight = tokio::task::JoinSet::new();
            let mut pending = names.iter().enumerate();
            loop {
                while in_flight.len() < GETS_IN_FLIGHT {
                    let Some((index, name)) = pending.next() else {
                        break;
                    };
                    let inspector = std::sync::Arc::clone(&self.inspector);
                    let name = name.clone();
                    in_flight.spawn(async move { (index, inspector.get(&name).await) });
                }
                let Some(done) = in_flight.join_next().await else {
                    return Ok(());
                };
                match done {
                    Ok((index, Ok(bytes))) => found[index] = bytes,
                    Ok((index, Err(e))) => return Err((index, e.to_string())),
                    Err(e) => return Err((0, format!("a GET did not finish: {e}"))),
                }
            }
        });
        match result {
            Ok(()) => Ok(found),
            Err((index, why)) => Err(StoreError::Io {
                at: self.location_of(names.get(index).map_or("", String::as_str)),
                source: std::io::Error::other(why),
            }),
        }
    }

    fn read_only(&self, name: &str) -> StoreError {
        StoreError::Io {
            at: self.location_of(name),
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this store only reads (verify)",
            ),
        }
    }
}

impl ArchiveStore for S3ReadOnlyStore {
    fn location(&self) -> String {
        self.inspector.location().to_string()
    }

    fn location_of(&self, name: &str) -> String {
        let at = self.inspector.location();
        format!("s3://{}/{}", at.bucket, at.key(name))
    }

    fn create(&self) -> Result<(), StoreError> {
        Err(self.read_only(""))
    }

    fn stage(&self, name: &ObjectName) -> Result<Staged, StoreError> {
        Err(self.read_only(name.as_str()))
    }

    fn publish(&self, _: Staged, name: &ObjectName, _: &[u8; 32]) -> Result<(), StoreError> {
        Err(self.read_only(name.as_str()))
    }

    fn list(&self, prefix: &ObjectName) -> Result<Vec<ObjectName>, StoreError> {
        // A key that is no valid object name (`..`, an empty segment) cannot be part of the
        // chain; the storage section counts it among the other keys.
        Ok(self
            .current_names(&format!("{prefix}/"))?
            .into_iter()
            .filter_map(|name| ObjectName::new(name).ok())
            .collect())
    }

    fn open(&self, name: &ObjectName) -> Result<ObjectReader, StoreError> {
        let size = self
            .runtime
            .block_on(self.inspector.size(name.as_str()))
            .map_err(|e| self.error(name.as_str(), e))?;
        let Some(len) = size else {
            return Err(StoreError::Io {
                at: self.location_of(name.as_str()),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such object"),
            });
        };
        Ok(ObjectReader::new(RangedObject {
            runtime: self.runtime.handle().clone(),
            inspector: std::sync::Arc::clone(&self.inspector),
            name: name.as_str().to_owned(),
            len,
        }))
    }

    fn discard(&self, name: &ObjectName, _: &str) -> Result<(), StoreError> {
        Err(self.read_only(name.as_str()))
    }

    fn read_manifests(&self) -> Result<Option<Vec<u8>>, StoreError> {
        // Only `<digits>.json` is a manifest object, in the order of its number: a key planted
        // as `audit/manifests/\x1b[2J.json` sorts before `00000001.json` and would otherwise
        // be read as line 1. The storage section names such keys.
        let mut numbered: Vec<(u64, String)> = self
            .current_names(MANIFEST_DIR)?
            .into_iter()
            .filter_map(|name| Some((chain_number(&name, MANIFEST_DIR, ".json")?, name)))
            .collect();
        if numbered.is_empty() {
            return Ok(None);
        }
        numbered.sort();
        let names: Vec<String> = numbered.iter().map(|(_, name)| name.clone()).collect();
        let lines = self.get_many(&names)?;
        let mut manifests = Vec::with_capacity(lines.iter().flatten().map(|l| l.len() + 1).sum());
        // Listed a moment ago and gone now (`None`): the chain shows the gap.
        for line in lines.into_iter().flatten() {
            manifests.extend_from_slice(&line);
            manifests.push(b'\n');
        }
        if let Ok(mut read) = self.read.lock() {
            read.highest_manifest = numbered.last().map_or(0, |(n, _)| *n);
            read.manifests = numbered.into_iter().map(|(_, name)| name).collect();
        }
        Ok(Some(manifests))
    }

    fn append_manifest(&self, number: u64, _: &[u8]) -> Result<(), StoreError> {
        Err(self.read_only(&format!("{MANIFEST_DIR}{number:08}.json")))
    }

    fn cut_manifests(&self, _: u64) -> Result<(), StoreError> {
        Err(self.read_only(MANIFEST_DIR))
    }

    fn read_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((_, current)) = self
            .current_names(CHECKPOINT_DIR)?
            .into_iter()
            .filter_map(|name| Some((chain_number(&name, CHECKPOINT_DIR, ".note")?, name)))
            .max()
        else {
            return Ok(None);
        };
        let text = self.get(&current)?;
        if let Ok(mut read) = self.read.lock() {
            read.checkpoint = Some(current);
        }
        Ok(text.map(|t| t.to_vec()))
    }

    fn replace_checkpoint(&self, _: &[u8], _: Durability) -> Result<(), StoreError> {
        Err(self.read_only(CHECKPOINT_DIR))
    }
}

/// The number of an audit object named `<dir><digits><suffix>` (the writer pads to 8 digits;
/// more are accepted, as numbers past 99,999,999 need them); `None` for any other name.
///
/// ```
/// use secpipe::archive::store::s3_readonly::chain_number;
/// assert_eq!(chain_number("audit/manifests/00000012.json", "audit/manifests/", ".json"), Some(12));
/// assert_eq!(chain_number("audit/manifests/\u{1b}[2J.json", "audit/manifests/", ".json"), None);
/// assert_eq!(chain_number("audit/manifests/+12.json", "audit/manifests/", ".json"), None);
/// assert_eq!(chain_number("audit/manifests/x/00000012.json", "audit/manifests/", ".json"), None);
/// ```
pub fn chain_number(name: &str, dir: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(dir)?.strip_suffix(suffix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One object, read with ranged GETs.
struct RangedObject {
    runtime: tokio::runtime::Handle,
    inspector: std::sync::Arc<S3Inspector>,
    name: String,
    len: u64,
}

impl ReadAt for RangedObject {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        // A short read is allowed: callers loop (ObjectReader::read_range).
        let want = (buf.len() as u64)
            .min(self.len - offset)
            .min(MAX_RESPONSE_BYTES as u64);
        let range = Some((offset, offset + want - 1));
        let bytes = self
            .runtime
            .block_on(self.inspector.get_range(&self.name, range))
            .map_err(|e| std::io::Error::other(e.to_string()))?
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "the object went away")
            })?;
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }
}
