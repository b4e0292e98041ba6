//! How the page writes values that are not plain text: times, changes against the previous
//! period, shares, severities and statuses. Integer arithmetic only, so the bytes are the
//! same everywhere.

use super::markup::Markup;
use crate::review::model::Compared;

/// `2026-01-05T14:00:00Z` as `2026-01-05 14:00:00` (the page says once that times are UTC).
/// Anything else is shown as it is, escaped.
pub fn when(m: &mut Markup, time: &str) {
    let bytes = time.as_bytes();
    if bytes.len() == 20 && bytes[10] == b'T' && bytes[19] == b'Z' && time.is_ascii() {
        // Date and time each in one piece: a narrow column (paper) breaks only between them.
        m.tag("<time><span>")
            .text(&time[..10])
            .tag("</span> <span>")
            .text(&time[11..19])
            .tag("</span></time>");
    } else {
        m.text(time);
    }
}

pub fn opt_when(m: &mut Markup, time: Option<&str>) {
    match time {
        Some(time) => when(m, time),
        None => {
            m.tag("<span class=\"muted\">–</span>");
        }
    }
}

/// The change from the previous period: `+12 %`, `-40 %`, `±0 %`, `new` (nothing before),
/// `–` (nothing either time). Rounded half away from zero; a change under 1 % is `<+1 %`.
pub fn delta(m: &mut Markup, value: Compared) {
    let Compared { now, previous } = value;
    if previous == 0 {
        if now == 0 {
            m.tag("<span class=\"delta\">–</span>");
        } else {
            m.tag("<span class=\"delta new\">new</span>");
        }
        return;
    }
    let (sign, diff) = if now >= previous {
        ("+", now - previous)
    } else {
        ("-", previous - now)
    };
    if diff == 0 {
        m.tag("<span class=\"delta\">±0 %</span>");
        return;
    }
    let percent = (u128::from(diff) * 100 + u128::from(previous) / 2) / u128::from(previous);
    m.tag("<span class=\"delta\">");
    if percent == 0 {
        m.tag("&lt;").tag(sign).tag("1 %");
    } else {
        m.tag(sign).count(percent).tag(" %");
    }
    m.tag("</span>");
}

/// A share in per mille as a percentage with one decimal: 42 → `4.2 %`.
pub fn per_mille(m: &mut Markup, per_mille: u64) {
    m.count(per_mille / 10)
        .tag(".")
        .tag(DIGITS[(per_mille % 10) as usize])
        .tag(" %");
}

const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// A severity in its colour, by name (the colour is decoration: the word is always there).
pub fn severity(m: &mut Markup, severity: &str) {
    if severity.is_empty() {
        m.tag("<span class=\"muted\">–</span>");
        return;
    }
    let class = match severity.to_ascii_lowercase().as_str() {
        "critical" => "sev critical",
        "high" => "sev high",
        "medium" => "sev medium",
        "low" => "sev low",
        _ => "sev",
    };
    m.tag("<span class=\"")
        .tag(class)
        .tag("\">")
        .text(&severity.to_ascii_uppercase())
        .tag("</span>");
}

/// A response item's status in its colour.
pub fn status(m: &mut Markup, status: &str) {
    let class = match status {
        "missed" => "status missed",
        "late" => "status late",
        "open" => "status open",
        "met" => "status met",
        _ => "status",
    };
    m.tag("<span class=\"")
        .tag(class)
        .tag("\">")
        .text(status)
        .tag("</span>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(write: impl FnOnce(&mut Markup)) -> String {
        let mut m = Markup::new();
        write(&mut m);
        m.finish()
    }

    fn change(now: u64, previous: u64) -> String {
        let html = shown(|m| delta(m, Compared { now, previous }));
        // Only the text, without the span around it.
        let start = html.find('>').map_or(0, |i| i + 1);
        html[start..html.len() - "</span>".len()].to_string()
    }

    #[test]
    fn changes_read_as_people_write_them() {
        assert_eq!(change(112, 100), "+12 %");
        assert_eq!(change(60, 100), "-40 %");
        assert_eq!(change(100, 100), "±0 %");
        assert_eq!(change(5, 0), "new");
        assert_eq!(change(0, 0), "–");
        assert_eq!(change(0, 7), "-100 %");
        assert_eq!(change(1001, 1000), "&lt;+1 %");
        assert_eq!(change(3, 2), "+50 %");
        assert_eq!(change(2, 3), "-33 %");
        assert_eq!(change(u64::MAX, 1), "+1,844,674,407,370,955,161,400 %");
    }

    #[test]
    fn times_drop_the_t_and_z_and_odd_ones_stay_escaped() {
        assert_eq!(
            shown(|m| when(m, "2026-01-05T14:00:00Z")),
            "<time><span>2026-01-05</span> <span>14:00:00</span></time>"
        );
        assert_eq!(shown(|m| when(m, "<b>")), "&lt;b&gt;");
        // 20 bytes, T and Z in place, but not ASCII: shown whole, never cut in a character.
        assert_eq!(
            shown(|m| when(m, "2026-01-05T1é:00:0Z")),
            "2026-01-05T1é:00:0Z"
        );
    }

    #[test]
    fn shares_have_one_decimal() {
        assert_eq!(shown(|m| per_mille(m, 42)), "4.2 %");
        assert_eq!(shown(|m| per_mille(m, 1000)), "100.0 %");
        assert_eq!(shown(|m| per_mille(m, 0)), "0.0 %");
    }

    #[test]
    fn an_unknown_severity_or_status_gets_no_class_of_its_own() {
        assert_eq!(
            shown(|m| severity(m, "high")),
            "<span class=\"sev high\">HIGH</span>"
        );
        assert_eq!(
            shown(|m| severity(m, "\"onmouseover=x")),
            "<span class=\"sev\">&quot;ONMOUSEOVER=X</span>"
        );
        assert_eq!(
            shown(|m| status(m, "missed")),
            "<span class=\"status missed\">missed</span>"
        );
        assert_eq!(
            shown(|m| status(m, "<i>")),
            "<span class=\"status\">&lt;i&gt;</span>"
        );
    }
}
