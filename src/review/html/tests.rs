//! The page as an attacker and a reader see it: hostile names stay text, the verdict comes
//! first, the same review gives the same bytes, an empty review still says everything.

use super::render;
use crate::review::model::*;

fn compared(now: u64, previous: u64) -> Compared {
    Compared { now, previous }
}

fn starts() -> Vec<String> {
    (0..24)
        .map(|h| format!("2026-01-05T{h:02}:00:00Z"))
        .collect()
}

/// A day with a little of everything, and attacker text in every place log text reaches.
fn sample() -> Review {
    let mut high = vec![0; 24];
    high[3] = 2;
    let mut critical = vec![0; 24];
    critical[14] = 1;
    Review {
        v: REVIEW_VERSION,
        archive: ArchiveFacts {
            id: Some("a1b2c3".into()),
            head: Some("9f".repeat(32)),
            manifests: 7,
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
            lines: compared(48_213, 40_000),
            kinds: vec![
                KindCount {
                    kind: "auth.failure".into(),
                    count: compared(310, 12),
                },
                KindCount {
                    kind: "unparsed".into(),
                    count: compared(21, 0),
                },
            ],
            unparsed: compared(21, 0),
            unparsed_per_mille: 0,
            ts_inferred: compared(3, 3),
            late: compared(0, 1),
        },
        timeline: Timeline {
            starts: starts(),
            lines: vec![2000; 24],
            critical,
            high,
            medium: vec![0; 24],
            low: vec![0; 24],
        },
        alerts: AlertTotals {
            total: compared(3, 1),
            critical: compared(1, 0),
            high: compared(2, 1),
            medium: compared(0, 0),
            low: compared(0, 0),
        },
        response: Response {
            priorities: vec![
                PriorityRow {
                    priority: "P0".into(),
                    alerts: 1,
                    met: 0,
                    missed: 1,
                    open: 0,
                },
                PriorityRow {
                    priority: "P1".into(),
                    alerts: 2,
                    met: 1,
                    missed: 0,
                    open: 1,
                },
            ],
            items: vec![ResponseItem {
                id: "77".into(),
                rule: "data.namespace_violation".into(),
                severity: "critical".into(),
                priority: "P0".into(),
                key_field: "actor".into(),
                key: "</svg></table><script>alert(1)</script>".into(),
                raised: "2026-01-05T14:02:00Z".into(),
                deadline: "2026-01-05T14:17:00Z".into(),
                status: "missed".into(),
                answered: None,
                summary: "agent read another namespace".into(),
            }],
            items_total: 1,
        },
        sources: TopList {
            rows: vec![SourceRow {
                address: "203.0.113.7".into(),
                events: 250,
                failures: 240,
                alerts: 2,
                banned: true,
                new: true,
            }],
            distinct: 1,
            exact: true,
            max_error: 0,
        },
        prefixes: TopList {
            rows: vec![PrefixRow {
                prefix: "203.0.113.0/24".into(),
                events: 250,
                failures: 240,
                new: true,
            }],
            distinct: 1,
            exact: true,
            max_error: 0,
        },
        users: TopList {
            rows: vec![UserRow {
                user: "<script>alert(1)</script>".into(),
                failures: 9,
                successes: 0,
                new: true,
            }],
            distinct: 1,
            exact: true,
            max_error: 0,
        },
        actors: TopList {
            rows: vec![ActorRow {
                actor: "\"><img src=x onerror=alert(1)>".into(),
                events: 4,
                records: 5000,
                new: false,
            }],
            distinct: 1,
            exact: true,
            max_error: 0,
        },
        rules: vec![RuleRow {
            rule: "auth.bruteforce".into(),
            severity: "high".into(),
            priority: "P1".into(),
            alerts: compared(2, 1),
            keys: 1,
            first: Some("2026-01-05T03:10:00Z".into()),
            last: Some("2026-01-05T03:40:00Z".into()),
        }],
        hosts: Hosts {
            rows: vec![HostRow {
                host: "web\u{202e}1gpj.exe".into(),
                lines: 48_000,
                errors: 2,
                last_event: Some("2026-01-05T23:59:00Z".into()),
                sparkline: vec![2000; 24],
            }],
            silent: vec![SilentHost {
                host: "db-2".into(),
                last_event: Some("2026-01-04T11:00:00Z".into()),
                lines: 288,
                silence_alerts: 1,
            }],
            distinct: 2,
            exact: true,
        },
        bans: Bans {
            issued: compared(1, 0),
            simulated: 1,
            lifted: 0,
            overflows: 0,
            rows: vec![BanRow {
                address: "203.0.113.7".into(),
                since: "2026-01-05T03:10:00Z".into(),
                until: "2026-01-05T03:25:00Z".into(),
                mode: "simulate".into(),
                cause_rule: "auth.bruteforce".into(),
                nth: 1,
            }],
        },
        limits: vec![],
    }
}

fn tampered(mut review: Review) -> Review {
    review.archive.verdict = "tampered".into();
    review.archive.problems =
        vec!["modified: events/date=2026-01-05/part-00000003.parquet row 12".into()];
    review
}

/// Element names in `page`, in order (closing tags and the doctype left out).
fn elements(page: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = page;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if !name.is_empty() {
            names.push(name.to_ascii_lowercase());
        }
    }
    names
}

/// Every element the page is allowed to contain: if a string from the review ever became
/// markup, some other name would show up here.
const ALLOWED: &[&str] = &[
    "html", "head", "meta", "title", "style", "body", "section", "footer", "h1", "h2", "h3", "p",
    "strong", "code", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "span", "bdi",
    "time", "div", "svg", "line", "text", "rect", "polygon", "polyline",
];

#[test]
fn hostile_names_stay_text_and_add_no_element() {
    let page = render(&sample());
    for name in elements(&page) {
        assert!(
            ALLOWED.contains(&name.as_str()),
            "element <{name}> on the page"
        );
    }
    assert!(!page.contains("<script"), "a script element");
    assert!(!page.contains("<img"), "an img element");
    // The user name is on the page, as text.
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // The attribute breakout in the actor name is text too.
    assert!(page.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    // The rule key that closes the chart and the table did not close either.
    assert_eq!(page.matches("<svg").count(), page.matches("</svg>").count());
    assert_eq!(
        page.matches("<table").count(),
        page.matches("</table>").count()
    );
}

#[test]
fn every_row_has_as_many_cells_as_its_table_has_columns() {
    let page = render(&sample());
    let mut tables = 0;
    for table in page.split("<table").skip(1) {
        let table = &table[..table.find("</table>").expect("table end")];
        let (thead, tbody) = table.split_once("</thead>").expect("a head");
        let cells = |html: &str| {
            ["<td>", "<td ", "<th>", "<th "]
                .iter()
                .map(|open| html.matches(open).count())
                .sum::<usize>()
        };
        let columns = cells(thead);
        for row in tbody.split("<tr").skip(1) {
            let cells = cells(row);
            assert_eq!(cells, columns, "row {row:?} of table {thead:?}");
        }
        tables += 1;
    }
    assert!(tables >= 12, "{tables} tables");
}

#[test]
fn a_bidi_override_in_a_host_name_is_shown_not_obeyed() {
    let page = render(&sample());
    assert!(!page.contains('\u{202e}'), "U+202E reached the page");
    // In the table cell, isolated and boxed ...
    assert!(page.contains(
        "<bdi class=\"log\" dir=\"ltr\">web<span class=\"ctl\">\\u{202e}</span>1gpj.exe</bdi>"
    ));
    // ... and in the sparkline's tooltip, where no element may go.
    assert!(page.contains("<title>web\\u{202e}1gpj.exe: lines per bucket"));
}

#[test]
fn the_page_fetches_nothing_and_runs_nothing() {
    let page = render(&sample());
    assert!(page.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">"
    ));
    // The only URL is the SVG namespace name, which is never fetched.
    assert_eq!(
        page.matches("http").count(),
        // the CSP's http-equiv, then one xmlns per chart (the bars and one sparkline)
        1 + page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    for forbidden in [" src=", "href=", "url(", "@import", "<link", " on"] {
        let hits: Vec<_> = page.match_indices(forbidden).collect();
        // " on" occurs in text ("on record"); as an attribute it would follow a tag name.
        let as_attribute = hits.iter().any(|(i, _)| {
            let before = &page[..*i];
            before.rfind('<') > before.rfind('>')
        });
        assert!(!as_attribute, "{forbidden:?} inside a tag");
    }
}

#[test]
fn a_tampered_archive_is_said_in_red_before_any_number() {
    let page = render(&tampered(sample()));
    let body = &page[page.find("<body>").expect("a body")..];
    let banner = body
        .find("<section id=\"verdict\" class=\"verdict bad\" role=\"alert\"><h1>Archive tampered</h1>")
        .expect("the red banner");
    // The banner is the body's first element ...
    assert_eq!(banner, "<body>\n".len());
    // ... and every count comes after it ends.
    let banner_end = banner + body[banner..].find("</section>").expect("banner end");
    for number in ["48,213", "40,000", "310"] {
        let at = body.find(number).expect(number);
        assert!(at > banner_end, "{number} before the banner's end");
    }
    assert!(body[..banner_end].contains("modified: events/date=2026-01-05"));
    assert!(page.contains("<title>Daily security review 2026-01-05T00:00:00Z to 2026-01-06T00:00:00Z (ARCHIVE NOT INTACT)</title>"));
    // An intact one has the quiet line instead, and no alert role.
    let intact = render(&sample());
    assert!(intact.contains("<section id=\"verdict\" class=\"verdict good\"><p><strong>Archive verified intact.</strong>"));
    assert!(!intact.contains("role=\"alert\""));
}

#[test]
fn every_verdict_but_intact_gets_the_red_banner() {
    for verdict in ["tampered", "unsigned", "inconclusive", "", "<b>odd</b>"] {
        let mut review = sample();
        review.archive.verdict = verdict.into();
        let page = render(&review);
        assert!(
            page.contains("class=\"verdict bad\" role=\"alert\""),
            "{verdict:?}"
        );
        assert!(!page.contains("<b>"), "{verdict:?}");
    }
}

#[test]
fn the_same_review_gives_the_same_bytes() {
    let review = sample();
    let first = render(&review);
    assert_eq!(first, render(&review.clone()));
    // Through JSON and back, as a stored review would be rendered again later.
    let json = serde_json::to_string(&review).expect("serializes");
    let back: Review = serde_json::from_str(&json).expect("parses");
    assert_eq!(first, render(&back));
}

#[test]
fn sections_come_in_order_and_silent_hosts_before_busy_ones() {
    let page = render(&sample());
    let ids = [
        "id=\"verdict\"",
        "id=\"period\"",
        "id=\"counts\"",
        "id=\"alerts\"",
        "id=\"response\"",
        "id=\"sources\"",
        "id=\"users\"",
        "id=\"rules\"",
        "id=\"hosts\"",
        "id=\"bans\"",
        "id=\"limits\"",
    ];
    let at: Vec<usize> = ids
        .iter()
        .map(|id| page.find(id).unwrap_or_else(|| panic!("{id} missing")))
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "{ids:?} out of order: {at:?}"
    );
    let silent = page
        .find("SILENT</span> <bdi class=\"log\" dir=\"ltr\">db-2")
        .expect("silent host");
    assert!(silent < page.find("<h3>Busiest hosts").expect("busiest"));
    // The missed P0 item is marked as not met, with its status in colour.
    assert!(page.contains("<tr class=\"not-met\"><td><span class=\"status missed\">missed</span>"));
    // Counts carry their change against the previous period.
    assert!(page.contains("48,213</td><td class=\"num\">40,000</td><td class=\"num\"><span class=\"delta\">+21 %</span>"));
    assert!(page.contains(
        "<span class=\"badge new\">new</span><span class=\"badge banned\">banned</span>"
    ));
}

#[test]
fn an_empty_review_renders_and_says_each_section_is_empty() {
    let page = render(&Review::default());
    for says in [
        "No events in this period.",
        "No alerts in this period, nor in the previous one.",
        "No alerts needing a response in this period.",
        "No events with a source address in this period.",
        "No authentication events naming a user in this period.",
        "No data or API events naming an actor in this period.",
        "No rule fired in this period or the previous one.",
        "None: every host seen logged in the last 24 hours of the period.",
        "No host named in this period's events.",
        "No bans in this period, nor in the previous one.",
    ] {
        assert!(page.contains(says), "missing {says:?}");
    }
    // Nothing counted, nothing dropped: an empty review claims no cap.
    assert!(page.contains("Every tally is exact"));
    assert!(!page.contains("Some tallies reached their memory cap"));
    assert!(page.ends_with("</html>\n"));
}

#[test]
fn capped_tallies_say_their_counts_are_lower_bounds() {
    let mut review = sample();
    review.sources.exact = false;
    review.sources.max_error = 37;
    review.limits = vec!["source addresses: 100000 keys".into()];
    let page = render(&review);
    assert!(page.contains("<li>source addresses: each count short by at most 37</li>"));
    assert!(page.contains("each count may be short by up to 37"));
    let exact = render(&sample());
    assert!(exact.contains("Every tally is exact"));
}

#[test]
fn a_short_series_or_empty_timeline_does_not_panic() {
    let mut review = sample();
    review.timeline.high = vec![5];
    review.timeline.critical.clear();
    review.hosts.rows[0].sparkline = vec![
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
        26,
    ];
    let page = render(&review);
    assert!(page.contains("<title>2026-01-05T00:00:00Z: 5 high</title>"));
    review.timeline = Timeline::default();
    let page = render(&review);
    assert_eq!(page.matches("<svg").count(), page.matches("</svg>").count());
}
