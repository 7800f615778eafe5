//! IPv4 networks written the way `ip` writes them, `172.18.0.1/16`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A malformed `address/prefix`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR \"{input}\": {reason}")]
pub struct CidrError {
    /// The text as written.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

/// An IPv4 address with a prefix length, as in `172.18.0.1/16`. The address
/// keeps its host bits: `198.18.0.1/24` is an interface address, not a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Net {
    /// 0.0.0.0/0, every address: the destination of a default route.
    pub const ANY: Ipv4Net = Ipv4Net::literal(Ipv4Addr::UNSPECIFIED, 0);

    /// `addr/prefix_len`; fails when `prefix_len` is above 32.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Result<Self, CidrError> {
        if prefix_len > 32 {
            return Err(CidrError {
                input: format!("{addr}/{prefix_len}"),
                reason: format!("prefix length {prefix_len} is larger than 32"),
            });
        }
        Ok(Ipv4Net { addr, prefix_len })
    }

    /// `addr/prefix_len` for constants: a prefix length above 32 fails the build.
    pub const fn literal(addr: Ipv4Addr, prefix_len: u8) -> Self {
        assert!(prefix_len <= 32, "prefix length above 32");
        Ipv4Net { addr, prefix_len }
    }

    /// The address as given, host bits included.
    pub fn addr(self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length, 0 to 32.
    pub fn prefix_len(self) -> u8 {
        self.prefix_len
    }

    /// The address with its host bits cleared.
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.addr.to_bits() & self.netmask().to_bits())
    }

    /// The prefix as a dotted mask, e.g. 255.255.0.0 for /16.
    pub fn netmask(self) -> Ipv4Addr {
        Ipv4Addr::from_bits(mask_bits(self.prefix_len))
    }

    /// The address with all host bits set.
    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.addr.to_bits() | !self.netmask().to_bits())
    }

    /// The network itself: same prefix, host bits cleared.
    #[must_use]
    pub fn trunc(self) -> Ipv4Net {
        Ipv4Net {
            addr: self.network(),
            prefix_len: self.prefix_len,
        }
    }

    /// Whether `addr` lies in this network.
    pub fn contains(self, addr: Ipv4Addr) -> bool {
        addr.to_bits() & self.netmask().to_bits() == self.network().to_bits()
    }

    /// Whether the two networks share any address, which for prefixes
    /// means one contains the other.
    pub fn overlaps(self, other: Ipv4Net) -> bool {
        let mask = mask_bits(self.prefix_len.min(other.prefix_len));
        self.addr.to_bits() & mask == other.addr.to_bits() & mask
    }

    /// The first address after the network address: the conventional
    /// gateway. `None` for /31 and /32, which have no such address.
    pub fn first_host(self) -> Option<Ipv4Addr> {
        (self.prefix_len <= 30).then(|| Ipv4Addr::from_bits(self.network().to_bits() | 1))
    }
}

fn mask_bits(prefix_len: u8) -> u32 {
    // `checked_shl` because shifting a u32 by 32 overflows: /0 is no bits.
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len.min(32)))
        .unwrap_or(0)
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Ipv4Net {
    type Err = CidrError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (addr, prefix_len) = split_cidr(input, 32, "IPv4", "172.18.0.0/16")?;
        Ok(Ipv4Net { addr, prefix_len })
    }
}

/// `ADDRESS/PREFIX` of one family: the address, and a prefix length of at most `max_len`
/// (`family` and `example` go in the messages).
pub(crate) fn split_cidr<A: FromStr>(
    input: &str,
    max_len: u8,
    family: &str,
    example: &str,
) -> Result<(A, u8), CidrError> {
    let bad = |reason: &str| CidrError {
        input: input.to_owned(),
        reason: reason.to_owned(),
    };
    let (addr, prefix) = input
        .split_once('/')
        .ok_or_else(|| bad(&format!("expected ADDRESS/PREFIX, e.g. {example}")))?;
    let addr = addr
        .parse()
        .map_err(|_| bad(&format!("\"{addr}\" is not an {family} address")))?;
    // Only plain digits: `u8::from_str` would also take "+16".
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(&format!("prefix length \"{prefix}\" is not a number")));
    }
    // All digits, so a failed parse can only mean too large.
    let prefix_len = prefix
        .parse::<u8>()
        .ok()
        .filter(|&len| len <= max_len)
        .ok_or_else(|| bad(&format!("prefix length {prefix} is larger than {max_len}")))?;
    Ok((addr, prefix_len))
}

// Lab files and JSON output write networks the way `ip` does.
impl Serialize for Ipv4Net {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    pub(crate) fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(a, b, c, d)
    }

    #[test]
    fn ipv4net_arithmetic() {
        let n = net("172.18.5.6/16");
        assert_eq!(n.addr(), ip(172, 18, 5, 6));
        assert_eq!(n.prefix_len(), 16);
        assert_eq!(n.network(), ip(172, 18, 0, 0));
        assert_eq!(n.netmask(), ip(255, 255, 0, 0));
        assert_eq!(n.broadcast(), ip(172, 18, 255, 255));
        assert_eq!(n.trunc(), net("172.18.0.0/16"));
        assert!(n.contains(ip(172, 18, 255, 1)));
        assert!(!n.contains(ip(172, 19, 0, 1)));
        assert_eq!(n.to_string(), "172.18.5.6/16");

        let all = net("0.0.0.0/0");
        assert_eq!(all.netmask(), ip(0, 0, 0, 0));
        assert_eq!(all.broadcast(), ip(255, 255, 255, 255));
        assert!(all.contains(ip(8, 8, 8, 8)));
        let one = net("10.1.2.3/32");
        assert_eq!(one.netmask(), ip(255, 255, 255, 255));
        assert_eq!(one.network(), ip(10, 1, 2, 3));
        assert!(one.contains(ip(10, 1, 2, 3)));
        assert!(!one.contains(ip(10, 1, 2, 4)));
        assert_eq!(net("10.0.0.0/30").first_host(), Some(ip(10, 0, 0, 1)));
        assert_eq!(net("10.0.0.0/31").first_host(), None);
    }

    #[test]
    fn ipv4net_overlaps() {
        let cases = [
            ("172.18.0.0/16", "172.18.3.0/24", true),
            ("172.16.0.0/12", "172.18.0.0/16", true),
            ("172.18.0.0/16", "172.19.0.0/16", false),
            ("198.18.0.1/24", "198.18.0.200/32", true),
            ("198.18.0.1/24", "198.18.1.1/24", false),
            ("0.0.0.0/0", "10.0.0.0/8", true),
        ];
        for (a, b, expected) in cases {
            assert_eq!(net(a).overlaps(net(b)), expected, "{a} {b}");
            assert_eq!(net(b).overlaps(net(a)), expected, "{b} {a}");
        }
    }

    #[test]
    fn ipv4net_rejects_malformed() {
        let cases = [
            ("172.18.0.0", "expected ADDRESS/PREFIX"),
            ("172.18.0/16", "\"172.18.0\" is not an IPv4 address"),
            ("172.18.0.0/", "prefix length \"\" is not a number"),
            ("172.18.0.0/+8", "prefix length \"+8\" is not a number"),
            ("172.18.0.0/33", "prefix length 33 is larger than 32"),
            ("172.18.0.0/300", "prefix length 300 is larger than 32"),
            ("::1/64", "not an IPv4 address"),
        ];
        for (text, needle) in cases {
            let message = text.parse::<Ipv4Net>().unwrap_err().to_string();
            assert!(message.contains(text), "{text}: {message}");
            assert!(message.contains(needle), "{text}: {message}");
        }
        let message = Ipv4Net::new(ip(1, 2, 3, 4), 40).unwrap_err().to_string();
        assert!(message.contains("1.2.3.4/40"), "{message}");
    }
}
