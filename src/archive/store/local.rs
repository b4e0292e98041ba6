//! [`LocalStore`]: an archive in a directory of the local file system.
//!
//! Objects are files under the directory, named by their [`ObjectName`] with `/` as the path
//! separator. Durability is fsync: a staged file is fsynced before its rename, and the
//! directory after it, so a power cut leaves either no file under the final name or the whole
//! file. Staged files live beside their final name (`part-unsealed-<n>.parquet.tmp` in the
//! date directory), so publishing is a rename within one directory and a crashed run's
//! staged files are visible to [`super::table_objects`], which is how open finds and discards
//! them and how verify warns about them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{
    ArchiveStore, CHECKPOINT, Durability, MANIFESTS, ObjectName, ObjectReader, ReadAt, Staged,
    StoreError,
};

/// An archive in the directory `dir`.
pub struct LocalStore {
    dir: PathBuf,
    /// `audit/manifests.jsonl`, opened for appending on first use.
    manifests: Mutex<Option<File>>,
}

impl LocalStore {
    pub fn new(dir: impl Into<PathBuf>) -> LocalStore {
        LocalStore {
            dir: dir.into(),
            manifests: Mutex::new(None),
        }
    }

    /// The archive's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that [`ArchiveStore::list`] showed as `name`: the file of `name`, or, where no
    /// such file exists, the one whose name is not UTF-8 and was listed lossily (a file named
    /// `x\xff.parquet.tmp` is listed as `x\u{fffd}.parquet.tmp`), so that a crashed run's
    /// leftover, or a file someone planted, is moved aside whatever bytes its name holds.
    fn listed_path(&self, name: &ObjectName) -> Result<PathBuf, StoreError> {
        let path = self.path_of(name)?;
        if path.symlink_metadata().is_ok() {
            return Ok(path);
        }
        let mut found = self.dir.clone();
        for segment in name.as_str().split('/') {
            let exact = found.join(segment);
            found = if exact.symlink_metadata().is_ok() {
                exact
            } else {
                lossy_entry(&found, segment).unwrap_or(exact)
            };
        }
        Ok(found)
    }

    /// The file of `name`. An [`ObjectName`] cannot leave the directory; on Windows a
    /// backslash or a drive colon in a segment still could, so they are refused there.
    fn path_of(&self, name: &ObjectName) -> Result<PathBuf, StoreError> {
        if cfg!(windows) && name.as_str().contains(['\\', ':']) {
            return Err(StoreError::BadName {
                name: name.to_string(),
                why: "a backslash or colon is a path separator on Windows",
            });
        }
        Ok(self.dir.join(name.as_str()))
    }
}

impl ArchiveStore for LocalStore {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn location_of(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn create(&self) -> Result<(), StoreError> {
        let audit = self.dir.join("audit");
        std::fs::create_dir_all(&audit).map_err(StoreError::at(&audit))
    }

    fn stage(&self, name: &ObjectName) -> Result<Staged, StoreError> {
        let path = self.path_of(name)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(StoreError::at(parent))?;
        }
        let file = File::create(&path).map_err(StoreError::at(&path))?;
        Ok(Staged::new(file, path))
    }

    fn publish(
        &self,
        staged: Staged,
        name: &ObjectName,
        _sha256: &[u8; 32],
    ) -> Result<(), StoreError> {
        let (file, staged_path) = staged.into_parts();
        file.sync_all().map_err(StoreError::at(&staged_path))?;
        drop(file);
        let path = self.path_of(name)?;
        let parent = path.parent().unwrap_or(&self.dir);
        if staged_path.parent() != Some(parent) {
            std::fs::create_dir_all(parent).map_err(StoreError::at(parent))?;
        }
        match rename_noreplace(&staged_path, &path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::AlreadyExists {
                    at: path.display().to_string(),
                });
            }
            Err(e) => return Err(StoreError::at(&staged_path)(e)),
        }
        sync_dir(parent)
    }

    fn list(&self, prefix: &ObjectName) -> Result<Vec<ObjectName>, StoreError> {
        let mut out = Vec::new();
        let mut stack = vec![(prefix.clone(), self.path_of(prefix)?)];
        while let Some((name, path)) = stack.pop() {
            let entries = match std::fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::at(&path)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(StoreError::at(&path))?;
                // A directory entry is never empty, `.`, `..`, nor holds `/` or NUL, so its
                // name is a valid segment (a non-UTF-8 one is shown lossily, as by `ls`).
                let child = name.join(&entry.file_name().to_string_lossy())?;
                if entry.file_type().map_err(StoreError::at(&path))?.is_dir() {
                    stack.push((child, entry.path()));
                } else {
                    out.push(child);
                }
            }
        }
        Ok(out)
    }

    fn open(&self, name: &ObjectName) -> Result<ObjectReader, StoreError> {
        let path = self.path_of(name)?;
        let file = File::open(&path).map_err(StoreError::at(&path))?;
        let len = file.metadata().map_err(StoreError::at(&path))?.len();
        Ok(ObjectReader::new(LocalFile { file, len }))
    }

    fn discard(&self, name: &ObjectName, tag: &str) -> Result<(), StoreError> {
        let path = self.listed_path(name)?;
        let target_dir = self.dir.join("audit").join("discarded");
        std::fs::create_dir_all(&target_dir).map_err(StoreError::at(&target_dir))?;
        let target = target_dir.join(format!("{tag}-{}", name.as_str().replace('/', "_")));
        std::fs::rename(&path, &target).map_err(StoreError::at(&path))
    }

    fn read_manifests(&self) -> Result<Option<Vec<u8>>, StoreError> {
        read_if_present(&self.dir.join(MANIFESTS))
    }

    fn append_manifest(&self, _number: u64, line: &[u8]) -> Result<(), StoreError> {
        let path = self.dir.join(MANIFESTS);
        // Only the committer appends; the lock is never contended.
        let mut handle = self.manifests.lock().unwrap_or_else(|e| e.into_inner());
        let file = match &mut *handle {
            Some(file) => file,
            none => none.insert(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(StoreError::at(&path))?,
            ),
        };
        // One write of the line and its newline: an O_APPEND write is not interleaved with
        // another, and a crash tears at most this last line.
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
        file.write_all(&bytes).map_err(StoreError::at(&path))?;
        file.sync_data().map_err(StoreError::at(&path))
    }

    fn cut_manifests(&self, len: u64) -> Result<(), StoreError> {
        let path = self.dir.join(MANIFESTS);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(StoreError::at(&path))?;
        file.set_len(len).map_err(StoreError::at(&path))?;
        file.sync_all().map_err(StoreError::at(&path))
    }

    fn read_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        read_if_present(&self.dir.join(CHECKPOINT))
    }

    /// Through a temporary file and a rename (readers see the old or the new one, never a
    /// mix); [`Durability::Synced`]: fsync the file and the directory.
    fn replace_checkpoint(&self, text: &[u8], durability: Durability) -> Result<(), StoreError> {
        let durable = durability == Durability::Synced;
        let audit = self.dir.join("audit");
        let tmp = audit.join("checkpoint.tmp");
        let mut file = File::create(&tmp).map_err(StoreError::at(&tmp))?;
        file.write_all(text).map_err(StoreError::at(&tmp))?;
        if durable {
            file.sync_all().map_err(StoreError::at(&tmp))?;
        }
        std::fs::rename(&tmp, audit.join("checkpoint")).map_err(StoreError::at(&tmp))?;
        if durable {
            sync_dir(&audit)?;
        }
        Ok(())
    }
}

/// An open local file, read with `pread` (no shared cursor: readers on several threads, or
/// several readers of one Parquet file, do not disturb each other).
struct LocalFile {
    file: File,
    len: u64,
}

impl ReadAt for LocalFile {
    fn len(&self) -> u64 {
        self.len
    }

    #[cfg(unix)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
    }

    #[cfg(windows)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        std::os::windows::fs::FileExt::seek_read(&self.file, buf, offset)
    }
}

/// The entry of `dir` whose name is not UTF-8 and reads as `shown` once made lossy.
fn lossy_entry(dir: &Path, shown: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|entry| {
            let name = entry.file_name();
            name.to_str().is_none() && name.to_string_lossy() == shown
        })
        .map(|entry| entry.path())
}

fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::at(path)(e)),
    }
}

/// fsync a directory so a rename in it is durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::at(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Rename `from` to `to` unless `to` exists (then `AlreadyExists`, and nothing changes).
#[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let from_c = CString::new(from.as_os_str().as_bytes())?;
    let to_c = CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both arguments are NUL-terminated strings that outlive the call; renameat2 only
    // reads them.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        // A file system (or kernel) without RENAME_NOREPLACE: a hard link is create-only too.
        Some(libc::EINVAL) | Some(libc::ENOSYS) => link_then_unlink(from, to),
        _ => Err(error),
    }
}

#[cfg(not(all(target_os = "linux", any(target_env = "gnu", target_env = "musl"))))]
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    link_then_unlink(from, to)
}

/// A create-only rename in two steps. A crash between them leaves the staged name too, which
/// the next open discards as an unsealed leftover.
fn link_then_unlink(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage_bytes(store: &LocalStore, name: &str, bytes: &[u8]) -> Staged {
        let mut staged = store
            .stage(&ObjectName::new(name).expect("valid"))
            .expect("stage");
        staged.write_all(bytes).expect("write");
        staged
    }

    #[test]
    fn publish_never_replaces_a_file_under_the_final_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path());
        let name = ObjectName::new("events/date=2026-11-23/part-00000003.parquet").expect("ok");
        let planted = dir.path().join(name.as_str());
        std::fs::create_dir_all(planted.parent().expect("parent")).expect("mkdir");
        std::fs::write(&planted, b"planted").expect("plant");

        let staged = stage_bytes(
            &store,
            "events/date=2026-11-23/part-unsealed.tmp",
            b"sealed",
        );
        let staged_path = staged.path().to_path_buf();
        let err = store
            .publish(staged, &name, &[0; 32])
            .expect_err("the name is taken");
        assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
        assert_eq!(std::fs::read(&planted).expect("still there"), b"planted");
        // The staged bytes are left for the next open to discard, not lost in place.
        assert_eq!(std::fs::read(&staged_path).expect("staged"), b"sealed");
    }

    #[test]
    fn published_files_are_listed_read_and_discarded_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path());
        let name = ObjectName::new("events/date=2026-11-23/part-00000000.parquet").expect("ok");
        let staged = stage_bytes(&store, "events/date=2026-11-23/x.tmp", b"0123456789");
        store.publish(staged, &name, &[0; 32]).expect("publish");
        let events = ObjectName::new("events").expect("ok");
        assert_eq!(store.list(&events).expect("list"), vec![name.clone()]);
        let reader = store.open(&name).expect("open");
        assert_eq!(reader.len(), 10);
        assert_eq!(&reader.read_range(3, 4).expect("range")[..], b"3456");
        store.discard(&name, "7").expect("discard");
        assert!(store.open(&name).expect_err("moved").is_not_found());
        let moved = dir
            .path()
            .join("audit/discarded/7-events_date=2026-11-23_part-00000000.parquet");
        assert_eq!(std::fs::read(moved).expect("moved copy"), b"0123456789");
        let missing = ObjectName::new("alerts").expect("ok");
        assert!(store.list(&missing).expect("no alerts yet").is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_file_whose_name_is_not_utf8_is_listed_and_discarded() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path());
        // A non-UTF-8 directory and file name, as a crash cannot make but a person can.
        let raw_dir = dir
            .path()
            .join("events")
            .join(std::ffi::OsStr::from_bytes(b"d\xfe"));
        std::fs::create_dir_all(&raw_dir).expect("mkdir");
        let raw_file = raw_dir.join(std::ffi::OsStr::from_bytes(b"x\xff.parquet.tmp"));
        std::fs::write(&raw_file, b"leftover").expect("plant");
        let events = ObjectName::new("events").expect("ok");
        let listed = store.list(&events).expect("list");
        assert_eq!(
            listed.iter().map(ObjectName::as_str).collect::<Vec<_>>(),
            vec!["events/d\u{fffd}/x\u{fffd}.parquet.tmp"]
        );
        store.discard(&listed[0], "9").expect("discard");
        assert!(!raw_file.exists());
        let moved = dir
            .path()
            .join("audit/discarded/9-events_d\u{fffd}_x\u{fffd}.parquet.tmp");
        assert_eq!(std::fs::read(moved).expect("moved copy"), b"leftover");
    }

    #[test]
    fn manifests_append_whole_lines_and_cut_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path());
        assert_eq!(store.read_manifests().expect("read"), None);
        store.create().expect("create");
        store.append_manifest(1, b"{\"a\":1}").expect("append");
        store.append_manifest(2, b"{\"b\":2}").expect("append");
        let bytes = store.read_manifests().expect("read").expect("present");
        assert_eq!(bytes, b"{\"a\":1}\n{\"b\":2}\n");
        store.cut_manifests(8).expect("cut");
        assert_eq!(
            store.read_manifests().expect("read").expect("present"),
            b"{\"a\":1}\n"
        );
        store
            .replace_checkpoint(b"one", Durability::Synced)
            .expect("write");
        store
            .replace_checkpoint(b"two", Durability::Written)
            .expect("replace");
        assert_eq!(
            store.read_checkpoint().expect("read"),
            Some(b"two".to_vec())
        );
    }
}
