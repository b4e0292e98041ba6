//! `secpipe rules`: list the active rules with their thresholds.

use std::io::Write;
use std::process::ExitCode;

use crate::flags::UsageError;
use crate::flags::hiargs::DetectConfig;
use crate::flags::lowargs::{DetectArgs, RulesArgs};

pub fn rules(args: &RulesArgs) -> Result<ExitCode, UsageError> {
    let detect = DetectConfig::from_args(
        &DetectArgs {
            config: args.config.clone(),
            ..DetectArgs::default()
        },
        &jiff::tz::TimeZone::UTC,
    )?;
    let mut out = std::io::stdout().lock();
    match out.write_all(detect.rules.describe().as_bytes()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if super::is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(UsageError::plain(format!("stdout: {e}"))),
    }
}
