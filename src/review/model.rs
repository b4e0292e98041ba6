//! What a review says, as plain data: the JSON output is this, serialized; the HTML and
//! Markdown renderings read only this. So every number a page shows is in the JSON, and a page
//! can be rendered again later from stored JSON.
//!
//! Times are RFC 3339 UTC strings with second precision (`2026-01-05T14:00:00Z`). Lists are
//! already in the order they are shown. Text that came from logs (addresses, user names, host
//! names, rule keys, summaries) is kept as the archive holds it, only cut to
//! [`MAX_TEXT_CHARS`](super::MAX_TEXT_CHARS); each renderer escapes it for its own format.

use serde::{Deserialize, Serialize};

/// Version of this JSON shape; bumped when a field changes meaning or goes away.
pub const REVIEW_VERSION: u32 = 1;

/// One security review of an archive over a period.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub v: u32,
    /// What the review rests on: the archive, its head and what verify said.
    pub archive: ArchiveFacts,
    pub period: Period,
    pub counts: Counts,
    /// Lines and alerts per bucket of the period, for the charts.
    pub timeline: Timeline,
    pub alerts: AlertTotals,
    /// P0–P3 items and whether their response deadline was met.
    pub response: Response,
    /// Top source addresses (events with a `src_ip`).
    pub sources: TopList<SourceRow>,
    /// The same events by prefix: /24 for IPv4, /64 for IPv6.
    pub prefixes: TopList<PrefixRow>,
    /// Targeted user names (authentication events).
    pub users: TopList<UserRow>,
    /// Actors of data and API events.
    pub actors: TopList<ActorRow>,
    /// Every rule that fired in the period (and the previous one), by alerts.
    pub rules: Vec<RuleRow>,
    pub hosts: Hosts,
    pub bans: Bans,
    /// Tallies that hit their memory cap: their counts are lower bounds (see each list's
    /// `exact`), named here so the page can say so.
    pub limits: Vec<String>,
}

/// The archive and how far it can be trusted. A renderer shows `verdict` first, in red unless
/// it is `intact`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArchiveFacts {
    /// The archive id from its manifests.
    pub id: Option<String>,
    /// Hex SHA-256 of the last manifest line (anchor it elsewhere).
    pub head: Option<String>,
    pub manifests: u64,
    /// `intact`, `tampered`, `unsigned` or `inconclusive`: `secpipe verify`'s status.
    pub verdict: String,
    /// `good`, `not_checked`, `unsigned` or `bad`.
    pub signature: String,
    /// Verify's findings, first problem first, one line each (empty when intact).
    pub problems: Vec<String>,
    /// Verify's warnings (unsealed tails …).
    pub warnings: Vec<String>,
}

/// The period the review covers and the one it compares with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Period {
    /// `day`, `week` or `custom`.
    pub kind: String,
    /// Inclusive start, exclusive end.
    pub from: String,
    pub to: String,
    /// The period of the same length just before: `[previous_from, from)`.
    pub previous_from: String,
    pub previous_to: String,
    /// Width of one chart bucket: `hour` (periods up to 7 days) or `day`.
    pub bucket: String,
    /// `--lateness` used to count late events.
    pub lateness: String,
}

/// Headline counts, each with the previous period's value beside it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Archived lines (event rows) with event time in the period.
    pub lines: Compared,
    /// Events by kind, most first; `unparsed` and `other` included.
    pub kinds: Vec<KindCount>,
    /// Lines no envelope matched (`kind = unparsed`).
    pub unparsed: Compared,
    /// `unparsed / lines`, in per mille (integer, so the JSON is byte-stable).
    pub unparsed_per_mille: u64,
    /// Lines without a timestamp of their own (`ts_inferred`).
    pub ts_inferred: Compared,
    /// Rows older than the watermark when they were archived: the highest event time of the
    /// rows archived before them (in `seq` order) minus `lateness`.
    pub late: Compared,
}

/// A number and the same number over the previous period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compared {
    pub now: u64,
    pub previous: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCount {
    pub kind: String,
    pub count: Compared,
}

/// Per-bucket series over the period; every series has `starts.len()` values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// Start of each bucket.
    pub starts: Vec<String>,
    pub lines: Vec<u64>,
    /// Alerts raised in each bucket by severity (detection alerts and secpipe's own records).
    pub critical: Vec<u64>,
    pub high: Vec<u64>,
    pub medium: Vec<u64>,
    pub low: Vec<u64>,
}

/// Alerts decided in the period, by severity. An alert is decided at its `last_seen` (the event
/// that crossed the threshold), or for a silence at its `window_end` (the end of the quiet
/// window): the later of the two. Bans and unbans are responses, not alerts: see [`Bans`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertTotals {
    pub total: Compared,
    pub critical: Compared,
    pub high: Compared,
    pub medium: Compared,
    pub low: Compared,
}

/// Response deadlines. An alert's deadline is its raise time plus its `respond_within`. A
/// response on record is an enforced ban (`secpipe.ban`, mode `enforce`) caused by the alert,
/// or of the alert's key in force by its deadline; a simulated ban blocked nothing and answers
/// nothing. Nothing else reaches the archive, so an alert answered by hand shows as `missed`
/// or `open`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// One row per priority, P0 first.
    pub priorities: Vec<PriorityRow>,
    /// The items themselves: not met first (missed, then open), then by priority and time; at
    /// most [`MAX_ITEMS`](super::MAX_ITEMS).
    pub items: Vec<ResponseItem>,
    /// How many items there were in all.
    pub items_total: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityRow {
    /// `P0` … `P3`.
    pub priority: String,
    pub alerts: u64,
    /// Answered (a ban on record) by the deadline.
    pub met: u64,
    /// Deadline passed before the end of the period without a response on record (including
    /// one answered late).
    pub missed: u64,
    /// Not answered, deadline after the end of the period.
    pub open: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseItem {
    pub id: String,
    pub rule: String,
    pub severity: String,
    pub priority: String,
    pub key_field: String,
    pub key: String,
    pub raised: String,
    pub deadline: String,
    /// `met`, `late` (answered after the deadline), `missed` or `open`.
    pub status: String,
    /// When the response was recorded, if one was.
    pub answered: Option<String>,
    pub summary: String,
}

/// A top-N list over a tally with a memory cap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopList<T> {
    pub rows: Vec<T>,
    /// Distinct values seen (when not `exact`, an upper bound: more than the tally's cap were
    /// seen, and a value dropped at the cap and seen again counts twice).
    pub distinct: u64,
    /// False when the tally hit its cap: counts are then lower bounds, each short by at most
    /// `max_error`.
    pub exact: bool,
    pub max_error: u64,
}

/// Empty and exact: nothing was counted, so nothing was dropped.
impl<T> Default for TopList<T> {
    fn default() -> Self {
        TopList {
            rows: Vec::new(),
            distinct: 0,
            exact: true,
            max_error: 0,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRow {
    pub address: String,
    pub events: u64,
    /// `auth.failure` events from it.
    pub failures: u64,
    /// Alerts keyed on it (or on its /64).
    pub alerts: u64,
    /// Whether an enforced ban of it (or of its /64) is on record in the period (a simulated
    /// one is listed under bans only).
    pub banned: bool,
    /// Not seen at all in the previous period.
    pub new: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixRow {
    /// `203.0.113.0/24` or `2001:db8::/64`.
    pub prefix: String,
    pub events: u64,
    pub failures: u64,
    pub new: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub user: String,
    pub failures: u64,
    pub successes: u64,
    pub new: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorRow {
    pub actor: String,
    pub events: u64,
    /// Sum of the events' `count` (records read, deleted, searched …).
    pub records: u64,
    pub new: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRow {
    pub rule: String,
    /// The highest severity it fired at.
    pub severity: String,
    pub priority: String,
    pub alerts: Compared,
    /// Distinct keys it fired for in the period (capped at [`MAX_KEYS_PER_RULE`](super::MAX_KEYS_PER_RULE)).
    pub keys: u64,
    pub first: Option<String>,
    pub last: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hosts {
    /// The busiest hosts, each with a sparkline of lines per bucket.
    pub rows: Vec<HostRow>,
    /// Hosts with no log in the last 24 h of the period (seen in it or the previous one), or
    /// named by a `log.silence` alert in it.
    pub silent: Vec<SilentHost>,
    pub distinct: u64,
    pub exact: bool,
}

/// No hosts, and exact.
impl Default for Hosts {
    fn default() -> Self {
        Hosts {
            rows: Vec::new(),
            silent: Vec::new(),
            distinct: 0,
            exact: true,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRow {
    pub host: String,
    pub lines: u64,
    /// `log.error` events.
    pub errors: u64,
    pub last_event: Option<String>,
    /// Lines per timeline bucket.
    pub sparkline: Vec<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilentHost {
    pub host: String,
    /// Its last event (in the period or the previous one), if any.
    pub last_event: Option<String>,
    /// Its lines in both periods (the list is ordered by alerts, then by this).
    pub lines: u64,
    /// `log.silence` alerts about it in the period.
    pub silence_alerts: u64,
}

/// Bans on record (`secpipe.ban` / `secpipe.unban` / `secpipe.block_overflow` rows of the
/// alerts table) in the period.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bans {
    pub issued: Compared,
    /// Of them, `simulate` (would have banned).
    pub simulated: u64,
    pub lifted: u64,
    /// Minutes in which the circuit breaker refused more bans.
    pub overflows: u64,
    /// The bans, in time order; at most [`MAX_ITEMS`](super::MAX_ITEMS).
    pub rows: Vec<BanRow>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanRow {
    pub address: String,
    pub since: String,
    pub until: String,
    /// `enforce` or `simulate`.
    pub mode: String,
    /// The rule of the alert that caused it.
    pub cause_rule: String,
    /// Which ban of this address it is (escalation).
    pub nth: u64,
}
