//! IPv6 networks written the way `ip -6` writes them, `fd00:172:18::1/64`.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ipv4net::{CidrError, split_cidr};

/// An IPv6 address with a prefix length. As with [`crate::ipv4net::Ipv4Net`], the address
/// keeps its host bits: `2001:2::1/64` is an interface address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Net {
    addr: Ipv6Addr,
    prefix_len: u8,
}

impl Ipv6Net {
    /// `addr/prefix_len` for constants: a prefix length above 128 fails the build.
    pub const fn literal(addr: Ipv6Addr, prefix_len: u8) -> Self {
        assert!(prefix_len <= 128, "prefix length above 128");
        Ipv6Net { addr, prefix_len }
    }

    /// `addr/prefix_len`; fails when `prefix_len` is above 128.
    pub fn new(addr: Ipv6Addr, prefix_len: u8) -> Result<Self, CidrError> {
        if prefix_len > 128 {
            return Err(CidrError {
                input: format!("{addr}/{prefix_len}"),
                reason: format!("prefix length {prefix_len} is larger than 128"),
            });
        }
        Ok(Ipv6Net { addr, prefix_len })
    }

    /// The address as given, host bits included.
    pub fn addr(self) -> Ipv6Addr {
        self.addr
    }

    /// The prefix length, 0 to 128.
    pub fn prefix_len(self) -> u8 {
        self.prefix_len
    }

    /// The address with its host bits cleared.
    pub fn network(self) -> Ipv6Addr {
        Ipv6Addr::from_bits(self.addr.to_bits() & mask_bits(self.prefix_len))
    }

    /// The network itself: same prefix, host bits cleared.
    #[must_use]
    pub fn trunc(self) -> Ipv6Net {
        Ipv6Net {
            addr: self.network(),
            prefix_len: self.prefix_len,
        }
    }

    /// Whether `addr` lies in this network.
    pub fn contains(self, addr: Ipv6Addr) -> bool {
        addr.to_bits() & mask_bits(self.prefix_len) == self.network().to_bits()
    }

    /// Whether the two networks share any address.
    pub fn overlaps(self, other: Ipv6Net) -> bool {
        let mask = mask_bits(self.prefix_len.min(other.prefix_len));
        self.addr.to_bits() & mask == other.addr.to_bits() & mask
    }

    /// The address `host` places after the network address (`::1` is 1), or `None` when
    /// `host` does not fit in the host bits.
    pub fn host(self, host: u128) -> Option<Ipv6Addr> {
        (host & mask_bits(self.prefix_len) == 0)
            .then(|| Ipv6Addr::from_bits(self.network().to_bits() | host))
    }

    /// `address` with this network's prefix length: an interface address on it.
    #[must_use]
    pub fn with_address(self, address: Ipv6Addr) -> Ipv6Net {
        Ipv6Net {
            addr: address,
            prefix_len: self.prefix_len,
        }
    }
}

fn mask_bits(prefix_len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix_len.min(128)))
        .unwrap_or(0)
}

impl fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Ipv6Net {
    type Err = CidrError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (addr, prefix_len) = split_cidr(input, 128, "IPv6", "fd00:172:18::/64")?;
        Ok(Ipv6Net { addr, prefix_len })
    }
}

impl Serialize for Ipv6Net {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv6Net {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn net6(s: &str) -> Ipv6Net {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    pub(crate) fn ip6(s: &str) -> Ipv6Addr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn ipv6net_arithmetic() {
        let n = net6("fd00:172:18::5/64");
        assert_eq!(n.prefix_len(), 64);
        assert_eq!(n.network(), ip6("fd00:172:18::"));
        assert_eq!(n.trunc().to_string(), "fd00:172:18::/64");
        assert!(n.contains(ip6("fd00:172:18::ffff:1")));
        assert!(!n.contains(ip6("fd00:172:19::1")));
        assert_eq!(n.host(0x10), Some(ip6("fd00:172:18::10")));
        assert_eq!(net6("fd00::/120").host(0x100), None);
        assert_eq!(net6("fd00::/120").host(0xff), Some(ip6("fd00::ff")));
        assert!(net6("::/0").contains(ip6("2001:2::1")));
        assert!(net6("fd00::/8").overlaps(net6("fd00:172:18::/64")));
        assert!(!net6("2001:2::/48").overlaps(net6("fd00:172:18::/64")));
        assert_eq!(
            n.with_address(ip6("fd00:172:18::10")).to_string(),
            "fd00:172:18::10/64"
        );
    }

    #[test]
    fn ipv6net_rejects_malformed() {
        for (text, needle) in [
            ("fd00::", "expected ADDRESS/PREFIX"),
            ("172.18.0.0/16", "not an IPv6 address"),
            ("fd00::/129", "prefix length 129 is larger than 128"),
            ("fd00::/x", "prefix length \"x\" is not a number"),
        ] {
            let message = text.parse::<Ipv6Net>().unwrap_err().to_string();
            assert!(message.contains(text), "{text}: {message}");
            assert!(message.contains(needle), "{text}: {message}");
        }
    }
}
