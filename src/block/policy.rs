//! What is never blocked, whatever a rule says: the checks a ban must pass before it is made.
//!
//! In order: networks that are not a single remote party (unspecified, loopback, link-local,
//! multicast, reserved and broadcast, NAT64 prefixes, an IPv6 prefix wider than /32), this host's own
//! addresses (read with `getifaddrs`, refreshed every minute), the configured allowlist,
//! trusted proxies (`--trusted-proxy`), the peers that relay syslog to us (taken from the
//! evidence's `source`, `syslog+tcp://10.0.0.5:51234`, and remembered when the peer came over
//! TCP or TLS: a UDP source is forgeable), private and ULA ranges
//! unless `block_private`, and alerts resting on UDP syslog, whose sender address anyone can
//! forge, unless `trust_udp`.
//!
//! Documentation ranges (TEST-NET-1/2/3, `2001:db8::/32`) stay blockable on purpose: no real
//! peer sends from them, so blocking one harms nobody, and the tests (and an operator trying a
//! rollout) need addresses that behave like the public internet without being anyone's.
//!
//! Limit: the UDP check reads the alert's evidence: the window's first 9 counted events and
//! the one that crossed the threshold. For a rule that fires at 10 or fewer (auth.bruteforce:
//! 5) that is every event counted, so one forged datagram among them is seen. For a higher
//! threshold, UDP events in the middle of the window are not seen: a forger who can only send
//! UDP could then add to a count that real TCP/file events had nearly reached. So in a run
//! that listens on UDP, such an alert (count above its evidence) does not ban either, unless
//! `trust_udp` ([`Policy::check_unseen`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::action::BlockTarget;
use crate::alert::Evidence;
use crate::classify::IpBlock;

/// A network as (address, prefix length), for overlap checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Net {
    pub const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Net {
        Net {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }
    const fn v6(bits: u128, prefix: u8) -> Net {
        Net {
            addr: IpAddr::V6(Ipv6Addr::from_bits(bits)),
            prefix,
        }
    }
    pub fn of_target(t: BlockTarget) -> Net {
        Net {
            addr: t.network(),
            prefix: t.prefix(),
        }
    }
    pub fn of_block(b: &IpBlock) -> Net {
        Net {
            addr: crate::event::canonical_ip(b.network()),
            prefix: b.prefix(),
        }
    }
    pub fn host(addr: IpAddr) -> Net {
        let addr = crate::event::canonical_ip(addr);
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Net { addr, prefix }
    }

    /// The network with its host bits cleared (what `nft` accepts in an interval set).
    pub fn masked(self) -> Net {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Net { addr, ..self }
    }

    /// Whether the two share any address: the shorter prefix decides.
    pub fn overlaps(self, other: Net) -> bool {
        match (self.addr, other.addr) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                let prefix = self.prefix.min(other.prefix);
                Net { prefix, ..self }.masked().addr == Net { prefix, ..other }.masked().addr
            }
            _ => false,
        }
    }
}

/// Never one remote party: blocking these breaks the host or blocks "everyone".
const RESERVED: [(Net, &str); 12] = [
    (Net::v4(0, 0, 0, 0, 8), "this-network (0.0.0.0/8)"),
    (Net::v4(127, 0, 0, 0, 8), "loopback"),
    (Net::v4(169, 254, 0, 0, 16), "link-local"),
    (Net::v4(224, 0, 0, 0, 4), "multicast"),
    (Net::v4(240, 0, 0, 0, 4), "reserved or broadcast"),
    (Net::v6(0, 128), "unspecified"),
    (Net::v6(1, 128), "loopback"),
    (Net::v6(0xfe80 << 112, 10), "link-local"),
    (Net::v6(0xff00 << 112, 8), "multicast"),
    (Net::v6(0xffff << 32, 96), "IPv4-mapped"),
    // NAT64 / SIIT (RFC 6052, RFC 8215): every IPv4 client of the translator is in here.
    (Net::v6(0x0064_ff9b << 96, 96), "NAT64"),
    (
        Net::v6((0x0064_ff9b << 96) | (1 << 80), 48),
        "NAT64 (local use)",
    ),
];

/// Private (RFC 1918, shared address space RFC 6598) and unique-local (RFC 4193) ranges.
const PRIVATE: [Net; 5] = [
    Net::v4(10, 0, 0, 0, 8),
    Net::v4(172, 16, 0, 0, 12),
    Net::v4(192, 168, 0, 0, 16),
    Net::v4(100, 64, 0, 0, 10),
    Net::v6(0xfc00 << 112, 7),
];

/// The narrowest IPv6 ban: a wider prefix is a whole provider, not an attacker.
pub const MIN_IPV6_PREFIX: u8 = 32;

/// Relay peers remembered from evidence, at most this many (the oldest are forgotten).
const MAX_RELAYS: usize = 4096;

/// Why a ban was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refusal {
    Reserved(&'static str),
    TooWide,
    OwnAddress,
    Allowlisted,
    TrustedProxy,
    Relay,
    Private,
    Spoofable,
    /// The run listens on UDP and the alert counted more events than its evidence shows.
    UdpNotRuledOut,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Reserved(_) => "reserved",
            Refusal::TooWide => "too_wide",
            Refusal::OwnAddress => "own_address",
            Refusal::Allowlisted => "allowlisted",
            Refusal::TrustedProxy => "trusted_proxy",
            Refusal::Relay => "relay",
            Refusal::Private => "private",
            Refusal::Spoofable => "spoofable_source",
            Refusal::UdpNotRuledOut => "udp_not_ruled_out",
        }
    }
}

/// This host's addresses, read again when older than a minute (interfaces come and go: DHCP,
/// VPNs, containers).
pub struct OwnAddresses {
    addrs: Vec<IpAddr>,
    /// µs of the last read; `None` when the list is fixed (tests).
    read_at: Option<i64>,
}

const OWN_REFRESH: i64 = 60_000_000;

impl OwnAddresses {
    /// Read from the host now.
    pub fn host(now: i64) -> OwnAddresses {
        OwnAddresses {
            addrs: interface_addresses(),
            read_at: Some(now),
        }
    }

    /// A fixed list (tests, or a host whose addresses are given).
    pub fn fixed(addrs: Vec<IpAddr>) -> OwnAddresses {
        OwnAddresses {
            addrs,
            read_at: None,
        }
    }

    fn refresh(&mut self, now: i64) {
        if let Some(at) = self.read_at
            && now.saturating_sub(at) >= OWN_REFRESH
        {
            self.addrs = interface_addresses();
            self.read_at = Some(now);
        }
    }
}

/// The addresses of every interface (`getifaddrs`); empty if the call fails.
fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs; we only read
    // entries whose `ifa_addr` is non-null and whose family says which sockaddr it is.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            let sa = (*cur).ifa_addr;
            if !sa.is_null() {
                match i32::from((*sa).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(sa as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(sa as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out
}

/// The never-block checks, with what they need to know.
pub struct Policy {
    pub allow: Vec<IpBlock>,
    pub proxies: Vec<IpBlock>,
    pub block_private: bool,
    pub trust_udp: bool,
    pub own: OwnAddresses,
    /// The run listens for UDP syslog: an event the evidence does not show may have come that
    /// way.
    pub udp_input: bool,
    relays: Vec<IpAddr>,
}

impl Policy {
    pub fn new(
        allow: Vec<IpBlock>,
        proxies: Vec<IpBlock>,
        block_private: bool,
        trust_udp: bool,
        own: OwnAddresses,
    ) -> Policy {
        Policy {
            allow,
            proxies,
            block_private,
            trust_udp,
            own,
            udp_input: false,
            relays: Vec::new(),
        }
    }

    /// In a run that listens on UDP, an alert that counted more events (`count`) than its
    /// evidence holds may rest on datagrams nobody has seen: it bans only with `trust_udp`.
    /// (Without a UDP listener no event can have come that way.)
    pub fn check_unseen(&self, count: u64, evidence: &[Evidence]) -> Result<(), Refusal> {
        if self.udp_input && !self.trust_udp && count > evidence.len() as u64 {
            return Err(Refusal::UdpNotRuledOut);
        }
        Ok(())
    }

    /// Whether `target` may be banned on an alert with this `evidence`, at `now` (µs).
    pub fn check(
        &mut self,
        target: BlockTarget,
        evidence: &[Evidence],
        now: i64,
    ) -> Result<(), Refusal> {
        let net = Net::of_target(target);
        self.remember_relays(evidence);
        if net.addr.is_ipv6() && net.prefix < MIN_IPV6_PREFIX {
            return Err(Refusal::TooWide);
        }
        if let Some((_, what)) = RESERVED.iter().find(|(r, _)| r.overlaps(net)) {
            return Err(Refusal::Reserved(what));
        }
        self.own.refresh(now);
        if self.own.addrs.iter().any(|a| Net::host(*a).overlaps(net)) {
            return Err(Refusal::OwnAddress);
        }
        if self.allow.iter().any(|b| Net::of_block(b).overlaps(net)) {
            return Err(Refusal::Allowlisted);
        }
        if self.proxies.iter().any(|b| Net::of_block(b).overlaps(net)) {
            return Err(Refusal::TrustedProxy);
        }
        let relayed_this = evidence.iter().filter_map(|e| relay_peer(&e.source));
        if self
            .relays
            .iter()
            .copied()
            .chain(relayed_this)
            .any(|a| Net::host(a).overlaps(net))
        {
            return Err(Refusal::Relay);
        }
        if !self.block_private && PRIVATE.iter().any(|p| p.overlaps(net)) {
            return Err(Refusal::Private);
        }
        if !self.trust_udp
            && evidence
                .iter()
                .any(|e| e.source.starts_with("syslog+udp://"))
        {
            return Err(Refusal::Spoofable);
        }
        Ok(())
    }

    /// Peers that sent us syslog over TCP or TLS are relays (a log host, a load balancer): never
    /// ban them, even on a later alert whose evidence came another way. A UDP sender is not
    /// remembered: its address is forgeable, and anyone could otherwise make any address
    /// unbannable with one datagram (it is still spared on the evidence it sent itself).
    fn remember_relays(&mut self, evidence: &[Evidence]) {
        for e in evidence {
            if !e.source.starts_with("syslog+udp://")
                && let Some(peer) = relay_peer(&e.source)
                && !self.relays.contains(&peer)
            {
                if self.relays.len() >= MAX_RELAYS {
                    self.relays.remove(0);
                }
                self.relays.push(peer);
            }
        }
    }
}

/// The peer address in a syslog source name: `syslog+tcp://10.0.0.5:51234` → `10.0.0.5`,
/// `syslog+udp://[2001:db8::5]:514` → `2001:db8::5`.
pub fn relay_peer(source: &str) -> Option<IpAddr> {
    let rest = source
        .strip_prefix("syslog+udp://")
        .or_else(|| source.strip_prefix("syslog+tcp://"))
        .or_else(|| source.strip_prefix("syslog+tls://"))?;
    let peer: std::net::SocketAddr = rest.parse().ok()?;
    Some(crate::event::canonical_ip(peer.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }
    fn target(text: &str, v6: u8) -> BlockTarget {
        BlockTarget::new(ip(text), v6).expect("target")
    }
    fn from(source: &str) -> Evidence {
        Evidence {
            source: Arc::from(source),
            line: 1,
            ts: 0,
            raw: Box::from(&b"x"[..]),
            seq: None,
        }
    }
    fn policy() -> Policy {
        Policy::new(
            vec![IpBlock::parse("198.51.100.0/28").expect("cidr")],
            vec![IpBlock::parse("192.0.2.10").expect("cidr")],
            false,
            false,
            OwnAddresses::fixed(vec![ip("203.0.113.1"), ip("2001:db8:aa::1")]),
        )
    }
    fn file() -> Vec<Evidence> {
        vec![from("/var/log/auth.log")]
    }

    #[test]
    fn loopback_link_local_multicast_and_broadcast_are_never_banned() {
        let mut p = policy();
        for addr in [
            "127.0.0.1",
            "127.0.0.53",
            "169.254.1.1",
            "224.0.0.1",
            "255.255.255.255",
            "0.1.2.3",
            "fe80::1",
            "ff02::1",
        ] {
            let r = p.check(target(addr, 128), &file(), 0);
            assert!(matches!(r, Err(Refusal::Reserved(_))), "{addr}: {r:?}");
        }
        // ::1 as its /128 (a rule with ipv6_prefix = 128); its /64 is refused by BlockTarget.
        assert!(matches!(
            p.check(target("::1", 128), &file(), 0),
            Err(Refusal::Reserved("loopback"))
        ));
    }

    #[test]
    fn a_nat64_address_never_bans_the_translator_prefix() {
        // Behind SIIT-DC or a NAT64 every IPv4 client arrives as 64:ff9b::a.b.c.d: its /64
        // is all of them, and a /128 rests on the translator's mapping.
        let mut p = policy();
        for (addr, prefix) in [("64:ff9b::c633:6407", 64), ("64:ff9b::c633:6407", 128)] {
            assert!(
                matches!(
                    p.check(target(addr, prefix), &file(), 0),
                    Err(Refusal::Reserved(_))
                ),
                "{addr}/{prefix}"
            );
        }
        assert!(matches!(
            p.check(target("64:ff9b:1::c633:6407", 64), &file(), 0),
            Err(Refusal::Reserved(_))
        ));
    }

    #[test]
    fn everything_networks_can_never_be_made_and_wide_ipv6_prefixes_are_refused() {
        // 0.0.0.0/0 and ::/0 cannot be targets at all (typed, and unspecified is refused).
        assert!(BlockTarget::new(ip("0.0.0.0"), 0).is_none());
        assert!(BlockTarget::new(ip("2001:db8::1"), 0).is_none());
        let mut p = policy();
        // A rule with ipv6_prefix = 1 would be half the internet: refused.
        let wide = target("8001:db8::1", 1);
        assert_eq!(p.check(wide, &file(), 0), Err(Refusal::TooWide));
        assert_eq!(
            p.check(target("2001:db8:5::1", 31), &file(), 0),
            Err(Refusal::TooWide)
        );
        assert_eq!(p.check(target("2001:db8:5::1", 64), &file(), 0), Ok(()));
    }

    #[test]
    fn own_addresses_and_the_64_around_them_are_never_banned() {
        let mut p = policy();
        assert_eq!(
            p.check(target("203.0.113.1", 64), &file(), 0),
            Err(Refusal::OwnAddress)
        );
        // A /64 that holds this host's address would cut the host off too.
        assert_eq!(
            p.check(target("2001:db8:aa::99", 64), &file(), 0),
            Err(Refusal::OwnAddress)
        );
        assert_eq!(p.check(target("203.0.113.2", 64), &file(), 0), Ok(()));
    }

    #[test]
    fn the_host_interfaces_are_read_and_include_loopback() {
        let own = OwnAddresses::host(0);
        assert!(own.addrs.iter().any(|a| a.is_loopback()), "{:?}", own.addrs);
    }

    #[test]
    fn allowlisted_proxies_relays_and_private_ranges_are_never_banned() {
        let mut p = policy();
        assert_eq!(
            p.check(target("198.51.100.7", 64), &file(), 0),
            Err(Refusal::Allowlisted)
        );
        assert_eq!(p.check(target("198.51.100.17", 64), &file(), 0), Ok(()));
        assert_eq!(
            p.check(target("192.0.2.10", 64), &file(), 0),
            Err(Refusal::TrustedProxy)
        );
        for private in [
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "fd00::1",
        ] {
            assert_eq!(
                p.check(target(private, 64), &file(), 0),
                Err(Refusal::Private),
                "{private}"
            );
        }
        p.block_private = true;
        assert_eq!(p.check(target("10.1.2.3", 64), &file(), 0), Ok(()));
    }

    #[test]
    fn a_syslog_relay_is_never_banned_even_on_later_evidence_from_elsewhere() {
        let mut p = policy();
        let relayed = vec![from("syslog+tcp://192.0.2.5:51234")];
        assert_eq!(
            p.check(target("192.0.2.5", 64), &relayed, 0),
            Err(Refusal::Relay)
        );
        // Remembered: an alert from a file naming the relay later is refused too.
        assert_eq!(
            p.check(target("192.0.2.5", 64), &file(), 0),
            Err(Refusal::Relay)
        );
        assert_eq!(
            relay_peer("syslog+tls://[2001:db8::5]:6514"),
            Some(ip("2001:db8::5"))
        );
        assert_eq!(relay_peer("/var/log/syslog"), None);
    }

    #[test]
    fn a_udp_sender_cannot_make_an_address_unbannable() {
        let mut p = policy();
        // Forged (or real) datagrams from 203.0.113.66 about someone else: refused as
        // spoofable, and must not teach the policy that 203.0.113.66 is a relay.
        let forged = vec![from("syslog+udp://203.0.113.66:40000")];
        assert_eq!(
            p.check(target("198.51.100.99", 64), &forged, 0),
            Err(Refusal::Spoofable)
        );
        // Then 203.0.113.66 brute-forces sshd: the auth log's evidence bans it.
        assert_eq!(p.check(target("203.0.113.66", 64), &file(), 0), Ok(()));
        // The UDP peer is still not banned on the evidence it sent itself.
        assert_eq!(
            p.check(target("203.0.113.66", 64), &forged, 0),
            Err(Refusal::Relay)
        );
    }

    #[test]
    fn udp_evidence_does_not_ban_unless_trusted() {
        let mut p = policy();
        let mixed = vec![
            from("/var/log/auth.log"),
            from("syslog+udp://192.0.2.77:514"),
        ];
        assert_eq!(
            p.check(target("203.0.113.9", 64), &mixed, 0),
            Err(Refusal::Spoofable)
        );
        let tcp = vec![from("syslog+tcp://192.0.2.78:5514")];
        assert_eq!(p.check(target("203.0.113.9", 64), &tcp, 0), Ok(()));
        p.trust_udp = true;
        assert_eq!(p.check(target("203.0.113.9", 64), &mixed, 0), Ok(()));
    }

    #[test]
    fn with_a_udp_listener_events_the_evidence_does_not_show_are_not_trusted() {
        let mut p = policy();
        let ten: Vec<Evidence> = (0..10)
            .map(|_| from("syslog+tcp://192.0.2.78:5514"))
            .collect();
        // No UDP listener: nothing unseen can be forged.
        assert_eq!(p.check_unseen(50, &ten), Ok(()));
        p.udp_input = true;
        assert_eq!(p.check_unseen(10, &ten), Ok(()));
        assert_eq!(p.check_unseen(11, &ten), Err(Refusal::UdpNotRuledOut));
        p.trust_udp = true;
        assert_eq!(p.check_unseen(11, &ten), Ok(()));
    }

    #[test]
    fn documentation_ranges_stay_blockable() {
        let mut p = policy();
        for addr in [
            "192.0.2.200",
            "198.51.100.200",
            "203.0.113.7",
            "2001:db8:1::1",
        ] {
            assert_eq!(p.check(target(addr, 64), &file(), 0), Ok(()), "{addr}");
        }
    }
}
