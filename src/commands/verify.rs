//! `secpipe verify`: recompute an archive's hashes, row roots, chain and signature; for an
//! archive in an S3 bucket, also report how the bucket protects it (versions, Object Lock).

use std::process::ExitCode;

use crate::archive::store::s3_inspect::{InspectLimits, S3Location};
use crate::archive::store::{ArchiveLocation, ArchiveStore, chain_objects};
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
    let store = super::archive_to_read(&args.archive)?;
    let mut report = verify_store(&*store, &options);
    // An S3 bucket also shows how its objects are kept: versions and Object Lock.
    if let Ok(ArchiveLocation::Bucket(url)) = ArchiveLocation::parse(&args.archive)
        && let Some(rest) = url
            .strip_prefix("s3://")
            .or_else(|| url.strip_prefix("s3a://"))
    {
        let location = S3Location::parse(&format!("s3://{rest}")).map_err(|e| {
            UsageError::with_help(e.to_string(), "name the archive as s3://BUCKET/PREFIX")
        })?;
        add_storage(&mut report, &*store, &location);
    }
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

/// The storage section for the objects the chain relies on: every sealed file, every manifest
/// object up to the highest number seen (a gap is a missing object), the current checkpoint.
fn add_storage(report: &mut VerifyReport, store: &dyn ArchiveStore, location: &S3Location) {
    let numbered = |dir: &str, suffix: &str| -> Vec<u64> {
        chain_objects(store, dir, suffix)
            .unwrap_or_default()
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    let manifests = numbered("audit/manifests", ".json");
    let checkpoint = numbered("audit/checkpoints", ".note")
        .last()
        .map(|n| format!("audit/checkpoints/{n:08}.note"));
    let mut relied_on = report.sealed_paths.clone();
    // The highest number is a key name anyone with write access picks: a planted
    // `99999999.json` must not make this list a hundred million names long.
    let highest = manifests.last().copied().unwrap_or(0);
    let upto = highest.min(manifests.len() as u64 + MAX_MANIFEST_GAP);
    relied_on.extend((1..=upto).map(|n| format!("audit/manifests/{n:08}.json")));
    relied_on.extend(checkpoint);
    relied_on.sort();
    relied_on.dedup();
    match inspect_storage(location, &relied_on, InspectLimits::default()) {
        Ok(storage) => report.add_storage(storage),
        Err(e) => report
            .warnings
            .push(format!("the bucket's versions could not be inspected: {e}")),
    }
}
