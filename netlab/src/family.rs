//! IPv4 and IPv6: which family a lab, a port spec or a rule is about, and a lab's addresses
//! in one family, as the backends that write rules per family (ip and ip6) need them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{
    lab::{Container, Lab},
    ports::PortSpec,
};

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// Both families, IPv4 first.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// Bits in an address: the prefix length of one host.
    pub fn host_prefix_len(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The loopback network: 127.0.0.0/8, `::1/128`.
    pub fn loopback_net(self) -> IpPrefix {
        match self {
            Family::V4 => IpPrefix(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
            Family::V6 => IpPrefix(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
        }
    }
}

/// A network of either family: its address and prefix length, written `network/len` as
/// iptables and nft write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPrefix(pub IpAddr, pub u8);

impl std::fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.0, self.1)
    }
}

/// `ip:port` as a DNAT target writes it: IPv6 in brackets.
pub fn socket_text(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }
}

/// A lab's addresses in one family.
#[derive(Debug, Clone, Copy)]
pub struct Addressing<'a> {
    pub family: Family,
    lab: &'a Lab,
}

impl<'a> Addressing<'a> {
    /// `lab`'s addressing in `family`, if it has that family.
    pub fn of(lab: &'a Lab, family: Family) -> Option<Self> {
        (family == Family::V4 || lab.ipv6.is_some()).then_some(Addressing { family, lab })
    }

    /// Each family the lab has, IPv4 first.
    pub fn each(lab: &'a Lab) -> impl Iterator<Item = Addressing<'a>> {
        Family::ALL
            .into_iter()
            .filter_map(|family| Addressing::of(lab, family))
    }

    /// The container subnet.
    pub fn subnet(self) -> IpPrefix {
        match (self.family, self.lab.ipv6) {
            (Family::V6, Some(ipv6)) => {
                IpPrefix(IpAddr::V6(ipv6.subnet.network()), ipv6.subnet.prefix_len())
            }
            _ => IpPrefix(
                IpAddr::V4(self.lab.subnet.network()),
                self.lab.subnet.prefix_len(),
            ),
        }
    }

    /// The bridge's address.
    pub fn gateway(self) -> IpAddr {
        match (self.family, self.lab.ipv6) {
            (Family::V6, Some(ipv6)) => IpAddr::V6(ipv6.gateway),
            _ => IpAddr::V4(self.lab.gateway),
        }
    }

    /// `container`'s address.
    pub fn container(self, container: &Container) -> Option<IpAddr> {
        match self.family {
            Family::V4 => Some(IpAddr::V4(container.address)),
            Family::V6 => container.address6.map(IpAddr::V6),
        }
    }

    /// Where `spec` is published in this family: `None` when it is not, `Some(None)` on
    /// every address, `Some(Some(ip))` on `ip` only.
    pub fn host_ip(self, spec: &PortSpec) -> Option<Option<IpAddr>> {
        match self.family {
            Family::V4 => spec.host_ip4().map(|ip| ip.map(IpAddr::V4)),
            Family::V6 => spec.host_ip6().map(|ip| ip.map(IpAddr::V6)),
        }
    }
}
