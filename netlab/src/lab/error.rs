//! Why a lab is invalid or could not be read.

use std::net::{IpAddr, Ipv4Addr};

use crate::ipv4net::{CidrError, Ipv4Net};
use crate::ports::PortSpec;

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
    #[error(transparent)]
    Cidr(#[from] CidrError),
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
    /// An IPv6 setting in a lab without an IPv6 subnet.
    #[error(
        "{0} needs an IPv6 subnet: add subnet6 to the lab, e.g. subnet6 = \"fd00:172:18::/64\""
    )]
    NeedsSubnet6(String),
    /// An IPv6 address or network that cannot serve where it is.
    #[error("{what} {address}: {reason}")]
    Ipv6 {
        /// Whose address, e.g. `gateway6`.
        what: String,
        /// The address or network, as netlab writes it.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
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
        address: IpAddr,
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
