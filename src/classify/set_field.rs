//! A captured value into the event field it names.

use super::grammar::Field;
use crate::event::{Event, parse_ip};

/// Store one captured value. Empty and `-` (the logs' "no value") leave the field alone, as
/// does an address that does not parse (a host name in `rhost=`).
pub(super) fn set_field(ev: &mut Event, field: Field, text: &str) {
    let text = text.trim();
    if text.is_empty() || text == "-" {
        return;
    }
    match field {
        Field::SrcIp => {
            if let Some(ip) = parse_ip(text) {
                ev.src_ip = Some(ip);
            }
        }
        Field::User => ev.user = Some(text.into()),
        Field::Actor => ev.actor = Some(text.into()),
        Field::Namespace => ev.namespace = Some(text.into()),
        Field::HttpMethod => ev.http_method = Some(text.into()),
        Field::HttpPath => ev.http_path = Some(text.into()),
        Field::Reason => ev.reason = Some(text.into()),
        Field::Count => ev.count = text.parse().ok().or(ev.count),
        Field::Bytes => ev.bytes = text.parse().ok().or(ev.bytes),
        Field::HttpStatus => ev.http_status = text.parse().ok().or(ev.http_status),
    }
}
