//! Issue 17: secpipe runs as the container image runs it (packaging/Containerfile): as a
//! non-root numeric uid (65532) with a read-only root file system, writing only to its state
//! volume. There is no container engine here, so this builds the same situation with a mount
//! namespace (`unshare -m`): every mount is remounted read-only, a tmpfs owned by uid 65532
//! is the volume, and `setpriv` drops to that uid with no capabilities. A write anywhere else
//! (a temp file, a cache, a lock) fails the run.
//!
//! Skipped with a message when not root or `unshare -m` is not available.

use std::path::Path;
use std::process::Command;

const SECPIPE: &str = env!("CARGO_BIN_EXE_secpipe");

/// Runs in the new mount namespace: $1 the volume, $2 secpipe, $3 the input file.
const SCRIPT: &str = r#"
set -eu
volume="$1"; secpipe="$2"; input="$3"
mount --make-rprivate /
# Every mount read-only; proc, sys and the like may refuse and are not written to by secpipe.
awk '{print $5}' /proc/self/mountinfo | sort -u | while read -r mountpoint; do
    mount -o remount,bind,ro "$mountpoint" 2>/dev/null || true
done
mount -t tmpfs -o mode=0700,uid=65532,gid=65532,size=64m tmpfs "$volume"
# The setup itself is checked: were anything still writable, the test would prove nothing.
for dir in /tmp /var/tmp "$(dirname "$secpipe")" "$(dirname "$input")"; do
    if touch "$dir/.secpipe-ro-probe" 2>/dev/null; then
        echo "setup: $dir is still writable" >&2
        exit 90
    fi
done
cd /
setpriv --reuid=65532 --regid=65532 --clear-groups --inh-caps=-all --bounding-set=-all -- \
    env -i PATH=/usr/bin:/bin HOME=/nonexistent \
    "$secpipe" run --archive "$volume/archive" --alerts "$volume/alerts.jsonl" "$input"
echo "alerts=$(wc -l < "$volume/alerts.jsonl")"
[ -s "$volume/archive/audit/manifests.jsonl" ] && echo "archive=sealed"
"#;

#[test]
fn runs_as_non_root_on_read_only_root_writing_only_its_volume() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED readonly_root: not root (mount namespaces and setpriv need it)");
        return;
    }
    let usable = Command::new("unshare")
        .args(["-m", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        eprintln!("SKIPPED readonly_root: `unshare -m true` fails here");
        return;
    }
    let volume = tempfile::tempdir().expect("tempdir");
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample/attacks.log");
    let out = Command::new("unshare")
        .args(["-m", "bash", "-c", SCRIPT, "readonly-root"])
        .arg(volume.path())
        .arg(SECPIPE)
        .arg(&input)
        .output()
        .expect("unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    // The run did its work (alerts and a sealed archive) inside the volume.
    let alerts: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("alerts="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no alert count in:\n{stdout}"));
    assert!(alerts > 0, "no alerts:\n{stdout}\n{stderr}");
    assert!(stdout.contains("archive=sealed"), "{stdout}\n{stderr}");
    // The tmpfs lived only in the namespace: nothing leaked into the real directory.
    let leaked: Vec<_> = std::fs::read_dir(volume.path())
        .expect("read volume dir")
        .collect();
    assert!(
        leaked.is_empty(),
        "written outside the namespace: {leaked:?}"
    );
}
