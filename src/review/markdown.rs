//! The Markdown rendering of a [`Review`]: GitHub-flavoured Markdown for a ticket or an email.
//!
//! # Order
//!
//! The verdict comes first: a review of an archive that did not verify opens with a quoted,
//! bold warning (`> **⚠ TAMPERED: …**`) before any number, so whoever reads only the first
//! line of a ticket still learns that the numbers below rest on altered evidence. Then the
//! period, the counts with the previous period and the change, alerts by severity, response
//! deadlines, the top lists, rules, hosts, bans and the limits that were hit.
//!
//! # Text from logs
//!
//! Addresses, user names, host names, rule keys and summaries are written by whoever wrote the
//! logs. [`text`] makes each one inert before it is placed: `|` is escaped (a cell cannot
//! grow a column), Markdown punctuation is backslash-escaped (no links, images, emphasis or
//! code spans), `<`, `>` and `&` become entities (GitHub and most mail renderers pass raw HTML
//! through), line breaks and other control characters become visible symbols (no new block can
//! start: a `# heading` in a user name stays in its cell), and bidi controls, which can make a
//! cell read in another order than it is stored, become `U+FFFD`. Attacker text is never put
//! at the start of a line (list items escape a leading `-` or `1.`), so block markers need no
//! escape elsewhere and addresses and times stay readable (`203.0.113.7`,
//! `2026-01-05T14:00:00Z`). `scheme://` and `www.` are escaped so GFM does not make them links;
//! an e-mail address (`x@example.com`) is still linked as `mailto:` by cmark-gfm whatever the
//! escaping (its autolinker runs on the unescaped text), but shows as the address it links to.
//!
//! The output depends only on the review: the same review gives the same bytes.

use std::fmt::Write as _;

use super::model::{Compared, Review, TopList};

/// The review as GitHub-flavoured Markdown.
///
/// ```
/// use secpipe::review::{Review, markdown};
/// let mut review = Review::default();
/// review.archive.verdict = "tampered".into();
/// review.archive.problems = vec!["modified: events/date=2026-01-05/part-00000003.parquet row 7".into()];
/// let md = markdown::render(&review);
/// assert!(md.starts_with("> **⚠ TAMPERED: modified"));
/// ```
pub fn render(review: &Review) -> String {
    let mut out = String::with_capacity(16 * 1024);
    verdict(&mut out, review);
    header(&mut out, review);
    counts(&mut out, review);
    alerts(&mut out, review);
    response(&mut out, review);
    top_lists(&mut out, review);
    rules(&mut out, review);
    hosts(&mut out, review);
    bans(&mut out, review);
    limits(&mut out, review);
    out
}

/// The first line(s): the verify verdict, before any number.
fn verdict(out: &mut String, review: &Review) {
    let facts = &review.archive;
    if facts.verdict == "intact" {
        let _ = writeln!(
            out,
            "**✓ Archive intact** (verify: intact, signature: {})",
            text(&facts.signature)
        );
    } else {
        // Anything but `intact`, including a verdict this renderer does not know, is a warning.
        let label = if facts.verdict.is_empty() {
            "NOT VERIFIED".to_string()
        } else {
            facts.verdict.to_uppercase()
        };
        let first = facts
            .problems
            .first()
            .map(String::as_str)
            .unwrap_or("verify did not find this archive intact");
        let _ = writeln!(out, "> **⚠ {}: {}**", text(&label), text(first.trim()));
        let _ = writeln!(out, ">");
        let why = match facts.verdict.as_str() {
            "unsigned" => {
                "Its hash chain holds, but no valid signature covers all of it: whoever could write the archive could have rewritten that part end to end."
            }
            "inconclusive" => "Verify could not conclude whether it was altered.",
            _ => "It did not verify: do not rely on them as evidence.",
        };
        let _ = writeln!(
            out,
            "> The numbers below are computed from this archive (signature: {}). {why}",
            text(&facts.signature)
        );
        for problem in facts.problems.iter().skip(1) {
            let _ = writeln!(out, "> - {}", list_item(problem));
        }
    }
    for warning in &facts.warnings {
        let _ = writeln!(out, ">\n> Warning: {}", text(warning));
    }
    out.push('\n');
}

fn header(out: &mut String, review: &Review) {
    let period = &review.period;
    let kind = match period.kind.as_str() {
        "day" => "daily",
        "week" => "weekly",
        _ => "custom",
    };
    let _ = writeln!(out, "# Security review ({kind})\n");
    let _ = writeln!(
        out,
        "Period: {} to {} (compared with {} to {}); buckets: {}; lateness: {}.\n",
        text(&period.from),
        text(&period.to),
        text(&period.previous_from),
        text(&period.previous_to),
        text(&period.bucket),
        text(&period.lateness),
    );
    let facts = &review.archive;
    let _ = writeln!(
        out,
        "Archive: {}; head: {}; {} manifests; verify: {}; signature: {}.\n",
        text(facts.id.as_deref().unwrap_or("unknown")),
        text(facts.head.as_deref().unwrap_or("none")),
        facts.manifests,
        text(&facts.verdict),
        text(&facts.signature),
    );
}

fn counts(out: &mut String, review: &Review) {
    let c = &review.counts;
    out.push_str("## Counts\n\n");
    table_head(out, &["", "This period", "Previous", "Change"], "-:::");
    compared_row(out, "Lines", c.lines);
    compared_row(out, "Unparsed", c.unparsed);
    compared_row(out, "Timestamp inferred", c.ts_inferred);
    compared_row(out, "Late events", c.late);
    let _ = writeln!(
        out,
        "\nUnparsed share: {}.{}%.\n",
        c.unparsed_per_mille / 10,
        c.unparsed_per_mille % 10
    );
    if !review.timeline.lines.is_empty() {
        let _ = writeln!(
            out,
            "Lines per {}: {}\n",
            text(&review.period.bucket),
            sparkline(&review.timeline.lines)
        );
    }
    out.push_str("### Events by kind\n\n");
    if c.kinds.is_empty() {
        out.push_str("None.\n\n");
        return;
    }
    table_head(out, &["Kind", "This period", "Previous", "Change"], "-:::");
    for k in &c.kinds {
        compared_row(out, &k.kind, k.count);
    }
    out.push('\n');
}

fn alerts(out: &mut String, review: &Review) {
    let a = &review.alerts;
    out.push_str("## Alerts by severity\n\n");
    table_head(
        out,
        &["Severity", "This period", "Previous", "Change"],
        "-:::",
    );
    compared_row(out, "CRITICAL", a.critical);
    compared_row(out, "HIGH", a.high);
    compared_row(out, "MEDIUM", a.medium);
    compared_row(out, "LOW", a.low);
    compared_row(out, "Total", a.total);
    out.push('\n');
}

fn response(out: &mut String, review: &Review) {
    let r = &review.response;
    out.push_str("## Response deadlines\n\n");
    if r.priorities.is_empty() {
        out.push_str("No P0–P3 items.\n\n");
    } else {
        table_head(
            out,
            &["Priority", "Alerts", "Met", "Missed", "Open"],
            "-::::",
        );
        for p in &r.priorities {
            row(
                out,
                &[
                    text(&p.priority),
                    p.alerts.to_string(),
                    p.met.to_string(),
                    p.missed.to_string(),
                    p.open.to_string(),
                ],
            );
        }
        out.push('\n');
    }
    if r.items.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Items ({} of {})\n",
        r.items.len(),
        r.items_total.max(r.items.len() as u64)
    );
    table_head(
        out,
        &[
            "Status", "Priority", "Rule", "Key", "Raised", "Deadline", "Answered", "Summary",
        ],
        "--------",
    );
    for item in &r.items {
        let status = match item.status.as_str() {
            "met" => "met".to_string(),
            other => format!("**{}**", text(other)),
        };
        row(
            out,
            &[
                status,
                text(&item.priority),
                text(&item.rule),
                format!("{}={}", text(&item.key_field), text(&item.key)),
                text(&item.raised),
                text(&item.deadline),
                text(item.answered.as_deref().unwrap_or("")),
                text(&item.summary),
            ],
        );
    }
    out.push('\n');
}

fn top_lists(out: &mut String, review: &Review) {
    out.push_str("## Top source addresses\n\n");
    top_list(
        out,
        &review.sources,
        &["Address", "Events", "Failures", "Alerts", "Banned", "New"],
        "-:::--",
        |r| {
            vec![
                text(&r.address),
                r.events.to_string(),
                r.failures.to_string(),
                r.alerts.to_string(),
                yes_no(r.banned),
                yes_no(r.new),
            ]
        },
    );
    out.push_str("## Top prefixes (/24, /64)\n\n");
    top_list(
        out,
        &review.prefixes,
        &["Prefix", "Events", "Failures", "New"],
        "-::-",
        |r| {
            vec![
                text(&r.prefix),
                r.events.to_string(),
                r.failures.to_string(),
                yes_no(r.new),
            ]
        },
    );
    out.push_str("## Targeted users\n\n");
    top_list(
        out,
        &review.users,
        &["User", "Failures", "Successes", "New"],
        "-::-",
        |r| {
            vec![
                text(&r.user),
                r.failures.to_string(),
                r.successes.to_string(),
                yes_no(r.new),
            ]
        },
    );
    out.push_str("## Actors\n\n");
    top_list(
        out,
        &review.actors,
        &["Actor", "Events", "Records", "New"],
        "-::-",
        |r| {
            vec![
                text(&r.actor),
                r.events.to_string(),
                r.records.to_string(),
                yes_no(r.new),
            ]
        },
    );
}

/// A top list as a table, with its distinct count and, when its tally hit the cap, how far
/// its counts may be off.
fn top_list<T>(
    out: &mut String,
    list: &TopList<T>,
    head: &[&str],
    align: &str,
    cells: impl Fn(&T) -> Vec<String>,
) {
    if list.rows.is_empty() {
        out.push_str("None.\n\n");
        return;
    }
    table_head(out, head, align);
    for r in &list.rows {
        row(out, &cells(r));
    }
    let _ = write!(out, "\n{} distinct", list.distinct);
    if !list.exact {
        let _ = write!(
            out,
            " at most; **counts are lower bounds**, each short by at most {}",
            list.max_error
        );
    }
    out.push_str(".\n\n");
}

fn rules(out: &mut String, review: &Review) {
    out.push_str("## Rules fired\n\n");
    if review.rules.is_empty() {
        out.push_str("None.\n\n");
        return;
    }
    table_head(
        out,
        &[
            "Rule", "Severity", "Priority", "Alerts", "Previous", "Change", "Keys", "First", "Last",
        ],
        "---::::--",
    );
    for r in &review.rules {
        row(
            out,
            &[
                text(&r.rule),
                text(&r.severity),
                text(&r.priority),
                r.alerts.now.to_string(),
                r.alerts.previous.to_string(),
                change(r.alerts),
                r.keys.to_string(),
                text(r.first.as_deref().unwrap_or("")),
                text(r.last.as_deref().unwrap_or("")),
            ],
        );
    }
    out.push('\n');
}

fn hosts(out: &mut String, review: &Review) {
    let h = &review.hosts;
    out.push_str("## Hosts\n\n");
    if h.rows.is_empty() {
        out.push_str("None.\n\n");
    } else {
        table_head(
            out,
            &["Host", "Lines", "Errors", "Last event", "Lines per bucket"],
            "-::--",
        );
        for r in &h.rows {
            row(
                out,
                &[
                    text(&r.host),
                    r.lines.to_string(),
                    r.errors.to_string(),
                    text(r.last_event.as_deref().unwrap_or("")),
                    sparkline(&r.sparkline),
                ],
            );
        }
        let _ = write!(out, "\n{} distinct hosts", h.distinct);
        if !h.exact {
            out.push_str(" at most; **counts are lower bounds**");
        }
        out.push_str(".\n\n");
    }
    out.push_str("### Silent hosts (no log in the last 24 h, or a log.silence alert)\n\n");
    if h.silent.is_empty() {
        out.push_str("None.\n\n");
        return;
    }
    table_head(
        out,
        &[
            "Host",
            "Last event",
            "Lines (both periods)",
            "Silence alerts",
        ],
        "--::",
    );
    for s in &h.silent {
        row(
            out,
            &[
                text(&s.host),
                text(s.last_event.as_deref().unwrap_or("none")),
                s.lines.to_string(),
                s.silence_alerts.to_string(),
            ],
        );
    }
    out.push('\n');
}

fn bans(out: &mut String, review: &Review) {
    let b = &review.bans;
    out.push_str("## Bans\n\n");
    let _ = writeln!(
        out,
        "Issued: {} (previous {}, {}); simulated: {}; lifted: {}; minutes refused by the circuit breaker: {}.\n",
        b.issued.now,
        b.issued.previous,
        change(b.issued),
        b.simulated,
        b.lifted,
        b.overflows
    );
    if b.rows.is_empty() {
        return;
    }
    table_head(
        out,
        &["Address", "Since", "Until", "Mode", "Cause", "Nth"],
        "-----:",
    );
    for r in &b.rows {
        row(
            out,
            &[
                text(&r.address),
                text(&r.since),
                text(&r.until),
                text(&r.mode),
                text(&r.cause_rule),
                r.nth.to_string(),
            ],
        );
    }
    out.push('\n');
}

fn limits(out: &mut String, review: &Review) {
    out.push_str("## Limits\n\n");
    if review.limits.is_empty() {
        out.push_str("No tally hit its cap: every count is exact.\n");
        return;
    }
    out.push_str("These tallies hit their memory cap; their counts are lower bounds:\n\n");
    for l in &review.limits {
        let _ = writeln!(out, "- {}", list_item(l));
    }
}

/// A table's header and delimiter rows; `align` has one character per column: `:` right,
/// anything else left.
fn table_head(out: &mut String, head: &[&str], align: &str) {
    let cells: Vec<String> = head.iter().map(|h| text(h)).collect();
    row(out, &cells);
    let delims: Vec<String> = (0..head.len())
        .map(|i| match align.as_bytes().get(i) {
            Some(b':') => "---:".to_string(),
            _ => "---".to_string(),
        })
        .collect();
    row(out, &delims);
}

/// One table row of cells that are already escaped.
fn row(out: &mut String, cells: &[String]) {
    out.push('|');
    for c in cells {
        out.push(' ');
        out.push_str(c);
        out.push_str(" |");
    }
    out.push('\n');
}

fn compared_row(out: &mut String, label: &str, c: Compared) {
    row(
        out,
        &[
            text(label),
            c.now.to_string(),
            c.previous.to_string(),
            change(c),
        ],
    );
}

/// `+12 (+9.5%)`, `-3 (-100.0%)`, `0`, or `+5 (new)` when the previous value was 0. Integer
/// arithmetic, so the text does not depend on float formatting.
fn change(c: Compared) -> String {
    let (sign, diff) = if c.now >= c.previous {
        ('+', c.now - c.previous)
    } else {
        ('-', c.previous - c.now)
    };
    if diff == 0 {
        return "0".into();
    }
    if c.previous == 0 {
        return format!("{sign}{diff} (new)");
    }
    // Per mille, rounded half up; u128 so no count can overflow it.
    let per_mille = (u128::from(diff) * 1000 + u128::from(c.previous) / 2) / u128::from(c.previous);
    format!(
        "{sign}{diff} ({sign}{}.{}%)",
        per_mille / 10,
        per_mille % 10
    )
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "" }.into()
}

/// Values as a line of block characters, scaled to the largest (all zero: the lowest).
fn sparkline(values: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if max == 0 || v == 0 {
                BARS[0]
            } else {
                // 1..=7 for any non-zero value, so a small count is still visible.
                let level = 1 + (u128::from(v) * 6 / u128::from(max)) as usize;
                BARS[level.min(7)]
            }
        })
        .collect()
}

/// [`text`] for the start of a list item, where a leading `-` or `1.` would open a nested
/// list.
fn list_item(s: &str) -> String {
    let t = text(s.trim_start());
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    match t.as_bytes().get(digits) {
        Some(b'-') if digits == 0 => format!("\\{t}"),
        Some(b'.') if digits > 0 => format!("{}\\{}", &t[..digits], &t[digits..]),
        _ => t,
    }
}

/// Text from logs (or anything else) made inert for a Markdown line or table cell: see the
/// module doc. The result never contains a line break, an unescaped `|`, `<`, `>` or `&`, or
/// a bidi control.
///
/// ```
/// use secpipe::review::markdown::text;
/// assert_eq!(text("a|b"), "a\\|b");
/// assert_eq!(text("<img src=x>"), "&lt;img src=x&gt;");
/// assert_eq!(text("[x](javascript:alert(1))"), "\\[x\\]\\(javascript:alert\\(1\\)\\)");
/// assert_eq!(text("203.0.113.7"), "203.0.113.7");
/// assert_eq!(text("root\n# owned"), "root␊\\# owned");
/// ```
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev: [char; 3] = ['\0'; 3];
    for (i, c) in s.char_indices() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            // Inline Markdown (GFM): escapes, code spans, emphasis, strikethrough, links and
            // images, table cells, math and GitHub's @mentions and #references, HTML-ish
            // braces. `-`, `.`, `:` and `/` only matter at the start of a line or in an
            // autolink, handled below.
            '\\' | '`' | '*' | '_' | '~' | '[' | ']' | '(' | ')' | '{' | '}' | '!' | '|' | '#'
            | '+' | '$' | '@' => {
                out.push('\\');
                out.push(c);
            }
            // GFM's extended autolinks: `scheme://…` and `www.…` become links by themselves;
            // an escaped `:` or `.` keeps them text.
            ':' if s[i + 1..].starts_with("//") => out.push_str("\\:"),
            '.' if prev.iter().all(|p| p.eq_ignore_ascii_case(&'w')) => out.push_str("\\."),
            // Line breaks and other C0 controls as their visible Control Pictures (U+2400…),
            // DEL as ␡: the reader sees that the log held one, and no new block starts.
            '\u{0}'..='\u{1f}' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}')),
            '\u{7f}' => out.push('␡'),
            // C1 controls, Unicode line and paragraph separators, and bidi embeddings,
            // overrides, isolates and marks: they reorder or break what the reader sees.
            '\u{80}'..='\u{9f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{061c}' => out.push('\u{fffd}'),
            _ => out.push(c),
        }
        prev = [prev[1], prev[2], c];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::model::*;

    /// The `|` that separate cells in a GFM table row: those not escaped by a backslash.
    fn cell_separators(line: &str) -> usize {
        let mut n = 0;
        let mut escaped = false;
        for c in line.chars() {
            match c {
                '\\' if !escaped => escaped = true,
                '|' if !escaped => n += 1,
                _ => escaped = false,
            }
        }
        n
    }

    /// Every table in `md`: its rows, each with the separator count of its header row.
    fn tables(md: &str) -> Vec<Vec<&str>> {
        let mut tables = Vec::new();
        let mut current: Vec<&str> = Vec::new();
        for line in md.lines() {
            if line.starts_with('|') {
                current.push(line);
            } else if !current.is_empty() {
                tables.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            tables.push(current);
        }
        tables
    }

    fn compared(now: u64, previous: u64) -> Compared {
        Compared { now, previous }
    }

    /// A review with `name` in every place log text can reach.
    fn review_with(name: &str) -> Review {
        let s = name.to_string();
        Review {
            v: REVIEW_VERSION,
            archive: ArchiveFacts {
                id: Some("a1".into()),
                head: Some("ab".repeat(32)),
                manifests: 3,
                verdict: "intact".into(),
                signature: "good".into(),
                problems: vec![],
                warnings: vec![],
            },
            period: Period {
                kind: "day".into(),
                from: "2026-01-05T00:00:00Z".into(),
                to: "2026-01-06T00:00:00Z".into(),
                previous_from: "2026-01-04T00:00:00Z".into(),
                previous_to: "2026-01-05T00:00:00Z".into(),
                bucket: "hour".into(),
                lateness: "10s".into(),
            },
            counts: Counts {
                lines: compared(1000, 800),
                kinds: vec![
                    KindCount {
                        kind: "auth.failure".into(),
                        count: compared(600, 500),
                    },
                    KindCount {
                        kind: s.clone(),
                        count: compared(1, 0),
                    },
                ],
                unparsed: compared(10, 12),
                unparsed_per_mille: 10,
                ts_inferred: compared(0, 0),
                late: compared(2, 0),
            },
            timeline: Timeline {
                starts: vec!["2026-01-05T00:00:00Z".into(), "2026-01-05T01:00:00Z".into()],
                lines: vec![10, 990],
                critical: vec![0, 1],
                high: vec![0, 0],
                medium: vec![1, 0],
                low: vec![0, 0],
            },
            alerts: AlertTotals {
                total: compared(2, 1),
                critical: compared(1, 0),
                high: compared(0, 1),
                medium: compared(1, 0),
                low: compared(0, 0),
            },
            response: Response {
                priorities: vec![PriorityRow {
                    priority: "P0".into(),
                    alerts: 1,
                    met: 0,
                    missed: 1,
                    open: 0,
                }],
                items: vec![ResponseItem {
                    id: s.clone(),
                    rule: s.clone(),
                    severity: "CRITICAL".into(),
                    priority: "P0".into(),
                    key_field: "actor".into(),
                    key: s.clone(),
                    raised: "2026-01-05T01:00:00Z".into(),
                    deadline: "2026-01-05T01:15:00Z".into(),
                    status: "missed".into(),
                    answered: None,
                    summary: format!("actor {s} read another namespace"),
                }],
                items_total: 1,
            },
            sources: TopList {
                rows: vec![SourceRow {
                    address: s.clone(),
                    events: 5,
                    failures: 5,
                    alerts: 1,
                    banned: true,
                    new: true,
                }],
                distinct: 1,
                exact: true,
                max_error: 0,
            },
            prefixes: TopList {
                rows: vec![PrefixRow {
                    prefix: s.clone(),
                    events: 5,
                    failures: 5,
                    new: false,
                }],
                distinct: 1,
                exact: false,
                max_error: 3,
            },
            users: TopList {
                rows: vec![UserRow {
                    user: s.clone(),
                    failures: 4,
                    successes: 1,
                    new: true,
                }],
                distinct: 1,
                exact: true,
                max_error: 0,
            },
            actors: TopList {
                rows: vec![ActorRow {
                    actor: s.clone(),
                    events: 2,
                    records: 2000,
                    new: false,
                }],
                distinct: 1,
                exact: true,
                max_error: 0,
            },
            rules: vec![RuleRow {
                rule: s.clone(),
                severity: "HIGH".into(),
                priority: "P1".into(),
                alerts: compared(1, 0),
                keys: 1,
                first: Some("2026-01-05T01:00:00Z".into()),
                last: Some(s.clone()),
            }],
            hosts: Hosts {
                rows: vec![HostRow {
                    host: s.clone(),
                    lines: 1000,
                    errors: 3,
                    last_event: Some("2026-01-05T23:59:59Z".into()),
                    sparkline: vec![10, 990],
                }],
                silent: vec![SilentHost {
                    host: s.clone(),
                    last_event: None,
                    lines: 3,
                    silence_alerts: 1,
                }],
                distinct: 1,
                exact: true,
            },
            bans: Bans {
                issued: compared(1, 0),
                simulated: 0,
                lifted: 0,
                overflows: 0,
                rows: vec![BanRow {
                    address: s.clone(),
                    since: "2026-01-05T01:00:00Z".into(),
                    until: "2026-01-05T01:15:00Z".into(),
                    mode: "enforce".into(),
                    cause_rule: s.clone(),
                    nth: 1,
                }],
            },
            limits: vec![s],
        }
    }

    /// Every table row has as many cells as its header, and nothing but a table row starts
    /// with `|`.
    fn assert_tables_keep_their_columns(md: &str) {
        let tables = tables(md);
        assert!(tables.len() >= 10, "expected every section's table:\n{md}");
        for table in tables {
            let columns = cell_separators(table[0]);
            assert!(table.len() >= 2, "a table without rows:\n{md}");
            for line in &table {
                assert_eq!(
                    cell_separators(line),
                    columns,
                    "row {line:?} of a {}-column table:\n{md}",
                    columns - 1
                );
            }
        }
    }

    /// Headings are only the renderer's own, and no line starts with text from the logs.
    fn assert_only_own_headings(md: &str) {
        let headings: Vec<&str> = md.lines().filter(|l| l.starts_with('#')).collect();
        assert!(
            headings.iter().all(|h| !h.contains("owned")),
            "a log string made a heading: {headings:?}"
        );
        assert_eq!(headings.len(), 15, "{headings:?}");
    }

    #[test]
    fn a_pipe_in_a_user_name_does_not_add_a_column() {
        let md = render(&review_with("a|b"));
        assert!(md.contains("a\\|b"));
        assert!(!md.contains(" a|b"));
        assert_tables_keep_their_columns(&md);
    }

    #[test]
    fn a_markdown_link_in_log_text_stays_text() {
        let md = render(&review_with("[x](javascript:alert(1))"));
        assert!(!md.contains("[x]("), "{md}");
        assert!(md.contains("\\[x\\]\\(javascript:alert\\(1\\)\\)"));
        assert_tables_keep_their_columns(&md);
    }

    #[test]
    fn raw_html_in_log_text_becomes_entities() {
        let md = render(&review_with("<img src=x onerror=alert(1)>"));
        assert!(!md.contains('<'), "{md}");
        assert!(!md.contains("<img"), "{md}");
        assert!(md.contains("&lt;img src=x onerror=alert\\(1\\)&gt;"));
        assert_tables_keep_their_columns(&md);
        // An entity written by the attacker is shown as written, not decoded into a `|`.
        assert!(render(&review_with("&#124;")).contains("&amp;\\#124;"));
    }

    #[test]
    fn a_newline_and_heading_in_log_text_does_not_start_a_block() {
        let md = render(&review_with("root\n# owned\r\n| x | y |"));
        assert_only_own_headings(&md);
        assert_tables_keep_their_columns(&md);
        assert!(md.contains("root␊\\# owned␍␊\\| x \\| y \\|"));
    }

    #[test]
    fn backticks_and_emphasis_in_log_text_are_escaped() {
        let md = render(&review_with("``` **bold** _it_ ~~del~~ $x$ @admin"));
        assert!(
            md.contains("\\`\\`\\` \\*\\*bold\\*\\* \\_it\\_ \\~\\~del\\~\\~ \\$x\\$ \\@admin")
        );
        assert!(!md.contains("```"));
        assert_tables_keep_their_columns(&md);
    }

    #[test]
    fn bidi_and_control_characters_are_neutralised() {
        let name = "admin\u{202e}nimda\u{2066}x\u{2069}\u{200f}\u{1b}[31m\u{85}\u{2028}\u{7f}";
        let md = render(&review_with(name));
        for bad in [
            '\u{202e}', '\u{2066}', '\u{2069}', '\u{200f}', '\u{1b}', '\u{85}', '\u{2028}',
            '\u{7f}',
        ] {
            assert!(!md.contains(bad), "{bad:?} reached the output");
        }
        assert!(md.contains("admin\u{fffd}nimda\u{fffd}x\u{fffd}\u{fffd}␛\\[31m\u{fffd}\u{fffd}␡"));
        assert_tables_keep_their_columns(&md);
    }

    #[test]
    fn autolinks_in_log_text_stay_text() {
        assert_eq!(
            text("see https://evil.example/x or WWW.evil.example"),
            "see https\\://evil.example/x or WWW\\.evil.example"
        );
        // Addresses, times and host names stay readable.
        assert_eq!(text("2001:db8::/64"), "2001:db8::/64");
        assert_eq!(text("web-01.example"), "web-01.example");
    }

    #[test]
    fn backslash_before_a_pipe_cannot_unescape_it() {
        // `\|` from the log: the backslash is escaped too, so the pipe stays escaped.
        assert_eq!(text("a\\|b"), "a\\\\\\|b");
        assert_tables_keep_their_columns(&render(&review_with("a\\|b\\")));
    }

    #[test]
    fn a_tampered_archive_says_so_before_any_number() {
        let mut review = review_with("x");
        review.archive.verdict = "tampered".into();
        review.archive.problems = vec![
            "modified: events/date=2026-01-05/part-00000003.parquet row 7".into(),
            "broken_link: manifest 4".into(),
        ];
        let md = render(&review);
        let first = md.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            "> **⚠ TAMPERED: modified: events/date=2026-01-05/part-00000003.parquet row 7**"
        );
        let first_digit_line = md
            .lines()
            .position(|l| l.contains("1000"))
            .unwrap_or(usize::MAX);
        let warning_end = md.lines().position(|l| l.is_empty()).unwrap_or(0);
        assert!(warning_end < first_digit_line);
        assert!(md.contains("> - broken\\_link: manifest 4"));
    }

    #[test]
    fn any_verdict_but_intact_is_a_warning() {
        for (verdict, label) in [
            ("unsigned", "> **⚠ UNSIGNED: "),
            ("inconclusive", "> **⚠ INCONCLUSIVE: "),
            ("", "> **⚠ NOT VERIFIED: "),
        ] {
            let mut review = review_with("x");
            review.archive.verdict = verdict.into();
            assert!(render(&review).starts_with(label), "{verdict}");
        }
        assert!(render(&review_with("x")).starts_with("**✓ Archive intact**"));
        // Unsigned is not tampered: the page says what is missing, not that it was altered.
        let mut review = review_with("x");
        review.archive.verdict = "unsigned".into();
        let md = render(&review);
        assert!(md.contains("no valid signature covers all of it"));
        assert!(!md.contains("did not verify"));
        review.archive.verdict = "tampered".into();
        assert!(render(&review).contains("It did not verify"));
    }

    #[test]
    fn same_review_same_bytes() {
        let review = review_with("a|b<c>\n");
        let once = render(&review);
        assert_eq!(once, render(&review.clone()));
        // And through the JSON it is stored as.
        let json = serde_json::to_string(&review).unwrap_or_default();
        let back: Review = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(once, render(&back));
    }

    #[test]
    fn an_empty_review_renders_every_section() {
        let md = render(&Review::default());
        assert!(md.starts_with("> **⚠ NOT VERIFIED: "));
        for section in [
            "## Counts",
            "## Alerts by severity",
            "## Response deadlines",
            "## Top source addresses",
            "## Targeted users",
            "## Rules fired",
            "## Hosts",
            "## Bans",
            "## Limits",
        ] {
            assert!(md.contains(section), "{section} missing:\n{md}");
        }
        assert!(md.contains("None."));
        for table in tables(&md) {
            let columns = cell_separators(table[0]);
            assert!(table.iter().all(|l| cell_separators(l) == columns));
        }
    }

    #[test]
    fn changes_are_signed_with_percent() {
        assert_eq!(change(compared(1100, 1000)), "+100 (+10.0%)");
        assert_eq!(change(compared(0, 3)), "-3 (-100.0%)");
        assert_eq!(change(compared(5, 0)), "+5 (new)");
        assert_eq!(change(compared(7, 7)), "0");
        assert_eq!(change(compared(2, 3)), "-1 (-33.3%)");
        assert_eq!(
            change(compared(u64::MAX, 1)),
            format!(
                "+{} (+{}.0%)",
                u64::MAX - 1,
                (u128::from(u64::MAX - 1) * 100)
            )
        );
    }

    #[test]
    fn sparkline_scales_to_the_largest() {
        assert_eq!(sparkline(&[0, 1, 50, 100]), "▁▂▅█");
        assert_eq!(sparkline(&[0, 0]), "▁▁");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn a_list_item_cannot_open_a_nested_list() {
        assert_eq!(list_item("- x"), "\\- x");
        assert_eq!(list_item("12. x"), "12\\. x");
        assert_eq!(list_item("3) x"), "3\\) x");
        assert_eq!(list_item("10.0.0.1 is fine"), "10\\.0.0.1 is fine");
        assert_eq!(list_item("sources"), "sources");
    }

    #[test]
    fn lower_bounds_are_said() {
        let md = render(&review_with("x"));
        assert!(md.contains("counts are lower bounds**, each short by at most 3"));
        assert!(md.contains("- x\n"));
    }
}
