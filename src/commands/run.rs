//! `secpipe run` (the default): detect attacks, write alerts, optionally archive.

use std::process::ExitCode;

use crate::flags::UsageError;
use crate::flags::config::apply_run_table;
use crate::flags::hiargs::RunConfig;
use crate::flags::lowargs::RunArgs;

/// `given(id)`: whether the flag with clap id `id` was on the command line (it wins over the
/// config file's `[run]` table).
pub fn run(mut args: RunArgs, given: &dyn Fn(&str) -> bool) -> Result<ExitCode, UsageError> {
    crate::pipeline::reload::ignore_hangups_while_starting();
    let from_file = apply_run_table(&mut args, given)?;
    let locate = |e: UsageError| match &from_file {
        Some(file) => file.locate(e),
        None => e,
    };
    let run = RunConfig::from_args(&args)
        .and_then(RunConfig::build)
        .map_err(locate)?;
    super::finish_detection_run(run)
}
