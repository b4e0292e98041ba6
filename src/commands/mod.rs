//! One small function per subcommand, over library code. `main.rs` only calls [`main`].

pub mod bans;
pub mod config;
pub mod events;
pub mod export;
pub mod keygen;
pub mod replay;
pub mod report;
pub mod rules;
pub mod run;
pub mod test;
pub mod verify;
pub mod worker;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::flags;
use crate::flags::lowargs::{Command, LowArgs};

/// Exit code for usage, input and config errors.
pub const EXIT_USAGE: u8 = 2;

/// Parse the command line, run the subcommand, and map the outcome to an exit code.
pub fn main() -> ExitCode {
    // The matches are kept beside the parsed flags: they say which flags were given on the
    // command line, which win over the config file (`flags::config`).
    let parsed = LowArgs::command()
        .try_get_matches()
        .and_then(|matches| LowArgs::from_arg_matches(&matches).map(|args| (args, matches)));
    let (args, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            // clap exits 0 for --help/--version and 2 for usage errors, as we want.
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match args.command {
        None => run::run(args.run, &given_on_command_line(&matches)),
        Some(Command::Run(a)) => {
            let run_matches = matches.subcommand_matches("run").unwrap_or(&matches);
            run::run(*a, &given_on_command_line(run_matches))
        }
        Some(Command::Config(a)) => config::config(&a),
        Some(Command::Events(a)) => events::events(&a),
        Some(Command::Rules(a)) => rules::rules(&a),
        Some(Command::Replay(a)) => replay::replay(&a),
        Some(Command::Verify(a)) => verify::verify(&a),
        Some(Command::Keygen(a)) => keygen::keygen(&a),
        Some(Command::Test(a)) => test::test(&a),
        Some(Command::Bans(a)) => bans::bans(&a),
        Some(Command::Unban(a)) => bans::unban(&a),
        Some(Command::Report(a)) => report::report(&a),
        Some(Command::Export(a)) => export::export(&a),
        Some(Command::Worker(a)) => worker::worker(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Whether a flag (by clap id) was typed on the command line, not left at its default.
fn given_on_command_line(matches: &ArgMatches) -> impl Fn(&str) -> bool + '_ {
    |id| matches.value_source(id) == Some(ValueSource::CommandLine)
}

/// Run a detection run (`run`, `replay`) and turn its outcome into stderr and an exit code:
/// 2 when an input could not be read or the run failed, else 0.
pub fn finish_detection_run(
    run: crate::pipeline::run::DetectionRun,
) -> Result<ExitCode, flags::UsageError> {
    let outcome = run.run().map_err(flags::UsageError::plain)?;
    eprint!("{}", outcome.render());
    if let Some(e) = outcome.error {
        return Err(flags::UsageError::plain(e));
    }
    Ok(exit_for_inputs(&outcome.summary))
}

/// [`EXIT_USAGE`] when an input could not be read (after processing the others), else 0.
pub fn exit_for_inputs(summary: &crate::pipeline::Summary) -> ExitCode {
    if summary.input_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_USAGE)
    }
}

/// Where a command writes its main output; broken pipes (`secpipe events | head`) end the run
/// quietly instead of as an error.
pub fn is_broken_pipe(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

/// An archive named on the command line, opened for reading: a directory, or a bucket URL
/// (`s3://bucket/prefix`) read in place by ranged GETs. A URL whose scheme secpipe does not
/// support is a usage error, never a local path.
pub fn archive_to_read(
    given: &std::path::Path,
) -> Result<std::sync::Arc<dyn crate::archive::store::ArchiveStore>, flags::UsageError> {
    use crate::archive::store::ArchiveLocation;
    let location = ArchiveLocation::parse(given).map_err(flags::UsageError::plain)?;
    if let ArchiveLocation::Local(dir) = &location
        && !dir.is_dir()
    {
        return Err(flags::UsageError::with_help(
            format!("{}: not a directory", dir.display()),
            "name the directory or bucket URL given to --archive",
        ));
    }
    location
        .open(None)
        .map_err(|e| flags::UsageError::plain(e.to_string()))
}
