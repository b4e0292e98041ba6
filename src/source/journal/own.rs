//! secpipe's own journal entries, which it must not read back.
//!
//! Run as a systemd service, secpipe's stderr (warnings, the summary) and a `--alerts -`
//! stdout land in the journal. Read back, they would be input: a summary line quoting an
//! attacker's text would be classified again, and every alert printed would make more
//! journal entries to read. So the local journal's entries that are secpipe's own are skipped
//! and counted (`secpipe_dropped_total{reason="journal_own_entry"}` and the summary).
//!
//! What is reliable: journald sets the fields that start with `_` itself, from the kernel's
//! credentials of the writer and its cgroup; no client can set them. An entry is ours when
//! it is of this boot (`_BOOT_ID`) and either
//! - its `_PID` is our process id (our stderr, however we were started), or
//! - we run as a systemd service (`$INVOCATION_ID` is set) and its `_SYSTEMD_UNIT` is our
//!   unit (from `/proc/self/cgroup`): that also covers an earlier run of the same service
//!   whose last lines come after the saved cursor, and our child processes.
//!
//! A unit is not used when secpipe runs outside a service: an interactive run sits in the
//! user's `session-N.scope`, the same unit as the sshd session of that login.
//!
//! With `--journal-dir` (the journals of other machines, received with
//! `systemd-journal-remote`) nothing is skipped: the sending machine writes every field of
//! those entries, `_PID` included, and must not be able to hide its entries by naming our pid.
//!
//! ```
//! use secpipe::source::journal::own::OwnEntries;
//! let own = OwnEntries::new("0123abcd", 4242, Some("secpipe.service"));
//! assert!(own.is_own(br#"{"_BOOT_ID":"0123abcd","_PID":"4242","MESSAGE":"secpipe: 3 lines"}"#));
//! assert!(own.is_own(br#"{"_SYSTEMD_UNIT":"secpipe.service","_BOOT_ID":"0123abcd","_PID":"9"}"#));
//! assert!(!own.is_own(br#"{"_BOOT_ID":"0123abcd","_PID":"42420","_COMM":"sshd"}"#));
//! assert!(!own.is_own(br#"{"_BOOT_ID":"ffff","_PID":"4242"}"#), "another boot's pid 4242");
//! // A client's own field (no underscore) of the same text is escaped or named otherwise.
//! assert!(!own.is_own(br#"{"_BOOT_ID":"0123abcd","MESSAGE":"\"_PID\":\"4242\""}"#));
//! ```

use memchr::memmem;

/// How to recognise our own entries in the local journal.
pub struct OwnEntries {
    boot: Vec<u8>,
    pid: Vec<u8>,
    unit: Option<Vec<u8>>,
}

impl OwnEntries {
    /// For the boot `boot_id` (as `_BOOT_ID` prints it), the process `pid` and, when running
    /// as a service, its `unit`.
    pub fn new(boot_id: &str, pid: u32, unit: Option<&str>) -> OwnEntries {
        OwnEntries {
            boot: format!("\"_BOOT_ID\":\"{boot_id}\"").into_bytes(),
            pid: format!("\"_PID\":\"{pid}\"").into_bytes(),
            unit: unit.map(|u| format!("\"_SYSTEMD_UNIT\":\"{u}\"").into_bytes()),
        }
    }

    /// This process, on this machine; `None` when the boot id cannot be read (then nothing
    /// is skipped, and secpipe says so).
    pub fn of_this_process() -> Option<OwnEntries> {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        // journald prints the boot id without dashes.
        let boot: String = boot.trim().chars().filter(|c| *c != '-').collect();
        let unit = std::env::var_os("INVOCATION_ID")
            .and_then(|_| std::fs::read_to_string("/proc/self/cgroup").ok())
            .and_then(|cgroup| service_unit(&cgroup));
        Some(OwnEntries::new(&boot, std::process::id(), unit.as_deref()))
    }

    /// Whether the JSON line `line` is one of our own entries.
    pub fn is_own(&self, line: &[u8]) -> bool {
        let has = |needle: &[u8]| memmem::find(line, needle).is_some();
        has(&self.boot) && (has(&self.pid) || self.unit.as_deref().is_some_and(has))
    }
}

/// The service unit in `/proc/self/cgroup` (`0::/system.slice/secpipe.service`), when its name
/// needs no JSON escaping (unit names may hold `\x2d`-style escapes; those are not matched).
fn service_unit(cgroup: &str) -> Option<String> {
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let unit = path.rsplit('/').find(|part| part.ends_with(".service"))?;
    let plain = unit
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b));
    plain.then(|| unit.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_unit_comes_from_the_cgroup() {
        assert_eq!(
            service_unit("0::/system.slice/secpipe.service\n").as_deref(),
            Some("secpipe.service")
        );
        assert_eq!(
            service_unit("0::/system.slice/secpipe.service/child\n").as_deref(),
            Some("secpipe.service")
        );
        assert_eq!(service_unit("0::/user.slice/session-4.scope\n"), None);
        assert_eq!(service_unit("0::/system.slice/a\\x2db.service\n"), None);
    }
}
