//! Issue 17: the Debian package installs on a clean Debian 12 and works there.
//!
//! Builds the package with `packaging/build-deb.sh` (from the debug build the tests already
//! have: the package's layout and scripts are the same for the release build), makes a minimal
//! bookworm with Debian's `debootstrap` (minbase plus man-db), and in a chroot: `dpkg -i`,
//! `secpipe --help` and `--version`, the man pages render with `man`, the unit, config
//! (a conffile), completions and docs are where they belong, the unit is enabled, and
//! `dpkg --purge` removes it cleanly.
//!
//! The downloaded packages are kept as a debootstrap tarball under the target dir
//! (`package-test/`), so only the first run reaches the mirror. Without root, debootstrap or a
//! reachable mirror (and no tarball yet) the test is skipped with the reason on stderr.

mod debian_support;

use std::path::Path;
use std::process::Command;

use debian_support::{MIRROR, SECPIPE, SUITE, build_deb, debootstrap_tarball, run_ok};

/// Why the test cannot run here, or `None`.
fn cannot_run() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (debootstrap and chroot need it)".into());
    }
    let have_debootstrap = Command::new("debootstrap")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_debootstrap {
        // CI installs it (tests/run-all.sh): there its absence is a broken setup.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: debootstrap is not installed (apt-get install debootstrap)"
        );
        return Some("debootstrap is not installed (apt-get install debootstrap)".into());
    }
    None
}

/// `chroot ROOT ARGS…` with a plain environment, as a fresh login would have.
fn in_chroot(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("chroot");
    cmd.arg(root)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LANG", "C.UTF-8")
        .env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

#[test]
fn deb_installs_on_clean_bookworm_and_secpipe_help_version_man_work() {
    if let Some(why) = cannot_run() {
        eprintln!("SKIPPED package_install: {why}");
        return;
    }
    let tarball = match debootstrap_tarball("man-db", "man-db") {
        Ok(t) => t,
        Err(why) => {
            eprintln!("SKIPPED package_install: {why}");
            return;
        }
    };
    let deb = build_deb();

    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("bookworm");
    run_ok(
        Command::new("debootstrap")
            .args(["--variant=minbase", "--include=man-db"])
            .arg(format!("--unpack-tarball={}", tarball.display()))
            .arg(SUITE)
            .arg(&root)
            .arg(MIRROR),
    );
    // A clean system: no secpipe before the package.
    assert!(!root.join("usr/bin/secpipe").exists());

    std::fs::copy(&deb, root.join("tmp/secpipe.deb")).expect("copy .deb into the chroot");
    run_ok(&mut in_chroot(&root, &["dpkg", "-i", "/tmp/secpipe.deb"]));

    // The binary runs from PATH and names the same build as the one packaged.
    let help = run_ok(&mut in_chroot(&root, &["secpipe", "--help"]));
    assert!(help.contains("Usage: secpipe"), "secpipe --help:\n{help}");
    let version = run_ok(&mut in_chroot(&root, &["secpipe", "--version"]));
    let host_version = run_ok(Command::new(SECPIPE).arg("--version"));
    assert_eq!(version, host_version);
    assert!(version.contains(" (git "), "{version}");

    // man finds and renders the pages (formatted text, not roff source).
    for (page, expect) in [
        (
            "secpipe",
            "secpipe - secpipe: a security log-stream pipeline",
        ),
        (
            "secpipe-run",
            "secpipe-run - Detect attacks and write alerts",
        ),
        ("secpipe-verify", "--pubkey"),
    ] {
        let shown = run_ok(&mut in_chroot(&root, &["man", "-P", "cat", page]));
        assert!(shown.contains(expect), "man {page}:\n{shown}");
        assert!(
            !shown.contains(".TH "),
            "man {page} shows roff source:\n{shown}"
        );
    }

    // Everything where Debian expects it.
    for path in [
        "lib/systemd/system/secpipe.service",
        "etc/secpipe/secpipe.toml",
        "usr/share/bash-completion/completions/secpipe",
        "usr/share/zsh/vendor-completions/_secpipe",
        "usr/share/fish/vendor_completions.d/secpipe.fish",
        "usr/share/doc/secpipe/README.md",
        "usr/share/doc/secpipe/copyright",
        "usr/share/doc/secpipe/examples/blocking.conf",
    ] {
        assert!(root.join(path).is_file(), "/{path} is not installed");
    }
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/secpipe.service"))
        .expect("read unit");
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/secpipe.service"),
    )
    .expect("read packaging unit");
    assert_eq!(unit, shipped);
    let bash = std::fs::read_to_string(root.join("usr/share/bash-completion/completions/secpipe"))
        .expect("read bash completion");
    assert!(bash.contains("complete -F _secpipe"), "{bash}");
    // The config is a conffile: an upgrade never overwrites the admin's edits silently.
    let conffiles = run_ok(&mut in_chroot(
        &root,
        &["dpkg-query", "--control-show", "secpipe", "conffiles"],
    ));
    assert_eq!(conffiles.trim(), "/etc/secpipe/secpipe.toml");
    // postinst enabled the service, as Debian does for services (no systemd runs in a chroot,
    // so nothing was started).
    assert!(
        root.join("etc/systemd/system/multi-user.target.wants/secpipe.service")
            .symlink_metadata()
            .is_ok(),
        "secpipe.service was not enabled"
    );

    // Purge leaves nothing of the package behind (its state directory would be kept).
    run_ok(&mut in_chroot(&root, &["dpkg", "--purge", "secpipe"]));
    for path in [
        "usr/bin/secpipe",
        "etc/secpipe/secpipe.toml",
        "lib/systemd/system/secpipe.service",
    ] {
        assert!(!root.join(path).exists(), "/{path} survived dpkg --purge");
    }
    assert!(
        root.join("etc/systemd/system/multi-user.target.wants/secpipe.service")
            .symlink_metadata()
            .is_err(),
        "the enablement survived dpkg --purge"
    );
}
