//! The rule model: the compiled [`Rule`] the engine runs, with its [`Primitive`], [`Field`]s,
//! [`Condition`]s and [`Escalation`]. How a rule is written in TOML (`rules/default.toml`,
//! `secpipe.toml`) and checked is [`load`]'s job.

mod load;

pub(crate) use load::apply_file;
#[cfg(test)]
pub(super) use load::blank_rule;

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::action::{Action, BlockTarget};
use crate::alert::Severity;
use crate::event::{Event, Kind};

pub(crate) use crate::duration::{SECOND, format as fmt_duration};

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
    pub(super) fn name(&self) -> &'static str {
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

/// An event field a rule can key on, select on, sum or count distinct values of: one of the
/// event fields that [`crate::event::EventField::in_rules`] allows.
pub(crate) use crate::event::{EventField as Field, FieldType, FieldValue};

/// The field a rule names, if rules may name it.
pub(super) fn rule_field(name: &str) -> Option<Field> {
    Field::parse(name).filter(|f| f.in_rules())
}

/// The names rules may use, in the events' order.
pub(super) fn rule_field_names() -> impl Iterator<Item = &'static str> {
    Field::all().filter(|f| f.in_rules()).map(Field::name)
}

/// True for a field whose values are addresses (what a `block` can be built from).
pub(super) fn is_address(field: Field) -> bool {
    field.field_type() == FieldType::Address
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
                Some(FieldValue::Time(t)) => want.parse::<i64>() == Ok(t),
                Some(FieldValue::Bool(b)) => want.parse::<bool>() == Ok(b),
                None => false,
            },
        }
    }
}

/// What a rule's alerts ask for: `action = { block = "{key}", for = "15m", ticket = "SEC" }`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RuleAction {
    /// `block = "{key}"`: block the alert's key address (or IPv6 prefix). Only a rule keyed by
    /// an address field may declare it (checked at load).
    pub block: Option<BlockSpec>,
    /// Every other (name, value) pair, shown in the alert as written: nothing is filled in.
    pub notes: Vec<(String, String)>,
}

/// A rule's `block`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BlockSpec {
    /// `for`, µs.
    pub duration: Option<i64>,
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
    /// What the rule's alerts ask for.
    pub action: RuleAction,
    /// One sentence; `{key}`, `{count}`, `{threshold}`, `{window}`, `{field}` are filled in.
    pub summary: String,
    pub enabled: bool,
    pub max_keys: Option<usize>,
}

impl Rule {
    /// The actions of an alert on a key whose address (if the key is one) is `key_addr`: the
    /// block is built from the address itself, never from text.
    pub(crate) fn actions_for(&self, key_addr: Option<IpAddr>) -> Vec<Action> {
        let block = self.action.block.as_ref().and_then(|block| {
            let target = BlockTarget::new(key_addr?, self.ipv6_prefix)?;
            Some(Action::Block {
                target,
                duration: block.duration,
            })
        });
        let notes = self.action.notes.iter().map(|(name, value)| Action::Note {
            name: name.clone(),
            value: value.clone(),
        });
        block.into_iter().chain(notes).collect()
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

fn fmt_clock(secs: u32) -> String {
    format!("{:02}:{:02}", secs / 3600, (secs / 60) % 60)
}

/// `HH:MM` → seconds after midnight (`24:00` allowed as an end).
pub(super) fn parse_clock(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 3600 + m * 60)
}
