//! The review's two charts, as inline SVG written by hand (no script, no library): alerts per
//! bucket stacked by severity, and a host's lines per bucket as a sparkline.
//!
//! Both go through `html::markup::Markup`, so every label and tooltip is escaped like the rest of the page.
//! Colours come from the page's CSS (`.sev-critical` …), in one place with the legend's. Every
//! coordinate is computed from the review alone and written to one decimal, so the same review
//! gives the same bytes. A series shorter than the bucket list reads as zeros; nothing here can
//! panic on a review read back from edited JSON.

use super::html::markup::Markup;
use super::model::Timeline;

/// Width and height of the alerts chart's coordinate system; the page scales it to fit.
const CHART_W: f64 = 960.0;
const CHART_H: f64 = 250.0;
/// Room for the count labels on the left and the bucket labels below.
const PLOT_LEFT: f64 = 52.0;
const PLOT_RIGHT: f64 = 12.0;
const PLOT_TOP: f64 = 12.0;
const PLOT_BOTTOM: f64 = 48.0;
/// At most this many bucket labels under the bars, so they never overlap.
const MAX_X_LABELS: usize = 12;

/// Severities bottom to top, with the CSS class that colours them.
const STACK: [(&str, &str); 4] = [
    ("critical", "sev-critical"),
    ("high", "sev-high"),
    ("medium", "sev-medium"),
    ("low", "sev-low"),
];

fn series<'t>(timeline: &'t Timeline, severity: &str) -> &'t [u64] {
    match severity {
        "critical" => &timeline.critical,
        "high" => &timeline.high,
        "medium" => &timeline.medium,
        _ => &timeline.low,
    }
}

fn at(values: &[u64], i: usize) -> u64 {
    values.get(i).copied().unwrap_or(0)
}

/// Alerts per bucket, stacked by severity (critical at the bottom), with a count axis, the
/// bucket starts below (date and, for hourly buckets, hour) and a tooltip per segment.
/// `bucket` is the review's bucket width (`hour` or `day`), for the axis title.
pub fn alert_bars(m: &mut Markup, timeline: &Timeline, bucket: &str) {
    let buckets = timeline.starts.len();
    let total = |i: usize| -> u64 {
        STACK
            .iter()
            .map(|(severity, _)| at(series(timeline, severity), i))
            .fold(0u64, u64::saturating_add)
    };
    let peak = (0..buckets).map(total).max().unwrap_or(0);
    let top = nice_ceiling(peak);
    let plot_w = CHART_W - PLOT_LEFT - PLOT_RIGHT;
    let plot_h = CHART_H - PLOT_TOP - PLOT_BOTTOM;
    let bottom = PLOT_TOP + plot_h;
    let slot = plot_w / buckets.max(1) as f64;
    // A gap between bars while they are wide enough to show one.
    let gap = if slot >= 6.0 { slot * 0.2 } else { 0.0 };
    let y_of = |v: u64| bottom - v as f64 / top as f64 * plot_h;

    m.tag("<svg class=\"chart\" viewBox=\"0 0 960 250\" role=\"img\" ")
        .tag("aria-labelledby=\"alerts-chart-title\" xmlns=\"http://www.w3.org/2000/svg\">")
        .tag("<title id=\"alerts-chart-title\">Alerts per ")
        .plain(bucket)
        .tag(", stacked by severity</title>");

    // Count axis: gridlines at 0, the middle (when it is a whole number) and the top.
    let mut ticks = vec![0, top];
    if top.is_multiple_of(2) {
        ticks.insert(1, top / 2);
    }
    for tick in ticks {
        let y = y_of(tick);
        m.tag("<line class=\"grid\" x1=\"")
            .coord(PLOT_LEFT)
            .tag("\" x2=\"")
            .coord(PLOT_LEFT + plot_w)
            .tag("\" y1=\"")
            .coord(y)
            .tag("\" y2=\"")
            .coord(y)
            .tag("\"/><text class=\"axis\" text-anchor=\"end\" x=\"")
            .coord(PLOT_LEFT - 6.0)
            .tag("\" y=\"")
            .coord(y + 4.0)
            .tag("\">")
            .count(tick)
            .tag("</text>");
    }

    for i in 0..buckets {
        let start = timeline.starts.get(i).map(String::as_str).unwrap_or("");
        let x = PLOT_LEFT + i as f64 * slot + gap / 2.0;
        let mut stacked = 0u64;
        for (severity, class) in STACK {
            let value = at(series(timeline, severity), i);
            if value == 0 {
                continue;
            }
            let below = stacked;
            stacked = stacked.saturating_add(value);
            let (y_top, y_bottom) = (y_of(stacked), y_of(below));
            m.tag("<rect class=\"")
                .tag(class)
                .tag("\" x=\"")
                .coord(x)
                .tag("\" y=\"")
                .coord(y_top)
                .tag("\" width=\"")
                .coord(slot - gap)
                .tag("\" height=\"")
                .coord(y_bottom - y_top)
                .tag("\"><title>")
                .plain(start)
                .tag(": ")
                .count(value)
                .tag(" ")
                .tag(severity)
                .tag("</title></rect>");
        }
    }

    // Bucket labels: a round step (every 6 hours, every day …) aligned to midnight for
    // hourly buckets; the date only where it changes from the label before, the hour on its
    // own line for hourly buckets.
    let hourly = bucket == "hour";
    let step = label_step(buckets, hourly);
    let first_hour = timeline
        .starts
        .first()
        .and_then(|s| s.get(11..13))
        .and_then(|h| h.parse::<usize>().ok())
        .filter(|h| *h < 24);
    let offset = match first_hour {
        Some(hour) if hourly && (24usize.is_multiple_of(step) || step.is_multiple_of(24)) => {
            let cycle = step.min(24);
            (cycle - hour % cycle) % cycle
        }
        _ => 0,
    };
    let mut last_date: Option<&str> = None;
    for i in (offset..buckets).step_by(step) {
        let start = timeline.starts.get(i).map(String::as_str).unwrap_or("");
        let x = PLOT_LEFT + (i as f64 + 0.5) * slot;
        m.tag("<line class=\"tick\" x1=\"")
            .coord(x)
            .tag("\" x2=\"")
            .coord(x)
            .tag("\" y1=\"")
            .coord(bottom)
            .tag("\" y2=\"")
            .coord(bottom + 4.0)
            .tag("\"/>");
        let (date, hour) = split_start(start);
        let mut row_y = bottom + 17.0;
        if hourly {
            m.tag("<text class=\"axis\" text-anchor=\"middle\" x=\"")
                .coord(x)
                .tag("\" y=\"")
                .coord(row_y)
                .tag("\">")
                .plain(hour)
                .tag("</text>");
            row_y += 14.0;
        }
        if last_date != Some(date) {
            m.tag("<text class=\"axis date\" text-anchor=\"middle\" x=\"")
                .coord(x)
                .tag("\" y=\"")
                .coord(row_y)
                .tag("\">")
                .plain(date)
                .tag("</text>");
            last_date = Some(date);
        }
    }
    m.tag("<line class=\"baseline\" x1=\"")
        .coord(PLOT_LEFT)
        .tag("\" x2=\"")
        .coord(PLOT_LEFT + plot_w)
        .tag("\" y1=\"")
        .coord(bottom)
        .tag("\" y2=\"")
        .coord(bottom)
        .tag("\"/></svg>");
}

/// Buckets between two labels: the smallest round step that keeps at most
/// [`MAX_X_LABELS`] labels.
fn label_step(buckets: usize, hourly: bool) -> usize {
    let steps: &[usize] = if hourly {
        &[1, 2, 3, 4, 6, 12, 24, 48, 168, 336, 720]
    } else {
        &[1, 2, 7, 14, 28, 56, 91, 182, 364]
    };
    steps
        .iter()
        .copied()
        .find(|step| buckets.div_ceil(*step) <= MAX_X_LABELS)
        .unwrap_or_else(|| buckets.div_ceil(MAX_X_LABELS).max(1))
}

/// `2026-01-05T14:00:00Z` → (`01-05`, `14:00`). A start of another shape (edited JSON) is
/// shown whole as the date, never cut inside a character.
fn split_start(start: &str) -> (&str, &str) {
    match (start.get(5..10), start.get(11..16)) {
        (Some(date), Some(hour)) if start.get(10..11) == Some("T") => (date, hour),
        _ => (start, ""),
    }
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `peak` (at least 1): the top of the count axis.
fn nice_ceiling(peak: u64) -> u64 {
    let mut magnitude = 1u64;
    loop {
        for factor in [1, 2, 5] {
            let candidate = magnitude.saturating_mul(factor);
            if candidate >= peak || candidate == u64::MAX {
                return candidate.max(1);
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// Width and height of a sparkline.
const SPARK_W: f64 = 160.0;
const SPARK_H: f64 = 28.0;

/// A host's lines per bucket as a small line chart scaled to its own peak, with the peak and
/// its bucket in the tooltip. `starts` are the timeline's bucket starts.
pub fn sparkline(m: &mut Markup, host: &str, values: &[u64], starts: &[String]) {
    let peak = values.iter().copied().max().unwrap_or(0);
    let peak_at = values
        .iter()
        .position(|&v| v == peak)
        .and_then(|i| starts.get(i))
        .map(String::as_str)
        .unwrap_or("");
    m.tag("<svg class=\"spark\" viewBox=\"0 0 160 28\" width=\"160\" height=\"28\" ")
        .tag("role=\"img\" xmlns=\"http://www.w3.org/2000/svg\"><title>")
        .plain(host)
        .tag(": lines per bucket, peak ")
        .count(peak);
    if !peak_at.is_empty() {
        m.tag(" at ").plain(peak_at);
    }
    m.tag("</title>");
    if values.is_empty() {
        m.tag("</svg>");
        return;
    }
    let step = if values.len() > 1 {
        SPARK_W / (values.len() - 1) as f64
    } else {
        0.0
    };
    // 2 units of margin so the stroke is not clipped at the top and bottom.
    let y_of = |v: u64| {
        if peak == 0 {
            SPARK_H - 2.0
        } else {
            SPARK_H - 2.0 - v as f64 / peak as f64 * (SPARK_H - 4.0)
        }
    };
    // The area under the line, then the line over it.
    m.tag("<polygon class=\"area\" points=\"0.0,")
        .coord(SPARK_H)
        .tag(" ");
    points(m, values, step, &y_of);
    m.tag(" ")
        .coord(if values.len() > 1 { SPARK_W } else { 0.0 })
        .tag(",")
        .coord(SPARK_H)
        .tag("\"/><polyline class=\"line\" points=\"");
    points(m, values, step, &y_of);
    if values.len() == 1 {
        // One bucket: a short level line rather than an invisible point.
        m.tag(" ").coord(SPARK_W).tag(",").coord(y_of(values[0]));
    }
    m.tag("\"/></svg>");
}

fn points(m: &mut Markup, values: &[u64], step: f64, y_of: &impl Fn(u64) -> f64) {
    for (i, &v) in values.iter().enumerate() {
        if i > 0 {
            m.tag(" ");
        }
        m.coord(i as f64 * step).tag(",").coord(y_of(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(starts: &[&str], high: &[u64], low: &[u64]) -> Timeline {
        Timeline {
            starts: starts.iter().map(|s| s.to_string()).collect(),
            lines: vec![0; starts.len()],
            critical: vec![0; starts.len()],
            high: high.to_vec(),
            medium: vec![],
            low: low.to_vec(),
        }
    }

    fn bars(t: &Timeline, bucket: &str) -> String {
        let mut m = Markup::new();
        alert_bars(&mut m, t, bucket);
        m.finish()
    }

    #[test]
    fn axis_tops_are_round_numbers() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(200), 200);
        assert_eq!(nice_ceiling(201), 500);
        assert_eq!(nice_ceiling(u64::MAX), u64::MAX);
    }

    #[test]
    fn segments_stack_and_carry_their_count() {
        let t = timeline(
            &["2026-01-05T00:00:00Z", "2026-01-05T01:00:00Z"],
            &[2, 0],
            &[3, 1],
        );
        let svg = bars(&t, "hour");
        // One rect per non-zero value: high and low in the first bucket, low in the second.
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert!(svg.contains("<title>2026-01-05T00:00:00Z: 2 high</title>"));
        assert!(svg.contains("<title>2026-01-05T00:00:00Z: 3 low</title>"));
        // The peak is 5, so the axis tops out at 5 and the stack of 5 reaches the top.
        assert!(svg.contains(">5</text>"), "{svg}");
        assert!(svg.contains(&format!("y=\"{PLOT_TOP:.1}\"")), "{svg}");
        // Hours under every bar, the date once.
        assert!(svg.contains(">00:00</text>") && svg.contains(">01:00</text>"));
        assert_eq!(svg.matches(">01-05</text>").count(), 1, "{svg}");
    }

    #[test]
    fn long_periods_get_at_most_twelve_labels() {
        let starts: Vec<String> = (0..168)
            .map(|h| format!("2026-01-{:02}T{:02}:00:00Z", 5 + h / 24, h % 24))
            .collect();
        let refs: Vec<&str> = starts.iter().map(String::as_str).collect();
        let svg = bars(&timeline(&refs, &[1; 168], &[]), "hour");
        assert!(
            svg.matches("class=\"tick\"").count() <= MAX_X_LABELS,
            "{svg}"
        );
        assert_eq!(svg.matches("<rect").count(), 168);
    }

    #[test]
    fn hostile_bucket_starts_and_short_series_cannot_break_the_chart() {
        let t = timeline(&["</svg><script>x</script>", "é"], &[1], &[]);
        let svg = bars(&t, "</title>");
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;/svg&gt;&lt;script&gt;"), "{svg}");
        assert_eq!(svg.matches("</svg>").count(), 1);
        assert_eq!(svg.matches("</title>").count(), 2, "{svg}");
    }

    #[test]
    fn a_sparkline_spans_its_width_and_its_peak() {
        let starts: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut m = Markup::new();
        sparkline(&mut m, "web-1", &[0, 10, 5], &starts);
        let svg = m.finish();
        assert!(
            svg.contains("points=\"0.0,26.0 80.0,2.0 160.0,14.0\""),
            "{svg}"
        );
        assert!(svg.contains("<title>web-1: lines per bucket, peak 10 at b</title>"));
    }

    #[test]
    fn a_host_name_cannot_close_the_sparkline() {
        let mut m = Markup::new();
        sparkline(
            &mut m,
            "</title></svg><img src=x onerror=alert(1)>",
            &[],
            &[],
        );
        let svg = m.finish();
        assert!(!svg.contains("<img"), "{svg}");
        assert_eq!(svg.matches("</svg>").count(), 1);
    }

    #[test]
    fn flat_and_single_bucket_sparklines_still_draw_a_line() {
        let mut m = Markup::new();
        sparkline(&mut m, "h", &[0, 0], &[]);
        assert!(m.finish().contains("points=\"0.0,26.0 160.0,26.0\""));
        let mut m = Markup::new();
        sparkline(&mut m, "h", &[4], &[]);
        assert!(m.finish().contains("points=\"0.0,2.0 160.0,2.0\""));
    }
}
