//! Rule keys: the value a rule counts per (`src_ip`, `user`, `host`, …), compact and hashable.
//!
//! An attacker chooses a million keys for the price of a million lines, so a key is small
//! (addresses as 16 bytes, IPv6 already cut to the rule's prefix) and a lookup allocates
//! nothing ([`KeyRef`] borrows from the event).

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv6Addr};

use super::rules::{Field, FieldValue};
use crate::event::{Event, canonical_ip};

/// A key value, compact: addresses as 16 bytes (IPv4 as `::ffff:a.b.c.d`, IPv6 already cut to
/// the rule's prefix), everything else as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyValue {
    Ip([u8; 16]),
    Text(Box<str>),
}

/// A key value borrowed from an event, for lookups that allocate nothing.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeyRef<'a> {
    Ip([u8; 16]),
    Text(&'a str),
}

// KeyValue and KeyRef must hash identically: lookups hash a KeyRef, the index rehashes KeyValues.
impl Hash for KeyValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_ref().hash(state);
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            KeyRef::Ip(bytes) => {
                state.write_u8(0);
                state.write(bytes);
            }
            KeyRef::Text(text) => {
                state.write_u8(1);
                state.write(text.as_bytes());
            }
        }
    }
}

impl KeyValue {
    pub(super) fn as_ref(&self) -> KeyRef<'_> {
        match self {
            KeyValue::Ip(bytes) => KeyRef::Ip(*bytes),
            KeyValue::Text(text) => KeyRef::Text(text),
        }
    }

    pub(super) fn matches(&self, other: KeyRef<'_>) -> bool {
        match (self, other) {
            (KeyValue::Ip(a), KeyRef::Ip(b)) => *a == b,
            (KeyValue::Text(a), KeyRef::Text(b)) => **a == *b,
            _ => false,
        }
    }

    /// The address of an address key (IPv4 as itself), for a typed block.
    pub(crate) fn ip(&self) -> Option<IpAddr> {
        match self {
            KeyValue::Ip(bytes) => {
                let v6 = Ipv6Addr::from(*bytes);
                Some(match v6.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => IpAddr::V6(v6),
                })
            }
            KeyValue::Text(_) => None,
        }
    }

    /// The key as users read it: `203.0.113.7`, `2001:db8::/64`, `alice`.
    pub(crate) fn display(&self, ipv6_prefix: u8) -> String {
        match self {
            KeyValue::Ip(bytes) => {
                let v6 = Ipv6Addr::from(*bytes);
                match v6.to_ipv4_mapped() {
                    Some(v4) => v4.to_string(),
                    None if ipv6_prefix < 128 => format!("{v6}/{ipv6_prefix}"),
                    None => v6.to_string(),
                }
            }
            KeyValue::Text(text) => text.to_string(),
        }
    }
}

impl KeyRef<'_> {
    pub(super) fn to_owned(self) -> KeyValue {
        match self {
            KeyRef::Ip(bytes) => KeyValue::Ip(bytes),
            KeyRef::Text(text) => KeyValue::Text(text.into()),
        }
    }
}

/// The 16-byte key of an address: IPv4 mapped, IPv6 cut to `prefix` bits.
pub(super) fn ip_key(ip: IpAddr, prefix: u8) -> [u8; 16] {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = match prefix {
                0 => 0,
                p if p >= 128 => u128::MAX,
                p => u128::MAX << (128 - u32::from(p)),
            };
            (bits & mask).to_be_bytes()
        }
    }
}

/// A key as a snapshot holds it: an address key as the IPv6 address of its 16 bytes.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) enum KeySnap {
    #[serde(rename = "ip")]
    Ip(Ipv6Addr),
    #[serde(rename = "text")]
    Text(String),
}

impl KeyValue {
    pub(crate) fn snapshot(&self) -> KeySnap {
        match self {
            KeyValue::Ip(bytes) => KeySnap::Ip(Ipv6Addr::from(*bytes)),
            KeyValue::Text(text) => KeySnap::Text(text.to_string()),
        }
    }

    pub(crate) fn restore(snap: KeySnap) -> KeyValue {
        match snap {
            KeySnap::Ip(ip) => KeyValue::Ip(ip.octets()),
            KeySnap::Text(text) => KeyValue::Text(text.into_boxed_str()),
        }
    }
}

/// A total order on keys for deterministic tie-breaks.
impl KeyRef<'_> {
    pub(super) fn cmp_key(&self, other: &KeyRef<'_>) -> std::cmp::Ordering {
        match (self, other) {
            (KeyRef::Ip(a), KeyRef::Ip(b)) => a.cmp(b),
            (KeyRef::Text(a), KeyRef::Text(b)) => a.cmp(b),
            (KeyRef::Ip(_), KeyRef::Text(_)) => std::cmp::Ordering::Less,
            (KeyRef::Text(_), KeyRef::Ip(_)) => std::cmp::Ordering::Greater,
        }
    }
}

/// A number as a text key, written into `scratch`.
fn number(scratch: &mut String, n: impl std::fmt::Display) -> KeyRef<'_> {
    use std::fmt::Write;
    scratch.clear();
    let _ = write!(scratch, "{n}");
    KeyRef::Text(scratch.as_str())
}

/// The key of `ev` under `field`, borrowed; numbers are written into `scratch`.
pub(super) fn key_of<'a>(
    field: Field,
    ev: &'a Event,
    prefix: u8,
    scratch: &'a mut String,
) -> Option<KeyRef<'a>> {
    Some(match field.get(ev)? {
        FieldValue::Ip(ip) => KeyRef::Ip(ip_key(ip, prefix)),
        FieldValue::Text(t) => KeyRef::Text(t),
        FieldValue::Number(n) => number(scratch, n),
        // Rules cannot key on times or flags; written as text all the same.
        FieldValue::Time(t) => number(scratch, t),
        FieldValue::Bool(b) => KeyRef::Text(if b { "true" } else { "false" }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_keys_group_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a, 64), ip_key(b, 64));
        assert_ne!(ip_key(a, 64), ip_key(c, 64));
        assert_ne!(ip_key(a, 128), ip_key(b, 128));
        assert_eq!(KeyValue::Ip(ip_key(a, 64)).display(64), "2001:db8:1:2::/64");
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(KeyValue::Ip(ip_key(v4, 64)).display(64), "203.0.113.7");
    }
}
