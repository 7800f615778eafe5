//! The IPv6 side's maps, pinned by name like the IPv4 ones. They are declared with one
//! entry each: an IPv4-only lab never uses them, and the loader gives a dual-stack lab's
//! their real sizes (the IPv4 maps' sizes).

use aya_ebpf::maps::{Array, HashMap, LpmTrie, LruHashMap, lpm_trie::Key};
use netlab_common::{
    nat::{ContainerInfo, NatConfig, PUBLISH_RANGES_MAX_ENTRIES, ct_flags},
    nat6::{
        CtEntry6, FlowKey6, FragEntry6, FragKey6, Ipv6Words, NatConfig6, PORT_PREFIX6_FIXED_BITS,
        PortPrefix6, PublishKey6, PublishRange6, PublishValue6, SockKey6, SockOrig6,
    },
};

use aya_ebpf::macros::map;

use super::maps::{config, source_as_gateway};

#[map(name = "NETLAB_NAT6_CONFIG")]
pub static CONFIG6: Array<NatConfig6> = Array::pinned(1, 0);

#[map(name = "NETLAB_NAT6_PUBLISH")]
pub static PUBLISH6: HashMap<PublishKey6, PublishValue6> = HashMap::pinned(1, 0);

#[map(name = "NETLAB_NAT6_PUBLISH_RANGES")]
pub static PUBLISH_RANGES6: LpmTrie<PortPrefix6, PublishRange6> =
    LpmTrie::pinned(PUBLISH_RANGES_MAX_ENTRIES, 0);

#[map(name = "NETLAB_NAT6_CT")]
pub static CONNTRACK6: LruHashMap<FlowKey6, CtEntry6> = LruHashMap::pinned(1, 0);

#[map(name = "NETLAB_NAT6_CONTAINERS")]
pub static CONTAINERS6: HashMap<Ipv6Words, ContainerInfo> = HashMap::pinned(1, 0);

#[map(name = "NETLAB_NAT6_FRAGMENTS")]
pub static FRAGMENTS6: LruHashMap<FragKey6, FragEntry6> = LruHashMap::pinned(1, 0);

#[map(name = "NETLAB_NAT6_SOCK_ORIG")]
pub static SOCK_ORIG6: LruHashMap<SockKey6, SockOrig6> = LruHashMap::pinned(1, 0);

/// The lab's IPv6 addresses, or `None` in an IPv4-only lab.
#[inline(always)]
pub fn config6() -> Option<&'static NatConfig6> {
    CONFIG6.get(0).filter(|config| config.ready != 0)
}

/// Whether `ip` is in the IPv6 container subnet.
#[inline(always)]
pub fn in_subnet6(config: &NatConfig6, ip: &Ipv6Words) -> bool {
    (0..4).all(|i| ip[i] & config.subnet_mask[i] == config.subnet[i])
}

/// Whether `ip` is a container's: in the subnet, not the bridge's.
#[inline(always)]
pub fn to_container6(config: &NatConfig6, ip: &Ipv6Words) -> bool {
    in_subnet6(config, ip) && *ip != config.gateway_ip
}

/// Whether `ip` is `::1`.
#[inline(always)]
pub fn is_loopback6(ip: &Ipv6Words) -> bool {
    ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] == 1u32.to_be()
}

/// The container at `ip`.
#[inline(always)]
pub fn container6(ip: &Ipv6Words) -> Option<ContainerInfo> {
    // SAFETY: the value is copied out at once.
    unsafe { CONTAINERS6.get(ip) }.copied()
}

/// The container a port published in IPv6 leads to, for a packet to `ip:port`: as
/// [`super::maps::published`] does for IPv4 (an exact address first, then "every address",
/// which covers the external address, and `::1` for host processes only).
#[inline(always)]
pub fn published6(
    config: &NatConfig6,
    ip: &Ipv6Words,
    port: u16,
    proto: u8,
    loopback_ok: bool,
) -> Option<PublishValue6> {
    let loopback = is_loopback6(ip);
    if loopback && !loopback_ok {
        return None;
    }
    if let Some(value) = published_on6(ip, port, proto) {
        return Some(value);
    }
    if *ip != config.external_ip && !loopback {
        return None;
    }
    published_on6(&[0; 4], port, proto)
}

/// [`super::maps::dnat_unchanged`] for IPv6.
#[inline(always)]
pub fn dnat_unchanged6(key: &FlowKey6, entry: &CtEntry6) -> bool {
    let Some((config, c6)) = configs() else {
        return false;
    };
    let Some(target) = published6(c6, &key.dst_ip, key.dst_port, key.proto, false) else {
        return false;
    };
    let hairpin = entry.flags & ct_flags::HAIRPIN != 0;
    let src_ip = if source_as_gateway(config, hairpin, key.src_ip == target.ip) {
        &c6.gateway_ip
    } else {
        &key.src_ip
    };
    entry.dst_ip == target.ip
        && entry.dst_port == target.port
        && entry.counter == target.counter
        && entry.src_ip == *src_ip
        && entry.src_port == key.src_port
}

/// The port published in IPv6 on exactly `ip` (all zero: every address).
#[inline(always)]
fn published_on6(ip: &Ipv6Words, port: u16, proto: u8) -> Option<PublishValue6> {
    let key = PublishKey6 {
        ip: *ip,
        port,
        proto,
        pad: 0,
    };
    // SAFETY: the value is copied out at once.
    if let Some(value) = unsafe { PUBLISH6.get(key) } {
        return Some(*value);
    }
    let prefix = Key::new(
        PORT_PREFIX6_FIXED_BITS + 16,
        PortPrefix6 {
            ip: *ip,
            proto,
            pad: 0,
            port,
        },
    );
    PUBLISH_RANGES6
        .get(prefix)
        .map(|range| range.target(u16::from_be(port)))
}

/// Whether both families' configs are written: the IPv6 datapath runs.
#[inline(always)]
pub fn configs() -> Option<(&'static NatConfig, &'static NatConfig6)> {
    Some((config()?, config6()?))
}
