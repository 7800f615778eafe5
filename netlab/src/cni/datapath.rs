//! One host namespace's datapath for netlab-cni: the programs of `--backend ebpf`, attached
//! once per host namespace and shared by the containers of one network, pinned under
//! `/sys/fs/bpf/netlab/cni/<network>@<netns cookie>/`. Every container and port entry
//! carries its attachment's owner id, so that DEL and GC remove exactly their own; the last
//! container out unpins everything, which detaches the programs.

use std::{
    collections::{HashMap as StdHashMap, HashSet},
    net::{Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
};

use aya::{
    maps::{HashMap, MapData},
    programs::{SchedClassifier, TcAttachType},
};
use netlab_common::{
    nat::{
        CONNTRACK_MAX_ENTRIES, ContainerInfo, CtTimeouts, NatConfig, PublishKey, PublishValue,
        flags, maps as map_names, programs,
    },
    nat6::{PublishKey6, PublishValue6, address_of, words_of},
};

use super::host::{ContainerLink, External};
use crate::{
    bpf_loader::{self, bpffs},
    crash_point,
    error::{Error, Result},
    ipv4net::Ipv4Net,
    ipv6net::Ipv6Net,
    nat::ebpf::{
        attach,
        tables::{Tables, spec_keys, spec_keys6},
    },
    ports::{PortSpec, Proto},
    shared_dirs,
};

/// Where netlab-cni pins its datapaths, one folder per host namespace.
pub fn root() -> PathBuf {
    Path::new(bpffs::PIN_ROOT).join("cni")
}

/// What the datapath needs to know about the network, from the host and the container's
/// previous result.
#[derive(Debug, Clone)]
pub struct Network {
    pub external: External,
    pub subnet: Ipv4Net,
    /// The bridge's address, the containers' gateway.
    pub gateway: Ipv4Addr,
    pub bridge_mac: [u8; 6],
    pub masquerade: bool,
    /// `masqAll`: published connections reach containers from the bridge's address.
    pub masq_all: bool,
    pub netns_cookie: u64,
    /// The network's IPv6 side, when the container has an IPv6 address with a gateway and
    /// the external device an IPv6 address: ports are then published in IPv6 too.
    pub ipv6: Option<Network6>,
}

/// A dual-stack network's IPv6 addresses.
#[derive(Debug, Clone, Copy)]
pub struct Network6 {
    pub subnet: Ipv6Net,
    pub gateway: Ipv6Addr,
    /// The external device's address ports are published on.
    pub external: Ipv6Addr,
}

/// One container attachment, as ADD and CHECK see it.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    pub owner: u64,
    pub address: Ipv4Addr,
    /// Its IPv6 address, in a dual-stack network.
    pub address6: Option<Ipv6Addr>,
    pub link: &'a ContainerLink,
    pub specs: &'a [PortSpec],
}

/// The pinned datapath of network `name` in the host namespace with cookie `cookie`.
#[derive(Debug)]
pub struct Datapath {
    dir: PathBuf,
}

/// The pin of a container's `ctr_ingress` link, named by owner so that DEL finds it without
/// the previous result (the veth may be gone).
fn container_pin(dir: &Path, owner: u64) -> PathBuf {
    dir.join("links")
        .join(format!("{}@{owner:016x}", programs::TC_CONTAINER_INGRESS))
}

impl Datapath {
    pub fn of(network: &str, netns_cookie: u64) -> Self {
        Self {
            dir: root().join(format!("{network}@{netns_cookie}")),
        }
    }

    /// The network another datapath of this namespace serves, if any: one host namespace
    /// runs one network's datapath (its programs own the external device's hooks).
    pub fn other_network(network: &str, netns_cookie: u64) -> Option<String> {
        let suffix = format!("@{netns_cookie}");
        std::fs::read_dir(root())
            .ok()?
            .filter_map(std::result::Result::ok)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .find_map(|name| {
                name.strip_suffix(&suffix)
                    .filter(|other| *other != network)
                    .map(str::to_owned)
            })
    }

    fn exists(&self) -> bool {
        self.dir.join(map_names::PUBLISH).exists()
    }

    fn tables(&self) -> Tables {
        Tables::at(self.dir.clone())
    }

    fn containers(&self) -> Result<HashMap<MapData, u32, ContainerInfo>> {
        self.tables().containers_map()
    }

    /// Where the container program is pinned once loaded, so that later ADDs attach it
    /// without loading (and verifying) the object again.
    fn program_pin(&self) -> PathBuf {
        self.dir.join("progs").join(programs::TC_CONTAINER_INGRESS)
    }

    /// Makes the datapath ready for one more container and returns the container program.
    /// The first ADD (or one that finds a hook gone with its device) loads the object,
    /// reusing the pinned maps, attaches the external device's and the host processes'
    /// hooks, and pins the container program; later ADDs find it ready. (`add` writes the
    /// network's config once the container is in.)
    fn prepare(&self, network: &Network) -> Result<SchedClassifier> {
        let links = self.dir.join("links");
        let external = &network.external.device;
        let ready = self.program_pin().exists()
            && attach::external_attached(external, &links)
            && attach::CGROUP_HOOKS
                .iter()
                .all(|name| links.join(name).exists());
        if !ready {
            bpffs::create_dir(&links)?;
            bpffs::create_dir(&self.dir.join("progs"))?;
            crash_point::reached("", "cni: load the eBPF object, pin its maps");
            // The IPv6 maps are declared with one entry: sized only for a dual-stack network.
            let mut sizes = vec![(map_names::CONNTRACK, CONNTRACK_MAX_ENTRIES)];
            if network.ipv6.is_some() {
                sizes.extend(attach::ipv6_map_sizes(CONNTRACK_MAX_ENTRIES));
            }
            let mut bpf = bpf_loader::load(&self.dir, &sizes)?;
            self.write_config(network)?;
            bpf_loader::load_programs(&mut bpf, &attach::TC_PROGRAMS_BY_COST)?;
            attach::attach_external(&mut bpf, external, &links)?;
            attach::attach_cgroup_hooks(&mut bpf, &links, &attach::cgroup2_root()?)?;
            let name = programs::TC_CONTAINER_INGRESS;
            let program: &mut SchedClassifier = bpf_loader::program(&mut bpf, name)?;
            bpf_loader::verified(program.load(), name)?;
            let _ = std::fs::remove_file(self.program_pin());
            program.pin(self.program_pin()).map_err(|err| {
                Error::ebpf(format!("pinning {}", self.program_pin().display()), err)
            })?;
        }
        SchedClassifier::from_pin(self.program_pin())
            .map_err(|err| Error::ebpf(format!("opening {}", self.program_pin().display()), err))
    }

    /// The network's addresses and switches, where the programs read them (the IPv6 ones
    /// first: the IPv6 side runs once both are written).
    fn write_config(&self, network: &Network) -> Result<()> {
        if let Some(ipv6) = network.ipv6 {
            self.tables().write_config6(attach::config6(
                ipv6.subnet,
                ipv6.gateway,
                ipv6.external,
            ))?;
        }
        self.tables().write_config(NatConfig {
            external_ip: u32::from(network.external.address).to_be(),
            gateway_ip: u32::from(network.gateway).to_be(),
            subnet: u32::from(network.subnet.network()).to_be(),
            subnet_mask: u32::from(network.subnet.netmask()).to_be(),
            flags: flags::READY
                | flags::FAST_PATH
                | if network.masquerade {
                    flags::MASQUERADE
                } else {
                    0
                }
                | if network.masq_all { flags::MASQ_ALL } else { 0 },
            // `write_config` draws it.
            containers_generation: 0,
            host_netns_cookie: network.netns_cookie,
            bridge_mac: network.bridge_mac,
            pad2: [0; 2],
            timeouts: CtTimeouts::default(),
        })
    }

    /// The first port of `specs` that another attachment publishes already, described.
    pub fn taken(&self, owner: u64, specs: &[PortSpec], ipv6: bool) -> Result<Option<String>> {
        if !self.exists() {
            return Ok(None);
        }
        if ipv6 && let Some(taken) = self.taken6(owner, specs)? {
            return Ok(Some(taken));
        }
        let mut by_port: StdHashMap<(u16, u8), Vec<(PublishKey, PublishValue)>> = StdHashMap::new();
        for (key, value) in self
            .tables()
            .published()?
            .into_iter()
            .filter(|(_, value)| value.owner != owner)
        {
            by_port
                .entry((key.port, key.proto))
                .or_default()
                .push((key, value));
        }
        for spec in specs {
            for (key, _) in spec_keys(spec) {
                let holders = by_port.get(&(key.port, key.proto)).into_iter().flatten();
                for (theirs, value) in holders {
                    if theirs.ip == key.ip || theirs.ip == 0 || key.ip == 0 {
                        return Ok(Some(format!(
                            "host port {} ({spec}) is published already, to {}:{} by another container",
                            u16::from_be(key.port),
                            Ipv4Addr::from(u32::from_be(value.ip)),
                            u16::from_be(value.port),
                        )));
                    }
                }
            }
        }
        Ok(None)
    }

    /// [`Self::taken`] in IPv6.
    fn taken6(&self, owner: u64, specs: &[PortSpec]) -> Result<Option<String>> {
        let theirs: Vec<(PublishKey6, PublishValue6)> = self
            .tables()
            .published6()?
            .into_iter()
            .filter(|(_, value)| value.owner != owner)
            .collect();
        for spec in specs {
            for (key, _) in spec_keys6(spec) {
                let holder = theirs.iter().find(|(other, _)| {
                    other.port == key.port
                        && other.proto == key.proto
                        && (other.ip == key.ip || other.ip == [0; 4] || key.ip == [0; 4])
                });
                if let Some((_, value)) = holder {
                    return Ok(Some(format!(
                        "host port {} ({spec}) is published already, to [{}]:{} by another container",
                        u16::from_be(key.port),
                        address_of(value.ip),
                        u16::from_be(value.port),
                    )));
                }
            }
        }
        Ok(None)
    }

    /// Adds a container: its entries, its veth's hook, its ports. Ports it published before
    /// (an ADD repeated) and no longer asks for are removed; an earlier owner of one of its
    /// addresses is gone (the IPAM gave the address out again), so its leftovers go too.
    pub fn add(&self, network: &Network, attachment: &Attachment<'_>) -> Result<()> {
        let mut program = self.prepare(network)?;
        let info = ContainerInfo {
            host_ifindex: attachment.link.host_ifindex,
            mac: attachment.link.mac,
            pad: [0; 6],
            owner: attachment.owner,
        };
        let key = u32::from(attachment.address).to_be();
        let mut containers = self.containers()?;
        if let Ok(earlier) = containers.get(&key, 0)
            && earlier.owner != attachment.owner
        {
            self.remove(earlier.owner)?;
        }
        containers.insert(key, info, 0).map_err(|err| {
            Error::ebpf(
                format!("adding container {} to the datapath", attachment.address),
                err,
            )
        })?;
        if let Some(address6) = attachment.address6 {
            let key6 = words_of(address6);
            let mut containers6 = self.tables().containers6_map()?;
            if let Ok(earlier) = containers6.get(&key6, 0)
                && earlier.owner != attachment.owner
            {
                self.remove(earlier.owner)?;
            }
            containers6.insert(key6, info, 0).map_err(|err| {
                Error::ebpf(format!("adding container {address6} to the datapath"), err)
            })?;
        }
        // The config after the container, with a new containers generation: the datapath's
        // cached copy of an earlier container at this address is stale.
        self.write_config(network)?;
        let (device, pin) = (
            &attachment.link.host_device,
            container_pin(&self.dir, attachment.owner),
        );
        if !attach::tc_pin_is_live(&pin, device, TcAttachType::Ingress) {
            let name = programs::TC_CONTAINER_INGRESS;
            attach::attach_tc_program(&mut program, name, device, TcAttachType::Ingress, &pin)?;
        }
        let wanted = attachment.keys();
        let (owned, owned6) = self.owned_ports(attachment.owner)?;
        let dropped: Vec<PublishKey> = owned
            .into_iter()
            .filter(|key| !wanted.0.contains(key))
            .collect();
        let dropped6: Vec<PublishKey6> = owned6
            .into_iter()
            .filter(|key| !wanted.1.contains(key))
            .collect();
        self.forget_ports(&dropped, &dropped6)?;
        let tables = self.tables();
        let mut writer = tables.port_writer()?;
        for spec in attachment.specs {
            writer.write(
                spec,
                attachment.address,
                attachment.address6,
                attachment.owner,
            )?;
            crash_point::reached("", &format!("cni: published {spec}"));
        }
        // A new container on a UDP port must not get the datagrams of the previous one's
        // flows (as portmap deletes the port's UDP conntrack entries on ADD).
        forget_udp_flows(&tables, wanted.0.iter(), wanted.1.iter())
    }

    /// The ports attachment `owner` publishes, in each family.
    fn owned_ports(&self, owner: u64) -> Result<(Vec<PublishKey>, Vec<PublishKey6>)> {
        let tables = self.tables();
        let ports = tables
            .published()?
            .into_iter()
            .filter(|(_, value)| value.owner == owner)
            .map(|(key, _)| key)
            .collect();
        let ports6 = tables
            .published6()?
            .into_iter()
            .filter(|(_, value)| value.owner == owner)
            .map(|(key, _)| key)
            .collect();
        Ok((ports, ports6))
    }

    /// Stops forwarding `keys` and `keys6`. Their UDP flows are forgotten, so that their
    /// next datagram is not forwarded; TCP connections end on their own, as with the
    /// kernel's conntrack.
    fn forget_ports(&self, keys: &[PublishKey], keys6: &[PublishKey6]) -> Result<()> {
        let tables = self.tables();
        if !keys.is_empty() {
            tables.remove_ports(keys, &format!("{} ports", keys.len()))?;
        }
        if !keys6.is_empty() {
            tables.remove_ports6(keys6, &format!("{} IPv6 ports", keys6.len()))?;
        }
        forget_udp_flows(&tables, keys.iter(), keys6.iter())
    }

    /// Removes everything of attachment `owner`: its ports (and their UDP flows), its
    /// container entries, its veth's hook. Nothing of it left is success.
    pub fn remove(&self, owner: u64) -> Result<()> {
        if !self.exists() {
            return Ok(());
        }
        let mut errors = Vec::new();
        errors.extend(
            self.owned_ports(owner)
                .and_then(|(keys, keys6)| self.forget_ports(&keys, &keys6))
                .err(),
        );
        match self.containers() {
            Ok(containers) => {
                if remove_owned(containers, owner) {
                    errors.extend(self.tables().containers_changed().err());
                }
            }
            Err(err) => errors.push(err),
        }
        match self.tables().containers6_map() {
            Ok(containers6) => {
                remove_owned(containers6, owner);
            }
            Err(err) => errors.push(err),
        }
        // Unpinning the link detaches the program from the veth (if the veth still exists).
        match std::fs::remove_file(container_pin(&self.dir, owner)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                errors.push(Error::io("unpinning the container's link", err));
            }
            _ => {}
        }
        Error::collect(errors)
    }

    /// Removes the attachments not in `valid` (GC).
    pub fn keep_only(&self, valid: &HashSet<u64>) -> Result<()> {
        if !self.exists() {
            return Ok(());
        }
        let mut owners: HashSet<u64> = self
            .containers()?
            .iter()
            .filter_map(std::result::Result::ok)
            .map(|(_, info)| info.owner)
            .collect();
        let tables = self.tables();
        owners.extend(tables.published()?.into_values().map(|value| value.owner));
        owners.extend(tables.published6()?.into_values().map(|value| value.owner));
        owners.extend(
            tables
                .containers6_map()?
                .iter()
                .filter_map(std::result::Result::ok)
                .map(|(_, info)| info.owner),
        );
        owners.extend(self.pinned_owners());
        let mut errors = Vec::new();
        for owner in owners.difference(valid) {
            errors.extend(self.remove(*owner).err());
        }
        Error::collect(errors)
    }

    /// Owners of the container links pinned (one may outlive its entries after a crash).
    fn pinned_owners(&self) -> Vec<u64> {
        let prefix = format!("{}@", programs::TC_CONTAINER_INGRESS);
        std::fs::read_dir(self.dir.join("links"))
            .into_iter()
            .flatten()
            .filter_map(std::result::Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                u64::from_str_radix(name.strip_prefix(&prefix)?, 16).ok()
            })
            .collect()
    }

    /// Unpins the whole datapath (detaching its programs) once no container uses it.
    pub fn remove_if_unused(&self) -> Result<()> {
        if self.exists() {
            let tables = self.tables();
            let in_use = self.containers()?.keys().next().is_some()
                || tables.publish_map()?.keys().next().is_some()
                || tables.containers6_map()?.keys().next().is_some()
                || !tables.published6()?.is_empty()
                || !self.pinned_owners().is_empty();
            if in_use {
                return Ok(());
            }
        }
        crash_point::reached("", "cni: unpin the datapath");
        bpffs::remove_dir(&self.dir)?;
        shared_dirs::remove_if_empty(&[&root(), Path::new(bpffs::PIN_ROOT)]);
        Ok(())
    }

    /// What CHECK verifies: the container's entries, its hook and each of its ports as ADD
    /// wrote them, in each family. The first difference, described.
    pub fn check(&self, attachment: &Attachment<'_>) -> Result<Option<String>> {
        if !self.exists() {
            return Ok(Some(format!(
                "the datapath is not pinned at {}",
                self.dir.display()
            )));
        }
        let ours = |info: Option<ContainerInfo>| {
            info.is_some_and(|info| {
                info.owner == attachment.owner && info.host_ifindex == attachment.link.host_ifindex
            })
        };
        let tables = self.tables();
        if !ours(
            self.containers()?
                .get(&u32::from(attachment.address).to_be(), 0)
                .ok(),
        ) {
            return Ok(Some(format!(
                "container {} is not in the datapath",
                attachment.address
            )));
        }
        if let Some(address6) = attachment.address6
            && !ours(tables.containers6_map()?.get(&words_of(address6), 0).ok())
        {
            return Ok(Some(format!("container {address6} is not in the datapath")));
        }
        let pin = container_pin(&self.dir, attachment.owner);
        if !attach::tcx_link_is_live(&pin, &attachment.link.host_device, TcAttachType::Ingress) {
            return Ok(Some(format!(
                "no netlab program runs on {}",
                attachment.link.host_device
            )));
        }
        let publish = tables.publish_map()?;
        let ip = u32::from(attachment.address).to_be();
        let published6 = match attachment.address6 {
            Some(_) => tables.published6()?,
            None => StdHashMap::new(),
        };
        for spec in attachment.specs {
            let right = spec_keys(spec).all(|(key, container_port)| {
                publish.get(&key, 0).is_ok_and(|value| {
                    value.owner == attachment.owner
                        && value.ip == ip
                        && value.port == container_port.to_be()
                })
            });
            if !right {
                return Ok(Some(format!(
                    "{spec} does not forward to {}",
                    attachment.address
                )));
            }
            let Some(address6) = attachment.address6 else {
                continue;
            };
            let right6 = spec_keys6(spec).all(|(key, container_port)| {
                published6.get(&key).is_some_and(|value| {
                    value.owner == attachment.owner
                        && value.ip == words_of(address6)
                        && value.port == container_port.to_be()
                })
            });
            if !right6 {
                return Ok(Some(format!("{spec} does not forward to {address6}")));
            }
        }
        Ok(None)
    }
}

impl Attachment<'_> {
    /// The per-port keys of its specs, in each family it has an address of.
    fn keys(&self) -> (HashSet<PublishKey>, HashSet<PublishKey6>) {
        let keys = self
            .specs
            .iter()
            .flat_map(|spec| spec_keys(spec).map(|(key, _)| key))
            .collect();
        let keys6 = match self.address6 {
            Some(_) => self
                .specs
                .iter()
                .flat_map(|spec| spec_keys6(spec).map(|(key, _)| key))
                .collect(),
            None => HashSet::new(),
        };
        (keys, keys6)
    }
}

/// Removes the entries of `containers` (either family's map) that `owner` added; whether
/// there were any.
fn remove_owned<K: aya::Pod + Eq + std::hash::Hash>(
    mut containers: HashMap<MapData, K, ContainerInfo>,
    owner: u64,
) -> bool {
    let mine: Vec<K> = containers
        .iter()
        .filter_map(std::result::Result::ok)
        .filter(|(_, info)| info.owner == owner)
        .map(|(key, _)| key)
        .collect();
    for key in &mine {
        let _ = containers.remove(key);
    }
    !mine.is_empty()
}

/// Forgets the flows of the UDP ports among `keys` and `keys6`; TCP connections end on
/// their own, as with the kernel's conntrack (and walking the conntrack table for TCP ports
/// would cost a system call per entry for nothing).
fn forget_udp_flows<'a>(
    tables: &Tables,
    keys: impl Iterator<Item = &'a PublishKey>,
    keys6: impl Iterator<Item = &'a PublishKey6>,
) -> Result<()> {
    let udp: HashSet<PublishKey> = udp_only(keys, |key| key.proto);
    if !udp.is_empty() {
        tables.forget_flows(|key| udp.contains(key))?;
    }
    let udp6: HashSet<PublishKey6> = udp_only(keys6, |key| key.proto);
    if !udp6.is_empty() {
        tables.forget_flows6(|key| udp6.contains(key))?;
    }
    Ok(())
}

/// The UDP ports of `keys`, of either family (`proto` reads a key's protocol).
fn udp_only<'a, K: Copy + Eq + std::hash::Hash + 'a>(
    keys: impl Iterator<Item = &'a K>,
    proto: impl Fn(&K) -> u8,
) -> HashSet<K> {
    keys.filter(|key| proto(key) == Proto::Udp.number())
        .copied()
        .collect()
}
