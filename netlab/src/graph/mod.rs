//! `netlab graph`: the lab as the walkthrough draws it — one box per network namespace with
//! its devices and addresses, the veth pairs and the external link between them, the
//! published ports, and where the NAT backend's pieces sit (which program on which hook).
//!
//! [`Picture`] is the drawing's content, built from the lab model and the backend's
//! [`Hook`]s, so the same picture comes from a live lab or from a lab file never deployed.
//! `dot` and `mermaid` write it as text; `svg` lays the DOT out with layout-rs.

mod dot;
mod mermaid;
mod svg;

use crate::{
    error::Result,
    lab::{Container, HOST_NODE, HostMode, Lab, WAN_NODE},
    nat::{BackendKind, Hook},
    topology,
};

/// The output format of `netlab graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A picture, laid out by layout-rs (a Graphviz `dot` work-alike in Rust).
    Svg,
    /// Graphviz DOT: `dot -Tpng` draws it.
    Dot,
    /// A Mermaid flowchart, which GitHub and many Markdown viewers draw in place.
    Mermaid,
}

/// What the drawing shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    /// e.g. `lab demo, backend ebpf`.
    pub title: String,
    /// One box per node, in creation order: host, wan, containers.
    pub boxes: Vec<NodeBox>,
    /// Lines between devices.
    pub links: Vec<Link>,
}

/// A network namespace (or the root namespace, for a `host = "root"` lab).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBox {
    /// The lab's name for the node (`host`, `wan`, a container's name).
    pub node: String,
    /// Where it lives: `netns demo-host`, or `root namespace`.
    pub place: String,
    pub devices: Vec<Device>,
    /// Hooks on the namespace as a whole (cgroup socket hooks, netfilter chains).
    pub hooks: Vec<String>,
}

/// A network device and what is attached to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    /// Address with prefix, if it has one.
    pub address: Option<String>,
    /// What it is: `bridge`, `port of br0`, `veth`, ...
    pub role: String,
    /// `point: program` lines.
    pub hooks: Vec<String>,
}

/// A line between two devices, each named `(node, device)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub from: (String, String),
    pub to: (String, String),
    pub label: String,
    pub kind: LinkKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// A cable: a veth pair.
    Veth,
    /// Traffic to a published port: from the external device to the container.
    Published,
}

/// The picture of lab `lab_name` with NAT by `backend`, whose pieces sit at `hooks`.
pub fn picture(lab_name: &str, lab: &Lab, backend: BackendKind, hooks: &[Hook]) -> Picture {
    let drawer = Drawer {
        lab_name,
        lab,
        hooks,
    };
    let mut boxes = vec![drawer.host(), drawer.wan()];
    boxes.extend(lab.containers.iter().map(|c| drawer.container(c)));
    let masquerade = if lab.masquerade {
        and6(
            format!(", masquerade {}", lab.subnet),
            lab.ipv6.map(|ipv6| ipv6.subnet.to_string()),
        )
    } else {
        String::new()
    };
    Picture {
        title: format!("lab {lab_name}, backend {backend}{masquerade}"),
        boxes,
        links: links(lab),
    }
}

/// What the boxes are drawn from.
struct Drawer<'a> {
    lab_name: &'a str,
    lab: &'a Lab,
    hooks: &'a [Hook],
}

impl Drawer<'_> {
    /// The hooks on `device` of `node`, or on the whole namespace for `None`.
    fn hooks_on(&self, node: &str, device: Option<&str>) -> Vec<String> {
        self.hooks
            .iter()
            .filter(|h| h.node == node && h.device.as_deref() == device)
            .map(|h| format!("{}: {}", h.point, h.runs))
            .collect()
    }

    fn node_box(&self, node: &str, devices: Vec<Device>) -> NodeBox {
        let place = if node == HOST_NODE && self.lab.host == HostMode::Root {
            "root namespace".to_owned()
        } else {
            format!("netns {}", topology::netns_name(self.lab_name, node))
        };
        NodeBox {
            node: node.to_owned(),
            place,
            devices,
            hooks: self.hooks_on(node, None),
        }
    }

    fn device(&self, node: &str, name: &str, address: Option<String>, role: &str) -> Device {
        Device {
            name: name.to_owned(),
            address,
            role: role.to_owned(),
            hooks: self.hooks_on(node, Some(name)),
        }
    }

    /// The host: the external device, the bridge, and one bridge port per container.
    fn host(&self) -> NodeBox {
        let lab = self.lab;
        let ext = &lab.external;
        let mut devices = vec![
            self.device(
                HOST_NODE,
                &ext.device,
                Some(and6(
                    ext.address.to_string(),
                    lab.ipv6.map(|ipv6| ipv6.external.to_string()),
                )),
                "external link",
            ),
            self.device(
                HOST_NODE,
                &lab.bridge,
                Some(and6(
                    format!("{}/{}", lab.gateway, lab.subnet.prefix_len()),
                    lab.ipv6
                        .map(|ipv6| ipv6.subnet.with_address(ipv6.gateway).to_string()),
                )),
                "bridge",
            ),
        ];
        let bridge_port = format!("port of {}", lab.bridge);
        devices.extend(
            lab.containers
                .iter()
                .map(|c| self.device(HOST_NODE, &c.host_device, None, &bridge_port)),
        );
        self.node_box(HOST_NODE, devices)
    }

    fn wan(&self) -> NodeBox {
        let ext = &self.lab.external;
        let device = self.device(
            WAN_NODE,
            &ext.peer_device,
            Some(and6(
                format!("{}/{}", ext.peer_address, ext.address.prefix_len()),
                self.lab
                    .ipv6
                    .map(|ipv6| ipv6.external.with_address(ipv6.peer).to_string()),
            )),
            "the outside world",
        );
        self.node_box(WAN_NODE, vec![device])
    }

    fn container(&self, c: &Container) -> NodeBox {
        let ipv6 = self.lab.ipv6.zip(c.address6);
        let device = self.device(
            &c.name,
            &c.device,
            Some(and6(
                format!("{}/{}", c.address, self.lab.subnet.prefix_len()),
                ipv6.map(|(ipv6, address6)| ipv6.subnet.with_address(address6).to_string()),
            )),
            &and6(
                format!("default via {}", self.lab.gateway),
                ipv6.map(|(ipv6, _)| format!("via {}", ipv6.gateway)),
            ),
        );
        self.node_box(&c.name, vec![device])
    }
}

/// An IPv4 address and, in a dual-stack lab, the IPv6 one after it.
fn and6(ipv4: String, ipv6: Option<String>) -> String {
    match ipv6 {
        Some(ipv6) => format!("{ipv4}, {ipv6}"),
        None => ipv4,
    }
}

/// The external link, a veth pair per container, and a line per published port from the
/// external device to the container.
fn links(lab: &Lab) -> Vec<Link> {
    let ext = &lab.external;
    let host_end = |device: &str| (HOST_NODE.to_owned(), device.to_owned());
    let mut links = vec![Link {
        from: host_end(&ext.device),
        to: (WAN_NODE.to_owned(), ext.peer_device.clone()),
        label: format!("veth {}", ext.address.trunc()),
        kind: LinkKind::Veth,
    }];
    links.extend(lab.containers.iter().map(|c| Link {
        from: host_end(&c.host_device),
        to: (c.name.clone(), c.device.clone()),
        label: "veth".to_owned(),
        kind: LinkKind::Veth,
    }));
    links.extend(lab.publish.iter().filter_map(|publish| {
        let c = lab.container(&publish.node)?;
        Some(Link {
            from: host_end(&ext.device),
            to: (c.name.clone(), c.device.clone()),
            label: format!("-p {}", publish.spec),
            kind: LinkKind::Published,
        })
    }));
    links
}

/// The picture in `format`.
pub fn render(picture: &Picture, format: Format) -> Result<String> {
    match format {
        Format::Dot => Ok(dot::render(picture)),
        Format::Mermaid => Ok(mermaid::render(picture)),
        Format::Svg => svg::render(picture),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::{BackendOptions, NatContext};

    pub(super) fn default_picture(backend: BackendKind) -> Picture {
        let lab = Lab::default_lab();
        let ctx = NatContext {
            lab_name: "demo",
            lab: &lab,
            options: BackendOptions::default(),
        };
        let hooks = backend.backend().expect("backend").hooks(ctx);
        picture("demo", &lab, backend, &hooks)
    }

    #[test]
    fn the_default_lab_has_its_namespaces_links_ports_and_programs() {
        let p = default_picture(BackendKind::Ebpf);
        assert_eq!(p.title, "lab demo, backend ebpf, masquerade 172.18.0.0/16");
        let nodes: Vec<&str> = p.boxes.iter().map(|b| b.node.as_str()).collect();
        assert_eq!(nodes, ["host", "wan", "netns0", "netns1"]);
        let host = &p.boxes[0];
        assert_eq!(host.place, "netns demo-host");
        let eth0 = &host.devices[0];
        assert_eq!(eth0.address.as_deref(), Some("198.18.0.1/24"));
        assert_eq!(
            eth0.hooks,
            [
                "tcx ingress: netlab_nat_ext_ingress",
                "tcx egress: netlab_nat_ext_egress"
            ]
        );
        assert_eq!(host.devices[2].name, "veth0");
        assert_eq!(host.devices[2].role, "port of br0");
        assert_eq!(
            host.devices[2].hooks,
            ["tc block ingress: netlab_nat_ctr_ingress"]
        );
        assert!(
            host.hooks
                .contains(&"cgroup connect4: netlab_sock_connect4".to_owned())
        );
        let published: Vec<&Link> = p
            .links
            .iter()
            .filter(|l| l.kind == LinkKind::Published)
            .collect();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].label, "-p 5000:5000/tcp");
        assert_eq!(published[0].to, ("netns0".to_owned(), "ceth0".to_owned()));
        let veths = p.links.iter().filter(|l| l.kind == LinkKind::Veth).count();
        assert_eq!(veths, 3, "external link and one per container");
    }

    #[test]
    fn a_dual_stack_lab_shows_both_families() {
        let lab = Lab::default_dual_stack();
        let ctx = NatContext {
            lab_name: "demo",
            lab: &lab,
            options: BackendOptions::default(),
        };
        let hooks = BackendKind::Nftables.backend().expect("backend").hooks(ctx);
        let p = picture("demo", &lab, BackendKind::Nftables, &hooks);
        assert_eq!(
            p.title,
            "lab demo, backend nftables, masquerade 172.18.0.0/16, fd00:172:18::/64"
        );
        let host = &p.boxes[0];
        assert_eq!(
            host.devices[0].address.as_deref(),
            Some("198.18.0.1/24, 2001:2::1/64")
        );
        assert_eq!(
            host.devices[1].address.as_deref(),
            Some("172.18.0.1/16, fd00:172:18::1/64")
        );
        let netns1 = &p.boxes[3].devices[0];
        assert_eq!(
            netns1.address.as_deref(),
            Some("172.18.0.20/16, fd00:172:18::20/64")
        );
        assert_eq!(netns1.role, "default via 172.18.0.1, via fd00:172:18::1");
        assert!(
            host.hooks
                .iter()
                .any(|h| h.ends_with("ip6 netlab_demo prerouting")),
            "{:?}",
            host.hooks
        );
    }

    #[test]
    fn iptables_shows_its_chains_and_none_shows_nothing() {
        let p = default_picture(BackendKind::Iptables);
        let host = &p.boxes[0];
        assert!(
            host.hooks
                .contains(&"nat PREROUTING: NL-demo-DNAT".to_owned()),
            "{:?}",
            host.hooks
        );
        assert!(host.devices.iter().all(|d| d.hooks.is_empty()));
        let p = default_picture(BackendKind::None);
        assert!(p.boxes.iter().all(|b| b.hooks.is_empty()));
    }
}
