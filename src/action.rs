//! Typed alert actions (DESIGN section 9): what an alert asks a responder to do.
//!
//! A block names a network, never text. [`BlockTarget`] is made only from an [`IpAddr`] (the
//! rule's key, which the rule loader guarantees is an address field) and a prefix length, so
//! nothing an attacker writes into a log line (a user name like `{key}`, `1.2.3.4; rm -rf /`,
//! `0.0.0.0/0`) can become what is blocked: such text is not an address and never reaches
//! here. The unspecified network (`0.0.0.0`, `::/64` …), which some firewalls read as
//! "everything", is refused.
//!
//! Other actions a rule declares are [`Action::Note`]s: free-form text for the people reading
//! the alert, shown as written (JSON-escaped, or cleaned for a terminal), never filled in
//! from the event and never meant to be run.
//!
//! ```
//! use secpipe::action::{Action, BlockTarget};
//! let ip: std::net::IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
//! let block = Action::Block { target: BlockTarget::new(ip, 64).unwrap(), duration: Some(900_000_000) };
//! assert_eq!(
//!     Action::pairs(&[block]),
//!     vec![("block".to_string(), "2001:db8:1:2::/64".to_string()), ("for".to_string(), "15m".to_string())]
//! );
//! assert!(BlockTarget::new("0.0.0.0".parse().unwrap(), 64).is_none());
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One thing an alert asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Block traffic from this network, for `duration` µs if set.
    Block {
        target: BlockTarget,
        duration: Option<i64>,
    },
    /// A (name, value) note declared by the rule, shown as written.
    Note { name: String, value: String },
}

/// A network to block: an address and a prefix length, host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockTarget {
    network: IpAddr,
    prefix: u8,
}

impl BlockTarget {
    /// The network of `addr`: an IPv4 address (or IPv4-mapped IPv6 address) as its /32, an
    /// IPv6 address cut to `ipv6_prefix` bits. `None` for the unspecified network.
    ///
    /// ```
    /// use secpipe::action::BlockTarget;
    /// let v4 = BlockTarget::new("::ffff:203.0.113.7".parse().unwrap(), 64).unwrap();
    /// assert_eq!((v4.to_string(), v4.prefix()), ("203.0.113.7".to_string(), 32));
    /// let v6 = BlockTarget::new("2001:db8::1".parse().unwrap(), 128).unwrap();
    /// assert_eq!(v6.to_string(), "2001:db8::1");
    /// ```
    pub fn new(addr: IpAddr, ipv6_prefix: u8) -> Option<BlockTarget> {
        let target = match addr {
            IpAddr::V4(v4) => Self::v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::v4(v4),
                None => {
                    let prefix = ipv6_prefix.min(128);
                    let mask = match prefix {
                        0 => 0,
                        p => u128::MAX << (128 - u32::from(p)),
                    };
                    BlockTarget {
                        network: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)),
                        prefix,
                    }
                }
            },
        };
        (!target.network.is_unspecified()).then_some(target)
    }

    fn v4(addr: Ipv4Addr) -> BlockTarget {
        BlockTarget {
            network: IpAddr::V4(addr),
            prefix: 32,
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length: 32 for IPv4, the rule's `ipv6_prefix` for IPv6.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

/// A single address as itself (`203.0.113.7`, `2001:db8::1`), a wider network in CIDR form
/// (`2001:db8:1:2::/64`): the same text as the alert's key value.
impl fmt::Display for BlockTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = match self.network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if self.prefix >= full {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

impl Action {
    /// The (name, value) pairs an alert shows, e.g. `{"block": "203.0.113.7", "for": "15m"}`:
    /// `block` first, then the other names in name order (as the rule pack always listed them).
    pub fn pairs(actions: &[Action]) -> Vec<(String, String)> {
        let mut block = Vec::new();
        let mut rest = Vec::new();
        for action in actions {
            match action {
                Action::Block { target, duration } => {
                    block.push(("block".to_string(), target.to_string()));
                    if let Some(micros) = duration {
                        rest.push(("for".to_string(), crate::duration::format(*micros)));
                    }
                }
                Action::Note { name, value } => rest.push((name.clone(), value.clone())),
            }
        }
        rest.sort_by(|a, b| a.0.cmp(&b.0));
        block.extend(rest);
        block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn an_ipv6_key_with_prefix_64_blocks_the_64() {
        let t = BlockTarget::new(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), 64).expect("target");
        assert_eq!(t.network(), ip("2001:db8:1:2::"));
        assert_eq!(
            (t.prefix(), t.to_string()),
            (64, "2001:db8:1:2::/64".into())
        );
        let single = BlockTarget::new(ip("2001:db8:1:2::9"), 128).expect("target");
        assert_eq!(single.to_string(), "2001:db8:1:2::9");
    }

    #[test]
    fn the_unspecified_network_is_never_a_target() {
        assert_eq!(BlockTarget::new(ip("0.0.0.0"), 64), None);
        assert_eq!(BlockTarget::new(ip("::"), 128), None);
        // `::1` cut to its /64 is `::/64`, which would read as "every address" to some tools.
        assert_eq!(BlockTarget::new(ip("::1"), 64), None);
        assert_eq!(BlockTarget::new(ip("::ffff:0.0.0.0"), 64), None);
        assert!(BlockTarget::new(ip("203.0.113.7"), 0).is_some());
    }

    #[test]
    fn pairs_keep_the_order_alerts_always_had() {
        let block = Action::Block {
            target: BlockTarget::new(ip("203.0.113.7"), 64).expect("target"),
            duration: Some(15 * 60 * 1_000_000),
        };
        let note = |name: &str| Action::Note {
            name: name.into(),
            value: "v".into(),
        };
        let pairs = Action::pairs(&[note("ticket"), block, note("escalate")]);
        let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["block", "escalate", "for", "ticket"]);
        assert_eq!(pairs[0].1, "203.0.113.7");
        assert_eq!(pairs[2].1, "15m");
    }
}
