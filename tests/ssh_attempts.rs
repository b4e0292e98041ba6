//! The SSH forms of grammars/sshd.toml and grammars/dropbear.toml count attempts, not lines
//! (DESIGN section 3), and never let a crafted name choose the blamed address: `secpipe run` on
//! small sessions, checked through the `auth.bruteforce` alerts (threshold 5 in 5 minutes).

mod common;
use common::*;

/// `auth.bruteforce` alerts of `secpipe run` over `lines`: (key value, count).
fn bruteforce(lines: &[String]) -> Vec<(String, u64)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    std::fs::write(&log, lines.join("\n") + "\n").expect("write log");
    alerts_for(&[&log])
        .iter()
        .filter(|a| a["rule"] == "auth.bruteforce")
        .map(|a| {
            (
                a["key"]["value"].as_str().unwrap_or("?").to_string(),
                a["count"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn at(second: u32) -> String {
    format!("Nov 23 10:00:{second:02}")
}

#[test]
fn an_invalid_user_offering_keys_is_an_attempt_per_key() {
    // One connection: the invalid user, then five rejected keys.
    let mut lines = vec![format!(
        "{} bastion sshd[4100]: Invalid user oracle from 198.51.100.10 port 50000",
        at(0)
    )];
    for key in 1..=5 {
        lines.push(format!(
            "{} bastion sshd[4100]: Failed publickey for invalid user oracle from 198.51.100.10 port 50000 ssh2: RSA SHA256:key{key}",
            at(key)
        ));
    }
    assert_eq!(bruteforce(&lines), vec![("198.51.100.10".to_string(), 5)]);
}

#[test]
fn a_valid_users_rejected_keys_and_early_close_never_count() {
    // A client offering three wrong keys and giving up, six times over.
    let mut lines = Vec::new();
    for session in 0..6u32 {
        let pid = 4200 + session;
        let port = 51000 + session;
        for key in 0..3 {
            lines.push(format!(
                "{} bastion sshd[{pid}]: Failed publickey for git from 192.0.2.30 port {port} ssh2: ED25519 SHA256:k{key}",
                at(session * 4 + key)
            ));
        }
        lines.push(format!(
            "{} bastion sshd[{pid}]: Connection closed by authenticating user git 192.0.2.30 port {port} [preauth]",
            at(session * 4 + 3)
        ));
    }
    assert_eq!(bruteforce(&lines), vec![]);
}

#[test]
fn a_crafted_name_never_blames_the_address_it_holds() {
    let mut lines = Vec::new();
    for n in 0..6u32 {
        // An invalid user whose name holds a second "from ADDR port N ssh2:": ambiguous.
        lines.push(format!(
            "{} bastion sshd[{}]: Failed password for invalid user x from 192.0.2.1 port 22 ssh2: y from 198.51.100.69 port {} ssh2",
            at(n),
            4300 + n,
            52000 + n
        ));
        // A valid user with client text after the protocol (the ssh1 `ruser`).
        lines.push(format!(
            "{} bastion sshd[{}]: Failed password for root from 198.51.100.72 port {} ssh1: ruser from 192.0.2.1",
            at(n),
            4400 + n,
            53000 + n
        ));
    }
    let alerts = bruteforce(&lines);
    assert!(
        alerts.iter().all(|(key, _)| key != "192.0.2.1"),
        "the address inside a crafted name was blamed: {alerts:?}"
    );
    assert_eq!(alerts, vec![("198.51.100.72".to_string(), 5)]);
}

#[test]
fn a_jsch_client_giving_up_restates_its_failures() {
    // Four sessions, each one bad password then the client's "Auth fail": four attempts.
    let mut lines = Vec::new();
    for n in 0..4u32 {
        let (pid, port) = (4500 + n, 54000 + n);
        lines.push(format!(
            "{} bastion sshd[{pid}]: Failed password for root from 198.51.100.55 port {port} ssh2",
            at(n * 2)
        ));
        lines.push(format!(
            "{} bastion sshd[{pid}]: error: Received disconnect from 198.51.100.55 port {port}:3: com.jcraft.jsch.JSchException: Auth fail [preauth]",
            at(n * 2 + 1)
        ));
    }
    assert_eq!(bruteforce(&lines), vec![]);
    // A fifth session makes five.
    lines.push(format!(
        "{} bastion sshd[4600]: error: Received disconnect from 198.51.100.55 port 54100:3: com.jcraft.jsch.JSchException: Auth fail [preauth]",
        at(20)
    ));
    assert_eq!(bruteforce(&lines), vec![("198.51.100.55".to_string(), 5)]);
}

#[test]
fn dropbear_counts_each_bad_password_and_not_the_exit() {
    let session = |tries: u32| {
        let mut lines: Vec<String> = (0..tries)
            .map(|n| {
                format!(
                    "{} router authpriv.warn dropbear[900]: Bad password attempt for 'root' from 198.51.100.80:5543",
                    at(n)
                )
            })
            .collect();
        lines.push(format!(
            "{} router authpriv.info dropbear[900]: Exit before auth from <198.51.100.80:5543>: (user 'root', {tries} fails): Max auth tries reached - user 'root'",
            at(tries)
        ));
        lines
    };
    assert_eq!(bruteforce(&session(4)), vec![]);
    assert_eq!(
        bruteforce(&session(5)),
        vec![("198.51.100.80".to_string(), 5)]
    );
}
