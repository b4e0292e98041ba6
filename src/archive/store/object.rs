//! [`ObjectArchiveStore`]: an archive in object storage (`s3://`, `gs://`, `az://`) through the
//! `object_store` crate, with the same bytes, hashes, chain and signatures as on a local disk.
//!
//! ## Layout in the bucket, under the URL's prefix
//! ```text
//! events/date=YYYY-MM-DD/part-<file_seq:08>.parquet   as on disk, byte for byte
//! alerts/date=YYYY-MM-DD/part-<file_seq:08>.parquet
//! audit/manifests/<n:08>.json      manifest line n (1-based): the exact hashed bytes, no newline
//! audit/checkpoints/<count:08>.note  the checkpoint covering the first `count` lines
//! ```
//! Object storage has no append and no rename, so the append-only `manifests.jsonl` becomes one
//! object per line and the replaced checkpoint one object per count, every one written with a
//! create-only PUT (`If-None-Match: *`): nothing secpipe ever wrote is overwritten, and a bucket
//! with versioning and Object Lock keeps every byte. Reading the lines back in number order
//! gives exactly the bytes of a local `manifests.jsonl`, so `verify` prints the same head for
//! the bucket and for a copy of it on disk.
//!
//! ## Writing: seal locally, then upload once
//! Files are encoded and sealed in a local **spool** directory exactly as on disk. The
//! committer then calls [`ArchiveStore::commit_file`], which
//! 1. fsyncs the sealed file and records a *pending commit* (`spool/pending/<n:08>.json`: the
//!    object name, its SHA-256 and the manifest line) with a rename, so that from here a crash
//!    is finished by the next run, never redone under another name;
//! 2. uploads the file with one create-only PUT carrying its SHA-256 (`x-amz-checksum-sha256`:
//!    the service refuses bytes that changed on the way, and Object Lock buckets require a
//!    checksum);
//! 3. uploads manifest line `n`, create-only;
//! 4. deletes the spooled file, then the pending record.
//!
//! [`ArchiveStore::recover`], run first by every open, repeats steps 2–4 for each pending
//! record in order. A create-only PUT that finds its name taken reads the object there: the
//! same bytes (the crashed run's PUT had landed) complete the step; other bytes are an error,
//! as someone else wrote that name.
//!
//! **The spool is bounded** by the writer's queues: at most the two open files, two being
//! sealed and eight sealed files waiting for upload, each of at most `--roll-rows` rows.
//! When uploads fail, the committer retries with exponential backoff (0.1 s doubling to 30 s,
//! counted in `secpipe_archive_upload_retries_total`) for up to [`RETRY_FOR`]; meanwhile the
//! queues fill and secpipe stops reading input (syslog senders over TCP are held back; UDP
//! datagrams the kernel cannot buffer are lost, as in any full pipeline), and nothing already
//! read is dropped. After [`RETRY_FOR`] the run fails as on a full disk (a CRITICAL
//! `secpipe.archive_failed` alert, exit 2); the pending records let the next run finish the
//! uploads, and `--state` positions were never saved past lines that are not in the bucket.
//!
//! ## Reading
//! `verify`, `replay` and `report` open the bucket without a spool. Reads are ranged GETs: a
//! Parquet reader fetches the footer and then only the column chunks it decodes; `verify`
//! reads whole files, as it must hash them.
//!
//! ## Credentials and endpoint
//! As the AWS tools find them: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL` (path-style addressing for it, as
//! S3-compatible servers expect), `AWS_ALLOW_HTTP=true` for a local test server, the instance
//! or container role otherwise; `AWS_PROFILE` (default `default`) is read from
//! `~/.aws/credentials` and `~/.aws/config` when no key is in the environment. Google Cloud
//! and Azure read their own `GOOGLE_*` and `AZURE_*` variables.

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as KeyPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::s3_inspect::{InspectError, InspectLimits, S3Inspector, S3Location};
use super::{
    ArchiveStore, Durability, ManifestCommit, ObjectName, ObjectReader, ReadAt, Staged, StoreError,
    UPLOAD_STATS,
};

/// How long one request is retried after transient failures before the store gives up.
pub const RETRY_FOR: Duration = Duration::from_secs(300);

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Manifest objects fetched at once when the chain is read.
const FETCH_AT_ONCE: usize = 16;

/// Where the manifest lines are, one object each.
const MANIFEST_DIR: &str = "audit/manifests";
/// Where the checkpoints are, one object per count.
const CHECKPOINT_DIR: &str = "audit/checkpoints";
/// Pending commits, inside the spool.
const PENDING_DIR: &str = "pending";

/// The URL schemes an archive can have besides a local path.
pub const SCHEMES: [&str; 5] = ["s3", "s3a", "gs", "az", "abfs"];

/// An archive in a bucket.
pub struct ObjectArchiveStore {
    remote: Arc<Remote>,
    /// Where files wait for their upload (writers only; `None` opens the bucket read-only).
    spool: Option<PathBuf>,
    /// The spool's lock, taken by [`ArchiveStore::recover`] and held while the store lives.
    spool_lock: std::sync::OnceLock<File>,
}

/// What every reader and the store share: the client, its runtime and the prefix.
struct Remote {
    /// `s3://bucket/prefix`, for messages.
    url: String,
    client: Arc<dyn ObjectStore>,
    /// The prefix inside the bucket (may be empty).
    prefix: String,
    /// object_store is async; secpipe's archive threads are not. Requests run here.
    runtime: tokio::runtime::Runtime,
    retry_for: Duration,
    /// For S3, the raw lister: object_store fails a whole listing page on one key it cannot
    /// name (a control character someone put in it), which would let one planted key hide
    /// the chain; S3's URL-encoded listing names every key.
    lister: Option<Arc<S3Inspector>>,
}

impl ObjectArchiveStore {
    /// The archive at `url` (`s3://bucket/prefix`, `gs://…`, `az://container/prefix`),
    /// configured from the environment; `spool` is needed to write.
    pub fn from_url(url: &str, spool: Option<PathBuf>) -> Result<ObjectArchiveStore, StoreError> {
        let bad = |why: String| StoreError::Io {
            at: url.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("not a URL".into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("the URL names no bucket".into()));
        }
        let prefix = prefix.trim_matches('/').to_owned();
        if !prefix.is_empty() {
            ObjectName::new(prefix.as_str())?;
        }
        // reqwest is built without a default TLS provider (no aws-lc): give it ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // One attempt per request: secpipe retries itself, so that retries are counted.
        let retry = RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        };
        let client: Arc<dyn ObjectStore> = match scheme {
            "s3" | "s3a" => Arc::new(
                s3_builder(bucket)?
                    .with_retry(retry)
                    .build()
                    .map_err(|e| bad(format!("S3 configuration: {e}")))?,
            ),
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry)
                    .build()
                    .map_err(|e| bad(format!("Google Cloud Storage configuration: {e}")))?,
            ),
            "az" | "abfs" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(bucket)
                    .with_retry(retry)
                    .build()
                    .map_err(|e| bad(format!("Azure configuration: {e}")))?,
            ),
            other => return Err(bad(format!("unsupported scheme `{other}`"))),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("secpipe-bucket")
            .enable_all()
            .build()
            .map_err(|e| bad(format!("no runtime for the bucket client: {e}")))?;
        let url = if prefix.is_empty() {
            format!("{scheme}://{bucket}")
        } else {
            format!("{scheme}://{bucket}/{prefix}")
        };
        let lister = match scheme {
            "s3" | "s3a" => {
                let location = S3Location {
                    bucket: bucket.to_owned(),
                    prefix: prefix.clone(),
                };
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                runtime.spawn(async move {
                    let _ = tx.send(S3Inspector::from_env(&location).await);
                });
                let inspector = rx
                    .recv()
                    .map_err(|_| bad("the bucket client stopped".into()))?
                    .map_err(|e| bad(e.to_string()))?;
                Some(Arc::new(inspector))
            }
            _ => None,
        };
        Ok(ObjectArchiveStore {
            remote: Arc::new(Remote {
                url,
                client,
                prefix,
                runtime,
                retry_for: RETRY_FOR,
                lister,
            }),
            spool,
            spool_lock: std::sync::OnceLock::new(),
        })
    }

    /// Give up on a request after `retry_for` of transient failures (tests use seconds).
    pub fn with_retry_for(mut self, retry_for: Duration) -> ObjectArchiveStore {
        if let Some(remote) = Arc::get_mut(&mut self.remote) {
            remote.retry_for = retry_for;
        }
        self
    }

    fn spool(&self) -> Result<&Path, StoreError> {
        self.spool.as_deref().ok_or_else(|| StoreError::Io {
            at: self.remote.url.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "writing to an archive in object storage needs a local spool (--state DIR or \
                 --spool DIR)",
            ),
        })
    }

    fn pending_dir(&self) -> Result<PathBuf, StoreError> {
        Ok(self.spool()?.join(PENDING_DIR))
    }

    /// Upload the local file `path` as `name`, create-only, checking that its bytes still
    /// hash to `sha256`; a name already holding exactly these bytes counts as uploaded.
    fn upload_file(
        &self,
        path: &Path,
        name: &ObjectName,
        sha256: &[u8; 32],
    ) -> Result<(), StoreError> {
        // One file in memory at a time: at most --roll-rows rows, compressed.
        let bytes = std::fs::read(path).map_err(StoreError::at(path))?;
        if Sha256::digest(&bytes).as_slice() != sha256 {
            return Err(StoreError::Io {
                at: path.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the spooled file no longer has the SHA-256 it was sealed with; \
                     it was changed after sealing and is not uploaded",
                ),
            });
        }
        let len = bytes.len() as u64;
        self.remote.put_create(name, Bytes::from(bytes))?;
        UPLOAD_STATS.files.inc();
        UPLOAD_STATS.bytes.inc_by(len);
        Ok(())
    }

    /// Steps 2–4 of a commit (see the module doc), for a pending record already on disk.
    fn finish(&self, record_path: &Path, pending: &Pending) -> Result<(), StoreError> {
        let name = ObjectName::new(pending.name.as_str())?;
        let sha256 = parse_sha256(&pending.sha256).ok_or_else(|| StoreError::Io {
            at: record_path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "bad sha256"),
        })?;
        let staged = self
            .spool()?
            .join(ObjectName::new(pending.staged.as_str())?.as_str());
        match std::fs::metadata(&staged) {
            Ok(_) => self.upload_file(&staged, &name, &sha256)?,
            // Deleted after its upload, before the record was: the object must be there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let there = self.remote.get_all(&name)?;
                if Sha256::digest(&there).as_slice() != sha256 {
                    return Err(StoreError::Io {
                        at: record_path.display().to_string(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!(
                                "the spooled file of {name} is gone and the bucket does not \
                                 hold its bytes"
                            ),
                        ),
                    });
                }
            }
            Err(e) => return Err(StoreError::at(&staged)(e)),
        }
        self.remote.put_create(
            &manifest_name(pending.number)?,
            Bytes::from(pending.line.clone()),
        )?;
        if let Some(checkpoint) = &pending.checkpoint {
            self.put_checkpoint(checkpoint.as_bytes())?;
        }
        remove_if_present(&staged)?;
        // The date's spool directory, once empty (a year of dates would otherwise stay).
        if let Some(dir) = staged.parent() {
            let _ = std::fs::remove_dir(dir);
        }
        remove_if_present(record_path)
    }
}

/// The S3 client as AWS tools would configure it, plus what secpipe needs.
pub(super) fn s3_builder(bucket: &str) -> Result<object_store::aws::AmazonS3Builder, StoreError> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, Checksum};
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        for (key, value) in super::aws_profile::settings() {
            builder = builder.with_config(key, value);
        }
    }
    if builder
        .get_config_value(&AmazonS3ConfigKey::Region)
        .is_none()
        && let Ok(region) = std::env::var("AWS_DEFAULT_REGION")
    {
        builder = builder.with_region(region);
    }
    // moto (and Object Lock on some S3-compatible stores) ask for the SDK's algorithm header
    // beside the checksum itself; AWS's own SDKs send both.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-amz-sdk-checksum-algorithm",
        reqwest::header::HeaderValue::from_static("SHA256"),
    );
    let allow_http = std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    Ok(builder
        .with_checksum_algorithm(Checksum::SHA256)
        .with_client_options(
            object_store::ClientOptions::new()
                .with_default_headers(headers)
                .with_allow_http(allow_http),
        ))
}

/// A commit on its way to the bucket, kept in the spool until both objects are up.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// The archive it belongs to (`s3://bucket/prefix`): a spool (`--state DIR`) may next be
    /// used with another archive, which must not receive this commit.
    archive: String,
    /// The manifest line's number.
    number: u64,
    /// The file's object name.
    name: String,
    /// Its SHA-256, hex.
    sha256: String,
    /// The sealed file, relative to the spool.
    staged: String,
    /// The manifest line, exactly.
    line: String,
    /// The checkpoint covering it, signed by the run that wrote it.
    #[serde(default)]
    checkpoint: Option<String>,
}

impl Pending {
    /// Whether the record says what its own manifest line says: the line names `name` with
    /// `sha256`, and the checkpoint covers exactly this line. A record edited in the spool
    /// would otherwise upload a file under a name no line gives, or a checkpoint claiming
    /// lines that do not exist, for good (create-only objects).
    fn check(&self) -> Result<(), String> {
        use super::super::manifest::{Checkpoint, Manifest, line_hash};
        let manifest = Manifest::parse(self.line.as_bytes())?;
        if manifest.path.as_deref() != Some(self.name.as_str())
            || manifest.sha256.as_deref() != Some(self.sha256.as_str())
        {
            return Err("its object name or SHA-256 is not the one its manifest line gives".into());
        }
        if let Some(text) = &self.checkpoint {
            let checkpoint = Checkpoint::parse(text)?;
            if checkpoint.count != self.number
                || checkpoint.head != line_hash(self.line.as_bytes())
                || checkpoint.archive != manifest.archive
            {
                return Err("its checkpoint does not cover its own manifest line".into());
            }
        }
        Ok(())
    }
}

fn parse_sha256(hex_text: &str) -> Option<[u8; 32]> {
    hex::decode(hex_text).ok()?.try_into().ok()
}

fn manifest_name(number: u64) -> Result<ObjectName, StoreError> {
    ObjectName::new(format!("{MANIFEST_DIR}/{number:08}.json"))
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::at(path)(e)),
        _ => Ok(()),
    }
}

/// The number of a chain object: `dir`, then the number as secpipe writes it (at least 8
/// digits, zero-padded), then `suffix` (`audit/manifests/00000012.json` → 12). Anything else
/// is not part of the chain: a planted name with a terminal escape, or a copy beside a chain
/// object (`00000012.json.bak`, `12.json`, `old/00000012.json`), which would otherwise be read
/// as a second line, as `manifests.jsonl.bak` is not in a directory archive.
///
/// ```
/// use secpipe::archive::store::chain_number;
/// assert_eq!(chain_number("audit/manifests/00000012.json", "audit/manifests/", ".json"), Some(12));
/// assert_eq!(chain_number("audit/manifests/1.json.bak", "audit/manifests/", ".json"), None);
/// assert_eq!(chain_number("audit/manifests/12.json", "audit/manifests/", ".json"), None);
/// ```
pub fn chain_number(name: &str, dir: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(dir)?.strip_suffix(suffix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (format!("{n:08}") == digits).then_some(n)
}

/// The chain objects of `store` under `dir` (`audit/manifests`, `audit/checkpoints`) whose
/// names [`chain_number`] accepts with `suffix`, by number.
pub fn chain_objects(
    store: &dyn ArchiveStore,
    dir: &str,
    suffix: &str,
) -> Result<Vec<(u64, ObjectName)>, StoreError> {
    let within = format!("{dir}/");
    let mut found: Vec<(u64, ObjectName)> = store
        .list(&ObjectName::new(dir)?)?
        .into_iter()
        .filter_map(|name| chain_number(name.as_str(), &within, suffix).map(|n| (n, name)))
        .collect();
    found.sort();
    Ok(found)
}

/// Write `bytes` to `path` through a temporary file and a rename, fsynced.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(StoreError::at(&tmp))?;
    file.write_all(bytes).map_err(StoreError::at(&tmp))?;
    file.sync_all().map_err(StoreError::at(&tmp))?;
    std::fs::rename(&tmp, path).map_err(StoreError::at(&tmp))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(StoreError::at(dir))?;
    }
    Ok(())
}

impl Remote {
    fn key(&self, name: &ObjectName) -> Result<KeyPath, StoreError> {
        let full = if self.prefix.is_empty() {
            name.as_str().to_owned()
        } else {
            format!("{}/{}", self.prefix, name.as_str())
        };
        KeyPath::parse(&full).map_err(|e| StoreError::BadName {
            name: name.to_string(),
            why: if e.to_string().is_empty() {
                "not a valid object key"
            } else {
                "not a valid object key for this store"
            },
        })
    }

    fn location_of(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    /// Run `future` on the client's runtime and wait for it, from any thread (also from
    /// inside another runtime, where `block_on` would panic).
    fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().map_err(|_| StoreError::Io {
            at: self.url.clone(),
            source: std::io::Error::other("the bucket client stopped"),
        })
    }

    /// One request, retried with backoff while it fails transiently (a refused connection, a
    /// 5xx, a 429) for up to `retry_for`; `what` names it in messages.
    fn request<T, F>(&self, name: &str, mut attempt: impl FnMut() -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = object_store::Result<T>> + Send + 'static,
    {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.run(attempt())? {
                Ok(value) => return Ok(value),
                Err(e) if is_transient(&e) && started.elapsed() < self.retry_for => {
                    UPLOAD_STATS.retries.inc();
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    if is_transient(&e) {
                        UPLOAD_STATS.failures.inc();
                    }
                    return Err(self.error(name, e));
                }
            }
        }
    }

    /// [`Remote::request`] for one call on the key of `name`, given the client and the key.
    fn on_key<T, F>(
        &self,
        name: &ObjectName,
        call: impl Fn(Arc<dyn ObjectStore>, KeyPath) -> F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = object_store::Result<T>> + Send + 'static,
    {
        let key = self.key(name)?;
        self.request(name.as_str(), || {
            call(Arc::clone(&self.client), key.clone())
        })
    }

    fn error(&self, name: &str, e: object_store::Error) -> StoreError {
        let at = self.location_of(name);
        match e {
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => StoreError::AlreadyExists { at },
            object_store::Error::NotFound { .. } => StoreError::Io {
                at,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such object"),
            },
            other => StoreError::Io {
                at,
                source: std::io::Error::other(other.to_string()),
            },
        }
    }

    /// A create-only PUT; a name already holding exactly `bytes` counts as written (a crashed
    /// run's PUT that landed), any other bytes there are [`StoreError::AlreadyExists`].
    fn put_create(&self, name: &ObjectName, bytes: Bytes) -> Result<(), StoreError> {
        let put = self.on_key(name, |client, key| {
            let payload = PutPayload::from(bytes.clone());
            async move {
                let opts = PutOptions {
                    mode: PutMode::Create,
                    ..PutOptions::default()
                };
                client.put_opts(&key, payload, opts).await
            }
        });
        match put {
            Ok(_) => Ok(()),
            Err(StoreError::AlreadyExists { at }) => {
                if self.get_all(name)? == bytes {
                    Ok(())
                } else {
                    Err(StoreError::AlreadyExists { at })
                }
            }
            Err(e) => Err(e),
        }
    }

    fn get_all(&self, name: &ObjectName) -> Result<Bytes, StoreError> {
        self.on_key(name, |client, key| async move {
            client.get(&key).await?.bytes().await
        })
    }

    /// The object's length, or not found.
    fn head(&self, name: &ObjectName) -> Result<u64, StoreError> {
        self.on_key(name, |client, key| async move {
            Ok(client.head(&key).await?.size)
        })
    }

    fn get_range(&self, name: &ObjectName, start: u64, end: u64) -> Result<Bytes, StoreError> {
        self.on_key(name, |client, key| async move {
            client.get_range(&key, start..end).await
        })
    }

    /// Every object under `dir/`, as names inside the archive.
    fn list(&self, dir: &ObjectName) -> Result<Vec<ObjectName>, StoreError> {
        if let Some(lister) = &self.lister {
            return self.list_s3(lister, dir);
        }
        let keys: Vec<String> = self.on_key(dir, |client, key| {
            async move {
                let mut keys = Vec::new();
                let mut listing = client.list(Some(&key));
                while let Some(item) = listing.next().await {
                    match item {
                        Ok(meta) => keys.push(meta.location.to_string()),
                        // A key object_store cannot name (a control character someone put
                        // in it) is no object secpipe wrote: skipped here, so that it cannot
                        // make the whole archive unreadable; verify's storage section lists
                        // it among the other keys.
                        Err(object_store::Error::InvalidPath { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(keys)
            }
        })?;
        self.names_of(keys).collect()
    }

    /// Listed keys as names inside the archive. A key that is no valid name (`a//b`) cannot
    /// be an object secpipe wrote; it is listed under a name that shows it, for verify to
    /// report, or is an error when even that is no name.
    fn names_of(&self, keys: Vec<String>) -> impl Iterator<Item = Result<ObjectName, StoreError>> {
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        keys.into_iter().map(move |key| {
            let relative = key.strip_prefix(strip.as_str()).unwrap_or(&key);
            ObjectName::new(relative)
                .or_else(|_| ObjectName::new(relative.replace("//", "/%2F").trim_matches('/')))
        })
    }

    /// [`Remote::list`] on S3: the current version of every key under `dir/`, however it is
    /// spelled.
    fn list_s3(
        &self,
        lister: &Arc<S3Inspector>,
        dir: &ObjectName,
    ) -> Result<Vec<ObjectName>, StoreError> {
        let lister = Arc::clone(lister);
        let under = format!("{}/", dir.as_str());
        let listed = self.run(async move {
            let mut keys = Vec::new();
            let summary = lister
                .list_versions_under(&under, InspectLimits::default(), |version| {
                    if version.is_latest && !version.delete_marker {
                        keys.push(version.key);
                    }
                })
                .await?;
            Ok::<_, InspectError>((keys, summary))
        })?;
        let at = self.location_of(dir.as_str());
        let (keys, summary) = listed.map_err(|e| StoreError::Io {
            at: at.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        if let Some(why) = summary.incomplete {
            return Err(StoreError::Io {
                at,
                source: std::io::Error::other(why),
            });
        }
        Ok(self.names_of(keys).filter_map(Result::ok).collect())
    }
}

/// A failure worth trying again: no response (refused, reset, timed out), a 5xx, a 429, a 408,
/// S3's `400 RequestTimeout`, or
/// an error S3 reports inside a 200 (`InternalError`, `SlowDown`). object_store keeps its
/// status-carrying error type private, so the chain of causes is read: its transport error
/// type is public, and a status shows as "non-2xx status code: NNN".
fn is_transient(e: &object_store::Error) -> bool {
    let object_store::Error::Generic { source, .. } = e else {
        return false;
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
    while let Some(error) = cause {
        if error.is::<object_store::client::HttpError>() {
            return true;
        }
        let text = error.to_string();
        if let Some((_, after)) = text.split_once("non-2xx status code: ") {
            let status: u16 = after.get(..3).and_then(|s| s.parse().ok()).unwrap_or(0);
            // S3 answers a request body that stalled with `400 RequestTimeout` (AWS's SDKs
            // retry it, as they retry a 408): the network, not the request, was at fault.
            return status >= 500
                || status == 429
                || status == 408
                || (status == 400 && after.contains("<Code>RequestTimeout</Code>"));
        }
        if text.starts_with("Server returned error response") {
            return true;
        }
        cause = error.source();
    }
    false
}

impl ArchiveStore for ObjectArchiveStore {
    fn location(&self) -> String {
        self.remote.url.clone()
    }

    fn location_of(&self, name: &str) -> String {
        self.remote.location_of(name)
    }

    fn concurrent_reads(&self) -> usize {
        FETCH_AT_ONCE
    }

    fn create(&self) -> Result<(), StoreError> {
        let pending = self.pending_dir()?;
        std::fs::create_dir_all(&pending).map_err(StoreError::at(&pending))
    }

    fn recover(&self) -> Result<u64, StoreError> {
        let Some(spool) = &self.spool else {
            return Ok(0);
        };
        self.lock_spool(spool)?;
        let dir = spool.join(PENDING_DIR);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(StoreError::at(&dir)(e)),
        };
        let mut records = BTreeMap::new();
        for entry in entries {
            let path = entry.map_err(StoreError::at(&dir))?.path();
            // A record killed while being written was never a commit: its file is a spooled
            // leftover, which open discards like any unsealed one.
            if path.extension().is_some_and(|e| e == "tmp") {
                remove_if_present(&path)?;
            } else if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read(&path).map_err(StoreError::at(&path))?;
                let pending: Pending =
                    serde_json::from_slice(&text).map_err(|e| StoreError::Io {
                        at: path.display().to_string(),
                        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                    })?;
                // Finished into another archive, this line and file would be in it for good
                // (create-only objects) and that archive's chain broken.
                if pending.archive != self.remote.url {
                    return Err(StoreError::Io {
                        at: path.display().to_string(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!(
                                "this spool holds an unfinished commit for the archive {}, not \
                                 {}: run once with --archive {} to finish it, or give this \
                                 archive its own --spool",
                                pending.archive, self.remote.url, pending.archive
                            ),
                        ),
                    });
                }
                pending.check().map_err(|why| StoreError::Io {
                    at: path.display().to_string(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("a pending commit that was changed after it was recorded: {why}"),
                    ),
                })?;
                records.insert(pending.number, (path, pending));
            }
        }
        let finished = records.len() as u64;
        for (path, pending) in records.values() {
            self.finish(path, pending)?;
        }
        Ok(finished)
    }

    fn stage(&self, name: &ObjectName) -> Result<Staged, StoreError> {
        let spool = super::LocalStore::new(self.spool()?);
        // The committer removes a date's directory once it is empty, maybe just after the
        // staging made it: stage again then.
        let mut tries = 0;
        loop {
            match spool.stage(name) {
                Err(e) if e.is_not_found() && tries < 3 => tries += 1,
                staged => return staged,
            }
        }
    }

    fn publish(
        &self,
        staged: Staged,
        name: &ObjectName,
        sha256: &[u8; 32],
    ) -> Result<(), StoreError> {
        let (file, path) = staged.into_parts();
        drop(file);
        self.upload_file(&path, name, sha256)?;
        remove_if_present(&path)
    }

    fn commit_file(
        &self,
        staged: Staged,
        name: &ObjectName,
        sha256: &[u8; 32],
        commit: ManifestCommit<'_>,
        on_durable: &mut dyn FnMut(),
    ) -> Result<(), StoreError> {
        let number = commit.number;
        let (file, path) = staged.into_parts();
        file.sync_all().map_err(StoreError::at(&path))?;
        drop(file);
        let spool = self.spool()?;
        let staged = path
            .strip_prefix(spool)
            .ok()
            .and_then(|p| p.to_str())
            .ok_or_else(|| StoreError::Io {
                at: path.display().to_string(),
                source: std::io::Error::other("a staged file outside the spool"),
            })?
            .to_owned();
        let pending = Pending {
            archive: self.remote.url.clone(),
            number,
            name: name.to_string(),
            sha256: hex::encode(sha256),
            staged,
            line: String::from_utf8_lossy(commit.line).into_owned(),
            checkpoint: commit
                .checkpoint
                .map(|c| String::from_utf8_lossy(c).into_owned()),
        };
        let record = self.pending_dir()?.join(format!("{number:08}.json"));
        let text = serde_json::to_vec(&pending).map_err(|e| StoreError::Io {
            at: record.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        write_atomically(&record, &text)?;
        on_durable();
        self.finish(&record, &pending)
    }

    /// Spooled files (a crashed run's unsealed leftovers) and the bucket's objects.
    fn list(&self, prefix: &ObjectName) -> Result<Vec<ObjectName>, StoreError> {
        let mut names = self.remote.list(prefix)?;
        if let Some(spool) = &self.spool {
            names.extend(super::LocalStore::new(spool).list(prefix)?);
        }
        Ok(names)
    }

    fn open(&self, name: &ObjectName) -> Result<ObjectReader, StoreError> {
        let len = self.remote.head(name)?;
        Ok(ObjectReader::new(RemoteObject {
            remote: Arc::clone(&self.remote),
            name: name.clone(),
            len,
        }))
    }

    /// A spooled leftover is moved aside in the spool. An object in the bucket that no
    /// manifest names is never touched: secpipe neither overwrites nor deletes in a bucket
    /// (a delete would leave the next upload as a second version of the name). With the
    /// pending records, no crash leaves one; it is someone else's, or a lost spool's, and
    /// the run stops for a person to look.
    fn discard(&self, name: &ObjectName, tag: &str) -> Result<(), StoreError> {
        if let Some(spool) = &self.spool
            && spool.join(name.as_str()).exists()
        {
            return super::LocalStore::new(spool).discard(name, tag);
        }
        Err(StoreError::Io {
            at: self.remote.location_of(name.as_str()),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "this object holds the name of the next file and no manifest names it; \
                 secpipe never overwrites or deletes in a bucket. Run `secpipe verify` on the \
                 archive, and remove the object by hand if it is the upload of a crashed run \
                 whose spool was lost",
            ),
        })
    }

    fn read_manifests(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let names = chain_objects(self, MANIFEST_DIR, ".json")?;
        if names.is_empty() {
            return Ok(None);
        }
        let client = Arc::clone(&self.remote.client);
        let keys = names
            .iter()
            .map(|(_, name)| self.remote.key(name))
            .collect::<Result<Vec<_>, _>>()?;
        // Fetched FETCH_AT_ONCE at a time, kept in order; each transient failure of the
        // whole batch is retried as one request.
        let lines: Vec<Bytes> = self.remote.request(MANIFEST_DIR, || {
            let client = Arc::clone(&client);
            let keys = keys.clone();
            async move {
                futures_util::stream::iter(keys)
                    .map(|key| {
                        let client = Arc::clone(&client);
                        async move { client.get(&key).await?.bytes().await }
                    })
                    .buffered(FETCH_AT_ONCE)
                    .try_collect()
                    .await
            }
        })?;
        let mut bytes = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for line in lines {
            bytes.extend_from_slice(&line);
            bytes.push(b'\n');
        }
        Ok(Some(bytes))
    }

    fn append_manifest(&self, number: u64, line: &[u8]) -> Result<(), StoreError> {
        self.remote
            .put_create(&manifest_name(number)?, Bytes::copy_from_slice(line))
    }

    /// One object per line cannot tear: there is never a torn line to cut.
    fn cut_manifests(&self, _len: u64) -> Result<(), StoreError> {
        Err(StoreError::Io {
            at: self.remote.location_of(MANIFEST_DIR),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a manifest object does not end where its line does",
            ),
        })
    }

    fn read_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        match chain_objects(self, CHECKPOINT_DIR, ".note")?.last() {
            Some((_, name)) => Ok(Some(self.remote.get_all(name)?.to_vec())),
            None => Ok(None),
        }
    }

    fn keeps_commit_checkpoints(&self) -> bool {
        true
    }

    fn replace_checkpoint(&self, text: &[u8], _durability: Durability) -> Result<(), StoreError> {
        self.put_checkpoint(text)
    }
}

impl ObjectArchiveStore {
    /// Take the spool's lock, or fail if another secpipe holds it: a second run would finish
    /// the first one's commits in flight, delete its spooled files, and extend the chain
    /// from the same line.
    fn lock_spool(&self, spool: &Path) -> Result<(), StoreError> {
        if self.spool_lock.get().is_some() {
            return Ok(());
        }
        std::fs::create_dir_all(spool).map_err(StoreError::at(spool))?;
        let path = spool.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(StoreError::at(&path))?;
        match file.try_lock() {
            Ok(()) => {
                let _ = self.spool_lock.set(file);
                Ok(())
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Io {
                at: spool.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "another secpipe is writing through this spool (same --spool, or --state)",
                ),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::at(&path)(e)),
        }
    }

    /// A new object named by the count it covers. One of that count already there covers
    /// the same lines (the chain only grows), so it stands: nothing is overwritten.
    fn put_checkpoint(&self, text: &[u8]) -> Result<(), StoreError> {
        let count = std::str::from_utf8(text)
            .ok()
            .and_then(|t| super::super::manifest::Checkpoint::parse(t).ok())
            .map(|c| c.count)
            .ok_or_else(|| StoreError::Io {
                at: self.remote.location_of(CHECKPOINT_DIR),
                source: std::io::Error::other("a checkpoint that does not parse"),
            })?;
        let name = ObjectName::new(format!("{CHECKPOINT_DIR}/{count:08}.note"))?;
        match self.remote.put_create(&name, Bytes::copy_from_slice(text)) {
            Err(StoreError::AlreadyExists { .. }) => Ok(()),
            other => other,
        }
    }
}

/// An object in the bucket, read by ranged GETs.
struct RemoteObject {
    remote: Arc<Remote>,
    name: ObjectName,
    len: u64,
}

impl ReadAt for RemoteObject {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let end = self.len.min(offset.saturating_add(buf.len() as u64));
        if offset >= end {
            return Ok(0);
        }
        let bytes = self
            .remote
            .get_range(&self.name, offset, end)
            .map_err(std::io::Error::other)?;
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        UPLOAD_STATS.read_bytes.inc_by(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_objects_are_only_digits_and_their_suffix() {
        let m = |name| chain_number(name, "audit/manifests/", ".json");
        assert_eq!(m("audit/manifests/00000012.json"), Some(12));
        assert_eq!(m("audit/manifests/123456789.json"), Some(123_456_789));
        assert_eq!(
            chain_number(
                "audit/checkpoints/00000007.note",
                "audit/checkpoints/",
                ".note"
            ),
            Some(7)
        );
        for bad in [
            "audit/manifests/x.json",
            "audit/manifests/.json",
            "audit/manifests/12",
            "audit/manifests/-1.json",
            "audit/manifests/1e3.json",
            "audit/manifests/1.json.bak",
            "audit/manifests/1.note",
            "audit/manifests/\u{1b}[2J1.json",
            "audit/manifests/12.json",
            "audit/manifests/00000012.json.bak",
            "audit/manifests/00000012.note",
            "audit/manifests/old/00000012.json",
            "audit/checkpoints/00000012.json",
        ] {
            assert_eq!(m(bad), None, "{bad}");
        }
    }

    /// An error as object_store reports a response with `status` and `body`.
    fn status_error(status: &str, body: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: Box::new(std::io::Error::other(format!(
                "Error performing PUT http://127.0.0.1/b/k in 12ms - Server returned non-2xx \
                 status code: {status}: {body}"
            ))),
        }
    }

    #[test]
    fn a_refusal_fails_at_once_and_a_server_or_network_fault_is_retried() {
        let xml = |code: &str| format!("<Error><Code>{code}</Code><Message>m</Message></Error>");
        for (status, code) in [
            ("503 Service Unavailable", "SlowDown"),
            ("500 Internal Server Error", "InternalError"),
            ("429 Too Many Requests", "TooManyRequests"),
            ("408 Request Timeout", "RequestTimeout"),
            ("400 Bad Request", "RequestTimeout"),
        ] {
            assert!(
                is_transient(&status_error(status, &xml(code))),
                "{status} {code}"
            );
        }
        for (status, code) in [
            ("400 Bad Request", "BadDigest"),
            ("400 Bad Request", "InvalidRequest"),
            ("403 Forbidden", "AccessDenied"),
            ("403 Forbidden", "RequestTimeTooSkewed"),
        ] {
            assert!(
                !is_transient(&status_error(status, &xml(code))),
                "{status} {code}"
            );
        }
    }

    #[test]
    fn urls_without_a_bucket_or_with_a_crafted_prefix_are_refused() {
        for bad in [
            "s3://",
            "s3:///prefix",
            "s3://b/../etc",
            "s3://b/a//b",
            "ftp://b/p",
        ] {
            assert!(ObjectArchiveStore::from_url(bad, None).is_err(), "{bad}");
        }
    }
}
