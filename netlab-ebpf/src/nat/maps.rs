//! The NAT maps. They are pinned by name (`pinned`), so a second `netlab up` reuses the maps
//! of the running datapath instead of creating empty ones.

use aya_ebpf::{
    macros::map,
    maps::{Array, DevMapHash, HashMap, LpmTrie, LruHashMap, PerCpuArray, lpm_trie::Key},
};
use netlab_common::nat::{
    CACHE_SLOTS, CONNTRACK_MAX_ENTRIES, CONTAINERS_MAX_ENTRIES, CachedContainer, ContainerInfo,
    CounterRef, CtEntry, FRAGMENTS_MAX_ENTRIES, FlowKey, FragEntry, FragKey, NatConfig, NextHop,
    PORT_COUNTER_SLOTS, PORT_PREFIX_FIXED_BITS, PUBLISH_MAX_ENTRIES, PUBLISH_RANGES_MAX_ENTRIES,
    PortPrefix, PublishKey, PublishRange, PublishValue, SOCK_ORIG_MAX_ENTRIES, STAT_COUNT, SockKey,
    SockOrig, Stat, TrafficCounters, cache_slot, ct_flags, flags,
};

use aya_ebpf::EbpfContext;

use super::{log, packet::is_loopback};

#[map(name = "NETLAB_NAT_CONFIG")]
pub static CONFIG: Array<NatConfig> = Array::pinned(1, 0);

#[map(name = "NETLAB_NAT_PUBLISH")]
pub static PUBLISH: HashMap<PublishKey, PublishValue> = HashMap::pinned(PUBLISH_MAX_ENTRIES, 0);

#[map(name = "NETLAB_NAT_PUBLISH_RANGES")]
pub static PUBLISH_RANGES: LpmTrie<PortPrefix, PublishRange> =
    LpmTrie::pinned(PUBLISH_RANGES_MAX_ENTRIES, 0);

#[map(name = "NETLAB_NAT_CT")]
pub static CONNTRACK: LruHashMap<FlowKey, CtEntry> = LruHashMap::pinned(CONNTRACK_MAX_ENTRIES, 0);

#[map(name = "NETLAB_NAT_CONTAINERS")]
pub static CONTAINERS: HashMap<u32, ContainerInfo> = HashMap::pinned(CONTAINERS_MAX_ENTRIES, 0);

#[map(name = "NETLAB_NAT_PORT_COUNTERS")]
pub static PORT_COUNTERS: PerCpuArray<TrafficCounters> = PerCpuArray::pinned(PORT_COUNTER_SLOTS, 0);

#[map(name = "NETLAB_NAT_STATS")]
pub static STATS: PerCpuArray<u64> = PerCpuArray::pinned(STAT_COUNT, 0);

#[map(name = "NETLAB_NAT_SOCK_ORIG")]
pub static SOCK_ORIG: LruHashMap<SockKey, SockOrig> = LruHashMap::pinned(SOCK_ORIG_MAX_ENTRIES, 0);

#[map(name = "NETLAB_NAT_DEVMAP")]
pub static DEVMAP: DevMapHash = DevMapHash::pinned(CONTAINERS_MAX_ENTRIES, 0);

#[map(name = "NETLAB_NAT_FRAGMENTS")]
pub static FRAGMENTS: LruHashMap<FragKey, FragEntry> = LruHashMap::pinned(FRAGMENTS_MAX_ENTRIES, 0);

#[map(name = "NETLAB_NAT_NEXT_HOP")]
pub static NEXT_HOP: PerCpuArray<NextHop> = PerCpuArray::pinned(CACHE_SLOTS, 0);

#[map(name = "NETLAB_NAT_CONTAINER_CACHE")]
pub static CONTAINER_CACHE: PerCpuArray<CachedContainer> = PerCpuArray::pinned(CACHE_SLOTS, 0);

/// Until when (the coarse clock) each CPU looks at a TCP flow's other half on every packet:
/// a second after it last had to put an evicted half back (see `ct::live`).
#[map(name = "NETLAB_NAT_CT_PRESSURE")]
pub static CT_PRESSURE: PerCpuArray<u64> = PerCpuArray::pinned(1, 0);

/// When each CPU last logged a drop (`bpf_ktime_get_ns`), to rate-limit drop events.
#[map(name = "NETLAB_NAT_DROP_LOG")]
pub static LAST_DROP_LOG: PerCpuArray<u64> = PerCpuArray::pinned(1, 0);

/// The lab's configuration, or `None` before the loader has written it.
#[inline(always)]
pub fn config() -> Option<&'static NatConfig> {
    CONFIG
        .get(0)
        .filter(|config| config.flags & flags::READY != 0)
}

/// The container at `ip`, from this CPU's cache when it was read under the config's current
/// containers generation, else from [`CONTAINERS`] (and cached): the loader writes a new
/// generation after every change of the containers, so a re-created container is never
/// reached through its old device.
#[inline(always)]
pub fn container(config: &NatConfig, ip: u32) -> Option<ContainerInfo> {
    let place = CONTAINER_CACHE.get_ptr_mut(cache_slot(ip))?;
    // SAFETY: this CPU's copy of the place; nothing else writes it meanwhile.
    let cached = unsafe { &mut *place };
    if cached.ip == ip && cached.generation == config.containers_generation {
        return Some(cached.info);
    }
    // SAFETY: the value is copied out at once.
    let info = unsafe { CONTAINERS.get(ip) }.copied()?;
    *cached = CachedContainer {
        ip,
        generation: config.containers_generation,
        info,
    };
    Some(info)
}

/// Adds one to a datapath statistic.
#[inline(always)]
pub fn count(stat: Stat) {
    if let Some(slot) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot, no concurrent writer.
        unsafe { *slot += 1 };
    }
}

/// Counts a packet the NAT did not translate, by why; returns whether it must be dropped
/// (the NAT had to give up on it, or it must never pass: martians, direct access, an
/// untranslatable fragment), which is also logged, rather than passed on untouched.
#[inline(always)]
pub fn count_untranslated<C: EbpfContext>(ctx: &C, stat: Stat) -> bool {
    count(stat);
    let drop = matches!(
        stat,
        Stat::SnatExhausted
            | Stat::CtInsertFailed
            | Stat::RewriteFailed
            | Stat::FragmentsDropped
            | Stat::Martians
            | Stat::DirectAccess
    );
    if drop {
        log::dropped(ctx, stat);
    }
    drop
}

/// Counts a packet of a published port's flow, in the slot the port had when the flow
/// began. A flow that outlives its port is not counted: the slot's generation moved on when
/// the loader gave it to another port.
#[inline(always)]
pub fn count_port(counter: &CounterRef, bytes: u64) {
    // Masqueraded and host flows have no published port (slot 0 is never given out).
    if counter.slot == 0 {
        return;
    }
    if let Some(counters) = PORT_COUNTERS.get_ptr_mut(counter.slot) {
        // SAFETY: per-CPU value, no concurrent writer.
        unsafe {
            if (*counters).generation == counter.generation {
                (*counters).packets += 1;
                (*counters).bytes += bytes;
            }
        }
    }
}

/// The container a published port leads to, for a packet to `ip:port`. An exact host
/// address wins over "every address"; "every address" covers the external address only
/// (never the bridge's, as with Docker's `! -i docker0`), and loopback for host processes.
#[inline(always)]
pub fn published(
    config: &NatConfig,
    ip: u32,
    port: u16,
    proto: u8,
    loopback_ok: bool,
) -> Option<PublishValue> {
    // Loopback is only ever the destination of the host's own processes: a packet from a
    // wire addressed to 127.0.0.1 must never reach a port published there (Docker's
    // localhost-only leak, moby#45610).
    let loopback = is_loopback(ip);
    if loopback && !loopback_ok {
        return None;
    }
    if let Some(value) = published_on(ip, port, proto) {
        return Some(value);
    }
    if ip != config.external_ip && !loopback {
        return None;
    }
    published_on(0, port, proto)
}

/// Whether a new DNAT flow shows its client as the gateway: with [`flags::MASQ_ALL`], or
/// when it is a container reaching its own published port through a host address
/// (`hairpin` and `from_target`), whose replies must come back through us (a packet from
/// its own address would be dropped as martian).
#[inline(always)]
pub fn source_as_gateway(config: &NatConfig, hairpin: bool, from_target: bool) -> bool {
    config.flags & flags::MASQ_ALL != 0 || hairpin && from_target
}

/// Whether a new flow for a packet showing `key` would be translated as the DNAT flow whose
/// forward entry is `entry`: the port still leads to the same container port, counted in
/// the same slot, and the source is kept (or shown as the gateway) as it was.
#[inline(always)]
pub fn dnat_unchanged(key: &FlowKey, entry: &CtEntry) -> bool {
    let Some(config) = config() else {
        return false;
    };
    let Some(target) = published(config, key.dst_ip, key.dst_port, key.proto, false) else {
        return false;
    };
    let hairpin = entry.flags & ct_flags::HAIRPIN != 0;
    let src_ip = if source_as_gateway(config, hairpin, key.src_ip == target.ip) {
        config.gateway_ip
    } else {
        key.src_ip
    };
    entry.dst_ip == target.ip
        && entry.dst_port == target.port
        && entry.counter == target.counter
        && entry.src_ip == src_ip
        && entry.src_port == key.src_port
}

/// The port published on exactly `ip` (0: every address): a single port, else the range
/// that holds it.
#[inline(always)]
fn published_on(ip: u32, port: u16, proto: u8) -> Option<PublishValue> {
    let key = PublishKey {
        ip,
        port,
        proto,
        pad: 0,
    };
    // SAFETY: the value is copied out at once.
    if let Some(value) = unsafe { PUBLISH.get(key) } {
        return Some(*value);
    }
    let prefix = Key::new(
        PORT_PREFIX_FIXED_BITS + 16,
        PortPrefix {
            ip,
            proto,
            pad: 0,
            port,
        },
    );
    PUBLISH_RANGES
        .get(prefix)
        .map(|range| range.target(u16::from_be(port)))
}
