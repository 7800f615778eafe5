//! Turns a [`Lab`] into kernel objects and back. The work is a [`Plan`] of [`Step`]s, so the
//! same data drives `up` and `up --explain` (which prints each step's iproute2 equivalent):
//! the explanation cannot drift from what is done.

use std::{
    collections::HashMap,
    fs::File,
    net::{Ipv4Addr, Ipv6Addr},
};

use futures::future::try_join_all;
use rtnetlink::Handle;

use crate::{
    crash_point,
    error::{Error, Result},
    ipv4net::Ipv4Net,
    ipv6net::Ipv6Net,
    lab::{HOST_NODE, HostMode, Lab, WAN_NODE},
    link,
    netlink::{self, Place},
    netns, sysctl,
};

/// Namespace name of `node` in lab `lab`. Lab names cannot contain `-`, so `<lab>-` is an
/// unambiguous prefix and two labs never share a namespace.
pub fn netns_name(lab: &str, node: &str) -> String {
    format!("{lab}-{node}")
}

/// Where `node` of `lab` lives.
pub fn place(lab_name: &str, lab: &Lab, node: &str) -> Place {
    if node == HOST_NODE && lab.host == HostMode::Root {
        Place::Root
    } else {
        Place::Netns(netns_name(lab_name, node))
    }
}

/// How many times a veth pair is made before giving up on a half that will not go away.
const VETH_ATTEMPTS: u32 = 200;

/// One kernel operation.
#[derive(Debug, Clone)]
pub enum Step {
    CreateNetns {
        name: String,
    },
    Sysctl {
        place: Place,
        key: &'static str,
        value: &'static str,
    },
    LinkUp {
        place: Place,
        device: String,
    },
    AddBridge {
        place: Place,
        name: String,
    },
    AddVeth {
        place: Place,
        name: String,
        peer: String,
        peer_place: Place,
    },
    SetMaster {
        place: Place,
        device: String,
        bridge: String,
    },
    AddAddress {
        place: Place,
        device: String,
        address: Ipv4Net,
    },
    DefaultRoute {
        place: Place,
        via: Ipv4Addr,
    },
    /// A static IPv6 address, without duplicate address detection.
    AddAddress6 {
        place: Place,
        device: String,
        address: Ipv6Net,
    },
    DefaultRoute6 {
        place: Place,
        via: Ipv6Addr,
    },
}

/// The sysctls that keep IPv6 static in a node, written before its devices exist (a new
/// device copies `default`; `lo` came with the namespace): no router advertisements taken,
/// no duplicate address detection holding addresses back.
const IPV6_STATIC: [&str; 5] = [
    "net.ipv6.conf.all.accept_ra",
    "net.ipv6.conf.default.accept_ra",
    "net.ipv6.conf.lo.accept_ra",
    "net.ipv6.conf.all.accept_dad",
    "net.ipv6.conf.default.accept_dad",
];

/// The steps that write [`IPV6_STATIC`] in `place`.
fn ipv6_static(place: &Place) -> impl Iterator<Item = Step> + '_ {
    IPV6_STATIC.into_iter().map(|key| Step::Sysctl {
        place: place.clone(),
        key,
        value: "0",
    })
}

impl Step {
    /// The iproute2 (or sysctl) command that does the same.
    pub fn explain(&self) -> String {
        match self {
            Self::CreateNetns { name } => format!("ip netns add {name}"),
            Self::Sysctl { place, key, value } => {
                format!("{}sysctl -w {key}={value}", place.exec())
            }
            Self::LinkUp { place, device } => format!("{} link set {device} up", place.ip()),
            Self::AddBridge { place, name } => {
                format!("{} link add {name} type bridge", place.ip())
            }
            Self::AddVeth {
                place,
                name,
                peer,
                peer_place,
            } => {
                let peer_ns = match peer_place {
                    Place::Root => String::new(),
                    Place::Netns(ns) => format!(" netns {ns}"),
                };
                format!(
                    "{} link add {name} type veth peer name {peer}{peer_ns}",
                    place.ip()
                )
            }
            Self::SetMaster {
                place,
                device,
                bridge,
            } => {
                format!("{} link set {device} master {bridge}", place.ip())
            }
            Self::AddAddress {
                place,
                device,
                address,
            } => {
                format!("{} addr add {address} dev {device}", place.ip())
            }
            Self::DefaultRoute { place, via } => {
                format!("{} route add default via {via}", place.ip())
            }
            Self::AddAddress6 {
                place,
                device,
                address,
            } => {
                format!("{} -6 addr add {address} dev {device} nodad", place.ip())
            }
            Self::DefaultRoute6 { place, via } => {
                format!("{} -6 route add default via {via}", place.ip())
            }
        }
    }

    async fn apply(&self, ctx: &Ctx) -> Result<()> {
        match self {
            Self::CreateNetns { name } => {
                if !netns::exists(name) {
                    // A crash may have left the mount point file without a namespace behind it.
                    netns::delete(name)?;
                    netns::create(name)?;
                }
                Ok(())
            }
            Self::Sysctl { place, key, value } => sysctl::write(place, key, value),
            Self::LinkUp { place, device } => link::set_up(ctx.handle(place)?, device).await,
            Self::AddBridge { place, name } => link::add_bridge(ctx.handle(place)?, name).await,
            Self::AddVeth {
                place,
                name,
                peer,
                peer_place,
            } => {
                let (handle, peer_netns) = (ctx.handle(place)?, ctx.netns_file(peer_place)?);
                let peer_handle = ctx.handle(peer_place)?;
                // One end without the other is half of a pair whose other namespace was
                // deleted (by a `down` that crashed, say) and is still being torn down in the
                // background: remove the half and try again until the pair is whole.
                for _ in 0..VETH_ATTEMPTS {
                    link::add_veth(handle, name, None, peer, peer_netns).await?;
                    let here = link::index(handle, name).await?;
                    let there = link::index(peer_handle, peer).await?;
                    if here.is_some() && there.is_some() {
                        return Ok(());
                    }
                    if let Some(index) = here {
                        link::delete(handle, name, index).await?;
                    }
                    if let Some(index) = there {
                        link::delete(peer_handle, peer, index).await?;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Err(Error::invalid(format!(
                    "veth pair {name} <-> {peer} stays half made: one end keeps disappearing"
                )))
            }
            Self::SetMaster {
                place,
                device,
                bridge,
            } => link::set_master(ctx.handle(place)?, device, bridge).await,
            Self::AddAddress {
                place,
                device,
                address,
            } => link::add_address(ctx.handle(place)?, device, *address).await,
            Self::DefaultRoute { place, via } => {
                link::add_default_route(ctx.handle(place)?, *via).await
            }
            Self::AddAddress6 {
                place,
                device,
                address,
            } => link::add_address6(ctx.handle(place)?, device, *address).await,
            Self::DefaultRoute6 { place, via } => {
                link::add_default_route6(ctx.handle(place)?, *via).await
            }
        }
    }
}

/// Everything `up` does, in phases: namespaces first, then the host and wan, then each
/// container (containers are independent of each other and are set up concurrently).
#[derive(Debug, Clone)]
pub struct Plan {
    /// The lab's name, for its crash points.
    pub lab_name: String,
    pub namespaces: Vec<Step>,
    pub host: Vec<Step>,
    pub containers: Vec<Vec<Step>>,
}

impl Plan {
    pub fn new(lab_name: &str, lab: &Lab) -> Self {
        let host = place(lab_name, lab, HOST_NODE);
        let wan = place(lab_name, lab, WAN_NODE);
        let namespaces = lab
            .node_names()
            .iter()
            .filter_map(|node| match place(lab_name, lab, node) {
                Place::Netns(name) => Some(Step::CreateNetns { name }),
                Place::Root => None,
            })
            .collect();
        let host_steps = Self::host_steps(&host, &wan, lab);
        let containers = lab
            .containers
            .iter()
            .map(|c| {
                let ns = place(lab_name, lab, &c.name);
                let address =
                    Ipv4Net::new(c.address, lab.subnet.prefix_len()).unwrap_or(lab.subnet);
                let ipv6 = lab.ipv6.zip(c.address6);
                let mut steps: Vec<Step> = ipv6
                    .iter()
                    .flat_map(|_| ipv6_static(&ns).collect::<Vec<_>>())
                    .collect();
                steps.extend([
                    Step::LinkUp {
                        place: ns.clone(),
                        device: "lo".into(),
                    },
                    Step::AddVeth {
                        place: host.clone(),
                        name: c.host_device.clone(),
                        peer: c.device.clone(),
                        peer_place: ns.clone(),
                    },
                    Step::SetMaster {
                        place: host.clone(),
                        device: c.host_device.clone(),
                        bridge: lab.bridge.clone(),
                    },
                    Step::LinkUp {
                        place: host.clone(),
                        device: c.host_device.clone(),
                    },
                    Step::AddAddress {
                        place: ns.clone(),
                        device: c.device.clone(),
                        address,
                    },
                    Step::LinkUp {
                        place: ns.clone(),
                        device: c.device.clone(),
                    },
                    Step::DefaultRoute {
                        place: ns.clone(),
                        via: lab.gateway,
                    },
                ]);
                if let Some((ipv6, address6)) = ipv6 {
                    steps.extend([
                        Step::AddAddress6 {
                            place: ns.clone(),
                            device: c.device.clone(),
                            address: ipv6.subnet.with_address(address6),
                        },
                        Step::DefaultRoute6 {
                            place: ns,
                            via: ipv6.gateway,
                        },
                    ]);
                }
                steps
            })
            .collect();
        Self {
            lab_name: lab_name.to_owned(),
            namespaces,
            host: host_steps,
            containers,
        }
    }

    /// The host node and the external link to `wan`.
    fn host_steps(host: &Place, wan: &Place, lab: &Lab) -> Vec<Step> {
        let (host, wan) = (host.clone(), wan.clone());
        let ext = &lab.external;
        let bridge_address =
            Ipv4Net::new(lab.gateway, lab.subnet.prefix_len()).unwrap_or(lab.subnet);
        let external_peer =
            Ipv4Net::new(ext.peer_address, ext.address.prefix_len()).unwrap_or(ext.address);
        let mut steps = Vec::new();
        if lab.ipv6.is_some() {
            steps.extend(ipv6_static(&host).chain(ipv6_static(&wan)));
            steps.push(Step::Sysctl {
                place: host.clone(),
                key: "net.ipv6.conf.all.forwarding",
                value: "1",
            });
        }
        steps.extend([
            Step::Sysctl {
                place: host.clone(),
                key: "net.ipv4.ip_forward",
                value: "1",
            },
            Step::LinkUp {
                place: host.clone(),
                device: "lo".into(),
            },
            Step::LinkUp {
                place: wan.clone(),
                device: "lo".into(),
            },
            Step::AddBridge {
                place: host.clone(),
                name: lab.bridge.clone(),
            },
            Step::AddAddress {
                place: host.clone(),
                device: lab.bridge.clone(),
                address: bridge_address,
            },
            Step::LinkUp {
                place: host.clone(),
                device: lab.bridge.clone(),
            },
            Step::AddVeth {
                place: host.clone(),
                name: ext.device.clone(),
                peer: ext.peer_device.clone(),
                peer_place: wan.clone(),
            },
            Step::AddAddress {
                place: host.clone(),
                device: ext.device.clone(),
                address: ext.address,
            },
            Step::LinkUp {
                place: host.clone(),
                device: ext.device.clone(),
            },
            Step::AddAddress {
                place: wan.clone(),
                device: ext.peer_device.clone(),
                address: external_peer,
            },
            Step::LinkUp {
                place: wan.clone(),
                device: ext.peer_device.clone(),
            },
        ]);
        if let Some(ipv6) = lab.ipv6 {
            steps.extend([
                Step::AddAddress6 {
                    place: host.clone(),
                    device: lab.bridge.clone(),
                    address: ipv6.subnet.with_address(ipv6.gateway),
                },
                Step::AddAddress6 {
                    place: host,
                    device: ext.device.clone(),
                    address: ipv6.external,
                },
                Step::AddAddress6 {
                    place: wan,
                    device: ext.peer_device.clone(),
                    address: ipv6.external.with_address(ipv6.peer),
                },
            ]);
        }
        steps
    }

    /// Every step, in an order that works when run one by one.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.namespaces
            .iter()
            .chain(&self.host)
            .chain(self.containers.iter().flatten())
    }

    /// Runs the plan. Namespaces are created on threads of their own (unshare + mount each),
    /// then one netlink socket per namespace carries its steps.
    pub async fn apply(&self) -> Result<()> {
        std::thread::scope(|scope| {
            let workers: Vec<_> = self
                .namespaces
                .chunks(self.namespaces.len().div_ceil(8).max(1))
                .map(|chunk| {
                    scope.spawn(move || {
                        let runtime = netlink::runtime()?;
                        let ctx = Ctx::default();
                        chunk.iter().try_for_each(|step| {
                            crash_point::reached(&self.lab_name, &step.explain());
                            runtime.block_on(step.apply(&ctx))
                        })
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| Error::joined(worker.join(), "creating namespaces"))
                .collect::<Result<Vec<()>>>()
        })?;
        let ctx = Ctx::open(self.steps())?;
        for step in &self.host {
            crash_point::reached(&self.lab_name, &step.explain());
            step.apply(&ctx).await?;
        }
        let ctx = &ctx;
        try_join_all(self.containers.iter().map(|steps| async move {
            for step in steps {
                crash_point::reached(&self.lab_name, &step.explain());
                step.apply(ctx).await?;
            }
            Ok::<(), Error>(())
        }))
        .await?;
        Ok(())
    }
}

/// Netlink handles and namespace files for the places a plan touches.
#[derive(Default)]
struct Ctx {
    handles: HashMap<Place, Handle>,
    files: HashMap<String, File>,
}

impl Ctx {
    fn open<'a>(steps: impl Iterator<Item = &'a Step>) -> Result<Self> {
        let mut ctx = Self::default();
        for step in steps {
            let (place, peer) = match step {
                Step::CreateNetns { .. } => continue,
                Step::AddVeth {
                    place, peer_place, ..
                } => (place, Some(peer_place)),
                Step::Sysctl { place, .. }
                | Step::LinkUp { place, .. }
                | Step::AddBridge { place, .. }
                | Step::SetMaster { place, .. }
                | Step::AddAddress { place, .. }
                | Step::DefaultRoute { place, .. }
                | Step::AddAddress6 { place, .. }
                | Step::DefaultRoute6 { place, .. } => (place, None),
            };
            if !ctx.handles.contains_key(place) {
                ctx.handles.insert(place.clone(), netlink::connect(place)?);
            }
            if let Some(Place::Netns(name)) = peer
                && !ctx.files.contains_key(name)
            {
                ctx.files.insert(name.clone(), netns::open(name)?);
            }
        }
        Ok(ctx)
    }

    fn handle(&self, place: &Place) -> Result<&Handle> {
        self.handles
            .get(place)
            .ok_or_else(|| Error::invalid(format!("no netlink socket open in {place:?}")))
    }

    fn netns_file(&self, place: &Place) -> Result<&File> {
        match place {
            Place::Netns(name) => self
                .files
                .get(name)
                .ok_or_else(|| Error::invalid(format!("namespace {name:?} is not open"))),
            Place::Root => Err(Error::invalid(
                "a veth peer in the root namespace is not supported",
            )),
        }
    }
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("places", &self.handles.keys())
            .finish_non_exhaustive()
    }
}

/// Hairpin mode on every container's bridge port: `bridge link set dev vethN hairpin on`.
pub fn set_hairpin(lab_name: &str, lab: &Lab, on: bool) -> Result<()> {
    let host = place(lab_name, lab, HOST_NODE);
    let runtime = netlink::runtime()?;
    std::thread::scope(|scope| {
        let joined = scope
            .spawn(|| {
                runtime.block_on(async {
                    let handle = netlink::connect(&host)?;
                    try_join_all(
                        lab.containers
                            .iter()
                            .map(|c| link::set_hairpin(&handle, &c.host_device, on)),
                    )
                    .await
                    .map(drop)
                })
            })
            .join();
        Error::joined(joined, "setting hairpin mode")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_follows_the_walkthrough() {
        let plan = Plan::new("x", &Lab::default_lab());
        let lines: Vec<String> = plan.steps().map(Step::explain).collect();
        assert_eq!(lines[0], "ip netns add x-host");
        assert_eq!(plan.namespaces.len(), 4);
        assert_eq!(plan.containers.len(), 2);
        for expected in [
            "ip netns exec x-host sysctl -w net.ipv4.ip_forward=1",
            "ip -n x-host link add br0 type bridge",
            "ip -n x-host addr add 172.18.0.1/16 dev br0",
            "ip -n x-host link add eth0 type veth peer name eth0 netns x-wan",
            "ip -n x-wan addr add 198.18.0.2/24 dev eth0",
            "ip -n x-host link add veth1 type veth peer name ceth1 netns x-netns1",
            "ip -n x-netns1 addr add 172.18.0.20/16 dev ceth1",
            "ip -n x-netns1 route add default via 172.18.0.1",
        ] {
            assert!(
                lines.iter().any(|line| line == expected),
                "missing {expected}: {lines:#?}"
            );
        }
        // The bridge exists before any veth is attached to it.
        let bridge = lines.iter().position(|l| l.ends_with("type bridge"));
        let master = lines.iter().position(|l| l.contains("master br0"));
        assert!(bridge < master);
    }

    #[test]
    fn a_root_lab_keeps_its_host_in_the_root_namespace() {
        let mut lab = Lab::default_lab();
        lab.host = HostMode::Root;
        let plan = Plan::new("x", &lab);
        assert_eq!(plan.namespaces.len(), 3, "wan and two containers only");
        let lines: Vec<String> = plan.steps().map(Step::explain).collect();
        assert!(
            lines.contains(&"ip link add br0 type bridge".to_string()),
            "{lines:#?}"
        );
    }
}
