//! classify: message grammars (`grammars/*.toml`) compiled into regex-automata multi-pattern
//! regexes, plus the application-event field mapping (DESIGN section 3).
//!
//! How a record is classified, by envelope format:
//! - syslog-like (RFC 3164, RFC 5424, journal JSON): the grammars of the record's app (the name
//!   before any `(` or `[`, so `sshd(pam_unix)` is `sshd`) plus the `apps = ["*"]` grammars, as
//!   one multi-pattern search; `message repeated N times: [ … ]` is unwrapped and its inner
//!   message classified, with `count = N`. RFC 5424 structured data that no grammar explains
//!   goes through the application-event mapping.
//! - access logs: the request fields, then the injection check.
//! - JSON and logfmt application logs: the application-event mapping (see `app_event`), then
//!   the grammars on the message.
//! - unparsed: kind `unparsed`.
//!
//! Whatever is still `other` at the end and carries a level of `err` or worse becomes
//! `log.error`.
//!
//! Where each step lives: `load` (the embedded grammars and `--grammars DIR`), `grammar` (one
//! file's TOML and its regexes), `compile` (patterns into one regex per app group), `route`
//! (which path a record takes, by envelope format and app) and `matching` (running a group's
//! patterns on a message); a captured value goes into the event through the one list of event fields
//! (`crate::event::EventField::set_captured`).

pub mod ambiguity;
mod app_event;
mod compile;
mod decode;
mod grammar;
mod http;
mod load;
mod matching;
mod proxy;
mod route;

use hashbrown::HashMap;
use regex_automata::dfa::onepass;
use regex_automata::meta;

use crate::event::{Attempt, Kind};
pub use ambiguity::AMBIGUOUS_ADDRESS;
use grammar::Field;
pub use http::InjectionDetector;
pub use proxy::{IpBlock, TrustedProxies};
// What the tests beside this file (`use super::*`) reach into.
#[cfg(test)]
use {
    crate::event::Event,
    crate::parse::{Format, Record},
    load::EMBEDDED,
    matching::Scratch,
    regex_automata::{Anchored, Input},
    route::{base_app_name, split_repeated},
};

/// Compiled grammars.
///
/// ```
/// use secpipe::classify::Classifier;
/// use secpipe::event::{Event, Kind};
/// use secpipe::parse::{Format, Record};
///
/// let classifier = Classifier::builtin().unwrap();
/// let rec = Record {
///     format: Format::Rfc3164,
///     ts: None,
///     host: Some("bastion".into()),
///     app: Some("sshd".into()),
///     pid: Some(4242),
///     severity: Some("info".into()),
///     message: "Failed password for root from 203.0.113.7 port 52144 ssh2".into(),
///     fields: Vec::new(),
/// };
/// let mut ev = Event::default();
/// let id = classifier.classify(&rec, &mut ev).unwrap();
/// assert_eq!(ev.kind, Kind::AuthFailure);
/// assert_eq!(ev.src_ip.unwrap().to_string(), "203.0.113.7");
/// assert_eq!(classifier.pattern_names()[id], "sshd/failed_password");
/// ```
pub struct Classifier {
    /// Every pattern, indexed by global [`PatternId`].
    patterns: Vec<PatternInfo>,
    groups: Vec<AppGroup>,
    /// App name → its group. Built once from the grammars; lookups only, so the hasher need
    /// not resist flooding.
    by_app: HashMap<Box<str>, usize, foldhash::fast::FixedState>,
    /// Group of the `apps = ["*"]` patterns, for apps no grammar names (and records with no
    /// app).
    any_app: Option<usize>,
    injection: InjectionDetector,
    /// Proxies whose forwarded lists name the client (none unless configured).
    proxies: TrustedProxies,
}

/// What a matched pattern says about the event.
struct PatternInfo {
    full_name: String,
    kind: Kind,
    reason: Option<std::sync::Arc<str>>,
    attempt: Attempt,
    user: Option<Box<str>>,
    /// Its grammar pins addresses itself (`pinned_addresses`): no generic ambiguity check.
    pinned_address: bool,
    /// The pattern alone, to resolve its captures once the group search has found it: a
    /// one-pattern automaton is a fraction of the size of the group's, and capture engines
    /// pay for size on every line.
    regex: meta::Regex,
    /// The same pattern as a one-pass DFA, when it is one (the embedded hot patterns are).
    onepass: Option<onepass::DFA>,
    /// Without a one-pass DFA: literals every match contains. A line of the same first byte
    /// that lacks one is rejected by a substring search instead of the general engines (a lazy
    /// DFA scan, then a backtracker), which cost several times more on every line they see.
    required: Vec<memchr::memmem::Finder<'static>>,
    /// (capture start slot in `regex`, field it fills).
    captures: Vec<(usize, Field)>,
    slot_len: usize,
}

/// The patterns that apply to one set of app names, compiled into one regex.
struct AppGroup {
    regex: meta::Regex,
    /// Global id of each local pattern of `regex`.
    ids: Vec<PatternId>,
    /// When every pattern is anchored at the start of the message: for each possible first
    /// byte, the local patterns that can match a message starting with it, in priority order.
    by_first_byte: Option<Vec<Box<[usize]>>>,
}

/// A grammar file that could not be read or compiled; names file, line and column.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}:{column}: {message}")]
pub struct GrammarError {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Index of the grammar pattern that matched, for `secpipe events --stats`.
pub type PatternId = usize;

impl Classifier {
    /// Believe the `X-Forwarded-For` lists of requests that come from these proxies (see
    /// [`TrustedProxies::client_address`]). Without this, a forwarded address is only ever
    /// evidence (`forwarded_for`), never the `src_ip`.
    ///
    /// ```
    /// use secpipe::classify::{Classifier, IpBlock, TrustedProxies};
    /// use secpipe::event::Event;
    /// use secpipe::parse::Parser;
    ///
    /// let line = br#"10.0.0.2 - - [23/Nov/2026:12:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8" "198.51.100.7""#;
    /// let record = Parser::new(jiff::tz::TimeZone::UTC, None).parse(line, 0);
    /// let mut ev = Event::default();
    /// Classifier::builtin().unwrap().classify(&record, &mut ev);
    /// assert_eq!(ev.src_ip.unwrap().to_string(), "10.0.0.2");
    /// assert_eq!(ev.forwarded_for.as_deref(), Some("198.51.100.7"));
    ///
    /// let proxies = TrustedProxies::new(vec![IpBlock::parse("10.0.0.0/8").unwrap()]);
    /// let behind_proxy = Classifier::builtin().unwrap().with_trusted_proxies(proxies);
    /// let mut ev = Event::default();
    /// behind_proxy.classify(&record, &mut ev);
    /// assert_eq!(ev.src_ip.unwrap().to_string(), "198.51.100.7");
    /// ```
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Classifier {
        self.proxies = proxies;
        self
    }

    /// `grammar_file/pattern_name` for each PatternId, in id order.
    ///
    /// ```
    /// let c = secpipe::classify::Classifier::builtin().unwrap();
    /// assert!(c.pattern_names().iter().all(|n| n.contains('/')));
    /// ```
    pub fn pattern_names(&self) -> Vec<String> {
        self.patterns.iter().map(|p| p.full_name.clone()).collect()
    }
}

#[cfg(test)]
mod attack_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod web_tests;
