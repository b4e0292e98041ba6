//! logfmt: `ts=2026-11-23T12:00:00Z level=error msg="db down" user=alice`.
//!
//! A line is only logfmt when its first token is a `key=value` pair and it holds at least two
//! pairs, so that prose such as `user=alice logged in` stays an ordinary message.
//!
//! After that, one odd value never loses the line (an attacker who controls one value must not
//! be able to hide the event): a quote left open runs to the end of the line, and a token that
//! is not a pair (a stray quote, `=x`) is skipped.

use std::borrow::Cow;

use super::time::LocalClock;
use super::{Format, Record, apply_app_fields, text};

const MIN_PAIRS: usize = 2;

pub(super) fn parse<'a>(line: &'a [u8], clock: &mut LocalClock) -> Option<Record<'a>> {
    let fields = pairs(line)?;
    let mut record = Record {
        format: Format::Logfmt,
        fields,
        ..Record::unparsed(line)
    };
    apply_app_fields(&mut record, clock);
    Some(record)
}

type Fields<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

fn pairs(line: &[u8]) -> Option<Fields<'_>> {
    // Cheap reject before allocating: the first token must be `key=`.
    let first_end = line.iter().position(|&b| matches!(b, b' ' | b'=' | b'"'))?;
    if first_end == 0 || line[first_end] != b'=' {
        return None;
    }
    let mut fields = Vec::new();
    let mut pair_count = 0;
    let mut rest = line;
    loop {
        rest = trim_spaces(rest);
        if rest.is_empty() {
            break;
        }
        let key_len = rest
            .iter()
            .position(|&b| matches!(b, b' ' | b'=' | b'"'))
            .unwrap_or(rest.len());
        if key_len == 0 || rest.get(key_len) == Some(&b'"') {
            // Not a key: skip the token (a quoted one whole, so its spaces do not start pairs).
            rest = skip_token(rest);
            continue;
        }
        let key = text(&rest[..key_len]);
        rest = &rest[key_len..];
        match rest.first() {
            Some(b'=') => {
                let (value, after) = value(&rest[1..]);
                fields.push((key, value));
                pair_count += 1;
                rest = after;
            }
            _ => fields.push((key, Cow::Borrowed(""))),
        }
    }
    (pair_count >= MIN_PAIRS).then_some(fields)
}

fn trim_spaces(input: &[u8]) -> &[u8] {
    let skip = input
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &input[skip..]
}

/// Skips one token that is not a pair: a quoted run (to its closing quote, or the end) when it
/// starts with a quote, else the bytes up to the next space.
fn skip_token(input: &[u8]) -> &[u8] {
    if input.first() == Some(&b'"') {
        return value(input).1;
    }
    let end = input.iter().position(|&b| b == b' ').unwrap_or(input.len());
    &input[end..]
}

/// A bare value up to the next space, or a quoted one with `\"`, `\\`, `\n`, `\t`, `\r` escapes.
/// A quote left open runs to the end of the line.
fn value(input: &[u8]) -> (Cow<'_, str>, &[u8]) {
    let Some(inner) = input.strip_prefix(b"\"") else {
        let len = input
            .iter()
            .position(|&b| b == b' ' || b == b'\t')
            .unwrap_or(input.len());
        return (text(&input[..len]), &input[len..]);
    };
    let mut at = 0;
    let mut escaped = false;
    let close = loop {
        match inner.get(at) {
            None => break None,
            Some(b'\\') => {
                escaped = true;
                at += 2;
            }
            Some(b'"') => break Some(at),
            Some(_) => at += 1,
        }
    };
    let (raw, after) = match close {
        Some(close) => (&inner[..close], &inner[close + 1..]),
        None => (inner, &inner[inner.len()..]),
    };
    if !escaped {
        return (text(raw), after);
    }
    let mut unescaped = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            unescaped.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'n') => unescaped.push(b'\n'),
            Some(b't') => unescaped.push(b'\t'),
            Some(b'r') => unescaped.push(b'\r'),
            Some(&other) => unescaped.push(other),
            None => unescaped.push(b'\\'),
        }
    }
    (
        Cow::Owned(String::from_utf8_lossy(&unescaped).into_owned()),
        after,
    )
}
