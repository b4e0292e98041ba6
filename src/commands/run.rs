//! `secpipe run` (the default): detect attacks, write alerts, optionally archive.

use std::process::ExitCode;

use crate::flags::UsageError;
use crate::flags::hiargs::RunConfig;
use crate::flags::lowargs::RunArgs;

pub fn run(args: &RunArgs) -> Result<ExitCode, UsageError> {
    let run = RunConfig::from_args(args)?.build()?;
    super::finish_detection_run(run)
}
