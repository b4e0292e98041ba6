//! What the Debian peer tests share (tests/package_install.rs, tests/service_boot.rs): running
//! commands, a cached debootstrap of bookworm, and the .deb built around this test run's
//! binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const SECPIPE: &str = env!("CARGO_BIN_EXE_secpipe");
pub const MIRROR: &str = "http://deb.debian.org/debian";
pub const SUITE: &str = "bookworm";

/// The cargo target dir: the built binary is TARGET/debug/secpipe.
pub fn target_dir() -> PathBuf {
    Path::new(SECPIPE)
        .ancestors()
        .nth(2)
        .expect("binary inside target/<profile>/")
        .to_path_buf()
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{cmd:?} did not start: {e}"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Run `cmd` and insist on success; its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The cached debootstrap tarball of bookworm's minbase plus `include` (comma-separated
/// packages), named `bookworm-minbase-NAME.tgz` under the target dir; downloaded once. `Err`
/// says why it could not be made (no network to the mirror).
pub fn debootstrap_tarball(name: &str, include: &str) -> Result<PathBuf, String> {
    let cache = target_dir().join("package-test");
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let tarball = cache.join(format!("{SUITE}-minbase-{name}.tgz"));
    if tarball.exists() {
        return Ok(tarball);
    }
    // Into a temporary name first: an interrupted download must not leave a tarball that
    // later runs would trust.
    let partial = cache.join(format!("{SUITE}-minbase-{name}.tgz.partial"));
    let work = tempfile::tempdir_in(&cache).map_err(|e| e.to_string())?;
    let out = run(Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--include={include}"))
        .arg(format!("--make-tarball={}", partial.display()))
        .arg(SUITE)
        .arg(work.path().join("root"))
        .arg(MIRROR));
    if !out.status.success() {
        let _ = std::fs::remove_file(&partial);
        // debootstrap reports on stdout (I:/W:/E: lines) as well as stderr.
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        let tail: Vec<&str> = said.lines().rev().take(5).collect();
        return Err(format!(
            "debootstrap could not download {SUITE} from {MIRROR} ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    std::fs::rename(&partial, &tarball).map_err(|e| e.to_string())?;
    Ok(tarball)
}

/// Build the .deb with the shipped script, around the binary this test run was built with; its
/// path. (A `cargo build --bin secpipe` here would build without the dev-dependencies' features,
/// a second build of much of the tree.)
pub fn build_deb() -> PathBuf {
    let cargo = Path::new(env!("CARGO"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = cargo.parent().into_iter().map(Path::to_path_buf).collect();
    dirs.extend(std::env::split_paths(&path));
    let stdout = run_ok(
        Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/build-deb.sh"))
            .env("SECPIPE_DEB_PROFILE", "dev")
            .env("SECPIPE_DEB_BINARY", SECPIPE)
            .env("CARGO_TARGET_DIR", target_dir())
            .env("PATH", std::env::join_paths(dirs).expect("PATH")),
    );
    let deb = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    assert!(
        deb.extension().is_some_and(|e| e == "deb") && deb.is_file(),
        "build-deb.sh did not print a .deb: {stdout}"
    );
    deb
}
