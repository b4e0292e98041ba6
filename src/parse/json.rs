//! JSON lines: `journalctl -o json` and JSON application logs, parsed with simd-json.
//!
//! simd-json parses in place, so the line is copied into a scratch buffer the parser keeps.
//! Strings that needed no unescaping sit at the same offset in the scratch buffer as in the
//! line, so they are borrowed from the line; only unescaped strings and numbers are copied.
//!
//! # Duplicate keys
//!
//! An object that names a key twice (`{"src_ip":"192.0.2.1", …, "src_ip":"10.0.0.1"}`) keeps
//! every copy, in line order, in the record's fields: RFC 8259 §4 leaves the meaning of such an
//! object open, and an application that pastes a client's value into its JSON line lets the
//! client add a key before or after the real one, so no copy is dropped here. Classify decides:
//! for the address keys, two different values leave `src_ip` empty with the reason
//! `ambiguous_address` (counted in `--stats`, as for the grammars), since either copy may be
//! the client's; for every other key the first copy wins (`classify::http::address_field`).
//! A repaired line ([`repair`]) keeps its keys as they were.

use std::borrow::Cow;

use simd_json::{Buffers, Node, StaticNode, Tape};

use super::json_repair::repair;
use super::time::{self, LocalClock};
use super::{Format, Record, apply_app_fields, severity_name, text};

/// Nested objects deeper than this are skipped rather than flattened.
const MAX_FLATTEN_DEPTH: usize = 8;

/// Reusable buffers: the line copy, simd-json's internal buffers and the tape.
pub(super) struct JsonScratch {
    line: Vec<u8>,
    buffers: Buffers,
    /// Kept empty between lines; `reset` re-binds its allocation to each new line.
    tape: Option<Tape<'static>>,
}

impl Default for JsonScratch {
    fn default() -> Self {
        JsonScratch {
            line: Vec::new(),
            buffers: Buffers::new(4096),
            tape: Some(Tape::null().reset()),
        }
    }
}

type Fields<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

pub(super) fn parse<'a>(
    line: &'a [u8],
    scratch: &mut JsonScratch,
    clock: &mut LocalClock,
) -> Option<Record<'a>> {
    let line_text = std::str::from_utf8(line).ok();
    // simd-json insists on UTF-8; parse a repaired copy (its strings come out owned).
    let source = match line_text {
        Some(_) => Cow::Borrowed(line),
        None => Cow::Owned(String::from_utf8_lossy(line).into_owned().into_bytes()),
    };
    // One value the JSON grammar refuses (a lone surrogate, `1e999`, a raw tab) would lose the
    // whole event: parse a copy with just those values repaired instead.
    let fields = match object_fields(&source, line_text, scratch) {
        Some(fields) => fields,
        None => object_fields(&repair(&source)?, line_text, scratch)?,
    };
    Some(if is_journal(&fields) {
        journal_record(line, fields)
    } else {
        app_record(line, fields, clock)
    })
}

/// The flattened members of the JSON object in `source` (the line, or a repaired copy of it),
/// or `None` when it is not a JSON object.
fn object_fields<'a>(
    source: &[u8],
    line_text: Option<&'a str>,
    scratch: &mut JsonScratch,
) -> Option<Fields<'a>> {
    scratch.line.clear();
    scratch.line.extend_from_slice(source);
    let origin = Origin {
        line_text,
        scratch_start: scratch.line.as_ptr() as usize,
    };
    let mut tape = scratch.tape.take().unwrap_or_else(Tape::null).reset();
    let mut fields = Vec::with_capacity(16);
    let parsed = simd_json::fill_tape(&mut scratch.line, &mut scratch.buffers, &mut tape).is_ok()
        && match tape.0.first() {
            Some(Node::Object { .. }) => {
                flatten_object(&tape.0, 0, "", 0, &origin, &mut fields);
                true
            }
            _ => false,
        };
    scratch.tape = Some(tape.reset());
    parsed.then_some(fields)
}

/// Where the scratch copy came from, to map its strings back to the line. A string is
/// borrowed only when the line holds exactly the same bytes at the same offset, so a repaired
/// copy (whose offsets may differ) is mapped correctly too: its strings are then copied.
struct Origin<'a> {
    /// The line, when it is valid UTF-8 (else nothing can be borrowed from it).
    line_text: Option<&'a str>,
    scratch_start: usize,
}

impl<'a> Origin<'a> {
    /// `value` (a string inside the scratch copy) borrowed from the line when the line holds the
    /// same bytes at the same offset, i.e. when simd-json did not have to unescape it.
    fn text(&self, value: &str) -> Cow<'a, str> {
        let offset = (value.as_ptr() as usize).wrapping_sub(self.scratch_start);
        let in_line = offset
            .checked_add(value.len())
            .and_then(|end| self.line_text?.get(offset..end));
        match in_line {
            Some(same) if same == value => Cow::Borrowed(same),
            _ => Cow::Owned(value.to_owned()),
        }
    }
}

/// Number of tape nodes the value at `index` spans.
fn span(nodes: &[Node<'_>], index: usize) -> usize {
    match nodes.get(index) {
        Some(Node::Object { count, .. } | Node::Array { count, .. }) => count + 1,
        _ => 1,
    }
}

/// Pushes the scalar members of the object at `index` (keys prefixed by `prefix.`), recursing
/// into nested objects. Returns nothing; malformed tapes end the walk quietly.
fn flatten_object<'a>(
    nodes: &[Node<'_>],
    index: usize,
    prefix: &str,
    depth: usize,
    origin: &Origin<'a>,
    fields: &mut Fields<'a>,
) {
    let Some(Node::Object { len, .. }) = nodes.get(index) else {
        return;
    };
    let mut at = index + 1;
    for _ in 0..*len {
        let Some(Node::String(key)) = nodes.get(at) else {
            return;
        };
        let value_index = at + 1;
        let full_key = || -> Cow<'a, str> {
            if prefix.is_empty() {
                origin.text(key)
            } else {
                Cow::Owned(format!("{prefix}.{key}"))
            }
        };
        match nodes.get(value_index) {
            Some(Node::String(value)) => fields.push((full_key(), origin.text(value))),
            Some(Node::Static(value)) => {
                if let Some(value) = static_text(value) {
                    fields.push((full_key(), value));
                }
            }
            Some(Node::Object { .. }) if depth < MAX_FLATTEN_DEPTH => {
                let nested_prefix = full_key();
                flatten_object(
                    nodes,
                    value_index,
                    &nested_prefix,
                    depth + 1,
                    origin,
                    fields,
                );
            }
            Some(Node::Array { len, .. }) if prefix.is_empty() && *key == "MESSAGE" => {
                if let Some(message) = byte_array(&nodes[value_index + 1..], *len) {
                    fields.push((full_key(), Cow::Owned(message)));
                }
            }
            _ => {}
        }
        at = value_index + span(nodes, value_index);
    }
}

fn static_text(value: &StaticNode) -> Option<Cow<'static, str>> {
    Some(match value {
        StaticNode::Bool(true) => Cow::Borrowed("true"),
        StaticNode::Bool(false) => Cow::Borrowed("false"),
        StaticNode::I64(number) => Cow::Owned(number.to_string()),
        StaticNode::U64(number) => Cow::Owned(number.to_string()),
        StaticNode::F64(number) => Cow::Owned(number.to_string()),
        _ => return None,
    })
}

/// journald writes a non-UTF-8 MESSAGE as an array of byte values.
fn byte_array(elements: &[Node<'_>], len: usize) -> Option<String> {
    let bytes: Option<Vec<u8>> = elements
        .get(..len)?
        .iter()
        .map(|node| match node {
            Node::Static(StaticNode::I64(b)) => u8::try_from(*b).ok(),
            Node::Static(StaticNode::U64(b)) => u8::try_from(*b).ok(),
            _ => None,
        })
        .collect();
    Some(String::from_utf8_lossy(&bytes?).into_owned())
}

fn exact<'f, 'a>(fields: &'f Fields<'a>, key: &str) -> Option<&'f Cow<'a, str>> {
    fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn is_journal(fields: &Fields<'_>) -> bool {
    exact(fields, "__REALTIME_TIMESTAMP").is_some()
        || (exact(fields, "MESSAGE").is_some()
            && (exact(fields, "_HOSTNAME").is_some()
                || exact(fields, "SYSLOG_IDENTIFIER").is_some()))
}

fn journal_record<'a>(line: &'a [u8], fields: Fields<'a>) -> Record<'a> {
    let get = |key: &str| exact(&fields, key).cloned();
    let micros = |key: &str| {
        get(key)
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|us| (time::MIN_TS..time::MAX_TS).contains(us))
    };
    let ts = micros("__REALTIME_TIMESTAMP").or_else(|| micros("_SOURCE_REALTIME_TIMESTAMP"));
    let pid = get("_PID")
        .or_else(|| get("SYSLOG_PID"))
        .and_then(|pid| pid.parse().ok());
    let severity = get("PRIORITY")
        .and_then(|p| p.parse::<u8>().ok())
        .and_then(severity_name)
        .map(Cow::Borrowed);
    Record {
        format: Format::JournalJson,
        ts,
        host: get("_HOSTNAME"),
        app: get("SYSLOG_IDENTIFIER").or_else(|| get("_COMM")),
        pid,
        severity,
        message: get("MESSAGE").unwrap_or_else(|| text(line)),
        fields,
    }
}

fn app_record<'a>(line: &'a [u8], fields: Fields<'a>, clock: &mut LocalClock) -> Record<'a> {
    let mut record = Record {
        format: Format::JsonApp,
        fields,
        ..Record::unparsed(line)
    };
    apply_app_fields(&mut record, clock);
    record
}
