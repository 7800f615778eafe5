//! rtnetlink operations on links, addresses, routes and neighbours. Each takes the handle of
//! the namespace it acts in; each doc comment gives the iproute2 equivalent. Every "add" is
//! idempotent (an existing object is success), so `netlab up` converges when run again.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd as _,
};

use futures::TryStreamExt as _;
use netlink_packet_route::{
    address::{AddressHeaderFlags, AddressMessage},
    link::{InfoData, InfoVeth, LinkAttribute, LinkMessage},
    neighbour::NeighbourMessage,
    route::RouteMessage,
};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use crate::{
    error::{Context as _, Error, Result},
    ipv4net::Ipv4Net,
    ipv6net::Ipv6Net,
};

const EEXIST: i32 = libc::EEXIST;

/// Treats "already exists" as success.
fn exists_ok(
    result: std::result::Result<(), rtnetlink::Error>,
) -> std::result::Result<(), rtnetlink::Error> {
    match result {
        Err(rtnetlink::Error::NetlinkError(ref msg))
            if msg.code.is_some_and(|code| -code.get() == EEXIST) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Index of link `name`, or `None` when there is no such link. `ip link show NAME`.
pub async fn index(handle: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link.map(|link| link.header.index)),
        Err(rtnetlink::Error::NetlinkError(msg))
            if msg.code.is_some_and(|code| -code.get() == libc::ENODEV) =>
        {
            Ok(None)
        }
        Err(err) => Err(Error::netlink(format!("looking up link {name}"), err)),
    }
}

/// Index of link `name`, which must exist.
pub async fn require_index(handle: &Handle, name: &str) -> Result<u32> {
    index(handle, name)
        .await?
        .ok_or_else(|| Error::invalid(format!("link {name} does not exist")))
}

/// `ip link set NAME up`.
pub async fn set_up(handle: &Handle, name: &str) -> Result<()> {
    let index = require_index(handle, name).await?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .op(|| format!("setting {name} up"))
}

/// `ip link add NAME type bridge`.
pub async fn add_bridge(handle: &Handle, name: &str) -> Result<()> {
    exists_ok(
        handle
            .link()
            .add(LinkBridge::new(name).build())
            .execute()
            .await,
    )
    .op(|| format!("creating bridge {name}"))
}

/// A veth pair whose two ends are created directly in their namespaces:
/// `ip link add NAME netns NS type veth peer PEER netns PEER_NS`.
pub async fn add_veth(
    handle: &Handle,
    name: &str,
    netns: Option<&std::fs::File>,
    peer: &str,
    peer_netns: &std::fs::File,
) -> Result<()> {
    let peer_message = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer.to_string())
        .setns_by_fd(peer_netns.as_raw_fd())
        .build();
    let mut builder =
        LinkVeth::new(name, peer).set_info_data(InfoData::Veth(InfoVeth::Peer(peer_message)));
    if let Some(netns) = netns {
        builder = builder.setns_by_fd(netns.as_raw_fd());
    }
    exists_ok(handle.link().add(builder.build()).execute().await)
        .op(|| format!("creating veth pair {name} <-> {peer}"))
}

/// `ip link delete NAME` (a missing link is not an error).
pub async fn delete(handle: &Handle, name: &str, index: u32) -> Result<()> {
    match handle.link().del(index).execute().await {
        Err(rtnetlink::Error::NetlinkError(msg))
            if msg.code.is_some_and(|code| -code.get() == libc::ENODEV) =>
        {
            Ok(())
        }
        other => other.op(|| format!("deleting link {name}")),
    }
}

/// `ip link set NAME master BRIDGE`.
pub async fn set_master(handle: &Handle, name: &str, bridge: &str) -> Result<()> {
    let index = require_index(handle, name).await?;
    let bridge_index = require_index(handle, bridge).await?;
    handle
        .link()
        .set(
            LinkUnspec::new_with_index(index)
                .controller(bridge_index)
                .build(),
        )
        .execute()
        .await
        .op(|| format!("attaching {name} to bridge {bridge}"))
}

/// `bridge link set dev NAME hairpin on|off`.
pub async fn set_hairpin(handle: &Handle, name: &str, on: bool) -> Result<()> {
    let index = require_index(handle, name).await?;
    handle
        .link()
        .set_port(LinkBridgePort::new(index).hairpin(on).build())
        .execute()
        .await
        .op(|| format!("setting hairpin mode on {name}"))
}

/// `ip addr replace ADDR/LEN dev NAME`.
pub async fn add_address(handle: &Handle, name: &str, address: Ipv4Net) -> Result<()> {
    let index = require_index(handle, name).await?;
    handle
        .address()
        .add(index, address.addr().into(), address.prefix_len())
        .replace()
        .execute()
        .await
        .op(|| format!("adding address {address} to {name}"))
}

/// `ip -6 addr replace ADDRESS dev NAME nodad`: a static address, usable at once.
pub async fn add_address6(handle: &Handle, name: &str, address: Ipv6Net) -> Result<()> {
    let index = require_index(handle, name).await?;
    let mut request = handle
        .address()
        .add(index, address.addr().into(), address.prefix_len())
        .replace();
    request.message_mut().header.flags |= AddressHeaderFlags::Nodad;
    request
        .execute()
        .await
        .op(|| format!("adding address {address} to {name}"))
}

/// `ip -6 route replace default via GATEWAY`.
pub async fn add_default_route6(handle: &Handle, gateway: Ipv6Addr) -> Result<()> {
    add_route6(handle, Ipv6Net::literal(Ipv6Addr::UNSPECIFIED, 0), gateway).await
}

/// `ip -6 route replace DESTINATION via GATEWAY`.
pub async fn add_route6(handle: &Handle, destination: Ipv6Net, gateway: Ipv6Addr) -> Result<()> {
    let route = RouteMessageBuilder::<Ipv6Addr>::new()
        .destination_prefix(destination.network(), destination.prefix_len())
        .gateway(gateway)
        .build();
    replace_route(handle, route, &destination, &gateway).await
}

/// `ip route replace default via GATEWAY`.
pub async fn add_default_route(handle: &Handle, gateway: Ipv4Addr) -> Result<()> {
    add_route(handle, Ipv4Net::ANY, gateway).await
}

/// `ip route replace DESTINATION via GATEWAY`.
pub async fn add_route(handle: &Handle, destination: Ipv4Net, gateway: Ipv4Addr) -> Result<()> {
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(destination.network(), destination.prefix_len())
        .gateway(gateway)
        .build();
    replace_route(handle, route, &destination, &gateway).await
}

/// Adds or replaces `route`, to `destination` via `gateway` (named in the error).
async fn replace_route(
    handle: &Handle,
    route: RouteMessage,
    destination: &dyn std::fmt::Display,
    gateway: &dyn std::fmt::Display,
) -> Result<()> {
    handle
        .route()
        .add(route)
        .replace()
        .execute()
        .await
        .op(|| format!("adding the route to {destination} via {gateway}"))
}

/// Gathers a netlink dump.
async fn collect<T>(
    dump: impl futures::Stream<Item = std::result::Result<T, rtnetlink::Error>>,
    what: &str,
) -> Result<Vec<T>> {
    dump.try_collect().await.op(|| format!("listing {what}"))
}

/// `ip link show`.
pub async fn dump_links(handle: &Handle) -> Result<Vec<LinkMessage>> {
    collect(handle.link().get().execute(), "links").await
}

/// `ip -4 addr show`.
pub async fn dump_addresses(handle: &Handle) -> Result<Vec<AddressMessage>> {
    collect(handle.address().get().execute(), "addresses").await
}

/// `ip -4 route show table all`.
pub async fn dump_routes(handle: &Handle) -> Result<Vec<RouteMessage>> {
    let filter = RouteMessageBuilder::<Ipv4Addr>::new().build();
    collect(handle.route().get(filter).execute(), "routes").await
}

/// `ip -6 route show table all`.
pub async fn dump_routes6(handle: &Handle) -> Result<Vec<RouteMessage>> {
    let filter = RouteMessageBuilder::<Ipv6Addr>::new().build();
    collect(handle.route().get(filter).execute(), "IPv6 routes").await
}

/// `ip -4 neigh show`.
pub async fn dump_neighbours(handle: &Handle) -> Result<Vec<NeighbourMessage>> {
    dump_neighbours_of(handle, netlink_packet_route::AddressFamily::Inet).await
}

/// `ip -6 neigh show`.
pub async fn dump_neighbours6(handle: &Handle) -> Result<Vec<NeighbourMessage>> {
    dump_neighbours_of(handle, netlink_packet_route::AddressFamily::Inet6).await
}

async fn dump_neighbours_of(
    handle: &Handle,
    family: netlink_packet_route::AddressFamily,
) -> Result<Vec<NeighbourMessage>> {
    collect(
        handle
            .neighbours()
            .get()
            .set_address_family(family)
            .execute(),
        "neighbours",
    )
    .await
}

/// The name of a dumped link.
pub fn link_name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|attr| match attr {
        LinkAttribute::IfName(name) => Some(name.as_str()),
        _ => None,
    })
}

/// Index and MAC address of link `name`. `ip link show NAME`.
pub async fn index_and_mac(handle: &Handle, name: &str) -> Result<(u32, [u8; 6])> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    let link = links
        .try_next()
        .await
        .op(|| format!("looking up link {name}"))?
        .ok_or_else(|| Error::invalid(format!("link {name} does not exist")))?;
    let mac = mac_address(&link)
        .ok_or_else(|| Error::invalid(format!("link {name} has no MAC address")))?;
    Ok((link.header.index, mac))
}

/// The MAC address of a dumped link.
pub fn mac_address(link: &LinkMessage) -> Option<[u8; 6]> {
    link.attributes.iter().find_map(|attr| match attr {
        LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok(),
        _ => None,
    })
}

/// Link number `index`, which must exist. `ip link show` of that index.
pub async fn by_index(handle: &Handle, index: u32) -> Result<LinkMessage> {
    handle
        .link()
        .get()
        .match_index(index)
        .execute()
        .try_next()
        .await
        .op(|| format!("looking up link {index}"))?
        .ok_or_else(|| Error::invalid(format!("link {index} does not exist")))
}
