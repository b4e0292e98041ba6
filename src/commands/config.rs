//! `secpipe config check FILE`: read a config file as `secpipe run --config FILE` would, and
//! say what it sets up, or where it is wrong, without opening a port, a state directory or an
//! archive.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::flags::UsageError;
use crate::flags::config::apply_run_table;
use crate::flags::hiargs::RunConfig;
use crate::flags::lowargs::{ConfigCheckArgs, ConfigCommand, LowArgs};
use crate::source::InputSpec;

pub fn config(command: &ConfigCommand) -> Result<ExitCode, UsageError> {
    match command {
        ConfigCommand::Check(args) => check(args),
    }
}

fn check(args: &ConfigCheckArgs) -> Result<ExitCode, UsageError> {
    // Start from the flags' own defaults, exactly as `secpipe --config FILE` does.
    let mut flag = OsString::from("--config=");
    flag.push(&args.file);
    let mut run = LowArgs::try_parse_from([OsString::from("secpipe"), flag])
        .map_err(|e| UsageError::plain(e.to_string()))?
        .run;
    let from_file = apply_run_table(&mut run, &|id| id == "config")?;
    let locate = |e: UsageError| match &from_file {
        Some(file) => file.locate(e),
        None => e,
    };
    let config = RunConfig::from_args(&run).map_err(locate)?;
    // Files a run reads at its start: a missing one would stop the service, so it is an error
    // here too, at its key.
    for (flag, path) in [
        ("--key", &run.key),
        ("--tls-cert", &run.tls_cert),
        ("--tls-key", &run.tls_key),
    ] {
        if let Some(path) = path
            && let Err(e) = std::fs::File::open(path)
        {
            return Err(locate(UsageError::plain(format!(
                "{flag} {}: {e}",
                path.display()
            ))));
        }
    }
    print!(
        "{}",
        describe(&args.file.display().to_string(), &run, &config)
    );
    // Inputs may appear later (a followed file is created by its program), so only warn.
    for input in &config.inputs {
        if let InputSpec::File(path) = input
            && !path.exists()
        {
            eprintln!(
                "warning: input {} does not exist (yet){}",
                path.display(),
                if config.follow {
                    "; it is followed once it appears"
                } else {
                    ""
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What the checked file sets up, one line per part.
fn describe(path: &str, run: &crate::flags::lowargs::RunArgs, config: &RunConfig) -> String {
    let mut out = format!("{path}: ok\n");
    let files: Vec<String> = config
        .inputs
        .iter()
        .map(|i| match i {
            InputSpec::Stdin => "stdin".to_string(),
            InputSpec::File(p) => p.display().to_string(),
        })
        .collect();
    let mut inputs = Vec::new();
    if !files.is_empty() {
        inputs.push(format!(
            "{}{}",
            files.join(", "),
            if config.follow { " (followed)" } else { "" }
        ));
    }
    if let Some(matches) = &run.journal {
        inputs.push(if matches.is_empty() {
            "the journal".to_string()
        } else {
            format!("the journal ({})", matches.join(" "))
        });
    }
    inputs.extend(run.listen.iter().cloned());
    out += &format!("  inputs: {}\n", inputs.join("; "));
    // The rules that will run; those the file turned off are named apart.
    let disabled = config.detect.rules.disabled_ids();
    let ids: Vec<&str> = config
        .detect
        .rules
        .ids()
        .into_iter()
        .filter(|id| !disabled.contains(id))
        .collect();
    out += &format!("  rules: {} ({})\n", ids.len(), ids.join(", "));
    if !disabled.is_empty() {
        out += &format!("  disabled: {}\n", disabled.join(", "));
    }
    let sinks: Vec<String> = config.detect.sinks.iter().map(|r| r.to.name()).collect();
    out += &format!("  alerts to: {}\n", sinks.join(", "));
    if let Some(archive) = &run.archive {
        out += &format!(
            "  archive: {}{}\n",
            archive.display(),
            if run.key.is_some() { " (signed)" } else { "" }
        );
    }
    if let Some(state) = &config.state {
        out += &format!("  state: {}\n", state.display());
    }
    if let Some(block) = &config.block {
        out += &format!("  block: {}\n", block.settings.mode.as_str());
    }
    if let Some(metrics) = &config.metrics {
        out += &format!("  metrics: http://{metrics}/metrics\n");
    }
    if let Some(emit) = &config.emit {
        out += &format!("  emit: {} as edge {}\n", emit.url, emit.edge);
    }
    out
}
