//! Web access logs, JSON and logfmt application logs through the real parser and classifier:
//! one crafted value must not hide an event, change its kind or choose its address.

use jiff::tz::TimeZone;

use super::*;
use crate::parse::Parser;

fn event_with(classifier: &Classifier, line: &str) -> Event {
    let mut parser = Parser::new(TimeZone::UTC, Some(2026));
    let record = parser.parse(line.as_bytes(), 0);
    let mut ev = Event::default();
    classifier.classify(&record, &mut ev);
    ev
}

fn event(line: &str) -> Event {
    event_with(&SHARED, line)
}

static SHARED: std::sync::LazyLock<Classifier> =
    std::sync::LazyLock::new(|| Classifier::builtin().unwrap());

fn ip(ev: &Event) -> Option<String> {
    ev.src_ip.map(|ip| ip.to_string())
}

/// Values a client chooses (basic-auth user, JSON/logfmt user names) that look like other
/// parts of a log line.
const CRAFTED: [&str; 11] = [
    "a b",
    "x from 6.6.6.6 port 22 ssh2",
    "admin: Failed password for root from 6.6.6.6 port 22 ssh2",
    "6.6.6.6",
    "- 6.6.6.6 -",
    "[23/Nov/2026:12:00:00 +0000] 6.6.6.6",
    r#"{"ip":"6.6.6.6","event":"login_success"}"#,
    "\",\"ip\":\"6.6.6.6",
    "line\nbreak 6.6.6.6",
    "\u{1b}[2J\u{1b}[31m6.6.6.6",
    "ip=6.6.6.6 event=login_success",
];

/// How the servers write a client value in the access log: `"` and control bytes escaped
/// (apache `\"` and `\xhh`, nginx `\x22`), the rest raw.
fn as_logged(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '"' => out.push_str(r"\x22"),
            c if c.is_control() => out.push_str(&format!(r"\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[test]
fn basic_auth_user_with_a_space_does_not_hide_injection_or_403() {
    // The evasion: a user name with a space used to make the line `unparsed`.
    for prefix in [
        "",
        "Nov 23 12:00:00 web1 nginx: ",
        "Nov 23 12:00:00 web1 apache2[77]: ",
    ] {
        let attack = format!(
            r#"{prefix}198.51.100.4 - evil user [23/Nov/2026:12:00:00 +0000] "GET /item?id=1%27%20OR%20%271%27=%271 HTTP/1.1" 200 99 "-" "sqlmap""#
        );
        let ev = event(&attack);
        assert_eq!(ev.kind, Kind::InjectionAttempt, "{attack}");
        assert_eq!(ev.reason.as_deref(), Some("sqli"));
        assert_eq!(ip(&ev).as_deref(), Some("198.51.100.4"));
        assert_eq!(ev.user.as_deref(), Some("evil user"));
        let forbidden = format!(
            r#"{prefix}198.51.100.4 - evil user [23/Nov/2026:12:00:00 +0000] "GET /admin HTTP/1.1" 403 12 "-" "curl""#
        );
        let ev = event(&forbidden);
        assert_eq!(ev.kind, Kind::HttpRequest, "{forbidden}");
        assert_eq!(ev.http_status, Some(403));
        assert_eq!(ip(&ev).as_deref(), Some("198.51.100.4"));
    }
}

#[test]
fn crafted_names_never_choose_the_address_or_the_kind() {
    for crafted in CRAFTED {
        let user = as_logged(crafted);
        for prefix in [
            "",
            "Nov 23 12:00:00 web1 nginx: ",
            "Nov 23 12:00:00 web1 mywebapp: ",
        ] {
            let line = format!(
                r#"{prefix}203.0.113.7 - {user} [23/Nov/2026:12:00:00 +0000] "GET /a HTTP/1.1" 401 0 "-" "ua""#
            );
            let ev = event(&line);
            assert_eq!(ev.kind, Kind::HttpRequest, "{line}");
            assert_eq!(ip(&ev).as_deref(), Some("203.0.113.7"), "{line}");
            assert_eq!(ev.http_status, Some(401), "{line}");
        }
        // The same values as a user agent or referer: escaped by the server, never the address.
        let line = format!(
            r#"203.0.113.7 - - [23/Nov/2026:12:00:00 +0000] "GET /a HTTP/1.1" 200 1 "{user}" "{user}""#
        );
        let ev = event(&line);
        assert_eq!(ev.kind, Kind::HttpRequest, "{line}");
        assert_eq!(ip(&ev).as_deref(), Some("203.0.113.7"), "{line}");
        // And in the request line, after the path.
        let line = format!(
            r#"203.0.113.7 - - [23/Nov/2026:12:00:00 +0000] "GET /a{user} HTTP/1.1" 404 1 "-" "ua""#
        );
        let ev = event(&line);
        assert_eq!(ev.kind, Kind::HttpRequest, "{line}");
        assert_eq!(ip(&ev).as_deref(), Some("203.0.113.7"), "{line}");
        assert_eq!(ev.http_status, Some(404), "{line}");

        // JSON application logs: `user` / `username`, properly escaped by the logger.
        let name = serde_json::to_string(crafted).unwrap();
        for key in ["user", "username"] {
            let line = format!(
                r#"{{"event":"login_failed","{key}":{name},"ip":"203.0.113.7","ts":"2026-11-23T12:00:00Z"}}"#
            );
            let ev = event(&line);
            assert_eq!(ev.kind, Kind::AuthFailure, "{line}");
            assert_eq!(ip(&ev).as_deref(), Some("203.0.113.7"), "{line}");
            assert_eq!(ev.user.as_deref(), Some(crafted.trim()), "{line}");
        }

        // logfmt, the value quoted and escaped as logfmt writers do.
        let quoted = format!(
            "\"{}\"",
            crafted
                .replace('\\', r"\\")
                .replace('"', "\\\"")
                .replace('\n', r"\n")
        );
        let line = format!("event=login_failed ip=203.0.113.7 user={quoted}");
        let ev = event(&line);
        assert_eq!(ev.kind, Kind::AuthFailure, "{line}");
        assert_eq!(ip(&ev).as_deref(), Some("203.0.113.7"), "{line}");
    }
}

#[test]
fn garbage_request_lines_are_still_requests_with_their_status() {
    for (request, status) in [
        ("-", 408),
        ("", 400),
        (r"\x16\x03\x01\x00\xA5\x01", 400),
        ("GET", 400),
    ] {
        for prefix in ["", "Nov 23 12:00:00 web1 nginx: "] {
            let line = format!(
                r#"{prefix}198.51.100.9 - - [23/Nov/2026:12:00:00 +0000] "{request}" {status} 0 "-" "-""#
            );
            let ev = event(&line);
            assert_eq!(ev.kind, Kind::HttpRequest, "{line}");
            assert_eq!(ev.http_status, Some(status), "{line}");
            assert_eq!(ip(&ev).as_deref(), Some("198.51.100.9"), "{line}");
            assert_eq!(ev.http_path, None, "{line}");
        }
    }
}

#[test]
fn forwarded_address_is_the_client_only_behind_a_trusted_proxy() {
    // The client forged 6.6.6.6; the proxy 10.0.0.2 appended the real client, 203.0.113.7.
    let line = r#"10.0.0.2 - - [23/Nov/2026:12:00:00 +0000] "GET /admin HTTP/1.1" 403 0 "-" "ua" "6.6.6.6, 203.0.113.7""#;
    let untrusting = event(line);
    assert_eq!(ip(&untrusting).as_deref(), Some("10.0.0.2"));
    assert_eq!(
        untrusting.forwarded_for.as_deref(),
        Some("6.6.6.6, 203.0.113.7")
    );

    let behind = Classifier::builtin()
        .unwrap()
        .with_trusted_proxies(TrustedProxies::new(vec![
            IpBlock::parse("10.0.0.0/8").unwrap(),
        ]));
    let ev = event_with(&behind, line);
    assert_eq!(ip(&ev).as_deref(), Some("203.0.113.7"));
    assert_eq!(ev.forwarded_for.as_deref(), Some("6.6.6.6, 203.0.113.7"));

    // A client that talks to the server directly cannot use the list, trusted proxies or not.
    let direct = r#"198.51.100.4 - - [23/Nov/2026:12:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua" "10.0.0.3""#;
    assert_eq!(
        ip(&event_with(&behind, direct)).as_deref(),
        Some("198.51.100.4")
    );
    // A format that logs only the list has no address anyone wrote but the client.
    let only_list =
        r#"6.6.6.6, 203.0.113.7 - - [23/Nov/2026:12:00:00 +0000] "GET / HTTP/1.1" 200 1"#;
    let ev = event(only_list);
    assert_eq!((ev.kind, ev.src_ip), (Kind::HttpRequest, None));
    assert_eq!(ev.forwarded_for.as_deref(), Some("6.6.6.6, 203.0.113.7"));
    // JSON application events too.
    let login = r#"{"event":"login_failed","user":"bob","ip":"10.0.0.2","x_forwarded_for":"6.6.6.6, 203.0.113.7"}"#;
    assert_eq!(ip(&event(login)).as_deref(), Some("10.0.0.2"));
    assert_eq!(
        ip(&event_with(&behind, login)).as_deref(),
        Some("203.0.113.7")
    );
    assert_eq!(
        event(login).forwarded_for.as_deref(),
        Some("6.6.6.6, 203.0.113.7")
    );
    // JSON request logs name the list too.
    let json = r#"{"method":"GET","path":"/","status":200,"remote_addr":"10.0.0.2","x_forwarded_for":"203.0.113.7"}"#;
    assert_eq!(ip(&event(json)).as_deref(), Some("10.0.0.2"));
    assert_eq!(
        ip(&event_with(&behind, json)).as_deref(),
        Some("203.0.113.7")
    );
}

#[test]
fn one_bad_json_value_does_not_hide_a_failed_login() {
    for bad in [r#""\ud800""#, "1e999", "123456789012345678901", "NaN"] {
        let line = format!(
            r#"{{"event":"login_failed","user":{bad},"ip":"203.0.113.7","attempt":{bad}}}"#
        );
        let ev = event(&line);
        assert_eq!(ev.kind, Kind::AuthFailure, "{line}");
        assert_eq!(ip(&ev).as_deref(), Some("203.0.113.7"), "{line}");
    }
}

#[test]
fn vhost_and_ssl_request_logs_classify() {
    let vhost = r#"www.example.com:443 203.0.113.7 - - [23/Nov/2026:12:00:00 +0000] "GET /../../etc/passwd HTTP/1.1" 400 0 "-" "ua""#;
    let ev = event(vhost);
    assert_eq!(ev.kind, Kind::InjectionAttempt);
    assert_eq!(ip(&ev).as_deref(), Some("203.0.113.7"));
    let ssl = r#"[23/Nov/2026:12:00:00 +0000] 203.0.113.8 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 "GET /index.html HTTP/1.1" 2326"#;
    let ev = event(ssl);
    assert_eq!(ev.kind, Kind::HttpRequest);
    assert_eq!(ip(&ev).as_deref(), Some("203.0.113.8"));
    assert_eq!((ev.http_status, ev.bytes), (None, Some(2326)));
}
