//! Rule declarations: the TOML format of `grammars/rules.toml` and `secpipe.toml`, and the
//! compiled [`Rule`] the engine runs.
//!
//! Every rule is one table under `[rules."<id>"]`. A user config uses the same format: a table
//! whose id names a default rule overrides only the fields it sets; a new id adds a rule.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::RuleError;
use crate::alert::Severity;
use crate::event::{Event, Kind};

/// µs in one second.
pub(crate) const SECOND: i64 = 1_000_000;

/// The counting primitive of a rule.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Primitive {
    /// N events (or attempts) in the window.
    Count,
    /// The sum of a numeric field (`count`, `bytes`, …) in the window.
    Sum(Field),
    /// N distinct values of a field in the window.
    Distinct(Field),
    /// Event local time of day in `[from, to)` seconds after midnight (wraps past midnight).
    TimeOfDay { from: u32, to: u32 },
    /// Any single event.
    Match,
    /// No event from the key for `window`.
    Silence,
}

impl Primitive {
    fn name(&self) -> &'static str {
        match self {
            Primitive::Count => "count",
            Primitive::Sum(_) => "sum",
            Primitive::Distinct(_) => "distinct",
            Primitive::TimeOfDay { .. } => "time_of_day",
            Primitive::Match => "match",
            Primitive::Silence => "silence",
        }
    }
}

/// An event field a rule can key on, select on, sum or count distinct values of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Source,
    Host,
    App,
    Pid,
    Kind,
    Reason,
    SrcIp,
    User,
    Actor,
    Namespace,
    Count,
    HttpMethod,
    HttpPath,
    HttpStatus,
    Bytes,
    Severity,
}

/// The value of a field in one event, borrowed.
#[derive(Debug, PartialEq)]
pub(crate) enum FieldValue<'a> {
    Text(&'a str),
    Number(u64),
    Ip(std::net::IpAddr),
}

impl Field {
    const ALL: [(&'static str, Field); 16] = [
        ("source", Field::Source),
        ("host", Field::Host),
        ("app", Field::App),
        ("pid", Field::Pid),
        ("kind", Field::Kind),
        ("reason", Field::Reason),
        ("src_ip", Field::SrcIp),
        ("user", Field::User),
        ("actor", Field::Actor),
        ("namespace", Field::Namespace),
        ("count", Field::Count),
        ("http_method", Field::HttpMethod),
        ("http_path", Field::HttpPath),
        ("http_status", Field::HttpStatus),
        ("bytes", Field::Bytes),
        ("severity", Field::Severity),
    ];

    pub(crate) fn parse(name: &str) -> Option<Field> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    pub(crate) fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }

    fn names() -> String {
        Self::ALL
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// This field's value in `ev`, if the event has one.
    pub(crate) fn get(self, ev: &Event) -> Option<FieldValue<'_>> {
        fn text(v: Option<&str>) -> Option<FieldValue<'_>> {
            v.map(FieldValue::Text)
        }
        match self {
            Field::Source => Some(FieldValue::Text(&ev.source)),
            Field::Host => text(ev.host.as_deref()),
            Field::App => text(ev.app.as_deref()),
            Field::Pid => ev.pid.map(|p| FieldValue::Number(p.into())),
            Field::Kind => Some(FieldValue::Text(ev.kind.as_str())),
            Field::Reason => text(ev.reason.as_deref()),
            Field::SrcIp => ev.src_ip.map(FieldValue::Ip),
            Field::User => text(ev.user.as_deref()),
            Field::Actor => text(ev.actor.as_deref()),
            Field::Namespace => text(ev.namespace.as_deref()),
            Field::Count => ev.count.map(FieldValue::Number),
            Field::HttpMethod => text(ev.http_method.as_deref()),
            Field::HttpPath => text(ev.http_path.as_deref()),
            Field::HttpStatus => ev.http_status.map(|s| FieldValue::Number(s.into())),
            Field::Bytes => ev.bytes.map(FieldValue::Number),
            Field::Severity => text(ev.severity.as_deref()),
        }
    }
}

/// `field = value` selection condition.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Condition {
    Equals(Field, String),
    Present(Field),
}

impl Condition {
    fn holds(&self, ev: &Event) -> bool {
        match self {
            Condition::Present(field) => field.get(ev).is_some(),
            Condition::Equals(field, want) => match field.get(ev) {
                Some(FieldValue::Text(t)) => t.eq_ignore_ascii_case(want),
                Some(FieldValue::Number(n)) => want.parse::<u64>() == Ok(n),
                Some(FieldValue::Ip(ip)) => crate::event::parse_ip(want) == Some(ip),
                None => false,
            },
        }
    }
}

/// A stronger severity when a tighter threshold is crossed (auth.bruteforce: HIGH at 5 in 1 min).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Escalation {
    pub threshold: u64,
    pub window: i64,
    pub severity: Severity,
}

/// One compiled rule.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Rule {
    pub id: String,
    pub description: String,
    pub primitive: Primitive,
    /// Event kinds the rule sees; empty means every kind.
    pub kinds: Vec<Kind>,
    pub conditions: Vec<Condition>,
    pub key: Field,
    /// IPv6 keys are grouped by this prefix length (128 = no grouping).
    pub ipv6_prefix: u8,
    /// Count login attempts rather than lines (DESIGN section 3).
    pub attempts: bool,
    /// The value that fires (≥); `> 100` in a runbook is `threshold = 101`.
    pub threshold: u64,
    /// µs.
    pub window: i64,
    /// µs; `None` means the window.
    pub cooldown: Option<i64>,
    pub severity: Severity,
    pub escalation: Option<Escalation>,
    pub respond_within: Option<String>,
    /// (name, value template) pairs; `{key}` is replaced by the key value.
    pub action: Vec<(String, String)>,
    /// One sentence; `{key}`, `{count}`, `{threshold}`, `{window}`, `{field}` are filled in.
    pub summary: String,
    pub enabled: bool,
    pub max_keys: Option<usize>,
}

impl Rule {
    /// The rule's `action` pairs for an alert on `key`: `{key}` in each value filled in.
    pub(crate) fn action_for(&self, key: &str) -> Vec<(String, String)> {
        self.action
            .iter()
            .map(|(name, value)| (name.clone(), value.replace("{key}", key)))
            .collect()
    }

    pub(crate) fn cooldown(&self) -> i64 {
        self.cooldown.unwrap_or(self.window)
    }

    /// How long a key's state can matter after its last event.
    pub(crate) fn horizon(&self) -> i64 {
        let esc = self.escalation.as_ref().map_or(0, |e| e.window);
        self.window.max(self.cooldown()).max(esc)
    }

    /// Kind and field conditions (not the time of day, which needs the zone).
    pub(crate) fn selects(&self, ev: &Event) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&ev.kind))
            && self.conditions.iter().all(|c| c.holds(ev))
    }

    /// One line for `secpipe rules`.
    pub(crate) fn describe(&self, out: &mut String) {
        let state = if self.enabled { "" } else { "  (disabled)" };
        let what = match &self.primitive {
            Primitive::Count => format!(
                "count ≥ {} in {}",
                self.threshold,
                fmt_duration(self.window)
            ),
            Primitive::Sum(f) => format!(
                "sum({}) ≥ {} in {}",
                f.name(),
                self.threshold,
                fmt_duration(self.window)
            ),
            Primitive::Distinct(f) => format!(
                "distinct({}) ≥ {} in {}",
                f.name(),
                self.threshold,
                fmt_duration(self.window)
            ),
            Primitive::TimeOfDay { from, to } => {
                format!("local time in [{}, {})", fmt_clock(*from), fmt_clock(*to))
            }
            Primitive::Match => "any event".to_string(),
            Primitive::Silence => format!("no event for {}", fmt_duration(self.window)),
        };
        let esc = match &self.escalation {
            Some(e) => format!(
                " ({} if ≥ {} in {})",
                e.severity.as_str(),
                e.threshold,
                fmt_duration(e.window)
            ),
            None => String::new(),
        };
        let cooldown = match self.primitive {
            Primitive::Silence => String::new(),
            _ => format!("  cooldown {}", fmt_duration(self.cooldown())),
        };
        let _ = writeln!(
            out,
            "{:<26} {:<8} key={:<10} {}{}{}  — {}{}",
            self.id,
            self.severity.as_str(),
            self.key.name(),
            what,
            esc,
            cooldown,
            self.description,
            state
        );
    }
}

/// `90` → `1m30s`; `300_000_000` → `5m`.
pub(crate) fn fmt_duration(micros: i64) -> String {
    if micros == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut secs = micros / SECOND;
    // Hours rather than days: runbooks say "24 h".
    for (unit, len) in [("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= len {
            let _ = write!(out, "{}{unit}", secs / len);
            secs %= len;
        }
    }
    let rest = micros % SECOND;
    if rest != 0 {
        let _ = write!(out, "{}ms", rest / 1000);
    }
    out
}

fn fmt_clock(secs: u32) -> String {
    format!("{:02}:{:02}", secs / 3600, (secs / 60) % 60)
}

/// Parse `10s`, `5m`, `1h30m`, `24h`, `1d`, `500ms` into µs.
pub(crate) fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let value: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => 1_000,
            "s" => SECOND,
            "m" => 60 * SECOND,
            "h" => 3_600 * SECOND,
            "d" => 86_400 * SECOND,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(value.checked_mul(unit)?)?;
    }
    Some(total)
}

/// `HH:MM` → seconds after midnight (`24:00` allowed as an end).
fn parse_clock(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 3600 + m * 60)
}

// ---------------------------------------------------------------------------------------------
// The TOML form.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    options: Option<OptionsSpec>,
    #[serde(default)]
    rules: BTreeMap<String, Spanned<RuleSpec>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OptionsSpec {
    max_keys: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    description: Option<String>,
    primitive: Option<Spanned<String>>,
    kinds: Option<Vec<Spanned<String>>>,
    #[serde(rename = "where")]
    conditions: Option<BTreeMap<String, Spanned<toml::Value>>>,
    has: Option<Vec<Spanned<String>>>,
    key: Option<Spanned<String>>,
    ipv6_prefix: Option<Spanned<i64>>,
    field: Option<Spanned<String>>,
    attempts: Option<bool>,
    threshold: Option<Spanned<i64>>,
    window: Option<Spanned<String>>,
    cooldown: Option<Spanned<String>>,
    severity: Option<Spanned<String>>,
    escalate: Option<Spanned<EscalateSpec>>,
    respond_within: Option<Spanned<String>>,
    from: Option<Spanned<String>>,
    to: Option<Spanned<String>>,
    action: Option<BTreeMap<String, String>>,
    summary: Option<String>,
    enabled: Option<bool>,
    max_keys: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EscalateSpec {
    threshold: Spanned<i64>,
    window: Spanned<String>,
    severity: Spanned<String>,
}

/// Where errors point.
struct Ctx<'a> {
    path: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> RuleError {
        let (line, column) = match &span {
            Some(span) => line_col(self.text, span.start),
            None => (1, 1),
        };
        RuleError {
            path: self.path.to_string(),
            line,
            column,
            message: message.into(),
            source_text: self.text.to_string(),
            span,
        }
    }

    fn at<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> RuleError {
        self.error(Some(value.span()), message)
    }
}

/// 1-based line and column (in characters) of byte `offset`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The closest known word, for "did you mean" hints.
fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (edit_distance(word, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

const RULE_KEYS: &[&str] = &[
    "description",
    "primitive",
    "kinds",
    "where",
    "has",
    "key",
    "ipv6_prefix",
    "field",
    "attempts",
    "threshold",
    "window",
    "cooldown",
    "severity",
    "escalate",
    "respond_within",
    "from",
    "to",
    "action",
    "summary",
    "enabled",
    "max_keys",
];

/// Turn toml's own error (syntax, unknown key, wrong type) into a [`RuleError`] with a hint.
fn toml_error(ctx: &Ctx, err: toml::de::Error) -> RuleError {
    let message = err.message().trim().to_string();
    let mut hint = String::new();
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some(word) = rest.split('`').next()
    {
        match closest(word, RULE_KEYS.iter().copied().chain(["options", "rules"])) {
            Some(k) => hint = format!("; did you mean `{k}`?"),
            None => hint = "; remove it or check the spelling".into(),
        }
    }
    ctx.error(err.span(), format!("{message}{hint}"))
}

/// Parse a rule file and apply it on top of `rules` (empty for the default pack itself).
pub(crate) fn apply_file(
    rules: &mut Vec<Rule>,
    default_max_keys: &mut Option<usize>,
    path: &str,
    text: &str,
) -> Result<(), RuleError> {
    let ctx = Ctx { path, text };
    let file: FileSpec = toml::from_str(text).map_err(|e| toml_error(&ctx, e))?;
    if let Some(options) = &file.options
        && let Some(max) = &options.max_keys
    {
        *default_max_keys = Some(positive(&ctx, max, "max_keys")? as usize);
    }
    // Apply in file order (the map is sorted by id), so `secpipe rules` lists them as written.
    let mut in_file_order: Vec<(&String, &Spanned<RuleSpec>)> = file.rules.iter().collect();
    in_file_order.sort_by_key(|(_, spec)| spec.span().start);
    for (id, spec) in in_file_order {
        match rules.iter_mut().find(|r| &r.id == id) {
            Some(rule) => apply_spec(&ctx, rule, spec.get_ref())?,
            None => {
                let mut rule = blank_rule(id);
                let spec_ref = spec.get_ref();
                if spec_ref.primitive.is_none() {
                    return Err(ctx.at(
                        spec,
                        format!(
                            "new rule `{id}` needs `primitive` (count, sum, distinct, \
                             time_of_day, match or silence); to change a default rule use one \
                             of its ids: {}",
                            rules
                                .iter()
                                .map(|r| r.id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                apply_spec(&ctx, &mut rule, spec_ref)?;
                validate_new(&ctx, spec, &rule)?;
                rules.push(rule);
            }
        }
    }
    Ok(())
}

pub(super) fn blank_rule(id: &str) -> Rule {
    Rule {
        id: id.to_string(),
        description: String::new(),
        primitive: Primitive::Match,
        kinds: Vec::new(),
        conditions: Vec::new(),
        key: Field::SrcIp,
        ipv6_prefix: 64,
        attempts: false,
        threshold: 1,
        window: 60 * SECOND,
        cooldown: None,
        severity: Severity::Medium,
        escalation: None,
        respond_within: None,
        action: Vec::new(),
        summary: String::new(),
        enabled: true,
        max_keys: None,
    }
}

fn validate_new(ctx: &Ctx, spec: &Spanned<RuleSpec>, rule: &Rule) -> Result<(), RuleError> {
    let s = spec.get_ref();
    if s.key.is_none() {
        return Err(ctx.at(
            spec,
            format!("rule `{}` needs `key` (e.g. key = \"src_ip\")", rule.id),
        ));
    }
    if matches!(
        rule.primitive,
        Primitive::Count | Primitive::Sum(_) | Primitive::Distinct(_)
    ) && s.window.is_none()
    {
        return Err(ctx.at(
            spec,
            format!("rule `{}` needs `window` (e.g. window = \"5m\")", rule.id),
        ));
    }
    Ok(())
}

fn positive(ctx: &Ctx, value: &Spanned<i64>, what: &str) -> Result<u64, RuleError> {
    match u64::try_from(*value.get_ref()) {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(ctx.at(value, format!("`{what}` must be a positive whole number"))),
    }
}

fn duration(ctx: &Ctx, value: &Spanned<String>, what: &str) -> Result<i64, RuleError> {
    parse_duration(value.get_ref()).ok_or_else(|| {
        ctx.at(
            value,
            format!(
                "`{what}` = {:?} is not a duration; write it like \"10s\", \"5m\", \"1h\" or \"24h\"",
                value.get_ref()
            ),
        )
    })
}

fn severity(ctx: &Ctx, value: &Spanned<String>) -> Result<Severity, RuleError> {
    Severity::parse(value.get_ref()).ok_or_else(|| {
        ctx.at(
            value,
            format!(
                "unknown severity {:?}; use LOW, MEDIUM, HIGH or CRITICAL",
                value.get_ref()
            ),
        )
    })
}

fn field(ctx: &Ctx, value: &Spanned<String>) -> Result<Field, RuleError> {
    Field::parse(value.get_ref()).ok_or_else(|| {
        let hint = closest(value.get_ref(), Field::ALL.iter().map(|(n, _)| *n)).map_or_else(
            || format!("; known fields: {}", Field::names()),
            |k| format!("; did you mean `{k}`?"),
        );
        ctx.at(
            value,
            format!("unknown event field {:?}{hint}", value.get_ref()),
        )
    })
}

fn apply_spec(ctx: &Ctx, rule: &mut Rule, s: &RuleSpec) -> Result<(), RuleError> {
    if let Some(d) = &s.description {
        rule.description = d.clone();
    }
    if let Some(kinds) = &s.kinds {
        rule.kinds = kinds
            .iter()
            .map(|k| {
                Kind::parse(k.get_ref()).ok_or_else(|| {
                    let names = Kind::ALL.map(|k| k.as_str());
                    let hint = closest(k.get_ref(), names).map_or_else(
                        || format!("; known kinds: {}", names.join(", ")),
                        |n| format!("; did you mean `{n}`?"),
                    );
                    ctx.at(k, format!("unknown event kind {:?}{hint}", k.get_ref()))
                })
            })
            .collect::<Result<_, _>>()?;
    }
    if s.conditions.is_some() || s.has.is_some() {
        rule.conditions.clear();
    }
    if let Some(conditions) = &s.conditions {
        for (name, value) in conditions {
            let f = Field::parse(name).ok_or_else(|| {
                ctx.at(
                    value,
                    format!(
                        "unknown event field `{name}` in `where`; known fields: {}",
                        Field::names()
                    ),
                )
            })?;
            let want = match value.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => {
                    return Err(ctx.at(
                        value,
                        "a `where` value must be a string, a number or a boolean",
                    ));
                }
            };
            rule.conditions.push(Condition::Equals(f, want));
        }
    }
    if let Some(has) = &s.has {
        for name in has {
            rule.conditions.push(Condition::Present(field(ctx, name)?));
        }
    }
    if let Some(k) = &s.key {
        rule.key = field(ctx, k)?;
    }
    if let Some(p) = &s.ipv6_prefix {
        rule.ipv6_prefix = match u8::try_from(*p.get_ref()) {
            Ok(v) if v <= 128 => v,
            _ => {
                return Err(ctx.at(
                    p,
                    "`ipv6_prefix` must be between 0 and 128 (64 groups a /64)",
                ));
            }
        };
    }
    if let Some(a) = s.attempts {
        rule.attempts = a;
    }
    if let Some(t) = &s.threshold {
        rule.threshold = positive(ctx, t, "threshold")?;
    }
    if let Some(w) = &s.window {
        rule.window = duration(ctx, w, "window")?;
        if rule.window <= 0 {
            return Err(ctx.at(w, "`window` must be longer than 0s"));
        }
    }
    if let Some(c) = &s.cooldown {
        rule.cooldown = Some(duration(ctx, c, "cooldown")?);
    }
    if let Some(sev) = &s.severity {
        rule.severity = severity(ctx, sev)?;
    }
    if let Some(e) = &s.escalate {
        let e = e.get_ref();
        rule.escalation = Some(Escalation {
            threshold: positive(ctx, &e.threshold, "escalate.threshold")?,
            window: duration(ctx, &e.window, "escalate.window")?,
            severity: severity(ctx, &e.severity)?,
        });
    }
    if let Some(r) = &s.respond_within {
        duration(ctx, r, "respond_within")?;
        rule.respond_within = Some(r.get_ref().clone());
    }
    if let Some(a) = &s.action {
        rule.action = a.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        // `block` first reads best (`{"block": ip, "for": "15m"}`).
        rule.action.sort_by_key(|(k, _)| k != "block");
    }
    if let Some(summary) = &s.summary {
        rule.summary = summary.clone();
    }
    if let Some(e) = s.enabled {
        rule.enabled = e;
    }
    if let Some(m) = &s.max_keys {
        rule.max_keys = Some(positive(ctx, m, "max_keys")? as usize);
    }
    // The primitive last: it may need `field`, `from` and `to`, set above or by the default.
    let primitive_name = s
        .primitive
        .as_ref()
        .map(|p| p.get_ref().as_str())
        .unwrap_or(rule.primitive.name());
    let primitive_span = s.primitive.as_ref().map(|p| p.span());
    rule.primitive = match primitive_name {
        "count" => Primitive::Count,
        "match" => Primitive::Match,
        "silence" => Primitive::Silence,
        "sum" | "distinct" => {
            let f = match (&s.field, &rule.primitive) {
                (Some(f), _) => field(ctx, f)?,
                (None, Primitive::Sum(f) | Primitive::Distinct(f)) => *f,
                (None, _) => {
                    return Err(ctx.error(
                        primitive_span,
                        format!("`{primitive_name}` needs `field` (e.g. field = \"count\")"),
                    ));
                }
            };
            if primitive_name == "sum" {
                Primitive::Sum(f)
            } else {
                Primitive::Distinct(f)
            }
        }
        "time_of_day" => {
            let (old_from, old_to) = match rule.primitive {
                Primitive::TimeOfDay { from, to } => (Some(from), Some(to)),
                _ => (None, None),
            };
            let clock = |v: &Option<Spanned<String>>, old: Option<u32>, what: &str| match v {
                Some(v) => parse_clock(v.get_ref()).ok_or_else(|| {
                    ctx.at(
                        v,
                        format!(
                            "`{what}` = {:?} is not a time; write it like \"02:00\"",
                            v.get_ref()
                        ),
                    )
                }),
                None => old.ok_or_else(|| {
                    ctx.error(
                        primitive_span.clone(),
                        format!("`time_of_day` needs `{what}` (e.g. {what} = \"02:00\")"),
                    )
                }),
            };
            Primitive::TimeOfDay {
                from: clock(&s.from, old_from, "from")?,
                to: clock(&s.to, old_to, "to")?,
            }
        }
        other => {
            let known = [
                "count",
                "sum",
                "distinct",
                "time_of_day",
                "match",
                "silence",
            ];
            let hint = closest(other, known).map_or_else(
                || format!("use one of {}", known.join(", ")),
                |k| format!("did you mean `{k}`?"),
            );
            return Err(ctx.error(
                primitive_span,
                format!("unknown primitive {other:?}; {hint}"),
            ));
        }
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Some(10 * SECOND));
        assert_eq!(parse_duration("5m"), Some(300 * SECOND));
        assert_eq!(parse_duration("1h30m"), Some(5_400 * SECOND));
        assert_eq!(parse_duration("24h"), Some(86_400 * SECOND));
        assert_eq!(parse_duration("500ms"), Some(500_000));
        assert_eq!(parse_duration("5 minutes"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(fmt_duration(5_400 * SECOND), "1h30m");
        assert_eq!(fmt_duration(86_400 * SECOND), "24h");
        assert_eq!(parse_duration("1d"), Some(86_400 * SECOND));
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncdé\nx", 0), (1, 1));
        assert_eq!(line_col("ab\ncdé\nx", 3), (2, 1));
        assert_eq!(line_col("ab\ncdé\nx", 8), (3, 1));
        assert_eq!(line_col("ab\ncdé\nx", 7), (2, 4));
    }

    #[test]
    fn hints() {
        assert_eq!(
            closest("treshold", RULE_KEYS.iter().copied()),
            Some("threshold")
        );
        assert_eq!(closest("zzzzzzzz", RULE_KEYS.iter().copied()), None);
    }
}
