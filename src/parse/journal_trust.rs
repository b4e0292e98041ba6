//! Does a journal entry come from the program it names? (`journalctl -o json` input.)
//!
//! In the journal, `SYSLOG_IDENTIFIER` (the app secpipe reports), `MESSAGE` and every field
//! without a leading underscore are written by the client: any local user can run
//! `logger -t sshd "Failed password for root from 10.0.0.5 port 22 ssh2"` and produce an entry
//! that claims to be sshd. Fields that start with `_` are *trusted*: journald adds them itself
//! from the sending process (systemd.journal-fields(7)): `_PID`, `_UID` and `_GID` from the
//! socket's kernel credentials, `_COMM` (the 15-byte task name) and `_EXE` from `/proc`,
//! `_SYSTEMD_UNIT` / `_SYSTEMD_USER_UNIT` from its cgroup. A client cannot set them.
//!
//! An entry that claims an authentication app (the table below), or that classify made an
//! `auth.failure` / `auth.success`, counts only when the trusted fields agree with the claim:
//!
//! | claimed app (`SYSLOG_IDENTIFIER`) | `_COMM`, or the file name of `_EXE` | `_UID` |
//! |---|---|---|
//! | `sshd`, `sshd-session`, `sshd-auth` | `sshd`, `sshd-session`, `sshd-auth` | `0` |
//! | `login`, `systemd-logind`, `dropbear` | the same name | `0` |
//! | `sudo`, `su`, `unix_chkpwd`, `vsftpd`, `proftpd` | the same name | any |
//! | `dovecot` | `dovecot`, `auth`, `imap-login`, `pop3-login`, `submission-login`, `managesieve-login` | any |
//! | `postfix/<daemon>` | `<daemon>` (e.g. `smtpd`) | any |
//! | any other app, for an `auth.*` event | the app name (first 15 bytes, like `_COMM`) | any |
//!
//! and in every case:
//! - at least one of `_COMM` and `_EXE` is present, and each one present agrees (journald may
//!   miss `/proc` details of a process that exited at once, which a forger could arrange; the
//!   kernel credentials `_UID` are always there for a local client);
//! - `_EXE`, when present, is in a system directory (`/usr/`, `/bin/`, `/sbin/`, `/lib/`,
//!   `/lib64/`, `/opt/`), so a copy of `logger` renamed `/tmp/sudo` does not pass;
//! - there is no `_SYSTEMD_USER_UNIT`: a user's own service manager runs no system daemon.
//!
//! `_SYSTEMD_UNIT` is not required to name the daemon's unit: sshd moves a session into the
//! user's `session-N.scope` after login, and containers have other units.
//!
//! An entry that fails becomes kind `other` with reason `forged_source` and no `src_ip`, so it
//! counts toward nothing; `secpipe events` shows it and the summary and metrics count it.
//!
//! ```
//! use secpipe::parse::journal_trust::source_agrees;
//! let fields = |comm: &'static str, uid: &'static str| {
//!     move |name: &str| match name {
//!         "_COMM" => Some(comm),
//!         "_UID" => Some(uid),
//!         _ => None,
//!     }
//! };
//! assert!(source_agrees("sshd", false, fields("sshd", "0")));
//! assert!(!source_agrees("sshd", false, fields("logger", "1000")), "logger -t sshd");
//! assert!(!source_agrees("sshd", false, fields("sshd", "1000")), "a user's copy named sshd");
//! assert!(source_agrees("sudo", false, fields("sudo", "1000")));
//! assert!(source_agrees("cron", false, fields("logger", "1000")), "not an auth app or event");
//! assert!(!source_agrees("myapp", true, fields("logger", "1000")), "an auth event");
//! ```

/// The reason given to an entry whose trusted fields disagree with the app it claims.
pub const FORGED_SOURCE: &str = "forged_source";

/// The kernel truncates a task name (`_COMM`) to 15 bytes.
const COMM_LEN: usize = 15;

/// Where an authentication program's executable can be: directories only root can write.
const SYSTEM_DIRS: [&str; 6] = ["/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/opt/"];

/// Who may write as an authentication app: (claimed app, its process names, runs as root).
/// Postfix daemons (`postfix/<daemon>`) are matched by prefix, outside the table.
const TABLE: [(&str, &[&str], bool); 12] = [
    ("sshd", SSHD, true),
    ("sshd-session", SSHD, true),
    ("sshd-auth", SSHD, true),
    ("login", &["login"], true),
    ("systemd-logind", &["systemd-logind"], true),
    ("dropbear", &["dropbear"], true),
    ("sudo", &["sudo"], false),
    ("su", &["su"], false),
    ("unix_chkpwd", &["unix_chkpwd"], false),
    ("vsftpd", &["vsftpd"], false),
    ("proftpd", &["proftpd"], false),
    (
        "dovecot",
        &[
            "dovecot",
            "auth",
            "imap-login",
            "pop3-login",
            "submission-login",
            "managesieve-login",
        ],
        false,
    ),
];

const SSHD: &[&str] = &["sshd", "sshd-session", "sshd-auth"];

/// Is a journal entry claiming `app` written by that app? `auth_event`: classify made it an
/// `auth.*` event (then an app outside the table must match its own name). `field` looks up a
/// journal field by its exact name.
pub fn source_agrees<'f>(
    app: &str,
    auth_event: bool,
    field: impl Fn(&str) -> Option<&'f str>,
) -> bool {
    let postfix_daemon = app.strip_prefix("postfix/");
    let table = TABLE.iter().find(|(claimed, _, _)| *claimed == app);
    if table.is_none() && postfix_daemon.is_none() && !auth_event {
        return true;
    }
    if field("_SYSTEMD_USER_UNIT").is_some() {
        return false;
    }
    let comm = field("_COMM");
    let exe = field("_EXE");
    if comm.is_none() && exe.is_none() {
        return false;
    }
    if let Some(exe) = exe
        && !SYSTEM_DIRS.iter().any(|dir| exe.starts_with(dir))
    {
        return false;
    }
    let exe_name = exe.map(|path| path.rsplit('/').next().unwrap_or(path));
    let names_agree =
        |is_name: &dyn Fn(&str) -> bool| comm.is_none_or(is_name) && exe_name.is_none_or(is_name);
    match (table, postfix_daemon) {
        (Some((_, names, root_only)), _) => {
            let uid_ok = !root_only || field("_UID") == Some("0");
            uid_ok && names_agree(&|name| names.iter().any(|n| same_program(name, n)))
        }
        (None, Some(daemon)) => names_agree(&|name| same_program(name, daemon)),
        (None, None) => names_agree(&|name| same_program(name, app)),
    }
}

/// `name` (a `_COMM`, possibly cut to 15 bytes, or an `_EXE` file name) is the program `app`.
fn same_program(name: &str, app: &str) -> bool {
    name == app || (name.len() == COMM_LEN && app.starts_with(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(app: &str, auth_event: bool, fields: &[(&'static str, &'static str)]) -> bool {
        source_agrees(app, auth_event, |name| {
            fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        })
    }

    #[test]
    fn real_daemons_pass() {
        let sshd = [("_COMM", "sshd"), ("_EXE", "/usr/sbin/sshd"), ("_UID", "0")];
        assert!(check("sshd", true, &sshd));
        let session = [
            ("_COMM", "sshd-session"),
            ("_EXE", "/usr/lib/openssh/sshd-session"),
            ("_UID", "0"),
            ("_SYSTEMD_UNIT", "session-4.scope"),
        ];
        assert!(check("sshd", true, &session));
        let sudo = [
            ("_COMM", "sudo"),
            ("_EXE", "/usr/bin/sudo"),
            ("_UID", "1000"),
        ];
        assert!(check("sudo", true, &sudo));
        let smtpd = [("_COMM", "smtpd"), ("_EXE", "/usr/lib/postfix/sbin/smtpd")];
        assert!(check("postfix/smtpd", true, &smtpd));
        let logind = [("_COMM", "systemd-logind"), ("_UID", "0")];
        assert!(check("systemd-logind", true, &logind));
    }

    #[test]
    fn forged_sources_fail() {
        let logger = [
            ("_COMM", "logger"),
            ("_EXE", "/usr/bin/logger"),
            ("_UID", "1000"),
        ];
        for app in ["sshd", "sudo", "su", "login", "dovecot", "postfix/smtpd"] {
            assert!(!check(app, false, &logger), "{app}");
        }
        assert!(
            !check("anything", true, &logger),
            "an auth event from logger"
        );
        // A renamed copy outside the system directories.
        let copy = [("_COMM", "sudo"), ("_EXE", "/tmp/sudo"), ("_UID", "1000")];
        assert!(!check("sudo", true, &copy));
        // A process that exited before journald read /proc: only the credentials remain.
        assert!(!check("sudo", true, &[("_UID", "1000")]));
        // A user service manager.
        let user_unit = [
            ("_COMM", "sudo"),
            ("_UID", "1000"),
            ("_SYSTEMD_USER_UNIT", "evil.service"),
        ];
        assert!(!check("sudo", true, &user_unit));
        // _COMM and _EXE must both agree when both are there.
        let mixed = [
            ("_COMM", "sshd"),
            ("_EXE", "/usr/bin/logger"),
            ("_UID", "0"),
        ];
        assert!(!check("sshd", true, &mixed));
    }

    #[test]
    fn other_apps_are_not_judged_unless_auth_events() {
        assert!(check("cron", false, &[]));
        assert!(check("nginx", false, &[("_COMM", "bash")]));
        assert!(!check("nginx", true, &[("_COMM", "bash")]));
        // A 15-byte task name is a prefix of a longer program name.
        assert!(check(
            "unattended-upgrade-shutdown",
            true,
            &[("_COMM", "unattended-upgr")]
        ));
    }
}
