//! The pinned maps of a running datapath, opened from bpffs: publishing and unpublishing
//! ports, reading counters and the conntrack table. No program is loaded or changed here.
//! A dual-stack lab's ports are written in both families' maps (a spec publishes in each
//! family its host address allows), with one counter slot per spec for both.

use std::{
    collections::HashSet,
    fmt::Write as _,
    net::{Ipv4Addr, Ipv6Addr},
    path::PathBuf,
};

use aya::maps::{Array, HashMap, Map, MapData, PerCpuArray};
use netlab_common::{
    nat::{
        ContainerInfo, CounterRef, CtEntry, FlowKey, NatConfig, PORT_COUNTER_SLOTS,
        PUBLISH_MAX_ENTRIES, PublishKey, PublishRange, PublishValue, Stat, TrafficCounters,
        ct_flags, maps as map_names,
    },
    nat6::{
        self, CtEntry6, FlowKey6, Ipv6Words, NatConfig6, PortPrefix6, PublishKey6, PublishRange6,
        PublishValue6, address_of, words_of,
    },
};

use crate::{
    crash_point,
    error::{Error, Result},
    lab::{Lab, Publish},
    nat::{NatContext, PortCounters},
    ports::{PortSpec, Proto},
};

use super::{
    batch, pin_dir,
    ranges::{self, RangeKey, RangeKey6},
};

/// The pinned maps of one lab.
#[derive(Debug)]
pub struct Tables {
    dir: PathBuf,
}

/// `CLOCK_MONOTONIC_COARSE` in nanoseconds, the clock of the datapath's
/// `bpf_ktime_get_coarse_ns`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &raw mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// The host-side keys of a published spec, one per host port.
fn publish_keys(publish: &Publish) -> impl Iterator<Item = (PublishKey, u16)> + '_ {
    spec_keys(&publish.spec)
}

/// The IPv6 host-side keys of `spec`, each with its container port: one per host port (none
/// for a spec published on IPv4 only).
pub(crate) fn spec_keys6(spec: &PortSpec) -> impl Iterator<Item = (PublishKey6, u16)> + '_ {
    let host_ip = spec.host_ip6();
    let ip = host_ip.flatten().map_or([0; 4], words_of);
    let ports = host_ip.map(|_| spec.host.start..=spec.host.end);
    ports.into_iter().flatten().filter_map(move |host_port| {
        let container_port = spec.container_port_for(host_port)?;
        let key = PublishKey6 {
            ip,
            port: host_port.to_be(),
            proto: spec.proto.number(),
            pad: 0,
        };
        Some((key, container_port))
    })
}

/// A tracked flow of either family, as `netlab conntrack` lists it.
#[derive(Debug, Clone)]
pub struct TrackedFlow {
    pub proto: u8,
    /// The packet as it arrives: `src:port -> dst:port`.
    pub original: String,
    /// What it is rewritten to.
    pub translated: String,
    pub flags: u8,
    pub state: u8,
    pub last_seen_ns: u64,
}

/// The host-side keys of `spec`, each with its container port: one per host port (none
/// for a spec published on IPv6 only).
pub(crate) fn spec_keys(spec: &PortSpec) -> impl Iterator<Item = (PublishKey, u16)> + '_ {
    let host_ip = spec.host_ip4();
    let ip = host_ip.flatten().map_or(0, |ip| u32::from(ip).to_be());
    let ports = host_ip.map(|_| spec.host.start..=spec.host.end);
    ports.into_iter().flatten().filter_map(move |host_port| {
        let container_port = spec.container_port_for(host_port)?;
        let key = PublishKey {
            ip,
            port: host_port.to_be(),
            proto: spec.proto.number(),
            pad: 0,
        };
        Some((key, container_port))
    })
}

/// Whether `key` is one of [`spec_keys`]'s keys of `spec`, without listing them (a range
/// of every port has 65,535).
fn spec_has_key(spec: &PortSpec, key: PublishKey) -> bool {
    spec.host_ip4().is_some_and(|host_ip| {
        key.ip == host_ip.map_or(0, |ip| u32::from(ip).to_be())
            && key.proto == spec.proto.number()
            && spec.container_port_for(u16::from_be(key.port)).is_some()
    })
}

/// [`spec_has_key`] in IPv6.
fn spec_has_key6(spec: &PortSpec, key: &PublishKey6) -> bool {
    spec.host_ip6().is_some_and(|host_ip| {
        key.ip == host_ip.map_or([0; 4], words_of)
            && key.proto == spec.proto.number()
            && spec.container_port_for(u16::from_be(key.port)).is_some()
    })
}

impl Tables {
    pub fn open(lab_name: &str) -> Result<Self> {
        let dir = pin_dir(lab_name);
        if !dir.join(map_names::PUBLISH).exists() {
            return Err(Error::invalid(format!(
                "the eBPF datapath of lab {lab_name:?} is not loaded (run `netlab up --backend ebpf`)"
            )));
        }
        Ok(Self { dir })
    }

    /// The maps pinned in `dir`, which must hold a datapath.
    pub(crate) fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub(super) fn data(&self, name: &str) -> Result<MapData> {
        let path = self.dir.join(name);
        MapData::from_pin(&path)
            .map_err(|err| Error::ebpf(format!("opening {}", path.display()), err))
    }

    /// Bytes of kernel memory the published ports' maps take (the map and its counters,
    /// preallocated for their largest size), as `memlock` in the maps' fdinfo.
    pub fn publish_memory(&self) -> Result<u64> {
        [
            map_names::PUBLISH,
            map_names::PUBLISH_RANGES,
            map_names::PORT_COUNTERS,
        ]
        .iter()
        .map(|name| {
            let map = self.data(name)?;
            crate::bpf_loader::map_memory(&map)
                .map_err(|err| Error::io(format!("reading the memory of map {name}"), err))
        })
        .sum()
    }

    pub(crate) fn publish_map(&self) -> Result<HashMap<MapData, PublishKey, PublishValue>> {
        HashMap::try_from(Map::HashMap(self.data(map_names::PUBLISH)?))
            .map_err(|err| Error::ebpf("opening the publish map", err))
    }

    pub(crate) fn containers_map(&self) -> Result<HashMap<MapData, u32, ContainerInfo>> {
        HashMap::try_from(Map::HashMap(self.data(map_names::CONTAINERS)?))
            .map_err(|err| Error::ebpf("opening the containers map", err))
    }

    pub(crate) fn containers6_map(&self) -> Result<HashMap<MapData, Ipv6Words, ContainerInfo>> {
        HashMap::try_from(Map::HashMap(self.data(nat6::maps::CONTAINERS6)?))
            .map_err(|err| Error::ebpf("opening the IPv6 containers map", err))
    }

    /// Writes the datapath's IPv6 configuration (the IPv6 side runs once it and the IPv4
    /// one are ready).
    pub(crate) fn write_config6(&self, config: NatConfig6) -> Result<()> {
        let mut array: Array<MapData, NatConfig6> =
            Array::try_from(Map::Array(self.data(nat6::maps::CONFIG6)?))
                .map_err(|err| Error::ebpf("opening the IPv6 config map", err))?;
        array
            .set(0, config, 0)
            .map_err(|err| Error::ebpf("writing the IPv6 NAT config", err))
    }

    fn config_map(&self) -> Result<Array<MapData, NatConfig>> {
        Array::try_from(Map::Array(self.data(map_names::CONFIG)?))
            .map_err(|err| Error::ebpf("opening the config map", err))
    }

    /// Writes the datapath's configuration (the programs read it on every packet), with a
    /// new containers generation.
    pub(crate) fn write_config(&self, config: NatConfig) -> Result<()> {
        let config = NatConfig {
            containers_generation: random_generation()?,
            ..config
        };
        self.config_map()?
            .set(0, config, 0)
            .map_err(|err| Error::ebpf("writing the NAT config", err))
    }

    /// Gives the config a new containers generation, after a change of the containers map:
    /// the datapath's cached copies of containers are then read again. Writers that race
    /// each leave a value written after their own change, so the last one covers them all.
    pub(crate) fn containers_changed(&self) -> Result<()> {
        let config = self
            .config_map()?
            .get(&0, 0)
            .map_err(|err| Error::ebpf("reading the NAT config", err))?;
        self.write_config(config)
    }

    fn port_counters_map(&self) -> Result<PerCpuArray<MapData, TrafficCounters>> {
        PerCpuArray::try_from(Map::PerCpuArray(self.data(map_names::PORT_COUNTERS)?))
            .map_err(|err| Error::ebpf("opening the port counters", err))
    }

    /// Every published port, read in batches.
    pub(crate) fn published(&self) -> Result<std::collections::HashMap<PublishKey, PublishValue>> {
        let map = self.data(map_names::PUBLISH)?;
        Ok(batch::entries(&map)
            .map_err(|err| Error::io("reading the published ports", err))?
            .into_iter()
            .collect())
    }

    fn conntrack_map(&self) -> Result<HashMap<MapData, FlowKey, CtEntry>> {
        HashMap::try_from(Map::LruHashMap(self.data(map_names::CONNTRACK)?))
            .map_err(|err| Error::ebpf("opening the conntrack map", err))
    }

    fn conntrack6_map(&self) -> Result<HashMap<MapData, FlowKey6, CtEntry6>> {
        HashMap::try_from(Map::LruHashMap(self.data(nat6::maps::CONNTRACK6)?))
            .map_err(|err| Error::ebpf("opening the IPv6 conntrack map", err))
    }

    /// Every port published in IPv6, read in batches.
    pub(crate) fn published6(
        &self,
    ) -> Result<std::collections::HashMap<PublishKey6, PublishValue6>> {
        let map = self.data(nat6::maps::PUBLISH6)?;
        Ok(batch::entries(&map)
            .map_err(|err| Error::io("reading the ports published in IPv6", err))?
            .into_iter()
            .collect())
    }

    /// A single port as one entry of the per-port map, a range as the few blocks of the
    /// ranges map that cover it (see `PortWriter`), in each family the lab and the spec
    /// have: map updates, not a program change.
    pub fn publish(&self, lab: &Lab, added: &[Publish]) -> Result<()> {
        let mut writer = self.port_writer()?;
        for publish in added {
            crash_point::reached("", &format!("map publish {}", publish.spec));
            let container = lab.require_container(&publish.node)?;
            let address6 = container.address6.filter(|_| lab.ipv6.is_some());
            writer.write(&publish.spec, container.address, address6, 0)?;
        }
        Ok(())
    }

    /// A writer of ports for one command: it reads the publish maps once (which finding
    /// free counter slots needs), however many specs it then writes.
    pub(crate) fn port_writer(&self) -> Result<PortWriter<'_>> {
        let existing = self.published()?;
        let ranges = self.published_ranges()?;
        let existing6 = self.published6()?;
        let ranges6 = self.published_ranges_of::<PortPrefix6>()?;
        let free = FreeSlots::new(
            existing
                .values()
                .map(|value| value.counter.slot)
                .chain(ranges.values().map(|range| range.counter.slot))
                .chain(existing6.values().map(|value| value.counter.slot))
                .chain(ranges6.values().map(|range| range.counter.slot)),
        );
        Ok(PortWriter {
            tables: self,
            existing,
            ranges,
            existing6,
            ranges6,
            free,
            generation: random_generation()?,
        })
    }

    /// Removes the ports; established TCP flows finish (as with iptables' conntrack), UDP
    /// flows of those ports are forgotten so their next datagram is not forwarded (as
    /// Docker flushes conntrack for UDP).
    pub fn unpublish(&self, _lab: &Lab, removed: &[Publish]) -> Result<()> {
        // The single ports of every spec in one batch.
        let (mut ports, mut ports6) = (Vec::new(), Vec::new());
        for publish in removed {
            crash_point::reached("", &format!("map unpublish {}", publish.spec));
            let spec = &publish.spec;
            if ranges::is_range(spec) {
                let what = spec.to_string();
                self.remove_ranges(&ranges::range_keys(spec), &what)?;
                self.remove_ranges(&ranges::range_keys6(spec), &what)?;
            } else {
                ports.extend(publish_keys(publish).map(|(key, _)| key));
                ports6.extend(spec_keys6(spec).map(|(key, _)| key));
            }
        }
        self.remove_ports(&ports, &format!("{} ports", ports.len()))?;
        self.remove_ports6(&ports6, &format!("{} IPv6 ports", ports6.len()))?;
        // The specs, not their ports: a set of every port of a UDP range took three times as
        // long to build as all the rest of unpublishing it.
        let udp: Vec<&PortSpec> = removed
            .iter()
            .map(|publish| &publish.spec)
            .filter(|spec| spec.proto == Proto::Udp)
            .collect();
        if udp.iter().any(|spec| spec.host_ip4().is_some()) {
            self.forget_flows(|key| udp.iter().any(|spec| spec_has_key(spec, *key)))?;
        }
        if udp.iter().any(|spec| spec.host_ip6().is_some()) {
            self.forget_flows6(|key| udp.iter().any(|spec| spec_has_key6(spec, key)))?;
        }
        Ok(())
    }

    /// [`Self::remove_ports`] in IPv6.
    pub(crate) fn remove_ports6(&self, keys: &[PublishKey6], what: &str) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let map = self.data(nat6::maps::PUBLISH6)?;
        batch::delete(&map, keys).map_err(|err| Error::io(format!("unpublishing {what}"), err))
    }

    /// [`Self::forget_flows`] in IPv6.
    pub(crate) fn forget_flows6(&self, gone: impl Fn(&PublishKey6) -> bool) -> Result<()> {
        let mut conntrack = self.conntrack6_map()?;
        let to_port = |key: &FlowKey6, ip| PublishKey6 {
            ip,
            port: key.dst_port,
            proto: key.proto,
            pad: 0,
        };
        let stale: Vec<FlowKey6> = conntrack
            .iter()
            .filter_map(std::result::Result::ok)
            .filter(|(key, entry)| {
                entry.flags & ct_flags::DNAT != 0
                    && entry.flags & ct_flags::REPLY == 0
                    && (gone(&to_port(key, key.dst_ip)) || gone(&to_port(key, [0; 4])))
            })
            .flat_map(|(key, entry)| {
                let reply = FlowKey6 {
                    src_ip: entry.dst_ip,
                    dst_ip: entry.src_ip,
                    src_port: entry.dst_port,
                    dst_port: entry.src_port,
                    proto: key.proto,
                    pad: [0; 3],
                };
                [key, reply]
            })
            .collect();
        for key in stale {
            let _ = conntrack.remove(&key);
        }
        Ok(())
    }

    /// Stops forwarding `keys` (`what` names them in errors); their counter slots are free
    /// again. A port not there was unpublished already (a crashed command finished twice).
    pub(crate) fn remove_ports(&self, keys: &[PublishKey], what: &str) -> Result<()> {
        let map = self.data(map_names::PUBLISH)?;
        batch::delete(&map, keys).map_err(|err| Error::io(format!("unpublishing {what}"), err))
    }

    /// Forgets the tracked flows of the published ports that `gone` picks (both directions of
    /// each flow that came in to one of them), so their next packet is not forwarded by a
    /// stale entry. Every entry of the table is read, a system call each: callers with no
    /// port to forget do not call it.
    pub(crate) fn forget_flows(&self, gone: impl Fn(&PublishKey) -> bool) -> Result<()> {
        let mut conntrack = self.conntrack_map()?;
        let to_port = |key: &FlowKey, ip| PublishKey {
            ip,
            port: key.dst_port,
            proto: key.proto,
            pad: 0,
        };
        let stale: Vec<FlowKey> = conntrack
            .iter()
            .filter_map(std::result::Result::ok)
            .filter(|(key, entry)| {
                entry.flags & ct_flags::DNAT != 0
                    && entry.flags & ct_flags::REPLY == 0
                    && (gone(&to_port(key, key.dst_ip)) || gone(&to_port(key, 0)))
            })
            .flat_map(|(key, entry)| [key, reply_key(&key, &entry)])
            .collect();
        for key in stale {
            let _ = conntrack.remove(&key);
        }
        Ok(())
    }

    /// Removes the ports that forward but that `lab` does not publish (left by a crashed
    /// command; their counter slots are free again): what forwards is what `status` shows.
    pub fn prune(&self, lab: &Lab) -> Result<()> {
        let (ranges, ports): (Vec<&Publish>, Vec<&Publish>) = lab
            .publish
            .iter()
            .partition(|publish| ranges::is_range(&publish.spec));
        let wanted: HashSet<PublishKey> = ports
            .iter()
            .flat_map(|publish| publish_keys(publish).map(|(key, _)| key))
            .collect();
        let wanted_ranges: HashSet<RangeKey> = ranges
            .iter()
            .flat_map(|publish| ranges::range_keys(&publish.spec))
            .collect();
        let stale: Vec<PublishKey> = self
            .published()?
            .into_keys()
            .filter(|key| !wanted.contains(key))
            .collect();
        let stale_ranges: Vec<RangeKey> = self
            .published_ranges()?
            .into_keys()
            .filter(|key| !wanted_ranges.contains(key))
            .collect();
        let wanted6: HashSet<PublishKey6> = ports
            .iter()
            .flat_map(|publish| spec_keys6(&publish.spec).map(|(key, _)| key))
            .collect();
        let wanted_ranges6: HashSet<RangeKey6> = ranges
            .iter()
            .flat_map(|publish| ranges::range_keys6(&publish.spec))
            .collect();
        let stale6: Vec<PublishKey6> = self
            .published6()?
            .into_keys()
            .filter(|key| lab.ipv6.is_none() || !wanted6.contains(key))
            .collect();
        let stale_ranges6: Vec<RangeKey6> = self
            .published_ranges_of::<PortPrefix6>()?
            .into_keys()
            .filter(|key| lab.ipv6.is_none() || !wanted_ranges6.contains(key))
            .collect();
        if stale.is_empty()
            && stale_ranges.is_empty()
            && stale6.is_empty()
            && stale_ranges6.is_empty()
        {
            return Ok(());
        }
        crash_point::reached("", "map prune");
        self.remove_ports(&stale, "ports no command published")?;
        self.remove_ranges(&stale_ranges, "port ranges no command published")?;
        self.remove_ports6(&stale6, "IPv6 ports no command published")?;
        self.remove_ranges(&stale_ranges6, "IPv6 port ranges no command published")
    }

    /// Packets and bytes per published spec, summed over its ports and the CPUs.
    pub fn port_counters(&self, lab: &Lab) -> Result<Vec<PortCounters>> {
        let counters = self.port_counters_map()?;
        let published = self.published()?;
        let published_ranges = self.published_ranges()?;
        let published6 = self.published6()?;
        let published_ranges6 = self.published_ranges_of::<PortPrefix6>()?;
        let mut rows = Vec::new();
        for publish in &lab.publish {
            let spec = &publish.spec;
            // A spec counts in one slot, which all its entries name, in both families.
            let slot: Option<CounterRef> = if ranges::is_range(spec) {
                let v4 = ranges::range_keys(spec)
                    .first()
                    .and_then(|key| published_ranges.get(key))
                    .map(|range| range.counter);
                v4.or_else(|| {
                    ranges::range_keys6(spec)
                        .first()
                        .and_then(|key| published_ranges6.get(key))
                        .map(|range| range.counter)
                })
            } else {
                let v4 = publish_keys(publish)
                    .find_map(|(key, _)| published.get(&key).map(|value| value.counter));
                v4.or_else(|| {
                    spec_keys6(spec)
                        .find_map(|(key, _)| published6.get(&key).map(|value| value.counter))
                })
            };
            let slots: Vec<CounterRef> = slot.into_iter().collect();
            let (mut packets, mut bytes) = (0, 0);
            for counter in slots {
                if let Ok(values) = counters.get(&counter.slot, 0) {
                    for value in values.iter().filter(|v| v.generation == counter.generation) {
                        packets += value.packets;
                        bytes += value.bytes;
                    }
                }
            }
            rows.push(PortCounters {
                node: publish.node.clone(),
                spec: publish.spec.to_string(),
                unit: "packets",
                packets,
                bytes,
            });
        }
        Ok(rows)
    }

    /// The tracked flows of both families.
    pub fn conntrack(&self) -> Result<Vec<TrackedFlow>> {
        let map = self.conntrack_map()?;
        let mut flows: Vec<TrackedFlow> = map
            .iter()
            .filter_map(std::result::Result::ok)
            .map(|(key, entry)| TrackedFlow {
                proto: key.proto,
                original: format!(
                    "{} -> {}",
                    endpoint(key.src_ip, key.src_port),
                    endpoint(key.dst_ip, key.dst_port)
                ),
                translated: format!(
                    "{} -> {}",
                    endpoint(entry.src_ip, entry.src_port),
                    endpoint(entry.dst_ip, entry.dst_port)
                ),
                flags: entry.flags,
                state: entry.state,
                last_seen_ns: entry.last_seen_ns,
            })
            .collect();
        let map6 = self.conntrack6_map()?;
        flows.extend(
            map6.iter()
                .filter_map(std::result::Result::ok)
                .map(|(key, entry)| TrackedFlow {
                    proto: key.proto,
                    original: format!(
                        "{} -> {}",
                        endpoint6(key.src_ip, key.src_port),
                        endpoint6(key.dst_ip, key.dst_port)
                    ),
                    translated: format!(
                        "{} -> {}",
                        endpoint6(entry.src_ip, entry.src_port),
                        endpoint6(entry.dst_ip, entry.dst_port)
                    ),
                    flags: entry.flags,
                    state: entry.state,
                    last_seen_ns: entry.last_seen_ns,
                }),
        );
        Ok(flows)
    }

    /// Datapath statistics (translated, skipped, dropped by reason), summed over CPUs.
    pub fn stats(&self) -> Result<Vec<(&'static str, u64)>> {
        let map: PerCpuArray<MapData, u64> =
            PerCpuArray::try_from(Map::PerCpuArray(self.data(map_names::STATS)?))
                .map_err(|err| Error::ebpf("opening the stats map", err))?;
        Stat::ALL
            .iter()
            .map(|(stat, name)| {
                let values = map
                    .get(&(*stat as u32), 0)
                    .map_err(|err| Error::ebpf("reading stats", err))?;
                Ok((*name, values.iter().sum()))
            })
            .collect()
    }

    /// Attached programs, map sizes and statistics, for `inspect host`.
    pub fn describe(&self, ctx: NatContext<'_>) -> Result<String> {
        let mut out = String::new();
        let _ = writeln!(out, "pins: {}", self.dir.display());
        let _ = writeln!(
            out,
            "options: ingress {:?}, fast path {:?}, conntrack entries {}",
            ctx.options.ingress, ctx.options.fast_path, ctx.options.ct_entries
        );
        let t = ctx.options.ct_timeouts;
        let _ = writeln!(
            out,
            "conntrack timeouts: tcp-syn {} s, tcp-established {} s, tcp-closing {} s, udp {} s, icmp {} s",
            t.tcp_syn, t.tcp_established, t.tcp_closing, t.udp, t.icmp
        );
        let mut links: Vec<String> = std::fs::read_dir(self.dir.join("links"))
            .map(|entries| {
                entries
                    .filter_map(std::result::Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        links.extend(super::attach::container_hooks(ctx)?);
        links.sort();
        for link in links {
            let _ = writeln!(out, "attached: {link}");
        }
        let mut published: Vec<_> = self.published()?.into_iter().collect();
        let mut published6: Vec<_> = self.published6()?.into_iter().collect();
        let mut published_ranges: Vec<_> = self.published_ranges()?.into_iter().collect();
        let conntrack = self.conntrack_map()?.keys().count();
        let conntrack6 = self.conntrack6_map()?.keys().count();
        for (name, entries) in [
            (map_names::PUBLISH, published.len()),
            (map_names::PUBLISH_RANGES, published_ranges.len()),
            (map_names::CONNTRACK, conntrack),
            (nat6::maps::PUBLISH6, published6.len()),
            (nat6::maps::CONNTRACK6, conntrack6),
        ] {
            let _ = writeln!(out, "map {name}: {entries} entries");
        }
        for (name, value) in self.stats()? {
            let _ = writeln!(out, "stat {name}: {value}");
        }
        // In a stable order (the maps' own is their hash's): by protocol, port, address.
        published.sort_by_key(|(key, _)| (key.proto, u16::from_be(key.port), key.ip));
        for (key, target) in published.iter().take(20) {
            let _ = writeln!(
                out,
                "publish {}/{} -> {}",
                endpoint(key.ip, key.port).replacen("0.0.0.0:", "*:", 1),
                crate::ports::protocol_name(key.proto),
                endpoint(target.ip, target.port)
            );
        }
        published6.sort_by_key(|(key, _)| (key.proto, u16::from_be(key.port), key.ip));
        for (key, target) in published6.iter().take(20) {
            let host = if key.ip == [0; 4] {
                format!("*:{}", u16::from_be(key.port))
            } else {
                endpoint6(key.ip, key.port)
            };
            let _ = writeln!(
                out,
                "publish {host}/{} -> {}",
                crate::ports::protocol_name(key.proto),
                endpoint6(target.ip, target.port)
            );
        }
        published_ranges.sort_by_key(|(key, _)| (key.prefix.proto, key.prefix.ip, key.block.first));
        for (key, range) in published_ranges.iter().take(40) {
            let (first, last) = (key.block.first, key.block.last());
            let _ = writeln!(
                out,
                "publish {}-{last}/{} -> {}-{} (range from {})",
                endpoint(key.prefix.ip, key.prefix.port).replacen("0.0.0.0:", "*:", 1),
                crate::ports::protocol_name(key.prefix.proto),
                endpoint(range.ip, range.target(first).port),
                u16::from_be(range.target(last).port),
                range.host_start,
            );
        }
        Ok(out)
    }
}

/// The key of the reply direction of the flow whose entry at `key` is `entry`.
fn reply_key(key: &FlowKey, entry: &CtEntry) -> FlowKey {
    FlowKey {
        src_ip: entry.dst_ip,
        dst_ip: entry.src_ip,
        src_port: entry.dst_port,
        dst_port: entry.src_port,
        proto: key.proto,
        pad: [0; 3],
    }
}

/// Writes the ports of one command, spec after spec, from one read of the publish maps.
pub(crate) struct PortWriter<'a> {
    tables: &'a Tables,
    /// The publish map as read, and as this writer has written it since.
    existing: std::collections::HashMap<PublishKey, PublishValue>,
    /// The ranges map, the same way.
    ranges: std::collections::HashMap<RangeKey, PublishRange>,
    /// The IPv6 publish map, the same way.
    existing6: std::collections::HashMap<PublishKey6, PublishValue6>,
    /// The IPv6 ranges map, the same way.
    ranges6: std::collections::HashMap<RangeKey6, PublishRange6>,
    free: FreeSlots,
    /// The counter generation of the slots this command gives out.
    generation: u32,
}

impl PortWriter<'_> {
    /// Forwards the host ports of `spec` to `container` (and in IPv6 to `container6`, when
    /// given), marked as `owner`'s: a single port in the per-port maps, a range as its
    /// blocks. The spec counts in one slot in both families.
    pub(crate) fn write(
        &mut self,
        spec: &PortSpec,
        container: Ipv4Addr,
        container6: Option<Ipv6Addr>,
        owner: u64,
    ) -> Result<()> {
        let mut new_slots = Vec::new();
        let earlier = self.earlier_counter(spec, container6.is_some());
        let counter = self.counter(earlier, spec, &mut new_slots)?;
        self.reset_counters(&new_slots, spec)?;
        let what = spec.to_string();
        if ranges::is_range(spec) {
            let keys = ranges::range_keys(spec);
            if !keys.is_empty() {
                let range = PublishRange {
                    ip: u32::from(container).to_be(),
                    host_start: spec.host.start,
                    container_start: spec.container.start,
                    owner,
                    counter,
                };
                self.tables.write_range(&keys, range, &what)?;
                self.ranges.extend(keys.into_iter().map(|key| (key, range)));
            }
            if let Some(container6) = container6 {
                let keys = ranges::range_keys6(spec);
                let range = PublishRange6 {
                    owner,
                    counter,
                    ip: words_of(container6),
                    host_start: spec.host.start,
                    container_start: spec.container.start,
                    pad: 0,
                };
                self.tables.write_range(&keys, range, &what)?;
                self.ranges6
                    .extend(keys.into_iter().map(|key| (key, range)));
            }
            return Ok(());
        }
        let ip = u32::from(container).to_be();
        let (keys, values): (Vec<PublishKey>, Vec<PublishValue>) = spec_keys(spec)
            .map(|(key, container_port)| {
                let value = PublishValue {
                    ip,
                    port: container_port.to_be(),
                    pad: 0,
                    owner,
                    counter,
                };
                (key, value)
            })
            .unzip();
        // Every port as the caller says: one a crashed command left forwarding elsewhere
        // is set right, one already right is written the same.
        if !keys.is_empty() {
            batch::update(&self.tables.data(map_names::PUBLISH)?, &keys, &values)
                .map_err(|err| Error::io(format!("publishing {spec}"), err))?;
            self.existing.extend(keys.into_iter().zip(values));
        }
        if let Some(container6) = container6 {
            let ip = words_of(container6);
            let (keys, values): (Vec<PublishKey6>, Vec<PublishValue6>) = spec_keys6(spec)
                .map(|(key, container_port)| {
                    let value = PublishValue6 {
                        owner,
                        counter,
                        ip,
                        port: container_port.to_be(),
                        pad: [0; 6],
                    };
                    (key, value)
                })
                .unzip();
            if !keys.is_empty() {
                batch::update(&self.tables.data(nat6::maps::PUBLISH6)?, &keys, &values)
                    .map_err(|err| Error::io(format!("publishing {spec} in IPv6"), err))?;
                self.existing6.extend(keys.into_iter().zip(values));
            }
        }
        Ok(())
    }

    /// The counter `spec` already has in either family (published again by `up`, it keeps
    /// its counts): a range's, when its first block starts where the spec does.
    fn earlier_counter(&self, spec: &PortSpec, ipv6: bool) -> Option<CounterRef> {
        if ranges::is_range(spec) {
            let v4 = ranges::range_keys(spec)
                .first()
                .and_then(|key| self.ranges.get(key))
                .filter(|range| range.host_start == spec.host.start)
                .map(|range| range.counter);
            let v6 = || {
                ranges::range_keys6(spec)
                    .first()
                    .and_then(|key| self.ranges6.get(key))
                    .filter(|range| range.host_start == spec.host.start)
                    .map(|range| range.counter)
            };
            return v4.or_else(|| v6().filter(|_| ipv6));
        }
        let v4 = spec_keys(spec).find_map(|(key, _)| self.existing.get(&key).map(|v| v.counter));
        let v6 =
            || spec_keys6(spec).find_map(|(key, _)| self.existing6.get(&key).map(|v| v.counter));
        v4.or_else(|| v6().filter(|_| ipv6))
    }

    /// The counter of a port or range: the one it had (published again by `up`, it keeps
    /// its counts), else a free slot, added to `new_slots`.
    fn counter(
        &mut self,
        earlier: Option<CounterRef>,
        spec: &PortSpec,
        new_slots: &mut Vec<u32>,
    ) -> Result<CounterRef> {
        if let Some(counter) = earlier.filter(|counter| counter.slot != 0) {
            return Ok(counter);
        }
        let slot = self.free.take().ok_or_else(|| {
            Error::invalid(format!(
                "publishing {spec}: no counter slot left (at most {PUBLISH_MAX_ENTRIES} ports)"
            ))
        })?;
        new_slots.push(slot);
        Ok(CounterRef {
            slot,
            generation: self.generation,
        })
    }

    /// Zeroes `slots` with this command's generation on every CPU, before any port names
    /// them: a flow that outlived a slot's previous port stops counting there.
    fn reset_counters(&self, slots: &[u32], spec: &PortSpec) -> Result<()> {
        let cpus = aya::util::nr_cpus().map_err(|(_, err)| Error::io("counting CPUs", err))?;
        let fresh = TrafficCounters {
            generation: self.generation,
            ..TrafficCounters::default()
        };
        let counters = vec![fresh; slots.len() * cpus];
        batch::update_per_cpu(
            &self.tables.data(map_names::PORT_COUNTERS)?,
            slots,
            &counters,
            cpus,
        )
        .map_err(|err| Error::io(format!("adding the counters of {spec}"), err))
    }
}

/// Counter slots no published port holds, lowest first (slot 0 is never given out).
struct FreeSlots {
    used: HashSet<u32>,
    next: u32,
}

impl FreeSlots {
    fn new(used: impl Iterator<Item = u32>) -> Self {
        Self {
            used: used.collect(),
            next: 1,
        }
    }

    fn take(&mut self) -> Option<u32> {
        while self.next < PORT_COUNTER_SLOTS {
            let slot = self.next;
            self.next += 1;
            if !self.used.contains(&slot) {
                return Some(slot);
            }
        }
        None
    }
}

/// A generation: of the counter slots one command gives out, or of the containers map.
/// Random, so that it differs from what any flow or cache still holds (never 0, the value
/// of an unused slot or place).
pub(crate) fn random_generation() -> Result<u32> {
    let mut bytes = [0u8; 4];
    // SAFETY: a valid buffer of the length we pass.
    let got = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if got != 4 {
        return Err(Error::io(
            "drawing a generation (getrandom)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(u32::from_ne_bytes(bytes).max(1))
}

/// `[address]:port` of an IPv6 address the maps hold.
pub(super) fn endpoint6(ip: Ipv6Words, port: u16) -> String {
    format!("[{}]:{}", address_of(ip), u16::from_be(port))
}

/// `address:port` from the maps' network byte order, as `ip` and `ss` print them.
pub(super) fn endpoint(ip: u32, port: u16) -> String {
    format!(
        "{}:{}",
        Ipv4Addr::from(u32::from_be(ip)),
        u16::from_be(port)
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use netlab_common::{nat::PublishKey, nat6::PublishKey6};

    use super::{spec_has_key, spec_has_key6, spec_keys, spec_keys6};
    use crate::ports::PortSpec;

    fn key(ip: u32, port: u16, proto: u8) -> PublishKey {
        PublishKey {
            ip: ip.to_be(),
            port: port.to_be(),
            proto,
            pad: 0,
        }
    }

    fn key6(ip: [u32; 4], port: u16, proto: u8) -> PublishKey6 {
        PublishKey6 {
            ip,
            port: port.to_be(),
            proto,
            pad: 0,
        }
    }

    /// Every key near a spec's: its ports and one past each end, every address it could be
    /// published on, both protocols.
    fn candidates() -> (Vec<PublishKey>, Vec<PublishKey6>) {
        let ips = [0, 0xc612_0001, 0x7f00_0001];
        let ips6 = [
            [0; 4],
            super::words_of("2001:2::1".parse().expect("address")),
        ];
        let (mut keys, mut keys6) = (Vec::new(), Vec::new());
        for port in [1, 2, 99, 100, 101, 150, 199, 200, 201, 5000, 65534, 65535] {
            for proto in [6, 17] {
                keys.extend(ips.iter().map(|ip| key(*ip, port, proto)));
                keys6.extend(ips6.iter().map(|ip| key6(*ip, port, proto)));
            }
        }
        (keys, keys6)
    }

    #[test]
    fn spec_has_exactly_the_keys_it_lists() {
        let (keys, keys6) = candidates();
        for text in [
            "5000:80",
            "100-200:1100-1200/udp",
            "1-65535:1-65535/udp",
            "198.18.0.1:100-200:100-200",
            "0.0.0.0:5000:80/udp",
            "[2001:2::1]:100-200:100-200/udp",
            "[::]:5000:80",
        ] {
            let spec: PortSpec = text.parse().expect("a valid spec");
            let listed: HashSet<PublishKey> = spec_keys(&spec).map(|(key, _)| key).collect();
            let listed6: HashSet<PublishKey6> = spec_keys6(&spec).map(|(key, _)| key).collect();
            for key in &keys {
                assert_eq!(
                    spec_has_key(&spec, *key),
                    listed.contains(key),
                    "{text}: {key:?}"
                );
            }
            for key in &keys6 {
                assert_eq!(
                    spec_has_key6(&spec, key),
                    listed6.contains(key),
                    "{text}: {key:?}"
                );
            }
            // The candidates reach into every spec's keys, so the test compares something.
            assert!(
                keys.iter().any(|key| listed.contains(key))
                    || keys6.iter().any(|key| listed6.contains(key)),
                "{text}: no candidate is one of its keys"
            );
        }
    }
}
