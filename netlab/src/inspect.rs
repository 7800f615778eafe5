//! What the walkthrough's inspect script shows for a node — devices, addresses, routes,
//! neighbours, IPv4 first and then IPv6 — read over netlink from the node's namespace.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_route::{
    address::AddressAttribute,
    link::{LinkAttribute, LinkFlags},
    neighbour::{NeighbourAddress, NeighbourAttribute},
    route::{RouteAddress, RouteAttribute, RouteMessage},
};
use serde::Serialize;

use crate::{
    error::Result,
    ipv4net::Ipv4Net,
    link,
    netlink::{self, Place},
};

#[derive(Debug, Clone, Serialize)]
pub struct Device {
    pub index: u32,
    pub name: String,
    pub up: bool,
    pub master: Option<String>,
    pub mac: Option<String>,
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub destination: String,
    pub gateway: Option<IpAddr>,
    pub device: Option<String>,
    pub table: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Neighbour {
    pub address: IpAddr,
    pub mac: Option<String>,
    pub device: Option<String>,
    pub state: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub devices: Vec<Device>,
    pub routes: Vec<Route>,
    pub neighbours: Vec<Neighbour>,
}

fn mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The IPv4 destination of a route (`0.0.0.0/0` for the default route).
pub fn route_destination(route: &RouteMessage) -> Option<Ipv4Net> {
    let prefix = route.header.destination_prefix_length;
    let addr = route.attributes.iter().find_map(|attr| match attr {
        RouteAttribute::Destination(RouteAddress::Inet(addr)) => Some(*addr),
        _ => None,
    });
    Ipv4Net::new(addr.unwrap_or(Ipv4Addr::UNSPECIFIED), prefix).ok()
}

/// Whether `route` goes to the link-local network `fe80::/64`.
fn is_link_local_route(route: &RouteMessage) -> bool {
    route.attributes.iter().any(|a| {
        matches!(a, RouteAttribute::Destination(RouteAddress::Inet6(ip)) if ip.is_unicast_link_local())
    })
}

/// A route of the main table as `inspect` shows it.
fn route(r: &RouteMessage, name_of: &impl Fn(u32) -> Option<String>) -> Route {
    let address = |address: &RouteAddress| match address {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    };
    let destination = if r.header.destination_prefix_length == 0 {
        "default".to_string()
    } else {
        r.attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Destination(destination) => address(destination),
                _ => None,
            })
            .map_or_else(String::new, |ip| {
                format!("{ip}/{}", r.header.destination_prefix_length)
            })
    };
    Route {
        destination,
        gateway: r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Gateway(gateway) => address(gateway),
            _ => None,
        }),
        device: r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Oif(index) => name_of(*index),
            _ => None,
        }),
        table: u32::from(r.header.table),
    }
}

/// Reads devices, routes and neighbours of the namespace at `place`.
pub async fn read(place: &Place) -> Result<NodeView> {
    let handle = netlink::connect(place)?;
    let links = link::dump_links(&handle).await?;
    let mut addresses = link::dump_addresses(&handle).await?;
    // IPv4 first, as `ip addr` lists them.
    addresses.sort_by_key(|a| a.header.family != netlink_packet_route::AddressFamily::Inet);
    let mut routes = link::dump_routes(&handle).await?;
    // Every device has a route to fe80::/64: noise beside the lab's own.
    routes.extend(
        link::dump_routes6(&handle)
            .await?
            .into_iter()
            .filter(|r| !is_link_local_route(r)),
    );
    let mut neighbours = link::dump_neighbours(&handle).await?;
    neighbours.extend(link::dump_neighbours6(&handle).await?);
    let name_of = |index: u32| {
        links
            .iter()
            .find(|l| l.header.index == index)
            .and_then(link::link_name)
            .map(str::to_string)
    };
    let devices = links
        .iter()
        .map(|l| Device {
            index: l.header.index,
            name: link::link_name(l).unwrap_or_default().to_string(),
            up: l.header.flags.contains(LinkFlags::Up),
            master: l.attributes.iter().find_map(|a| match a {
                LinkAttribute::Controller(index) => name_of(*index),
                _ => None,
            }),
            mac: l.attributes.iter().find_map(|a| match a {
                LinkAttribute::Address(bytes) if bytes.len() == 6 => Some(mac(bytes)),
                _ => None,
            }),
            addresses: addresses
                .iter()
                .filter(|a| a.header.index == l.header.index)
                .filter_map(|a| {
                    a.attributes.iter().find_map(|attr| match attr {
                        AddressAttribute::Address(ip) => {
                            Some(format!("{ip}/{}", a.header.prefix_len))
                        }
                        _ => None,
                    })
                })
                .collect(),
        })
        .collect();
    let routes = routes
        .iter()
        .filter(|r| r.header.table == 254)
        .map(|r| route(r, &name_of))
        .collect();
    let neighbours = neighbours
        .iter()
        .filter_map(|n| {
            let address = n.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                    Some(IpAddr::V4(*ip))
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => {
                    Some(IpAddr::V6(*ip))
                }
                _ => None,
            })?;
            Some(Neighbour {
                address,
                mac: n.attributes.iter().find_map(|a| match a {
                    NeighbourAttribute::LinkLayerAddress(bytes) if bytes.len() == 6 => {
                        Some(mac(bytes))
                    }
                    _ => None,
                }),
                device: name_of(n.header.ifindex),
                state: format!("{:?}", n.header.state).to_lowercase(),
            })
        })
        .collect();
    Ok(NodeView {
        devices,
        routes,
        neighbours,
    })
}
