//! The one way text reaches the page: [`Markup`] takes markup only as `&'static str` (written
//! in this crate, never read from anywhere) and everything else through an escaping method, so
//! a string from the review (and all of them may come from logs) cannot become a tag or an
//! attribute, whatever code forgets.
//!
//! Escaping is the HTML5 minimum for text and double-quoted attributes (`& < > " '`), plus the
//! characters that would let text disguise itself or the page around it: controls, bidi
//! overrides and isolates, zero-width and other invisible characters
//! ([`is_invisible`](crate::sink::encode::is_invisible), the same set the terminal output
//! shows). They are shown, not dropped: a user name `admin\u{200b}` must not look like
//! `admin`, and a host with `U+202E` must not turn the rest of its table row around.

use std::fmt::Write;

use crate::sink::encode::is_invisible;

/// An HTML (or SVG) document being written.
#[derive(Default)]
pub struct Markup {
    out: String,
}

impl Markup {
    pub fn new() -> Markup {
        Markup {
            out: String::with_capacity(64 * 1024),
        }
    }

    /// Markup written in this crate. `'static` is the point: a string built at run time from
    /// the review cannot get here.
    pub fn tag(&mut self, markup: &'static str) -> &mut Markup {
        self.out.push_str(markup);
        self
    }

    /// Text for an HTML element's content: escaped, invisible characters shown as a marked
    /// `\u{…}` (a span the CSS draws as a box, so a name cannot fake one by typing it).
    pub fn text(&mut self, text: &str) -> &mut Markup {
        for c in text.chars() {
            match c {
                c if c.is_control() || is_invisible(c) => {
                    self.out.push_str("<span class=\"ctl\">");
                    push_code_point(&mut self.out, c);
                    self.out.push_str("</span>");
                }
                c => push_escaped(&mut self.out, c),
            }
        }
        self
    }

    /// Text from logs in a table cell or a sentence: [`Markup::text`] inside a left-to-right
    /// `<bdi>`, so right-to-left letters (which are not controls and stay) cannot reorder what
    /// is beside it, nor, by coming first, turn the name's own neutral and Latin parts around.
    pub fn log(&mut self, text: &str) -> &mut Markup {
        self.tag("<bdi class=\"log\" dir=\"ltr\">")
            .text(text)
            .tag("</bdi>")
    }

    /// Text where no element may go: an attribute value, an SVG `<title>` or `<text>`.
    /// Escaped; invisible characters and the backslash written as `\u{…}` and `\\`, so a
    /// literal `\u{202e}` typed in a name stays distinguishable from an escaped one.
    pub fn plain(&mut self, text: &str) -> &mut Markup {
        for c in text.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                c if c.is_control() || is_invisible(c) => push_code_point(&mut self.out, c),
                c => push_escaped(&mut self.out, c),
            }
        }
        self
    }

    /// A count, grouped by thousands with commas (`12,345`).
    pub fn count(&mut self, n: impl Into<u128>) -> &mut Markup {
        let digits = n.into().to_string();
        for (i, d) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                self.out.push(',');
            }
            self.out.push(d);
        }
        self
    }

    /// A number in an SVG coordinate or size, to one decimal (the same bytes on every machine:
    /// Rust formats floats exactly, without a locale).
    pub fn coord(&mut self, x: f64) -> &mut Markup {
        let x = if x.is_finite() { x } else { 0.0 };
        let _ = write!(self.out, "{x:.1}");
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        c => out.push(c),
    }
}

fn push_code_point(out: &mut String, c: char) {
    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        let mut m = Markup::new();
        m.text(s);
        m.finish()
    }

    fn plain(s: &str) -> String {
        let mut m = Markup::new();
        m.plain(s);
        m.finish()
    }

    #[test]
    fn a_script_tag_in_a_user_name_is_text() {
        assert_eq!(
            text("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
    }

    #[test]
    fn an_attribute_breakout_stays_inside_the_attribute() {
        let out = plain("\"><img src=x onerror=alert(1)>'");
        assert_eq!(out, "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&#39;");
        assert!(!out.contains(['"', '\'', '<', '>']));
    }

    #[test]
    fn ampersands_cannot_start_an_entity() {
        assert_eq!(text("&lt;b&gt;"), "&amp;lt;b&amp;gt;");
    }

    #[test]
    fn a_bidi_override_is_shown_not_obeyed() {
        let out = text("web\u{202e}1gpj.exe");
        assert_eq!(out, "web<span class=\"ctl\">\\u{202e}</span>1gpj.exe");
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}',
        ] {
            let shown = text(&format!("a{c}b"));
            assert!(!shown.contains(c), "{c:?} reached the page: {shown}");
            assert!(
                shown.contains(&format!("\\u{{{:x}}}", u32::from(c))),
                "{shown}"
            );
            assert!(!plain(&format!("a{c}b")).contains(c));
        }
    }

    #[test]
    fn controls_and_zero_width_characters_are_visible() {
        assert_eq!(
            text("admin\u{200b}\n\u{1b}[2J"),
            "admin<span class=\"ctl\">\\u{200b}</span><span class=\"ctl\">\\u{a}</span>\
             <span class=\"ctl\">\\u{1b}</span>[2J"
        );
        assert_eq!(plain("a\u{0}b\u{85}"), "a\\u{0}b\\u{85}");
    }

    #[test]
    fn a_typed_escape_differs_from_a_real_one_in_plain_text() {
        assert_eq!(plain("\\u{202e}"), "\\\\u{202e}");
        assert_eq!(plain("\u{202e}"), "\\u{202e}");
    }

    #[test]
    fn log_text_is_isolated_from_its_neighbours() {
        let mut m = Markup::new();
        m.log("\u{5d0}</bdi><b>");
        assert_eq!(
            m.finish(),
            "<bdi class=\"log\" dir=\"ltr\">\u{5d0}&lt;/bdi&gt;&lt;b&gt;</bdi>"
        );
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        for (n, shown) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (123_456, "123,456"),
            (1_234_567, "1,234,567"),
            (u64::MAX, "18,446,744,073,709,551,615"),
        ] {
            let mut m = Markup::new();
            m.count(n);
            assert_eq!(m.finish(), shown);
        }
    }

    #[test]
    fn coordinates_are_finite_with_one_decimal() {
        let mut m = Markup::new();
        m.coord(12.345).tag(" ").coord(f64::NAN).tag(" ").coord(3.0);
        assert_eq!(m.finish(), "12.3 0.0 3.0");
    }
}
