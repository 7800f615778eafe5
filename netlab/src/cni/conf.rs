//! What the runtime hands netlab-cni on stdin: the network configuration (with the
//! `portmap`-compatible `runtimeConfig.portMappings`), the previous plugin's result, and for
//! GC the valid attachments. Validation turns it into port specs netlab already knows, or
//! into the CNI error that names the problem.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use serde::Deserialize;
use serde_json::Value;

use super::error::{CniError, code};
use crate::{
    ipv4net::Ipv4Net,
    ipv6net::Ipv6Net,
    ports::{PortRange, PortSpec, Proto},
};

/// The spec versions netlab-cni speaks (libcni converts the results of older plugins).
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// `portmap` options that only make sense for its iptables or nftables rules.
const NETFILTER_ONLY: [&str; 5] = [
    "markMasqBit",
    "externalSetMarkChain",
    "conditionsV4",
    "conditionsV6",
    "backend",
];

/// The network configuration of one plugin of a conflist, as the runtime passes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    /// The previous plugin's result (ADD, CHECK; DEL when the runtime has it).
    #[serde(default)]
    pub prev_result: Option<Value>,
    #[serde(default)]
    pub runtime_config: RuntimeConfig,
    /// `portmap`'s: masquerade hairpin and host-originated connections (default true).
    #[serde(default)]
    pub snat: Option<bool>,
    /// `portmap`'s: connections to published ports reach the container from the bridge's
    /// address instead of the client's.
    #[serde(default)]
    pub masq_all: bool,
    /// netlab-cni's own: masquerade the container subnet's outgoing traffic in eBPF (the
    /// bridge plugin's `ipMasq`, without iptables).
    #[serde(default)]
    pub masquerade: bool,
    /// netlab-cni's own: the device published ports are reached on (default: the device of
    /// the host's IPv4 default route).
    #[serde(default)]
    pub external_device: Option<String>,
    /// GC (spec 1.1): the attachments that are still in use.
    #[serde(rename = "cni.dev/valid-attachments", default)]
    pub valid_attachments: Option<Vec<Attachment>>,
    /// Everything else, to refuse what only `portmap`'s rules could do.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// What the runtime fills in from the conflist's `capabilities`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
}

/// One `-p` of the runtime, as `portmap` reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: i64,
    pub container_port: i64,
    #[serde(default)]
    pub protocol: String,
    #[serde(rename = "hostIP", default)]
    pub host_ip: String,
}

/// One container interface the runtime still uses (GC).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// A family's address with its prefix, as the previous result writes one (`address/len`).
pub trait Cidr: FromStr + Copy + fmt::Debug + PartialEq {
    type Addr: FromStr + Copy + fmt::Debug + PartialEq;
    fn address(self) -> Self::Addr;
}

impl Cidr for Ipv4Net {
    type Addr = Ipv4Addr;
    fn address(self) -> Ipv4Addr {
        self.addr()
    }
}

impl Cidr for Ipv6Net {
    type Addr = Ipv6Addr;
    fn address(self) -> Ipv6Addr {
        self.addr()
    }
}

/// The container's configuration in one family, from the previous result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContainerAddress<N: Cidr> {
    pub address: N::Addr,
    /// The address with its prefix: the network's subnet.
    pub subnet: N,
    pub gateway: Option<N::Addr>,
}

impl NetConf {
    /// Reads the configuration on stdin.
    pub fn parse(stdin: &[u8]) -> Result<Self, CniError> {
        serde_json::from_slice(stdin).map_err(|err| {
            CniError::new(
                code::DECODING_FAILURE,
                format!("reading the network configuration: {err}"),
            )
        })
    }

    /// Refuses what netlab-cni cannot honour, naming it.
    pub fn validate(&self) -> Result<(), CniError> {
        if !SUPPORTED_VERSIONS.contains(&self.cni_version.as_str()) {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!(
                    "cniVersion {:?} is not supported (netlab-cni speaks {})",
                    self.cni_version,
                    SUPPORTED_VERSIONS.join(", ")
                ),
            ));
        }
        if !valid_network_name(&self.name) {
            return Err(CniError::new(
                code::INVALID_CONFIG,
                format!(
                    "network name {:?} is invalid: a letter or digit, then letters, digits, '_', '.' or '-'",
                    self.name
                ),
            ));
        }
        if let Some(key) = NETFILTER_ONLY
            .iter()
            .find(|key| self.other.contains_key(**key))
        {
            return Err(CniError::new(
                code::UNSUPPORTED_FIELD,
                format!(
                    "{key} is a portmap option for its iptables/nftables rules; netlab-cni publishes ports in eBPF and has no rules to apply it to"
                ),
            ));
        }
        if self.snat == Some(false) {
            return Err(CniError::new(
                code::UNSUPPORTED_FIELD,
                "snat: false is not supported: netlab-cni always masquerades hairpin connections (their replies would otherwise bypass the NAT)",
            ));
        }
        Ok(())
    }

    /// The port specs of `runtimeConfig.portMappings`. As with `portmap`, a mapping without
    /// `hostIP` is published in both families, one on `0.0.0.0` or an IPv4 address in IPv4
    /// only, one on `::` or an IPv6 address in IPv6 only (each where the container has an
    /// address of that family).
    pub fn port_specs(&self) -> Result<Vec<PortSpec>, CniError> {
        let mut specs: Vec<PortSpec> = Vec::new();
        for mapping in &self.runtime_config.port_mappings {
            let spec = port_spec(mapping)?;
            if let Some(earlier) = specs.iter().find(|earlier| earlier.conflicts_with(&spec)) {
                return Err(CniError::new(
                    code::INVALID_CONFIG,
                    format!(
                        "portMappings publish host port {} twice ({earlier} and {spec})",
                        spec.host.start
                    ),
                ));
            }
            specs.push(spec);
        }
        Ok(specs)
    }
}

/// The CNI spec's network names: `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`.
fn valid_network_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A port of a mapping: 1 to 65535.
fn port(value: i64, which: &str) -> Result<u16, CniError> {
    u16::try_from(value)
        .ok()
        .filter(|port| *port > 0)
        .ok_or_else(|| {
            CniError::new(
                code::INVALID_CONFIG,
                format!("invalid {which} {value} in portMappings (1 to 65535)"),
            )
        })
}

/// One mapping as a spec.
fn port_spec(mapping: &PortMapping) -> Result<PortSpec, CniError> {
    let host = port(mapping.host_port, "hostPort")?;
    let container = port(mapping.container_port, "containerPort")?;
    let proto = match mapping.protocol.to_ascii_lowercase().as_str() {
        "" | "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "sctp" => {
            return Err(CniError::new(
                code::UNSUPPORTED_FIELD,
                format!("hostPort {host}: protocol sctp is not supported (TCP and UDP only)"),
            ));
        }
        other => {
            return Err(CniError::new(
                code::INVALID_CONFIG,
                format!("hostPort {host}: unknown protocol {other:?} in portMappings"),
            ));
        }
    };
    let host_ip = match mapping.host_ip.as_str() {
        "" => None,
        text => Some(text.parse::<IpAddr>().map_err(|_| {
            CniError::new(
                code::INVALID_CONFIG,
                format!("hostPort {host}: hostIP {text:?} is not an IP address"),
            )
        })?),
    };
    Ok(PortSpec {
        host_ip,
        host: PortRange::single(host),
        container: PortRange::single(container),
        proto,
    })
}

#[derive(Debug, Deserialize)]
struct PrevResult {
    #[serde(default)]
    interfaces: Vec<Interface>,
    #[serde(default)]
    ips: Vec<IpConfig>,
}

#[derive(Debug, Deserialize)]
struct Interface {
    name: String,
    #[serde(default)]
    sandbox: String,
}

#[derive(Debug, Deserialize)]
struct IpConfig {
    address: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    interface: Option<usize>,
}

/// The container's first address of the family of `N` (its network type) on interface
/// `ifname` inside its sandbox, as `portmap` picks it; `None` when it has none (nothing to
/// publish in that family).
pub fn container_address<N: Cidr>(
    prev: &Value,
    ifname: &str,
) -> Result<Option<ContainerAddress<N>>, CniError> {
    let prev: PrevResult = serde_json::from_value(prev.clone()).map_err(|err| {
        CniError::new(code::DECODING_FAILURE, format!("reading prevResult: {err}"))
    })?;
    let ours = |ip: &&IpConfig| {
        ip.interface
            .and_then(|index| prev.interfaces.get(index))
            .is_some_and(|iface| iface.name == ifname && !iface.sandbox.is_empty())
    };
    for ip in prev.ips.iter().filter(ours) {
        let Ok(subnet) = ip.address.parse::<N>() else {
            continue;
        };
        let gateway = match &ip.gateway {
            Some(text) => Some(text.parse::<N::Addr>().map_err(|_| {
                CniError::new(
                    code::DECODING_FAILURE,
                    format!(
                        "prevResult: gateway {text:?} of {} is not an address of its family",
                        ip.address
                    ),
                )
            })?),
            None => None,
        };
        return Ok(Some(ContainerAddress {
            address: subnet.address(),
            subnet,
            gateway,
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(extra: &str) -> NetConf {
        NetConf::parse(
            format!(r#"{{"cniVersion": "1.0.0", "name": "podman", "type": "netlab-cni" {extra}}}"#)
                .as_bytes(),
        )
        .expect("config")
    }

    fn mappings(json: &str) -> Result<Vec<String>, CniError> {
        let conf = conf(&format!(r#", "runtimeConfig": {{"portMappings": {json}}}"#));
        conf.port_specs()
            .map(|specs| specs.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn port_mappings_become_specs() {
        assert_eq!(
            mappings(
                r#"[{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                    {"hostPort": 5353, "containerPort": 53, "protocol": "UDP", "hostIP": "198.18.0.1"},
                    {"hostPort": 9090, "containerPort": 90, "protocol": "tcp", "hostIP": "0.0.0.0"},
                    {"hostPort": 9091, "containerPort": 91, "hostIP": "2001:2::1"},
                    {"hostPort": 9092, "containerPort": 92, "hostIP": "::"}]"#
            )
            .expect("valid"),
            [
                "8080:80/tcp",
                "198.18.0.1:5353:53/udp",
                "0.0.0.0:9090:90/tcp",
                "[2001:2::1]:9091:91/tcp",
                "[::]:9092:92/tcp"
            ]
        );
    }

    #[test]
    fn bad_mappings_name_the_problem() {
        for (json, code, words) in [
            (
                r#"[{"hostPort": 0, "containerPort": 80}]"#,
                code::INVALID_CONFIG,
                "invalid hostPort 0",
            ),
            (
                r#"[{"hostPort": 80, "containerPort": 70000}]"#,
                code::INVALID_CONFIG,
                "invalid containerPort 70000",
            ),
            (
                r#"[{"hostPort": 80, "containerPort": 80, "protocol": "sctp"}]"#,
                code::UNSUPPORTED_FIELD,
                "sctp",
            ),
            (
                r#"[{"hostPort": 80, "containerPort": 80, "protocol": "icmp"}]"#,
                code::INVALID_CONFIG,
                "unknown protocol",
            ),
            (
                r#"[{"hostPort": 80, "containerPort": 80, "hostIP": "nope"}]"#,
                code::INVALID_CONFIG,
                "not an IP address",
            ),
            (
                r#"[{"hostPort": 80, "containerPort": 80}, {"hostPort": 80, "containerPort": 81, "hostIP": "198.18.0.1"}]"#,
                code::INVALID_CONFIG,
                "host port 80 twice",
            ),
        ] {
            let err = mappings(json).expect_err(json);
            assert_eq!(err.code, code, "{json}: {err}");
            assert!(err.msg.contains(words), "{json}: {err}");
        }
        // The same port on two protocols is two ports.
        assert!(mappings(r#"[{"hostPort": 80, "containerPort": 80}, {"hostPort": 80, "containerPort": 80, "protocol": "udp"}]"#).is_ok());
    }

    #[test]
    fn options_netlab_cannot_honour_are_refused() {
        for (extra, code, words) in [
            (
                r#", "markMasqBit": 13"#,
                code::UNSUPPORTED_FIELD,
                "markMasqBit is a portmap option",
            ),
            (
                r#", "externalSetMarkChain": "X""#,
                code::UNSUPPORTED_FIELD,
                "externalSetMarkChain",
            ),
            (
                r#", "conditionsV4": ["-s", "1.2.3.4"]"#,
                code::UNSUPPORTED_FIELD,
                "conditionsV4",
            ),
            (
                r#", "conditionsV6": []"#,
                code::UNSUPPORTED_FIELD,
                "conditionsV6",
            ),
            (
                r#", "backend": "nftables""#,
                code::UNSUPPORTED_FIELD,
                "backend",
            ),
            (r#", "snat": false"#, code::UNSUPPORTED_FIELD, "snat: false"),
        ] {
            let err = conf(extra).validate().expect_err(extra);
            assert_eq!(err.code, code, "{extra}: {err}");
            assert!(err.msg.contains(words), "{extra}: {err}");
        }
        assert!(
            conf(r#", "snat": true, "masqAll": true, "masquerade": true"#)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn versions_and_names_are_checked() {
        let mut old = conf("");
        old.cni_version = "0.2.0".into();
        assert_eq!(
            old.validate().expect_err("0.2.0").code,
            code::INCOMPATIBLE_VERSION
        );
        for version in SUPPORTED_VERSIONS {
            let mut ok = conf("");
            ok.cni_version = version.into();
            assert!(ok.validate().is_ok(), "{version}");
        }
        for name in ["", "-net", "a/b", "net work"] {
            let mut bad = conf("");
            bad.name = name.into();
            assert_eq!(
                bad.validate().expect_err(name).code,
                code::INVALID_CONFIG,
                "{name:?}"
            );
        }
        assert!(NetConf::parse(b"{not json").is_err_and(|err| err.code == code::DECODING_FAILURE));
    }

    #[test]
    fn the_container_address_is_the_first_of_its_family_on_its_interface() {
        // The bridge plugin's result: the bridge, the host-side veth, the container's eth0.
        let prev: Value = serde_json::from_str(
            r#"{"cniVersion": "1.0.0",
                "interfaces": [{"name": "cni0", "mac": "aa:aa:aa:aa:aa:aa"},
                               {"name": "veth1", "mac": "bb:bb:bb:bb:bb:bb"},
                               {"name": "eth0", "mac": "cc:cc:cc:cc:cc:cc", "sandbox": "/run/netns/c1"},
                               {"name": "eth1", "sandbox": "/run/netns/c1"}],
                "ips": [{"address": "10.99.0.7/16", "interface": 1},
                        {"address": "fd00::7/64", "interface": 2},
                        {"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 2},
                        {"address": "10.77.0.5/16", "interface": 3}]}"#,
        )
        .expect("json");
        let found = container_address::<Ipv4Net>(&prev, "eth0")
            .expect("parsed")
            .expect("found");
        assert_eq!(found.address, Ipv4Addr::new(10, 88, 0, 5));
        assert_eq!(found.subnet.to_string(), "10.88.0.5/16");
        assert_eq!(found.gateway, Some(Ipv4Addr::new(10, 88, 0, 1)));
        assert_eq!(
            container_address::<Ipv4Net>(&prev, "eth1")
                .expect("parsed")
                .map(|a| a.address),
            Some(Ipv4Addr::new(10, 77, 0, 5))
        );
        let found6 = container_address::<Ipv6Net>(&prev, "eth0")
            .expect("parsed")
            .expect("found");
        assert_eq!(
            found6.address,
            "fd00::7".parse::<Ipv6Addr>().expect("address")
        );
        assert_eq!((found6.subnet.prefix_len(), found6.gateway), (64, None));
        assert_eq!(
            container_address::<Ipv6Net>(&prev, "eth1").expect("parsed"),
            None
        );
        // The host-side veth has no sandbox: never the container's.
        assert_eq!(
            container_address::<Ipv4Net>(&prev, "veth1").expect("parsed"),
            None
        );
        assert_eq!(
            container_address::<Ipv4Net>(&prev, "eth9").expect("parsed"),
            None
        );
    }
}
