//! Header layouts and parsing, by direct packet access (tc pulls the headers into the linear
//! part first when they are not there). Anything that is not an IPv4 TCP/UDP/ICMP packet (or
//! a fragment of one) is reported as such and left alone by the callers.

use aya_ebpf::programs::TcContext;
use netlab_common::nat::{CtEntry, FlowKey, FragKey, NatConfig, Stat};

use super::csum;

pub const ETH_HLEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_ECHO_REQUEST: u8 = 8;

/// Offsets inside the IPv4 header.
pub mod ip {
    pub const CHECK: usize = 10;
    pub const SADDR: usize = 12;
    pub const DADDR: usize = 16;
}

/// `struct iphdr`, network byte order throughout.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Ipv4Hdr {
    pub ver_ihl: u8,
    pub tos: u8,
    pub tot_len: u16,
    pub id: u16,
    pub frag_off: u16,
    pub ttl: u8,
    pub proto: u8,
    pub check: u16,
    pub saddr: u32,
    pub daddr: u32,
}

/// Where a packet stands in its datagram.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Frag {
    /// A whole datagram.
    Whole,
    /// The first fragment: it carries the L4 header (whose checksum covers the whole
    /// datagram, so an incremental update stays right).
    First,
    /// A later fragment: addresses only, no ports.
    Later,
}

/// What a parsed packet is, for the NAT.
#[derive(Clone, Copy)]
pub struct Packet {
    /// Offset of the IPv4 header.
    pub l3: usize,
    /// Offset of the TCP/UDP/ICMP header.
    pub l4: usize,
    /// The flow as this packet shows it (ICMP echo: the identifier in both ports).
    pub key: FlowKey,
    /// TCP flags byte (0 for other protocols).
    pub tcp_flags: u8,
    /// ICMP type (0 for other protocols).
    pub icmp_type: u8,
    /// IP total length (host order).
    pub len: u16,
    /// Time to live.
    pub ttl: u8,
    /// Fragment or whole datagram.
    pub frag: Frag,
    /// IP identification (network order), which ties fragments together.
    pub id: u16,
}

impl Packet {
    /// Offset of the L4 checksum.
    #[inline(always)]
    pub fn l4_csum_offset(&self) -> usize {
        self.l4
            + match self.key.proto {
                IPPROTO_TCP => 16,
                IPPROTO_UDP => 6,
                _ => 2,
            }
    }

    /// Whether ports (or the ICMP identifier) can be rewritten.
    #[inline(always)]
    pub fn has_ports(&self) -> bool {
        self.frag != Frag::Later
            && (matches!(self.key.proto, IPPROTO_TCP | IPPROTO_UDP)
                || (self.key.proto == IPPROTO_ICMP
                    && matches!(self.icmp_type, ICMP_ECHO_REQUEST | ICMP_ECHO_REPLY)))
    }

    /// The key of this packet's datagram in the fragment map.
    #[inline(always)]
    pub fn frag_key(&self) -> FragKey {
        FragKey {
            src_ip: self.key.src_ip,
            dst_ip: self.key.dst_ip,
            id: self.id,
            proto: self.key.proto,
            pad: 0,
        }
    }
}

/// Whether `ip` (network order) is in the container subnet.
#[inline(always)]
pub fn in_subnet(config: &NatConfig, ip: u32) -> bool {
    ip & config.subnet_mask == config.subnet
}

/// Whether `ip` (network order) is a container's address: in the subnet, not the bridge's.
#[inline(always)]
pub fn to_container(config: &NatConfig, ip: u32) -> bool {
    in_subnet(config, ip) && ip != config.gateway_ip
}

/// Whether `ip` (network order) is in 127.0.0.0/8.
#[inline(always)]
pub fn is_loopback(ip: u32) -> bool {
    u32::from_be(ip) >> 24 == 127
}

/// Why a packet was not parsed.
pub type Skip = Stat;

/// A pointer to a `T` at `offset` in the packet `data..data_end`, if it is long enough.
#[inline(always)]
pub fn ptr_at<T>(data: usize, data_end: usize, offset: usize) -> Option<*mut T> {
    if data + offset + size_of::<T>() > data_end {
        return None;
    }
    Some((data + offset) as *mut T)
}

/// [`ptr_at`] in an skb's linear data.
#[inline(always)]
pub fn skb_ptr_at<T>(ctx: &TcContext, offset: usize) -> Option<*mut T> {
    ptr_at(ctx.data(), ctx.data_end(), offset)
}

/// The most the parser reads: Ethernet, an IPv4 header with options, 16 bytes of L4.
const HEADERS_MAX: usize = ETH_HLEN + 60 + 16;

/// Ethernet and the fixed part of the IPv4 header, which tell how far the parser reads.
const IP_FIXED: usize = ETH_HLEN + 20;

/// How much of the L4 header the parser reads: TCP's flags are its byte 13; UDP's and
/// ICMP's first 8 bytes hold what it needs.
#[inline(always)]
fn l4_read(proto: u8) -> usize {
    if proto == IPPROTO_TCP { 16 } else { 8 }
}

/// Puts the first `len` bytes of the packet (or all it has) in the skb's linear part,
/// unless they are there already.
#[inline(always)]
pub fn make_linear(ctx: &TcContext, len: usize) -> Result<(), Skip> {
    if ctx.data() + len <= ctx.data_end() {
        return Ok(());
    }
    let want = core::cmp::min(len as u32, ctx.len());
    if ctx.data() + want as usize > ctx.data_end() {
        ctx.pull_data(want).map_err(|_| Stat::Truncated)?;
    }
    Ok(())
}

/// Parses an Ethernet + IPv4 + L4 header at the start of the skb. With `wire`, the packet
/// came in from the external link, where a source in the container subnet or in loopback is
/// a martian.
#[inline(always)]
pub fn parse(ctx: &TcContext, wire: Option<&NatConfig>) -> Result<Packet, Skip> {
    // The headers are in the linear part on veth; when they are not, pulls put them there,
    // and nothing after them. A TCP segment from a local socket has its headers alone in the
    // linear part of a cloned skb: pulling payload bytes too would copy that head and leave
    // payload in it, and the receiving socket could no longer merge the segment into the
    // one before it (`skb_try_coalesce`), which cost bulk TCP a sixth of its throughput.
    if ctx.data() + HEADERS_MAX > ctx.data_end() {
        make_linear(ctx, IP_FIXED)?;
        if let Some(iph) = skb_ptr_at::<Ipv4Hdr>(ctx, ETH_HLEN) {
            // SAFETY: bounds checked by skb_ptr_at.
            let (ver_ihl, proto) = unsafe { ((*iph).ver_ihl, (*iph).proto) };
            let ihl = usize::from(ver_ihl & 0x0f) * 4;
            make_linear(ctx, ETH_HLEN + ihl + l4_read(proto))?;
        }
    }
    let ethertype: *const u16 = skb_ptr_at(ctx, 12).ok_or(Stat::Truncated)?;
    // SAFETY: bounds checked by skb_ptr_at.
    if u16::from_be(unsafe { *ethertype }) != ETH_P_IP {
        return Err(Stat::Skipped);
    }
    let iph: *const Ipv4Hdr = skb_ptr_at(ctx, ETH_HLEN).ok_or(Stat::Truncated)?;
    // SAFETY: bounds checked by skb_ptr_at.
    parse_ip(unsafe { *iph }, ETH_HLEN, wire, |offset| {
        // SAFETY: bounds checked by skb_ptr_at.
        skb_ptr_at::<[u8; 8]>(ctx, offset).map(|p| unsafe { *p })
    })
}

/// The L3/L4 part of parsing, shared with XDP: `load8` reads 8 bytes at an offset, or
/// `None` when the packet is shorter.
#[inline(always)]
pub fn parse_ip(
    ip: Ipv4Hdr,
    l3: usize,
    wire: Option<&NatConfig>,
    load8: impl Fn(usize) -> Option<[u8; 8]>,
) -> Result<Packet, Skip> {
    if ip.ver_ihl >> 4 != 4 {
        return Err(Stat::Skipped);
    }
    let ihl = usize::from(ip.ver_ihl & 0x0f) * 4;
    if ihl < 20 {
        return Err(Stat::Truncated);
    }
    if let Some(config) = wire
        && (in_subnet(config, ip.saddr) || is_loopback(ip.saddr))
    {
        return Err(Stat::Martians);
    }
    // Fragment offset, then "more fragments".
    let frag_off = u16::from_be(ip.frag_off);
    let frag = if frag_off & 0x1fff != 0 {
        Frag::Later
    } else if frag_off & 0x2000 != 0 {
        Frag::First
    } else {
        Frag::Whole
    };
    let l4 = l3 + ihl;
    let mut key = FlowKey {
        src_ip: ip.saddr,
        dst_ip: ip.daddr,
        src_port: 0,
        dst_port: 0,
        proto: ip.proto,
        pad: [0; 3],
    };
    let (mut tcp_flags, mut icmp_type) = (0, 0);
    match ip.proto {
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMP if frag == Frag::Later => {}
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMP => {
            let head = load8(l4).ok_or(Stat::Truncated)?;
            if ip.proto == IPPROTO_ICMP {
                icmp_type = head[0];
                if matches!(icmp_type, ICMP_ECHO_REQUEST | ICMP_ECHO_REPLY) {
                    let id = u16::from_ne_bytes([head[4], head[5]]);
                    key.src_port = id;
                    key.dst_port = id;
                }
            } else {
                key.src_port = u16::from_ne_bytes([head[0], head[1]]);
                key.dst_port = u16::from_ne_bytes([head[2], head[3]]);
            }
            if ip.proto == IPPROTO_TCP {
                // Bytes 8..16 of the (at least 20-byte) TCP header; flags are byte 13.
                tcp_flags = load8(l4 + 8).ok_or(Stat::Truncated)?[5];
            }
        }
        _ => return Err(Stat::Skipped),
    }
    Ok(Packet {
        l3,
        l4,
        key,
        tcp_flags,
        icmp_type,
        len: u16::from_be(ip.tot_len),
        ttl: ip.ttl,
        frag,
        id: ip.id,
    })
}

/// Rewrites the IPv4 addresses of a packet showing `k` to `to`'s, with the header checksum.
#[inline(always)]
pub fn rewrite_addresses(iph: &mut Ipv4Hdr, k: &FlowKey, to: &CtEntry) {
    for (field, old, new) in [
        (&mut iph.saddr, k.src_ip, to.src_ip),
        (&mut iph.daddr, k.dst_ip, to.dst_ip),
    ] {
        if old != new {
            iph.check = csum::update(iph.check, &old.to_ne_bytes(), &new.to_ne_bytes());
            *field = new;
        }
    }
}

/// Decrements the TTL in place, with the header checksum (TTL and protocol share a word).
#[inline(always)]
pub fn decrement_ttl(iph: &mut Ipv4Hdr) {
    let old = [iph.ttl, iph.proto];
    iph.ttl -= 1;
    iph.check = csum::update(iph.check, &old, &[iph.ttl, iph.proto]);
}
