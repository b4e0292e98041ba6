//! Command-line flags and `secpipe.toml`, resolved once into validated settings.
//!
//! [`lowargs`] is what clap parsed, as typed; [`hiargs`] turns it into the [`hiargs`] configs
//! the commands read. Nothing past this module looks at raw flags.

pub mod config;
pub mod hiargs;
pub mod lowargs;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// A usage, input or config problem: the CLI prints it and exits 2.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum UsageError {
    /// A problem at a place in a file, shown with the file's text around it.
    #[error("{message}")]
    InFile {
        message: String,
        #[source_code]
        source_code: NamedSource<String>,
        #[label("here")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// Anything else, with an optional hint.
    #[error("{message}")]
    Plain {
        message: String,
        #[help]
        help: Option<String>,
    },
}

impl UsageError {
    pub fn plain(message: impl Into<String>) -> UsageError {
        UsageError::Plain {
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(message: impl Into<String>, help: impl Into<String>) -> UsageError {
        UsageError::Plain {
            message: message.into(),
            help: Some(help.into()),
        }
    }
}
