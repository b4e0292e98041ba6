//! `secpipe verify`: recompute an archive's hashes, row roots, chain and signature.

use std::process::ExitCode;

use crate::archive::verify::{VerifyOptions, verify_store};
use crate::flags::UsageError;
use crate::flags::lowargs::VerifyArgs;

/// Exit 0 intact, 1 tampered, 2 could not conclude, 3 unsigned (sealed files no valid
/// signature covers); the report goes to stdout.
pub fn verify(args: &VerifyArgs) -> Result<ExitCode, UsageError> {
    let store = super::archive_to_read(&args.archive)?;
    let report = verify_store(
        &*store,
        &VerifyOptions {
            pubkey: args.pubkey.clone(),
            expect_head: args.expect_head.clone(),
        },
    );
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    Ok(ExitCode::from(
        u8::try_from(report.exit_code()).unwrap_or(2),
    ))
}
