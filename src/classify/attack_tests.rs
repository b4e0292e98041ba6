//! Attacker text never chooses the address, checked over every pattern of every embedded
//! grammar file.
//!
//! For each pattern a sample message is generated from its own regex (named captures get
//! realistic values: an address, a user name), so no pattern can be left out. Then every
//! client-written capture (user, actor, namespace, http_path) is replaced by crafted values
//! that imitate the server's text around an address, and text is appended where a free-text
//! tail may be the client's. The whole classifier runs on each crafted message: its `src_ip` must be the
//! address the server wrote in the sample, or empty. It is never the crafted one.

use std::ops::Range;

use regex_syntax::hir::{Class, Hir, HirKind};

use super::grammar::{Field, is_client_text, parse_grammar};
use super::*;

/// The address crafted values name: the "admin's" address an attacker wants blocked.
const FRAMED_V4: &str = "192.0.2.250";
const FRAMED_V6: &str = "2001:db8:bad::6";

/// Captures whose text is an account name the server has already looked up, not what the
/// client typed: a crafted name cannot appear there. Each entry says where the server takes it
/// from; the test still injects into every other capture of these patterns.
const SERVER_CHECKED_NAMES: &[(&str, &str)] = &[
    // OpenSSH auth.c allowed_user(): `pw->pw_name`, an existing account.
    ("sshd/user_not_allowed", "pw->pw_name"),
    ("sshd/user_not_allowed_no_address", "pw->pw_name"),
];

/// A generated sample of one pattern.
struct Sample {
    full_name: String,
    app: String,
    message: String,
}

#[test]
fn every_embedded_pattern_keeps_the_server_address_under_crafted_names() {
    let classifier = Classifier::builtin().expect("embedded grammars compile");
    let samples = embedded_samples();
    assert_eq!(
        samples.len(),
        classifier.pattern_names().len(),
        "a sample for every embedded pattern"
    );
    let mut failures = Vec::new();
    let mut attacks = 0;
    for sample in &samples {
        let mut ev = Event::default();
        let matched = classifier.match_message(Some(&sample.app), &sample.message, &mut ev);
        assert!(
            matched.is_some(),
            "{}: its generated sample {:?} matches no pattern",
            sample.full_name,
            sample.message
        );
        let server_address = ev.src_ip;
        for crafted in crafted_messages(&classifier, sample) {
            attacks += 1;
            let mut got = Event::default();
            classifier.match_message(Some(&sample.app), &crafted, &mut got);
            if got.src_ip.is_some() && got.src_ip != server_address {
                failures.push(format!(
                    "{}: {:?} gave src_ip {:?} (server wrote {:?})",
                    sample.full_name,
                    crafted,
                    got.src_ip.map(|ip| ip.to_string()),
                    server_address.map(|ip| ip.to_string())
                ));
            }
        }
    }
    assert!(
        attacks > samples.len() * 10,
        "only {attacks} crafted messages"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The attack this module exists for, as the issue reports it.
#[test]
fn a_ruser_naming_another_address_does_not_choose_the_address() {
    let classifier = Classifier::builtin().expect("embedded grammars compile");
    let mut ev = Event::default();
    classifier.match_message(
        Some("sshd"),
        "Failed password for root from 192.0.2.12 port 22 ssh1: ruser from 198.51.100.9",
        &mut ev,
    );
    assert_eq!(ev.kind, Kind::AuthFailure);
    assert_ne!(ev.src_ip, "198.51.100.9".parse().ok());
    if ev.src_ip.is_none() {
        assert_eq!(ev.reason.as_deref(), Some(AMBIGUOUS_ADDRESS));
    }
}

/// A sample for every pattern of every embedded grammar file, in file order.
fn embedded_samples() -> Vec<Sample> {
    let mut samples = Vec::new();
    for (file, text) in EMBEDDED {
        let spec = parse_grammar(file, text).expect("embedded grammar parses");
        let app = spec
            .apps
            .iter()
            .find(|a| *a != "*")
            .cloned()
            .unwrap_or_else(|| "secpipe-test-app".to_string());
        for pattern in &spec.patterns {
            let message = generate(&pattern.regex).unwrap_or_else(|| {
                panic!("{}: cannot generate a sample message", pattern.full_name)
            });
            samples.push(Sample {
                full_name: pattern.full_name.clone(),
                app: app.clone(),
                message,
            });
        }
    }
    samples
}

/// Every crafted variant of `sample`: each client-written capture replaced by each crafted
/// value, and crafted tails appended.
fn crafted_messages(classifier: &Classifier, sample: &Sample) -> Vec<String> {
    let message = &sample.message;
    let id = classifier
        .pattern_names()
        .iter()
        .position(|n| *n == sample.full_name)
        .expect("sample names a pattern");
    let spans = capture_spans(classifier, id, message);
    let address = spans
        .iter()
        .find(|(f, _)| *f == Field::SrcIp)
        .map(|(_, r)| r.clone());
    // The server's own words around its address, with the framed address in its place: the
    // strongest imitation a client can type.
    let mut imitations = Vec::new();
    if let Some(address) = &address {
        let word_start = message
            .get(..address.start)
            .and_then(|before| before.trim_end().rfind(' ').map(|i| i + 1))
            .unwrap_or(0);
        let head = message.get(word_start..address.start).unwrap_or("");
        let tail = message.get(address.end..).unwrap_or("");
        imitations.push(format!("x {head}{FRAMED_V4}"));
        imitations.push(format!("x {head}{FRAMED_V4}{tail}"));
        imitations.push(format!("x {head}{FRAMED_V6}{tail}"));
    }
    let mut values: Vec<String> = [
        format!("x from {FRAMED_V4} port 22 ssh2"),
        format!("x from {FRAMED_V4}"),
        format!("x: from {FRAMED_V4} port 1: y"),
        format!("x#012Failed password for root from {FRAMED_V4} port 22 ssh2"),
        format!("\"x\" from '{FRAMED_V4}'"),
        format!("{{\"src_ip\":\"{FRAMED_V4}\",\"user\":\"root\"}}"),
        format!("\u{1b}[2K\u{1b}[1Gx from {FRAMED_V4} port 22 ssh2"),
        format!("x rhost={FRAMED_V4}"),
        format!("x>, method=PLAIN, rip={FRAMED_V4}, lip=192.0.2.1, TLS: y"),
        format!("x' FROM '{FRAMED_V4}' FOR 'root"),
        format!("x] FAIL LOGIN: Client \"{FRAMED_V4}\", \"y"),
        format!("x [{FRAMED_V4}]"),
        format!("x ({FRAMED_V4}[{FRAMED_V4}])"),
        FRAMED_V4.to_string(),
        format!("x from {FRAMED_V6} port 22 ssh2"),
    ]
    .into();
    values.extend(imitations);

    let mut out = Vec::new();
    for (field, span) in &spans {
        if !is_client_text(*field)
            || SERVER_CHECKED_NAMES
                .iter()
                .any(|(name, _)| *name == sample.full_name)
        {
            continue;
        }
        for value in &values {
            let mut crafted = message.clone();
            crafted.replace_range(span.clone(), value);
            out.push(crafted);
        }
    }
    // A free-text tail (disconnect reasons, version strings, `: extra`) may be the client's,
    // when the pattern has one: it still matches with text appended.
    // The address must stay where it was: a lazy name before it could otherwise swallow
    // the appended word and make it the "address".
    let appended = format!("{message} x");
    let free_tail = match address {
        Some(address) => capture_spans(classifier, id, &appended)
            .iter()
            .any(|(field, span)| *field == Field::SrcIp && *span == address),
        None => classifier.patterns.get(id).is_some_and(|info| {
            info.regex
                .is_match(Input::new(&appended).anchored(Anchored::Yes))
        }),
    };
    for value in values.iter().filter(|_| free_tail) {
        out.push(format!("{message} {value}"));
        out.push(format!("{message}: {value}"));
    }
    out
}

/// (field, byte range) of each named capture of pattern `id` matching `message` alone.
fn capture_spans(
    classifier: &Classifier,
    id: PatternId,
    message: &str,
) -> Vec<(Field, Range<usize>)> {
    let Some(info) = classifier.patterns.get(id) else {
        return Vec::new();
    };
    let mut caps = info.regex.create_captures();
    info.regex
        .captures(Input::new(message).anchored(Anchored::Yes), &mut caps);
    // One pattern alone: the slots of group g are 2g and 2g + 1.
    info.captures
        .iter()
        .filter_map(|&(slot, field)| Some((field, caps.get_group(slot / 2)?.range())))
        .collect()
}

/// A short message that `pattern` matches, with realistic values in named captures.
fn generate(pattern: &str) -> Option<String> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    let regex = grammar::build_regex(&[pattern]).ok()?;
    for realistic in [true, false] {
        let mut out = Vec::new();
        emit(&hir, realistic, &mut out);
        let text = String::from_utf8(out).ok()?;
        if regex.is_match(Input::new(&text).anchored(Anchored::Yes)) {
            return Some(text);
        }
    }
    None
}

fn emit(hir: &Hir, realistic: bool, out: &mut Vec<u8>) {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(lit) => out.extend_from_slice(&lit.0),
        HirKind::Class(class) => out.push(representative(class)),
        HirKind::Repetition(rep) => {
            // Optional parts are left out, unless they hold a capture to attack.
            let times = if rep.min == 0 && has_named_capture(&rep.sub) {
                1
            } else {
                rep.min
            };
            for _ in 0..times {
                emit(&rep.sub, realistic, out);
            }
        }
        HirKind::Capture(cap) => {
            let value = match (realistic, cap.name.as_deref()) {
                (true, Some("src_ip")) => Some("198.51.100.7"),
                (true, Some("user")) => Some("alice"),
                (true, Some("actor")) => Some("bob"),
                (true, Some("namespace")) => Some("ns1"),
                (true, Some("count" | "bytes" | "http_status")) => Some("200"),
                (true, Some("http_method")) => Some("GET"),
                (true, Some("http_path")) => Some("/index.html"),
                _ => None,
            };
            match value {
                Some(v) => out.extend_from_slice(v.as_bytes()),
                None => emit(&cap.sub, realistic, out),
            }
        }
        HirKind::Concat(parts) => parts.iter().for_each(|p| emit(p, realistic, out)),
        HirKind::Alternation(branches) => {
            if let Some(first) = branches.first() {
                emit(first, realistic, out);
            }
        }
    }
}

fn has_named_capture(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Capture(cap) => cap.name.is_some() || has_named_capture(&cap.sub),
        HirKind::Repetition(rep) => has_named_capture(&rep.sub),
        HirKind::Concat(parts) | HirKind::Alternation(parts) => parts.iter().any(has_named_capture),
        _ => false,
    }
}

/// A plain byte the class accepts: a letter or digit when it can, so samples read like logs.
fn representative(class: &Class) -> u8 {
    let accepts = |b: u8| match class {
        Class::Bytes(c) => c.ranges().iter().any(|r| r.start() <= b && b <= r.end()),
        Class::Unicode(c) => c
            .ranges()
            .iter()
            .any(|r| r.start() <= char::from(b) && char::from(b) <= r.end()),
    };
    let first = match class {
        Class::Bytes(c) => c.ranges().first().map_or(b'a', |r| r.start()),
        Class::Unicode(c) => c
            .ranges()
            .first()
            .and_then(|r| u8::try_from(u32::from(r.start())).ok())
            .unwrap_or(b'a'),
    };
    b"a1x./-_ "
        .iter()
        .copied()
        .find(|&b| accepts(b))
        .unwrap_or(first)
}
