use std::borrow::Cow;
use std::path::Path;

use super::*;

/// Test-only RFC 3164 splitter (`Mmm dd hh:mm:ss host tag[pid]: message`) until the real
/// parser lands: returns (app, pid, message) with the app as written (`sshd(pam_unix)`).
fn split_syslog(line: &str) -> Option<(&str, Option<u32>, &str)> {
    // Skip the three timestamp tokens and the host.
    let mut rest = line;
    for _ in 0..4 {
        rest = rest.trim_start();
        let end = rest.find(' ')?;
        rest = &rest[end..];
    }
    let rest = rest.trim_start();
    let (tag, message) = rest.split_once(": ")?;
    let (app, pid) = match tag.rfind('[') {
        Some(open) if tag.ends_with(']') => {
            (&tag[..open], tag[open + 1..tag.len() - 1].parse().ok())
        }
        _ => (tag.trim_end_matches(':'), None),
    };
    Some((app, pid, message))
}

fn syslog_record(line: &str) -> Record<'_> {
    let (app, pid, message) = split_syslog(line).unwrap_or(("", None, line));
    Record {
        format: Format::Rfc3164,
        ts: None,
        host: None,
        app: (!app.is_empty()).then_some(Cow::Borrowed(app)),
        pid,
        severity: None,
        message: Cow::Borrowed(message),
        fields: Vec::new(),
    }
}

fn fields_record(format: Format, pairs: &[(&'static str, &'static str)]) -> Record<'static> {
    Record {
        format,
        ts: None,
        host: None,
        app: None,
        pid: None,
        severity: None,
        message: Cow::Borrowed(""),
        fields: pairs
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
            .collect(),
    }
}

fn classify_line(c: &Classifier, line: &str) -> (Event, Option<PatternId>) {
    let mut ev = Event::default();
    let id = c.classify(&syslog_record(line), &mut ev);
    (ev, id)
}

/// The annotated fixtures (`fixtures/expect/*.log`, the `secpipe test` format) through the
/// library: every expectation holds, and there are enough of them to mean something.
#[test]
fn annotated_fixtures_hold() {
    let c = Classifier::builtin().unwrap();
    let rules = crate::detect::RuleSet::builtin();
    let ids = rules.ids();
    let ctx = crate::testfile::TestContext {
        classifier: &c,
        rules: &rules,
        parse: &crate::parse::ParseSettings {
            tz: jiff::tz::TimeZone::UTC,
            year: Some(2026),
        },
        detect: &crate::detect::DetectOptions::default(),
    };
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for path in annotated_fixtures() {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = crate::testfile::parse_test_file(&path.display().to_string(), &text, &ids)
            .unwrap_or_else(|e| panic!("{e}"));
        let outcome = ctx.run(&file);
        checked += outcome.expectations;
        mismatches.extend(outcome.mismatches.iter().map(ToString::to_string));
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(checked > 500, "only {checked} expectations checked");
}

/// `fixtures/expect/*.log`, sorted.
fn annotated_fixtures() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/expect");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

#[test]
fn attempt_roles_follow_the_design() {
    let c = Classifier::builtin().unwrap();
    let role = |msg: &str| {
        let (ev, _) = classify_line(&c, &format!("Nov 23 10:00:00 h sshd[1]: {msg}"));
        (ev.attempt, ev.count)
    };
    assert_eq!(
        role("Invalid user a from 192.0.2.1"),
        (Attempt::Start, None)
    );
    assert_eq!(
        role(
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1"
        ),
        (Attempt::Start, None)
    );
    assert_eq!(
        role("Failed password for a from 192.0.2.1 port 1 ssh2"),
        (Attempt::End, None)
    );
    assert_eq!(
        role("message repeated 4 times: [ Failed password for a from 192.0.2.1 port 1 ssh2]"),
        (Attempt::Repeat, Some(4))
    );
    assert_eq!(
        role("Connection closed by invalid user a 192.0.2.1 port 1 [preauth]"),
        (Attempt::Summary, None)
    );
    assert_eq!(
        role("ROOT LOGIN REFUSED FROM 192.0.2.1"),
        (Attempt::Start, None)
    );
    // A rejected key must never count, repeated or not.
    let (ev, _) = classify_line(
        &c,
        "Nov 23 10:00:00 h sshd[1]: message repeated 3 times: [ Failed publickey for a from 192.0.2.1 port 1 ssh2]",
    );
    assert_eq!(
        (ev.kind, ev.attempt, ev.count),
        (Kind::Other, Attempt::None, Some(3))
    );
}

#[test]
fn pattern_ids_name_the_matching_pattern() {
    let c = Classifier::builtin().unwrap();
    let names = c.pattern_names();
    let (_, id) = classify_line(
        &c,
        "Nov 23 10:00:00 h sshd[1]: Invalid user a from 192.0.2.1",
    );
    assert_eq!(names[id.unwrap()], "sshd/invalid_user");
    let (_, id) = classify_line(
        &c,
        "Nov 23 10:00:00 h su[1]: pam_unix(su:auth): authentication failure; logname=a uid=1 euid=0 tty=pts/0 ruser=a rhost=  user=root",
    );
    assert_eq!(names[id.unwrap()], "pam/authentication_failure");
    let (ev, id) = classify_line(&c, "Nov 23 10:00:00 h kernel: eth0: link up");
    assert_eq!((ev.kind, id), (Kind::Other, None));
}

#[test]
fn severity_err_or_worse_without_a_match_is_log_error() {
    let c = Classifier::builtin().unwrap();
    for (severity, want) in [
        ("err", Kind::LogError),
        ("crit", Kind::LogError),
        ("emerg", Kind::LogError),
        ("warning", Kind::Other),
        ("info", Kind::Other),
    ] {
        let mut rec = syslog_record("Nov 23 10:00:00 h kernel: disk on fire");
        rec.severity = Some(severity.into());
        let mut ev = Event::default();
        c.classify(&rec, &mut ev);
        assert_eq!(ev.kind, want, "{severity}");
    }
    // A grammar kind wins over the severity.
    let mut rec = syslog_record(
        "Nov 23 10:00:00 h sshd[1]: Failed password for a from 192.0.2.1 port 1 ssh2",
    );
    rec.severity = Some("err".into());
    let mut ev = Event::default();
    c.classify(&rec, &mut ev);
    assert_eq!(ev.kind, Kind::AuthFailure);
}

#[test]
fn unparsed_records_are_unparsed() {
    let c = Classifier::builtin().unwrap();
    let mut rec = syslog_record("Failed password for a from 192.0.2.1 port 1 ssh2");
    rec.format = Format::Unparsed;
    let mut ev = Event::default();
    assert_eq!(c.classify(&rec, &mut ev), None);
    assert_eq!(ev.kind, Kind::Unparsed);
}

fn access_record(path: &'static str) -> Record<'static> {
    fields_record(
        Format::AccessLog,
        &[
            ("remote_addr", "203.0.113.5"),
            ("user", "-"),
            ("method", "GET"),
            ("path", path),
            ("protocol", "HTTP/1.1"),
            ("status", "200"),
            ("bytes", "1234"),
        ],
    )
}

#[test]
fn access_log_records_become_requests_with_their_fields() {
    let c = Classifier::builtin().unwrap();
    let mut ev = Event::default();
    c.classify(&access_record("/index.html"), &mut ev);
    assert_eq!(ev.kind, Kind::HttpRequest);
    assert_eq!(ev.http_method.as_deref(), Some("GET"));
    assert_eq!(ev.http_path.as_deref(), Some("/index.html"));
    assert_eq!(ev.http_status, Some(200));
    assert_eq!(ev.bytes, Some(1234));
    assert_eq!(ev.src_ip.unwrap().to_string(), "203.0.113.5");
    assert_eq!(ev.user, None);
}

#[test]
fn injections_in_access_logs_keep_the_http_fields() {
    let c = Classifier::builtin().unwrap();
    let attacks = [
        ("/login?u=' OR '1'='1", "sqli"),
        ("/p?id=1 UNION SELECT password FROM users", "sqli"),
        ("/p?id=1;DROP TABLE users", "sqli"),
        ("/q?s=<script>alert(1)</script>", "xss"),
        ("/r?to=javascript:alert(1)", "xss"),
        ("/i?x=<img src=x onerror=alert(1)>", "xss"),
        ("/ping?h=1;cat /etc/passwd", "cmd_injection"),
        ("/ping?h=$(id)", "cmd_injection"),
        ("/ping?h=`id`", "cmd_injection"),
        ("/f?name=../../etc/passwd", "path_traversal"),
        ("/f?name=..%2f..%2fetc%2fpasswd", "path_traversal"),
        ("/f?name=%252e%252e%252fetc%252fpasswd", "path_traversal"),
    ];
    for (path, reason) in attacks {
        let mut ev = Event::default();
        c.classify(&access_record(path), &mut ev);
        assert_eq!(ev.kind, Kind::InjectionAttempt, "{path}");
        assert_eq!(ev.reason.as_deref(), Some(reason), "{path}");
        assert_eq!(ev.http_path.as_deref(), Some(path));
        assert_eq!(ev.http_status, Some(200));
        assert_eq!(ev.src_ip.unwrap().to_string(), "203.0.113.5");
    }
    for path in [
        "/hotels/union-square",
        "/search?q=how+to+select+a+lawyer",
        "/js/description.js",
        "/blog/drop-shipping-guide",
        "/products?sort=price&order=desc",
    ] {
        let mut ev = Event::default();
        c.classify(&access_record(path), &mut ev);
        assert_eq!(ev.kind, Kind::HttpRequest, "{path}");
        assert_eq!(ev.reason, None, "{path}");
    }
}

fn app_event(pairs: &[(&'static str, &'static str)]) -> Event {
    let c = Classifier::builtin().unwrap();
    let mut ev = Event::default();
    c.classify(&fields_record(Format::JsonApp, pairs), &mut ev);
    ev
}

#[test]
fn app_event_names_map_to_kinds() {
    let cases: [(&[(&str, &str)], Kind); 12] = [
        (&[("event", "authentication_failed")], Kind::AuthFailure),
        (&[("Event_Type", "LOGIN_FAILED")], Kind::AuthFailure),
        (&[("action", "auth_failure")], Kind::AuthFailure),
        (&[("type", "login")], Kind::AuthSuccess),
        (&[("event", "authentication_succeeded")], Kind::AuthSuccess),
        (
            &[("event", "api_key_invalidate")],
            Kind::ApikeyRevokeAttempt,
        ),
        (
            &[("event", "apikey_revocation_attempt")],
            Kind::ApikeyRevokeAttempt,
        ),
        (
            &[("event", "data_access"), ("operation", "delete")],
            Kind::DataDelete,
        ),
        (
            &[("event", "data_access"), ("operation", "SEARCH")],
            Kind::DataSearch,
        ),
        (&[("event", "vector_search")], Kind::DataSearch),
        (
            &[("event", "namespace_violation")],
            Kind::DataNamespaceViolation,
        ),
        (&[("level", "ERROR"), ("msg", "db down")], Kind::LogError),
    ];
    for (pairs, kind) in cases {
        assert_eq!(app_event(pairs).kind, kind, "{pairs:?}");
    }
    assert_eq!(
        app_event(&[("level", "info"), ("msg", "hello")]).kind,
        Kind::Other
    );
    // The first name of the list wins over later ones.
    assert_eq!(
        app_event(&[("type", "login"), ("event", "login_failed")]).kind,
        Kind::AuthFailure
    );
}

/// A client value pasted into a JSON line can add a second address key, before or after the
/// real one: whichever copy a reader takes, the client could have chosen it. Neither is
/// believed; the attempt still counts (its kind is kept), toward no address.
#[test]
fn a_duplicated_address_key_leaves_the_address_empty() {
    for pairs in [
        &[
            ("event", "login_failed"),
            ("src_ip", "10.0.0.1"),
            ("src_ip", "192.0.2.1"),
        ][..],
        &[
            ("event", "login_failed"),
            ("src_ip", "192.0.2.1"),
            ("user", "x"),
            ("src_ip", "10.0.0.1"),
        ],
        &[
            ("event", "login_failed"),
            ("ip", "192.0.2.1"),
            ("IP", "10.0.0.1"),
        ],
        &[("event", "login_failed"), ("ip", "-"), ("ip", "10.0.0.1")],
        &[
            ("method", "GET"),
            ("status", "403"),
            ("remote_addr", "192.0.2.1"),
            ("remote_addr", "10.0.0.1"),
        ],
    ] {
        let ev = app_event(pairs);
        assert_ne!(ev.kind, Kind::Other, "{pairs:?}");
        assert_eq!(ev.src_ip, None, "{pairs:?}");
        assert_eq!(ev.reason.as_deref(), Some(AMBIGUOUS_ADDRESS), "{pairs:?}");
    }
    // The same address twice, in any form, is no conflict; different names are no duplicate
    // (the documented preference decides).
    for pairs in [
        &[
            ("event", "login_failed"),
            ("ip", "192.0.2.1"),
            ("ip", "::ffff:192.0.2.1"),
        ][..],
        &[
            ("event", "login_failed"),
            ("ip", "192.0.2.1"),
            ("src_ip", "10.0.0.1"),
        ],
    ] {
        let ev = app_event(pairs);
        assert_eq!(ev.src_ip, "192.0.2.1".parse().ok(), "{pairs:?}");
        assert_eq!(ev.reason, None, "{pairs:?}");
    }
}

#[test]
fn app_event_fields_fill_ip_actor_user_and_count() {
    let ev = app_event(&[
        ("event", "login_failed"),
        ("client_ip", "::ffff:198.51.100.7"),
        ("username", "carol"),
    ]);
    assert_eq!(ev.src_ip.unwrap().to_string(), "198.51.100.7");
    assert_eq!(ev.user.as_deref(), Some("carol"));
    assert_eq!(ev.actor.as_deref(), Some("carol"));

    let ev = app_event(&[
        ("event", "data_read"),
        ("agent_id", "agent-7"),
        ("records", "250"),
    ]);
    assert_eq!((ev.kind, ev.count), (Kind::DataRead, Some(250)));
    assert_eq!(ev.actor.as_deref(), Some("agent-7"));
    assert_eq!(ev.user, None);

    let ev = app_event(&[("event", "data_delete"), ("actor", "bot")]);
    assert_eq!(ev.count, Some(1), "data events default to one record");

    let ev = app_event(&[
        ("event", "data_access"),
        ("operation", "read"),
        ("agent_id", "agent-7"),
        ("namespace", "tenant-b"),
        ("agent_namespace", "tenant-a"),
        ("rows", "3"),
    ]);
    assert_eq!(ev.kind, Kind::DataNamespaceViolation);
    assert_eq!(ev.namespace.as_deref(), Some("tenant-b"));
    assert_eq!(ev.count, Some(3));

    let ev = app_event(&[
        ("event", "data_read"),
        ("namespace", "tenant-a"),
        ("actor_namespace", "tenant-a"),
    ]);
    assert_eq!(ev.kind, Kind::DataRead, "same namespace is no violation");
}

#[test]
fn logfmt_and_rfc5424_structured_data_use_the_same_mapping() {
    let c = Classifier::builtin().unwrap();
    let mut ev = Event::default();
    c.classify(
        &fields_record(
            Format::Logfmt,
            &[("action", "api_key_revoke"), ("ip", "192.0.2.9")],
        ),
        &mut ev,
    );
    assert_eq!(ev.kind, Kind::ApikeyRevokeAttempt);
    assert_eq!(ev.src_ip.unwrap().to_string(), "192.0.2.9");

    let mut rec = fields_record(
        Format::Rfc5424,
        &[
            ("auth@32473.event", "login_failed"),
            ("auth@32473.src_ip", "2001:db8::1"),
        ],
    );
    rec.app = Some("portal".into());
    rec.message = "login rejected".into();
    let mut ev = Event::default();
    c.classify(&rec, &mut ev);
    assert_eq!(ev.kind, Kind::AuthFailure);
    assert_eq!(ev.src_ip.unwrap().to_string(), "2001:db8::1");
}

fn write_grammar(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn grammar_errors_name_file_line_and_column() {
    let cases = [
        // A bad regex: the column points into the regex, at the unclosed group.
        (
            "apps = [\"x\"]\n[[pattern]]\nname = \"a\"\nkind = \"other\"\nregex = '^ok (unclosed'\n",
            (5, 14),
            "bad regex",
        ),
        (
            "apps = [\"x\"]\n[[pattern]]\nname = \"a\"\nkind = \"auth.fail\"\nregex = '^x$'\n",
            (4, 8),
            "unknown kind",
        ),
        (
            "apps = [\"x\"]\n[[pattern]]\nname = \"a\"\nkind = \"other\"\nregex = '^(?P<srcip>\\S+)$'\n",
            (5, 11),
            "unknown capture name \"srcip\"",
        ),
        (
            "apps = [\"x\"]\n[[pattern]]\nname = \"a\"\nkind = \"other\"\nattempt = \"begin\"\nregex = 'x'\n",
            (5, 11),
            "unknown attempt",
        ),
        ("apps = [\"x\"\n", (1, 12), ""),
        (
            "apps = [\"x\"]\n[[pattern]]\nname = \"a\"\nkind = \"other\"\nregexp = 'x'\n",
            (5, 1),
            "regexp",
        ),
    ];
    for (text, (line, column), needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        write_grammar(dir.path(), "bad.toml", text);
        let err = match Classifier::with_dir(dir.path()) {
            Err(e) => e,
            Ok(_) => panic!("accepted a bad grammar: {text}"),
        };
        assert!(err.path.ends_with("bad.toml"), "{err}");
        assert_eq!((err.line, err.column), (line, column), "{err}");
        assert!(err.message.contains(needle), "{err}");
    }
}

#[test]
fn a_user_grammar_overrides_the_embedded_one_of_the_same_name() {
    let line = "Nov 23 10:00:00 h sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2";
    let builtin = Classifier::builtin().unwrap();
    assert_eq!(classify_line(&builtin, line).0.kind, Kind::AuthFailure);

    let dir = tempfile::tempdir().unwrap();
    write_grammar(
        dir.path(),
        "sshd.toml",
        "apps = [\"sshd\"]\n[[pattern]]\nname = \"only\"\nkind = \"other\"\nreason = \"mine\"\n\
         regex = '^Failed password for (?P<user>\\S+) '\n",
    );
    write_grammar(
        dir.path(),
        "rules.toml",
        "this is the rule pack, not a grammar [",
    );
    let custom = Classifier::with_dir(dir.path()).unwrap();
    let (ev, id) = classify_line(&custom, line);
    assert_eq!((ev.kind, ev.reason.as_deref()), (Kind::Other, Some("mine")));
    assert_eq!(custom.pattern_names()[id.unwrap()], "sshd/only");
    assert!(
        !custom
            .pattern_names()
            .iter()
            .any(|n| n == "sshd/failed_password")
    );
    // The other embedded grammars are still there.
    assert!(
        custom
            .pattern_names()
            .iter()
            .any(|n| n == "pam/authentication_failure")
    );
}

/// The hot patterns (sshd, PAM, web) resolve captures with a one-pass DFA; only fallbacks,
/// rare shapes and the low-volume sudo / su / login / FTP / mail lines may need the backtracker. A pattern edited out of one-pass form shows up here.
#[test]
fn embedded_patterns_are_one_pass_except_the_fallbacks() {
    let c = Classifier::builtin().unwrap();
    let slow: Vec<&str> = c
        .patterns
        .iter()
        .filter(|p| p.onepass.is_none())
        .map(|p| p.full_name.as_str())
        .collect();
    let allowed = |name: &str| {
        // dropbear writes ADDR:PORT with IPv6 unbracketed: the split needs backtracking.
        [
            "sudo/",
            "su/",
            "login/",
            "dropbear/",
            "logind/",
            "unix_chkpwd/",
            "vsftpd/",
            "proftpd/",
            "dovecot/",
            "postfix/",
            // Apache's `[client ADDR:PORT]`, IPv6 unbracketed too: the same split as dropbear.
            "apache/",
        ]
        .iter()
        .any(|g| name.starts_with(g))
            || name.ends_with("_any_name")
            || name.ends_with("_any_form")
            || [
                "sshd/pam_authentication_failure",
                "sshd/too_many_failures",
                "sshd/unable_to_negotiate_no_port",
                "sshd/bad_protocol_version",
                // Rare shapes: crafted-name detection, tcp wrappers, old PAM, JSch clients.
                "sshd/failed_ambiguous_address",
                "sshd/user_change_ambiguous_address",
                "sshd/user_change_no_address",
                "sshd/pam_user_not_known",
                "sshd/refused_connect",
                "sshd/refused_connect_no_address",
                "sshd/received_disconnect_auth_fail",
                "pam/faillock_account_locked",
                "pam/tally_over_limit",
                "pam/could_not_identify_password",
            ]
            .contains(&name)
    };
    let unexpected: Vec<&&str> = slow.iter().filter(|n| !allowed(n)).collect();
    assert!(unexpected.is_empty(), "not one-pass: {unexpected:?}");
}

/// The first-byte dispatch must pick exactly the pattern the group regex picks
/// (leftmost-first), on every fixture line and on lines that match nothing.
#[test]
fn first_byte_dispatch_agrees_with_the_group_regex() {
    let c = Classifier::builtin().unwrap();
    let mut lines = vec![
        "Nov 23 10:00:00 h sshd[1]: ".to_string(),
        "Nov 23 10:00:00 h sshd[1]: Failed".to_string(),
        "Nov 23 10:00:00 h sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2 ".to_string(),
        "Nov 23 10:00:00 h CRON[1]: pam_unix(cron:session): session opened for user root by (uid=0)".to_string(),
        "Nov 23 10:00:00 h sshd[1]: \u{e9}t\u{e9} invalid user".to_string(),
    ];
    for path in annotated_fixtures() {
        let text = std::fs::read_to_string(&path).unwrap();
        // Log lines only: comments carry the expectations.
        lines.extend(
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .map(String::from),
        );
    }
    let mut dispatched = 0;
    for line in &lines {
        let rec = syslog_record(line);
        let app = rec.app.as_deref().map(base_app_name);
        let Some(g) = app.and_then(|a| c.by_app.get(a).copied()).or(c.any_app) else {
            continue;
        };
        let group = &c.groups[g];
        let Some(table) = &group.by_first_byte else {
            continue;
        };
        let message = split_repeated(&rec.message).map_or(rec.message.as_ref(), |(_, m)| m);
        let mut scratch = Scratch {
            slots: Vec::new(),
            onepass: None,
        };
        let by_scan = c.group_search(group, message, &mut scratch);
        let by_dispatch = match message.as_bytes().first() {
            Some(&b) => {
                c.first_anchored_match(group, &table[usize::from(b)], message, &mut scratch)
            }
            None => by_scan,
        };
        assert_eq!(by_dispatch, by_scan, "{line}");
        dispatched += 1;
    }
    assert!(
        dispatched > 80,
        "only {dispatched} lines went through the dispatch"
    );
}

#[test]
fn first_bytes_follow_the_pattern_prefix() {
    let set = grammar::first_bytes(r"^(?:error: )?Received").unwrap();
    let bytes: Vec<u8> = (0u8..=255).filter(|&b| set[usize::from(b)]).collect();
    assert_eq!(bytes, b"Re");
    assert!(grammar::first_bytes(r"^\S+ x").unwrap().iter().all(|&b| b));
    assert!(grammar::first_bytes("Received").is_none(), "not anchored");
}

#[test]
fn a_classifier_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Classifier>();
    let c = std::sync::Arc::new(Classifier::builtin().unwrap());
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let c = std::sync::Arc::clone(&c);
            std::thread::spawn(move || {
                let line =
                    format!("Nov 23 10:00:00 h sshd[{i}]: Invalid user u{i} from 192.0.2.{i}");
                let (ev, _) = classify_line(&c, &line);
                (ev.kind, ev.user)
            })
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        let (kind, user) = handle.join().unwrap();
        assert_eq!(
            (kind, user.as_deref()),
            (Kind::AuthFailure, Some(format!("u{i}").as_str()))
        );
    }
}

#[test]
fn base_app_names_drop_the_facility_and_pid() {
    assert_eq!(base_app_name("sshd(pam_unix)"), "sshd");
    assert_eq!(base_app_name("sshd[42]"), "sshd");
    assert_eq!(base_app_name("sudo"), "sudo");
}

/// Recall on the loghub OpenSSH and Linux samples: of the lines that report a failed login, the share
/// classified `auth.failure` with the address written on the line. The corpus is
/// `$SECPIPE_CORPUS`, else `shared/corpus` beside the checkout or beside its folder of
/// worktrees. Without it the test says so and checks nothing, except where it is required
/// (`SECPIPE_REQUIRE_CORPUS=1`, set by tests/run-all.sh in CI): there it fails.
#[test]
fn corpus_recall_of_sshd_failures() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs: Vec<std::path::PathBuf> = match std::env::var_os("SECPIPE_CORPUS") {
        Some(dir) => vec![Path::new(&dir).join("loghub")],
        None => manifest
            .ancestors()
            .skip(1)
            .take(2)
            .map(|d| d.join("shared/corpus/loghub"))
            .collect(),
    };
    let required = std::env::var("SECPIPE_REQUIRE_CORPUS").is_ok_and(|v| v == "1");
    let Some(corpus) = dirs.iter().find(|d| d.join("OpenSSH_2k.log").is_file()) else {
        assert!(!required, "corpus required but not in any of {dirs:?}");
        eprintln!("corpus not in any of {dirs:?}: check skipped");
        return;
    };
    let mut text = String::new();
    for name in ["OpenSSH_2k.log", "Linux_2k.log"] {
        // Lossy: a sample need not be all UTF-8.
        let bytes = std::fs::read(corpus.join(name))
            .unwrap_or_else(|e| panic!("{name} in {}: {e}", corpus.display()));
        text.push_str(&String::from_utf8_lossy(&bytes));
        text.push('\n');
    }
    let c = Classifier::builtin().unwrap();
    let failure_markers = [
        "Failed password",
        "Failed none",
        "Failed keyboard",
        "Invalid user",
        "authentication failure",
        "Too many authentication failures",
        "more authentication failure",
        "maximum authentication attempts",
        "Illegal user",
        "input_userauth_request: invalid user",
        // Kerberos rlogin (Linux sample): with the address, then restated without it.
        "Authentication failed from",
        "Kerberos authentication failed",
    ];
    let mut failures = 0usize;
    let mut recalled = 0usize;
    let mut other_tagged = 0usize;
    for line in text.lines() {
        let (ev, _) = classify_line(&c, line);
        if failure_markers.iter().any(|m| line.contains(m)) {
            failures += 1;
            // The address on the line, if any: the first token that parses as one.
            let written = line
                .split(|ch: char| ch.is_whitespace() || ch == '=' || ch == '[' || ch == ']')
                .find_map(crate::event::parse_ip);
            let ok = ev.kind == Kind::AuthFailure && ev.src_ip == written;
            if ok {
                recalled += 1;
            } else {
                eprintln!("missed: {line}");
            }
        } else if ev.kind == Kind::AuthFailure {
            other_tagged += 1;
            eprintln!("extra: {line}");
        }
    }
    // Both samples hold hundreds of failed logins: none found means the markers are wrong.
    assert!(
        failures >= 100,
        "only {failures} failure lines in the samples"
    );
    let share = recalled as f64 / failures as f64;
    eprintln!(
        "recall {recalled}/{failures} = {:.2}%, extra auth.failure {other_tagged}",
        share * 100.0
    );
    assert!(share >= 0.95, "recall {share}");
}

static SHARED: std::sync::LazyLock<Classifier> =
    std::sync::LazyLock::new(|| Classifier::builtin().unwrap());

proptest::proptest! {
    /// Whatever the message, classify returns, and a captured address is a real one.
    #[test]
    fn any_message_classifies_without_panic(
        app in proptest::sample::select(vec!["sshd", "sudo", "su", "login", "nginx", "cron", ""]),
        message in "(Failed password for |Invalid user |pam_unix\\(x:auth\\): |message repeated [0-9]{1,3} times: \\[ )?\\PC{0,120}",
    ) {
        let rec = Record {
            format: Format::Rfc3164,
            ts: None,
            host: None,
            app: (!app.is_empty()).then_some(Cow::Borrowed(app)),
            pid: None,
            severity: None,
            message: Cow::Borrowed(message.as_str()),
            fields: Vec::new(),
        };
        let mut ev = Event::default();
        SHARED.classify(&rec, &mut ev);
        proptest::prop_assert!(ev.kind != Kind::Unparsed);
    }

    /// Percent-decoding and the attack patterns take any request target.
    #[test]
    fn any_request_target_classifies_without_panic(path in "(/|%25|%2[eEfF]|\\+|\\?|[a-z'<;$`])*\\PC{0,60}") {
        let rec = Record {
            format: Format::AccessLog,
            ts: None,
            host: None,
            app: None,
            pid: None,
            severity: None,
            message: Cow::Borrowed(""),
            fields: vec![(Cow::Borrowed("method"), Cow::Borrowed("GET")), (Cow::Borrowed("path"), Cow::Borrowed(path.as_str()))],
        };
        let mut ev = Event::default();
        SHARED.classify(&rec, &mut ev);
        proptest::prop_assert!(matches!(ev.kind, Kind::HttpRequest | Kind::InjectionAttempt));
        // Fields are trimmed, and an empty or `-` one counts as absent.
        let trimmed = path.trim();
        let expected = (!trimmed.is_empty() && trimmed != "-").then_some(trimmed);
        proptest::prop_assert_eq!(ev.http_path.as_deref(), expected);
    }
}
