//! IPv6 header layouts and parsing, by direct packet access as for IPv4. Extension headers
//! (hop-by-hop, routing, destination options, fragment) are walked to the upper-layer
//! header, at most [`EXT_HEADERS_MAX`] of them; a packet with more is passed untouched and
//! counted. Anything that is not TCP, UDP or ICMPv6 (or a fragment of one) is left alone.

use aya_ebpf::programs::TcContext;
use netlab_common::{
    nat::Stat,
    nat6::{FlowKey6, FragKey6, Ipv6Words, NatConfig6},
};

use super::{
    maps6::{in_subnet6, is_loopback6},
    packet::{ETH_HLEN, Frag, IPPROTO_TCP, IPPROTO_UDP, make_linear, skb_ptr_at},
};

pub const ETH_P_IPV6: u16 = 0x86dd;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
pub const ICMPV6_ECHO_REPLY: u8 = 129;

const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_DSTOPTS: u8 = 60;

/// Extension headers walked before giving up on a packet.
const EXT_HEADERS_MAX: usize = 4;

/// The IPv6 header's length.
pub const IPV6_HLEN: usize = 40;

/// Offsets inside the IPv6 header.
pub mod ip6 {
    pub const SADDR: usize = 8;
    pub const DADDR: usize = 24;
}

/// `struct ipv6hdr`, network byte order throughout.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Ipv6Hdr {
    pub ver_tc_flow: u32,
    pub payload_len: u16,
    pub next_header: u8,
    pub hop_limit: u8,
    pub saddr: Ipv6Words,
    pub daddr: Ipv6Words,
}

/// What a parsed IPv6 packet is, for the NAT.
#[derive(Clone, Copy)]
pub struct Packet6 {
    /// Offset of the TCP/UDP/ICMPv6 header (past the extension headers); the IPv6 header
    /// is at [`ETH_HLEN`].
    pub l4: u16,
    /// The flow as this packet shows it (ICMPv6 echo: the identifier in both ports).
    pub key: FlowKey6,
    /// TCP flags byte (0 for other protocols).
    pub tcp_flags: u8,
    /// ICMPv6 type (0 for other protocols).
    pub icmp_type: u8,
    /// Length from the IPv6 header on (host order).
    pub len: u16,
    pub hop_limit: u8,
    pub frag: Frag,
    /// The fragment header's identification (network order; 0 for a whole datagram).
    pub id: u32,
}

impl Packet6 {
    /// Offset of the upper-layer header.
    #[inline(always)]
    pub fn l4(&self) -> usize {
        usize::from(self.l4)
    }

    /// Offset of the upper-layer checksum (every one covers the addresses: ICMPv6's too).
    #[inline(always)]
    pub fn l4_csum_offset(&self) -> usize {
        self.l4()
            + match self.key.proto {
                IPPROTO_TCP => 16,
                IPPROTO_UDP => 6,
                _ => 2,
            }
    }

    /// Whether ports (or the echo identifier) can be rewritten.
    #[inline(always)]
    pub fn has_ports(&self) -> bool {
        self.frag != Frag::Later
            && (matches!(self.key.proto, IPPROTO_TCP | IPPROTO_UDP)
                || (self.key.proto == IPPROTO_ICMPV6
                    && matches!(self.icmp_type, ICMPV6_ECHO_REQUEST | ICMPV6_ECHO_REPLY)))
    }

    /// Whether the packet carries an upper-layer header with a checksum to keep right.
    #[inline(always)]
    pub fn has_l4(&self) -> bool {
        self.frag != Frag::Later
    }

    /// The key of this packet's datagram in the fragment map.
    #[inline(always)]
    pub fn frag_key(&self) -> FragKey6 {
        FragKey6 {
            src_ip: self.key.src_ip,
            dst_ip: self.key.dst_ip,
            id: self.id,
            proto: self.key.proto,
            pad: [0; 3],
        }
    }
}

/// The most the parser reads in one go: Ethernet, the IPv6 header, 16 bytes beyond.
const HEADERS_MAX: usize = ETH_HLEN + IPV6_HLEN + 16;

/// Parses an Ethernet + IPv6 (+ extension headers) + upper-layer header at the start of the
/// skb. With `wire`, the packet came in from the external link, where a source in the
/// container subnet or `::1` is a martian. The packet is written to `out`.
#[inline(always)]
pub fn parse6(ctx: &TcContext, wire: Option<&NatConfig6>, out: &mut Packet6) -> Result<(), Stat> {
    // 70 bytes: never more than a TCP segment's headers, so no payload is pulled (see
    // `packet::parse`).
    make_linear(ctx, HEADERS_MAX)?;
    let iph: *const Ipv6Hdr = skb_ptr_at(ctx, ETH_HLEN).ok_or(Stat::Truncated)?;
    // SAFETY: bounds checked by skb_ptr_at.
    let ip = unsafe { &*iph };
    if u32::from_be(ip.ver_tc_flow) >> 28 != 6 {
        return Err(Stat::Skipped);
    }
    if let Some(config) = wire
        && (in_subnet6(config, &ip.saddr) || is_loopback6(&ip.saddr))
    {
        return Err(Stat::Martians);
    }
    let load8 = |offset: usize| -> Result<[u8; 8], Stat> {
        // Extension headers can sit beyond the linear part: read them with a helper.
        ctx.load::<[u8; 8]>(offset).map_err(|_| Stat::Truncated)
    };
    let mut next = ip.next_header;
    let mut l4 = ETH_HLEN + IPV6_HLEN;
    let (mut frag, mut id) = (Frag::Whole, 0u32);
    for _ in 0..EXT_HEADERS_MAX {
        match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                let head = load8(l4)?;
                next = head[0];
                l4 += (usize::from(head[1]) + 1) * 8;
            }
            IPPROTO_FRAGMENT => {
                let head = load8(l4)?;
                next = head[0];
                let offset_flags = u16::from_be_bytes([head[2], head[3]]);
                frag = if offset_flags & 0xfff8 != 0 {
                    Frag::Later
                } else if offset_flags & 1 != 0 {
                    Frag::First
                } else {
                    Frag::Whole
                };
                id = u32::from_ne_bytes([head[4], head[5], head[6], head[7]]);
                l4 += 8;
            }
            _ => break,
        }
    }
    let key = &mut out.key;
    key.src_ip = ip.saddr;
    key.dst_ip = ip.daddr;
    key.src_port = 0;
    key.dst_port = 0;
    key.proto = next;
    key.pad = [0; 3];
    let (mut tcp_flags, mut icmp_type) = (0, 0);
    match next {
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMPV6 if frag == Frag::Later => {}
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMPV6 => {
            let head = load8(l4)?;
            if next == IPPROTO_ICMPV6 {
                icmp_type = head[0];
                if matches!(icmp_type, ICMPV6_ECHO_REQUEST | ICMPV6_ECHO_REPLY) {
                    let id = u16::from_ne_bytes([head[4], head[5]]);
                    key.src_port = id;
                    key.dst_port = id;
                }
            } else {
                key.src_port = u16::from_ne_bytes([head[0], head[1]]);
                key.dst_port = u16::from_ne_bytes([head[2], head[3]]);
            }
            if next == IPPROTO_TCP {
                tcp_flags = load8(l4 + 8)?[5];
            }
        }
        IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_FRAGMENT => {
            return Err(Stat::ExtHeaders);
        }
        _ => return Err(Stat::Skipped),
    }
    out.l4 = l4 as u16;
    out.tcp_flags = tcp_flags;
    out.icmp_type = icmp_type;
    out.len = u16::from_be(ip.payload_len).saturating_add(IPV6_HLEN as u16);
    out.hop_limit = ip.hop_limit;
    out.frag = frag;
    out.id = id;
    Ok(())
}
