//! IPv4 and IPv6: which family a lab, a port spec or a rule is about, and a lab's addresses
//! in one family, as the backends that write rules per family (ip and ip6) need them.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{
    lab::{Container, Lab},
    ports::PortSpec,
};

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
pub enum Family {
    #[serde(rename = "4")]
    #[value(name = "4")]
    V4,
    #[serde(rename = "6")]
    #[value(name = "6")]
    V6,
}

impl Family {
    /// Both families, IPv4 first.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// `IPv4` or `IPv6`.
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    /// Bits in an address: the prefix length of one host.
    pub fn host_prefix_len(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The loopback network, as iptables and nft write it.
    pub fn loopback_net(self) -> &'static str {
        match self {
            Family::V4 => "127.0.0.0/8",
            Family::V6 => "::1/128",
        }
    }

    /// The family of `ip`.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
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

    /// The container subnet, `network/prefix`.
    pub fn subnet(self) -> String {
        match (self.family, self.lab.ipv6) {
            (Family::V6, Some(ipv6)) => ipv6.subnet.to_string(),
            _ => self.lab.subnet.to_string(),
        }
    }

    /// The bridge's address.
    pub fn gateway(self) -> IpAddr {
        match (self.family, self.lab.ipv6) {
            (Family::V6, Some(ipv6)) => IpAddr::V6(ipv6.gateway),
            _ => IpAddr::V4(self.lab.gateway),
        }
    }

    /// The host's address on the external link.
    pub fn external(self) -> IpAddr {
        match (self.family, self.lab.ipv6) {
            (Family::V6, Some(ipv6)) => IpAddr::V6(ipv6.external.addr()),
            _ => IpAddr::V4(self.lab.external.address.addr()),
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
