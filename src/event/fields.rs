//! The one list of event fields (DESIGN section 3): name, type, how to read one from an
//! [`Event`] and how to set one from captured text. Rules (`key`, `field`, `where`), grammar
//! captures (`(?P<user>…)`), test-file expectations (`# expect: user=root`) and the
//! `secpipe events` JSON writer name fields from here, so a new field is added once.
//!
//! ```
//! use secpipe::event::{Event, EventField, FieldValue};
//! let mut ev = Event::default();
//! assert!(EventField::User.set_captured(&mut ev, " root "));
//! assert_eq!(EventField::parse("user").unwrap().get(&ev), Some(FieldValue::Text("root")));
//! // An address that does not parse (a host name in `rhost=`) leaves the field alone.
//! assert!(!EventField::SrcIp.set_captured(&mut ev, "evil.example"));
//! assert_eq!(ev.src_ip, None);
//! ```

use std::net::IpAddr;

use super::{Event, parse_ip};

/// An event field, in the order `secpipe events` prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventField {
    Line,
    Source,
    Ts,
    TsInferred,
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
    ForwardedFor,
    Severity,
    Message,
}

/// What kind of value a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Number,
    /// An IP address, canonical (`::ffff:a.b.c.d` is `a.b.c.d`).
    Address,
    /// µs UTC.
    Time,
    Bool,
}

/// The value of a field in one event, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValue<'a> {
    Text(&'a str),
    Number(u64),
    Ip(IpAddr),
    Time(i64),
    Bool(bool),
}

/// Who may name a field, beside `secpipe events` (which prints them all).
#[derive(Clone, Copy)]
struct Uses {
    /// A rule's `key`, `field`, `where` and `has`.
    rule: bool,
    /// A grammar capture group.
    capture: bool,
    /// A test file's `# expect:`.
    expect: bool,
    /// A column of the archive's events table.
    archived: bool,
}

const RULE: Uses = Uses {
    rule: true,
    capture: false,
    expect: true,
    archived: true,
};
const ALL_USES: Uses = Uses {
    rule: true,
    capture: true,
    expect: true,
    archived: true,
};
/// Printed and archived; no rule, grammar or test names it.
const RECORDED: Uses = Uses {
    rule: false,
    capture: false,
    expect: false,
    archived: true,
};

/// (field, name, type, uses), in printing order.
const FIELDS: [(EventField, &str, FieldType, Uses); 21] = [
    (EventField::Line, "line", FieldType::Number, RECORDED),
    (
        EventField::Source,
        "source",
        FieldType::Text,
        Uses {
            expect: false,
            ..RULE
        },
    ),
    (
        EventField::Ts,
        "ts",
        FieldType::Time,
        Uses {
            expect: true,
            ..RECORDED
        },
    ),
    (
        EventField::TsInferred,
        "ts_inferred",
        FieldType::Bool,
        RECORDED,
    ),
    (EventField::Host, "host", FieldType::Text, RULE),
    (EventField::App, "app", FieldType::Text, RULE),
    (EventField::Pid, "pid", FieldType::Number, RULE),
    (EventField::Kind, "kind", FieldType::Text, RULE),
    (EventField::Reason, "reason", FieldType::Text, ALL_USES),
    (EventField::SrcIp, "src_ip", FieldType::Address, ALL_USES),
    (EventField::User, "user", FieldType::Text, ALL_USES),
    (EventField::Actor, "actor", FieldType::Text, ALL_USES),
    (
        EventField::Namespace,
        "namespace",
        FieldType::Text,
        ALL_USES,
    ),
    (EventField::Count, "count", FieldType::Number, ALL_USES),
    (
        EventField::HttpMethod,
        "http_method",
        FieldType::Text,
        ALL_USES,
    ),
    (EventField::HttpPath, "http_path", FieldType::Text, ALL_USES),
    (
        EventField::HttpStatus,
        "http_status",
        FieldType::Number,
        ALL_USES,
    ),
    (EventField::Bytes, "bytes", FieldType::Number, ALL_USES),
    // Evidence only (the raw line, which the archive keeps, holds it too).
    (
        EventField::ForwardedFor,
        "forwarded_for",
        FieldType::Text,
        Uses {
            archived: false,
            ..RECORDED
        },
    ),
    (EventField::Severity, "severity", FieldType::Text, RULE),
    (EventField::Message, "message", FieldType::Text, RECORDED),
];

impl EventField {
    /// Every field, in printing order.
    pub fn all() -> impl Iterator<Item = EventField> {
        FIELDS.iter().map(|f| f.0)
    }

    /// The field of this name (any field; see [`EventField::in_rules`] and friends for who may
    /// name which).
    pub fn parse(name: &str) -> Option<EventField> {
        FIELDS.iter().find(|f| f.1 == name).map(|f| f.0)
    }

    fn entry(self) -> &'static (EventField, &'static str, FieldType, Uses) {
        // FIELDS lists the variants in declaration order (pinned by a test).
        &FIELDS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.entry().1
    }

    pub fn field_type(self) -> FieldType {
        self.entry().2
    }

    /// A rule may key on, sum, count or select by this field.
    pub fn in_rules(self) -> bool {
        self.entry().3.rule
    }

    /// A grammar capture group of this name fills the field.
    pub fn capturable(self) -> bool {
        self.entry().3.capture
    }

    /// A test file may expect a value of this field.
    pub fn expectable(self) -> bool {
        self.entry().3.expect
    }

    /// The archive's events table has a column of this name.
    pub fn archived(self) -> bool {
        self.entry().3.archived
    }

    /// This field's value in `ev`, if the event has one.
    #[inline]
    pub fn get(self, ev: &Event) -> Option<FieldValue<'_>> {
        fn text(v: Option<&str>) -> Option<FieldValue<'_>> {
            v.map(FieldValue::Text)
        }
        match self {
            EventField::Line => Some(FieldValue::Number(ev.line)),
            EventField::Source => Some(FieldValue::Text(&ev.source)),
            EventField::Ts => Some(FieldValue::Time(ev.ts)),
            EventField::TsInferred => Some(FieldValue::Bool(ev.ts_inferred)),
            EventField::Host => text(ev.host.as_deref()),
            EventField::App => text(ev.app.as_deref()),
            EventField::Pid => ev.pid.map(|p| FieldValue::Number(p.into())),
            EventField::Kind => Some(FieldValue::Text(ev.kind.as_str())),
            EventField::Reason => text(ev.reason.as_deref()),
            EventField::SrcIp => ev.src_ip.map(FieldValue::Ip),
            EventField::User => text(ev.user.as_deref()),
            EventField::Actor => text(ev.actor.as_deref()),
            EventField::Namespace => text(ev.namespace.as_deref()),
            EventField::Count => ev.count.map(FieldValue::Number),
            EventField::HttpMethod => text(ev.http_method.as_deref()),
            EventField::HttpPath => text(ev.http_path.as_deref()),
            EventField::HttpStatus => ev.http_status.map(|s| FieldValue::Number(s.into())),
            EventField::Bytes => ev.bytes.map(FieldValue::Number),
            EventField::ForwardedFor => text(ev.forwarded_for.as_deref()),
            EventField::Severity => text(ev.severity.as_deref()),
            EventField::Message => Some(FieldValue::Text(&ev.message)),
        }
    }

    /// Store a captured value; true when the field was set. Empty and `-` (the logs' "no
    /// value") leave the field alone, as does a value that does not parse as the field's type
    /// (a host name in `rhost=`, a number too large). Only [`EventField::capturable`] fields
    /// are set; any other is left alone.
    #[inline]
    pub fn set_captured(self, ev: &mut Event, text: &str) -> bool {
        let text = text.trim();
        if text.is_empty() || text == "-" {
            return false;
        }
        fn number<T: std::str::FromStr>(slot: &mut Option<T>, text: &str) -> bool {
            match text.parse() {
                Ok(n) => {
                    *slot = Some(n);
                    true
                }
                Err(_) => false,
            }
        }
        match self {
            EventField::SrcIp => match parse_ip(text) {
                Some(ip) => {
                    ev.src_ip = Some(ip);
                    true
                }
                None => false,
            },
            EventField::User => {
                ev.user = Some(text.into());
                true
            }
            EventField::Actor => {
                ev.actor = Some(text.into());
                true
            }
            EventField::Namespace => {
                ev.namespace = Some(text.into());
                true
            }
            EventField::HttpMethod => {
                ev.http_method = Some(text.into());
                true
            }
            EventField::HttpPath => {
                ev.http_path = Some(text.into());
                true
            }
            EventField::Reason => {
                ev.reason = Some(text.into());
                true
            }
            EventField::Count => number(&mut ev.count, text),
            EventField::Bytes => number(&mut ev.bytes, text),
            EventField::HttpStatus => number(&mut ev.http_status, text),
            EventField::Line
            | EventField::Source
            | EventField::Ts
            | EventField::TsInferred
            | EventField::Host
            | EventField::App
            | EventField::Pid
            | EventField::Kind
            | EventField::ForwardedFor
            | EventField::Severity
            | EventField::Message => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_the_variants_in_declaration_order() {
        for (i, entry) in FIELDS.iter().enumerate() {
            assert_eq!(entry.0 as usize, i, "{}", entry.1);
            assert_eq!(EventField::parse(entry.1), Some(entry.0));
        }
    }

    #[test]
    fn exactly_the_capturable_fields_can_be_set() {
        for field in EventField::all() {
            let mut ev = Event::default();
            let value = match field.field_type() {
                FieldType::Address => "203.0.113.7",
                FieldType::Number => "42",
                _ => "x",
            };
            assert_eq!(
                field.set_captured(&mut ev, value),
                field.capturable(),
                "{field:?}"
            );
            if field.capturable() {
                assert!(field.get(&ev).is_some(), "{field:?}");
            }
        }
    }

    #[test]
    fn the_events_writer_prints_the_fields_in_list_order() {
        let mut out = String::new();
        crate::sink::events::write_event_json(&mut out, &Event::default());
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        let object = v.as_object().expect("object");
        assert_eq!(object.len(), EventField::all().count(), "{out}");
        let mut last = 0;
        for field in EventField::all() {
            let at = out
                .find(&format!("\"{}\":", field.name()))
                .unwrap_or_else(|| panic!("{} not printed: {out}", field.name()));
            assert!(at >= last, "{} out of order: {out}", field.name());
            last = at;
        }
    }

    #[test]
    fn the_archive_columns_are_the_archived_fields_in_list_order() {
        let schema = crate::archive::schema::events_schema();
        let columns: Vec<&str> = schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            // The archive's own columns: row number, exact bytes, receive time.
            .filter(|n| !["seq", "raw", "received"].contains(n))
            .collect();
        let archived: Vec<&str> = EventField::all()
            .filter(|f| f.archived())
            .map(EventField::name)
            .collect();
        assert_eq!(columns, archived);
    }
}
