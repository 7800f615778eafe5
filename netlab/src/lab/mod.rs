//! The lab as plain data: its nodes, addresses, links and published ports,
//! read from a TOML file and checked before anything touches the kernel.
//!
//! A lab has a host node (a fresh network namespace, or the real root
//! namespace) with a Linux bridge that holds the gateway address of the
//! container subnet, an external link whose peer sits in the node `wan`
//! (standing in for the outside world), and containers, each in its own
//! namespace and attached to the bridge by a veth pair.
//!
//! This module is the model; `file` reads it from TOML, `validate`
//! checks it, and [`LabError`] says what is wrong.

mod error;
mod file;
mod validate;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

pub use error::LabError;

use crate::ipv4net::Ipv4Net;
use crate::ipv6net::Ipv6Net;
use crate::ports::{PortRange, PortSpec, Proto};

/// Name of the node that holds the bridge, the external link and the NAT.
pub const HOST_NODE: &str = "host";
/// Name of the node at the far end of the external link.
pub const WAN_NODE: &str = "wan";

/// The walkthrough's container subnet, Docker's second default bridge network.
const DEFAULT_SUBNET: Ipv4Net = Ipv4Net::literal(Ipv4Addr::new(172, 18, 0, 0), 16);
/// The host's end of the external link, in the benchmarking range (RFC 2544).
const DEFAULT_EXTERNAL: Ipv4Net = Ipv4Net::literal(Ipv4Addr::new(198, 18, 0, 1), 24);

/// A dual-stack lab's default IPv6 container subnet: unique local (RFC 4193), its digits
/// echoing the IPv4 subnet's.
pub const DEFAULT_SUBNET6: Ipv6Net =
    Ipv6Net::literal(Ipv6Addr::new(0xfd00, 0x172, 0x18, 0, 0, 0, 0, 0), 64);
/// The host's IPv6 end of the external link, in the IPv6 benchmarking range (RFC 5180).
const DEFAULT_EXTERNAL6: Ipv6Net = Ipv6Net::literal(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1), 64);
/// The `wan` node's IPv6 address.
const DEFAULT_PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

/// Where the host node lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HostMode {
    /// A network namespace of its own, leaving the real host untouched.
    #[default]
    Namespace,
    /// The real root namespace, as Docker does it.
    Root,
}

/// A container: a namespace attached to the bridge by a veth pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// Node name, also the namespace name.
    pub name: String,
    /// Address on the container subnet.
    pub address: Ipv4Addr,
    /// Address on the IPv6 container subnet, in a dual-stack lab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address6: Option<Ipv6Addr>,
    /// veth end inside the container, e.g. `ceth0`.
    pub device: String,
    /// veth end in the host node, enslaved to the bridge, e.g. `veth0`.
    pub host_device: String,
}

/// The link from the host node to the `wan` node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct External {
    /// Device in the host node, e.g. `eth0`.
    pub device: String,
    /// Address of `device`, with the prefix of the external network.
    pub address: Ipv4Net,
    /// Device in the `wan` node.
    pub peer_device: String,
    /// Address of `peer_device`, inside the external network.
    pub peer_address: Ipv4Addr,
}

/// A dual-stack lab's IPv6 addressing. Addresses are static: router advertisements are not
/// accepted and duplicate address detection is off, so a lab is usable when `up` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabIpv6 {
    /// Container subnet, stored as its network address, e.g. `fd00:172:18::/64`.
    pub subnet: Ipv6Net,
    /// Bridge address; by default `::1` of the subnet.
    pub gateway: Ipv6Addr,
    /// The host's address on the external link, with its prefix: `2001:2::1/64`.
    pub external: Ipv6Net,
    /// The `wan` node's address on the external link.
    pub peer: Ipv6Addr,
}

impl LabIpv6 {
    /// `subnet` with the gateway and external link defaults.
    pub fn with_defaults(subnet: Ipv6Net) -> Self {
        LabIpv6 {
            subnet,
            gateway: subnet.host(1).unwrap_or_else(|| subnet.network()),
            external: DEFAULT_EXTERNAL6,
            peer: DEFAULT_PEER6,
        }
    }

    /// A container's default IPv6 address: its IPv4 host number written in the same digits,
    /// so 172.18.0.10 gets `::10` and 172.18.1.5 (host 261) gets `::261`.
    pub fn default_address(&self, subnet4: Ipv4Net, address: Ipv4Addr) -> Option<Ipv6Addr> {
        let host = address.to_bits() & !subnet4.netmask().to_bits();
        let digits = u128::from_str_radix(&host.to_string(), 16).ok()?;
        self.subnet.host(digits)
    }
}

/// Ports of the host forwarded to a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publish {
    /// The container receiving the traffic.
    pub node: String,
    /// Host and container ports.
    pub spec: PortSpec,
}

/// A whole lab, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lab {
    /// Container subnet, stored as its network address, e.g. 172.18.0.0/16.
    pub subnet: Ipv4Net,
    /// Bridge address; by default the first host address of the subnet.
    pub gateway: Ipv4Addr,
    /// Bridge device name in the host node.
    pub bridge: String,
    /// Whether the host node is a namespace or the real host.
    pub host: HostMode,
    /// The link to the `wan` node.
    pub external: External,
    /// IPv6 addressing; `None` for an IPv4-only lab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<LabIpv6>,
    /// Masquerade traffic from the subnet that leaves by any device but the bridge.
    pub masquerade: bool,
    /// Containers, in creation order.
    pub containers: Vec<Container>,
    /// Published ports.
    pub publish: Vec<Publish>,
}

impl Lab {
    /// The walkthrough's network: 172.18.0.0/16 on bridge `br0` in a host
    /// namespace, `eth0` 198.18.0.1/24 to `wan` at 198.18.0.2, containers
    /// `netns0` (172.18.0.10) and `netns1` (172.18.0.20), and host port
    /// 5000/tcp published to `netns0`.
    pub fn default_lab() -> Lab {
        let containers = [("netns0", [172, 18, 0, 10]), ("netns1", [172, 18, 0, 20])]
            .into_iter()
            .enumerate()
            .map(|(index, (name, address))| Container {
                name: name.to_owned(),
                address: address.into(),
                address6: None,
                device: format!("ceth{index}"),
                host_device: format!("veth{index}"),
            })
            .collect();
        Lab {
            publish: vec![Publish {
                node: "netns0".to_owned(),
                spec: PortSpec {
                    host_ip: None,
                    host: PortRange::single(5000),
                    container: PortRange::single(5000),
                    proto: Proto::Tcp,
                },
            }],
            containers,
            ..Lab::empty()
        }
    }

    /// The default network with no containers and nothing published: what
    /// an empty lab file means.
    pub(super) fn empty() -> Lab {
        Lab {
            subnet: DEFAULT_SUBNET,
            gateway: Ipv4Addr::new(172, 18, 0, 1),
            bridge: "br0".to_owned(),
            host: HostMode::Namespace,
            external: External {
                device: "eth0".to_owned(),
                address: DEFAULT_EXTERNAL,
                peer_device: "eth0".to_owned(),
                peer_address: Ipv4Addr::new(198, 18, 0, 2),
            },
            ipv6: None,
            masquerade: true,
            containers: Vec::new(),
            publish: Vec::new(),
        }
    }

    /// The walkthrough's network made dual-stack: IPv6 subnet `fd00:172:18::/64` with the
    /// bridge on `::1`, containers on `::10` and `::20`, `eth0` `2001:2::1/64` to `wan` at
    /// `2001:2::2`.
    pub fn default_dual_stack() -> Lab {
        let mut lab = Lab::default_lab();
        lab.enable_default_ipv6();
        lab
    }

    /// Makes the lab dual-stack on the default IPv6 subnet ([`DEFAULT_SUBNET6`]), as `up
    /// --ipv6` does.
    pub fn enable_default_ipv6(&mut self) {
        self.enable_ipv6(LabIpv6::with_defaults(DEFAULT_SUBNET6));
    }

    /// Makes the lab dual-stack with `ipv6`, giving each container without an IPv6 address
    /// its default one.
    pub fn enable_ipv6(&mut self, ipv6: LabIpv6) {
        for c in &mut self.containers {
            if c.address6.is_none() {
                c.address6 = ipv6.default_address(self.subnet, c.address);
            }
        }
        self.ipv6 = Some(ipv6);
    }

    /// The host node's addresses that a port may be published on: the external address,
    /// the gateway and loopback, of each family the lab has.
    pub fn host_addresses(&self) -> Vec<IpAddr> {
        let mut addresses = vec![
            IpAddr::V4(self.external.address.addr()),
            IpAddr::V4(self.gateway),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ];
        if let Some(ipv6) = &self.ipv6 {
            addresses.extend([
                IpAddr::V6(ipv6.external.addr()),
                IpAddr::V6(ipv6.gateway),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]);
        }
        addresses
    }

    /// The container called `name`.
    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The container called `name`, or the error naming the lab's containers.
    pub fn require_container(&self, name: &str) -> Result<&Container, LabError> {
        self.container(name).ok_or_else(|| LabError::NoSuchNode {
            node: name.to_owned(),
            what: "containers",
            known: self
                .containers
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Whether `name` is one of the lab's nodes (host, wan or a container), or the error
    /// naming them.
    pub fn require_node(&self, name: &str) -> Result<(), LabError> {
        let names = self.node_names();
        if names.iter().any(|n| n == name) {
            return Ok(());
        }
        Err(LabError::NoSuchNode {
            node: name.to_owned(),
            what: "nodes",
            known: names.join(", "),
        })
    }

    /// Node names in creation order: `host`, `wan`, then the containers.
    pub fn node_names(&self) -> Vec<String> {
        [HOST_NODE, WAN_NODE]
            .into_iter()
            .map(str::to_owned)
            .chain(self.containers.iter().map(|c| c.name.clone()))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    pub(crate) use crate::ipv4net::tests::{ip, net};

    pub(crate) fn spec(s: &str) -> PortSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// Each message must be a single line that names the offending value.
    pub(crate) fn assert_message(err: &LabError, needles: &[&str]) {
        let message = err.to_string();
        assert!(!message.contains('\n'), "multi-line: {message}");
        for needle in needles {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
    }

    #[test]
    fn default_lab_is_the_walkthrough_network() {
        let lab = Lab::default_lab();
        lab.validate().unwrap();
        assert_eq!(lab.subnet, net("172.18.0.0/16"));
        assert_eq!(lab.gateway, ip(172, 18, 0, 1));
        assert_eq!(lab.bridge, "br0");
        assert_eq!(lab.host, HostMode::Namespace);
        assert_eq!(lab.external.address, net("198.18.0.1/24"));
        assert_eq!(lab.external.peer_address, ip(198, 18, 0, 2));
        assert!(lab.masquerade);
        assert_eq!(lab.node_names(), ["host", "wan", "netns0", "netns1"]);
        let netns1 = lab.container("netns1").unwrap();
        assert_eq!(netns1.address, ip(172, 18, 0, 20));
        assert_eq!(
            (netns1.device.as_str(), netns1.host_device.as_str()),
            ("ceth1", "veth1")
        );
        assert!(lab.container("netns2").is_none());
        assert_eq!(lab.publish.len(), 1);
        assert_eq!(lab.publish[0].node, "netns0");
        assert_eq!(lab.publish[0].spec, spec("5000:5000/tcp"));
    }
}
