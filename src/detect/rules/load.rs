//! Rules as written: the TOML form of `rules/default.toml` and of a user's `secpipe.toml`,
//! applied onto [`Rule`]s, with errors that name the line and column and suggest the closest
//! known word.
//!
//! Every rule is one table under `[rules."<id>"]`. A user config uses the same format: a table
//! whose id names a default rule overrides only the fields it sets; a new id adds a rule.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::{
    BlockSpec, Condition, Escalation, Field, Primitive, Rule, RuleAction, SECOND, is_address,
    parse_clock, rule_field, rule_field_names,
};
use crate::alert::Severity;
use crate::detect::RuleError;
use crate::event::Kind;
use crate::text::{edit_distance, line_col};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    options: Option<OptionsSpec>,
    #[serde(default)]
    rules: BTreeMap<String, Spanned<RuleSpec>>,
    /// Where alerts go: read by the sinks ([`crate::sink::routes`]), not here.
    #[serde(default, rename = "alerts")]
    _alerts: Option<toml::Value>,
    /// `[block]` is read and checked by `crate::block::config`, not here.
    #[serde(default, rename = "block")]
    _block: Option<toml::Value>,
    /// `[run]`, the flags of `secpipe run`, is read and checked by `crate::flags::config`.
    #[serde(default, rename = "run")]
    _run: Option<toml::Value>,
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
    action: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
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

fn known_fields() -> String {
    rule_field_names().collect::<Vec<_>>().join(", ")
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
        match closest(
            word,
            RULE_KEYS
                .iter()
                .copied()
                .chain(["options", "rules", "alerts", "block", "run"]),
        ) {
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
            Some(rule) => {
                apply_spec(&ctx, rule, spec.get_ref())?;
                validate_block(&ctx, spec, rule)?;
            }
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
                validate_block(&ctx, spec, &rule)?;
                rules.push(rule);
            }
        }
    }
    Ok(())
}

pub(crate) fn blank_rule(id: &str) -> Rule {
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
        action: RuleAction::default(),
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
    crate::duration::parse(value.get_ref()).map_err(|why| {
        ctx.at(
            value,
            format!(
                "`{what}` = {:?} is not a duration ({why}); write it like \"10s\", \"5m\", \
                 \"1m 30s\" or \"24h\"",
                value.get_ref()
            ),
        )
    })
}

/// The key a `block` names: the alert's key address, nothing else.
const BLOCK_KEY: &str = "{key}";

/// Narrowest IPv6 grouping a `block` may use: a /48 is a whole site; anything wider blocks
/// other people's networks (and `ipv6_prefix = 0` would block every IPv6 address).
const MIN_BLOCK_IPV6_PREFIX: u8 = 48;

/// `action = { block = "{key}", for = "15m", … }`. `block` is typed: the alert's key address,
/// never a string filled in. Every other pair is a note shown as written, so `{key}` in one is
/// refused rather than left looking as if it would be filled in (or run).
fn action(ctx: &Ctx, pairs: &BTreeMap<String, Spanned<String>>) -> Result<RuleAction, RuleError> {
    let mut out = RuleAction::default();
    if let Some(block) = pairs.get("block") {
        if block.get_ref().trim() != BLOCK_KEY {
            return Err(ctx.at(
                block,
                format!(
                    "`block` = {:?}: a block is built from the alert's key address; write \
                     block = \"{BLOCK_KEY}\"",
                    block.get_ref()
                ),
            ));
        }
        let duration = match pairs.get("for") {
            Some(d) => Some(duration(ctx, d, "action.for")?),
            None => None,
        };
        out.block = Some(BlockSpec { duration });
    }
    for (name, value) in pairs {
        if name == "block" || (name == "for" && out.block.is_some()) {
            continue;
        }
        if value.get_ref().contains(BLOCK_KEY) {
            return Err(ctx.at(
                value,
                format!(
                    "action `{name}` is shown as written and `{BLOCK_KEY}` is not filled in: only \
                     `block` takes the key (block = \"{BLOCK_KEY}\"); the alert carries the key \
                     in `key.value`"
                ),
            ));
        }
        out.notes.push((name.clone(), value.get_ref().clone()));
    }
    Ok(out)
}

/// A rule that blocks must be keyed by an address, grouped no wider than
/// [`MIN_BLOCK_IPV6_PREFIX`]. Checked once the whole table is applied, since a user config may
/// change the key of a default rule that blocks.
fn validate_block(ctx: &Ctx, spec: &Spanned<RuleSpec>, rule: &Rule) -> Result<(), RuleError> {
    if rule.action.block.is_none() {
        return Ok(());
    }
    let s = spec.get_ref();
    // Point at what this file changed: the key, the action, else the rule's table.
    let span = s
        .key
        .as_ref()
        .map(|k| k.span())
        .or_else(|| s.action.as_ref().map(|a| a.span()))
        .unwrap_or_else(|| spec.span());
    if !is_address(rule.key) {
        return Err(ctx.error(
            Some(span),
            format!(
                "rule `{}` declares `block` but its key is `{}`, not an address: a block is \
                 built from the key address, so use key = \"src_ip\" or remove `block` from \
                 `action`",
                rule.id,
                rule.key.name()
            ),
        ));
    }
    if rule.ipv6_prefix < MIN_BLOCK_IPV6_PREFIX {
        let span = s.ipv6_prefix.as_ref().map_or(span, |p| p.span());
        return Err(ctx.error(
            Some(span),
            format!(
                "rule `{}` declares `block` with ipv6_prefix = {}: a block that wide reaches \
                 other people's networks; use {MIN_BLOCK_IPV6_PREFIX} to 128 (64 blocks a /64)",
                rule.id, rule.ipv6_prefix
            ),
        ));
    }
    Ok(())
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
    rule_field(value.get_ref()).ok_or_else(|| {
        let hint = closest(value.get_ref(), rule_field_names()).map_or_else(
            || format!("; known fields: {}", known_fields()),
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
            let f = rule_field(name).ok_or_else(|| {
                ctx.at(
                    value,
                    format!(
                        "unknown event field `{name}` in `where`; known fields: {}",
                        known_fields()
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
        rule.action = action(ctx, a.get_ref())?;
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
    fn hints() {
        assert_eq!(
            closest("treshold", RULE_KEYS.iter().copied()),
            Some("threshold")
        );
        assert_eq!(closest("zzzzzzzz", RULE_KEYS.iter().copied()), None);
    }

    fn load(config: &str) -> Result<Vec<Rule>, RuleError> {
        let mut rules = Vec::new();
        apply_file(&mut rules, &mut None, "c.toml", config)?;
        Ok(rules)
    }

    const USER_RULE: &str = "[rules.u]\nprimitive = \"match\"\nkey = \"user\"\n";

    #[test]
    fn block_on_a_user_key_is_refused_where_the_key_is_set() {
        let err = load(&format!("{USER_RULE}action = {{ block = \"{{key}}\" }}\n"))
            .expect_err("a user-keyed block loaded");
        assert_eq!((err.line, err.column), (3, 7), "{err}");
        assert!(err.message.contains("not an address"), "{err}");
    }

    #[test]
    fn block_names_the_key_and_nothing_else() {
        for value in ["1.2.3.4", "{key}; rm -rf /", "0.0.0.0/0", ""] {
            let err = load(&format!(
                "[rules.b]\nprimitive = \"match\"\nkey = \"src_ip\"\naction = {{ block = {value:?} }}\n"
            ))
            .expect_err(value);
            assert_eq!((err.line, err.column), (4, 20), "{value}: {err}");
        }
        let rules = load(
            "[rules.b]\nprimitive = \"match\"\nkey = \"src_ip\"\n\
             action = { block = \"{key}\", for = \"1h\", ticket = \"SEC-1\" }\n",
        )
        .expect("a typed block");
        assert_eq!(
            rules[0].action.block,
            Some(BlockSpec {
                duration: Some(3_600 * SECOND)
            })
        );
        assert_eq!(rules[0].action.notes, [("ticket".into(), "SEC-1".into())]);
    }

    #[test]
    fn a_block_duration_is_a_duration() {
        let err = load(
            "[rules.b]\nprimitive = \"match\"\nkey = \"src_ip\"\n\
             action = { block = \"{key}\", for = \"a while\" }\n",
        )
        .expect_err("for = a while");
        assert_eq!((err.line, err.column), (4, 35), "{err}");
    }

    #[test]
    fn notes_are_shown_as_written_and_may_not_carry_the_key() {
        let err = load(&format!(
            "{USER_RULE}action = {{ page = \"oncall {{key}}\" }}\n"
        ))
        .expect_err("{key} in a note");
        assert_eq!((err.line, err.column), (4, 19), "{err}");
        let rules =
            load(&format!("{USER_RULE}action = {{ page = \"oncall\" }}\n")).expect("a note");
        assert_eq!(rules[0].action.notes, [("page".into(), "oncall".into())]);
        assert_eq!(rules[0].action.block, None);
    }

    #[test]
    fn windows_take_the_spellings_flags_take() {
        for window in ["1m 30s", "1m30s", "90s", " 1m  30s "] {
            let rules = load(&format!(
                "[rules.w]\nprimitive = \"count\"\nkey = \"host\"\nwindow = {window:?}\n"
            ))
            .unwrap_or_else(|e| panic!("{window}: {e}"));
            assert_eq!(rules[0].window, 90 * SECOND, "{window}");
        }
        let err = load("[rules.w]\nprimitive = \"count\"\nkey = \"host\"\nwindow = \"1mo\"\n")
            .expect_err("a month has no fixed length");
        assert_eq!((err.line, err.column), (4, 10), "{err}");
    }
}
