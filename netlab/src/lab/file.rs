//! The lab file: TOML with every key optional, defaults filled in.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Deserialize;

use super::{Container, External, HostMode, Lab, LabError, LabIpv6, Publish};
use crate::ipv4net::Ipv4Net;
use crate::ipv6net::Ipv6Net;
use crate::ports::PortSpec;

impl Lab {
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
    /// `subnet6` makes the lab dual-stack: `gateway6` is then `::1` of it by default, the
    /// external link's IPv6 side `2001:2::1/64` to `wan` at `2001:2::2`, and a container's
    /// missing `address6` its IPv4 host number in the same digits (172.18.0.10 gets `::10`).
    /// The other IPv6 keys need `subnet6`.
    ///
    /// ```toml
    /// subnet = "172.18.0.0/16"
    /// gateway = "172.18.0.1"
    /// subnet6 = "fd00:172:18::/64"  # IPv6 too; none by default
    /// gateway6 = "fd00:172:18::1"
    /// bridge = "br0"
    /// host = "namespace"          # or "root"
    /// masquerade = true
    /// [external]                  # any subset of these keys
    /// device = "eth0"
    /// address = "198.18.0.1/24"
    /// peer_device = "eth0"
    /// peer_address = "198.18.0.2"
    /// address6 = "2001:2::1/64"
    /// peer_address6 = "2001:2::2"
    /// [[container]]
    /// name = "web"
    /// address = "172.18.0.10"
    /// address6 = "fd00:172:18::10"
    /// device = "ceth0"
    /// host_device = "veth0"
    /// [[publish]]
    /// node = "web"
    /// ports = ["8080:80", "127.0.0.1:5353:53/udp", "[::1]:8081:81"]
    /// ```
    pub fn from_toml(text: &str) -> Result<Lab, LabError> {
        let file: LabFile = toml::from_str(text).map_err(|e| file_error(text, &e))?;
        let lab = file.into_lab()?;
        lab.validate()?;
        Ok(lab)
    }
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
    subnet6: Option<Ipv6Net>,
    gateway6: Option<Ipv6Addr>,
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
    address6: Option<Ipv6Net>,
    peer_address6: Option<Ipv6Addr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainerFile {
    name: String,
    address: Ipv4Addr,
    address6: Option<Ipv6Addr>,
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
    fn into_lab(self) -> Result<Lab, LabError> {
        let defaults = Lab::empty();
        let subnet = self.subnet.unwrap_or(defaults.subnet);
        // A subnet too small for a first host fails validation anyway;
        // the network address is just something to report it against.
        let gateway = self
            .gateway
            .or_else(|| subnet.first_host())
            .unwrap_or_else(|| subnet.network());
        let ext = self.external.unwrap_or_default();
        let ipv6 = if let Some(subnet6) = self.subnet6 {
            let mut ipv6 = LabIpv6::with_defaults(subnet6);
            ipv6.gateway = self.gateway6.unwrap_or(ipv6.gateway);
            ipv6.external = ext.address6.unwrap_or(ipv6.external);
            ipv6.peer = ext.peer_address6.unwrap_or(ipv6.peer);
            Some(ipv6)
        } else {
            let stray = [
                ("gateway6", self.gateway6.is_some()),
                ("external address6", ext.address6.is_some()),
                ("external peer_address6", ext.peer_address6.is_some()),
            ]
            .into_iter()
            .chain(
                self.container
                    .iter()
                    .map(|c| ("a container's address6", c.address6.is_some())),
            )
            .find(|(_, given)| *given);
            if let Some((what, _)) = stray {
                return Err(LabError::NeedsSubnet6(what.to_owned()));
            }
            None
        };
        let mut lab = Lab {
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
            ipv6: None,
            masquerade: self.masquerade.unwrap_or(defaults.masquerade),
            containers: self
                .container
                .into_iter()
                .enumerate()
                .map(|(index, c)| Container {
                    name: c.name,
                    address: c.address,
                    address6: c.address6,
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
        };
        if let Some(ipv6) = ipv6 {
            lab.enable_ipv6(ipv6);
        }
        Ok(lab)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::tests::{assert_message, ip, net, spec};

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
            ipv6: None,
            masquerade: false,
            containers: vec![
                Container {
                    name: "web".to_owned(),
                    address: ip(10, 88, 0, 10),
                    address6: None,
                    device: "eth0".to_owned(),
                    host_device: "vethweb".to_owned(),
                },
                Container {
                    name: "db".to_owned(),
                    address: ip(10, 88, 0, 11),
                    address6: None,
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

    #[test]
    fn subnet6_makes_the_lab_dual_stack() {
        let text = r#"
subnet6 = "fd00:10::/64"
[[container]]
name = "a"
address = "172.18.0.5"
[[container]]
name = "b"
address = "172.18.1.23"
address6 = "fd00:10::beef"
"#;
        let lab = Lab::from_toml(text).unwrap();
        let ipv6 = lab.ipv6.expect("dual-stack");
        assert_eq!(ipv6.gateway.to_string(), "fd00:10::1");
        assert_eq!(ipv6.external.to_string(), "2001:2::1/64");
        assert_eq!(ipv6.peer.to_string(), "2001:2::2");
        let addresses: Vec<String> = lab
            .containers
            .iter()
            .map(|c| c.address6.expect("an address6").to_string())
            .collect();
        // 172.18.1.23 is host 279 of the /16: `::279`, unless the file says otherwise.
        assert_eq!(addresses, ["fd00:10::5", "fd00:10::beef"]);
        assert_eq!(
            Lab::default_dual_stack().containers[1].address6,
            "fd00:172:18::20".parse().ok()
        );
        let json = serde_json::to_value(&lab).unwrap();
        assert_eq!(json["ipv6"]["subnet"], "fd00:10::/64");
        let back: Lab = serde_json::from_value(json).unwrap();
        assert_eq!(back, lab);
        // An IPv4-only lab's state has no IPv6 keys, as before there were any.
        let json = serde_json::to_value(Lab::default_lab()).unwrap();
        assert!(json.get("ipv6").is_none() && json["containers"][0].get("address6").is_none());
        for (text, needle) in [
            ("gateway6 = \"fd00::1\"", "gateway6 needs an IPv6 subnet"),
            (
                "[external]\naddress6 = \"2001:2::1/64\"",
                "external address6 needs an IPv6 subnet",
            ),
            (
                "[[container]]\nname = \"a\"\naddress = \"172.18.0.5\"\naddress6 = \"fd00::5\"",
                "address6 needs an IPv6 subnet",
            ),
            ("subnet6 = \"fd00::\"", "fd00::"),
        ] {
            let err = from_toml_err(text);
            assert_message(&err, &[needle]);
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
}
