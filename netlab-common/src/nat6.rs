//! Map keys and values of the eBPF NAT datapath's IPv6 side (NAT66), beside the IPv4 ones
//! of [`crate::nat`], which it shares the flags, the conntrack states, the statistics and
//! the per-port counters with.
//!
//! An IPv6 address is kept as it sits in the packet, 16 bytes in network order, held as four
//! 32-bit words ([`Ipv6Words`]): the datapath compares and copies words, and checksum
//! differences are taken a word at a time. The loader converts with
//! [`words_of`] and [`address_of`] (userspace only).

use crate::nat::CounterRef;

/// An IPv6 address as four 32-bit words, each in network order (the packet's bytes).
pub type Ipv6Words = [u32; 4];

/// Names of the IPv6 maps in the eBPF object (pinned by these names, like
/// [`crate::nat::maps`]).
pub mod maps {
    /// `Array<NatConfig6>`, one entry: the lab's IPv6 addresses; all zero in an IPv4-only
    /// lab, whose datapath then passes IPv6 untouched.
    pub const CONFIG6: &str = "NETLAB_NAT6_CONFIG";
    /// `HashMap<PublishKey6, PublishValue6>`: ports published in IPv6, single ports.
    pub const PUBLISH6: &str = "NETLAB_NAT6_PUBLISH";
    /// `LpmTrie<PortPrefix6, PublishRange6>`: port ranges published in IPv6, as blocks.
    pub const PUBLISH_RANGES6: &str = "NETLAB_NAT6_PUBLISH_RANGES";
    /// `LruHashMap<FlowKey6, CtEntry6>`: both directions of every translated IPv6 flow.
    pub const CONNTRACK6: &str = "NETLAB_NAT6_CT";
    /// `HashMap<Ipv6Words, ContainerInfo>`: containers by their IPv6 address (the
    /// [`crate::nat::ContainerInfo`] of their IPv4 address).
    pub const CONTAINERS6: &str = "NETLAB_NAT6_CONTAINERS";
    /// `LruHashMap<FragKey6, FragEntry6>`: how to translate later fragments.
    pub const FRAGMENTS6: &str = "NETLAB_NAT6_FRAGMENTS";
    /// `LruHashMap<SockKey6, SockOrig6>`: what a host process asked for, for `recvmsg6`.
    pub const SOCK_ORIG6: &str = "NETLAB_NAT6_SOCK_ORIG";

    /// Every IPv6 map.
    pub const ALL: [&str; 7] = [
        CONFIG6,
        PUBLISH6,
        PUBLISH_RANGES6,
        CONNTRACK6,
        CONTAINERS6,
        FRAGMENTS6,
        SOCK_ORIG6,
    ];
}

/// Names of the IPv6 cgroup programs (the tc and XDP programs carry both families).
pub mod programs {
    /// cgroup `connect6`: host processes connecting to a port published in IPv6.
    pub const SOCK_CONNECT6: &str = "netlab_sock_connect6";
    /// cgroup `sendmsg6`: host processes sending UDP to a port published in IPv6.
    pub const SOCK_SENDMSG6: &str = "netlab_sock_sendmsg6";
    /// cgroup `recvmsg6`: replies shown as coming from the published address.
    pub const SOCK_RECVMSG6: &str = "netlab_sock_recvmsg6";

    /// Every IPv6 program.
    pub const ALL: [&str; 3] = [SOCK_CONNECT6, SOCK_SENDMSG6, SOCK_RECVMSG6];
}

/// The lab's IPv6 addresses; index 0 of [`maps::CONFIG6`]. Switches, lifetimes and the
/// containers generation are the IPv4 config's.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatConfig6 {
    /// Host's external address.
    pub external_ip: Ipv6Words,
    /// Bridge address, the containers' gateway.
    pub gateway_ip: Ipv6Words,
    /// Container subnet's network address.
    pub subnet: Ipv6Words,
    /// Container subnet's mask.
    pub subnet_mask: Ipv6Words,
    /// 1 once written: the lab is dual-stack (host order).
    pub ready: u32,
    /// Explicit padding, always 0.
    pub pad: u32,
}

/// A port published in IPv6: which host address and port, for which protocol.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PublishKey6 {
    /// Host address; all zero means every host address but the bridge's.
    pub ip: Ipv6Words,
    /// Host port (network order).
    pub port: u16,
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    /// Explicit padding, always 0.
    pub pad: u8,
}

/// Where a port published in IPv6 leads.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishValue6 {
    /// Who published it, as [`crate::nat::PublishValue::owner`] (host order).
    pub owner: u64,
    /// Where its traffic is counted: the spec's slot, shared with its IPv4 side.
    pub counter: CounterRef,
    /// Container address.
    pub ip: Ipv6Words,
    /// Container port (network order).
    pub port: u16,
    /// Explicit padding, always 0.
    pub pad: [u8; 6],
}

/// The data of a key of [`maps::PUBLISH_RANGES6`], as [`crate::nat::PortPrefix`] is for
/// IPv4: the fields a block matches in full first ([`PORT_PREFIX6_FIXED_BITS`]), then the
/// port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortPrefix6 {
    /// Host address; all zero means every host address but the bridge's.
    pub ip: Ipv6Words,
    /// IP protocol number.
    pub proto: u8,
    /// Explicit padding, always 0.
    pub pad: u8,
    /// Host port (network order).
    pub port: u16,
}

/// Bits of a [`PortPrefix6`] before its port.
pub const PORT_PREFIX6_FIXED_BITS: u32 = 144;

/// Where a range published in IPv6 leads, as [`crate::nat::PublishRange`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishRange6 {
    /// Who published it (host order).
    pub owner: u64,
    /// The range's counters.
    pub counter: CounterRef,
    /// Container address.
    pub ip: Ipv6Words,
    /// The range's first host port (host order).
    pub host_start: u16,
    /// The container port of `host_start` (host order).
    pub container_start: u16,
    /// Explicit padding, always 0.
    pub pad: u32,
}

impl PublishRange6 {
    /// Where `host_port` (host order, inside the range) leads.
    #[expect(
        clippy::inline_always,
        reason = "called on a new flow's first packet: cheaper inlined than as a BPF call"
    )]
    #[inline(always)]
    pub fn target(&self, host_port: u16) -> PublishValue6 {
        let port = self
            .container_start
            .wrapping_add(host_port.wrapping_sub(self.host_start));
        PublishValue6 {
            owner: self.owner,
            counter: self.counter,
            ip: self.ip,
            port: port.to_be(),
            pad: [0; 6],
        }
    }
}

/// An IPv6 connection's 5-tuple as one packet shows it (ICMPv6 echo: both ports hold the
/// identifier).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey6 {
    /// Source address.
    pub src_ip: Ipv6Words,
    /// Destination address.
    pub dst_ip: Ipv6Words,
    /// Source port or ICMPv6 identifier (network order).
    pub src_port: u16,
    /// Destination port or ICMPv6 identifier (network order).
    pub dst_port: u16,
    /// IP protocol number (58 for ICMPv6).
    pub proto: u8,
    /// Explicit padding, always 0.
    pub pad: [u8; 3],
}

/// How to rewrite a packet of one direction of an IPv6 flow, as [`crate::nat::CtEntry`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtEntry6 {
    /// New source address.
    pub src_ip: Ipv6Words,
    /// New destination address.
    pub dst_ip: Ipv6Words,
    /// New source port or ICMPv6 identifier (network order).
    pub src_port: u16,
    /// New destination port or ICMPv6 identifier (network order).
    pub dst_port: u16,
    /// [`crate::nat::ct_flags`].
    pub flags: u8,
    /// [`crate::nat::ct_state`].
    pub state: u8,
    /// Explicit padding, always 0.
    pub pad: [u8; 2],
    /// The counters of the published port this flow belongs to.
    pub counter: CounterRef,
    /// Last packet seen, `CLOCK_MONOTONIC_COARSE` in ns (host order).
    pub last_seen_ns: u64,
}

/// An IPv6 datagram's fragments: what the later ones share with the first.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragKey6 {
    /// Source address.
    pub src_ip: Ipv6Words,
    /// Destination address.
    pub dst_ip: Ipv6Words,
    /// The fragment header's identification (network order).
    pub id: u32,
    /// The upper-layer protocol.
    pub proto: u8,
    /// Explicit padding, always 0.
    pub pad: [u8; 3],
}

/// How to translate the later fragments of an IPv6 datagram: its addresses only.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragEntry6 {
    /// New source address.
    pub src_ip: Ipv6Words,
    /// New destination address.
    pub dst_ip: Ipv6Words,
    /// [`crate::nat::ct_flags`] of the first fragment's flow (0: not translated).
    pub flags: u8,
    /// Explicit padding, always 0.
    pub pad: [u8; 3],
}

/// A host process's socket and the container address it was sent to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockKey6 {
    /// `bpf_get_socket_cookie` (host order).
    pub cookie: u64,
    /// Container address.
    pub ip: Ipv6Words,
    /// Container port (network order).
    pub port: u16,
    /// Explicit padding, always 0.
    pub pad: [u8; 6],
}

/// The published address a host process asked for.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockOrig6 {
    /// Address.
    pub ip: Ipv6Words,
    /// Port (network order).
    pub port: u16,
    /// Explicit padding, always 0.
    pub pad: u16,
}

/// The words of an IPv6 address, as the datapath keeps them.
#[cfg(feature = "user")]
#[must_use]
pub fn words_of(ip: core::net::Ipv6Addr) -> Ipv6Words {
    let o = ip.octets();
    core::array::from_fn(|i| {
        u32::from_ne_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
    })
}

/// The IPv6 address of words the datapath keeps.
#[cfg(feature = "user")]
#[must_use]
pub fn address_of(words: Ipv6Words) -> core::net::Ipv6Addr {
    let mut octets = [0u8; 16];
    for (i, word) in words.iter().enumerate() {
        octets[4 * i..4 * i + 4].copy_from_slice(&word.to_ne_bytes());
    }
    core::net::Ipv6Addr::from(octets)
}

const _: () = assert!(size_of::<NatConfig6>() == 72);
const _: () = assert!(size_of::<PublishKey6>() == 20);
const _: () = assert!(size_of::<PublishValue6>() == 40);
const _: () = assert!(size_of::<PortPrefix6>() == 20);
const _: () = assert!(size_of::<PublishRange6>() == 40);
const _: () = assert!(size_of::<FlowKey6>() == 40);
const _: () = assert!(size_of::<CtEntry6>() == 56);
const _: () = assert!(size_of::<FragKey6>() == 40);
const _: () = assert!(size_of::<FragEntry6>() == 36);
const _: () = assert!(size_of::<SockKey6>() == 32);
const _: () = assert!(size_of::<SockOrig6>() == 20);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C), integer and array fields only, padding explicit (sizes asserted
    // above); the same holds for every type below.
    unsafe impl aya::Pod for super::NatConfig6 {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::PublishKey6 {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::PublishValue6 {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::PortPrefix6 {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::PublishRange6 {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::FlowKey6 {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::CtEntry6 {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::FragKey6 {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::FragEntry6 {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::SockKey6 {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::SockOrig6 {}
}

#[cfg(all(test, feature = "user"))]
mod tests {
    #[test]
    fn words_keep_the_packet_bytes() {
        let ip: core::net::Ipv6Addr = "fd00:172:18::10".parse().expect("address");
        let words = super::words_of(ip);
        assert_eq!(words[0].to_ne_bytes(), [0xfd, 0x00, 0x01, 0x72]);
        assert_eq!(super::address_of(words), ip);
    }
}
