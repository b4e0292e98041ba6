//! Where grammars come from: the files embedded in the binary, and a user's `--grammars DIR`,
//! whose files replace embedded ones of the same name.

use std::borrow::Cow;
use std::path::Path;

use super::{Classifier, GrammarError};

/// The grammars shipped in the binary: (file name, contents). The detection rule pack lives
/// apart, in `rules/default.toml`.
pub(super) const EMBEDDED: &[(&str, &str)] = &[
    ("apache.toml", include_str!("../../grammars/apache.toml")),
    ("dovecot.toml", include_str!("../../grammars/dovecot.toml")),
    (
        "dropbear.toml",
        include_str!("../../grammars/dropbear.toml"),
    ),
    ("http.toml", include_str!("../../grammars/http.toml")),
    ("klogind.toml", include_str!("../../grammars/klogind.toml")),
    ("login.toml", include_str!("../../grammars/login.toml")),
    ("logind.toml", include_str!("../../grammars/logind.toml")),
    ("pam.toml", include_str!("../../grammars/pam.toml")),
    ("postfix.toml", include_str!("../../grammars/postfix.toml")),
    ("proftpd.toml", include_str!("../../grammars/proftpd.toml")),
    ("sshd.toml", include_str!("../../grammars/sshd.toml")),
    ("su.toml", include_str!("../../grammars/su.toml")),
    ("sudo.toml", include_str!("../../grammars/sudo.toml")),
    (
        "unix_chkpwd.toml",
        include_str!("../../grammars/unix_chkpwd.toml"),
    ),
    ("vsftpd.toml", include_str!("../../grammars/vsftpd.toml")),
];

/// A file in a `--grammars` directory with this name is a rule pack, not a grammar: the pack
/// used to ship as `grammars/rules.toml`, so a copy of the old folder still holds one.
const NOT_A_GRAMMAR: &str = "rules.toml";

impl Classifier {
    /// The grammars embedded in the binary.
    ///
    /// ```
    /// let c = secpipe::classify::Classifier::builtin().unwrap();
    /// assert!(c.pattern_names().iter().any(|n| n == "sshd/invalid_user"));
    /// ```
    pub fn builtin() -> Result<Classifier, GrammarError> {
        let files: Vec<(String, Cow<'static, str>)> = EMBEDDED
            .iter()
            .map(|(name, text)| (format!("grammars/{name}"), Cow::Borrowed(*text)))
            .collect();
        Self::compile(&files)
    }

    /// The embedded grammars plus every `*.toml` in `dir`; a file with the same name as an
    /// embedded one replaces it. A `rules.toml` there is skipped: it is the rule pack.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(
    ///     dir.path().join("myapp.toml"),
    ///     "apps = [\"myapp\"]\n[[pattern]]\nname = \"denied\"\nkind = \"auth.failure\"\n\
    ///      regex = '^denied (?P<user>\\S+) from (?P<src_ip>\\S+)$'\n",
    /// )
    /// .unwrap();
    /// let c = secpipe::classify::Classifier::with_dir(dir.path()).unwrap();
    /// assert!(c.pattern_names().iter().any(|n| n == "myapp/denied"));
    /// ```
    pub fn with_dir(dir: &Path) -> Result<Classifier, GrammarError> {
        let io_error = |path: &Path, e: std::io::Error| GrammarError {
            path: path.display().to_string(),
            line: 0,
            column: 0,
            message: format!("cannot read grammar: {e}"),
        };
        let mut user_files: Vec<(String, String, String)> = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| io_error(dir, e))?.path();
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !file_name.ends_with(".toml") || file_name == NOT_A_GRAMMAR || !path.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
            user_files.push((file_name.to_string(), path.display().to_string(), text));
        }
        let mut files: Vec<(String, Cow<'_, str>)> = EMBEDDED
            .iter()
            .filter(|(name, _)| !user_files.iter().any(|(n, _, _)| n == name))
            .map(|(name, text)| (format!("grammars/{name}"), Cow::Borrowed(*text)))
            .collect();
        files.extend(
            user_files
                .iter()
                .map(|(_, path, text)| (path.clone(), Cow::Borrowed(text.as_str()))),
        );
        // Priority between files follows file names, wherever the file came from.
        files.sort_by(|a, b| file_name_of(&a.0).cmp(file_name_of(&b.0)));
        Self::compile(&files)
    }
}

fn file_name_of(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}
