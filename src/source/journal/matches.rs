//! `--journal MATCH…`: journalctl matches, checked before they reach its command line.
//!
//! journalctl takes `FIELD=VALUE` matches, `+` (or: the matches before and after), and also
//! bare paths (`/usr/sbin/sshd` means `_EXE=…`) and, being a getopt program, anything that
//! starts with `-` as an option: a match `--output=cat` or `-D/etc` from a config file would
//! change what is read, or how. secpipe accepts only `FIELD=VALUE`, with FIELD of upper-case
//! letters, digits and `_` (journald's own field-name alphabet), and `+` between matches;
//! they are passed after `--` as separate arguments, never through a shell.
//!
//! ```
//! use secpipe::source::journal::matches::check_matches;
//! let ok = |m: &[&str]| check_matches(&m.iter().map(|s| s.to_string()).collect::<Vec<_>>());
//! assert!(ok(&["_COMM=sshd", "+", "_SYSTEMD_UNIT=nginx.service"]).is_ok());
//! assert!(ok(&[]).is_ok(), "the whole journal");
//! let err = ok(&["--output=cat"]).unwrap_err();
//! assert!(err.contains("FIELD=VALUE"), "{err}");
//! assert!(ok(&["-D/etc"]).is_err());
//! assert!(ok(&["/usr/sbin/sshd"]).is_err());
//! assert!(ok(&["_comm=sshd"]).is_err());
//! assert!(ok(&["+", "_COMM=sshd"]).is_err());
//! ```

/// Check `matches`; the error names the first bad one and says what is accepted.
pub fn check_matches(matches: &[String]) -> Result<(), String> {
    for (i, m) in matches.iter().enumerate() {
        if m == "+" {
            let between = i > 0 && i + 1 < matches.len() && matches[i + 1] != "+";
            if !between {
                return Err(format!(
                    "--journal: `+` must stand between two matches (at position {})",
                    i + 1
                ));
            }
            continue;
        }
        let field = m.split_once('=').map(|(field, _)| field);
        let good_field = field.is_some_and(|f| {
            !f.is_empty()
                && f.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        });
        if !good_field {
            return Err(format!(
                "--journal {m:?}: a match is FIELD=VALUE with FIELD of A-Z, 0-9 and _ \
                 (e.g. _COMM=sshd or _SYSTEMD_UNIT=nginx.service), or + between matches"
            ));
        }
    }
    Ok(())
}
