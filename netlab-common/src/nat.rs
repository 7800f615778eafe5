//! Map keys and values of the eBPF NAT datapath.
//!
//! Addresses and ports are stored exactly as they sit in the packet (network byte order),
//! so the datapath compares and copies them without conversions; the loader converts with
//! `u32::from_be` / `Ipv4Addr::from(u32::from_be(..))`.

/// Names of the maps in the eBPF object (they are pinned by these names).
pub mod maps {
    /// `Array<NatConfig>`, one entry.
    pub const CONFIG: &str = "NETLAB_NAT_CONFIG";
    /// `HashMap<PublishKey, PublishValue>`: published single ports.
    pub const PUBLISH: &str = "NETLAB_NAT_PUBLISH";
    /// `LpmTrie<PortPrefix, PublishRange>`: published port ranges, each as the few aligned
    /// blocks of ports that cover it (`1-65535` is 16 entries, not 65,535).
    pub const PUBLISH_RANGES: &str = "NETLAB_NAT_PUBLISH_RANGES";
    /// `LruHashMap<FlowKey, CtEntry>`: both directions of every translated flow.
    pub const CONNTRACK: &str = "NETLAB_NAT_CT";
    /// `HashMap<u32 /* container address, network order */, ContainerInfo>`.
    pub const CONTAINERS: &str = "NETLAB_NAT_CONTAINERS";
    /// `PerCpuArray<TrafficCounters>` of [`super::PORT_COUNTER_SLOTS`]: traffic per
    /// published host port, in the slot its [`super::PublishValue::counter`] names.
    pub const PORT_COUNTERS: &str = "NETLAB_NAT_PORT_COUNTERS";
    /// `PerCpuArray<u64>` indexed by [`super::Stat`].
    pub const STATS: &str = "NETLAB_NAT_STATS";
    /// `LruHashMap<SockKey, SockOrig>`: what a host process asked for, for `recvmsg4`.
    pub const SOCK_ORIG: &str = "NETLAB_NAT_SOCK_ORIG";
    /// `DevMap` for XDP redirects into containers' host-side veths.
    pub const DEVMAP: &str = "NETLAB_NAT_DEVMAP";
    /// `LruHashMap<FragKey, FragEntry>`: how to translate the later fragments of a datagram
    /// whose first fragment (the one with the ports) was seen.
    pub const FRAGMENTS: &str = "NETLAB_NAT_FRAGMENTS";
    /// `PerCpuArray<u64>`, one slot: when each CPU last logged a drop.
    pub const DROP_LOG: &str = "NETLAB_NAT_DROP_LOG";
    /// `PerCpuArray<NextHop>` of [`super::CACHE_SLOTS`]: where the fast path sends replies
    /// to a client, learned from the FIB and checked again about once a second. A cache with
    /// one place per client ([`super::cache_slot`]), so that finding it is an array access,
    /// not a hash lookup; per CPU, so that no reader sees a half-written hop.
    pub const NEXT_HOP: &str = "NETLAB_NAT_NEXT_HOP";
    /// `PerCpuArray<CachedContainer>` of [`super::CACHE_SLOTS`]: the fast path's copies of
    /// [`CONTAINERS`] entries, one place per container address, valid for one
    /// [`super::NatConfig::containers_generation`]: an established flow into a container
    /// costs its conntrack lookup and an array access.
    pub const CONTAINER_CACHE: &str = "NETLAB_NAT_CONTAINER_CACHE";
    /// `PerCpuArray<u64>`, one slot: until when each CPU looks at a TCP flow's other half
    /// on every packet (the table is evicting live flows: it put one back within a second).
    pub const CT_PRESSURE: &str = "NETLAB_NAT_CT_PRESSURE";

    /// Every NAT map. The eBPF side must spell its map names as literals; a unit test of
    /// netlab checks the built object against this list, so the two cannot drift apart.
    pub const ALL: [&str; 14] = [
        CONFIG,
        PUBLISH,
        PUBLISH_RANGES,
        CONNTRACK,
        CONTAINERS,
        PORT_COUNTERS,
        STATS,
        SOCK_ORIG,
        DEVMAP,
        FRAGMENTS,
        DROP_LOG,
        NEXT_HOP,
        CONTAINER_CACHE,
        CT_PRESSURE,
    ];
}

/// Names of the NAT programs in the eBPF object.
pub mod programs {
    /// tcx ingress on the external device: DNAT of published ports, reverse masquerade.
    pub const TC_EXTERNAL_INGRESS: &str = "netlab_nat_ext_ingress";
    /// XDP on the external device: the same as [`TC_EXTERNAL_INGRESS`], earlier.
    pub const XDP_EXTERNAL_INGRESS: &str = "netlab_nat_ext_xdp";
    /// tcx egress on the external device: reverse DNAT, masquerade.
    pub const TC_EXTERNAL_EGRESS: &str = "netlab_nat_ext_egress";
    /// tcx ingress on each container's host-side veth: hairpin, fast-path replies.
    pub const TC_CONTAINER_INGRESS: &str = "netlab_nat_ctr_ingress";
    /// XDP pass-through on containers' veths, so XDP redirects can be received.
    pub const XDP_PASS: &str = "netlab_xdp_pass";
    /// cgroup `connect4`: host processes connecting to a published port.
    pub const SOCK_CONNECT4: &str = "netlab_sock_connect4";
    /// cgroup `sendmsg4`: host processes sending UDP to a published port.
    pub const SOCK_SENDMSG4: &str = "netlab_sock_sendmsg4";
    /// cgroup `recvmsg4`: replies shown as coming from the published address.
    pub const SOCK_RECVMSG4: &str = "netlab_sock_recvmsg4";

    /// Every NAT program (checked against the built object like [`super::maps::ALL`]).
    pub const ALL: [&str; 8] = [
        TC_EXTERNAL_INGRESS,
        XDP_EXTERNAL_INGRESS,
        TC_EXTERNAL_EGRESS,
        TC_CONTAINER_INGRESS,
        XDP_PASS,
        SOCK_CONNECT4,
        SOCK_SENDMSG4,
        SOCK_RECVMSG4,
    ];
}

/// Bits of [`NatConfig::flags`].
pub mod flags {
    /// Masquerade the subnet on the external device.
    pub const MASQUERADE: u32 = 1;
    /// Hand translated packets straight to their veth (`redirect_peer` / `redirect_neigh`).
    pub const FAST_PATH: u32 = 2;
    /// The config entry has been written (an all-zero config means "not set up": pass all).
    pub const READY: u32 = 4;
    /// XDP hands translated frames to the container's veth through the devmap. Frames lose
    /// the skb's partial-checksum state on the way, so this is only correct when senders
    /// compute full checksums (transmit checksum offload off).
    pub const XDP_REDIRECT: u32 = 8;
    /// Log every new translated flow through aya-log (set by `netlab up --foreground`, which
    /// streams the log; off otherwise, so the datapath pays one branch).
    pub const LOG_FLOWS: u32 = 16;
    /// The external device's ingress runs XDP before tc: a packet may reach tc translated.
    pub const XDP_INGRESS: u32 = 32;
    /// Connections to published ports reach the container from the bridge's address, not
    /// the client's (netlab-cni's `masqAll`, as `portmap` has it).
    pub const MASQ_ALL: u32 = 64;
}

/// The lab's addresses and switches; index 0 of [`maps::CONFIG`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatConfig {
    /// Host's external address (network order).
    pub external_ip: u32,
    /// Bridge address, the containers' gateway (network order).
    pub gateway_ip: u32,
    /// Container subnet's network address (network order).
    pub subnet: u32,
    /// Container subnet's mask (network order).
    pub subnet_mask: u32,
    /// [`flags`] (host order).
    pub flags: u32,
    /// A new random value each time the loader writes the config, which it does after every
    /// change of [`maps::CONTAINERS`] (host order): the datapath's container cache holds
    /// only what it read under the current value.
    pub containers_generation: u32,
    /// Network namespace cookie of the host node, for the cgroup hooks (host order).
    pub host_netns_cookie: u64,
    /// MAC address of the bridge, the source of frames netlab hands to containers.
    pub bridge_mac: [u8; 6],
    /// Explicit padding.
    pub pad2: [u8; 2],
    /// Conntrack lifetimes.
    pub timeouts: CtTimeouts,
}

/// A published port: which host address and port, for which protocol.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PublishKey {
    /// Host address (network order); 0 means every host address but the bridge's.
    pub ip: u32,
    /// Host port (network order).
    pub port: u16,
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    /// Explicit padding, always 0.
    pub pad: u8,
}

/// Where a published port leads.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishValue {
    /// Container address (network order).
    pub ip: u32,
    /// Container port (network order).
    pub port: u16,
    /// Explicit padding, always 0.
    pub pad: u16,
    /// Who published it (host order): 0 for a lab's ports, the [`owner_id`] of the
    /// container's CNI attachment for `netlab-cni`'s, so that `DEL` removes exactly its own.
    pub owner: u64,
    /// Where its traffic is counted. Flows copy it, so that counting a packet is an array
    /// access instead of a hash lookup.
    pub counter: CounterRef,
}

/// The data of a key of [`maps::PUBLISH_RANGES`], an LPM trie: a block of host ports on one
/// address for one protocol. The trie matches its bytes in memory order, so the fields that
/// a block always matches in full come first ([`PORT_PREFIX_FIXED_BITS`] of them), and the
/// block is the first bits of `port`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortPrefix {
    /// Host address (network order); 0 means every host address but the bridge's.
    pub ip: u32,
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    /// Explicit padding, always 0 (inside every prefix, so it must match).
    pub pad: u8,
    /// Host port (network order): the block's first port in a map key, the packet's port
    /// in a lookup.
    pub port: u16,
}

/// Bits of a [`PortPrefix`] before its port: a key's prefix length is this plus the bits
/// of the port its block fixes (16 for one port, 0 for all of them).
pub const PORT_PREFIX_FIXED_BITS: u32 = 48;

/// Where a published port range leads: host port `host_start + i` to container port
/// `container_start + i`. Every block of one range holds the same value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishRange {
    /// Container address (network order).
    pub ip: u32,
    /// The range's first host port (host order, for the arithmetic).
    pub host_start: u16,
    /// The container port of `host_start` (host order).
    pub container_start: u16,
    /// Who published it, as [`PublishValue::owner`] (host order).
    pub owner: u64,
    /// The range's counters, one slot for all its ports.
    pub counter: CounterRef,
}

impl PublishRange {
    /// Where `host_port` (host order, inside the range) leads, as the per-port map has it.
    #[expect(
        clippy::inline_always,
        reason = "the datapath calls it on a new flow's first packet: a few instructions, \
                  cheaper inlined than as a BPF call"
    )]
    #[inline(always)]
    pub fn target(&self, host_port: u16) -> PublishValue {
        let port = self
            .container_start
            .wrapping_add(host_port.wrapping_sub(self.host_start));
        PublishValue {
            ip: self.ip,
            port: port.to_be(),
            pad: 0,
            owner: self.owner,
            counter: self.counter,
        }
    }
}

/// A published port's counters: slot `slot` of [`maps::PORT_COUNTERS`], as long as the
/// slot's [`TrafficCounters::generation`] is `generation`. A flow that outlives its port
/// keeps its reference, and must not count for the port that gets the slot next.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CounterRef {
    /// Slot (host order); 0 is never given out, and means "not counted" (masquerade).
    pub slot: u32,
    /// The slot's generation when the port was published (host order).
    pub generation: u32,
}

/// The owner of `netlab-cni`'s map entries for one CNI attachment: FNV-1a (64 bits) of
/// `container_id/ifname`, never 0 (0 marks a lab's entries). Stable across runs and builds,
/// since DEL and GC of a later plugin process must find what ADD wrote.
pub const fn owner_id(attachment: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < attachment.len() {
        hash ^= attachment[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    if hash == 0 { 1 } else { hash }
}

/// A connection's 5-tuple as it appears in one packet (ICMP echo: both ports hold the
/// identifier).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Source address (network order).
    pub src_ip: u32,
    /// Destination address (network order).
    pub dst_ip: u32,
    /// Source port or ICMP identifier (network order).
    pub src_port: u16,
    /// Destination port or ICMP identifier (network order).
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// Explicit padding, always 0.
    pub pad: [u8; 3],
}

/// Bits of [`CtEntry::flags`].
pub mod ct_flags {
    /// The flow's first packet came from outside (or a container) to a published port.
    pub const DNAT: u8 = 1;
    /// The flow is masqueraded (source rewritten to the host).
    pub const SNAT: u8 = 2;
    /// The flow never leaves the bridge: container to published port back to a container.
    pub const HAIRPIN: u8 = 4;
    /// This entry translates the reply direction.
    pub const REPLY: u8 = 8;
    /// A connection of the host node's own, from its external address: tracked so that
    /// masquerade never gives a container the same tuple (the rewrite is the identity unless
    /// the host's tuple had to be moved off a container's, as the kernel's NAT does).
    pub const HOST: u8 = 16;
    /// This direction of the flow carried a GSO segment (into a container in a forward
    /// entry, out of one in a reply entry): from then on, every packet of the flow in this
    /// direction takes the host's stack, not the fast path (see the datapath's
    /// `tc::via_stack`).
    pub const VIA_STACK: u8 = 32;
}

/// TCP progress of a flow, for its lifetime.
pub mod ct_state {
    pub const NEW: u8 = 0;
    pub const ESTABLISHED: u8 = 1;
    pub const CLOSING: u8 = 2;
}

/// How to rewrite a packet of one direction of a flow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtEntry {
    /// New source address (network order).
    pub src_ip: u32,
    /// New destination address (network order).
    pub dst_ip: u32,
    /// New source port or ICMP identifier (network order).
    pub src_port: u16,
    /// New destination port or ICMP identifier (network order).
    pub dst_port: u16,
    /// [`ct_flags`].
    pub flags: u8,
    /// [`ct_state`].
    pub state: u8,
    /// Explicit padding, always 0.
    pub pad: [u8; 2],
    /// The counters of the published port this flow belongs to (all zero for masquerade).
    pub counter: CounterRef,
    /// Last packet seen, `CLOCK_MONOTONIC_COARSE` in ns from `bpf_ktime_get_coarse_ns` (host order).
    pub last_seen_ns: u64,
}

/// A datagram's fragments: what the later fragments (which carry no ports) share with the
/// first one.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Source address (network order).
    pub src_ip: u32,
    /// Destination address (network order).
    pub dst_ip: u32,
    /// IP identification (network order).
    pub id: u16,
    /// IP protocol number.
    pub proto: u8,
    /// Explicit padding, always 0.
    pub pad: u8,
}

/// How to translate the later fragments of a datagram: its addresses only (the ports were
/// in the first fragment).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragEntry {
    /// New source address (network order).
    pub src_ip: u32,
    /// New destination address (network order).
    pub dst_ip: u32,
    /// [`ct_flags`] of the flow the first fragment belonged to (0: not translated).
    pub flags: u8,
    /// Explicit padding, always 0.
    pub pad: [u8; 3],
}

/// A container, as the datapath needs to hand it frames directly.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Index of the container's veth end in the host node (host order).
    pub host_ifindex: u32,
    /// MAC address of the container's own interface.
    pub mac: [u8; 6],
    /// Explicit padding, always 0.
    pub pad: [u8; 6],
    /// The CNI attachment that added it (host order; see [`PublishValue::owner`]).
    pub owner: u64,
}

/// A container as the fast path's cache holds it: a copy of its [`maps::CONTAINERS`] entry,
/// taken under one [`NatConfig::containers_generation`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CachedContainer {
    /// The container's address (network order); 0 for a place never filled.
    pub ip: u32,
    /// The generation it was read under (host order).
    pub generation: u32,
    pub info: ContainerInfo,
}

/// Packet and byte counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrafficCounters {
    /// Packets (host order).
    pub packets: u64,
    /// Bytes from the IP header on (host order).
    pub bytes: u64,
    /// Which publishing of a port owns the slot (host order; see [`CounterRef`]): the loader
    /// writes it, with zero counts, in every CPU's copy.
    pub generation: u32,
    /// Explicit padding, always 0.
    pub pad: u32,
}

/// A host process's socket and the container address it was sent to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockKey {
    /// `bpf_get_socket_cookie` (host order).
    pub cookie: u64,
    /// Container address (network order).
    pub ip: u32,
    /// Container port (network order).
    pub port: u16,
    /// Explicit padding, always 0.
    pub pad: u16,
}

/// The published address a host process asked for.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockOrig {
    /// Address (network order).
    pub ip: u32,
    /// Port (network order).
    pub port: u16,
    /// Explicit padding, always 0.
    pub pad: u16,
}

/// Indices of [`maps::STATS`]: what the datapath did and why it dropped or skipped.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// Packets translated (any direction).
    Translated = 0,
    /// Not IP, too short, or not TCP/UDP/ICMP: passed untouched.
    Skipped = 1,
    /// Later IPv4 fragments translated through the fragment map.
    Fragments = 2,
    /// Truncated headers: passed untouched.
    Truncated = 3,
    /// Masquerade found no free source port: dropped.
    SnatExhausted = 4,
    /// Masquerade had to move off the container's source port (taken).
    SnatCollisions = 5,
    /// A conntrack insert failed (map full and not LRU-evictable): dropped.
    CtInsertFailed = 6,
    /// A packet rewrite helper failed: dropped.
    RewriteFailed = 7,
    /// Packets handed straight to a veth by the fast path.
    FastPath = 8,
    /// Conntrack entries found expired and dropped.
    Expired = 9,
    /// ICMP errors whose inner header was translated.
    IcmpErrors = 10,
    /// Fragments that could not be translated (a later fragment before its first, or
    /// whose first was never seen): dropped rather than forwarded untranslated.
    FragmentsDropped = 11,
    /// Packets arriving on the external device from the container subnet or 127.0.0.0/8:
    /// dropped.
    Martians = 12,
    /// Packets from outside addressed straight to a container, not part of a translated
    /// flow (a neighbour routing the subnet via the host): dropped.
    DirectAccess = 13,
    /// Flow halves restored after the LRU evicted them while the other half was in use.
    CtRestored = 14,
    /// TCP/UDP packets to the external address that belong to no flow, no published port
    /// and no host socket (a reply to a flow the full table evicted, a scan): left to the
    /// host, which refuses them.
    Untracked = 15,
    /// Packets translated by the XDP program (also counted in `translated`).
    XdpTranslated = 16,
    /// Replies the fast path sent to a remembered next hop, without a FIB lookup (also
    /// counted in `fast_path`).
    NextHopRemembered = 17,
    /// Flow halves found orphaned (the other half's tuple taken by a new flow after this
    /// one lost it to the LRU): forgotten, and the packet started its flow anew.
    CtOrphaned = 18,
    /// IPv6 packets with more extension headers than the datapath walks: passed untouched.
    ExtHeaders = 19,
    /// TCP flows started anew in place: a SYN reused a closed flow's tuple and would have
    /// been translated as that flow was (same published port, container and source), so
    /// its two entries were reset instead of removed and inserted again.
    CtRestarted = 20,
}

/// Number of [`Stat`] slots.
pub const STAT_COUNT: u32 = 21;

impl Stat {
    /// All stats with their names, in index order.
    pub const ALL: [(Stat, &'static str); STAT_COUNT as usize] = [
        (Stat::Translated, "translated"),
        (Stat::Skipped, "skipped"),
        (Stat::Fragments, "fragments"),
        (Stat::Truncated, "truncated"),
        (Stat::SnatExhausted, "snat_exhausted"),
        (Stat::SnatCollisions, "snat_collisions"),
        (Stat::CtInsertFailed, "ct_insert_failed"),
        (Stat::RewriteFailed, "rewrite_failed"),
        (Stat::FastPath, "fast_path"),
        (Stat::Expired, "expired"),
        (Stat::IcmpErrors, "icmp_errors"),
        (Stat::FragmentsDropped, "fragments_dropped"),
        (Stat::Martians, "martians"),
        (Stat::DirectAccess, "direct_access"),
        (Stat::CtRestored, "ct_restored"),
        (Stat::Untracked, "untracked"),
        (Stat::XdpTranslated, "xdp_translated"),
        (Stat::NextHopRemembered, "next_hop_remembered"),
        (Stat::CtOrphaned, "ct_orphaned"),
        (Stat::ExtHeaders, "ext_headers"),
        (Stat::CtRestarted, "ct_restarted"),
    ];
}

/// Map sizes. The conntrack table's is the default of `netlab up --ct-entries`.
pub const CONNTRACK_MAX_ENTRIES: u32 = 262_144;
/// Datagrams in flight as fragments at once (an LRU: the oldest are forgotten first).
pub const FRAGMENTS_MAX_ENTRIES: u32 = 8192;
pub const PUBLISH_MAX_ENTRIES: u32 = 131_072;
/// Blocks of published port ranges (a range is at most 30 blocks; the trie is not
/// preallocated, so an unused entry costs nothing).
pub const PUBLISH_RANGES_MAX_ENTRIES: u32 = 8192;
/// Counter slots: one per publish map entry, one per range, and slot 0, which is never
/// given out.
pub const PORT_COUNTER_SLOTS: u32 = PUBLISH_MAX_ENTRIES + PUBLISH_RANGES_MAX_ENTRIES + 1;
pub const CONTAINERS_MAX_ENTRIES: u32 = 4096;
pub const SOCK_ORIG_MAX_ENTRIES: u32 = 65_536;
/// Places in each of the fast path's caches (next hops, containers), per CPU (a power of
/// two). Two addresses whose places collide take turns: each miss costs the lookup the
/// cache saves.
pub const CACHE_SLOTS: u32 = 4096;

/// The place of an address (network order) in the fast path's caches: a multiplicative
/// hash, so that neighbouring addresses spread.
#[expect(
    clippy::inline_always,
    reason = "two instructions on every fast-pathed reply: a BPF call would cost more"
)]
#[inline(always)]
pub const fn cache_slot(ip: u32) -> u32 {
    ip.wrapping_mul(0x9e37_79b1) >> (32 - CACHE_SLOTS.trailing_zeros())
}

/// Where a reply to one client leaves: what `bpf_fib_lookup` said, remembered so that an
/// established flow's replies need no FIB lookup.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NextHop {
    /// When it was learned: the flow's `last_seen_ns` then (host order).
    pub learned_ns: u64,
    /// The device to send on (host order).
    pub ifindex: u32,
    /// The client it leads to (network order); 0 for a place never filled.
    pub client: u32,
    /// The device's MTU (host order): a longer packet goes the FIB's way.
    pub mtu: u16,
    /// Ethernet destination (the next hop's MAC) and source (the device's).
    pub dmac: [u8; 6],
    pub smac: [u8; 6],
    /// Explicit padding, always 0.
    pub pad: [u8; 2],
}

/// Lifetimes of conntrack entries without traffic, in seconds, by protocol and TCP state
/// (`netlab up --ct-timeouts`; these defaults otherwise).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "user", serde(default, rename_all = "kebab-case"))]
pub struct CtTimeouts {
    /// A TCP flow before a packet without SYN went through (host order).
    pub tcp_syn: u32,
    /// An established TCP flow (host order).
    pub tcp_established: u32,
    /// A TCP flow after FIN or RST (host order).
    pub tcp_closing: u32,
    /// A UDP flow (host order).
    pub udp: u32,
    /// An ICMP echo flow (host order).
    pub icmp: u32,
    /// Explicit padding, always 0.
    #[cfg_attr(feature = "user", serde(skip))]
    pub pad: u32,
}

impl Default for CtTimeouts {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl CtTimeouts {
    /// As Cilium's defaults: SYN 60 s, established 6 h, closing 10 s, UDP 60 s, ICMP 30 s.
    pub const DEFAULT: Self = Self {
        tcp_syn: 60,
        tcp_established: 6 * 3600,
        tcp_closing: 10,
        udp: 60,
        icmp: 30,
        pad: 0,
    };

    /// How long an entry of a flow of protocol `proto` in [`ct_state`] `state` lives without
    /// traffic, in nanoseconds.
    #[inline]
    #[must_use]
    pub const fn lifetime_ns(&self, proto: u8, state: u8) -> u64 {
        let seconds = match (proto, state) {
            (6, ct_state::ESTABLISHED) => self.tcp_established,
            (6, ct_state::CLOSING) => self.tcp_closing,
            (6, _) => self.tcp_syn,
            (1, _) => self.icmp,
            _ => self.udp,
        };
        seconds as u64 * 1_000_000_000
    }
}

/// Masquerade source ports are picked from here when the container's own port is taken
/// (above the range people publish, as Cilium does).
pub const SNAT_PORT_MIN: u16 = 32768;
/// Attempts at a free masquerade port before giving up and counting exhaustion.
pub const SNAT_RETRIES: u32 = 32;

/// `skb->mark` of a packet the container-side fast path already translated and sent out of
/// the external device, so its egress program lets it go at once.
pub const MARK_TRANSLATED: u32 = 0x4e4c_0001;

/// XDP metadata (4 bytes before the frame, host order) of a frame the XDP program translated
/// for a container and passed on: the tc ingress program after it hands the frame on without
/// looking the flow up again. Only XDP programs write metadata, and ours starts from none.
pub const XDP_META_TRANSLATED: u32 = 0x4e4c_0002;

/// How often a UDP or ICMP flow whose half the LRU evicted may restore it (nanoseconds; TCP
/// flows restore theirs at once).
pub const CT_RESTORE_INTERVAL_NS: u64 = 1_000_000_000;

const _: () = assert!(size_of::<NatConfig>() == 64);
const _: () = assert!(size_of::<CtTimeouts>() == 24);
const _: () = assert!(size_of::<PublishKey>() == 8);
const _: () = assert!(size_of::<PublishValue>() == 24);
const _: () = assert!(size_of::<PortPrefix>() == 8);
const _: () = assert!(size_of::<PublishRange>() == 24);
const _: () = assert!(size_of::<CounterRef>() == 8);
const _: () = assert!(size_of::<FlowKey>() == 16);
const _: () = assert!(size_of::<CtEntry>() == 32);
const _: () = assert!(size_of::<ContainerInfo>() == 24);
const _: () = assert!(size_of::<FragKey>() == 12);
const _: () = assert!(size_of::<FragEntry>() == 12);
const _: () = assert!(size_of::<TrafficCounters>() == 24);
const _: () = assert!(size_of::<NextHop>() == 32);
const _: () = assert!(size_of::<CachedContainer>() == 32);
const _: () = assert!(size_of::<SockKey>() == 16);
const _: () = assert!(size_of::<SockOrig>() == 8);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C), integer and byte-array fields only, padding explicit (sizes
    // asserted above); the same holds for every type below.
    unsafe impl aya::Pod for super::NatConfig {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::PublishKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::PublishValue {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::PortPrefix {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::PublishRange {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::FlowKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::CtEntry {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::ContainerInfo {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::CtTimeouts {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::FragKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::FragEntry {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::TrafficCounters {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::CounterRef {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::SockKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::SockOrig {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::NextHop {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::CachedContainer {}
}
