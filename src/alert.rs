//! Alerts (DESIGN section 5): the record. How an alert is written out (JSON lines, one line of
//! text) is chosen per sink: [`crate::sink::encode`].

use std::sync::Arc;

/// Rule severity; maps to incident priority and a response deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_uppercase().as_str() {
            "LOW" => Some(Severity::Low),
            "MEDIUM" => Some(Severity::Medium),
            "HIGH" => Some(Severity::High),
            "CRITICAL" => Some(Severity::Critical),
            _ => None,
        }
    }
    /// `P0` … `P3`.
    pub fn priority(self) -> &'static str {
        match self {
            Severity::Critical => "P0",
            Severity::High => "P1",
            Severity::Medium => "P2",
            Severity::Low => "P3",
        }
    }
    /// Default response deadline.
    pub fn respond_within(self) -> &'static str {
        match self {
            Severity::Critical => "15m",
            Severity::High => "1h",
            Severity::Medium => "4h",
            Severity::Low => "24h",
        }
    }
}

/// One line of evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    pub source: Arc<str>,
    pub line: u64,
    pub ts: i64,
    pub raw: Box<[u8]>,
    pub seq: Option<u64>,
}

/// Deterministic alert id: hex of SHA-256(rule, key, window start), first 16 bytes.
pub fn alert_id(rule: &str, key: &str, window_start: i64) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(rule.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    h.update([0]);
    h.update(window_start.to_be_bytes());
    hex::encode(&h.finalize()[..16])
}

impl Alert {
    /// An alert secpipe raises about itself (`secpipe.archive_failed`,
    /// `secpipe.delivery_backlog` …) at wall-clock time `now` (µs): no rule window, no
    /// evidence; `key_field`/`key_value` name what it is about.
    pub fn about_secpipe(
        rule: &str,
        severity: Severity,
        (key_field, key_value): (&str, String),
        count: u64,
        now: i64,
        summary: String,
    ) -> Alert {
        Alert {
            id: alert_id(rule, &key_value, now),
            rule: rule.to_string(),
            severity,
            priority: severity.priority().to_string(),
            respond_within: severity.respond_within().to_string(),
            key_field: key_field.to_string(),
            key_value,
            count,
            threshold: 1,
            window_start: now,
            window_end: now,
            first_seen: now,
            last_seen: now,
            summary,
            evidence: Vec::new(),
            action: Vec::new(),
            unverified: false,
        }
    }
}

/// One alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// Deterministic: hex of a hash of rule, key and window start.
    pub id: String,
    pub rule: String,
    pub severity: Severity,
    pub priority: String,
    pub respond_within: String,
    /// Key field name (`src_ip`, `user`, …) and value (IPv6 as its /64 CIDR by default).
    pub key_field: String,
    pub key_value: String,
    /// The count, sum or number of distinct values that crossed the threshold.
    pub count: u64,
    pub threshold: u64,
    /// µs UTC.
    pub window_start: i64,
    pub window_end: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub summary: String,
    /// Up to 10 events.
    pub evidence: Vec<Evidence>,
    /// What to do about it, typed: a block is built from a parsed address, never from text
    /// ([`crate::action`]). Shown as `{"block": "203.0.113.7", "for": "15m"}`.
    pub action: Vec<crate::action::Action>,
    /// Replay `--force` of an archive that did not verify: some evidence rows are from files
    /// that failed verification. Printed only when true.
    pub unverified: bool,
}
