//! ICMPv6 errors (destination unreachable, packet too big, time exceeded, parameter
//! problem) about a translated flow, translated back as the IPv4 side's `icmp` does: the
//! quoted header's addresses and ports (or echo identifier), the quoted upper-layer checksum
//! that covers them, and the outer ICMPv6 checksum, which covers the quote and, unlike
//! ICMPv4's, the outer addresses too (pseudo header).

use aya_ebpf::{bindings::BPF_F_PSEUDO_HDR, programs::TcContext};
use netlab_common::{
    nat::{Stat, ct_flags},
    nat6::Ipv6Words,
};

use super::{
    csum, ct,
    maps::count,
    packet::{ETH_HLEN, IPPROTO_TCP, IPPROTO_UDP},
    packet6::{
        ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST, IPPROTO_ICMPV6, IPV6_HLEN, Ipv6Hdr, Packet6, ip6,
    },
    tc6::{Scratch6, address_diff},
};

const ICMPV6_DEST_UNREACH: u8 = 1;
const ICMPV6_PARAMETER_PROBLEM: u8 = 4;
/// Offset of the quoted IPv6 header inside the ICMPv6 message.
const ICMPV6_QUOTE: usize = 8;

/// Whether `pkt` is an ICMPv6 error.
#[inline(always)]
pub fn is_error(pkt: &Packet6) -> bool {
    pkt.key.proto == IPPROTO_ICMPV6
        && (ICMPV6_DEST_UNREACH..=ICMPV6_PARAMETER_PROBLEM).contains(&pkt.icmp_type)
}

/// Translates the ICMPv6 error in `s.pkt` if it is about one of our flows (with
/// `ONLY_HAIRPIN`, about a hairpin flow), its new outer destination in `s.dst`; `false` when
/// the error is about no such flow (it then passes untouched). The quoted flow's tuple and
/// entry go to `s.key` and `s.entry`.
#[inline(never)]
pub fn translate_error<const ONLY_HAIRPIN: bool>(
    ctx: &TcContext,
    s: &mut Scratch6,
) -> Result<bool, Stat> {
    let pkt = &s.pkt;
    if !pkt.has_l4() {
        return Ok(false);
    }
    let inner_l3 = pkt.l4() + ICMPV6_QUOTE;
    let inner: Ipv6Hdr = ctx.load(inner_l3).map_err(|_| Stat::Truncated)?;
    if u32::from_be(inner.ver_tc_flow) >> 28 != 6 {
        return Ok(false);
    }
    // The quote of a packet with extension headers is not walked: passed untouched.
    let inner_l4 = inner_l3 + IPV6_HLEN;
    let head: [u8; 8] = ctx.load(inner_l4).map_err(|_| Stat::Truncated)?;
    let proto = inner.next_header;
    let inner_echo =
        proto == IPPROTO_ICMPV6 && matches!(head[0], ICMPV6_ECHO_REQUEST | ICMPV6_ECHO_REPLY);
    let ports = match proto {
        IPPROTO_TCP | IPPROTO_UDP => [
            u16::from_ne_bytes([head[0], head[1]]),
            u16::from_ne_bytes([head[2], head[3]]),
        ],
        _ if inner_echo => [u16::from_ne_bytes([head[4], head[5]]); 2],
        _ => return Ok(false),
    };
    let key = &mut s.key;
    key.src_ip = inner.daddr;
    key.dst_ip = inner.saddr;
    key.src_port = ports[1];
    key.dst_port = ports[0];
    key.proto = proto;
    key.pad = [0; 3];
    if !ct::lookup_into(&s.key, None, &mut s.entry) {
        return Ok(false);
    }
    let (pkt, key, entry) = (&s.pkt, &s.key, &s.entry);
    if ONLY_HAIRPIN && entry.flags & ct_flags::HAIRPIN == 0 {
        return Ok(false);
    }
    let icmp_csum = pkt.l4() + 2;
    // The quoted upper-layer checksum (it covers the quoted addresses), and whether it is
    // UDP's (0 means none, and a sum that comes out 0 is written 0xffff).
    let quoted_csum = match proto {
        IPPROTO_UDP if head[6] | head[7] != 0 => Some((inner_l4 + 6, true)),
        IPPROTO_TCP if ctx.len() as usize >= inner_l4 + 20 => Some((inner_l4 + 16, false)),
        IPPROTO_ICMPV6 => Some((inner_l4 + 2, false)),
        _ => None,
    };
    // The quote's addresses: its source is the flow's rewritten destination, and so on.
    let quote = Quote {
        icmp_csum,
        quoted_csum,
    };
    quote.rewrite_address(ctx, inner_l3 + ip6::SADDR, &key.dst_ip, &entry.dst_ip)?;
    quote.rewrite_address(ctx, inner_l3 + ip6::DADDR, &key.src_ip, &entry.src_ip)?;
    // The quoted packet's source port is its flow's, its destination port the peer's; an
    // echo has its identifier instead.
    if inner_echo {
        quote.rewrite_port(ctx, inner_l4 + 4, ports[0], entry.dst_port)?;
    } else {
        quote.rewrite_port(ctx, inner_l4, ports[0], entry.dst_port)?;
        quote.rewrite_port(ctx, inner_l4 + 2, ports[1], entry.src_port)?;
    }
    // Outer addresses: the error goes to the original sender, and an error raised by the
    // flow's peer itself appears to come from the address the sender talked to.
    s.dst = pkt.key.dst_ip;
    if pkt.key.dst_ip == key.dst_ip && pkt.key.dst_ip != entry.dst_ip {
        rewrite_outer(
            ctx,
            icmp_csum,
            ETH_HLEN + ip6::DADDR,
            &pkt.key.dst_ip,
            &entry.dst_ip,
        )?;
        s.dst = s.entry.dst_ip;
    }
    if pkt.key.src_ip == key.src_ip && pkt.key.src_ip != entry.src_ip {
        rewrite_outer(
            ctx,
            icmp_csum,
            ETH_HLEN + ip6::SADDR,
            &pkt.key.src_ip,
            &entry.src_ip,
        )?;
    }
    count(Stat::IcmpErrors);
    Ok(true)
}

/// Rewrites an outer address at `at` from `old` to `new`, and the ICMPv6 checksum at
/// `icmp_csum`, which covers it through the pseudo header.
#[inline(always)]
fn rewrite_outer(
    ctx: &TcContext,
    icmp_csum: usize,
    at: usize,
    old: &Ipv6Words,
    new: &Ipv6Words,
) -> Result<(), Stat> {
    let failed = |_| Stat::RewriteFailed;
    ctx.store(at, new, 0).map_err(failed)?;
    ctx.l4_csum_replace(
        icmp_csum,
        0,
        u64::from(address_diff(old, new)),
        u64::from(BPF_F_PSEUDO_HDR),
    )
    .map_err(failed)
}

/// Where a quoted packet's checksums are: the outer ICMPv6 one, which covers the whole quote,
/// and the quoted upper-layer one (and whether it is UDP's), when the quote has it.
struct Quote {
    icmp_csum: usize,
    quoted_csum: Option<(usize, bool)>,
}

impl Quote {
    /// Rewrites a quoted address at `at` from `old` to `new`.
    #[inline(always)]
    fn rewrite_address(
        &self,
        ctx: &TcContext,
        at: usize,
        old: &Ipv6Words,
        new: &Ipv6Words,
    ) -> Result<(), Stat> {
        if old == new {
            return Ok(());
        }
        let failed = |_| Stat::RewriteFailed;
        let diff = address_diff(old, new);
        ctx.store(at, new, 0).map_err(failed)?;
        ctx.l4_csum_replace(self.icmp_csum, 0, u64::from(diff), 0)
            .map_err(failed)?;
        self.update_quoted_csum(ctx, diff)
    }

    /// Rewrites a quoted port (or echo identifier) at `at` from `old` to `new`.
    #[inline(always)]
    fn rewrite_port(&self, ctx: &TcContext, at: usize, old: u16, new: u16) -> Result<(), Stat> {
        if old == new {
            return Ok(());
        }
        let failed = |_| Stat::RewriteFailed;
        ctx.store(at, &new, 0).map_err(failed)?;
        ctx.l4_csum_replace(self.icmp_csum, u64::from(old), u64::from(new), 2)
            .map_err(failed)?;
        self.update_quoted_csum(ctx, csum::diff16(old, new))
    }

    /// Updates the quoted checksum, when there is one, for covered fields whose change sums
    /// to `diff`, and folds its own change into the outer ICMPv6 checksum.
    #[inline(always)]
    fn update_quoted_csum(&self, ctx: &TcContext, diff: u32) -> Result<(), Stat> {
        let Some((at, udp)) = self.quoted_csum else {
            return Ok(());
        };
        let failed = |_| Stat::RewriteFailed;
        let before: u16 = ctx.load(at).map_err(failed)?;
        let mut after = csum::update_by_diff(before, diff);
        if udp && after == 0 {
            after = 0xffff;
        }
        ctx.store(at, &after, 0).map_err(failed)?;
        ctx.l4_csum_replace(self.icmp_csum, u64::from(before), u64::from(after), 2)
            .map_err(failed)
    }
}
