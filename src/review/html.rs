//! The review as one self-contained HTML page: what a person opens, reads and prints.
//!
//! # What is on the page, in order
//!
//! 1. **The verdict** of `verify` over the archive, before anything else: a quiet green line
//!    (head, signature, manifests) when intact; otherwise a red banner that says what is wrong,
//!    with verify's problems, before any number, because numbers computed from an altered
//!    archive are not evidence of anything but the alteration.
//! 2. The period, the one it is compared with, and the bucket width.
//! 3. Sections, each with a heading, each saying so when it has nothing to show (an empty
//!    section that vanished would read as "not checked"): counts, alerts per bucket,
//!    response, sources, users and actors, rules, hosts (silent ones first), bans, limits.
//!
//! # Safe to open whatever the logs said
//!
//! Every string in a [`Review`] may have been written by an attacker (a user name, a host, a
//! rule key). The page is written through `markup::Markup`, which takes markup only as
//! `&'static str` and escapes everything else, showing invisible and bidi characters as boxed
//! `\u{…}`. As defence in depth the page carries a Content-Security-Policy that allows no
//! script, no network and no image but `data:`; it uses no script at all, and no font, image
//! or stylesheet by URL: it renders the same offline, years later.
//!
//! # Same review, same bytes
//!
//! Nothing is read from the clock, the environment or a hash map: the page is a function of
//! the review, so two renderings of one review compare equal byte for byte.

mod format;
pub(super) mod markup;
mod sections;

use super::model::{ArchiveFacts, Period, Review};
use format::when;
use markup::Markup;

/// The inline stylesheet (screen and print).
const STYLE: &str = include_str!("html/page.css");

/// The page for `review`: one HTML5 document, no external resource.
pub fn render(review: &Review) -> String {
    let mut m = Markup::new();
    m.tag("<!DOCTYPE html>\n<html lang=\"en\" dir=\"ltr\">\n<head>\n<meta charset=\"utf-8\">\n")
        // First in <head>, before anything it governs.
        .tag("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; ")
        .tag("style-src 'unsafe-inline'; img-src data:\">\n")
        .tag("<meta name=\"referrer\" content=\"no-referrer\">\n")
        .tag("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
        .tag("<meta name=\"generator\" content=\"secpipe report\">\n<title>")
        .plain(review_title(&review.period))
        .tag(" ")
        .plain(&review.period.from)
        .tag(" to ")
        .plain(&review.period.to);
    if review.archive.verdict != "intact" {
        m.tag(" (ARCHIVE NOT INTACT)");
    }
    m.tag("</title>\n<style>\n")
        .tag(STYLE)
        .tag("</style>\n</head>\n<body>\n");

    verdict(&mut m, &review.archive);
    m.tag("<h1>")
        .tag(review_title(&review.period))
        .tag("</h1>\n");
    period(&mut m, &review.period);

    sections::counts(&mut m, review);
    sections::alerts(&mut m, review);
    sections::response(&mut m, &review.response);
    sections::sources(&mut m, review);
    sections::people(&mut m, review);
    sections::rules(&mut m, &review.rules);
    sections::hosts(&mut m, review);
    sections::bans(&mut m, &review.bans);
    sections::limits(&mut m, review);

    m.tag("<footer class=\"note\">secpipe report, review format v")
        .count(u64::from(review.v))
        .tag(". Computed from the archive alone; the JSON output has every number shown here.")
        .tag("</footer>\n</body>\n</html>\n");
    m.finish()
}

fn review_title(period: &Period) -> &'static str {
    match period.kind.as_str() {
        "day" => "Daily security review",
        "week" => "Weekly security review",
        _ => "Security review",
    }
}

/// What verify said, first on the page.
fn verdict(m: &mut Markup, archive: &ArchiveFacts) {
    if archive.verdict == "intact" {
        m.tag("<section id=\"verdict\" class=\"verdict good\">")
            .tag("<p><strong>Archive verified intact.</strong> ");
        facts(m, archive);
        m.tag("</p>");
        notes(m, "Warnings", &archive.warnings);
        m.tag("</section>\n");
        return;
    }
    let (headline, meaning) = match archive.verdict.as_str() {
        "tampered" => (
            "Archive tampered",
            "secpipe verify found the archive altered. Everything below was computed from \
             data that is not what was written: it shows the tampering, not the period.",
        ),
        "unsigned" => (
            "Archive not vouched for by its key",
            "Nothing was found altered, but part of the archive is not covered by a valid \
             signature: anyone with write access could have written those rows.",
        ),
        "inconclusive" => (
            "Archive could not be verified",
            "secpipe verify could not conclude (see below): the numbers rest on an archive \
             nobody has checked.",
        ),
        _ => (
            "Archive verdict unknown",
            "The review does not carry a verdict this page knows: treat the archive as \
             unverified.",
        ),
    };
    m.tag("<section id=\"verdict\" class=\"verdict bad\" role=\"alert\"><h1>")
        .tag(headline)
        .tag("</h1><p>")
        .tag(meaning)
        .tag(" (verify: <code>")
        .text(&archive.verdict)
        .tag("</code>)</p>");
    notes(m, "Problems", &archive.problems);
    notes(m, "Warnings", &archive.warnings);
    m.tag("<p class=\"note\">");
    facts(m, archive);
    m.tag("</p></section>\n");
}

/// Head, signature and manifest count: what the review rests on.
fn facts(m: &mut Markup, archive: &ArchiveFacts) {
    m.tag("Head <code class=\"head\">");
    match &archive.head {
        Some(head) => m.text(head),
        None => m.tag("none"),
    };
    m.tag("</code> · signature ");
    match archive.signature.as_str() {
        "good" => m.tag("good"),
        "not_checked" => m.tag("present, not checked (no public key given)"),
        "unsigned" => m.tag("none (hash chain only, archive written without a key)"),
        "bad" => m.tag("<strong>BAD</strong>"),
        other => m.text(other),
    };
    m.tag(" · ").count(archive.manifests).tag(" manifests");
    if let Some(id) = &archive.id {
        m.tag(" · archive <code>").text(id).tag("</code>");
    }
}

fn notes(m: &mut Markup, title: &'static str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    m.tag("<p><strong>").tag(title).tag(":</strong></p><ul>");
    for line in lines {
        m.tag("<li>").log(line).tag("</li>");
    }
    m.tag("</ul>");
}

fn period(m: &mut Markup, period: &Period) {
    m.tag("<p class=\"period\" id=\"period\"><strong>");
    when(m, &period.from);
    m.tag("</strong> to <strong>");
    when(m, &period.to);
    m.tag("</strong> (UTC, end excluded) · compared with ");
    when(m, &period.previous_from);
    m.tag(" to ");
    when(m, &period.previous_to);
    m.tag(" · one bar per ").text(&period.bucket);
    if !period.lateness.is_empty() {
        m.tag(" · late means behind the stream by more than ")
            .text(&period.lateness);
    }
    m.tag("</p>\n");
}

#[cfg(test)]
mod tests;
