//! Issue 17: `secpipe --version` names the build's git revision (build.rs), so a bug report or
//! an installed package says exactly which source it runs.

use std::process::Command;

const SECPIPE: &str = env!("CARGO_BIN_EXE_secpipe");

/// "secpipe 0.1.0 (git 1a2b3c4d5e6f)" or "… (git 1a2b3c4d5e6f-dirty)": the revision part.
fn revision_of(version_line: &str) -> &str {
    let expected_start = format!("secpipe {} (git ", env!("CARGO_PKG_VERSION"));
    version_line
        .strip_prefix(&expected_start)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("version line {version_line:?} is not {expected_start}REV)"))
}

#[test]
fn version_names_the_git_revision_it_was_built_from() {
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git");
    assert!(head.status.success(), "this test runs in a git checkout");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();

    for flag in ["--version", "-V"] {
        let out = Command::new(SECPIPE)
            .arg(flag)
            .output()
            .expect("run secpipe");
        assert!(out.status.success(), "secpipe {flag}: {}", out.status);
        let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let revision = revision_of(&line);
        let hex = revision.strip_suffix("-dirty").unwrap_or(revision);
        // The binary is built from HEAD: a commit reruns build.rs (it watches HEAD and the branch).
        assert_eq!(hex, head, "secpipe {flag} says {line:?}, HEAD is {head}");
    }
}
