//! `secpipe verify`: recompute an archive's hashes, row roots, chain and signature; for an
//! archive in an S3 bucket, also report how the bucket protects it (versions, Object Lock).

use std::process::ExitCode;

use crate::archive::store::s3_inspect::{InspectLimits, S3Location};
use crate::archive::store::s3_readonly::S3ReadOnlyStore;
use crate::archive::store::{ArchiveStore, LocalStore};
use crate::archive::verify::{VerifyOptions, VerifyReport, inspect_storage, verify_store};
use crate::flags::UsageError;
use crate::flags::lowargs::VerifyArgs;

/// Exit 0 intact, 1 tampered, 2 could not conclude, 3 unsigned (sealed files no valid
/// signature covers); the report goes to stdout.
pub fn verify(args: &VerifyArgs) -> Result<ExitCode, UsageError> {
    let options = VerifyOptions {
        pubkey: args.pubkey.clone(),
        expect_head: args.expect_head.clone(),
    };
    let report = match args.archive.to_str().filter(|a| a.starts_with("s3://")) {
        Some(url) => verify_bucket(url, &options)?,
        None => {
            if !args.archive.is_dir() {
                return Err(UsageError::with_help(
                    format!("{}: not a directory", args.archive.display()),
                    "name the directory given to --archive, or s3://BUCKET/PREFIX",
                ));
            }
            verify_store(&LocalStore::new(&args.archive), &options)
        }
    };
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    Ok(ExitCode::from(
        u8::try_from(report.exit_code()).unwrap_or(2),
    ))
}

/// How many missing manifest numbers below the highest one are named one by one.
const MAX_MANIFEST_GAP: u64 = 10_000;

/// Verify the archive at `url` on the bucket itself, then add the storage section for the
/// objects the chain relies on: every sealed file, every manifest object up to the highest
/// number seen (a gap is a missing object), the current checkpoint.
fn verify_bucket(url: &str, options: &VerifyOptions) -> Result<VerifyReport, UsageError> {
    let location = S3Location::parse(url).map_err(|e| {
        UsageError::with_help(e.to_string(), "name the archive as s3://BUCKET/PREFIX")
    })?;
    let store = match S3ReadOnlyStore::connect(&location) {
        Ok(store) => store,
        Err(e) => {
            return Ok(VerifyReport::could_not_start(format!("{location}: {e}")));
        }
    };
    let mut report = verify_store(&store, options);
    report.archive = Some(store.location());
    let read = store.read_objects();
    let mut relied_on = report.sealed_paths.clone();
    // The highest number is a key name anyone with write access picks: a planted
    // `99999999.json` must not make this list a hundred million names long.
    let upto = read
        .highest_manifest
        .min(read.manifests.len() as u64 + MAX_MANIFEST_GAP);
    relied_on.extend((1..=upto).map(|n| format!("audit/manifests/{n:08}.json")));
    relied_on.extend(read.checkpoint);
    relied_on.sort();
    relied_on.dedup();
    match inspect_storage(&location, &relied_on, InspectLimits::default()) {
        Ok(storage) => report.add_storage(storage),
        Err(e) => report
            .warnings
            .push(format!("the bucket's versions could not be inspected: {e}")),
    }
    Ok(report)
}
