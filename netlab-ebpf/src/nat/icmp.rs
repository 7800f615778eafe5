//! ICMP errors (destination unreachable, time exceeded, parameter problem) about a
//! translated flow quote the packet as it was on the wire where the error arose. For the
//! sender's socket to get the error, the quoted (inner) header is translated back, with the
//! outer addresses, as the kernel's NAT does: the quoted addresses and ports (or echo
//! identifier), and every checksum that covers them — the quoted IP header's, the quoted
//! TCP/UDP checksum when the quote holds it (a UDP one that is not 0; a TCP one when the
//! whole TCP header is quoted, as Linux's `tcp_manip_pkt` does), and the outer ICMP one.

use aya_ebpf::programs::TcContext;
use netlab_common::nat::{FlowKey, Stat, ct_flags};

use super::{
    ct,
    maps::count,
    packet::{
        ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Ipv4Hdr,
        Packet, ip,
    },
};

const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_PARAMETER_PROBLEM: u8 = 12;
/// Offset of the quoted IP header inside the ICMP message.
const ICMP_QUOTE: usize = 8;

/// Whether `pkt` is an ICMP error (which has no identifier to translate).
#[inline(always)]
pub fn is_error(pkt: &Packet) -> bool {
    pkt.key.proto == IPPROTO_ICMP
        && matches!(
            pkt.icmp_type,
            ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAMETER_PROBLEM
        )
}

/// Translates an ICMP error about one of our flows (with `only_hairpin`, about a hairpin
/// flow); returns the new outer destination, or `None` when the error is about no such flow
/// (it then passes untouched).
#[inline(always)]
pub fn translate_error(
    ctx: &TcContext,
    pkt: &Packet,
    only_hairpin: bool,
) -> Result<Option<u32>, Stat> {
    let inner_l3 = pkt.l4 + ICMP_QUOTE;
    let inner: Ipv4Hdr = ctx.load(inner_l3).map_err(|_| Stat::Truncated)?;
    let ihl = usize::from(inner.ver_ihl & 0x0f) * 4;
    if inner.ver_ihl >> 4 != 4 || ihl < 20 {
        return Ok(None);
    }
    let inner_l4 = inner_l3 + ihl;
    // RFC 792: at least the first 8 bytes of the original datagram's payload are quoted.
    let head: [u8; 8] = ctx.load(inner_l4).map_err(|_| Stat::Truncated)?;
    let inner_echo =
        inner.proto == IPPROTO_ICMP && matches!(head[0], ICMP_ECHO_REQUEST | ICMP_ECHO_REPLY);
    let ports = match inner.proto {
        IPPROTO_TCP | IPPROTO_UDP => [
            u16::from_ne_bytes([head[0], head[1]]),
            u16::from_ne_bytes([head[2], head[3]]),
        ],
        // An echo's flow is keyed by its identifier in both "ports".
        _ if inner_echo => [u16::from_ne_bytes([head[4], head[5]]); 2],
        _ => return Ok(None),
    };
    // The error travels back along the quoted packet's path: find the flow as its reply.
    let key = FlowKey {
        src_ip: inner.daddr,
        dst_ip: inner.saddr,
        src_port: ports[1],
        dst_port: ports[0],
        proto: inner.proto,
        pad: [0; 3],
    };
    let Some(entry) = ct::lookup_key(&key, None) else {
        return Ok(None);
    };
    if only_hairpin && entry.flags & ct_flags::HAIRPIN == 0 {
        return Ok(None);
    }
    let failed = |_| Stat::RewriteFailed;
    let icmp_csum = pkt.l4 + 2;
    // What the original sender sent: the reply's rewrite, reversed.
    let (new_src, new_dst, new_src_port, new_dst_port) =
        (entry.dst_ip, entry.src_ip, entry.dst_port, entry.src_port);
    // The quoted TCP/UDP checksum, when there is one, and whether it is UDP's.
    let quoted_l4_csum = match inner.proto {
        IPPROTO_UDP if head[6] | head[7] != 0 => Some((inner_l4 + 6, true)),
        IPPROTO_TCP if ctx.len() as usize >= inner_l4 + 20 => Some((inner_l4 + 16, false)),
        _ => None,
    };

    // Inner addresses: their own header checksum changes, the quoted L4 checksum too (its
    // pseudo header holds them), and the ICMP checksum covers all of it.
    for (offset, old, new) in [
        (ip::SADDR, inner.saddr, new_src),
        (ip::DADDR, inner.daddr, new_dst),
    ] {
        if old != new {
            rewrite_covered(
                ctx,
                inner_l3 + offset,
                inner_l3 + ip::CHECK,
                icmp_csum,
                old,
                new,
            )?;
            if let Some((csum, udp)) = quoted_l4_csum {
                update_quoted_csum(ctx, csum, icmp_csum, old, new, udp)?;
            }
        }
    }
    rewrite_quoted_l4(
        ctx,
        inner_l4,
        icmp_csum,
        inner_echo,
        quoted_l4_csum,
        ports,
        [new_src_port, new_dst_port],
    )?;

    // Outer addresses: the error goes to the original sender, and an error raised by the
    // flow's peer itself appears to come from the address the sender talked to.
    let mut outer_dst = pkt.key.dst_ip;
    for (offset, old, new, applies) in [
        (
            ip::DADDR,
            pkt.key.dst_ip,
            new_src,
            pkt.key.dst_ip == key.dst_ip,
        ),
        (
            ip::SADDR,
            pkt.key.src_ip,
            new_dst,
            pkt.key.src_ip == key.src_ip,
        ),
    ] {
        if applies && old != new {
            ctx.l3_csum_replace(pkt.l3 + ip::CHECK, u64::from(old), u64::from(new), 4)
                .map_err(failed)?;
            ctx.store(pkt.l3 + offset, &new, 0).map_err(failed)?;
            if offset == ip::DADDR {
                outer_dst = new;
            }
        }
    }
    count(Stat::IcmpErrors);
    Ok(Some(outer_dst))
}

/// Rewrites the quoted packet's ports (with the quoted TCP/UDP checksum at `l4_csum`, when
/// quoted, and whether it is UDP's) or echo identifier (with the quoted ICMP checksum that covers it) to `new`,
/// keeping the outer ICMP checksum at `icmp_csum` right.
#[inline(always)]
fn rewrite_quoted_l4(
    ctx: &TcContext,
    inner_l4: usize,
    icmp_csum: usize,
    inner_echo: bool,
    l4_csum: Option<(usize, bool)>,
    ports: [u16; 2],
    new: [u16; 2],
) -> Result<(), Stat> {
    let failed = |_| Stat::RewriteFailed;
    if inner_echo {
        let (old, new) = (ports[0], new[0]);
        if old != new {
            // The identifier, covered by the quoted ICMP header's checksum.
            rewrite_covered(ctx, inner_l4 + 4, inner_l4 + 2, icmp_csum, old, new)?;
        }
        return Ok(());
    }
    for (offset, old, new) in [(0, ports[0], new[0]), (2, ports[1], new[1])] {
        if old != new {
            ctx.store(inner_l4 + offset, &new, 0).map_err(failed)?;
            ctx.l4_csum_replace(icmp_csum, u64::from(old), u64::from(new), 2)
                .map_err(failed)?;
            if let Some((csum, udp)) = l4_csum {
                update_quoted_csum(ctx, csum, icmp_csum, old, new, udp)?;
            }
        }
    }
    Ok(())
}

/// Updates the quoted checksum at `csum` for a covered field changing from `old` to `new`
/// (a plain one's-complement update: the pseudo header's addresses are fields like any
/// other here), and folds its change into the outer ICMP checksum at `icmp_csum`. A UDP
/// checksum that comes out 0 is written 0xffff (0 would mean "no checksum").
#[inline(always)]
fn update_quoted_csum<T: Copy + Into<u64>>(
    ctx: &TcContext,
    csum: usize,
    icmp_csum: usize,
    old: T,
    new: T,
    udp: bool,
) -> Result<(), Stat> {
    let failed = |_| Stat::RewriteFailed;
    let before: u16 = ctx.load(csum).map_err(failed)?;
    ctx.l3_csum_replace(csum, old.into(), new.into(), size_of::<T>() as u64)
        .map_err(failed)?;
    let mut after: u16 = ctx.load(csum).map_err(failed)?;
    if udp && after == 0 {
        after = 0xffff;
        ctx.store(csum, &after, 0).map_err(failed)?;
    }
    ctx.l4_csum_replace(icmp_csum, u64::from(before), u64::from(after), 2)
        .map_err(failed)
}

/// Rewrites a quoted field (an address or an identifier) from `old` to `new`, updating the
/// quoted checksum at `field_csum` that covers it, and the outer ICMP checksum at
/// `icmp_csum`, which covers both.
#[inline(always)]
fn rewrite_covered<T: Copy + Into<u64>>(
    ctx: &TcContext,
    field: usize,
    field_csum: usize,
    icmp_csum: usize,
    old: T,
    new: T,
) -> Result<(), Stat> {
    let failed = |_| Stat::RewriteFailed;
    update_quoted_csum(ctx, field_csum, icmp_csum, old, new, false)?;
    ctx.store(field, &new, 0).map_err(failed)?;
    ctx.l4_csum_replace(icmp_csum, old.into(), new.into(), size_of::<T>() as u64)
        .map_err(failed)
}
