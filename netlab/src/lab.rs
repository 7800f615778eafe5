//! The lab as plain data: its nodes, addresses, links and published ports,
//! read from a TOML file and checked before anything touches the kernel.
//!
//! A lab has a host node (a fresh network namespace, or the real root
//! namespace) with a Linux bridge that holds the gateway address of the
//! container subnet, an external link whose peer sits in the node `wan`
//! (standing in for the outside world), and containers, each in its own
//! namespace and attached to the bridge by a veth pair.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ports::{PortRange, PortSpec, Proto};

/// Name of the node that holds the bridge, the external link and the NAT.
pub const HOST_NODE: &str = "host";
/// Name of the node at the far end of the external link.
pub const WAN_NODE: &str = "wan";

/// Linux's `IFNAMSIZ` less the terminating NUL; network namespace names are
/// held to the same limit so every node name is also a valid device name.
const MAX_NAME_LEN: usize = 15;

/// An IPv4 address with a prefix length, as in `172.18.0.1/16`. The address
/// keeps its host bits: `198.18.0.1/24` is an interface address, not a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Net {
    /// `addr/prefix_len`; fails when `prefix_len` is above 32.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Result<Self, LabError> {
        if prefix_len > 32 {
            return Err(LabError::Cidr {
                input: format!("{addr}/{prefix_len}"),
                reason: format!("prefix length {prefix_len} is larger than 32"),
            });
        }
        Ok(Ipv4Net { addr, prefix_len })
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
    fn first_host(self) -> Option<Ipv4Addr> {
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
    type Err = LabError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| LabError::Cidr {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let (addr, prefix) = input
            .split_once('/')
            .ok_or_else(|| bad("expected ADDRESS/PREFIX, e.g. 172.18.0.0/16"))?;
        let addr = addr
            .parse()
            .map_err(|_| bad(&format!("\"{addr}\" is not an IPv4 address")))?;
        // Only plain digits: `u8::from_str` would also take "+16".
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(&format!("prefix length \"{prefix}\" is not a number")));
        }
        // All digits, so a failed parse can only mean too large.
        let prefix_len = prefix
            .parse::<u8>()
            .ok()
            .filter(|&len| len <= 32)
            .ok_or_else(|| bad(&format!("prefix length {prefix} is larger than 32")))?;
        Ok(Ipv4Net { addr, prefix_len })
    }
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
    /// Masquerade traffic from the subnet that leaves by any device but the bridge.
    pub masquerade: bool,
    /// Containers, in creation order.
    pub containers: Vec<Container>,
    /// Published ports.
    pub publish: Vec<Publish>,
}

/// Why a lab is invalid or could not be read. Each message is one line and
/// quotes the offending value.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A command named a node the lab does not have.
    #[error("unknown node \"{node}\" ({what}: {known})")]
    NoSuchNode {
        node: String,
        /// "nodes" or "containers": what could have been named.
        what: &'static str,
        /// Those names, comma-separated.
        known: String,
    },
    /// The TOML did not parse, or a key or value in it was not understood.
    #[error("lab file {location}: {message}")]
    File {
        /// "line L, column C", or "(position unknown)".
        location: String,
        /// toml's message, on one line.
        message: String,
    },
    /// A malformed `address/prefix`.
    #[error("invalid CIDR \"{input}\": {reason}")]
    Cidr {
        /// The text as written.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A node or device name that Linux or netlab would refuse.
    #[error("invalid {what} \"{name}\": {reason}")]
    Name {
        /// Which name, e.g. `bridge name`.
        what: String,
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A container named like a built-in node.
    #[error("container name \"{0}\" is reserved for a built-in node")]
    ReservedName(String),
    /// Two containers with one name.
    #[error("container name \"{0}\" is used twice")]
    DuplicateContainer(String),
    /// One device name for two devices in the host node.
    #[error("device name \"{name}\" is used by both {first} and {second} in the host node")]
    DuplicateDevice {
        /// The name.
        name: String,
        /// The first user.
        first: String,
        /// The second user.
        second: String,
    },
    /// One address for two interfaces on the subnet.
    #[error("address {address} is used by both {first} and {second}")]
    DuplicateAddress {
        /// The address.
        address: Ipv4Addr,
        /// The first user.
        first: String,
        /// The second user.
        second: String,
    },
    /// The subnet has too few addresses for a gateway and containers.
    #[error("subnet {0} is too small: its prefix length must be at most 30")]
    SubnetTooSmall(Ipv4Net),
    /// The subnet was written with host bits set.
    #[error("subnet {subnet} has host bits set; write it as {network}")]
    SubnetHostBits {
        /// As written.
        subnet: Ipv4Net,
        /// What was probably meant.
        network: Ipv4Net,
    },
    /// An address outside the network it must be in.
    #[error("{what} {address} is outside {network}")]
    OutsideNetwork {
        /// Whose address, e.g. `gateway`.
        what: String,
        /// The address.
        address: Ipv4Addr,
        /// The network it should be in.
        network: Ipv4Net,
    },
    /// An address that is the network or broadcast address of its network.
    #[error("{what} {address} is the {kind} address of {network}")]
    UnusableAddress {
        /// Whose address.
        what: String,
        /// The address.
        address: Ipv4Addr,
        /// `network` or `broadcast`.
        kind: &'static str,
        /// Its network.
        network: Ipv4Net,
    },
    /// The external network and the container subnet share addresses.
    #[error("external network {external} overlaps the container subnet {subnet}")]
    ExternalOverlap {
        /// The external network.
        external: Ipv4Net,
        /// The container subnet.
        subnet: Ipv4Net,
    },
    /// The wan node's address is the host's own external address.
    #[error("external peer_address {0} is the same as the external address")]
    PeerIsHost(Ipv4Addr),
    /// A publish aimed at something that is not a container.
    #[error("publish \"{spec}\" targets \"{node}\", which is not a container of the lab")]
    UnknownNode {
        /// The node named.
        node: String,
        /// The spec, for finding it in the file.
        spec: PortSpec,
    },
    /// A publish bound to an address the host node doesn't have.
    #[error("publish \"{spec}\": host address {address} is not an address of the host")]
    ForeignHostIp {
        /// The address.
        address: Ipv4Addr,
        /// The spec.
        spec: PortSpec,
    },
    /// Two publishes claiming the same host port.
    #[error(
        "publish \"{first}\" (to \"{first_node}\") conflicts with \"{second}\" (to \"{second_node}\")"
    )]
    PublishConflict {
        /// The earlier spec.
        first: PortSpec,
        /// Its container.
        first_node: String,
        /// The later spec.
        second: PortSpec,
        /// Its container.
        second_node: String,
    },
    /// In root mode, a lab network that the host already routes.
    #[error("{what} {network} overlaps the host's existing route to {route}")]
    RouteOverlap {
        /// `subnet` or `external network`.
        what: &'static str,
        /// The lab's network.
        network: Ipv4Net,
        /// The host's route destination.
        route: Ipv4Net,
    },
    /// In root mode, a device the lab would create that the host already has.
    #[error("{what} \"{name}\" already exists on the host")]
    LinkExists {
        /// Which device, e.g. `bridge`.
        what: String,
        /// The name.
        name: String,
    },
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
    fn empty() -> Lab {
        Lab {
            subnet: Ipv4Net {
                addr: Ipv4Addr::new(172, 18, 0, 0),
                prefix_len: 16,
            },
            gateway: Ipv4Addr::new(172, 18, 0, 1),
            bridge: "br0".to_owned(),
            host: HostMode::Namespace,
            external: External {
                device: "eth0".to_owned(),
                address: Ipv4Net {
                    addr: Ipv4Addr::new(198, 18, 0, 1),
                    prefix_len: 24,
                },
                peer_device: "eth0".to_owned(),
                peer_address: Ipv4Addr::new(198, 18, 0, 2),
            },
            masquerade: true,
            containers: Vec::new(),
            publish: Vec::new(),
        }
    }

    /// Parse a TOML lab file, fill defaults, then validate.
    ///
    /// Every key is optional except a container's `name` and `address`. An
    /// empty file is the default network (subnet 172.18.0.0/16 with gateway
    /// 172.18.0.1 on `br0`, host namespace, external link `eth0`
    /// 198.18.0.1/24 to `wan` at 198.18.0.2, masquerade on) with no
    /// containers and nothing published. A missing `gateway` is the first
    /// host address of `subnet`; a container's missing `device` and
    /// `host_device` are `ceth{i}` and `veth{i}`, `i` being its position in
    /// the file. Each string of a `[[publish]]` table's `ports` becomes one
    /// [`Publish`].
    ///
    /// ```toml
    /// subnet = "172.18.0.0/16"
    /// gateway = "172.18.0.1"
    /// bridge = "br0"
    /// host = "namespace"          # or "root"
    /// masquerade = true
    /// [external]                  # any subset of these keys
    /// device = "eth0"
    /// address = "198.18.0.1/24"
    /// peer_device = "eth0"
    /// peer_address = "198.18.0.2"
    /// [[container]]
    /// name = "web"
    /// address = "172.18.0.10"
    /// device = "ceth0"
    /// host_device = "veth0"
    /// [[publish]]
    /// node = "web"
    /// ports = ["8080:80", "127.0.0.1:5353:53/udp"]
    /// ```
    pub fn from_toml(text: &str) -> Result<Lab, LabError> {
        let file: LabFile = toml::from_str(text).map_err(|e| file_error(text, &e))?;
        let lab = file.into_lab();
        lab.validate()?;
        Ok(lab)
    }

    /// All checks that need no kernel state.
    pub fn validate(&self) -> Result<(), LabError> {
        self.validate_subnet()?;
        self.validate_external()?;
        self.validate_names()?;
        self.validate_containers()?;
        self.validate_publish()
    }

    fn validate_subnet(&self) -> Result<(), LabError> {
        let subnet = self.subnet;
        if subnet.prefix_len > 30 {
            return Err(LabError::SubnetTooSmall(subnet));
        }
        if subnet.addr != subnet.network() {
            return Err(LabError::SubnetHostBits {
                subnet,
                network: subnet.trunc(),
            });
        }
        check_host_address("gateway", self.gateway, subnet)
    }

    fn validate_external(&self) -> Result<(), LabError> {
        let ext = &self.external;
        let network = ext.address.trunc();
        if network.overlaps(self.subnet) {
            return Err(LabError::ExternalOverlap {
                external: network,
                subnet: self.subnet,
            });
        }
        // /31 and /32 have no network or broadcast address to avoid.
        if network.prefix_len <= 30 {
            check_host_address("external address", ext.address.addr, network)?;
            check_host_address("external peer_address", ext.peer_address, network)?;
        } else if !network.contains(ext.peer_address) {
            return Err(LabError::OutsideNetwork {
                what: "external peer_address".to_owned(),
                address: ext.peer_address,
                network,
            });
        }
        if ext.peer_address == ext.address.addr {
            return Err(LabError::PeerIsHost(ext.peer_address));
        }
        Ok(())
    }

    fn validate_names(&self) -> Result<(), LabError> {
        check_device("bridge name", &self.bridge)?;
        check_device("external device", &self.external.device)?;
        check_device("external peer_device", &self.external.peer_device)?;
        let mut containers = HashSet::new();
        for c in &self.containers {
            check_name("container name", &c.name)?;
            if c.name == HOST_NODE || c.name == WAN_NODE {
                return Err(LabError::ReservedName(c.name.clone()));
            }
            if !containers.insert(c.name.as_str()) {
                return Err(LabError::DuplicateContainer(c.name.clone()));
            }
            check_device(&format!("device of container \"{}\"", c.name), &c.device)?;
            check_device(
                &format!("host_device of container \"{}\"", c.name),
                &c.host_device,
            )?;
        }
        // Only these share the host node; container ends each have a
        // namespace of their own and the peer is alone in `wan`.
        let mut devices: HashMap<&str, String> = HashMap::new();
        let host_side = [
            (self.bridge.as_str(), "the bridge".to_owned()),
            (
                self.external.device.as_str(),
                "the external device".to_owned(),
            ),
        ]
        .into_iter()
        .chain(self.containers.iter().map(|c| {
            (
                c.host_device.as_str(),
                format!("the host_device of container \"{}\"", c.name),
            )
        }));
        for (name, user) in host_side {
            if let Some(first) = devices.insert(name, user.clone()) {
                return Err(LabError::DuplicateDevice {
                    name: name.to_owned(),
                    first,
                    second: user,
                });
            }
        }
        Ok(())
    }

    fn validate_containers(&self) -> Result<(), LabError> {
        let mut addresses: HashMap<Ipv4Addr, String> = HashMap::new();
        addresses.insert(self.gateway, "the gateway".to_owned());
        for c in &self.containers {
            let what = format!("container \"{}\"", c.name);
            check_host_address(&format!("address of {what}"), c.address, self.subnet)?;
            if let Some(first) = addresses.insert(c.address, what.clone()) {
                return Err(LabError::DuplicateAddress {
                    address: c.address,
                    first,
                    second: what,
                });
            }
        }
        Ok(())
    }

    fn validate_publish(&self) -> Result<(), LabError> {
        let host_addresses = [
            self.external.address.addr,
            self.gateway,
            Ipv4Addr::LOCALHOST,
        ];
        for (index, p) in self.publish.iter().enumerate() {
            if self.container(&p.node).is_none() {
                return Err(LabError::UnknownNode {
                    node: p.node.clone(),
                    spec: p.spec.clone(),
                });
            }
            if let Some(address) = p.spec.host_ip
                && !address.is_unspecified()
                && !host_addresses.contains(&address)
            {
                return Err(LabError::ForeignHostIp {
                    address,
                    spec: p.spec.clone(),
                });
            }
            if let Some(earlier) = self.publish[..index]
                .iter()
                .find(|e| e.spec.conflicts_with(&p.spec))
            {
                return Err(LabError::PublishConflict {
                    first: earlier.spec.clone(),
                    first_node: earlier.node.clone(),
                    second: p.spec.clone(),
                    second_node: p.node.clone(),
                });
            }
        }
        Ok(())
    }

    /// Checks for `host = "root"` against the real host's state, passed in
    /// so they can be tested: refuse a subnet or external network that
    /// overlaps one of the host's route destinations (default routes,
    /// prefix length 0, are ignored since every network overlaps them), and
    /// refuse a bridge, external device or container `host_device` whose name
    /// the host already uses. A lab whose host is a namespace of its own
    /// cannot clash with the real host, so for it this always succeeds.
    pub fn validate_against_host(
        &self,
        routes: &[Ipv4Net],
        link_names: &[String],
    ) -> Result<(), LabError> {
        if self.host == HostMode::Namespace {
            return Ok(());
        }
        let networks = [
            ("subnet", self.subnet.trunc()),
            ("external network", self.external.address.trunc()),
        ];
        for (what, network) in networks {
            if let Some(&route) = routes
                .iter()
                .find(|r| r.prefix_len != 0 && r.overlaps(network))
            {
                return Err(LabError::RouteOverlap {
                    what,
                    network,
                    route,
                });
            }
        }
        let devices = [
            ("bridge".to_owned(), &self.bridge),
            ("external device".to_owned(), &self.external.device),
        ]
        .into_iter()
        .chain(self.containers.iter().map(|c| {
            (
                format!("host_device of container \"{}\"", c.name),
                &c.host_device,
            )
        }));
        for (what, name) in devices {
            if link_names.contains(name) {
                return Err(LabError::LinkExists {
                    what,
                    name: name.clone(),
                });
            }
        }
        Ok(())
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

/// `address` must be inside `network` and be neither its network nor its
/// broadcast address.
fn check_host_address(what: &str, address: Ipv4Addr, network: Ipv4Net) -> Result<(), LabError> {
    let network = network.trunc();
    if !network.contains(address) {
        return Err(LabError::OutsideNetwork {
            what: what.to_owned(),
            address,
            network,
        });
    }
    let kind = if address == network.network() {
        "network"
    } else if address == network.broadcast() {
        "broadcast"
    } else {
        return Ok(());
    };
    Err(LabError::UnusableAddress {
        what: what.to_owned(),
        address,
        kind,
        network,
    })
}

/// Names end up as device names or as namespace names, which are files
/// under /run/netns, so keep to what is safe as both.
fn check_name(what: &str, name: &str) -> Result<(), LabError> {
    let reason = if name.is_empty() {
        "name is empty".to_owned()
    } else if name.len() > MAX_NAME_LEN {
        format!(
            "{} bytes is longer than Linux allows ({MAX_NAME_LEN})",
            name.len()
        )
    } else if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        format!("character {c:?} is not allowed (only A-Z a-z 0-9 _ . -)")
    } else if name == "." || name == ".." {
        "not a usable name".to_owned()
    } else {
        return Ok(());
    };
    Err(LabError::Name {
        what: what.to_owned(),
        name: name.to_owned(),
        reason,
    })
}

/// A device name, which also must not be the loopback device every
/// namespace already has.
fn check_device(what: &str, name: &str) -> Result<(), LabError> {
    check_name(what, name)?;
    if name == "lo" {
        return Err(LabError::Name {
            what: what.to_owned(),
            name: name.to_owned(),
            reason: "the loopback device already has that name".to_owned(),
        });
    }
    Ok(())
}

/// toml's `Display` spans several lines with a source excerpt; make one line
/// of its message and position instead, quoting the offending text when the
/// message doesn't (serde's "invalid IPv4 address syntax" names no value).
fn file_error(text: &str, err: &toml::de::Error) -> LabError {
    let lines: Vec<&str> = err
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut message = if lines.is_empty() {
        // toml leaves some syntax errors without a message.
        "invalid TOML syntax".to_owned()
    } else {
        lines.join("; ")
    };
    let Some(span) = err.span() else {
        return LabError::File {
            location: "(position unknown)".to_owned(),
            message,
        };
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or(before).chars().count() + 1;
    let snippet = text.get(span).unwrap_or_default().trim();
    if !snippet.is_empty()
        && snippet.len() <= 60
        && !snippet.contains('\n')
        && !message.contains(['"', '`'])
    {
        message = format!("{message}: {snippet}");
    }
    LabError::File {
        location: format!("line {line}, column {column}"),
        message,
    }
}

/// The lab file as written: everything optional, nothing unknown.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabFile {
    subnet: Option<Ipv4Net>,
    gateway: Option<Ipv4Addr>,
    bridge: Option<String>,
    host: Option<HostMode>,
    masquerade: Option<bool>,
    external: Option<ExternalFile>,
    #[serde(default)]
    container: Vec<ContainerFile>,
    #[serde(default)]
    publish: Vec<PublishFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExternalFile {
    device: Option<String>,
    address: Option<Ipv4Net>,
    peer_device: Option<String>,
    peer_address: Option<Ipv4Addr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainerFile {
    name: String,
    address: Ipv4Addr,
    device: Option<String>,
    host_device: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishFile {
    node: String,
    ports: Vec<PortSpec>,
}

impl LabFile {
    fn into_lab(self) -> Lab {
        let defaults = Lab::empty();
        let subnet = self.subnet.unwrap_or(defaults.subnet);
        // A subnet too small for a first host fails validation anyway;
        // the network address is just something to report it against.
        let gateway = self
            .gateway
            .or_else(|| subnet.first_host())
            .unwrap_or_else(|| subnet.network());
        let ext = self.external.unwrap_or_default();
        Lab {
            subnet,
            gateway,
            bridge: self.bridge.unwrap_or(defaults.bridge),
            host: self.host.unwrap_or(defaults.host),
            external: External {
                device: ext.device.unwrap_or(defaults.external.device),
                address: ext.address.unwrap_or(defaults.external.address),
                peer_device: ext.peer_device.unwrap_or(defaults.external.peer_device),
                peer_address: ext.peer_address.unwrap_or(defaults.external.peer_address),
            },
            masquerade: self.masquerade.unwrap_or(defaults.masquerade),
            containers: self
                .container
                .into_iter()
                .enumerate()
                .map(|(index, c)| Container {
                    name: c.name,
                    address: c.address,
                    device: c.device.unwrap_or_else(|| format!("ceth{index}")),
                    host_device: c.host_device.unwrap_or_else(|| format!("veth{index}")),
                })
                .collect(),
            publish: self
                .publish
                .into_iter()
                .flat_map(|p| {
                    let node = p.node;
                    p.ports.into_iter().map(move |spec| Publish {
                        node: node.clone(),
                        spec,
                    })
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn spec(s: &str) -> PortSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
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

    #[test]
    fn default_lab_serializes_with_strings() {
        let lab = Lab::default_lab();
        let json = serde_json::to_value(&lab).unwrap();
        assert_eq!(json["subnet"], "172.18.0.0/16");
        assert_eq!(json["host"], "namespace");
        assert_eq!(json["external"]["address"], "198.18.0.1/24");
        assert_eq!(json["publish"][0]["spec"], "5000:5000/tcp");
        let back: Lab = serde_json::from_value(json).unwrap();
        assert_eq!(back, lab);
    }

    #[test]
    fn full_toml_example() {
        let text = r#"
subnet = "10.88.0.0/24"
gateway = "10.88.0.254"
bridge = "docker0"
host = "root"
masquerade = false

[external]
device = "uplink"
address = "192.0.2.10/28"
peer_device = "eth9"
peer_address = "192.0.2.1"

[[container]]
name = "web"
address = "10.88.0.10"
device = "eth0"
host_device = "vethweb"

[[container]]
name = "db"
address = "10.88.0.11"

[[publish]]
node = "web"
ports = ["8080:80", "127.0.0.1:5353:53/udp"]

[[publish]]
node = "db"
ports = ["10.88.0.254:5432:5432"]
"#;
        let expected = Lab {
            subnet: net("10.88.0.0/24"),
            gateway: ip(10, 88, 0, 254),
            bridge: "docker0".to_owned(),
            host: HostMode::Root,
            external: External {
                device: "uplink".to_owned(),
                address: net("192.0.2.10/28"),
                peer_device: "eth9".to_owned(),
                peer_address: ip(192, 0, 2, 1),
            },
            masquerade: false,
            containers: vec![
                Container {
                    name: "web".to_owned(),
                    address: ip(10, 88, 0, 10),
                    device: "eth0".to_owned(),
                    host_device: "vethweb".to_owned(),
                },
                Container {
                    name: "db".to_owned(),
                    address: ip(10, 88, 0, 11),
                    device: "ceth1".to_owned(),
                    host_device: "veth1".to_owned(),
                },
            ],
            publish: vec![
                Publish {
                    node: "web".to_owned(),
                    spec: spec("8080:80/tcp"),
                },
                Publish {
                    node: "web".to_owned(),
                    spec: spec("127.0.0.1:5353:53/udp"),
                },
                Publish {
                    node: "db".to_owned(),
                    spec: spec("10.88.0.254:5432:5432/tcp"),
                },
            ],
        };
        assert_eq!(Lab::from_toml(text).unwrap(), expected);
    }

    #[test]
    fn empty_file_is_the_default_network_without_containers() {
        let lab = Lab::from_toml("").unwrap();
        let mut expected = Lab::default_lab();
        expected.containers.clear();
        expected.publish.clear();
        assert_eq!(lab, expected);
        assert_eq!(lab.node_names(), ["host", "wan"]);
    }

    #[test]
    fn partial_file_fills_defaults() {
        let text = r#"
subnet = "10.0.0.0/8"
[external]
address = "198.19.0.1/30"
peer_address = "198.19.0.2"
[[container]]
name = "a"
address = "10.0.0.5"
host_device = "va"
[[container]]
name = "b"
address = "10.0.0.6"
"#;
        let lab = Lab::from_toml(text).unwrap();
        assert_eq!(lab.gateway, ip(10, 0, 0, 1));
        assert_eq!(lab.bridge, "br0");
        assert_eq!(lab.external.device, "eth0");
        assert_eq!(lab.external.peer_device, "eth0");
        assert_eq!(lab.external.address, net("198.19.0.1/30"));
        let devices: Vec<_> = lab
            .containers
            .iter()
            .map(|c| (c.device.as_str(), c.host_device.as_str()))
            .collect();
        assert_eq!(devices, [("ceth0", "va"), ("ceth1", "veth1")]);
        assert!(lab.publish.is_empty());
    }

    /// A lab edit and what the resulting error message must mention.
    type Case = (fn(&mut Lab), &'static [&'static str]);

    fn add_publish(lab: &mut Lab, node: &str, text: &str) {
        lab.publish.push(Publish {
            node: node.to_owned(),
            spec: spec(text),
        });
    }

    /// Each message must be a single line that names the offending value.
    fn assert_message(err: &LabError, needles: &[&str]) {
        let message = err.to_string();
        assert!(!message.contains('\n'), "multi-line: {message}");
        for needle in needles {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
    }

    fn from_toml_err(text: &str) -> LabError {
        match Lab::from_toml(text) {
            Ok(lab) => panic!("accepted {text}: {lab:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn file_errors() {
        let cases: &[(&str, &[&str])] = &[
            ("bogus = 1", &["line 1, column 1", "unknown field `bogus`"]),
            ("[external]\nmtu = 1500", &["line 2", "unknown field `mtu`"]),
            (
                "[[container]]\nname = \"a\"\naddress = \"172.18.0.2\"\nip = \"x\"",
                &["line 4", "`ip`"],
            ),
            ("[[publish]]\nnode = \"a\"\nport = [\"80:80\"]", &["`port`"]),
            (
                "subnet = \"172.18.0.0/33\"",
                &["line 1", "172.18.0.0/33", "larger than 32"],
            ),
            ("subnet = \"172.18.0.0\"", &["172.18.0.0", "ADDRESS/PREFIX"]),
            (
                "[external]\naddress = \"198.18.0.1\"",
                &["198.18.0.1", "ADDRESS/PREFIX"],
            ),
            (
                "gateway = \"172.18.0.300\"",
                &["line 1, column 11", "IPv4 address", "\"172.18.0.300\""],
            ),
            ("host = \"vm\"", &["`vm`", "`namespace`"]),
            (
                "[[container]]\naddress = \"172.18.0.2\"",
                &["missing field `name`"],
            ),
            ("[[container]]\nname = \"a\"", &["missing field `address`"]),
            (
                "[[publish]]\nnode = \"a\"\nports = [\"70000:80\"]",
                &["70000:80", "out of range"],
            ),
            ("subnet = ", &["line 1, column 10", "invalid TOML syntax"]),
        ];
        for (text, needles) in cases {
            let err = from_toml_err(text);
            assert!(matches!(err, LabError::File { .. }), "{text}: {err:?}");
            assert_message(&err, needles);
        }
    }

    fn rename(lab: &mut Lab, name: &str) {
        lab.containers[0].name = name.to_owned();
        lab.publish[0].node = name.to_owned();
    }

    fn set_host_ip(lab: &mut Lab, addr: Ipv4Addr) {
        lab.publish[0].spec.host_ip = Some(addr);
    }

    #[test]
    fn validate_rejects_bad_names() {
        let cases: &[Case] = &[
            (
                |l| rename(l, "a-very-long-name-x"),
                &["container name", "\"a-very-long-name-x\"", "18 bytes"],
            ),
            (|l| rename(l, ""), &["container name \"\"", "empty"]),
            (|l| rename(l, "web/1"), &["\"web/1\"", "'/'"]),
            (|l| rename(l, "wéb"), &["\"wéb\"", "'é'"]),
            (|l| rename(l, ".."), &["\"..\""]),
            (|l| rename(l, "host"), &["\"host\"", "reserved"]),
            (|l| rename(l, "wan"), &["\"wan\"", "reserved"]),
            (
                |l| l.containers[1].name = "netns0".to_owned(),
                &["\"netns0\"", "twice"],
            ),
            (
                |l| l.bridge = "bridge-number-one".to_owned(),
                &["bridge name", "\"bridge-number-one\""],
            ),
            (|l| l.bridge = String::new(), &["bridge name \"\"", "empty"]),
            (|l| l.bridge = "br 0".to_owned(), &["\"br 0\"", "' '"]),
            (
                |l| l.external.device = "uplink:0".to_owned(),
                &["external device", "\"uplink:0\""],
            ),
            (
                |l| l.external.peer_device = "lo".to_owned(),
                &["external peer_device", "\"lo\"", "loopback"],
            ),
            (
                |l| l.containers[0].device = "lo".to_owned(),
                &["device of container \"netns0\"", "\"lo\""],
            ),
            (
                |l| l.containers[0].host_device = "a234567890123456".to_owned(),
                &[
                    "host_device of container \"netns0\"",
                    "\"a234567890123456\"",
                ],
            ),
            (
                |l| l.bridge = "eth0".to_owned(),
                &["\"eth0\"", "the bridge", "the external device"],
            ),
            (
                |l| l.containers[1].host_device = "br0".to_owned(),
                &["\"br0\"", "the bridge", "container \"netns1\""],
            ),
            (
                |l| l.containers[1].host_device = "veth0".to_owned(),
                &["\"veth0\"", "container \"netns0\"", "container \"netns1\""],
            ),
        ];
        check_rejections(cases);
    }

    #[test]
    fn validate_rejects_bad_addresses() {
        let cases: &[Case] = &[
            (
                |l| l.containers[1].address = ip(172, 18, 0, 10),
                &[
                    "172.18.0.10",
                    "container \"netns0\"",
                    "container \"netns1\"",
                ],
            ),
            (
                |l| l.containers[0].address = ip(172, 18, 0, 1),
                &["172.18.0.1", "gateway", "container \"netns0\""],
            ),
            (
                |l| l.containers[0].address = ip(10, 0, 0, 1),
                &["10.0.0.1", "container \"netns0\"", "outside 172.18.0.0/16"],
            ),
            (
                |l| l.containers[0].address = ip(172, 18, 0, 0),
                &["172.18.0.0", "network address"],
            ),
            (
                |l| l.containers[0].address = ip(172, 18, 255, 255),
                &["172.18.255.255", "broadcast address"],
            ),
            (
                |l| l.gateway = ip(172, 19, 0, 1),
                &["gateway 172.19.0.1", "outside 172.18.0.0/16"],
            ),
            (
                |l| l.gateway = ip(172, 18, 0, 0),
                &["gateway 172.18.0.0", "network address"],
            ),
            (
                |l| l.subnet = net("172.18.0.0/31"),
                &["172.18.0.0/31", "at most 30"],
            ),
            (
                |l| l.subnet = net("172.18.0.1/16"),
                &["172.18.0.1/16", "172.18.0.0/16"],
            ),
            (
                |l| l.external.address = net("172.18.200.1/24"),
                &["172.18.200.0/24", "172.18.0.0/16", "overlaps"],
            ),
            (
                |l| l.external.address = net("172.0.0.1/8"),
                &["172.0.0.0/8", "overlaps"],
            ),
            (
                |l| l.external.peer_address = ip(198, 18, 1, 2),
                &["peer_address 198.18.1.2", "outside 198.18.0.0/24"],
            ),
            (
                |l| l.external.peer_address = ip(198, 18, 0, 1),
                &["peer_address 198.18.0.1", "same as the external address"],
            ),
            (
                |l| l.external.peer_address = ip(198, 18, 0, 255),
                &["198.18.0.255", "broadcast"],
            ),
            (
                |l| l.external.address = net("198.18.0.0/24"),
                &["external address 198.18.0.0", "network"],
            ),
        ];
        check_rejections(cases);
    }

    #[test]
    fn validate_rejects_bad_publish() {
        let cases: &[Case] = &[
            (
                |l| l.publish[0].node = "netns9".to_owned(),
                &["\"netns9\"", "5000:5000/tcp", "not a container"],
            ),
            (
                |l| l.publish[0].node = "wan".to_owned(),
                &["\"wan\"", "not a container"],
            ),
            (
                |l| set_host_ip(l, ip(8, 8, 8, 8)),
                &[
                    "host address 8.8.8.8 is not an address of the host",
                    "8.8.8.8:5000:5000/tcp",
                ],
            ),
            (
                |l| set_host_ip(l, ip(198, 18, 0, 2)),
                &["198.18.0.2 is not an address of the host"],
            ),
            (
                |l| add_publish(l, "netns1", "4990-5010:4990-5010"),
                &[
                    "\"5000:5000/tcp\" (to \"netns0\")",
                    "\"4990-5010:4990-5010/tcp\" (to \"netns1\")",
                    "conflicts",
                ],
            ),
            (
                |l| add_publish(l, "netns1", "127.0.0.1:5000:80"),
                &[
                    "\"5000:5000/tcp\"",
                    "\"127.0.0.1:5000:80/tcp\"",
                    "conflicts",
                ],
            ),
        ];
        check_rejections(cases);
    }

    fn check_rejections(cases: &[Case]) {
        for (index, (mutate, needles)) in cases.iter().enumerate() {
            let mut lab = Lab::default_lab();
            mutate(&mut lab);
            match lab.validate() {
                Ok(()) => panic!("case {index} accepted: {lab:?}"),
                Err(err) => assert_message(&err, needles),
            }
        }
    }

    #[test]
    fn validate_accepts_valid_variations() {
        let cases: &[fn(&mut Lab)] = &[
            |l| set_host_ip(l, ip(127, 0, 0, 1)),
            |l| set_host_ip(l, ip(172, 18, 0, 1)),
            |l| set_host_ip(l, ip(198, 18, 0, 1)),
            |l| l.containers[1].device = "ceth0".to_owned(),
            |l| l.external.peer_device = "veth0".to_owned(),
            |l| add_publish(l, "netns1", "5000:5000/udp"),
            |l| add_publish(l, "netns1", "5001:5000"),
            |l| {
                set_host_ip(l, ip(127, 0, 0, 1));
                add_publish(l, "netns1", "198.18.0.1:5000:5000");
            },
            |l| rename(l, "a.b_c-D9"),
            |l| {
                l.external.address = net("198.18.0.0/31");
                l.external.peer_address = ip(198, 18, 0, 1);
            },
            |l| {
                l.subnet = net("172.18.0.0/30");
                l.containers.truncate(1);
                l.containers[0].address = ip(172, 18, 0, 2);
            },
        ];
        for (index, mutate) in cases.iter().enumerate() {
            let mut lab = Lab::default_lab();
            mutate(&mut lab);
            if let Err(err) = lab.validate() {
                panic!("case {index} rejected: {err}");
            }
        }
    }

    fn links(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    #[test]
    fn validate_against_host_checks_routes_and_links() {
        let mut lab = Lab::default_lab();
        lab.host = HostMode::Root;
        let routes = [net("0.0.0.0/0"), net("10.0.0.0/8"), net("192.168.1.0/24")];
        let host_links = links(&["lo", "enp3s0", "docker0"]);
        lab.validate_against_host(&routes, &host_links).unwrap();

        let err = lab
            .validate_against_host(&[net("172.16.0.0/12")], &[])
            .unwrap_err();
        assert_message(&err, &["subnet 172.18.0.0/16", "172.16.0.0/12"]);
        let err = lab
            .validate_against_host(&[net("172.18.7.0/24")], &[])
            .unwrap_err();
        assert_message(&err, &["subnet 172.18.0.0/16", "172.18.7.0/24"]);
        let err = lab
            .validate_against_host(&[net("198.18.0.0/15")], &[])
            .unwrap_err();
        assert_message(&err, &["external network 198.18.0.0/24", "198.18.0.0/15"]);

        for (link, what) in [
            ("br0", "bridge"),
            ("eth0", "external device"),
            ("veth1", "host_device of container \"netns1\""),
        ] {
            let err = lab
                .validate_against_host(&[], &links(&["lo", link]))
                .unwrap_err();
            assert_message(&err, &[what, &format!("\"{link}\" already exists")]);
        }
        // Only the host side matters: container ends live in their own namespaces.
        lab.validate_against_host(&[], &links(&["ceth0"])).unwrap();

        // A namespaced host can't clash with the real one.
        lab.host = HostMode::Namespace;
        lab.validate_against_host(&[net("172.16.0.0/12")], &links(&["br0"]))
            .unwrap();
    }
}
