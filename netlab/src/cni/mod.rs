//! `netlab-cni`: a chained CNI plugin that publishes the ports of real containers (Podman,
//! containerd, Kubernetes `hostPort`) through the eBPF datapath of `--backend ebpf`, as a
//! drop-in for the reference `portmap` plugin. It runs in the namespace the runtime
//! considers the host; see README.md for the conflist.
//!
//! ADD reads the container's address from `prevResult`, refuses a host port another
//! container holds, and writes map entries tagged with the attachment's owner id; DEL removes
//! exactly those (also without `prevResult`, also when the namespace is gone); GC removes
//! the entries of attachments the runtime no longer lists; the last container out detaches
//! the programs. Commands on one host namespace are serialised by a lock.

pub mod conf;
mod datapath;
pub mod error;
mod host;

use std::{collections::HashSet, path::PathBuf};

use serde_json::{Value, json};

use self::{
    conf::{NetConf, SUPPORTED_VERSIONS},
    datapath::{Attachment, Datapath, Network, Network6},
    error::{CniError, code},
};
use crate::{ipv4net::Ipv4Net, ipv6net::Ipv6Net, lab_lock::LabLock};

/// The environment the runtime sets for one call (`CNI_*`).
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub command: String,
    pub container_id: Option<String>,
    pub netns: Option<PathBuf>,
    pub ifname: Option<String>,
}

impl Env {
    /// Reads `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS` and `CNI_IFNAME` (`CNI_PATH` and
    /// `CNI_ARGS` are for plugins that call others, which this one does not).
    pub fn from_process() -> Self {
        let var = |name| {
            std::env::var(name)
                .ok()
                .filter(|value: &String| !value.is_empty())
        };
        Self {
            command: var("CNI_COMMAND").unwrap_or_default(),
            container_id: var("CNI_CONTAINERID"),
            netns: var("CNI_NETNS").map(PathBuf::from),
            ifname: var("CNI_IFNAME"),
        }
    }

    fn require<'a, T>(value: Option<&'a T>, name: &str) -> Result<&'a T, CniError>
    where
        T: ?Sized,
    {
        value.ok_or_else(|| CniError::new(code::INVALID_ENVIRONMENT, format!("{name} is not set")))
    }

    /// The attachment's owner id, from `CNI_CONTAINERID` and `CNI_IFNAME`.
    fn owner(&self) -> Result<u64, CniError> {
        let id = Self::require(self.container_id.as_deref(), "CNI_CONTAINERID")?;
        let valid = id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !valid {
            return Err(CniError::new(
                code::INVALID_ENVIRONMENT,
                format!(
                    "CNI_CONTAINERID {id:?} is invalid: a letter or digit, then letters, digits, '_', '.' or '-'"
                ),
            ));
        }
        let ifname = Self::require(self.ifname.as_deref(), "CNI_IFNAME")?;
        Ok(owner_of(id, ifname))
    }
}

/// The owner id of attachment `container_id`/`ifname`.
fn owner_of(container_id: &str, ifname: &str) -> u64 {
    netlab_common::nat::owner_id(format!("{container_id}/{ifname}").as_bytes())
}

/// Runs one CNI command; returns what goes on stdout on success (nothing for DEL, CHECK,
/// GC and STATUS).
pub fn run(env: &Env, stdin: &[u8]) -> Result<Option<Value>, CniError> {
    if env.command == "VERSION" {
        let asked = serde_json::from_slice::<Value>(stdin)
            .ok()
            .and_then(|conf| conf["cniVersion"].as_str().map(str::to_owned));
        return Ok(Some(json!({
            "cniVersion": asked.unwrap_or_else(|| SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.len() - 1].to_owned()),
            "supportedVersions": SUPPORTED_VERSIONS,
        })));
    }
    let conf = NetConf::parse(stdin)?;
    let version = conf.cni_version.clone();
    conf.validate()
        .and_then(|()| match env.command.as_str() {
            "ADD" => add(env, &conf),
            "DEL" => del(env, &conf).map(|()| None),
            "CHECK" => check(env, &conf).map(|()| None),
            "GC" => gc(&conf).map(|()| None),
            "STATUS" => status().map(|()| None),
            "" => Err(CniError::new(
                code::INVALID_ENVIRONMENT,
                "CNI_COMMAND is not set",
            )),
            other => Err(CniError::new(
                code::INVALID_ENVIRONMENT,
                format!("unknown CNI_COMMAND {other:?} (ADD, DEL, CHECK, GC, STATUS, VERSION)"),
            )),
        })
        .map_err(|err| err.in_version(&version))
}

/// Wraps netlab's errors: refusals as `code`, failures as I/O failures.
fn netlab<T>(code: u32, result: crate::Result<T>) -> Result<T, CniError> {
    result.map_err(|err| CniError::from_netlab(code, &err))
}

/// The host namespace's lock, and its datapath of `conf`'s network.
fn lock(conf: &NetConf) -> Result<(LabLock, Datapath, u64), CniError> {
    // The host namespace's cookie (`SO_NETNS_COOKIE`) names its datapath and its lock.
    let cookie = netlab(code::IO_FAILURE, crate::nat::ebpf::attach::netns_cookie())?;
    let lock = netlab(code::IO_FAILURE, LabLock::acquire(&format!("cni-{cookie}")))?;
    Ok((lock, Datapath::of(&conf.name, cookie), cookie))
}

fn add(env: &Env, conf: &NetConf) -> Result<Option<Value>, CniError> {
    let owner = env.owner()?;
    let ifname = Env::require(env.ifname.as_deref(), "CNI_IFNAME")?;
    let netns = Env::require(env.netns.as_ref(), "CNI_NETNS")?;
    let mut prev = conf.prev_result.clone().ok_or_else(|| {
        CniError::new(
            code::INVALID_CONFIG,
            "netlab-cni is a chained plugin: ADD needs prevResult (list it after the bridge plugin in the conflist)",
        )
    })?;
    prev["cniVersion"] = Value::from(conf.cni_version.as_str());
    let specs = conf.port_specs()?;
    let Some(address) = conf::container_address::<Ipv4Net>(&prev, ifname)? else {
        // No IPv4 address on the interface: nothing netlab-cni can publish.
        return Ok(Some(prev));
    };
    let address6 = conf::container_address::<Ipv6Net>(&prev, ifname)?;
    let gateway = address.gateway.ok_or_else(|| {
        CniError::new(
            code::INVALID_CONFIG,
            format!("prevResult gives {} no gateway: netlab-cni needs the bridge plugin with \"isGateway\": true", address.address),
        )
    })?;
    let link = netlab(code::INVALID_CONFIG, host::container_link(netns, ifname))?;
    let external = netlab(
        code::INVALID_CONFIG,
        host::external(conf.external_device.as_deref()),
    )?;
    let (_lock, datapath, cookie) = lock(conf)?;
    if let Some(other) = Datapath::other_network(&conf.name, cookie) {
        return Err(CniError::new(
            code::NAMESPACE_TAKEN,
            format!(
                "this host namespace runs netlab-cni for network {other:?} already; one network per host namespace"
            ),
        ));
    }
    let ipv6 = network6(address6, &external);
    if let Some(taken) = netlab(
        code::IO_FAILURE,
        datapath.taken(owner, &specs, ipv6.is_some()),
    )? {
        return Err(CniError::new(code::PORT_TAKEN, taken));
    }
    let network = Network {
        external,
        subnet: address.subnet,
        gateway,
        bridge_mac: link.bridge_mac,
        masquerade: conf.masquerade,
        masq_all: conf.masq_all,
        netns_cookie: cookie,
        ipv6,
    };
    let attachment = Attachment {
        owner,
        address: address.address,
        address6: ipv6.and(address6).map(|address6| address6.address),
        link: &link,
        specs: &specs,
    };
    if let Err(err) = datapath.add(&network, &attachment) {
        // Leave the namespace as it was: nothing of this container, and no datapath if
        // it was the first.
        let _ = datapath.remove(owner);
        let _ = datapath.remove_if_unused();
        return Err(CniError::from_netlab(code::IO_FAILURE, &err));
    }
    Ok(Some(prev))
}

/// The network's IPv6 side: the container's IPv6 address with its gateway, and the
/// external device's IPv6 address, when both are there (else the container is published
/// in IPv4 only, as `portmap` publishes a family only where it has addresses).
fn network6(
    address6: Option<conf::ContainerAddress<Ipv6Net>>,
    external: &host::External,
) -> Option<Network6> {
    let address6 = address6?;
    Some(Network6 {
        subnet: address6.subnet,
        gateway: address6.gateway?,
        external: external.address6?,
    })
}

fn del(env: &Env, conf: &NetConf) -> Result<(), CniError> {
    let owner = env.owner()?;
    let (_lock, datapath, _) = lock(conf)?;
    netlab(code::IO_FAILURE, datapath.remove(owner))?;
    netlab(code::IO_FAILURE, datapath.remove_if_unused())
}

fn check(env: &Env, conf: &NetConf) -> Result<(), CniError> {
    let owner = env.owner()?;
    let ifname = Env::require(env.ifname.as_deref(), "CNI_IFNAME")?;
    let netns = Env::require(env.netns.as_ref(), "CNI_NETNS")?;
    let prev = conf
        .prev_result
        .as_ref()
        .ok_or_else(|| CniError::new(code::INVALID_CONFIG, "CHECK needs prevResult"))?;
    let specs = conf.port_specs()?;
    let Some(address) = conf::container_address::<Ipv4Net>(prev, ifname)? else {
        return Ok(());
    };
    let address6 = conf::container_address::<Ipv6Net>(prev, ifname)?;
    let link = netlab(code::CHECK_FAILED, host::container_link(netns, ifname))?;
    let external = netlab(
        code::CHECK_FAILED,
        host::external(conf.external_device.as_deref()),
    )?;
    let (_lock, datapath, _) = lock(conf)?;
    let attachment = Attachment {
        owner,
        address: address.address,
        address6: network6(address6, &external)
            .and(address6)
            .map(|a| a.address),
        link: &link,
        specs: &specs,
    };
    match netlab(code::IO_FAILURE, datapath.check(&attachment))? {
        None => Ok(()),
        Some(difference) => Err(CniError::new(code::CHECK_FAILED, difference)),
    }
}

fn gc(conf: &NetConf) -> Result<(), CniError> {
    let valid: HashSet<u64> = conf
        .valid_attachments
        .iter()
        .flatten()
        .map(|attachment| owner_of(&attachment.container_id, &attachment.ifname))
        .collect();
    let (_lock, datapath, _) = lock(conf)?;
    netlab(code::IO_FAILURE, datapath.keep_only(&valid))?;
    netlab(code::IO_FAILURE, datapath.remove_if_unused())
}

/// STATUS (spec 1.1): ready when bpffs and cgroup v2 are there, which ADD needs.
fn status() -> Result<(), CniError> {
    let ready = crate::bpf_loader::bpffs::ensure_mounted()
        .and_then(|()| crate::nat::ebpf::attach::cgroup2_root().map(drop));
    ready.map_err(|err| {
        CniError::new(
            code::NOT_AVAILABLE,
            format!(
                "netlab-cni cannot publish ports here: {}",
                crate::error::Chain(&err)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(command: &str) -> Env {
        Env {
            command: command.into(),
            container_id: Some("c1".into()),
            netns: Some("/run/netns/none".into()),
            ifname: Some("eth0".into()),
        }
    }

    const CONF: &[u8] = br#"{"cniVersion": "0.4.0", "name": "net", "type": "netlab-cni"}"#;

    #[test]
    fn version_lists_the_spec_versions() {
        let out = run(&env("VERSION"), br#"{"cniVersion": "1.0.0"}"#)
            .expect("version")
            .expect("output");
        assert_eq!(out["cniVersion"], "1.0.0");
        assert_eq!(
            out["supportedVersions"],
            json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
        );
    }

    #[test]
    fn errors_answer_in_the_configurations_version() {
        let err = run(&env("ADD"), CONF).expect_err("no prevResult");
        assert_eq!(err.cni_version, "0.4.0");
        assert_eq!(err.code, code::INVALID_CONFIG);
        assert!(err.msg.contains("needs prevResult"), "{err}");
        let err = run(&env("FROB"), CONF).expect_err("unknown command");
        assert_eq!(err.code, code::INVALID_ENVIRONMENT);
        assert!(err.msg.contains("FROB"), "{err}");
    }

    #[test]
    fn the_environment_is_checked() {
        let mut missing = env("DEL");
        missing.container_id = None;
        let err = run(&missing, CONF).expect_err("no container id");
        assert_eq!(
            (err.code, err.msg.as_str()),
            (code::INVALID_ENVIRONMENT, "CNI_CONTAINERID is not set")
        );
        let mut bad = env("DEL");
        bad.container_id = Some("-x/../y".into());
        assert_eq!(
            run(&bad, CONF).expect_err("bad id").code,
            code::INVALID_ENVIRONMENT
        );
        let mut no_ifname = env("DEL");
        no_ifname.ifname = None;
        assert_eq!(
            run(&no_ifname, CONF).expect_err("no ifname").msg,
            "CNI_IFNAME is not set"
        );
    }

    #[test]
    fn owners_differ_by_container_and_interface_and_are_never_zero() {
        let ids = [
            owner_of("c1", "eth0"),
            owner_of("c1", "eth1"),
            owner_of("c2", "eth0"),
        ];
        assert!(ids.iter().all(|id| *id != 0));
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[0], ids[2]);
        // Stable (FNV-1a of "c1/eth0", computed independently): DEL in a later process must
        // find what ADD wrote.
        assert_eq!(owner_of("c1", "eth0"), 0x9e27_a0ab_dbb0_7ad3_u64);
    }
}
