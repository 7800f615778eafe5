//! What netlab-cni reads of the host namespace (the one it runs in) and of the container's,
//! over rtnetlink: the container's veth and its peer on the bridge, and the external device
//! published ports are reached on.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
};

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
    /// Its first global IPv6 address, when it has one (ports are published in IPv6 too).
    pub address6: Option<Ipv6Addr>,
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
/// IPv4 default route (`ip -4 route show default`); with its first IPv4 address and its
/// first IPv6 one that is not link-local.
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
        let addresses: Vec<IpAddr> = link::dump_addresses(&handle)
            .await?
            .into_iter()
            .filter(|message| message.header.index == index)
            .filter_map(|message| {
                message.attributes.iter().find_map(|attr| match attr {
                    AddressAttribute::Local(ip) | AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            })
            .collect();
        let address = addresses
            .iter()
            .find_map(|ip| match ip {
                IpAddr::V4(ip) => Some(*ip),
                IpAddr::V6(_) => None,
            })
            .ok_or_else(|| Error::invalid(format!("{name} has no IPv4 address to publish ports on")))?;
        let address6 = addresses.iter().find_map(|ip| match ip {
            IpAddr::V6(ip) if !ip.is_unicast_link_local() => Some(*ip),
            _ => None,
        });
        Ok(External {
            device: name,
            address,
            address6,
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
