//! `secpipe test FILE…`: run annotated log files (see [`crate::testfile`]) and print each
//! mismatch with file:line, expected and got. Exit 0 when all pass, 1 on a mismatch, 2 on a
//! bad test file (its line and column) or a bad flag.

use std::io::Write;
use std::process::ExitCode;

use crate::flags::UsageError;
use crate::flags::hiargs::{DetectConfig, ParseConfig};
use crate::flags::lowargs::{DetectArgs, TestArgs};
use crate::testfile::{TestContext, parse_test_file};

/// Exit code when an expectation is not met.
const EXIT_MISMATCH: u8 = 1;

pub fn test(args: &TestArgs) -> Result<ExitCode, UsageError> {
    let parse = ParseConfig::from_args(&args.parse)?;
    let detect = DetectConfig::from_args(
        &DetectArgs {
            config: args.config.clone(),
            lateness: args.lateness.clone(),
            alerts: vec!["-".into()],
            ..DetectArgs::default()
        },
        &parse.settings.tz,
    )?;
    let mut ids = detect.rules.ids();
    // Raised by the engine itself when a rule hits its key cap, not by a rule of the pack.
    ids.push("secpipe.state_overflow");
    // Every file is read and checked before any runs: a bad file is exit 2, whatever the rest.
    let mut files = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError::plain(format!("{shown}: {e}")))?;
        let file = parse_test_file(&shown, &text, &ids).map_err(|e| {
            UsageError::with_help(
                e.to_string(),
                "expectations are `# expect: field=value …` before a log line, `# expect-alert: RULE KEY`, `# expect-alerts: none` and `# scenario: NAME`",
            )
        })?;
        files.push(file);
    }
    let ctx = TestContext {
        classifier: &parse.classifier,
        rules: &detect.rules,
        parse: &parse.settings,
        detect: &detect.options,
    };
    let mut out = std::io::stdout().lock();
    let (mut lines, mut expectations, mut alert_checks, mut mismatches) = (0, 0, 0, 0);
    for file in &files {
        let outcome = ctx.run(file);
        lines += outcome.lines;
        expectations += outcome.expectations;
        alert_checks += outcome.alert_checks;
        mismatches += outcome.mismatches.len();
        for m in &outcome.mismatches {
            if let Err(e) = writeln!(out, "{m}") {
                if super::is_broken_pipe(&e) {
                    break;
                }
                return Err(UsageError::plain(format!("stdout: {e}")));
            }
        }
    }
    eprintln!(
        "secpipe test: {} file(s), {lines} lines, {expectations} field checks, {alert_checks} alert checks: {}",
        files.len(),
        if mismatches == 0 {
            "all passed".to_string()
        } else {
            format!("{mismatches} mismatch(es)")
        }
    );
    Ok(if mismatches == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_MISMATCH)
    })
}
