//! The page's sections after the verdict, one function each, in the order `render` calls them.
//! Each has a heading and says so when it has nothing to show.

use super::format::{delta, opt_when, per_mille, severity, status, when};
use super::markup::Markup;
use crate::review::model::{Bans, Compared, Response, Review, RuleRow, TopList};
use crate::review::svg;

fn open(m: &mut Markup, id: &'static str, title: &'static str) {
    m.tag("<section id=\"")
        .tag(id)
        .tag("\"><h2>")
        .tag(title)
        .tag("</h2>\n");
}

fn close(m: &mut Markup) {
    m.tag("</section>\n");
}

fn empty(m: &mut Markup, says: &'static str) {
    m.tag("<p class=\"muted empty\">").tag(says).tag("</p>\n");
}

/// A table head; a column named with a leading `#` is numeric (right-aligned).
fn head(m: &mut Markup, class: &'static str, columns: &[&'static str]) {
    m.tag("<table class=\"").tag(class).tag("\"><thead><tr>");
    for column in columns {
        match column.strip_prefix('#') {
            Some(name) => m.tag("<th class=\"num\">").tag(name),
            None => m.tag("<th>").tag(column),
        };
        m.tag("</th>");
    }
    m.tag("</tr></thead><tbody>\n");
}

fn foot(m: &mut Markup) {
    m.tag("</tbody></table>\n");
}

fn num(m: &mut Markup, n: u64) {
    m.tag("<td class=\"num\">").count(n).tag("</td>");
}

/// Now, previous, change: three cells.
fn compared(m: &mut Markup, value: Compared) {
    num(m, value.now);
    num(m, value.previous);
    m.tag("<td class=\"num\">");
    delta(m, value);
    m.tag("</td>");
}

fn badges(m: &mut Markup, new: bool, banned: bool) {
    if new {
        m.tag("<span class=\"badge new\">new</span>");
    }
    if banned {
        m.tag("<span class=\"badge banned\">banned</span>");
    }
}

/// "N distinct", and when the tally hit its cap, that its counts are lower bounds.
fn tally_note<T>(m: &mut Markup, list: &TopList<T>, what: &'static str) {
    m.tag("<p class=\"note\">")
        .count(list.distinct)
        .tag(" distinct ")
        .tag(what);
    if !list.rows.is_empty() && (list.rows.len() as u64) < list.distinct {
        m.tag(", top ").count(list.rows.len() as u64).tag(" shown");
    }
    if !list.exact {
        m.tag(". <strong>Lower bounds:</strong> this tally hit its memory cap; each count may be short by up to ")
            .count(list.max_error);
    }
    m.tag(".</p>\n");
}

pub fn counts(m: &mut Markup, review: &Review) {
    let counts = &review.counts;
    open(m, "counts", "Counts");
    head(m, "counts", &["", "#this period", "#previous", "#change"]);
    m.tag("<tr><th>Lines archived</th>");
    compared(m, counts.lines);
    m.tag("</tr>\n<tr><th>Unparsed (");
    per_mille(m, counts.unparsed_per_mille);
    m.tag(" of lines)</th>");
    compared(m, counts.unparsed);
    m.tag("</tr>\n<tr><th>Without a timestamp (time inferred)</th>");
    compared(m, counts.ts_inferred);
    m.tag("</tr>\n<tr><th>Late (behind the stream)</th>");
    compared(m, counts.late);
    m.tag("</tr>\n");
    foot(m);
    m.tag("<h3>Events by kind</h3>\n");
    if counts.kinds.is_empty() {
        empty(m, "No events in this period.");
    } else {
        head(
            m,
            "counts kinds",
            &["kind", "#this period", "#previous", "#change"],
        );
        for kind in &counts.kinds {
            m.tag("<tr><td><code>").text(&kind.kind).tag("</code></td>");
            compared(m, kind.count);
            m.tag("</tr>\n");
        }
        foot(m);
    }
    close(m);
}

pub fn alerts(m: &mut Markup, review: &Review) {
    let totals = &review.alerts;
    let bucket = if review.period.bucket.is_empty() {
        "bucket"
    } else {
        review.period.bucket.as_str()
    };
    open(m, "alerts", "Alerts");
    if totals.total.now == 0 && totals.total.previous == 0 {
        empty(m, "No alerts in this period, nor in the previous one.");
        close(m);
        return;
    }
    head(
        m,
        "counts",
        &["severity", "#this period", "#previous", "#change"],
    );
    for (name, value) in [
        ("critical", totals.critical),
        ("high", totals.high),
        ("medium", totals.medium),
        ("low", totals.low),
    ] {
        m.tag("<tr><td>");
        severity(m, name);
        m.tag("</td>");
        compared(m, value);
        m.tag("</tr>\n");
    }
    m.tag("<tr><th>all</th>");
    compared(m, totals.total);
    m.tag("</tr>\n");
    foot(m);
    m.tag("<h3>Alerts per ").text(bucket).tag("</h3>\n");
    if totals.total.now == 0 {
        empty(m, "No alerts in this period.");
    } else {
        // Legend, chart and note stay together on paper.
        m.tag("<div class=\"figure\"><div class=\"legend\">");
        for (name, class) in [
            ("critical", "sev-critical"),
            ("high", "sev-high"),
            ("medium", "sev-medium"),
            ("low", "sev-low"),
        ] {
            m.tag("<span><span class=\"swatch ")
                .tag(class)
                .tag("\"></span>")
                .tag(name)
                .tag("</span>");
        }
        m.tag("</div>\n");
        svg::alert_bars(m, &review.timeline, bucket);
        m.tag("<p class=\"note\">One bar per ").text(bucket).tag(
            ", labelled with its start (UTC); on screen, a bar's tooltip has its counts.</p></div>\n",
        );
    }
    close(m);
}

pub fn response(m: &mut Markup, response: &Response) {
    open(m, "response", "Response");
    if response.priorities.iter().all(|p| p.alerts == 0) && response.items.is_empty() {
        empty(m, "No alerts needing a response in this period.");
        close(m);
        return;
    }
    m.tag("<p class=\"note\">A response on record is an enforced ban caused by the alert or of its key (a simulated ban blocked nothing and answers nothing); an alert answered by hand shows as missed or open.</p>\n");
    head(
        m,
        "counts",
        &["priority", "#alerts", "#met", "#missed", "#open"],
    );
    for row in &response.priorities {
        m.tag("<tr><th>").text(&row.priority).tag("</th>");
        num(m, row.alerts);
        num(m, row.met);
        num(m, row.missed);
        num(m, row.open);
        m.tag("</tr>\n");
    }
    foot(m);
    m.tag("<h3>Items, not met first</h3>\n");
    if response.items.is_empty() {
        empty(m, "No items listed.");
    } else {
        head(
            m,
            "items",
            &[
                "status", "priority", "rule", "key", "raised", "deadline", "answered", "summary",
            ],
        );
        for item in &response.items {
            let met = matches!(item.status.as_str(), "met" | "open");
            m.tag(if met {
                "<tr>"
            } else {
                "<tr class=\"not-met\">"
            })
            .tag("<td>");
            status(m, &item.status);
            m.tag("</td><td>").text(&item.priority).tag(" ");
            severity(m, &item.severity);
            m.tag("</td><td><code>")
                .text(&item.rule)
                .tag("</code></td><td><span class=\"muted\">")
                .text(&item.key_field)
                .tag("</span> ")
                .log(&item.key)
                .tag("</td><td>");
            when(m, &item.raised);
            m.tag("</td><td>");
            when(m, &item.deadline);
            m.tag("</td><td>");
            opt_when(m, item.answered.as_deref());
            m.tag("</td><td>").log(&item.summary).tag("</td></tr>\n");
        }
        foot(m);
        if response.items_total > response.items.len() as u64 {
            m.tag("<p class=\"note\">")
                .count(response.items.len() as u64)
                .tag(" of ")
                .count(response.items_total)
                .tag(" items shown (the JSON output has the same cut).</p>\n");
        }
    }
    close(m);
}

pub fn sources(m: &mut Markup, review: &Review) {
    open(m, "sources", "Source addresses");
    m.tag("<h3>Top addresses</h3>\n");
    if review.sources.rows.is_empty() {
        empty(m, "No events with a source address in this period.");
    } else {
        head(
            m,
            "top",
            &["address", "#events", "#auth failures", "#alerts"],
        );
        for row in &review.sources.rows {
            m.tag("<tr><td>").log(&row.address);
            badges(m, row.new, row.banned);
            m.tag("</td>");
            num(m, row.events);
            num(m, row.failures);
            num(m, row.alerts);
            m.tag("</tr>\n");
        }
        foot(m);
        tally_note(m, &review.sources, "addresses");
    }
    m.tag("<h3>Top prefixes (/24, /64)</h3>\n");
    if review.prefixes.rows.is_empty() {
        empty(m, "No events with a source address in this period.");
    } else {
        head(m, "top", &["prefix", "#events", "#auth failures"]);
        for row in &review.prefixes.rows {
            m.tag("<tr><td>").log(&row.prefix);
            badges(m, row.new, false);
            m.tag("</td>");
            num(m, row.events);
            num(m, row.failures);
            m.tag("</tr>\n");
        }
        foot(m);
        tally_note(m, &review.prefixes, "prefixes");
    }
    m.tag("<p class=\"note\"><span class=\"badge new\">new</span> not seen at all in the previous period.</p>\n");
    close(m);
}

/// Targeted users, then actors of data and API events.
pub fn people(m: &mut Markup, review: &Review) {
    open(m, "users", "Users and actors");
    m.tag("<h3>Targeted users</h3>\n");
    if review.users.rows.is_empty() {
        empty(m, "No authentication events naming a user in this period.");
    } else {
        head(m, "top", &["user", "#failures", "#successes"]);
        for row in &review.users.rows {
            m.tag("<tr><td>").log(&row.user);
            badges(m, row.new, false);
            m.tag("</td>");
            num(m, row.failures);
            num(m, row.successes);
            m.tag("</tr>\n");
        }
        foot(m);
        tally_note(m, &review.users, "users");
    }
    m.tag("<h3>Actors</h3>\n");
    if review.actors.rows.is_empty() {
        empty(m, "No data or API events naming an actor in this period.");
    } else {
        head(m, "top", &["actor", "#events", "#records"]);
        for row in &review.actors.rows {
            m.tag("<tr><td>").log(&row.actor);
            badges(m, row.new, false);
            m.tag("</td>");
            num(m, row.events);
            num(m, row.records);
            m.tag("</tr>\n");
        }
        foot(m);
        tally_note(m, &review.actors, "actors");
    }
    close(m);
}

pub fn rules(m: &mut Markup, rules: &[RuleRow]) {
    open(m, "rules", "Rules fired");
    if rules.is_empty() {
        empty(m, "No rule fired in this period or the previous one.");
        close(m);
        return;
    }
    head(
        m,
        "rules",
        &[
            "rule",
            "severity",
            "#alerts",
            "#previous",
            "#change",
            "#keys",
            "first",
            "last",
        ],
    );
    for rule in rules {
        m.tag("<tr><td><code>")
            .text(&rule.rule)
            .tag("</code></td><td>");
        m.text(&rule.priority).tag(" ");
        severity(m, &rule.severity);
        m.tag("</td>");
        compared(m, rule.alerts);
        num(m, rule.keys);
        m.tag("<td>");
        opt_when(m, rule.first.as_deref());
        m.tag("</td><td>");
        opt_when(m, rule.last.as_deref());
        m.tag("</td></tr>\n");
    }
    foot(m);
    close(m);
}

/// Silent hosts first (they are the finding), then the busiest with a sparkline each.
pub fn hosts(m: &mut Markup, review: &Review) {
    let hosts = &review.hosts;
    open(m, "hosts", "Hosts");
    m.tag("<h3>Silent hosts</h3>\n");
    if hosts.silent.is_empty() {
        empty(
            m,
            "None: every host seen logged in the last 24 hours of the period.",
        );
    } else {
        m.tag("<p>No log in the last 24 hours of the period, or named by a <code>log.silence</code> alert:</p>\n");
        head(
            m,
            "silent",
            &[
                "host",
                "last event",
                "#lines (both periods)",
                "#log.silence alerts",
            ],
        );
        for host in &hosts.silent {
            m.tag("<tr class=\"not-met\"><td><span class=\"badge silent\">SILENT</span> ")
                .log(&host.host)
                .tag("</td><td>");
            opt_when(m, host.last_event.as_deref());
            m.tag("</td>");
            num(m, host.lines);
            num(m, host.silence_alerts);
            m.tag("</tr>\n");
        }
        foot(m);
    }
    m.tag("<h3>Busiest hosts</h3>\n");
    if hosts.rows.is_empty() {
        empty(m, "No host named in this period's events.");
    } else {
        head(
            m,
            "hosts",
            &[
                "host",
                "#lines",
                "#errors",
                "last event",
                "lines per bucket",
            ],
        );
        for host in &hosts.rows {
            m.tag("<tr><td>").log(&host.host).tag("</td>");
            num(m, host.lines);
            num(m, host.errors);
            m.tag("<td>");
            opt_when(m, host.last_event.as_deref());
            m.tag("</td><td>");
            svg::sparkline(m, &host.host, &host.sparkline, &review.timeline.starts);
            m.tag("</td></tr>\n");
        }
        foot(m);
        m.tag("<p class=\"note\">")
            .count(hosts.distinct)
            .tag(" distinct hosts");
        if !hosts.exact {
            m.tag(". <strong>Lower bounds:</strong> the host tally hit its memory cap");
        }
        m.tag(".</p>\n");
    }
    close(m);
}

pub fn bans(m: &mut Markup, bans: &Bans) {
    open(m, "bans", "Bans");
    if bans.issued.now == 0
        && bans.issued.previous == 0
        && bans.lifted == 0
        && bans.overflows == 0
        && bans.rows.is_empty()
    {
        empty(m, "No bans in this period, nor in the previous one.");
        close(m);
        return;
    }
    head(m, "counts", &["", "#this period", "#previous", "#change"]);
    m.tag("<tr><th>Issued</th>");
    compared(m, bans.issued);
    m.tag("</tr>\n");
    for (name, value) in [
        ("of them simulated (would have banned)", bans.simulated),
        ("Lifted", bans.lifted),
        ("Minutes the circuit breaker refused more", bans.overflows),
    ] {
        m.tag("<tr><th>").tag(name).tag("</th>");
        num(m, value);
        m.tag("<td></td><td></td></tr>\n");
    }
    foot(m);
    if bans.rows.is_empty() {
        empty(m, "No bans in this period.");
    } else {
        head(
            m,
            "bans",
            &["address", "since", "until", "mode", "cause", "#nth"],
        );
        for ban in &bans.rows {
            m.tag("<tr><td>").log(&ban.address).tag("</td><td>");
            when(m, &ban.since);
            m.tag("</td><td>");
            when(m, &ban.until);
            m.tag("</td><td>")
                .text(&ban.mode)
                .tag("</td><td><code>")
                .text(&ban.cause_rule)
                .tag("</code></td>");
            num(m, ban.nth);
            m.tag("</tr>\n");
        }
        foot(m);
    }
    close(m);
}

/// Which tallies hit their cap, so which counts above are lower bounds and by how much.
pub fn limits(m: &mut Markup, review: &Review) {
    open(m, "limits", "Limits");
    let capped: Vec<(&'static str, bool, u64)> = vec![
        (
            "source addresses",
            review.sources.exact,
            review.sources.max_error,
        ),
        ("prefixes", review.prefixes.exact, review.prefixes.max_error),
        ("users", review.users.exact, review.users.max_error),
        ("actors", review.actors.exact, review.actors.max_error),
    ];
    let inexact: Vec<_> = capped.into_iter().filter(|(_, exact, _)| !exact).collect();
    if review.limits.is_empty() && inexact.is_empty() && review.hosts.exact {
        empty(m, "Every tally is exact: no memory cap was reached.");
        close(m);
        return;
    }
    m.tag("<div class=\"limits\"><p><strong>Some tallies reached their memory cap: the counts they feed are lower bounds.</strong></p><ul>");
    for (what, _, max_error) in inexact {
        m.tag("<li>")
            .tag(what)
            .tag(": each count short by at most ")
            .count(max_error)
            .tag("</li>");
    }
    if !review.hosts.exact {
        m.tag(
            "<li>hosts: counts are lower bounds, the number of distinct hosts an upper bound</li>",
        );
    }
    for limit in &review.limits {
        m.tag("<li>").log(limit).tag("</li>");
    }
    m.tag("</ul></div>\n");
    close(m);
}
