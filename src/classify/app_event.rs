//! Application events: JSON and logfmt records (and RFC 5424 structured data) understood
//! through the field names of DESIGN section 3. Keys match case-insensitively and, for each
//! role, the first name of its list that is present wins. A key the line names twice: the
//! first copy wins, except for the address keys, where two different values leave `src_ip`
//! empty with the reason `ambiguous_address` ([`address_field`]).

use std::borrow::Cow;

use super::http::{FORWARDED, address_field, apply_http_fields, field, has_method, present};
use super::proxy::TrustedProxies;
use crate::event::{Event, Kind, parse_ip};

type Fields<'f, 'a> = &'f [(Cow<'a, str>, Cow<'a, str>)];

const EVENT: &[&str] = &["event", "event_type", "action", "type"];
const IP: &[&str] = &["ip", "src_ip", "source_ip", "client_ip", "remote_addr"];
const ACTOR: &[&str] = &["agent_id", "actor", "user_id", "user", "username"];
const USER: &[&str] = &["user", "username", "user_name", "login"];
const COUNT: &[&str] = &["count", "records", "rows"];
const NAMESPACE: &[&str] = &["namespace"];
const ACTOR_NAMESPACE: &[&str] = &["agent_namespace", "actor_namespace"];
const OPERATION: &[&str] = &["operation", "op"];
const LEVEL: &[&str] = &["level", "severity", "levelname"];
const REASON: &[&str] = &["reason"];

/// Levels that make an otherwise unremarkable line a `log.error`: the app-log words and the
/// syslog severities `err` and worse.
pub(crate) fn is_error_level(level: &str) -> bool {
    [
        "error",
        "critical",
        "fatal",
        "err",
        "crit",
        "alert",
        "emerg",
        "emergency",
        "panic",
    ]
    .iter()
    .any(|l| level.trim().eq_ignore_ascii_case(l))
}

fn one_of(value: &str, names: &[&str]) -> bool {
    names.iter().any(|n| value.eq_ignore_ascii_case(n))
}

/// The kind an event name stands for; `data_access` needs its `operation`.
fn kind_of_event(name: &str, fields: Fields<'_, '_>) -> Option<Kind> {
    let name = name.trim();
    if one_of(
        name,
        &["authentication_failed", "login_failed", "auth_failure"],
    ) {
        Some(Kind::AuthFailure)
    } else if one_of(
        name,
        &["authentication_succeeded", "login_success", "login"],
    ) {
        Some(Kind::AuthSuccess)
    } else if one_of(
        name,
        &[
            "api_key_revoke",
            "api_key_invalidate",
            "apikey_revocation_attempt",
        ],
    ) {
        Some(Kind::ApikeyRevokeAttempt)
    } else if one_of(name, &["data_read"]) {
        Some(Kind::DataRead)
    } else if one_of(name, &["data_delete"]) {
        Some(Kind::DataDelete)
    } else if one_of(name, &["vector_search"]) {
        Some(Kind::DataSearch)
    } else if one_of(name, &["namespace_violation"]) {
        Some(Kind::DataNamespaceViolation)
    } else if one_of(name, &["data_access"]) {
        match field(fields, OPERATION).map(str::trim) {
            Some(op) if op.eq_ignore_ascii_case("read") => Some(Kind::DataRead),
            Some(op) if op.eq_ignore_ascii_case("delete") => Some(Kind::DataDelete),
            Some(op) if op.eq_ignore_ascii_case("search") => Some(Kind::DataSearch),
            _ => None,
        }
    } else {
        None
    }
}

fn non_empty(v: &str) -> Option<&str> {
    let v = v.trim();
    (!v.is_empty()).then_some(v)
}

/// Classify an application record from its fields. Returns false when the fields name no
/// known event, carry no request and no error level, leaving `ev` untouched.
pub(crate) fn apply_app_fields(
    fields: Fields<'_, '_>,
    proxies: &TrustedProxies,
    ev: &mut Event,
) -> bool {
    let kind = field(fields, EVENT).and_then(|name| kind_of_event(name, fields));
    let Some(mut kind) = kind else {
        // Not a named event: maybe a request log, else maybe an error line.
        if has_method(fields) && apply_http_fields(fields, proxies, ev) {
            return true;
        }
        if field(fields, LEVEL).is_some_and(is_error_level) {
            ev.kind = Kind::LogError;
            return true;
        }
        return false;
    };

    let actor = field(fields, ACTOR).and_then(non_empty);
    let namespace = field(fields, NAMESPACE).and_then(non_empty);
    let is_data = matches!(kind, Kind::DataRead | Kind::DataDelete | Kind::DataSearch);
    if is_data {
        let own_namespace = field(fields, ACTOR_NAMESPACE).and_then(non_empty);
        if let (Some(target), Some(own)) = (namespace, own_namespace)
            && target != own
        {
            // Keep what was attempted as the reason: detect keys the violation on the actor.
            ev.reason = Some(kind.as_str().into());
            kind = Kind::DataNamespaceViolation;
        }
    }
    ev.kind = kind;
    // The designated address field; a forwarded list only through a trusted proxy, as for
    // access logs.
    // A key written twice with different values is the client's doing (see
    // [`address_field`]): no address rather than the one it chose.
    ev.forwarded_for = field(fields, FORWARDED).and_then(present).map(Into::into);
    match (address_field(fields, IP), address_field(fields, FORWARDED)) {
        (Ok(connecting), Ok(forwarded)) => {
            if let Some(ip) = proxies.client_address(connecting.and_then(parse_ip), forwarded) {
                ev.src_ip = Some(ip);
            }
        }
        _ => {
            ev.src_ip = None;
            ev.reason = Some(super::AMBIGUOUS_ADDRESS.into());
        }
    }
    ev.actor = actor.map(Into::into);
    ev.namespace = namespace.map(Into::into);
    let count = field(fields, COUNT).and_then(|c| c.trim().parse::<u64>().ok());
    ev.count = match count {
        Some(c) => Some(c),
        None if is_data || kind == Kind::DataNamespaceViolation => Some(1),
        None => None,
    };
    if matches!(kind, Kind::AuthFailure | Kind::AuthSuccess) {
        ev.user = field(fields, USER)
            .and_then(non_empty)
            .or(actor)
            .map(Into::into);
        if ev.reason.is_none() {
            ev.reason = field(fields, REASON).and_then(non_empty).map(Into::into);
        }
    }
    true
}
