//! The checks a lab must pass before anything touches the kernel.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{HOST_NODE, HostMode, Lab, LabError, LabIpv6, WAN_NODE};
use crate::ipv4net::Ipv4Net;
use crate::ipv6net::Ipv6Net;

/// Linux's `IFNAMSIZ` less the terminating NUL; network namespace names are
/// held to the same limit so every node name is also a valid device name.
const MAX_NAME_LEN: usize = 15;

impl Lab {
    /// All checks that need no kernel state.
    pub fn validate(&self) -> Result<(), LabError> {
        self.validate_subnet()?;
        self.validate_external()?;
        self.validate_names()?;
        self.validate_containers()?;
        if let Some(ipv6) = &self.ipv6 {
            self.validate_ipv6(ipv6)?;
        }
        self.validate_publish()
    }

    fn validate_ipv6(&self, ipv6: &LabIpv6) -> Result<(), LabError> {
        let bad = |what: &str, address: String, reason: &str| LabError::Ipv6 {
            what: what.to_owned(),
            address,
            reason: reason.to_owned(),
        };
        let subnet = ipv6.subnet;
        if self.host == HostMode::Root {
            // It would turn on the real host's IPv6 forwarding, which stops it taking
            // router advertisements on its own interfaces.
            return Err(bad(
                "subnet6",
                subnet.to_string(),
                "IPv6 needs host = \"namespace\"; a root-mode lab is IPv4 only",
            ));
        }
        if subnet.prefix_len() > 120 {
            return Err(bad(
                "subnet6",
                subnet.to_string(),
                "too small: its prefix length must be at most 120",
            ));
        }
        if subnet.addr() != subnet.network() {
            return Err(bad(
                "subnet6",
                subnet.to_string(),
                &format!("has host bits set; write it as {}", subnet.trunc()),
            ));
        }
        let in_network = |what: &str, address: Ipv6Addr, network: Ipv6Net| {
            if !network.contains(address) {
                return Err(bad(
                    what,
                    address.to_string(),
                    &format!("is outside {}", network.trunc()),
                ));
            }
            if address == network.network() {
                return Err(bad(
                    what,
                    address.to_string(),
                    &format!(
                        "is the subnet-router anycast address of {}",
                        network.trunc()
                    ),
                ));
            }
            Ok(())
        };
        in_network("gateway6", ipv6.gateway, subnet)?;
        let external = ipv6.external.trunc();
        if external.overlaps(subnet) {
            return Err(bad(
                "external address6",
                ipv6.external.to_string(),
                &format!("overlaps subnet6 {subnet}"),
            ));
        }
        in_network("external address6", ipv6.external.addr(), external)?;
        in_network("external peer_address6", ipv6.peer, external)?;
        if ipv6.peer == ipv6.external.addr() {
            return Err(bad(
                "external peer_address6",
                ipv6.peer.to_string(),
                "is the same as the external address6",
            ));
        }
        let mut addresses: HashMap<Ipv6Addr, String> = HashMap::new();
        addresses.insert(ipv6.gateway, "the gateway6".to_owned());
        for c in &self.containers {
            let what = format!("address6 of container \"{}\"", c.name);
            let Some(address) = c.address6 else {
                return Err(bad(
                    &what,
                    format!("(default for {})", c.address),
                    &format!("does not fit {subnet}; give the container an address6"),
                ));
            };
            in_network(&what, address, subnet)?;
            if let Some(first) = addresses.insert(address, what.clone()) {
                return Err(bad(&what, address.to_string(), &format!("is also {first}")));
            }
        }
        Ok(())
    }

    fn validate_subnet(&self) -> Result<(), LabError> {
        let subnet = self.subnet;
        if subnet.prefix_len() > 30 {
            return Err(LabError::SubnetTooSmall(subnet));
        }
        if subnet.addr() != subnet.network() {
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
        if network.prefix_len() <= 30 {
            check_host_address("external address", ext.address.addr(), network)?;
            check_host_address("external peer_address", ext.peer_address, network)?;
        } else if !network.contains(ext.peer_address) {
            return Err(LabError::OutsideNetwork {
                what: "external peer_address".to_owned(),
                address: ext.peer_address,
                network,
            });
        }
        if ext.peer_address == ext.address.addr() {
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
        let host_addresses = self.host_addresses();
        for (index, p) in self.publish.iter().enumerate() {
            if self.container(&p.node).is_none() {
                return Err(LabError::UnknownNode {
                    node: p.node.clone(),
                    spec: p.spec.clone(),
                });
            }
            if let Some(IpAddr::V6(_)) = p.spec.host_ip
                && self.ipv6.is_none()
            {
                return Err(LabError::NeedsSubnet6(format!("publish \"{}\"", p.spec)));
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
                .find(|r| r.prefix_len() != 0 && r.overlaps(network))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::Publish;
    use crate::lab::tests::{assert_message, ip, net, spec};

    /// A lab edit and what the resulting error message must mention.
    type Case = (fn(&mut Lab), &'static [&'static str]);

    fn add_publish(lab: &mut Lab, node: &str, text: &str) {
        lab.publish.push(Publish {
            node: node.to_owned(),
            spec: spec(text),
        });
    }

    fn rename(lab: &mut Lab, name: &str) {
        lab.containers[0].name = name.to_owned();
        lab.publish[0].node = name.to_owned();
    }

    fn set_host_ip(lab: &mut Lab, addr: Ipv4Addr) {
        lab.publish[0].spec.host_ip = Some(addr.into());
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

    #[test]
    fn validate_rejects_bad_ipv6() {
        fn dual(lab: &mut Lab) -> &mut LabIpv6 {
            lab.enable_default_ipv6();
            lab.ipv6.as_mut().expect("dual-stack")
        }
        let cases: &[Case] = &[
            (
                |l| add_publish(l, "netns1", "[2001:2::1]:8080:80"),
                &["publish \"[2001:2::1]:8080:80/tcp\"", "add subnet6"],
            ),
            (
                |l| {
                    dual(l);
                    add_publish(l, "netns1", "[2001:2::9]:8080:80");
                },
                &["host address 2001:2::9 is not an address of the host"],
            ),
            (
                |l| {
                    dual(l);
                    add_publish(l, "netns1", "[::]:5000:80");
                },
                &["\"5000:5000/tcp\"", "\"[::]:5000:80/tcp\"", "conflicts"],
            ),
            (
                |l| dual(l).subnet = "fd00::/121".parse().expect("net"),
                &["subnet6 fd00::/121", "at most 120"],
            ),
            (
                |l| dual(l).subnet = "fd00::1/64".parse().expect("net"),
                &["has host bits set", "fd00::/64"],
            ),
            (
                |l| dual(l).gateway = "fd00:1::1".parse().expect("ip"),
                &["gateway6 fd00:1::1", "outside fd00:172:18::/64"],
            ),
            (
                |l| dual(l).external = "fd00:172:18::99/64".parse().expect("net"),
                &["external address6", "overlaps subnet6"],
            ),
            (
                |l| dual(l).peer = "2001:2::1".parse().expect("ip"),
                &["peer_address6 2001:2::1", "same as the external address6"],
            ),
            (
                |l| {
                    dual(l);
                    l.containers[1].address6 = "fd00:172:18::10".parse().ok();
                },
                &["container \"netns1\"", "fd00:172:18::10", "netns0"],
            ),
            (
                |l| {
                    dual(l);
                    l.containers[0].address6 = None;
                },
                &["container \"netns0\"", "give the container an address6"],
            ),
            (
                |l| {
                    dual(l);
                    l.host = HostMode::Root;
                },
                &["subnet6", "root-mode lab is IPv4 only"],
            ),
        ];
        check_rejections(cases);
        let mut lab = Lab::default_dual_stack();
        lab.publish.push(Publish {
            node: "netns1".into(),
            spec: spec("[2001:2::1]:8080:80/udp"),
        });
        lab.publish.push(Publish {
            node: "netns1".into(),
            spec: spec("0.0.0.0:5000:80"),
        });
        assert!(
            lab.validate().is_err(),
            "0.0.0.0:5000 is 5000:5000's IPv4 side"
        );
        lab.publish.pop();
        lab.validate().expect("a dual-stack lab");
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
