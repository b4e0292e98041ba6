//! What travels on the bus: events from edges to workers, alerts from workers to the
//! delivering workers. JSON, so a message can be read with `nats stream view`, and decoded as
//! hostile input: a message that does not decode, or an event whose kind or role this build does
//! not know, is counted and skipped, never a panic.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::action::{Action, BlockTarget};
use crate::alert::{Alert, Evidence, Severity};
use crate::event::{Attempt, Event, Kind};

/// One event as an edge publishes it: every field detection reads, the raw line for evidence.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct WireEvent {
    pub source: String,
    pub line: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub ts: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub ts_inferred: bool,
    pub received: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_for: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Not sent: no rule reads it, and the raw line holds it (a third of a message's bytes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The exact line bytes when they are UTF-8 (nearly always)…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// …else base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_b64: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub attempt: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn text(v: &Option<Box<str>>) -> Option<String> {
    v.as_deref().map(str::to_string)
}

fn shared(v: &Option<Arc<str>>) -> Option<String> {
    v.as_deref().map(str::to_string)
}

impl WireEvent {
    pub fn from_event(ev: &Event) -> WireEvent {
        WireEvent {
            source: ev.source.to_string(),
            line: ev.line,
            seq: ev.seq,
            ts: ev.ts,
            ts_inferred: ev.ts_inferred,
            received: ev.received,
            host: shared(&ev.host),
            app: shared(&ev.app),
            pid: ev.pid,
            kind: ev.kind.as_str().to_string(),
            reason: shared(&ev.reason),
            src_ip: ev.src_ip,
            user: text(&ev.user),
            actor: text(&ev.actor),
            namespace: text(&ev.namespace),
            count: ev.count,
            http_method: text(&ev.http_method),
            http_path: text(&ev.http_path),
            http_status: ev.http_status,
            bytes: ev.bytes,
            forwarded_for: text(&ev.forwarded_for),
            severity: shared(&ev.severity),
            message: String::new(),
            raw: std::str::from_utf8(&ev.raw).ok().map(str::to_string),
            raw_b64: std::str::from_utf8(&ev.raw)
                .is_err()
                .then(|| base64::engine::general_purpose::STANDARD.encode(&ev.raw)),
            attempt: match ev.attempt {
                Attempt::None => String::new(),
                other => other.as_str().to_string(),
            },
        }
    }

    /// The event, or why it cannot be one (an unknown kind or role, raw that is not base64).
    pub fn into_event(self) -> Result<Event, String> {
        let kind =
            Kind::parse(&self.kind).ok_or_else(|| format!("unknown kind {:?}", self.kind))?;
        let attempt = if self.attempt.is_empty() {
            Attempt::None
        } else {
            Attempt::parse(&self.attempt)
                .ok_or_else(|| format!("unknown attempt role {:?}", self.attempt))?
        };
        let raw = match (self.raw, self.raw_b64) {
            (Some(text), None) => text.into_bytes(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| format!("raw: {e}"))?,
            (None, None) => Vec::new(),
            (Some(_), Some(_)) => return Err("raw given twice".to_string()),
        };
        let boxed = |v: Option<String>| v.map(String::into_boxed_str);
        let arc = |v: Option<String>| v.map(Arc::<str>::from);
        Ok(Event {
            source: Arc::from(self.source),
            line: self.line,
            seq: self.seq,
            ts: self.ts,
            ts_inferred: self.ts_inferred,
            received: self.received,
            host: arc(self.host),
            app: arc(self.app),
            pid: self.pid,
            kind,
            reason: arc(self.reason),
            // Canonical as classify makes it: an edge of another build cannot key a mapped
            // address apart from its plain form.
            src_ip: self.src_ip.map(crate::event::canonical_ip),
            user: boxed(self.user),
            actor: boxed(self.actor),
            namespace: boxed(self.namespace),
            count: self.count,
            http_method: boxed(self.http_method),
            http_path: boxed(self.http_path),
            http_status: self.http_status,
            bytes: self.bytes,
            forwarded_for: boxed(self.forwarded_for),
            severity: arc(self.severity),
            message: self.message.into_boxed_str(),
            raw: raw.into_boxed_slice(),
            attempt,
        })
    }
}

/// An edge's progress, sent to every partition at least once a second while it runs, so that
/// a partition none of its events go to still moves in event time.
#[derive(Serialize, Deserialize, Debug, Default, Clone, Copy, PartialEq)]
pub struct Beat {
    /// The newest event time (µs) the edge has published; `i64::MIN` before the first.
    pub newest: i64,
    /// The edge's clock (µs) when it sent the beat: how workers tell an edge that went quiet.
    #[serde(default)]
    pub sent: i64,
    /// The edge's wall clock (µs) when its input may be live (followed files, stdin,
    /// listeners): workers move the watermark with it, as `secpipe run` does when idle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall: Option<i64>,
}

/// One alert on the bus, as the workers publish it.
#[derive(Serialize, Deserialize, Debug)]
pub struct WireAlert {
    pub id: String,
    pub rule: String,
    pub severity: String,
    pub priority: String,
    pub respond_within: String,
    pub key_field: String,
    pub key_value: String,
    pub count: u64,
    pub threshold: u64,
    pub window_start: i64,
    pub window_end: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub summary: String,
    pub evidence: Vec<WireEvidence>,
    #[serde(default)]
    pub blocks: Vec<WireBlock>,
    #[serde(default)]
    pub notes: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct WireEvidence {
    pub source: String,
    pub line: u64,
    pub ts: i64,
    pub raw: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// A typed block: the network and prefix, rebuilt through [`BlockTarget::new`] on the other
/// side, so a message cannot carry a block the rule could not have made.
#[derive(Serialize, Deserialize, Debug)]
pub struct WireBlock {
    pub network: IpAddr,
    pub prefix: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
}

impl WireAlert {
    pub fn from_alert(a: &Alert) -> WireAlert {
        let mut blocks = Vec::new();
        let mut notes = Vec::new();
        for action in &a.action {
            match action {
                Action::Block { target, duration } => blocks.push(WireBlock {
                    network: target.network(),
                    prefix: target.prefix(),
                    duration: *duration,
                }),
                Action::Note { name, value } => notes.push((name.clone(), value.clone())),
            }
        }
        WireAlert {
            id: a.id.clone(),
            rule: a.rule.clone(),
            severity: a.severity.as_str().to_string(),
            priority: a.priority.clone(),
            respond_within: a.respond_within.clone(),
            key_field: a.key_field.clone(),
            key_value: a.key_value.clone(),
            count: a.count,
            threshold: a.threshold,
            window_start: a.window_start,
            window_end: a.window_end,
            first_seen: a.first_seen,
            last_seen: a.last_seen,
            summary: a.summary.clone(),
            evidence: a
                .evidence
                .iter()
                .map(|e| WireEvidence {
                    source: e.source.to_string(),
                    line: e.line,
                    ts: e.ts,
                    raw: base64::engine::general_purpose::STANDARD.encode(&e.raw),
                    seq: e.seq,
                })
                .collect(),
            blocks,
            notes,
        }
    }

    pub fn into_alert(self) -> Result<Alert, String> {
        let severity = Severity::parse(&self.severity)
            .ok_or_else(|| format!("unknown severity {:?}", self.severity))?;
        let mut evidence = Vec::with_capacity(self.evidence.len());
        for e in self.evidence {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(e.raw.as_bytes())
                .map_err(|err| format!("evidence raw: {err}"))?;
            evidence.push(Evidence {
                source: Arc::from(e.source),
                line: e.line,
                ts: e.ts,
                raw: raw.into_boxed_slice(),
                seq: e.seq,
            });
        }
        let mut action = Vec::new();
        for b in self.blocks {
            // A host route (/32, /128) or the prefix the rule cut IPv6 to; anything else is
            // not a block a rule makes.
            let ipv6_prefix = if b.network.is_ipv4() { 128 } else { b.prefix };
            let target = BlockTarget::new(b.network, ipv6_prefix)
                .filter(|t| t.prefix() == b.prefix && t.network() == b.network)
                .ok_or_else(|| format!("block {}/{} is not a network", b.network, b.prefix))?;
            action.push(Action::Block {
                target,
                duration: b.duration,
            });
        }
        for (name, value) in self.notes {
            action.push(Action::Note { name, value });
        }
        Ok(Alert {
            id: self.id,
            rule: self.rule,
            severity,
            priority: self.priority,
            respond_within: self.respond_within,
            key_field: self.key_field,
            key_value: self.key_value,
            count: self.count,
            threshold: self.threshold,
            window_start: self.window_start,
            window_end: self.window_end,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            summary: self.summary,
            evidence,
            action,
            unverified: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_survives_the_wire_field_for_field() {
        let ev = Event {
            source: Arc::from("auth.log"),
            line: 7,
            seq: Some(3),
            ts: 1_700_000_000_000_000,
            received: 1_700_000_000_000_001,
            host: Some(Arc::from("web1")),
            app: Some(Arc::from("sshd")),
            pid: Some(42),
            kind: Kind::AuthFailure,
            src_ip: "203.0.113.7".parse().ok(),
            user: Some("root".into()),
            count: Some(2),
            message: "Failed password".into(),
            raw: b"\xffnot utf-8".to_vec().into_boxed_slice(),
            attempt: Attempt::End,
            ..Event::default()
        };
        let text = serde_json::to_string(&WireEvent::from_event(&ev)).unwrap();
        let back: WireEvent = serde_json::from_str(&text).unwrap();
        // Everything but the message, which no rule reads and is not sent.
        let sent = Event {
            message: "".into(),
            ..ev.clone()
        };
        assert_eq!(back.into_event().unwrap(), sent);
        let utf8 = Event {
            raw: b"plain".to_vec().into_boxed_slice(),
            ..ev
        };
        let text = serde_json::to_string(&WireEvent::from_event(&utf8)).unwrap();
        assert!(text.contains(r#""raw":"plain""#), "{text}");
    }

    #[test]
    fn an_unknown_kind_or_role_is_refused_not_guessed() {
        let mut w = WireEvent::from_event(&Event::default());
        w.kind = "auth.maybe".into();
        assert!(w.into_event().unwrap_err().contains("unknown kind"));
        let mut w = WireEvent::from_event(&Event::default());
        w.attempt = "Sideways".into();
        assert!(w.into_event().unwrap_err().contains("unknown attempt role"));
    }

    #[test]
    fn a_block_on_the_wire_must_be_a_network_a_rule_could_make() {
        let wire = |network: &str, prefix: u8| WireAlert {
            id: "x".into(),
            rule: "r".into(),
            severity: "HIGH".into(),
            priority: "P1".into(),
            respond_within: "1h".into(),
            key_field: "src_ip".into(),
            key_value: network.into(),
            count: 1,
            threshold: 1,
            window_start: 0,
            window_end: 0,
            first_seen: 0,
            last_seen: 0,
            summary: String::new(),
            evidence: Vec::new(),
            blocks: vec![WireBlock {
                network: network.parse().unwrap(),
                prefix,
                duration: None,
            }],
            notes: Vec::new(),
        };
        assert!(wire("203.0.113.7", 32).into_alert().is_ok());
        assert!(wire("2001:db8::", 64).into_alert().is_ok());
        // A /0 smuggled in as a "block of one address", or host bits under a prefix.
        assert!(wire("203.0.113.7", 0).into_alert().is_err());
        assert!(wire("2001:db8::1", 64).into_alert().is_err());
    }
}
