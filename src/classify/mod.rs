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

pub mod ambiguity;
mod app_event;
mod decode;
mod grammar;
mod http;
mod proxy;

use std::borrow::Cow;
use std::cell::RefCell;
use std::path::Path;

use hashbrown::HashMap;
use regex_automata::dfa::onepass;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::{Anchored, Input, meta};

use crate::event::{Attempt, Event, Kind, parse_ip};
use crate::parse::{Format, Record};
pub use ambiguity::AMBIGUOUS_ADDRESS;
use grammar::{Field, GrammarSpec, capture_map, parse_grammar};
pub use http::InjectionDetector;
pub use proxy::{IpBlock, TrustedProxies};

/// The grammars shipped in the binary: (file name, contents). The detection rule pack lives
/// apart, in `rules/default.toml`.
const EMBEDDED: &[(&str, &str)] = &[
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

/// Per-thread matching state, reused across lines so that matching allocates nothing.
struct Scratch {
    /// Capture slots of the pattern being tried.
    slots: Vec<Option<NonMaxUsize>>,
    /// One one-pass cache, reset for the DFA at hand (a reset only resizes it).
    onepass: Option<onepass::Cache>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch { slots: Vec::new(), onepass: None })
    };
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

    fn compile(files: &[(String, Cow<'_, str>)]) -> Result<Classifier, GrammarError> {
        let mut specs: Vec<(&str, GrammarSpec)> = Vec::with_capacity(files.len());
        for (path, text) in files {
            specs.push((path, parse_grammar(path, text)?));
        }

        // Global ids in file order; remember which ids each file owns.
        let mut patterns = Vec::new();
        let mut regexes: Vec<String> = Vec::new();
        let mut file_ids: Vec<Vec<PatternId>> = Vec::with_capacity(specs.len());
        for (path, spec) in &specs {
            let mut ids = Vec::with_capacity(spec.patterns.len());
            for p in &spec.patterns {
                ids.push(patterns.len());
                let regex =
                    grammar::build_regex(&[p.regex.as_str()]).map_err(|e| GrammarError {
                        path: path.to_string(),
                        line: 0,
                        column: 0,
                        message: format!("pattern {}: {e}", p.full_name),
                    })?;
                let onepass = grammar::build_onepass(&p.regex);
                let required = if onepass.is_some() {
                    Vec::new()
                } else {
                    grammar::required_literals(&p.regex)
                        .iter()
                        .map(|l| memchr::memmem::Finder::new(l).into_owned())
                        .collect()
                };
                patterns.push(PatternInfo {
                    full_name: p.full_name.clone(),
                    kind: p.kind,
                    reason: p.reason.as_deref().map(std::sync::Arc::from),
                    attempt: p.attempt,
                    user: p.user.clone(),
                    pinned_address: p.pinned_address,
                    captures: capture_map(regex.group_info(), 0),
                    onepass,
                    required,
                    slot_len: regex.group_info().slot_len(),
                    regex,
                });
                regexes.push(p.regex.clone());
            }
            file_ids.push(ids);
        }

        let is_wildcard = |spec: &GrammarSpec| spec.apps.iter().any(|a| a == "*");
        let wildcard_ids: Vec<PatternId> = specs
            .iter()
            .zip(&file_ids)
            .filter(|((_, spec), _)| is_wildcard(spec))
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();

        // App name → its pattern ids: its own files first, then the wildcard ones.
        let mut app_ids: Vec<(String, Vec<PatternId>)> = Vec::new();
        for ((_, spec), ids) in specs.iter().zip(&file_ids) {
            for app in spec.apps.iter().filter(|a| *a != "*") {
                match app_ids.iter_mut().find(|(a, _)| a == app) {
                    Some((_, list)) => list.extend(ids),
                    None => app_ids.push((app.clone(), ids.clone())),
                }
            }
        }

        // Apps with the same pattern list share one compiled regex.
        let mut groups: Vec<AppGroup> = Vec::new();
        let mut group_of_list: HashMap<Vec<PatternId>, usize> = HashMap::new();
        let mut group_for =
            |ids: Vec<PatternId>, groups: &mut Vec<AppGroup>| -> Result<usize, GrammarError> {
                if let Some(&g) = group_of_list.get(&ids) {
                    return Ok(g);
                }
                let group = compile_group(&ids, &regexes)?;
                groups.push(group);
                group_of_list.insert(ids, groups.len() - 1);
                Ok(groups.len() - 1)
            };
        let mut by_app = HashMap::with_hasher(foldhash::fast::FixedState::default());
        for (app, mut ids) in app_ids {
            ids.extend(
                wildcard_ids
                    .iter()
                    .filter(|id| !ids.contains(id))
                    .collect::<Vec<_>>(),
            );
            let g = group_for(ids, &mut groups)?;
            by_app.insert(app.into_boxed_str(), g);
        }
        let any_app = if wildcard_ids.is_empty() {
            None
        } else {
            Some(group_for(wildcard_ids, &mut groups)?)
        };

        Ok(Classifier {
            patterns,
            groups,
            by_app,
            any_app,
            injection: InjectionDetector::new(),
            proxies: TrustedProxies::default(),
        })
    }

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

    /// Fill `ev.kind`, `reason`, `src_ip`, `user`, `actor`, `namespace`, `count`, `http_*`,
    /// `bytes`, `attempt` from `rec`. `ev` already carries source, line, ts, host, app, pid,
    /// severity, message and raw. Returns the grammar pattern that matched, if any.
    ///
    /// ```
    /// use secpipe::classify::Classifier;
    /// use secpipe::event::{Attempt, Event, Kind};
    /// use secpipe::parse::{Format, Record};
    ///
    /// let c = Classifier::builtin().unwrap();
    /// let rec = Record {
    ///     format: Format::Rfc3164,
    ///     ts: None,
    ///     host: None,
    ///     app: Some("sshd".into()),
    ///     pid: Some(7),
    ///     severity: None,
    ///     message: "message repeated 3 times: [ Failed password for root from 198.51.100.4 port 22 ssh2]".into(),
    ///     fields: Vec::new(),
    /// };
    /// let mut ev = Event::default();
    /// c.classify(&rec, &mut ev);
    /// assert_eq!((ev.kind, ev.attempt, ev.count), (Kind::AuthFailure, Attempt::Repeat, Some(3)));
    /// ```
    pub fn classify(&self, rec: &Record<'_>, ev: &mut Event) -> Option<PatternId> {
        // The injection check reads the request fields (user agent, referer) where there are
        // any, so each route runs it with its own.
        let matched = match rec.format {
            Format::Unparsed => {
                ev.kind = Kind::Unparsed;
                return None;
            }
            Format::AccessLog => {
                http::fill_http_fields(&rec.fields, &self.proxies, ev);
                self.injection.apply(ev, &rec.fields);
                None
            }
            Format::JsonApp | Format::Logfmt => {
                if app_event::apply_app_fields(&rec.fields, &self.proxies, ev) {
                    self.injection.apply(ev, &rec.fields);
                    None
                } else {
                    let matched = self.match_message(rec.app.as_deref(), &rec.message, ev);
                    self.injection.apply(ev, &[]);
                    matched
                }
            }
            Format::Rfc3164 | Format::Rfc5424 | Format::JournalJson | Format::ApacheError => {
                let matched = self.match_message(rec.app.as_deref(), &rec.message, ev);
                let mut checked = false;
                if matched.is_none() && rec.format == Format::Rfc5424 && !rec.fields.is_empty() {
                    let fields = sd_param_names(&rec.fields);
                    app_event::apply_app_fields(&fields, &self.proxies, ev);
                    self.injection.apply(ev, &fields);
                    checked = true;
                } else if matched.is_none() || ev.kind == Kind::HttpRequest {
                    // An access log through syslog: the access-log parser reads what a grammar
                    // cannot (a user name with spaces, a vhost, forwarded lists, agent and
                    // referer), so it has the last word on a line it understands.
                    if let Some(fields) = http::embedded_access_log_fields(&rec.message) {
                        http::fill_http_fields(&fields, &self.proxies, ev);
                        self.injection.apply(ev, &fields);
                        checked = true;
                    }
                }
                if !checked {
                    self.injection.apply(ev, &[]);
                }
                matched
            }
        };
        if ev.kind == Kind::Other
            && rec
                .severity
                .as_deref()
                .is_some_and(app_event::is_error_level)
        {
            ev.kind = Kind::LogError;
        }
        matched
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

    /// Run the grammars of `app` on `message`, unwrapping syslog's `message repeated`.
    fn match_message(&self, app: Option<&str>, message: &str, ev: &mut Event) -> Option<PatternId> {
        let group = match app {
            Some(app) => self
                .by_app
                .get(base_app_name(app))
                .copied()
                .or(self.any_app)?,
            None => self.any_app?,
        };
        let group = self.groups.get(group)?;
        match split_repeated(message) {
            Some((times, inner)) => {
                let id = self.match_group(group, inner, ev)?;
                ev.count = Some(times);
                if ev.attempt != Attempt::None {
                    ev.attempt = Attempt::Repeat;
                }
                Some(id)
            }
            None => self.match_group(group, message, ev),
        }
    }

    /// Find the pattern of `group` that matches `message` and fill the event from it.
    fn match_group(&self, group: &AppGroup, message: &str, ev: &mut Event) -> Option<PatternId> {
        SCRATCH.with(|scratch| {
            let scratch = &mut *scratch.borrow_mut();
            let id = match (&group.by_first_byte, message.as_bytes().first()) {
                (Some(table), Some(&first)) => {
                    let candidates = table.get(usize::from(first))?;
                    self.first_anchored_match(group, candidates, message, scratch)?
                }
                _ => self.group_search(group, message, scratch)?,
            };
            let slots = &scratch.slots;
            let info = self.patterns.get(id)?;
            ev.kind = info.kind;
            ev.attempt = info.attempt;
            ev.reason.clone_from(&info.reason);
            if info.user.is_some() {
                ev.user.clone_from(&info.user);
            }
            let mut address = None;
            for &(slot, field) in &info.captures {
                let (Some(Some(start)), Some(Some(end))) = (slots.get(slot), slots.get(slot + 1))
                else {
                    continue;
                };
                if let Some(text) = message.get(start.get()..end.get()) {
                    set_field(ev, field, text);
                    if field == Field::SrcIp {
                        address = Some(start.get()..end.get());
                    }
                }
            }
            if let (false, Some(address), Some(_)) = (info.pinned_address, address, ev.src_ip) {
                // A fixed array: this runs on every line that names an address.
                let mut attacker: [std::ops::Range<usize>; 4] = Default::default();
                let mut n = 0;
                for &(slot, field) in &info.captures {
                    if let (true, Some(Some(start)), Some(Some(end))) =
                        (field.is_client_text(), slots.get(slot), slots.get(slot + 1))
                        && let Some(r) = attacker.get_mut(n)
                    {
                        *r = start.get()..end.get();
                        n += 1;
                    }
                }
                if ambiguity::is_ambiguous(message, address, attacker.get(..n).unwrap_or(&[])) {
                    ev.src_ip = None;
                    ev.reason = Some(AMBIGUOUS_ADDRESS.into());
                }
            }
            Some(id)
        })
    }

    /// All patterns anchored at the start: try the candidates for the message's first byte in
    /// priority order, each alone. That is exactly the leftmost-first answer of the group
    /// regex (every match starts at 0, so priority decides), and a candidate that does not
    /// match usually fails within a few bytes, so this costs about one capture pass per line
    /// instead of a group scan plus a capture pass.
    fn first_anchored_match(
        &self,
        group: &AppGroup,
        candidates: &[usize],
        message: &str,
        scratch: &mut Scratch,
    ) -> Option<PatternId> {
        let input = Input::new(message).anchored(Anchored::Yes);
        candidates.iter().find_map(|&local| {
            let id = *group.ids.get(local)?;
            let info = self.patterns.get(id)?;
            info.resolve(&input, scratch).then_some(id)
        })
    }

    /// General case (some pattern not anchored at the start): one multi-pattern search, then
    /// captures for the pattern that matched, on its span.
    fn group_search(
        &self,
        group: &AppGroup,
        message: &str,
        scratch: &mut Scratch,
    ) -> Option<PatternId> {
        let found = group.regex.search(&Input::new(message))?;
        let id = *group.ids.get(found.pattern().as_usize())?;
        let info = self.patterns.get(id)?;
        // Same leftmost-first semantics, so the pattern matches the same span again.
        let span = Input::new(message)
            .range(found.range())
            .anchored(Anchored::Yes);
        info.resolve(&span, scratch);
        Some(id)
    }
}

impl PatternInfo {
    /// Run this pattern alone on an anchored `input`, filling `slots`; true when it matched.
    fn resolve(&self, input: &Input<'_>, scratch: &mut Scratch) -> bool {
        let slots = &mut scratch.slots;
        slots.clear();
        slots.resize(self.slot_len, None);
        match &self.onepass {
            Some(dfa) => {
                let cache = scratch.onepass.get_or_insert_with(|| dfa.create_cache());
                cache.reset(dfa);
                // An anchored one-pass search cannot fail; if it ever did, it counts as no
                // match.
                matches!(dfa.try_search_slots(cache, input, slots), Ok(Some(_)))
            }
            None => {
                let span = input
                    .haystack()
                    .get(input.start()..input.end())
                    .unwrap_or_default();
                self.required.iter().all(|f| f.find(span).is_some())
                    && self.regex.search_slots(input, slots).is_some()
            }
        }
    }
}

fn file_name_of(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

fn compile_group(ids: &[PatternId], regexes: &[String]) -> Result<AppGroup, GrammarError> {
    let texts: Vec<&str> = ids
        .iter()
        .filter_map(|&id| regexes.get(id).map(String::as_str))
        .collect();
    // Each regex compiled alone while loading; a failure here is a limit of the combination
    // (e.g. its size), which no single file position explains.
    let regex = grammar::build_regex(&texts).map_err(|e| GrammarError {
        path: "grammars".into(),
        line: 0,
        column: 0,
        message: format!("the patterns of one app group do not compile together: {e}"),
    })?;
    let first_bytes: Option<Vec<[bool; 256]>> =
        texts.iter().map(|t| grammar::first_bytes(t)).collect();
    let by_first_byte = first_bytes.map(|sets| {
        (0..256)
            .map(|byte| {
                sets.iter()
                    .enumerate()
                    .filter(|(_, set)| set[byte])
                    .map(|(local, _)| local)
                    .collect()
            })
            .collect()
    });
    Ok(AppGroup {
        regex,
        ids: ids.to_vec(),
        by_first_byte,
    })
}

/// `sshd(pam_unix)` and `sshd[123]` are sshd.
fn base_app_name(app: &str) -> &str {
    app.find(['(', '['])
        .map_or(app, |i| &app[..i])
        .trim_end_matches(':')
}

/// `message repeated 5 times: [ Failed password …]` → (5, `Failed password …`).
fn split_repeated(message: &str) -> Option<(u64, &str)> {
    let rest = message.strip_prefix("message repeated ")?;
    let (times, rest) = rest.split_once(" times: [")?;
    let times = times.parse().ok()?;
    let inner = rest.trim_end();
    let inner = inner.strip_suffix(']').unwrap_or(inner);
    Some((times, inner.trim()))
}

/// RFC 5424 SD params as plain param names (`auth@32473.event` → `event`), so the
/// application-event mapping reads them like JSON members.
fn sd_param_names<'f>(
    fields: &'f [(Cow<'_, str>, Cow<'_, str>)],
) -> Vec<(Cow<'f, str>, Cow<'f, str>)> {
    fields
        .iter()
        .map(|(k, v)| {
            let name = k.rsplit_once('.').map_or(k.as_ref(), |(_, n)| n);
            (Cow::Borrowed(name), Cow::Borrowed(v.as_ref()))
        })
        .collect()
}

/// Store one captured value. Empty and `-` (the logs' "no value") leave the field alone, as
/// does an address that does not parse (a host name in `rhost=`).
fn set_field(ev: &mut Event, field: Field, text: &str) {
    let text = text.trim();
    if text.is_empty() || text == "-" {
        return;
    }
    match field {
        Field::SrcIp => {
            if let Some(ip) = parse_ip(text) {
                ev.src_ip = Some(ip);
            }
        }
        Field::User => ev.user = Some(text.into()),
        Field::Actor => ev.actor = Some(text.into()),
        Field::Namespace => ev.namespace = Some(text.into()),
        Field::HttpMethod => ev.http_method = Some(text.into()),
        Field::HttpPath => ev.http_path = Some(text.into()),
        Field::Reason => ev.reason = Some(text.into()),
        Field::Count => ev.count = text.parse().ok().or(ev.count),
        Field::Bytes => ev.bytes = text.parse().ok().or(ev.bytes),
        Field::HttpStatus => ev.http_status = text.parse().ok().or(ev.http_status),
    }
}

#[cfg(test)]
mod attack_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod web_tests;
