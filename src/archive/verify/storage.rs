//! The "storage protection" part of `verify` for an archive in an S3 bucket: beside the
//! cryptographic result, how the bucket keeps the objects the verified chain relies on.
//!
//! ## What is reported
//! For every object the chain relies on (each manifest's `path`, each manifest object
//! `audit/manifests/<n>.json`, the checkpoints `audit/checkpoints/<k>.note`), from the
//! bucket's version listing:
//! - `intact`: one version, never deleted;
//! - `overwritten`: more than one version, or a delete marker below the current version
//!   (the sealed version is the oldest; the current one is compared with it by ETag);
//! - `deleted`: the current version is a delete marker;
//! - `missing`: no version at all is left (every version was deleted: only possible without
//!   Object Lock, or after its retention ended);
//! - `unknown`: the listing stopped early ([`InspectLimits`]) before reaching it;
//!
//! and the Object Lock of the sealed version (mode and retain-until, or `unlocked`), plus
//! the bucket's versioning status and default retention. Every key the listing shows with a
//! chain object's name (`audit/manifests/<digits>.json`, `audit/checkpoints/<digits>.note`) is
//! examined too, even one no current manifest names: a manifest object hidden under a delete
//! marker is still a chain object. Any other key is counted among the other keys.
//!
//! ## The verdict
//! `deleted`, `missing`, and `overwritten` with current bytes other than the sealed ones make
//! the verdict TAMPERED (exit 1): what a reader of the bucket gets today is not what was
//! sealed (verify's cryptographic checks on the bucket find the same, as `missing_file`,
//! `modified` or a `broken_link`; a storage problem is added only for an object that has no
//! problem yet). An `overwritten` object whose current version has the sealed bytes again is
//! a **warning, and the cryptographic verdict stands**: the evidence a reader gets is byte
//! for byte what was sealed, which is what the chain proves; the extra version proves that
//! someone with write access wrote over a sealed object (a policy breach to investigate, which
//! the warning names), not that the evidence changed. Object Lock facts (unlocked objects,
//! versioning off) are reported, never a verdict: they are storage policy, not tampering.
//!
//! ## Limits
//! The listing is attacker-controlled: versions are folded into a small record per relied
//! key as they stream by, extra keys are counted (the first [`MAX_LISTED`] named), at most
//! [`MAX_EXTRA_AUDIT_KEYS`] unnamed `audit/` keys are examined, and the report lists at
//! most [`MAX_LISTED`] objects of each kind and counts the rest. Names are escaped for a
//! terminal ([`printable`]) in the text report.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::archive::store::chain_number;
use crate::archive::store::s3_inspect::{
    BucketProtection, InspectError, InspectLimits, ObjectLock, ObjectVersion, S3Inspector,
    S3Location, blocking,
};

/// The most objects of each kind a report names.
pub const MAX_LISTED: usize = 20;
/// The most objects a `--json` report describes one by one.
pub const MAX_DESCRIBED: usize = 1000;
/// The most `audit/` keys not named by the chain that are examined (the rest are counted).
pub const MAX_EXTRA_AUDIT_KEYS: usize = 100_000;
/// Intact objects the text report shows with their lock, as examples.
const INTACT_EXAMPLES: usize = 3;
/// HEAD requests in flight for the Object Lock of the sealed versions.
const LOCK_REQUESTS_IN_FLIGHT: usize = 16;

/// What the bucket's versions say about one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectState {
    Intact,
    Overwritten,
    Deleted,
    Missing,
    Unknown,
}

impl ObjectState {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectState::Intact => "intact",
            ObjectState::Overwritten => "overwritten",
            ObjectState::Deleted => "deleted",
            ObjectState::Missing => "missing",
            ObjectState::Unknown => "unknown",
        }
    }
}

/// One relied-on object in the bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectProtection {
    /// The archive object name (without the prefix).
    pub name: String,
    pub state: ObjectState,
    /// Versions holding bytes, delete markers not counted.
    pub versions: u64,
    pub delete_markers: u64,
    /// `overwritten` only: the current version has the sealed version's ETag.
    pub current_is_sealed_bytes: bool,
    /// The Object Lock of the sealed (oldest) version; `None` when it could not be read or
    /// no version is left.
    pub lock: Option<ObjectLock>,
}

/// The storage section of a verify report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StorageProtection {
    pub location: String,
    pub bucket: Option<BucketProtection>,
    /// Relied-on objects, by state.
    pub intact: u64,
    pub overwritten: u64,
    pub deleted: u64,
    pub missing: u64,
    pub unknown: u64,
    /// Sealed versions by lock mode (`COMPLIANCE`, `GOVERNANCE`, `unlocked`, `unread`), with
    /// the earliest retain-until among them.
    pub locks: Vec<LockGroup>,
    /// Every object that is not intact, then intact ones, up to `MAX_DESCRIBED`.
    pub objects: Vec<ObjectProtection>,
    pub objects_not_described: u64,
    /// Keys under the prefix that the chain does not rely on (none is expected besides
    /// `audit/discarded/` leftovers), and the first `MAX_LISTED` of them.
    pub other_keys: u64,
    pub other_keys_named: Vec<String>,
    /// `audit/` keys past `MAX_EXTRA_AUDIT_KEYS` that were counted, not examined.
    pub audit_keys_not_examined: u64,
    pub listed_versions: u64,
    pub listed_pages: u64,
    /// Why the listing (and so this section) is incomplete.
    pub incomplete: Option<String>,
    /// Requests that failed (the first `MAX_LISTED`), and how many more did.
    pub errors: Vec<String>,
    pub errors_not_named: u64,
}

/// Sealed versions under one lock mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockGroup {
    pub mode: String,
    pub objects: u64,
    pub earliest_retain_until: Option<String>,
}

/// What the listing said about one key, folded as its versions stream by.
#[derive(Default)]
struct KeyHistory {
    name: String,
    versions: u64,
    delete_markers: u64,
    latest_is_marker: bool,
    latest_etag: Option<String>,
    /// The oldest version holding bytes seen so far (S3 lists a key's versions newest first).
    sealed_version: Option<String>,
    sealed_etag: Option<String>,
}

impl KeyHistory {
    fn add(&mut self, version: ObjectVersion) {
        if version.delete_marker {
            self.delete_markers += 1;
            if version.is_latest {
                self.latest_is_marker = true;
            }
            return;
        }
        self.versions += 1;
        if version.is_latest {
            self.latest_etag = Some(version.etag.clone());
        }
        self.sealed_version = Some(version.version_id);
        self.sealed_etag = Some(version.etag);
    }

    fn state(&self, listing_complete: bool) -> ObjectState {
        if self.versions == 0 && self.delete_markers == 0 {
            if listing_complete {
                ObjectState::Missing
            } else {
                ObjectState::Unknown
            }
        } else if self.latest_is_marker || self.versions == 0 {
            ObjectState::Deleted
        } else if self.versions > 1 || self.delete_markers > 0 {
            ObjectState::Overwritten
        } else {
            ObjectState::Intact
        }
    }
}

/// Inspect the bucket at `location` (configured from the environment) for the objects
/// `relied_on` (archive object names); blocking, see `s3_inspect::blocking`. A failure to
/// connect is the `Err`; failures of single requests are in the report's `errors`.
pub fn inspect_storage(
    location: &S3Location,
    relied_on: &[String],
    limits: InspectLimits,
) -> Result<StorageProtection, InspectError> {
    blocking(async {
        let inspector = Arc::new(S3Inspector::from_env(location).await?);
        Ok(inspect(inspector, relied_on, limits).await)
    })
}

async fn inspect(
    inspector: Arc<S3Inspector>,
    relied_on: &[String],
    limits: InspectLimits,
) -> StorageProtection {
    let location = inspector.location().clone();
    let mut report = StorageProtection {
        location: location.to_string(),
        ..StorageProtection::default()
    };
    match inspector.bucket_protection().await {
        Ok(bucket) => report.bucket = Some(bucket),
        Err(e) => report.error(e.to_string()),
    }

    let key_prefix = location.key_prefix();
    let mut histories: HashMap<String, KeyHistory> = relied_on
        .iter()
        .map(|name| {
            let history = KeyHistory {
                name: name.clone(),
                ..KeyHistory::default()
            };
            (location.key(name), history)
        })
        .collect();
    let mut extra_audit_keys = 0usize;
    let mut other_keys = (0u64, Vec::new(), String::new());
    let mut audit_not_examined = 0u64;
    let listing = inspector
        .list_versions(limits, |version| {
            if let Some(history) = histories.get_mut(&version.key) {
                history.add(version);
                return;
            }
            let name = version
                .key
                .strip_prefix(&key_prefix)
                .unwrap_or(&version.key);
            // Only names the writer gives chain objects; a key planted under `audit/` with
            // another name is one of the other keys.
            let chain_object = [
                ("audit/manifests/", ".json"),
                ("audit/checkpoints/", ".note"),
            ]
            .iter()
            .any(|(dir, suffix)| chain_number(name, dir, suffix).is_some());
            if chain_object {
                if extra_audit_keys < MAX_EXTRA_AUDIT_KEYS {
                    extra_audit_keys += 1;
                    let mut history = KeyHistory {
                        name: name.to_owned(),
                        ..KeyHistory::default()
                    };
                    let key = version.key.clone();
                    history.add(version);
                    histories.insert(key, history);
                } else {
                    audit_not_examined += 1;
                }
                return;
            }
            // Count each other key once (its versions arrive together).
            if other_keys.2 != version.key {
                other_keys.0 += 1;
                if other_keys.1.len() < MAX_LISTED {
                    other_keys.1.push(name.to_owned());
                }
                other_keys.2 = version.key;
            }
        })
        .await;
    report.other_keys = other_keys.0;
    report.other_keys_named = other_keys.1;
    report.audit_keys_not_examined = audit_not_examined;
    let complete = match listing {
        Ok(summary) => {
            report.listed_pages = summary.pages;
            report.listed_versions = summary.entries;
            report.incomplete = summary.incomplete;
            report.incomplete.is_none()
        }
        Err(e) => {
            report.incomplete = Some(format!("the listing failed: {e}"));
            false
        }
    };

    let mut objects: Vec<ObjectProtection> = Vec::with_capacity(histories.len());
    let mut sealed_versions = Vec::new();
    let mut histories: Vec<KeyHistory> = histories.into_values().collect();
    histories.sort_by(|a, b| a.name.cmp(&b.name));
    for history in histories {
        let state = history.state(complete);
        if let Some(version) = &history.sealed_version {
            sealed_versions.push((objects.len(), history.name.clone(), version.clone()));
        }
        objects.push(ObjectProtection {
            name: history.name,
            state,
            versions: history.versions,
            delete_markers: history.delete_markers,
            current_is_sealed_bytes: !history.latest_is_marker
                && history.latest_etag.is_some()
                && history.latest_etag == history.sealed_etag,
            lock: None,
        });
    }

    // The Object Lock of each sealed version, a few HEADs at a time.
    let mut in_flight = tokio::task::JoinSet::new();
    let mut pending = sealed_versions.into_iter();
    loop {
        while in_flight.len() < LOCK_REQUESTS_IN_FLIGHT {
            let Some((index, name, version)) = pending.next() else {
                break;
            };
            let inspector = Arc::clone(&inspector);
            in_flight.spawn(async move { (index, inspector.object_lock(&name, &version).await) });
        }
        let Some(done) = in_flight.join_next().await else {
            break;
        };
        match done {
            Ok((index, Ok(lock))) => objects[index].lock = Some(lock),
            Ok((_, Err(e))) => report.error(e.to_string()),
            Err(e) => report.error(format!("a HEAD request did not finish: {e}")),
        }
    }

    report.tally(objects);
    report
}

impl StorageProtection {
    fn error(&mut self, error: String) {
        if self.errors.len() < MAX_LISTED {
            self.errors.push(error);
        } else {
            self.errors_not_named += 1;
        }
    }

    /// Count `objects` by state and lock, and keep the most telling ones.
    fn tally(&mut self, mut objects: Vec<ObjectProtection>) {
        let mut locks: Vec<LockGroup> = Vec::new();
        for object in &objects {
            match object.state {
                ObjectState::Intact => self.intact += 1,
                ObjectState::Overwritten => self.overwritten += 1,
                ObjectState::Deleted => self.deleted += 1,
                ObjectState::Missing => self.missing += 1,
                ObjectState::Unknown => self.unknown += 1,
            }
            if object.versions == 0 {
                continue;
            }
            let (mode, until) = match &object.lock {
                None => ("unread".to_owned(), None),
                Some(lock) => (
                    lock.mode.clone().unwrap_or_else(|| "unlocked".into()),
                    lock.retain_until.clone(),
                ),
            };
            match locks.iter_mut().find(|g| g.mode == mode) {
                Some(group) => {
                    group.objects += 1;
                    if let Some(until) = until
                        && group
                            .earliest_retain_until
                            .as_ref()
                            .is_none_or(|e| until < *e)
                    {
                        group.earliest_retain_until = Some(until);
                    }
                }
                None => locks.push(LockGroup {
                    mode,
                    objects: 1,
                    earliest_retain_until: until,
                }),
            }
        }
        locks.sort_by(|a, b| a.mode.cmp(&b.mode));
        self.locks = locks;
        // Problems first, then by name.
        objects.sort_by_key(|o| (o.state == ObjectState::Intact, o.name.clone()));
        self.objects_not_described = objects.len().saturating_sub(MAX_DESCRIBED) as u64;
        objects.truncate(MAX_DESCRIBED);
        self.objects = objects;
    }

    /// The objects whose current bytes in the bucket are not the sealed ones: tampering.
    pub fn tampered(&self) -> impl Iterator<Item = &ObjectProtection> {
        self.objects.iter().filter(|o| match o.state {
            ObjectState::Deleted | ObjectState::Missing => true,
            ObjectState::Overwritten => !o.current_is_sealed_bytes,
            ObjectState::Intact | ObjectState::Unknown => false,
        })
    }

    /// What happened to `object`, in a sentence (for problems and the text report).
    pub fn describe(object: &ObjectProtection) -> String {
        let name = printable(&object.name);
        match object.state {
            ObjectState::Intact => format!("{name}: 1 version"),
            ObjectState::Overwritten if object.current_is_sealed_bytes => format!(
                "{name}: overwritten ({} versions, {} delete marker(s)); the current version \
                 has the sealed bytes again",
                object.versions, object.delete_markers
            ),
            ObjectState::Overwritten => format!(
                "{name}: overwritten ({} versions, {} delete marker(s)); the current version \
                 is not the sealed one",
                object.versions, object.delete_markers
            ),
            ObjectState::Deleted => format!(
                "{name}: deleted (a delete marker is the current version; {} version(s) \
                 below it)",
                object.versions
            ),
            ObjectState::Missing => {
                format!("{name}: missing (no version of it is left in the bucket)")
            }
            ObjectState::Unknown => format!("{name}: unknown (the listing did not reach it)"),
        }
    }
}

impl fmt::Display for StorageProtection {
    /// The `storage` lines of the text report.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage   {}", printable(&self.location))?;
        match &self.bucket {
            Some(bucket) => {
                write!(f, ": versioning {}", bucket.versioning)?;
                if bucket.object_lock {
                    write!(f, ", Object Lock on")?;
                    match (&bucket.default_mode, &bucket.default_period) {
                        (Some(mode), Some(period)) => {
                            write!(f, ", default retention {mode} {period}")?
                        }
                        _ => write!(f, ", no default retention")?,
                    }
                } else {
                    write!(f, ", no Object Lock")?;
                }
            }
            None => write!(f, ": bucket settings unreadable")?,
        }
        write!(
            f,
            "\nstorage   {} relied-on objects: {} intact, {} overwritten, {} deleted, {} missing",
            self.intact + self.overwritten + self.deleted + self.missing + self.unknown,
            self.intact,
            self.overwritten,
            self.deleted,
            self.missing
        )?;
        if self.unknown > 0 {
            write!(f, ", {} unknown", self.unknown)?;
        }
        for group in &self.locks {
            write!(
                f,
                "\nstorage   lock {}: {} object(s)",
                group.mode, group.objects
            )?;
            if let Some(until) = &group.earliest_retain_until {
                write!(f, ", retained until {until} or later")?;
            }
        }
        let not_intact = self
            .objects
            .iter()
            .filter(|o| o.state != ObjectState::Intact);
        let mut named = 0;
        for object in not_intact.clone().take(MAX_LISTED) {
            write!(
                f,
                "\nstorage   - {} {}",
                object.state.as_str(),
                Self::describe(object)
            )?;
            named += 1;
        }
        let more =
            (self.overwritten + self.deleted + self.missing + self.unknown).saturating_sub(named);
        if more > 0 {
            write!(f, "\nstorage   and {more} more")?;
        }
        // A few intact objects with their lock, as examples (all are in `--json`).
        for object in self
            .objects
            .iter()
            .filter(|o| o.state == ObjectState::Intact)
            .take(INTACT_EXAMPLES)
        {
            let lock = match &object.lock {
                Some(ObjectLock {
                    mode: Some(mode),
                    retain_until,
                    ..
                }) => format!("{mode} until {}", retain_until.as_deref().unwrap_or("?")),
                Some(_) => "unlocked".to_owned(),
                None => "lock unread".to_owned(),
            };
            write!(
                f,
                "\nstorage   - intact {}: 1 version, {lock}",
                printable(&object.name)
            )?;
        }
        if self.other_keys > 0 {
            let names: Vec<String> = self.other_keys_named.iter().map(|n| printable(n)).collect();
            write!(
                f,
                "\nstorage   {} other key(s) under the prefix: {}",
                self.other_keys,
                names.join(", ")
            )?;
        }
        if self.audit_keys_not_examined > 0 {
            write!(
                f,
                "\nstorage   {} more audit/ key version(s) counted, not examined",
                self.audit_keys_not_examined
            )?;
        }
        if let Some(why) = &self.incomplete {
            write!(f, "\nstorage   INCOMPLETE: {}", printable(why))?;
        }
        for error in &self.errors {
            write!(f, "\nstorage   error: {}", printable(error))?;
        }
        if self.errors_not_named > 0 {
            write!(f, "\nstorage   and {} more error(s)", self.errors_not_named)?;
        }
        Ok(())
    }
}

/// `text` safe to print on a terminal: control characters (escape sequences, newlines that
/// would forge report lines) and characters that render as nothing or reorder text (bidi
/// controls, zero-width) become `\u{..}`, and `\` becomes `\\`, so a key typed as the
/// escape's text stays distinguishable from the real character.
///
/// ```
/// use secpipe::archive::verify::printable;
/// assert_eq!(printable("a\u{1b}[2Jb\nstorage   - intact x"), "a\\u{1b}[2Jb\\u{a}storage   - intact x");
/// assert_eq!(printable("evil\u{202e}txt.parquet"), "evil\\u{202e}txt.parquet");
/// assert_eq!(printable("a\\u{1b}"), "a\\\\u{1b}");
/// ```
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let invisible = matches!(
            c,
            '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}'
                | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{e0000}'..='\u{e007f}'
        );
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || invisible => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(key: &str, id: &str, latest: bool, marker: bool, etag: &str) -> ObjectVersion {
        ObjectVersion {
            key: key.into(),
            version_id: id.into(),
            is_latest: latest,
            delete_marker: marker,
            last_modified: String::new(),
            size: 1,
            etag: etag.into(),
        }
    }

    fn history(entries: &[ObjectVersion]) -> KeyHistory {
        let mut h = KeyHistory::default();
        for e in entries {
            h.add(e.clone());
        }
        h
    }

    #[test]
    fn each_version_history_gets_its_state_and_the_oldest_version_is_the_sealed_one() {
        let one = history(&[version("k", "v1", true, false, "e1")]);
        assert_eq!(one.state(true), ObjectState::Intact);
        let over = history(&[
            version("k", "v2", true, false, "e2"),
            version("k", "v1", false, false, "e1"),
        ]);
        assert_eq!(over.state(true), ObjectState::Overwritten);
        assert_eq!(over.sealed_version.as_deref(), Some("v1"));
        assert_ne!(over.latest_etag, over.sealed_etag);
        let restored = history(&[
            version("k", "v2", true, false, "e1"),
            version("k", "v1", false, false, "e1"),
        ]);
        assert_eq!(restored.latest_etag, restored.sealed_etag);
        let deleted = history(&[
            version("k", "m1", true, true, ""),
            version("k", "v1", false, false, "e1"),
        ]);
        assert_eq!(deleted.state(true), ObjectState::Deleted);
        // moto lists delete markers after the versions: the latest flag decides, not order.
        let deleted_moto_order = history(&[
            version("k", "v1", false, false, "e1"),
            version("k", "m1", true, true, ""),
        ]);
        assert_eq!(deleted_moto_order.state(true), ObjectState::Deleted);
        let deleted_then_put = history(&[
            version("k", "v2", true, false, "e1"),
            version("k", "m1", false, true, ""),
        ]);
        assert_eq!(deleted_then_put.state(true), ObjectState::Overwritten);
        let gone = history(&[]);
        assert_eq!(gone.state(true), ObjectState::Missing);
        // A listing cut short cannot say that a key it never reached is gone.
        assert_eq!(gone.state(false), ObjectState::Unknown);
    }

    fn object(name: &str, state: ObjectState, same: bool) -> ObjectProtection {
        ObjectProtection {
            name: name.into(),
            state,
            versions: 2,
            delete_markers: 0,
            current_is_sealed_bytes: same,
            lock: Some(ObjectLock {
                mode: Some("COMPLIANCE".into()),
                retain_until: Some(format!("2027-01-0{}T00:00:00Z", name.len() % 9 + 1)),
                legal_hold: None,
            }),
        }
    }

    #[test]
    fn only_changed_current_bytes_are_tampering_a_restored_copy_is_not() {
        let mut report = StorageProtection::default();
        report.tally(vec![
            object("a", ObjectState::Intact, false),
            object("b", ObjectState::Overwritten, true),
            object("c", ObjectState::Overwritten, false),
            object("d", ObjectState::Deleted, false),
            object("e", ObjectState::Missing, false),
            object("f", ObjectState::Unknown, false),
        ]);
        let tampered: Vec<&str> = report.tampered().map(|o| o.name.as_str()).collect();
        assert_eq!(tampered, ["c", "d", "e"]);
        assert_eq!(
            (
                report.intact,
                report.overwritten,
                report.deleted,
                report.missing,
                report.unknown
            ),
            (1, 2, 1, 1, 1)
        );
    }

    #[test]
    fn the_report_is_bounded_and_hostile_names_cannot_forge_lines() {
        let mut report = StorageProtection::default();
        let many: Vec<ObjectProtection> = (0..MAX_DESCRIBED + 50)
            .map(|i| {
                let mut o = object(
                    &format!("x{i}\n\u{1b}[2Jstorage   - intact fake"),
                    ObjectState::Deleted,
                    false,
                );
                // The earliest retain-until is on the 700th object, not the first.
                let day = if i == 700 { 1 } else { 2 + i % 7 };
                if let Some(lock) = &mut o.lock {
                    lock.retain_until = Some(format!("2027-01-0{day}T00:00:00Z"));
                }
                o
            })
            .collect();
        report.tally(many);
        assert_eq!(report.objects.len(), MAX_DESCRIBED);
        assert_eq!(report.objects_not_described, 50);
        let text = report.to_string();
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains(&format!("and {} more", MAX_DESCRIBED + 50 - MAX_LISTED)));
        // One line per named object, plus the fixed lines: none injected by the names.
        assert_eq!(
            text.lines().filter(|l| l.contains("intact fake")).count(),
            MAX_LISTED
        );
        assert!(text.lines().all(|l| l.starts_with("storage   ")), "{text}");
        assert_eq!(report.locks.len(), 1);
        assert_eq!(report.locks[0].objects, (MAX_DESCRIBED + 50) as u64);
        assert_eq!(
            report.locks[0].earliest_retain_until.as_deref(),
            Some("2027-01-01T00:00:00Z")
        );
    }
}
