//! Trusted reverse proxies: when a forwarded address may stand for the client.
//!
//! An `X-Forwarded-For` list is written by whoever sent the request: a client that talks to
//! the server directly can put any address in it, including the operator's own. So a forwarded
//! address is never the event's `src_ip` (the address rules key on and blocks act on) unless
//! the connecting address is a proxy the operator named (`--trusted-proxy CIDR`). Then, as
//! nginx's realip module and apache's mod_remoteip do, the list is read from the right (each
//! proxy appends the address it received the connection from) past the trusted proxies, and
//! the first address not trusted is the client. Entries left of it were written by the client
//! and are ignored.

use std::net::IpAddr;

/// An address block, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a /32 or /128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpBlock {
    network: IpAddr,
    prefix: u8,
}

impl IpBlock {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    ///
    /// ```
    /// use secpipe::classify::IpBlock;
    /// let block = IpBlock::parse("10.0.0.0/8").unwrap();
    /// assert!(block.contains("10.1.2.3".parse().unwrap()));
    /// assert!(!block.contains("11.0.0.1".parse().unwrap()));
    /// assert!(IpBlock::parse("2001:db8::1").unwrap().contains("2001:db8::1".parse().unwrap()));
    /// assert!(IpBlock::parse("10.0.0.0/33").is_err());
    /// assert!(IpBlock::parse("proxy.example").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<IpBlock, String> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let network =
            crate::event::parse_ip(addr).ok_or_else(|| format!("`{addr}` is not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("`/{p}`: the prefix length must be 0 to {max}")),
            },
        };
        Ok(IpBlock { network, prefix })
    }

    /// The address as written (host bits not cleared).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length (32 or 128 for a bare address).
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in this block (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, crate::event::canonical_ip(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The proxies whose forwarded lists are believed. Empty by default: nothing is.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    blocks: Vec<IpBlock>,
}

impl TrustedProxies {
    pub fn new(blocks: Vec<IpBlock>) -> TrustedProxies {
        TrustedProxies { blocks }
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|block| block.contains(ip))
    }

    /// The client address of a request that came from `connecting` with the forwarded list
    /// `forwarded` (as logged, comma separated).
    ///
    /// - `connecting` not a trusted proxy (or no proxies configured): `connecting`, whatever the
    ///   list says.
    /// - a trusted proxy: the right-most list entry that is not itself a trusted proxy; the
    ///   left-most entry when all are; `None` when that entry is not an address (`unknown`,
    ///   garbage), since the client is then unknown and the proxy is not the one to blame.
    /// - no `connecting` address (a format that logs only the list): `None`.
    ///
    /// ```
    /// use secpipe::classify::{IpBlock, TrustedProxies};
    /// let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    /// let none = TrustedProxies::default();
    /// let lb = TrustedProxies::new(vec![IpBlock::parse("10.0.0.0/8").unwrap()]);
    /// let list = Some("198.51.100.66, 203.0.113.7, 10.0.0.2");
    /// // Not trusted: the forwarded list (which the client may have forged) is ignored.
    /// assert_eq!(none.client_address(Some(ip("10.0.0.1")), list), Some(ip("10.0.0.1")));
    /// // Trusted: the right-most address not trusted; 198.51.100.66 was the client's own claim.
    /// assert_eq!(lb.client_address(Some(ip("10.0.0.1")), list), Some(ip("203.0.113.7")));
    /// assert_eq!(lb.client_address(Some(ip("192.0.2.1")), list), Some(ip("192.0.2.1")));
    /// assert_eq!(lb.client_address(Some(ip("10.0.0.1")), Some("unknown")), None);
    /// ```
    pub fn client_address(
        &self,
        connecting: Option<IpAddr>,
        forwarded: Option<&str>,
    ) -> Option<IpAddr> {
        let connecting = connecting?;
        if !self.is_trusted(connecting) {
            return Some(connecting);
        }
        let Some(forwarded) = forwarded.filter(|f| !f.trim().is_empty()) else {
            // The proxy itself made the request (a health check).
            return Some(connecting);
        };
        let mut leftmost = None;
        for entry in forwarded.rsplit(',') {
            let address = crate::parse::forwarded_entry_address(entry);
            match address {
                Some(ip) if self.is_trusted(ip) => leftmost = Some(ip),
                other => return other,
            }
        }
        leftmost
    }
}
