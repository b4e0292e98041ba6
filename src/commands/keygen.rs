//! `secpipe keygen`: an Ed25519 key pair for signing archive checkpoints.

use std::process::ExitCode;

use crate::archive::keys;
use crate::flags::UsageError;
use crate::flags::lowargs::KeygenArgs;

pub fn keygen(args: &KeygenArgs) -> Result<ExitCode, UsageError> {
    let fingerprint = keys::keygen(&args.out).map_err(|e| {
        UsageError::with_help(
            format!("--out {}: {e}", args.out.display()),
            "keygen never overwrites a key: choose a new file name, or move the old key away",
        )
    })?;
    println!(
        "private key: {} (mode 0600; keep it on the host that archives)\npublic key:  {}\nfingerprint: {fingerprint}\npin the fingerprint somewhere the archive host cannot write, e.g. your incident runbook",
        args.out.display(),
        keys::pub_path(&args.out).display()
    );
    Ok(ExitCode::SUCCESS)
}
