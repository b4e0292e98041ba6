//! Where an archive's bytes are kept: the [`ArchiveStore`] interface, in terms of named objects
//! rather than paths, so that the same archive (hashes, chain, signatures) can live on a local
//! disk ([`LocalStore`]) or, later, in an object store that has no rename and no fsync.
//!
//! ## What a store must guarantee
//! - **Durable before published.** [`ArchiveStore::publish`] returns only once the object is
//!   on stable storage under its final name, and no reader ever sees it under that name
//!   before then (LocalStore: fsync the staged file, rename it, fsync the directory; an object
//!   store: one PUT that the service acknowledges as stored). A manifest line names a file
//!   only after the file was published, so a crash never leaves a line naming bytes that are
//!   not there.
//! - **Publish never overwrites.** A name taken by another object is an error
//!   ([`StoreError::AlreadyExists`]), never a replacement: a sealed file is never rewritten,
//!   and a file someone planted under the next name stays for `verify` to report (LocalStore:
//!   `renameat2(RENAME_NOREPLACE)`, or a hard link where the file system lacks it; an object
//!   store: a create-only PUT, `If-None-Match: *`).
//! - **Manifest appends are atomic per line.** After a crash the manifests hold whole lines,
//!   plus at most one torn last line that [`ArchiveStore::cut_manifests`] removes on the next
//!   open; each [`ArchiveStore::append_manifest`] is durable when it returns. (An object store
//!   writes one create-only object per line, which cannot tear.)
//! - **The checkpoint is replaced whole**: a reader sees the old one or the new one.
//! - **Names stay inside.** Every object is named by an [`ObjectName`], which cannot be
//!   absolute, cannot hold `..`, `.` or an empty segment, and cannot hold a NUL byte: a crafted
//!   manifest line naming `../../etc/passwd` cannot make verify or replay read outside the
//!   archive, nor make the writer write there.
//!
//! ## The commit protocol, step by step
//! The writer (`writer.rs`) encodes each Parquet file into a [`Staged`] local file
//! ([`ArchiveStore::stage`]: LocalStore puts it beside its final name, so publishing is a
//! rename; an object store would keep it in a local spool and upload it), then, in chain
//! order: [`ArchiveStore::publish`] → [`ArchiveStore::append_manifest`] →
//! [`ArchiveStore::replace_checkpoint`] when due. On open, [`super::Archive::open`] reads the
//! chain ([`ArchiveStore::read_manifests`], [`ArchiveStore::read_checkpoint`]), cuts a torn
//! line, and moves leftovers of a crashed run out of the way ([`ArchiveStore::list`],
//! [`ArchiveStore::discard`]). Verify and replay only read: [`ArchiveStore::open`] gives ranged
//! reads, so a Parquet reader fetches only the row groups and columns it needs.
//!
//! ```
//! use secpipe::archive::store::{ArchiveStore, LocalStore, ObjectName};
//! let dir = tempfile::tempdir().unwrap();
//! let store = LocalStore::new(dir.path());
//! // A name that could leave the archive is refused before any store sees it.
//! assert!(ObjectName::new("../../etc/passwd").is_err());
//! assert!(ObjectName::new("/etc/passwd").is_err());
//! // Publishing: stage, write, publish; a second publish under the same name is refused.
//! let name = ObjectName::new("events/date=2026-11-23/part-00000000.parquet").unwrap();
//! for round in 0..2 {
//!     let staged_name = ObjectName::new(format!("events/date=2026-11-23/s{round}.tmp")).unwrap();
//!     let mut staged = store.stage(&staged_name).unwrap();
//!     std::io::Write::write_all(&mut staged, b"sealed bytes").unwrap();
//!     let published = store.publish(staged, &name, &[0; 32]);
//!     assert_eq!(published.is_ok(), round == 0);
//! }
//! assert_eq!(&store.open(&name).unwrap().read_all().unwrap()[..], b"sealed bytes");
//! ```

mod aws_profile;
mod local;
mod object;
pub mod s3_inspect;

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

pub use local::LocalStore;
pub use object::{ObjectArchiveStore, RETRY_FOR, chain_number, chain_objects};

/// What the bucket client did, for `--metrics` (one archive per process, so one tally).
pub struct UploadStats {
    /// Sealed files uploaded.
    pub files: prometheus_client::metrics::counter::Counter,
    /// Their bytes.
    pub bytes: prometheus_client::metrics::counter::Counter,
    /// Requests tried again after a transient failure.
    pub retries: prometheus_client::metrics::counter::Counter,
    /// Requests that failed after retrying for [`RETRY_FOR`].
    pub failures: prometheus_client::metrics::counter::Counter,
    /// Bytes read by ranged GETs.
    pub read_bytes: prometheus_client::metrics::counter::Counter,
}

/// See [`UploadStats`].
pub static UPLOAD_STATS: std::sync::LazyLock<UploadStats> =
    std::sync::LazyLock::new(|| UploadStats {
        files: Default::default(),
        bytes: Default::default(),
        retries: Default::default(),
        failures: Default::default(),
        read_bytes: Default::default(),
    });

/// Where an archive is: a directory, or a bucket URL (`s3://bucket/prefix`, `gs://…`,
/// `az://…`). `file://PATH` is a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchiveLocation {
    Local(PathBuf),
    Bucket(String),
}

impl ArchiveLocation {
    /// Read `--archive`/`ARCHIVE`. Anything that looks like `scheme://` must have a scheme
    /// secpipe supports: `s3://b/p` once made a local directory named `s3:`.
    pub fn parse(given: &Path) -> Result<ArchiveLocation, String> {
        let Some(text) = given.to_str() else {
            return Ok(ArchiveLocation::Local(given.to_path_buf()));
        };
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(ArchiveLocation::Local(given.to_path_buf()));
        };
        let looks_like_scheme = !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !looks_like_scheme {
            return Ok(ArchiveLocation::Local(given.to_path_buf()));
        }
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "file" {
            if rest.is_empty() || !rest.starts_with('/') {
                return Err(format!(
                    "{text}: a file:// URL needs an absolute path (file:///dir)"
                ));
            }
            return Ok(ArchiveLocation::Local(PathBuf::from(rest)));
        }
        if object::SCHEMES.contains(&scheme.as_str()) {
            return Ok(ArchiveLocation::Bucket(format!("{scheme}://{rest}")));
        }
        Err(format!(
            "{text}: unsupported scheme `{scheme}://`; an archive is a directory, file:///dir, \
             s3://bucket/prefix, gs://bucket/prefix or az://container/prefix"
        ))
    }

    /// Open it; `spool` (where files wait for their upload) only matters for a bucket, and
    /// only for writing.
    pub fn open(&self, spool: Option<PathBuf>) -> Result<Arc<dyn ArchiveStore>, StoreError> {
        Ok(match self {
            ArchiveLocation::Local(dir) => Arc::new(LocalStore::new(dir)),
            ArchiveLocation::Bucket(url) => Arc::new(ObjectArchiveStore::from_url(url, spool)?),
        })
    }

    pub fn is_bucket(&self) -> bool {
        matches!(self, ArchiveLocation::Bucket(_))
    }
}

impl fmt::Display for ArchiveLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveLocation::Local(dir) => write!(f, "{}", dir.display()),
            ArchiveLocation::Bucket(url) => f.write_str(url),
        }
    }
}

/// The manifests of the chain, as verify and error messages name them.
pub const MANIFESTS: &str = "audit/manifests.jsonl";
/// The latest signed head.
pub const CHECKPOINT: &str = "audit/checkpoint";

/// How far a checkpoint replacement must have gone when it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// On stable storage: survives a power cut.
    Synced,
    /// Handed to the operating system: survives the process being killed, not a power cut
    /// (a re-signed checkpoint between two synced ones; see `writer::CHECKPOINT_EVERY`).
    Written,
}

/// The storage of one archive. See the module doc for what every implementation guarantees.
pub trait ArchiveStore: Send + Sync {
    /// Where the archive is, for messages (a directory; later a URL).
    fn location(&self) -> String;

    /// Where the object `name` is, for messages (the name need not be valid).
    fn location_of(&self, name: &str) -> String;

    /// Make the archive's place ready for writing (LocalStore: the directory and `audit/`).
    fn create(&self) -> Result<(), StoreError>;

    /// How many objects a reader should fetch at once: 0 for one per core (a local disk);
    /// more where each read waits on the network (a bucket), so that verify is not a queue
    /// of round trips.
    fn concurrent_reads(&self) -> usize {
        0
    }

    /// Before anything else when opening for writing: finish what a crashed run had started
    /// to commit, so that its files are neither lost nor written again under another name;
    /// returns how many commits were finished. (An object store finishes its pending
    /// uploads; LocalStore has nothing to finish, as its crash leftovers are discarded.)
    fn recover(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// A new local file to encode the object that will be published from it; `name` says
    /// which (a store may keep it under that name until it is published, as LocalStore does).
    fn stage(&self, name: &ObjectName) -> Result<Staged, StoreError>;

    /// Make `staged` durable and visible as `name`, never replacing an object already there
    /// ([`StoreError::AlreadyExists`]). `sha256` is the digest of the staged bytes, which the
    /// writer computed while encoding them: an object store sends it with the upload so that
    /// the service refuses bytes that changed on the way (LocalStore has nothing to check).
    fn publish(
        &self,
        staged: Staged,
        name: &ObjectName,
        sha256: &[u8; 32],
    ) -> Result<(), StoreError>;

    /// Publish a sealed file and then append the manifest line `number` that names it: the
    /// committer's step for each file. A store that can be interrupted between the two (an
    /// object store) records both first, so that [`ArchiveStore::recover`] can finish them.
    /// `on_durable` is called once the commit survives a crash (LocalStore: when the line is
    /// appended; an object store: once recorded in its spool, before the upload), so that
    /// input positions can be saved past its rows while an upload waits for the network.
    fn commit_file(
        &self,
        staged: Staged,
        name: &ObjectName,
        sha256: &[u8; 32],
        commit: ManifestCommit<'_>,
        on_durable: &mut dyn FnMut(),
    ) -> Result<(), StoreError> {
        self.publish(staged, name, sha256)?;
        self.append_manifest(commit.number, commit.line)?;
        on_durable();
        Ok(())
    }

    /// Whether [`ArchiveStore::commit_file`] wants the checkpoint that covers each commit
    /// ([`ManifestCommit::checkpoint`]) and writes it with the commit (a bucket, whose commits a
    /// later run may finish); the writer then does not write it again.
    fn keeps_commit_checkpoints(&self) -> bool {
        false
    }

    /// Every object whose name starts with `prefix/`, in any order (a missing prefix is empty).
    fn list(&self, prefix: &ObjectName) -> Result<Vec<ObjectName>, StoreError>;

    /// Open an object for reading; a missing one is an error whose
    /// [`StoreError::is_not_found`] is true.
    fn open(&self, name: &ObjectName) -> Result<ObjectReader, StoreError>;

    /// Move an object that is not part of the chain (a crashed run's leftover) out of the
    /// way, so its name is free again; `tag` makes the moved copy's name unique (LocalStore:
    /// `audit/discarded/<tag>-<name with / as _>`).
    fn discard(&self, name: &ObjectName, tag: &str) -> Result<(), StoreError>;

    /// The manifest lines as stored, each ending in `\n` (a torn last one may not);
    /// `None` when there are none yet.
    fn read_manifests(&self) -> Result<Option<Vec<u8>>, StoreError>;

    /// Append manifest line `number` (1-based: its place in the chain; `line` has no
    /// newline), durably and atomically. A store that keeps one object per line names it by
    /// `number`, create-only; LocalStore appends to one file.
    fn append_manifest(&self, number: u64, line: &[u8]) -> Result<(), StoreError>;

    /// Keep the first `len` bytes of the manifests (dropping a torn last line), durably.
    fn cut_manifests(&self, len: u64) -> Result<(), StoreError>;

    /// The checkpoint as stored; `None` when there is none.
    fn read_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError>;

    /// Replace the checkpoint whole with `text`.
    fn replace_checkpoint(&self, text: &[u8], durability: Durability) -> Result<(), StoreError>;
}

/// The manifest line that a [`ArchiveStore::commit_file`] appends, and what comes with it.
pub struct ManifestCommit<'a> {
    /// The line's number (1-based: its place in the chain).
    pub number: u64,
    /// The line, without its newline.
    pub line: &'a [u8],
    /// The checkpoint covering the chain up to and including this line (signed with the
    /// run's key, if any), for a store whose [`ArchiveStore::keeps_commit_checkpoints`].
    pub checkpoint: Option<&'a [u8]>,
}

/// What a store could not do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A name that could leave the archive (see [`ObjectName`]).
    #[error("{name:?} is not a name inside the archive: {why}")]
    BadName { name: String, why: &'static str },
    /// [`ArchiveStore::publish`] found the name taken.
    #[error("{at}: already exists; a published archive file is never replaced")]
    AlreadyExists { at: String },
    /// An I/O error at `at` (a path or URL: "No space left on device" alone does not say
    /// which disk).
    #[error("{at}: {source}")]
    Io {
        at: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// `map_err(StoreError::at(&path))`: an I/O error that names `path`.
    pub fn at(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            at: path.display().to_string(),
            source,
        }
    }

    /// The object (or its directory) does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            StoreError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }

    /// The cause without the location, for reports that name the object their own way.
    pub fn cause(&self) -> String {
        match self {
            StoreError::Io { source, .. } => source.to_string(),
            other => other.to_string(),
        }
    }
}

/// The name of an object inside an archive: `/`-separated, relative, and unable to leave the
/// archive. It is the only way to name an object to an [`ArchiveStore`].
///
/// ```
/// use secpipe::archive::store::ObjectName;
/// assert_eq!(ObjectName::new("audit/checkpoint").unwrap().as_str(), "audit/checkpoint");
/// for crafted in ["", "/etc/passwd", "../x", "events/../../x", "events//x", "./x", "a\0b"] {
///     assert!(ObjectName::new(crafted).is_err(), "{crafted:?}");
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectName(String);

impl ObjectName {
    /// Check `name`: relative, no empty, `.` or `..` segment, no NUL byte.
    pub fn new(name: impl Into<String>) -> Result<ObjectName, StoreError> {
        let name = name.into();
        let bad = |why| StoreError::BadName {
            name: name.clone(),
            why,
        };
        if name.is_empty() {
            return Err(bad("it is empty"));
        }
        if name.starts_with('/') {
            return Err(bad("it is absolute"));
        }
        if name.contains('\0') {
            return Err(bad("it holds a NUL byte"));
        }
        for segment in name.split('/') {
            match segment {
                "" => return Err(bad("it has an empty segment")),
                "." | ".." => return Err(bad("it has a `.` or `..` segment")),
                _ => {}
            }
        }
        Ok(ObjectName(name))
    }

    /// `self/child`, checked like [`ObjectName::new`].
    pub fn join(&self, child: &str) -> Result<ObjectName, StoreError> {
        ObjectName::new(format!("{}/{child}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The bytes of an object not yet published: a local file being written, and where it is
/// (a store decides where; messages name it).
pub struct Staged {
    file: File,
    path: PathBuf,
}

impl Staged {
    pub fn new(file: File, path: PathBuf) -> Staged {
        Staged { file, path }
    }

    /// Where the staged bytes are.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn into_parts(self) -> (File, PathBuf) {
        (self.file, self.path)
    }
}

impl Write for Staged {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Reads at any offset of a stored object: a local file (`pread`), or ranged GETs.
pub trait ReadAt: Send + Sync {
    /// The object's length in bytes when it was opened.
    fn len(&self) -> u64;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Read into `buf` from `offset`; 0 at the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize>;
}

/// A stored object opened for reading. It is a Parquet [`ChunkReader`], so a reader fetches
/// only the ranges it decodes.
///
/// [`ChunkReader`]: parquet::file::reader::ChunkReader
#[derive(Clone)]
pub struct ObjectReader {
    source: Arc<dyn ReadAt>,
}

impl fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectReader")
            .field("len", &self.len())
            .finish()
    }
}

impl ObjectReader {
    pub fn new(source: impl ReadAt + 'static) -> ObjectReader {
        ObjectReader {
            source: Arc::new(source),
        }
    }

    pub fn len(&self) -> u64 {
        self.source.len()
    }

    pub fn is_empty(&self) -> bool {
        self.source.is_empty()
    }

    /// A reader from offset `start` to the end.
    pub fn reader(&self, start: u64) -> ObjectRead {
        ObjectRead {
            source: Arc::clone(&self.source),
            offset: start,
        }
    }

    /// Exactly `length` bytes from `start`.
    pub fn read_range(&self, start: u64, length: usize) -> std::io::Result<Bytes> {
        let mut buf = vec![0u8; length];
        let mut filled = 0;
        while filled < length {
            let n = self
                .source
                .read_at(start + filled as u64, &mut buf[filled..])?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "expected {length} bytes at offset {start}, the object ends after {filled}"
                    ),
                ));
            }
            filled += n;
        }
        Ok(Bytes::from(buf))
    }

    /// The whole object, to its end.
    pub fn read_all(&self) -> std::io::Result<Bytes> {
        let mut bytes = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        self.reader(0).read_to_end(&mut bytes)?;
        Ok(Bytes::from(bytes))
    }
}

/// [`ObjectReader::reader`]: sequential reads from an offset.
pub struct ObjectRead {
    source: Arc<dyn ReadAt>,
    offset: u64,
}

impl Read for ObjectRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.source.read_at(self.offset, buf)?;
        self.offset += n as u64;
        Ok(n)
    }
}

impl parquet::file::reader::Length for ObjectReader {
    fn len(&self) -> u64 {
        self.source.len()
    }
}

impl parquet::file::reader::ChunkReader for ObjectReader {
    type T = BufReader<ObjectRead>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(BufReader::new(self.reader(start)))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        Ok(self.read_range(start, length)?)
    }
}

/// Every file of the two tables (`events/…`, `alerts/…`), sorted by name.
pub(crate) fn table_objects(store: &dyn ArchiveStore) -> Result<Vec<ObjectName>, StoreError> {
    let mut names = Vec::new();
    for table in [super::schema::Table::Events, super::schema::Table::Alerts] {
        names.extend(store.list(&ObjectName::new(table.dir_name())?)?);
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_archive_are_refused() {
        for crafted in [
            "",
            "/",
            "/etc/passwd",
            "..",
            "../../etc/passwd",
            "events/../../etc/passwd",
            "events/date=2026-01-01/..",
            "events/./x.parquet",
            "events//x.parquet",
            "events/x.parquet/",
            "events/x\0.parquet",
        ] {
            let err = ObjectName::new(crafted).expect_err(crafted);
            assert!(
                matches!(err, StoreError::BadName { .. }),
                "{crafted:?}: {err}"
            );
        }
        for fine in [
            "events/date=2026-11-23/part-00000001.parquet",
            "audit/checkpoint",
            "a..b/..c/d..",
        ] {
            assert_eq!(ObjectName::new(fine).expect(fine).as_str(), fine);
        }
    }

    #[test]
    fn a_join_cannot_climb_out_either() {
        let events = ObjectName::new("events").expect("valid");
        assert!(events.join("..").is_err());
        assert!(events.join("../audit").is_err());
        assert!(events.join("/x").is_err());
        assert_eq!(events.join("x").expect("valid").as_str(), "events/x");
    }

    /// An in-memory object for the reader tests.
    struct Memory(Vec<u8>);

    impl ReadAt for Memory {
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(self.0.len());
            // Short reads on purpose: callers must loop.
            let n = buf.len().min(self.0.len() - start).min(3);
            buf[..n].copy_from_slice(&self.0[start..start + n]);
            Ok(n)
        }
    }

    #[test]
    fn ranged_reads_loop_over_short_reads_and_refuse_to_run_past_the_end() {
        let reader = ObjectReader::new(Memory(b"0123456789".to_vec()));
        assert_eq!(&reader.read_range(2, 7).expect("in range")[..], b"2345678");
        assert_eq!(&reader.read_all().expect("all")[..], b"0123456789");
        let past = reader.read_range(8, 5).expect_err("past the end");
        assert_eq!(past.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
