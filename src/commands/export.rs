//! `secpipe export ARCHIVE --ocsf json|parquet --out DIR`: verify, then write the events as
//! OCSF ([`crate::ocsf::export`]).

use std::process::ExitCode;

use crate::archive::verify::VerifyOptions;
use crate::flags::UsageError;
use crate::flags::lowargs::{ExportArgs, OcsfFormatArg};
use crate::ocsf::export::{ExportError, ExportOptions, export as export_archive};
use crate::ocsf::layout::{Layout, SecurityLake};
use crate::ocsf::writers::Format;

/// Exit 0 exported; 1 the archive is tampered (nothing written); 2 usage errors, an archive
/// that cannot be verified or read, or an output that cannot be written.
pub fn export(args: &ExportArgs) -> Result<ExitCode, UsageError> {
    let security_lake = match &args.security_lake {
        Some(spec) => Some(
            SecurityLake::parse(spec)
                .map_err(|e| UsageError::plain(format!("--security-lake {e}")))?,
        ),
        None => None,
    };
    let opts = ExportOptions {
        format: match args.ocsf {
            OcsfFormatArg::Json => Format::Json,
            OcsfFormatArg::Parquet => Format::Parquet,
        },
        layout: Layout { security_lake },
        verify: VerifyOptions {
            pubkey: args.pubkey.clone(),
            expect_head: args.expect_head.clone(),
        },
    };
    let store = super::archive_to_read(&args.archive)?;
    match export_archive(store, &args.out, &opts) {
        Ok(summary) => {
            eprint!("{}", summary.render());
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ ExportError::Tampered(_)) => {
            eprintln!("secpipe export: {}: {e}", args.archive.display());
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(UsageError::plain(format!(
            "{}: {e}",
            args.archive.display()
        ))),
    }
}
