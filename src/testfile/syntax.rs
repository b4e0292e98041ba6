//! The annotated-log format of `secpipe test`: log lines with expectation comments.
//!
//! ```text
//! # Any comment line starts with `#`; blank lines are skipped.
//! # expect: kind=auth.failure reason=bad_password src_ip=192.0.2.1 user=root
//! Nov 23 11:00:01 web1 sshd[812]: Failed password for root from 192.0.2.1 port 22 ssh2
//! # expect: kind=auth.failure user="name with spaces" src_ip=-
//! …
//! # expect-alert: auth.bruteforce 192.0.2.1
//! # scenario: a quiet one        (starts a new, independent scenario)
//! # expect-alerts: none
//! ```
//!
//! - `# expect:` applies to the next log line; several in a row add up. Only the fields named
//!   are checked; `-` means "no value". Values with spaces are double-quoted (`\"`, `\\`).
//! - `# expect-alert: RULE KEY` names an alert the scenario must raise; `# expect-alerts: none`
//!   says it raises none. A scenario with either is checked exactly: a missing and an
//!   unexpected alert are both mismatches. A scenario with neither does not check alerts.
//! - `# scenario: NAME` ends the scenario before it: each one is parsed and detected on its own.
//! - A comment whose first word starts with `expect` but is none of the above is an error, so a
//!   typo cannot turn a check into a comment.

use std::fmt;
use std::net::IpAddr;

use crate::event::Kind;
use crate::text::edit_distance;

/// A test file that is not well formed: names file, line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for SyntaxError {}

/// An event field an expectation can name: one of the event fields that
/// [`crate::event::EventField::expectable`] allows.
pub use crate::event::EventField as ExpectField;

/// The field an expectation names, if expectations may name it.
fn expect_field(name: &str) -> Option<ExpectField> {
    ExpectField::parse(name).filter(|f| f.expectable())
}

/// One `field=value` of an `# expect:` line. `value` is `None` for `-` (no value); for `ts`
/// it is the normalized RFC 3339 text the event printer writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub field: ExpectField,
    pub value: Option<String>,
}

/// One log line with what is expected of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// 1-based line number in the test file.
    pub line: usize,
    pub text: String,
    pub expect: Vec<Expectation>,
}

/// `# expect-alert: RULE KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedAlert {
    pub line: usize,
    pub rule: String,
    pub key: String,
}

/// Lines that are detected together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scenario {
    pub name: Option<String>,
    /// Line of its `# scenario:` header (1 for the implicit first scenario).
    pub line: usize,
    pub lines: Vec<LogLine>,
    /// `None`: alerts are not checked; `Some(list)`: exactly these (empty: none).
    pub alerts: Option<Vec<ExpectedAlert>>,
}

/// A parsed test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFile {
    pub path: String,
    pub scenarios: Vec<Scenario>,
}

/// Parse a test file. `rule_ids` are the active rules, so that `expect-alert` can name only
/// a rule that exists.
///
/// ```
/// use secpipe::testfile::parse_test_file;
/// let text = "# expect: kind=auth.failure src_ip=192.0.2.1\nNov 23 11:00:01 h sshd[1]: x\n";
/// let file = parse_test_file("t.log", text, &["auth.bruteforce"]).unwrap();
/// assert_eq!(file.scenarios[0].lines[0].expect.len(), 2);
/// ```
///
/// A bad expectation names its line and column:
///
/// ```
/// use secpipe::testfile::parse_test_file;
/// let text = "Nov 23 11:00:01 h sshd[1]: x\n# expect: kind=auth.failure srcip=192.0.2.1\nline\n";
/// let err = parse_test_file("t.log", text, &[]).unwrap_err();
/// assert_eq!((err.line, err.column), (2, 29));
/// assert!(err.to_string().starts_with("t.log:2:29: unknown field `srcip`"), "{err}");
/// ```
pub fn parse_test_file(path: &str, text: &str, rule_ids: &[&str]) -> Result<TestFile, SyntaxError> {
    let mut scenarios = vec![Scenario {
        line: 1,
        ..Scenario::default()
    }];
    // Expectations waiting for their log line, and the line of the first of them.
    let mut pending: Vec<Expectation> = Vec::new();
    let mut pending_line = 0;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let err = |column: usize, message: String| SyntaxError {
            path: path.to_string(),
            line,
            column,
            message,
        };
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.trim().is_empty() {
            continue;
        }
        let Some(comment) = raw.strip_prefix('#') else {
            let scenario = scenarios
                .last_mut()
                .ok_or_else(|| err(1, "no scenario".into()))?;
            scenario.lines.push(LogLine {
                line,
                text: raw.to_string(),
                expect: std::mem::take(&mut pending),
            });
            continue;
        };
        let body = comment.trim_start();
        // Column (1-based, in chars) where `body` starts.
        let body_col = raw.chars().count() - body.chars().count() + 1;
        let (directive, rest) = match split_directive(body) {
            None => continue,
            Some(Directive::Named(directive, rest)) => (directive, rest),
            Some(Directive::MissingColon(word)) => {
                return Err(err(
                    body_col,
                    format!(
                        "unknown directive `# {word}` (no colon); expected `# expect:`, `# expect-alert:`, `# expect-alerts: none` or `# scenario:`"
                    ),
                ));
            }
        };
        let rest_col = body_col + directive.chars().count() + 1;
        let rest_trimmed = rest.trim_start();
        let value_col = rest_col + rest.chars().count() - rest_trimmed.chars().count();
        let rest = rest_trimmed.trim_end();
        match directive {
            "expect" => {
                if pending.is_empty() {
                    pending_line = line;
                }
                for (field, value) in parse_pairs(rest, value_col).map_err(|(c, m)| err(c, m))? {
                    if pending.iter().any(|e| e.field == field) {
                        return Err(err(
                            value_col,
                            format!("`{}` is expected twice for one line", field.name()),
                        ));
                    }
                    pending.push(Expectation { field, value });
                }
            }
            "expect-alert" | "expect-alerts" => {
                if !pending.is_empty() {
                    return Err(SyntaxError {
                        path: path.to_string(),
                        line: pending_line,
                        column: 1,
                        message: "`# expect:` is not followed by a log line".into(),
                    });
                }
                let scenario = scenarios
                    .last_mut()
                    .ok_or_else(|| err(1, "no scenario".into()))?;
                let alerts = scenario.alerts.get_or_insert_with(Vec::new);
                if directive == "expect-alerts" {
                    if rest != "none" {
                        return Err(err(
                            value_col,
                            format!(
                                "`# expect-alerts:` takes `none`, not {rest:?}; name each alert with `# expect-alert: RULE KEY`"
                            ),
                        ));
                    }
                    continue;
                }
                let mut words = rest.split_whitespace();
                let (Some(rule), Some(key), None) = (words.next(), words.next(), words.next())
                else {
                    return Err(err(
                        value_col,
                        "write `# expect-alert: RULE KEY`, e.g. `# expect-alert: auth.bruteforce 192.0.2.1`".into(),
                    ));
                };
                if !rule_ids.is_empty() && !rule_ids.contains(&rule) {
                    return Err(err(
                        value_col,
                        format!(
                            "unknown rule `{rule}`{}",
                            did_you_mean(rule, rule_ids.iter().copied())
                        ),
                    ));
                }
                alerts.push(ExpectedAlert {
                    line,
                    rule: rule.to_string(),
                    key: key.to_string(),
                });
            }
            "scenario" => {
                if !pending.is_empty() {
                    return Err(SyntaxError {
                        path: path.to_string(),
                        line: pending_line,
                        column: 1,
                        message: "`# expect:` is not followed by a log line".into(),
                    });
                }
                scenarios.push(Scenario {
                    name: Some(rest.to_string()),
                    line,
                    ..Scenario::default()
                });
            }
            other => {
                return Err(err(
                    body_col,
                    format!(
                        "unknown directive `# {other}:`; expected `# expect:`, `# expect-alert:`, `# expect-alerts: none` or `# scenario:`"
                    ),
                ));
            }
        }
    }
    if !pending.is_empty() {
        return Err(SyntaxError {
            path: path.to_string(),
            line: pending_line,
            column: 1,
            message: "`# expect:` is not followed by a log line".into(),
        });
    }
    // The implicit first scenario is dropped when a `# scenario:` came before any line.
    if scenarios.len() > 1
        && scenarios
            .first()
            .is_some_and(|s| s.lines.is_empty() && s.alerts.is_none())
    {
        scenarios.remove(0);
    }
    Ok(TestFile {
        path: path.to_string(),
        scenarios,
    })
}

/// What a comment line is.
enum Directive<'a> {
    /// `# expect: …` → (`expect`, ` …`).
    Named(&'a str, &'a str),
    /// `# expect kind=…`: a directive word without its colon.
    MissingColon(&'a str),
}

/// Only comments whose first word starts with `expect`, or that begin `scenario:`, are
/// directives; any other comment is `None`.
fn split_directive(body: &str) -> Option<Directive<'_>> {
    let word_end = body
        .find(|c: char| c.is_whitespace() || c == ':')
        .unwrap_or(body.len());
    let (word, after) = body.split_at_checked(word_end)?;
    match after.strip_prefix(':') {
        Some(rest) if word.starts_with("expect") || word == "scenario" => {
            Some(Directive::Named(word, rest))
        }
        None if word.starts_with("expect") => Some(Directive::MissingColon(word)),
        _ => None,
    }
}

type PairError = (usize, String);

/// `kind=auth.failure user="a b" src_ip=-` → checked (field, value) pairs. `col` is the
/// column of `text`'s first char.
fn parse_pairs(text: &str, col: usize) -> Result<Vec<(ExpectField, Option<String>)>, PairError> {
    let chars: Vec<char> = text.chars().collect();
    let mut pairs = Vec::new();
    let mut i = 0;
    if chars.is_empty() {
        return Err((
            col,
            "`# expect:` names no field; write e.g. `kind=auth.failure`".into(),
        ));
    }
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let key_start = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[key_start..i].iter().collect();
        if chars.get(i) != Some(&'=') {
            return Err((
                col + key_start,
                format!("`{key}` has no value; write `{key}=VALUE` (`-` for none)"),
            ));
        }
        let Some(field) = expect_field(&key) else {
            let names = ExpectField::all()
                .filter(|f| f.expectable())
                .map(ExpectField::name);
            return Err((
                col + key_start,
                format!("unknown field `{key}`{}", did_you_mean(&key, names)),
            ));
        };
        i += 1;
        let value_start = i;
        let value = if chars.get(i) == Some(&'"') {
            i += 1;
            let mut v = String::new();
            loop {
                match chars.get(i) {
                    None => {
                        return Err((col + value_start, "unterminated quoted value".into()));
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        match chars.get(i + 1) {
                            Some(&c @ ('"' | '\\')) => v.push(c),
                            _ => {
                                return Err((
                                    col + i,
                                    "in a quoted value only `\\\"` and `\\\\` are escapes".into(),
                                ));
                            }
                        }
                        i += 2;
                    }
                    Some(&c) => {
                        v.push(c);
                        i += 1;
                    }
                }
            }
            if chars.get(i).is_some_and(|c| !c.is_whitespace()) {
                return Err((col + i, "a space must follow a quoted value".into()));
            }
            Some(v)
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                i += 1;
            }
            let v: String = chars[value_start..i].iter().collect();
            if v.is_empty() {
                return Err((
                    col + value_start,
                    format!("`{key}=` has an empty value; write `-` for none"),
                ));
            }
            (v != "-").then_some(v)
        };
        let value = check_value(field, value).map_err(|m| (col + value_start, m))?;
        pairs.push((field, value));
    }
    Ok(pairs)
}

/// Values that must have a form are checked now, so a typo fails as a bad file, not as a
/// mismatch.
fn check_value(field: ExpectField, value: Option<String>) -> Result<Option<String>, String> {
    let Some(v) = value else { return Ok(None) };
    match field {
        ExpectField::Kind if Kind::parse(&v).is_none() => {
            let names = Kind::ALL.iter().map(|k| k.as_str());
            Err(format!("unknown kind `{v}`{}", did_you_mean(&v, names)))
        }
        ExpectField::SrcIp => {
            let ip: IpAddr = crate::event::parse_ip(&v)
                .ok_or_else(|| format!("`{v}` is not an IP address (write `-` for none)"))?;
            Ok(Some(ip.to_string()))
        }
        ExpectField::Count | ExpectField::Pid | ExpectField::HttpStatus | ExpectField::Bytes
            if v.parse::<u64>().is_err() =>
        {
            Err(format!("`{v}` is not a whole number"))
        }
        ExpectField::Ts => {
            let ts: jiff::Timestamp = v
                .parse()
                .map_err(|e| format!("`{v}` is not an RFC 3339 time ({e})"))?;
            Ok(Some(crate::event::format_ts(ts.as_microsecond())))
        }
        _ => Ok(Some(v)),
    }
}

/// `; did you mean `x`?` for the closest name, when one is close.
fn did_you_mean<'a>(typed: &str, names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| (edit_distance(typed, n), n))
        .filter(|&(d, _)| d <= 2)
        .min()
        .map(|(_, n)| format!("; did you mean `{n}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TestFile, SyntaxError> {
        parse_test_file("t.log", text, &["auth.bruteforce"])
    }

    #[test]
    fn expectations_attach_to_the_next_log_line_and_add_up() {
        let f = parse("# expect: kind=auth.failure\n# comment\n# expect: user=\"a \\\"b\\\"\" src_ip=::ffff:192.0.2.1\nline one\nline two\n").expect("parses");
        let lines = &f.scenarios[0].lines;
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].line, 4);
        assert_eq!(
            lines[0].expect,
            vec![
                Expectation {
                    field: ExpectField::Kind,
                    value: Some("auth.failure".into())
                },
                Expectation {
                    field: ExpectField::User,
                    value: Some("a \"b\"".into())
                },
                Expectation {
                    field: ExpectField::SrcIp,
                    value: Some("192.0.2.1".into())
                },
            ]
        );
        assert!(lines[1].expect.is_empty());
    }

    #[test]
    fn dash_means_no_value() {
        let f = parse("# expect: src_ip=- user=-\nx\n").expect("parses");
        assert!(
            f.scenarios[0].lines[0]
                .expect
                .iter()
                .all(|e| e.value.is_none())
        );
    }

    #[test]
    fn scenarios_split_lines_and_alerts() {
        let f = parse("# scenario: one\na\n# expect-alert: auth.bruteforce 192.0.2.1\n# scenario: two\nb\n# expect-alerts: none\n").expect("parses");
        assert_eq!(f.scenarios.len(), 2);
        assert_eq!(f.scenarios[0].name.as_deref(), Some("one"));
        assert_eq!(f.scenarios[0].alerts.as_ref().map(Vec::len), Some(1));
        assert_eq!(f.scenarios[1].alerts, Some(Vec::new()));
        assert_eq!(f.scenarios[1].lines[0].text, "b");
    }

    #[test]
    fn bad_files_name_line_and_column() {
        let cases: &[(&str, usize, usize, &str)] = &[
            (
                "# expect: kind=auth.falure\nx\n",
                1,
                16,
                "did you mean `auth.failure`",
            ),
            (
                "# expect: src_ip=host.example\nx\n",
                1,
                18,
                "not an IP address",
            ),
            ("# expect: kind\nx\n", 1, 11, "has no value"),
            ("# expect: user=\"open\nx\n", 1, 16, "unterminated"),
            (
                "x\n# expect: kind=other\n",
                2,
                1,
                "not followed by a log line",
            ),
            (
                "# expect: kind=other\n# expect: kind=other\nx\n",
                2,
                11,
                "twice",
            ),
            (
                "x\n# expect-alert: auth.bruteforc 1.2.3.4\n",
                2,
                17,
                "did you mean `auth.bruteforce`",
            ),
            ("x\n# expect-alert: auth.bruteforce\n", 2, 17, "RULE KEY"),
            ("x\n# expect-alerts: some\n", 2, 18, "takes `none`"),
            ("x\n#  expectation: kind=other\n", 2, 4, "unknown directive"),
            ("# expect: count=many\nx\n", 1, 17, "whole number"),
            ("# expect: ts=yesterday\nx\n", 1, 14, "RFC 3339"),
        ];
        for &(text, line, column, needle) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!((e.line, e.column), (line, column), "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn an_expect_without_colon_is_an_error_not_a_comment() {
        let e = parse("# expect kind=other\nx\n").expect_err("typo");
        assert!(e.message.contains("unknown directive"), "{e}");
    }
}
