//! Build script: the git revision for `secpipe --version` ("secpipe 0.1.0 (git 1a2b3c4d5e6f)").
//!
//! Order of sources: `SECPIPE_GIT_REVISION` (for builds from a tarball, e.g. a distribution's,
//! which know the revision they packaged), else `git` in the source tree, else the version says
//! "no git revision" rather than guessing.
//!
//! Reruns: only when HEAD moves (a commit, a checkout), the branch it names moves, the index
//! changes (staging, committing) or the variable changes. Without these `rerun-if-changed`
//! lines cargo would rerun the script, and rebuild the crate, for any file in the package,
//! a README edit included. The price: "-dirty" is decided when the script last ran, so an
//! unstaged edit after that is not noticed until the next commit or `git add`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SECPIPE_GIT_REVISION");
    let revision = match std::env::var("SECPIPE_GIT_REVISION") {
        Ok(given) if !given.trim().is_empty() => format!("git {}", given.trim()),
        _ => git_revision().unwrap_or_else(|| "no git revision".to_owned()),
    };
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rustc-env=SECPIPE_LONG_VERSION={version} ({revision})");
}

/// "git <12 hex>[-dirty]" from the repository the package is in, and the rerun triggers for it;
/// `None` when git or the repository is missing.
fn git_revision() -> Option<String> {
    // A source tarball unpacked inside some other repository must not take that one's revision:
    // the repository has to be secpipe's own, the one that tracks this Cargo.toml.
    git(&["ls-files", "--error-unmatch", "Cargo.toml"])?;
    let rev = git(&["rev-parse", "--short=12", "HEAD"])?;
    // --git-path resolves worktrees (.git is then a file) and the common dir of branches.
    for path in ["HEAD", "index", "packed-refs"] {
        watch(path);
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(&branch);
    }
    // `git status --porcelain` lists modified and staged files, not untracked ones (which a
    // build of tracked sources does not read).
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|changes| !changes.is_empty());
    Some(format!("git {rev}{}", if dirty { "-dirty" } else { "" }))
}

/// Tell cargo to rerun this script when the git file `name` (as `git rev-parse --git-path`
/// resolves it) changes. Only files that exist: cargo reruns on every build for a missing one
/// (a branch whose ref is only in packed-refs, a repository without packed-refs).
fn watch(name: &str) {
    if let Some(path) = git(&["rev-parse", "--git-path", name]) {
        let path = PathBuf::from(path);
        let path = if path.is_absolute() {
            path
        } else {
            PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join(path)
        };
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// The trimmed stdout of `git ARGS` run in the package directory, or `None` when it fails.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
