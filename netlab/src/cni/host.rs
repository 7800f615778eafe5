//! What netlab-cni reads of the host namespace (the one it runs in) and of the container's,
//! over rtnetlink: the container's veth and its peer on the bridge, and the external device
//! published ports are reached on.

use std::{net::Ipv4Addr, path::Path};

use futures::TryStreamExt as _;
use netlink_packet_route::{
    address::AddressAttribute,
    link::LinkAttribute,
    route::{RouteAddress, RouteAttribute},
};
use rtnetlink::Handle;

use crate::{
    error::{Context as _, Error, Result},
    link,
    netlink::{self, Place},
    netns,
};

/// The container's end of its veth pair, and the host's end.
#[derive(Debug, Clone)]
pub struct ContainerLink {
    /// MAC address of the container's interface.
    pub mac: [u8; 6],
    /// The host-side veth: index and name.
    pub host_ifindex: u32,
    pub host_device: String,
    /// MAC address of the bridge the host-side veth is enslaved to.
    pub bridge_mac: [u8; 6],
}

/// The device published ports are reached on.
#[derive(Debug, Clone)]
pub struct External {
    pub device: String,
    pub address: Ipv4Addr,
}

/// Interface `ifname` in the container namespace at `netns` (a path, as `CNI_NETNS` gives
/// it), its veth peer in the host namespace and that peer's bridge. `ip -d link show`.
pub fn container_link(netns: &Path, ifname: &str) -> Result<ContainerLink> {
    let inside = netns::run_in_path(netns, || {
        netlink::runtime()?.block_on(async {
            let handle = netlink::connect(&Place::Root)?;
            let link = handle
                .link()
                .get()
                .match_name(ifname.to_owned())
                .execute()
                .try_next()
                .await
                .op(|| format!("looking up {ifname} in {}", netns.display()))?
                .ok_or_else(|| {
                    Error::invalid(format!("{} has no interface {ifname}", netns.display()))
                })?;
            Ok::<_, Error>(link)
        })
    })?;
    let mac = link::mac_address(&inside)
        .ok_or_else(|| Error::invalid(format!("{ifname} has no MAC address")))?;
    let peer = inside
        .attributes
        .iter()
        .find_map(|attr| match attr {
            LinkAttribute::Link(index) => Some(*index),
            _ => None,
        })
        .ok_or_else(|| {
            Error::invalid(format!(
                "{ifname} in {} is not a veth with a peer in this namespace (netlab-cni needs the bridge plugin's veth pairs)",
                netns.display()
            ))
        })?;
    netlink::runtime()?.block_on(async {
        let handle = netlink::connect(&Place::Root)?;
        let host_side = link::by_index(&handle, peer).await?;
        let host_device = link::link_name(&host_side)
            .ok_or_else(|| Error::invalid(format!("link {peer} has no name")))?
            .to_owned();
        let bridge = host_side
            .attributes
            .iter()
            .find_map(|attr| match attr {
                LinkAttribute::Controller(index) => Some(*index),
                _ => None,
            })
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{host_device}, the host side of {ifname}, is on no bridge (netlab-cni chains after the bridge plugin)"
                ))
            })?;
        let bridge_mac = link::mac_address(&link::by_index(&handle, bridge).await?)
            .ok_or_else(|| Error::invalid(format!("the bridge of {host_device} has no MAC address")))?;
        Ok(ContainerLink {
            mac,
            host_ifindex: peer,
            host_device,
            bridge_mac,
        })
    })
}

/// The external device: `device` when the configuration names one, else the device of the
/// IPv4 default route (`ip -4 route show default`); with its first IPv4 address.
pub fn external(device: Option<&str>) -> Result<External> {
    netlink::runtime()?.block_on(async {
        let handle = netlink::connect(&Place::Root)?;
        let index = match device {
            Some(name) => link::index(&handle, name).await?.ok_or_else(|| {
                Error::invalid(format!("externalDevice {name:?} does not exist in this namespace"))
            })?,
            None => default_route_device(&handle).await?.ok_or_else(|| {
                Error::invalid(
                    "this namespace has no IPv4 default route: name the device published ports are reached on with \"externalDevice\"",
                )
            })?,
        };
        let name = link::link_name(&link::by_index(&handle, index).await?)
            .unwrap_or_default()
            .to_owned();
        let address = link::dump_addresses(&handle)
            .await?
            .into_iter()
            .filter(|message| message.header.index == index)
            .find_map(|message| {
                message.attributes.iter().find_map(|attr| match attr {
                    AddressAttribute::Local(std::net::IpAddr::V4(ip))
                    | AddressAttribute::Address(std::net::IpAddr::V4(ip)) => Some(*ip),
                    _ => None,
                })
            })
            .ok_or_else(|| Error::invalid(format!("{name} has no IPv4 address to publish ports on")))?;
        Ok(External {
            device: name,
            address,
        })
    })
}

async fn default_route_device(handle: &Handle) -> Result<Option<u32>> {
    let routes = link::dump_routes(handle).await?;
    Ok(routes
        .iter()
        .filter(|route| {
            route.header.destination_prefix_length == 0
                && route.header.table == libc::RT_TABLE_MAIN
                && !route
                    .attributes
                    .iter()
                    .any(|attr| matches!(attr, RouteAttribute::Destination(RouteAddress::Inet(_))))
        })
        .find_map(|route| {
            route.attributes.iter().find_map(|attr| match attr {
                RouteAttribute::Oif(index) => Some(*index),
                _ => None,
            })
        }))
}
