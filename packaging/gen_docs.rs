//! Writes secpipe's man pages and shell completions from its clap definitions, so they never
//! drift from the flags: `cargo run --example gen-docs -- OUT_DIR` (packaging/build-deb.sh).
//!
//! Why a separate program and not `build.rs` or a hidden `secpipe completions` subcommand:
//! build.rs cannot see the library's clap types (it is compiled before the crate), and a
//! subcommand would put clap_mangen and clap_complete into the shipped binary and a command
//! into the CLI that the package already answers with files. As an example target it uses
//! dev-dependencies only and builds on the library's release artifacts.
//!
//! OUT_DIR gets:
//!   man/secpipe.1, man/secpipe-<subcommand>.1   (roff)
//!   completions/secpipe.bash, completions/_secpipe (zsh), completions/secpipe.fish

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gen-docs OUT_DIR");
        return ExitCode::from(2);
    };
    match write_all(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-docs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_all(out: &Path) -> std::io::Result<()> {
    let mut cmd = secpipe::flags::lowargs::LowArgs::command();
    // build() propagates global settings and the version into the subcommands.
    cmd.build();
    let man = out.join("man");
    std::fs::create_dir_all(&man)?;
    write_man(&cmd, "secpipe", &man)?;
    for sub in cmd.get_subcommands() {
        // `help` is clap's own, added by build(); secpipe(1) covers it.
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        // The page of `secpipe run` is secpipe-run(1), as git and cargo name theirs.
        // clap names are 'static without its `string` feature; this program runs once and exits.
        let name: &'static str = format!("secpipe-{}", sub.get_name()).leak();
        let sub = sub
            .clone()
            .name(name)
            .bin_name(format!("secpipe {}", sub.get_name()));
        write_man(&sub, name, &man)?;
    }

    let completions = out.join("completions");
    std::fs::create_dir_all(&completions)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "secpipe", &completions)?;
    }
    Ok(())
}

fn write_man(cmd: &clap::Command, name: &str, dir: &Path) -> std::io::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    std::fs::write(dir.join(format!("{name}.1")), page)
}
