//! Loading the NAT programs, attaching them in the lab's host node, and pinning links and
//! maps so the datapath keeps working after netlab exits. Running it again re-attaches
//! nothing that is attached already and reuses the pinned maps, so `up` converges.

use std::{
    collections::HashSet,
    fs::File,
    net::{Ipv4Addr, Ipv6Addr},
    os::fd::{AsFd as _, AsRawFd as _},
    path::{Path, PathBuf},
};

use aya::{
    Ebpf,
    maps::{Array, DevMapHash, HashMap, MapData},
    programs::{
        CgroupAttachMode, CgroupSockAddr, SchedClassifier, TcAttachType, Xdp, XdpMode,
        links::FdLink,
    },
};
use netlab_common::{
    nat::{self, ContainerInfo, NatConfig, flags, maps as map_names, programs},
    nat6::{self, Ipv6Words, NatConfig6, words_of},
};

use super::block;
use crate::{
    bpf_loader::{self, bpffs, pin_link, program, verified},
    crash_point,
    error::{Error, Result},
    ipv6net::Ipv6Net,
    lab::LabIpv6,
    link,
    nat::{FastPath, Ingress, NatContext},
    netlink::{self, Place},
    netns, topology,
};

/// Where a lab's programs, links and maps are pinned.
pub fn pin_dir(lab_name: &str) -> PathBuf {
    Path::new(bpffs::PIN_ROOT).join(lab_name)
}

/// What the datapath needs to know about the lab's interfaces.
#[derive(Debug)]
struct Interfaces {
    bridge_mac: [u8; 6],
    containers: Vec<ContainerLink>,
    host_netns_cookie: u64,
}

/// One container's veth pair, as the datapath sees it.
#[derive(Debug)]
struct ContainerLink {
    /// The container's node name.
    node: String,
    address: Ipv4Addr,
    /// Its IPv6 address, in a dual-stack lab.
    address6: Option<Ipv6Addr>,
    /// The veth end in the host node, and its index there.
    host_device: String,
    host_ifindex: u32,
    /// The veth end inside the container, and its MAC address.
    device: String,
    mac: [u8; 6],
    place: Place,
}

pub fn setup(ctx: NatContext<'_>) -> Result<()> {
    let dir = bpffs::create_dir(&pin_dir(ctx.lab_name))?;
    bpffs::create_dir(&dir.join("links"))?;
    let interfaces = read_interfaces(ctx)?;
    let cgroup = cgroup2_root()?;
    // Before the program loads, so that binding waits for no grace period (see `block`).
    bind_containers(ctx, &interfaces)?;
    ctx.host()
        .run(|| attach_all(ctx, &dir, &interfaces, &cgroup))
}

/// Binds each container's host-side veth to the lab's tc block, where `ctr_ingress` runs.
fn bind_containers(ctx: NatContext<'_>, interfaces: &Interfaces) -> Result<()> {
    let block = block::index(ctx.lab_name);
    netlink::runtime()?.block_on(async {
        let handle = netlink::connect(&ctx.host())?;
        let bound = block::ingress_blocks(&handle).await?;
        for container in &interfaces.containers {
            let device = &container.host_device;
            match bound.get(&container.host_ifindex) {
                Some(&index) if index == block => {}
                Some(other) => {
                    return Err(Error::invalid(format!(
                        "{device} is bound to tc block {other}, not to netlab's block {block}"
                    )));
                }
                None => {
                    crash_point::reached("", &format!("bind {device} to tc block"));
                    block::bind(&handle, device, container.host_ifindex, block).await?;
                }
            }
        }
        Ok(())
    })
}

/// The containers' hooks as `inspect` lists links (`PROGRAM@DEVICE`), read from the kernel:
/// each container veth bound to the lab's block, if the block runs `ctr_ingress`.
pub(crate) fn container_hooks(ctx: NatContext<'_>) -> Result<Vec<String>> {
    if ctx.lab.containers.is_empty() {
        return Ok(Vec::new());
    }
    let name = programs::TC_CONTAINER_INGRESS;
    netlink::runtime()?.block_on(async {
        let handle = netlink::connect(&ctx.host())?;
        let (bound, programs) = block_state(&handle, ctx.lab_name).await?;
        if !programs.iter().any(|(_, program)| program == name) {
            return Ok(Vec::new());
        }
        let mut hooks = Vec::new();
        for container in &ctx.lab.containers {
            let device = &container.host_device;
            let index = link::index(&handle, device).await?;
            if index.is_some_and(|index| bound.contains(&index)) {
                hooks.push(format!("{name}@{device}"));
            }
        }
        Ok(hooks)
    })
}

/// The programs on lab `lab_name`'s tc block in `host`: id and name (none when no veth binds
/// the block).
pub(crate) fn block_programs(lab_name: &str, host: &Place) -> Result<Vec<(u32, String)>> {
    netlink::runtime()?.block_on(async {
        let handle = netlink::connect(host)?;
        Ok(block_state(&handle, lab_name).await?.1)
    })
}

/// Lab `lab_name`'s tc block as the kernel has it: the interfaces bound to it, and its
/// programs (id and name). With no interface bound, the kernel has no such block: nothing.
async fn block_state(
    handle: &rtnetlink::Handle,
    lab_name: &str,
) -> Result<(HashSet<u32>, Vec<(u32, String)>)> {
    let block = block::index(lab_name);
    let bound: HashSet<u32> = block::ingress_blocks(handle)
        .await?
        .into_iter()
        .filter(|&(_, index)| index == block)
        .map(|(ifindex, _)| ifindex)
        .collect();
    if bound.is_empty() {
        return Ok((bound, Vec::new()));
    }
    let programs = block::filters(handle, block)
        .await?
        .into_iter()
        .map(|(name, id)| (id, name))
        .collect();
    Ok((bound, programs))
}

/// Stops `ctr_ingress` on the lab's tc block (the veths keep their empty clsact qdiscs until
/// they go).
pub(crate) fn detach_container_filter(ctx: NatContext<'_>) -> Result<()> {
    crash_point::reached(ctx.lab_name, "tc filter del block");
    netlink::runtime()?.block_on(async {
        let handle = netlink::connect(&ctx.host())?;
        block::del_filter(&handle, block::index(ctx.lab_name)).await
    })
}

/// Runs `ctr_ingress` on the lab's tc block, unless it runs there already.
fn attach_container_filter(bpf: &mut Ebpf, ctx: NatContext<'_>) -> Result<()> {
    if ctx.lab.containers.is_empty() {
        // No veth binds the block, so the kernel has no such block.
        return Ok(());
    }
    let name = programs::TC_CONTAINER_INGRESS;
    let block = block::index(ctx.lab_name);
    netlink::runtime()?.block_on(async {
        let handle = netlink::connect(&ctx.host())?;
        let filters = block::filters(&handle, block).await?;
        if filters.iter().any(|(filter, _)| filter == name) {
            return Ok(());
        }
        if let Some((other, _)) = filters.first() {
            return Err(Error::invalid(format!(
                "tc block {block} runs {other}, not netlab's {name}"
            )));
        }
        let program: &mut SchedClassifier = program(bpf, name)?;
        verified(program.load(), name)?;
        let fd = program
            .fd()
            .map_err(|err| Error::ebpf(format!("reading the descriptor of {name}"), err))?
            .as_fd()
            .as_raw_fd();
        crash_point::reached("", &format!("attach {name}"));
        block::add_filter(&handle, block, fd.cast_unsigned(), name).await
    })
}

fn read_interfaces(ctx: NatContext<'_>) -> Result<Interfaces> {
    let lab = ctx.lab;
    let host = ctx.host();
    let (bridge_mac, containers) = netlink::runtime()?.block_on(async {
        let handle = netlink::connect(&host)?;
        let (_, bridge_mac) = link::index_and_mac(&handle, &lab.bridge).await?;
        let mut containers = Vec::new();
        for container in &lab.containers {
            let (host_ifindex, _) = link::index_and_mac(&handle, &container.host_device).await?;
            let place = topology::place(ctx.lab_name, lab, &container.name);
            let inside = netlink::connect(&place)?;
            let (_, mac) = link::index_and_mac(&inside, &container.device).await?;
            containers.push(ContainerLink {
                node: container.name.clone(),
                address: container.address,
                address6: container.address6.filter(|_| lab.ipv6.is_some()),
                host_device: container.host_device.clone(),
                host_ifindex,
                device: container.device.clone(),
                mac,
                place,
            });
        }
        Ok::<_, Error>((bridge_mac, containers))
    })?;
    let host_netns_cookie = host.run(netns_cookie)?;
    Ok(Interfaces {
        bridge_mac,
        containers,
        host_netns_cookie,
    })
}

/// The cookie of the calling thread's network namespace (`SO_NETNS_COOKIE`).
pub(crate) fn netns_cookie() -> Result<u64> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")
        .map_err(|err| Error::io("opening a socket to read the namespace cookie", err))?;
    let mut cookie = 0u64;
    let mut len: libc::socklen_t = 8;
    // SAFETY: a valid socket and an out-buffer of the size we pass.
    let rc = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(Error::io(
            "reading the namespace cookie (SO_NETNS_COOKIE)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(cookie)
}

/// The cgroup v2 mount point (the root of the unified hierarchy).
pub(crate) fn cgroup2_root() -> Result<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")
        .map_err(|err| Error::io("reading /proc/self/mounts", err))?;
    mounts
        .lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, path, fstype) = (fields.next()?, fields.next()?, fields.next()?);
            (fstype == "cgroup2").then(|| PathBuf::from(path))
        })
        .ok_or_else(|| {
            Error::invalid("cgroup v2 is not mounted: the eBPF backend needs it for host processes to reach published ports")
        })
}

fn attach_all(
    ctx: NatContext<'_>,
    dir: &Path,
    interfaces: &Interfaces,
    cgroup: &Path,
) -> Result<()> {
    crash_point::reached("", "load the eBPF object, pin its maps");
    let mut bpf = bpf_loader::load(dir, &map_sizes(ctx))?;
    write_tables(&mut bpf, ctx, interfaces)?;
    let links = dir.join("links");
    let first_up = std::fs::read_dir(&links).map_or(true, |mut pins| pins.next().is_none());
    if first_up {
        let mut names = Vec::from(TC_PROGRAMS_BY_COST);
        if ctx.lab.containers.is_empty() {
            names.retain(|&name| name != programs::TC_CONTAINER_INGRESS);
        }
        if ctx.options.ingress == Ingress::Xdp {
            names.extend([programs::XDP_EXTERNAL_INGRESS, programs::XDP_PASS]);
        }
        bpf_loader::load_programs(&mut bpf, &names)?;
    }
    let ext = ctx.lab.external.device.as_str();
    if ctx.options.ingress == Ingress::Xdp {
        let pin = links.join(format!("{}@{ext}", programs::XDP_EXTERNAL_INGRESS));
        attach_xdp(&mut bpf, programs::XDP_EXTERNAL_INGRESS, ext, &pin)?;
    }
    // With XDP translating, tcx ingress still translates ICMP errors and is where the fast
    // path hands packets on.
    attach_external(&mut bpf, ext, &links)?;
    attach_container_filter(&mut bpf, ctx)?;
    for container in &interfaces.containers {
        if ctx.options.ingress == Ingress::Xdp && ctx.options.fast_path == FastPath::XdpRedirect {
            // veth drops frames redirected to it by XDP unless its peer runs XDP too.
            let Place::Netns(ns) = &container.place else {
                continue;
            };
            // Named by container: every container may call its device eth0.
            let pin = links.join(format!(
                "{}@{}:{}",
                programs::XDP_PASS,
                container.node,
                container.device
            ));
            netns::run_in(ns, || {
                attach_xdp(&mut bpf, programs::XDP_PASS, &container.device, &pin)
            })?;
        }
    }
    attach_cgroup_hooks(&mut bpf, &links, cgroup)
}

/// The sizes of the maps whose declared size the lab changes: the conntrack table's
/// (`--ct-entries`), and in a dual-stack lab the IPv6 maps', declared with one entry (an
/// IPv4-only lab pays no memory for them), the same as their IPv4 counterparts'.
fn map_sizes(ctx: NatContext<'_>) -> Vec<(&'static str, u32)> {
    let ct_entries = ctx.options.ct_entries;
    let mut sizes = vec![(map_names::CONNTRACK, ct_entries)];
    if ctx.lab.ipv6.is_some() {
        sizes.extend(ipv6_map_sizes(ct_entries));
    }
    sizes
}

/// The IPv6 maps' sizes in a dual-stack datapath (a lab's or netlab-cni's): their IPv4
/// counterparts', the conntrack table's `ct_entries`.
pub(crate) fn ipv6_map_sizes(ct_entries: u32) -> [(&'static str, u32); 5] {
    [
        (nat6::maps::CONNTRACK6, ct_entries),
        (nat6::maps::PUBLISH6, nat::PUBLISH_MAX_ENTRIES),
        (nat6::maps::CONTAINERS6, nat::CONTAINERS_MAX_ENTRIES),
        (nat6::maps::FRAGMENTS6, nat::FRAGMENTS_MAX_ENTRIES),
        (nat6::maps::SOCK_ORIG6, nat::SOCK_ORIG_MAX_ENTRIES),
    ]
}

/// The tc programs, the one that takes the verifier longest first (see
/// [`bpf_loader::load_programs`]).
pub(crate) const TC_PROGRAMS_BY_COST: [&str; 3] = [
    programs::TC_EXTERNAL_INGRESS,
    programs::TC_EXTERNAL_EGRESS,
    programs::TC_CONTAINER_INGRESS,
];

/// Where the link of program `name` on `device` is pinned in `links`.
pub(crate) fn link_pin(links: &Path, name: &str, device: &str) -> PathBuf {
    links.join(format!("{name}@{device}"))
}

/// The external device's tcx programs and where each runs.
const EXTERNAL_HOOKS: [(&str, TcAttachType); 2] = [
    (programs::TC_EXTERNAL_INGRESS, TcAttachType::Ingress),
    (programs::TC_EXTERNAL_EGRESS, TcAttachType::Egress),
];

/// Attaches the external device's tcx programs (ingress and egress), pinned in `links`.
pub(crate) fn attach_external(bpf: &mut Ebpf, device: &str, links: &Path) -> Result<()> {
    for (name, attach_type) in EXTERNAL_HOOKS {
        attach_tc(
            bpf,
            name,
            device,
            attach_type,
            &link_pin(links, name, device),
        )?;
    }
    Ok(())
}

/// Whether the external device's programs run on `device` from links pinned in `links`.
pub(crate) fn external_attached(device: &str, links: &Path) -> bool {
    EXTERNAL_HOOKS.into_iter().all(|(name, attach_type)| {
        tc_pin_is_live(&link_pin(links, name, device), device, attach_type)
    })
}

/// The host-process hooks, pinned by their names (the IPv6 ones act in dual-stack labs
/// only).
pub(crate) const CGROUP_HOOKS: [&str; 6] = [
    programs::SOCK_CONNECT4,
    programs::SOCK_SENDMSG4,
    programs::SOCK_RECVMSG4,
    nat6::programs::SOCK_CONNECT6,
    nat6::programs::SOCK_SENDMSG6,
    nat6::programs::SOCK_RECVMSG6,
];

/// Attaches the host-process hooks (`connect4`, `sendmsg4`, `recvmsg4` and their IPv6
/// siblings) to the cgroup v2 root `cgroup`, pinned in `links`; hooks pinned already stay
/// as they are.
pub(crate) fn attach_cgroup_hooks(bpf: &mut Ebpf, links: &Path, cgroup: &Path) -> Result<()> {
    let cgroup_file = File::open(cgroup)
        .map_err(|err| Error::io(format!("opening {}", cgroup.display()), err))?;
    for name in CGROUP_HOOKS {
        let pin = links.join(name);
        if pin.exists() {
            continue;
        }
        let program: &mut CgroupSockAddr = program(bpf, name)?;
        verified(program.load(), name)?;
        crash_point::reached("", &format!("attach {name}"));
        let id = program
            // Through a bpf_link, which always coexists with other programs; link_create
            // rejects the ALLOW_MULTI flag, so the mode must be the default.
            .attach(&cgroup_file, CgroupAttachMode::Single)
            .map_err(|err| Error::ebpf(format!("attaching {name} to {}", cgroup.display()), err))?;
        let link = program
            .take_link(id)
            .map_err(|err| Error::ebpf("taking a cgroup link", err))?;
        crash_point::reached("", &format!("pin {name}"));
        pin_link(FdLink::try_from(link), &pin)?;
    }
    Ok(())
}

fn write_tables(bpf: &mut Ebpf, ctx: NatContext<'_>, interfaces: &Interfaces) -> Result<()> {
    crash_point::reached("", "map containers, devmap, config update");
    let lab = ctx.lab;
    let mut config_flags = flags::READY;
    if lab.masquerade {
        config_flags |= flags::MASQUERADE;
    }
    if ctx.options.fast_path != FastPath::Off {
        config_flags |= flags::FAST_PATH;
    }
    if ctx.options.fast_path == FastPath::XdpRedirect {
        config_flags |= flags::XDP_REDIRECT;
    }
    if ctx.options.ingress == Ingress::Xdp {
        config_flags |= flags::XDP_INGRESS;
    }
    let config = NatConfig {
        external_ip: u32::from(lab.external.address.addr()).to_be(),
        gateway_ip: u32::from(lab.gateway).to_be(),
        subnet: u32::from(lab.subnet.network()).to_be(),
        subnet_mask: u32::from(lab.subnet.netmask()).to_be(),
        flags: config_flags,
        // Written after the containers: the datapath's copies of the old ones are stale.
        containers_generation: super::tables::random_generation()?,
        host_netns_cookie: interfaces.host_netns_cookie,
        bridge_mac: interfaces.bridge_mac,
        pad2: [0; 2],
        timeouts: ctx.options.ct_timeouts,
    };
    let mut containers: HashMap<&mut MapData, u32, ContainerInfo> =
        map(bpf, map_names::CONTAINERS)?;
    for ContainerLink {
        address,
        host_ifindex,
        mac,
        ..
    } in &interfaces.containers
    {
        let info = ContainerInfo {
            host_ifindex: *host_ifindex,
            mac: *mac,
            pad: [0; 6],
            owner: 0,
        };
        containers
            .insert(u32::from(*address).to_be(), info, 0)
            .map_err(|err| {
                Error::ebpf(format!("adding container {address} to the datapath"), err)
            })?;
    }
    if let Some(ipv6) = &lab.ipv6 {
        write_tables6(bpf, ipv6, interfaces)?;
    }
    let mut devmap: DevMapHash<&mut MapData> = map(bpf, map_names::DEVMAP)?;
    for ContainerLink { host_ifindex, .. } in &interfaces.containers {
        devmap
            .insert(*host_ifindex, *host_ifindex, None, 0)
            .map_err(|err| Error::ebpf("filling the XDP devmap", err))?;
    }
    // Last: the programs do nothing until the config says READY.
    let mut array: Array<&mut MapData, NatConfig> = map(bpf, map_names::CONFIG)?;
    array
        .set(0, config, 0)
        .map_err(|err| Error::ebpf("writing the NAT config", err))
}

/// A dual-stack lab's IPv6 containers and addresses, written before the config that lets
/// the programs run.
fn write_tables6(bpf: &mut Ebpf, ipv6: &LabIpv6, interfaces: &Interfaces) -> Result<()> {
    let mut containers: HashMap<&mut MapData, Ipv6Words, ContainerInfo> =
        map(bpf, nat6::maps::CONTAINERS6)?;
    for link in &interfaces.containers {
        let Some(address6) = link.address6 else {
            continue;
        };
        let info = ContainerInfo {
            host_ifindex: link.host_ifindex,
            mac: link.mac,
            pad: [0; 6],
            owner: 0,
        };
        containers
            .insert(words_of(address6), info, 0)
            .map_err(|err| {
                Error::ebpf(format!("adding container {address6} to the datapath"), err)
            })?;
    }
    let config = config6(ipv6.subnet, ipv6.gateway, ipv6.external.addr());
    let mut array: Array<&mut MapData, NatConfig6> = map(bpf, nat6::maps::CONFIG6)?;
    array
        .set(0, config, 0)
        .map_err(|err| Error::ebpf("writing the IPv6 NAT config", err))
}

/// The IPv6 config of a datapath whose containers are on `subnet` behind `gateway`, with
/// ports published on `external`.
pub(crate) fn config6(subnet: Ipv6Net, gateway: Ipv6Addr, external: Ipv6Addr) -> NatConfig6 {
    let mask = Ipv6Addr::from_bits(
        u128::MAX
            .checked_shl(128 - u32::from(subnet.prefix_len()))
            .unwrap_or(0),
    );
    NatConfig6 {
        external_ip: words_of(external),
        gateway_ip: words_of(gateway),
        subnet: words_of(subnet.network()),
        subnet_mask: words_of(mask),
        ready: 1,
        pad: 0,
    }
}

pub(crate) fn map<'a, M>(bpf: &'a mut Ebpf, name: &str) -> Result<M>
where
    M: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = bpf.map_mut(name).ok_or_else(|| Error::NotInObject {
        kind: "map",
        name: name.to_string(),
    })?;
    M::try_from(map).map_err(|err| Error::ebpf(format!("opening map {name}"), err))
}

/// Whether the link pinned at `pin` still runs its program on `device` (a link outlives the
/// device it was attached to, as a defunct link).
pub(crate) fn tcx_link_is_live(pin: &Path, device: &str, attach_type: TcAttachType) -> bool {
    let Ok(program) = bpf_loader::pinned_link_program(pin) else {
        return false;
    };
    SchedClassifier::query_tcx(device, attach_type)
        .is_ok_and(|(_, programs)| programs.iter().any(|p| p.id() == program))
}

/// Attaches tc program `name` to `device` (tcx) and pins the link at `pin`, unless the link
/// pinned there runs on `device` already.
pub(crate) fn attach_tc(
    bpf: &mut Ebpf,
    name: &str,
    device: &str,
    attach_type: TcAttachType,
    pin: &Path,
) -> Result<()> {
    if tc_pin_is_live(pin, device, attach_type) {
        return Ok(());
    }
    let program: &mut SchedClassifier = program(bpf, name)?;
    verified(program.load(), name)?;
    attach_tc_program(program, name, device, attach_type, pin)
}

/// Whether the link pinned at `pin` runs on `device`; a defunct one is unpinned.
pub(crate) fn tc_pin_is_live(pin: &Path, device: &str, attach_type: TcAttachType) -> bool {
    if !pin.exists() {
        return false;
    }
    if tcx_link_is_live(pin, device, attach_type) {
        return true;
    }
    // The device was re-created under the pin (its namespace deleted and `up` run again):
    // the old link is defunct, attach anew.
    let _ = std::fs::remove_file(pin);
    false
}

/// Attaches the loaded tc program `program` (called `name`) to `device` and pins the link
/// at `pin`.
pub(crate) fn attach_tc_program(
    program: &mut SchedClassifier,
    name: &str,
    device: &str,
    attach_type: TcAttachType,
    pin: &Path,
) -> Result<()> {
    let direction = if attach_type == TcAttachType::Ingress {
        "ingress"
    } else {
        "egress"
    };
    crash_point::reached("", &format!("attach {name}@{device}"));
    let id = program.attach(device, attach_type).map_err(|err| {
        Error::ebpf(
            format!("attaching {name} to {device} (tcx {direction})"),
            err,
        )
    })?;
    let link = program
        .take_link(id)
        .map_err(|err| Error::ebpf("taking a tcx link", err))?;
    crash_point::reached("", &format!("pin {name}@{device}"));
    pin_link(FdLink::try_from(link), pin)
}

/// Attaches XDP program `name` to `device` (native mode, else generic) and pins the link
/// at `pin`.
fn attach_xdp(bpf: &mut Ebpf, name: &str, device: &str, pin: &Path) -> Result<()> {
    let program: &mut Xdp = program(bpf, name)?;
    verified(program.load(), name)?;
    crash_point::reached("", &format!("attach {name}@{device}"));
    let attached = program
        .attach(device, XdpMode::Driver)
        .or_else(|_| program.attach(device, XdpMode::Skb));
    let id = match attached {
        // An XDP link is exclusive: with our pinned link live, attaching again fails.
        Err(_) if pin.exists() => return Ok(()),
        Err(err) => {
            return Err(Error::ebpf(
                format!("attaching {name} to {device} (XDP)"),
                err,
            ));
        }
        // Attached although a pin exists: the pin's link died with a re-created device.
        Ok(id) => {
            let _ = std::fs::remove_file(pin);
            id
        }
    };
    let link = program
        .take_link(id)
        .map_err(|err| Error::ebpf("taking an XDP link", err))?;
    crash_point::reached("", &format!("pin {name}@{device}"));
    pin_link(FdLink::try_from(link), pin)
}
