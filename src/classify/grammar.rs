//! Grammar files: the declarative TOML format, loading, validation and compilation into one
//! multi-pattern regex per app group.
//!
//! The format is documented at the top of every file in `grammars/`; in short:
//!
//! ```toml
//! apps = ["sshd", "sshd-session"]     # app names this file applies to; "*" = every app
//!
//! [[pattern]]
//! name = "failed_password"            # unique in the file; reported as `file/name`
//! kind = "auth.failure"               # an event kind (DESIGN section 3)
//! reason = "bad_password"             # optional; a `reason` capture overrides it
//! attempt = "end"                     # optional: none | start | end | repeat | summary
//! user = "root"                       # optional constant user when the line implies one
//! regex = '^Failed password for (?P<user>.*?) from (?P<src_ip>\S+)'
//! ```
//!
//! Named captures fill event fields: `src_ip`, `user`, `actor`, `namespace`, `count`,
//! `http_method`, `http_path`, `http_status`, `bytes`, `reason`. Unnamed groups are fine; any
//! other name is an error, so a typo cannot silently drop a field.

use std::ops::Range;

use regex_automata::dfa::onepass;
use regex_automata::meta;
use regex_automata::util::captures::GroupInfo;
use serde::Deserialize;
use toml::Spanned;

use super::GrammarError;
use crate::event::{Attempt, Kind};
use crate::text::line_col;

/// A field a named capture fills: an event field that [`EventField::capturable`] allows.
pub(crate) use crate::event::EventField as Field;

/// Fields a client writes (a name it logs in as, a namespace or path it asks for): text that
/// may imitate the server's own words around an address.
pub(crate) fn is_client_text(field: Field) -> bool {
    matches!(
        field,
        Field::User | Field::Actor | Field::Namespace | Field::HttpPath
    )
}

/// The field a capture group of this name fills.
fn from_capture_name(name: &str) -> Option<Field> {
    Field::parse(name).filter(|f| f.capturable())
}

/// One validated pattern, before it is grouped by app.
pub(crate) struct PatternSpec {
    /// `file_stem/pattern_name`.
    pub full_name: String,
    pub kind: Kind,
    pub reason: Option<Box<str>>,
    pub attempt: Attempt,
    pub user: Option<Box<str>>,
    pub regex: String,
    /// The file declares `pinned_addresses = true`: its regexes place the address by the
    /// server's template up to the end anchor, so the generic two-address check is skipped.
    pub pinned_address: bool,
}

/// One validated grammar file.
pub(crate) struct GrammarSpec {
    /// App names, `*` for any app.
    pub apps: Vec<String>,
    pub patterns: Vec<PatternSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    apps: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pinned_addresses: bool,
    #[serde(default)]
    pattern: Vec<Spanned<PatternDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternDef {
    name: Spanned<String>,
    kind: Spanned<String>,
    reason: Option<Spanned<String>>,
    attempt: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    regex: Spanned<String>,
}

fn error_at(path: &str, text: &str, offset: usize, message: String) -> GrammarError {
    let (line, column) = line_col(text, offset);
    GrammarError {
        path: path.to_string(),
        line,
        column,
        message,
    }
}

/// Byte offset in the file of position `pos` inside the regex string whose TOML value spans
/// `span`. Exact for literal strings (`'…'`, `'''…'''`), which is what the grammars use because
/// they need no escaping; for basic strings it falls back to the start of the value.
fn offset_in_regex_value(text: &str, span: &Range<usize>, pos: usize) -> usize {
    let value = text.get(span.clone()).unwrap_or("");
    if let Some(rest) = value.strip_prefix("'''") {
        // TOML trims a newline that immediately follows the opening delimiter.
        let skip = if rest.starts_with("\r\n") {
            2
        } else {
            usize::from(rest.starts_with('\n'))
        };
        span.start + 3 + skip + pos
    } else if value.starts_with('\'') {
        span.start + 1 + pos
    } else {
        span.start
    }
}

/// Parse and validate one grammar file. `path` is what errors name; the file stem prefixes
/// pattern names.
pub(crate) fn parse_grammar(path: &str, text: &str) -> Result<GrammarSpec, GrammarError> {
    let file: FileDef = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        error_at(path, text, offset, e.message().trim().to_string())
    })?;
    let stem = std::path::Path::new(path)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(path)
        .to_string();

    let apps_span = file.apps.span();
    let apps: Vec<String> = file
        .apps
        .into_inner()
        .into_iter()
        .map(Spanned::into_inner)
        .collect();
    if apps.is_empty() {
        return Err(error_at(
            path,
            text,
            apps_span.start,
            "`apps` is empty: name at least one app, or \"*\" for every app".into(),
        ));
    }

    let mut patterns: Vec<PatternSpec> = Vec::with_capacity(file.pattern.len());
    for def in file.pattern {
        let def = def.into_inner();
        let name = def.name.get_ref();
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(error_at(
                path,
                text,
                def.name.span().start,
                format!(
                    "pattern name {name:?} must be non-empty ASCII letters, digits, `_` or `-`"
                ),
            ));
        }
        let full_name = format!("{stem}/{name}");
        if patterns.iter().any(|p| p.full_name == full_name) {
            return Err(error_at(
                path,
                text,
                def.name.span().start,
                format!("duplicate pattern name {name:?} in this file"),
            ));
        }
        let kind = Kind::parse(def.kind.get_ref()).ok_or_else(|| {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            error_at(
                path,
                text,
                def.kind.span().start,
                format!(
                    "unknown kind {:?}; expected one of {}",
                    def.kind.get_ref(),
                    known.join(", ")
                ),
            )
        })?;
        let attempt = match &def.attempt {
            None => Attempt::None,
            Some(a) => Attempt::parse(a.get_ref()).ok_or_else(|| {
                error_at(
                    path,
                    text,
                    a.span().start,
                    format!(
                        "unknown attempt {:?}; expected none, start, end, repeat, summary or tally",
                        a.get_ref()
                    ),
                )
            })?,
        };
        check_regex(path, text, &def.regex)?;
        patterns.push(PatternSpec {
            full_name,
            kind,
            reason: def.reason.map(|r| r.into_inner().into_boxed_str()),
            attempt,
            user: def.user.map(|u| u.into_inner().into_boxed_str()),
            regex: def.regex.into_inner(),
            pinned_address: file.pinned_addresses,
        });
    }
    Ok(GrammarSpec { apps, patterns })
}

/// Compile one regex on its own so that an error can name the exact pattern, and check its
/// capture names.
fn check_regex(path: &str, text: &str, regex: &Spanned<String>) -> Result<(), GrammarError> {
    let span = regex.span();
    let compiled = build_regex(&[regex.get_ref().as_str()]).map_err(|e| {
        // Point into the regex itself when the syntax error says where.
        let pos = e
            .syntax_error()
            .and_then(|se| match se {
                regex_syntax::Error::Parse(ast) => Some(ast.span().start.offset),
                regex_syntax::Error::Translate(hir) => Some(hir.span().start.offset),
                _ => None,
            })
            .unwrap_or(0);
        error_at(
            path,
            text,
            offset_in_regex_value(text, &span, pos),
            format!("bad regex: {e}"),
        )
    })?;
    let info = compiled.group_info();
    for name in info
        .pattern_names(regex_automata::PatternID::ZERO)
        .flatten()
    {
        if from_capture_name(name).is_none() {
            let pos = regex
                .get_ref()
                .find(&format!("(?P<{name}>"))
                .or_else(|| regex.get_ref().find(&format!("(?<{name}>")));
            let known: Vec<&str> = Field::all()
                .filter(|f| f.capturable())
                .map(Field::name)
                .collect();
            return Err(error_at(
                path,
                text,
                offset_in_regex_value(text, &span, pos.unwrap_or(0)),
                format!(
                    "unknown capture name {name:?}; captures fill event fields: {}",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Compile grammar regexes. Classes are ASCII (`\w`, `\d`, `\s`, case folding) and `.`/`\S`
/// match any non-ASCII byte: log grammars anchor on ASCII punctuation, and byte classes keep
/// the automata small, which is what makes resolving captures cheap on the hot path. Matches
/// still land on character boundaries because every delimiter a grammar uses is ASCII.
pub(crate) fn build_regex(patterns: &[&str]) -> Result<meta::Regex, Box<meta::BuildError>> {
    meta::Regex::builder()
        .syntax(syntax_config())
        .build_many(patterns)
        .map_err(Box::new)
}

fn syntax_config() -> regex_automata::util::syntax::Config {
    regex_automata::util::syntax::Config::new()
        .unicode(false)
        .utf8(false)
}

/// The one-pass DFA of a pattern when it is one-pass (`None` otherwise): it resolves captures
/// in a single forward scan, several times faster than the backtracker meta falls back to.
pub(crate) fn build_onepass(pattern: &str) -> Option<onepass::DFA> {
    onepass::DFA::builder()
        .syntax(syntax_config())
        .build(pattern)
        .ok()
}

/// The bytes a match of `pattern` can start with, when the pattern is anchored at the start
/// of the message (`^…`); `None` when it is not (it may match anywhere).
pub(crate) fn first_bytes(pattern: &str) -> Option<[bool; 256]> {
    use regex_syntax::hir::Look;
    use regex_syntax::hir::literal::Extractor;
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    if !hir.properties().look_set_prefix().contains(Look::Start) {
        return None;
    }
    let mut set = [false; 256];
    // Prefix literals; an infinite set (a wide class up front) or an empty literal means any
    // first byte is possible.
    let prefixes = Extractor::new().extract(&hir);
    let Some(literals) = prefixes.literals() else {
        return Some([true; 256]);
    };
    for literal in literals {
        match literal.as_bytes().first() {
            Some(&byte) => set[usize::from(byte)] = true,
            None => return Some([true; 256]),
        }
    }
    Some(set)
}

/// Literal byte strings every match of `pattern` contains, for rejecting a line before the
/// slow capture engines run (see `PatternInfo::required`). Collected from what the pattern
/// always matches: every part of a sequence, capture groups, and repetitions of at least one;
/// alternatives and optional parts are skipped, so the list is a necessary condition, never a
/// sufficient one. Longest first, the leading literal last: the first byte already chose the
/// pattern, so its leading text is the one most likely present.
pub(crate) fn required_literals(pattern: &str) -> Vec<Vec<u8>> {
    use regex_syntax::hir::{Hir, HirKind};
    fn walk(hir: &Hir, out: &mut Vec<Vec<u8>>) {
        match hir.kind() {
            HirKind::Literal(lit) => out.push(lit.0.to_vec()),
            HirKind::Concat(parts) => parts.iter().for_each(|p| walk(p, out)),
            HirKind::Capture(cap) => walk(&cap.sub, out),
            HirKind::Repetition(rep) if rep.min >= 1 => walk(&rep.sub, out),
            _ => {}
        }
    }
    let Ok(hir) = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
    else {
        return Vec::new();
    };
    let mut literals = Vec::new();
    walk(&hir, &mut literals);
    let leading = (!literals.is_empty()).then(|| literals.remove(0));
    literals.sort_by_key(|l| std::cmp::Reverse(l.len()));
    literals.extend(leading);
    literals.retain(|l| !l.is_empty());
    literals
}

/// Which field each capture slot of a compiled pattern fills.
pub(crate) fn capture_map(info: &GroupInfo, local: usize) -> Vec<(usize, Field)> {
    let Ok(pid) = regex_automata::PatternID::try_from(local) else {
        return Vec::new();
    };
    let mut map = Vec::new();
    for (group, name) in info.pattern_names(pid).enumerate() {
        let Some(name) = name else { continue };
        let (Some(field), Some(slot)) = (from_capture_name(name), info.slot(pid, group)) else {
            continue;
        };
        map.push((slot, field));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(pattern: &str) -> Vec<String> {
        required_literals(pattern)
            .into_iter()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .collect()
    }

    #[test]
    fn required_literals_are_what_every_match_contains() {
        // sshd's `Auth fail` disconnect: not one-pass (`.*:` before the reason).
        let pattern = r"^(?:error: )?Received disconnect from (?P<src_ip>\S+?)(?: port \d+)?: ?3: .*: Auth fail(?: \[preauth\])?\s*$";
        assert_eq!(
            texts(pattern),
            vec![": Auth fail", "3: ", ":", "Received disconnect from "]
        );
        // Optional parts and alternatives give nothing; captures and `+` repetitions do.
        assert_eq!(texts(r"^(?:a|b)x(?P<user>yz)+(?:opt)?$"), vec!["yz", "x"]);
        assert_eq!(texts(r"^\S+$"), Vec::<String>::new());
    }

    #[test]
    fn every_line_a_pattern_matches_contains_its_required_literals() {
        let pattern = r"^Failed \S+ for .* from \S+ port \d+(?: ssh[12])?: (?:.* )?from \S+\s*$";
        let regex = build_regex(&[pattern]).expect("compiles");
        let literals = required_literals(pattern);
        for line in [
            "Failed password for x from 1.2.3.4 port 22 ssh2: from 5.6.7.8",
            "Failed none for a from b port 1: c d from e",
        ] {
            assert!(regex.is_match(line), "{line}");
            for l in &literals {
                assert!(memchr::memmem::find(line.as_bytes(), l).is_some(), "{line}");
            }
        }
    }
}
