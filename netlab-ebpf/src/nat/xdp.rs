//! XDP on the external device: the same ingress translation as the tcx program, run before
//! the kernel allocates an skb. XDP has no checksum helpers, so checksums are updated by
//! hand (RFC 1624); the fast path redirects through a devmap to the container's veth.
#![expect(
    clippy::needless_pass_by_value,
    reason = "aya's entry-point macros hand the context over by value"
)]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_csum_diff, bpf_xdp_adjust_meta},
    macros::xdp,
    programs::XdpContext,
};
use netlab_common::nat::{CtEntry, FlowKey, NatConfig, Stat, XDP_META_TRANSLATED, ct_flags, flags};

use super::{
    csum, ct,
    flow::Flow as _,
    frag, log,
    maps::{DEVMAP, config, container, count, count_port, count_untranslated},
    packet::{
        self, ETH_HLEN, ETH_P_IP, Frag, ICMP_ECHO_REQUEST, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP,
        Ipv4Hdr, Packet, parse_ip, rewrite_addresses, to_container,
    },
    packet6::ETH_P_IPV6,
};

/// External device, XDP: DNAT for published ports and the reverse of masquerade.
#[xdp]
pub fn netlab_nat_ext_xdp(ctx: XdpContext) -> u32 {
    try_ext_xdp(&ctx).unwrap_or_else(|stat| skipped(&ctx, stat))
}

/// Packets the NAT does not handle pass untouched (and are counted by reason); packets it
/// had to give up on are dropped.
fn skipped(ctx: &XdpContext, stat: Stat) -> u32 {
    if count_untranslated(ctx, stat) {
        xdp_action::XDP_DROP
    } else {
        xdp_action::XDP_PASS
    }
}

/// Lets packets through: attached to containers' veths so frames redirected to them by XDP
/// are received (veth needs an XDP program on the receiving side for that).
#[xdp]
pub fn netlab_xdp_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// A pointer to a `T` at `offset` in the frame, if it is long enough.
#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    packet::ptr_at(ctx.data(), ctx.data_end(), offset)
}

fn try_ext_xdp(ctx: &XdpContext) -> Result<u32, Stat> {
    let Some(config) = config() else {
        return Ok(xdp_action::XDP_PASS);
    };
    let ethertype: *mut u16 = ptr_at(ctx, 12).ok_or(Stat::Truncated)?;
    // SAFETY: bounds checked by ptr_at.
    match u16::from_be(unsafe { *ethertype }) {
        ETH_P_IP => {}
        // IPv6 is translated by the tc program after this one.
        ETH_P_IPV6 => return Ok(xdp_action::XDP_PASS),
        _ => return Err(Stat::Skipped),
    }
    let iph: *mut Ipv4Hdr = ptr_at(ctx, ETH_HLEN).ok_or(Stat::Truncated)?;
    // SAFETY: bounds checked by ptr_at.
    let pkt = parse_ip(unsafe { *iph }, ETH_HLEN, Some(config), |offset| {
        // SAFETY: bounds checked by ptr_at.
        ptr_at::<[u8; 8]>(ctx, offset).map(|p| unsafe { *p })
    })?;
    let entry = if pkt.frag == Frag::Later {
        match frag::lookup(&pkt) {
            Some(entry) => entry,
            // A routed lab's containers are open: tc lets those through.
            None if config.flags & flags::MASQUERADE == 0
                && to_container(config, pkt.key.dst_ip) =>
            {
                return Ok(xdp_action::XDP_PASS);
            }
            None => return Err(Stat::FragmentsDropped),
        }
    } else if let Some(entry) = ct::lookup(ctx, &pkt) {
        // The host's own connections keep their address: tc, after us, translates them (were
        // we to rewrite one moved off a container's tuple, tc would take it for that flow).
        if entry.flags & ct_flags::HOST != 0 {
            return Ok(xdp_action::XDP_PASS);
        }
        entry
    } else if let Some(entry) = ct::create_dnat(config, &pkt.key)? {
        log::new_flow(ctx, "dnat", &pkt.key, &entry);
        entry
    } else {
        // Not ours: tc decides. A datagram for the host passes whole; one straight to a
        // container is tc's to drop, its later fragments too.
        if !to_container(config, pkt.key.dst_ip) {
            frag::remember(&pkt, pkt.key.src_ip, pkt.key.dst_ip, 0);
        }
        return Ok(xdp_action::XDP_PASS);
    };
    rewrite(ctx, &pkt, &entry)?;
    if pkt.frag == Frag::First {
        frag::remember(&pkt, entry.src_ip, entry.dst_ip, entry.flags);
        // The tc program after us sees the later fragments translated: they pass there.
        let translated = Packet {
            key: FlowKey {
                src_ip: entry.src_ip,
                dst_ip: entry.dst_ip,
                ..pkt.key
            },
            ..pkt
        };
        frag::remember(&translated, entry.src_ip, entry.dst_ip, entry.flags);
    }
    count_port(&entry.counter, u64::from(pkt.len));
    if to_container(config, entry.dst_ip) {
        mark_translated(ctx);
    }
    if config.flags & flags::XDP_REDIRECT != 0 {
        return Ok(fast_path(ctx, &pkt, entry.dst_ip, config));
    }
    // The tcx ingress program hands it on to the container. (XDP cannot tell a partial
    // checksum from a full one and updates it as full: harmless on veth, whose receivers
    // trust a partial checksum, but see `FastPath::XdpRedirect`.)
    Ok(xdp_action::XDP_PASS)
}

/// Leaves [`XDP_META_TRANSLATED`] in the frame's metadata for the tc program after us. Without
/// room for it (not on veth or generic XDP), tc finds the flow by itself, as before.
#[inline(always)]
fn mark_translated(ctx: &XdpContext) {
    const LEN: usize = size_of::<u32>();
    // SAFETY: ctx wraps the kernel's xdp_md; a negative delta grows the metadata.
    if unsafe { bpf_xdp_adjust_meta(ctx.ctx, -(LEN as i32)) } != 0 {
        return;
    }
    let meta = ctx.metadata();
    if meta + LEN > ctx.metadata_end() {
        return;
    }
    // SAFETY: bounds checked against the start of the frame, where the metadata ends.
    unsafe { (meta as *mut u32).write_unaligned(XDP_META_TRANSLATED) };
}

fn rewrite(ctx: &XdpContext, pkt: &Packet, to: &CtEntry) -> Result<(), Stat> {
    let k = &pkt.key;
    if k.unchanged(to) {
        return Ok(());
    }
    let iph: *mut Ipv4Hdr = ptr_at(ctx, pkt.l3).ok_or(Stat::Truncated)?;
    // SAFETY: bounds checked by ptr_at; XDP owns the frame.
    let iph = unsafe { &mut *iph };
    if pkt.frag == Frag::Later {
        // No L4 header: the addresses and the IP checksum only.
        rewrite_addresses(iph, k, to);
        count(Stat::Fragments);
        return Ok(());
    }
    let l4_csum: Option<*mut u16> = match k.proto {
        IPPROTO_TCP => ptr_at(ctx, pkt.l4 + 16),
        IPPROTO_UDP => ptr_at(ctx, pkt.l4 + 6),
        _ => ptr_at(ctx, pkt.l4 + 2),
    };
    let l4_csum = l4_csum.ok_or(Stat::Truncated)?;
    // SAFETY: bounds checked by ptr_at.
    let mut csum = unsafe { *l4_csum };
    // UDP checksum 0 means "none": keep it so.
    let udp_none = k.proto == IPPROTO_UDP && csum == 0;
    let pseudo = matches!(k.proto, IPPROTO_TCP | IPPROTO_UDP) && !udp_none;
    if pseudo {
        // The pseudo header holds the addresses.
        for (old, new) in [(k.src_ip, to.src_ip), (k.dst_ip, to.dst_ip)] {
            if old != new {
                csum = csum::update(csum, &old.to_ne_bytes(), &new.to_ne_bytes());
            }
        }
    }
    rewrite_addresses(iph, k, to);
    if matches!(k.proto, IPPROTO_TCP | IPPROTO_UDP) {
        let ports: *mut [u16; 2] = ptr_at(ctx, pkt.l4).ok_or(Stat::Truncated)?;
        // SAFETY: bounds checked by ptr_at.
        let ports = unsafe { &mut *ports };
        for (i, old, new) in [(0, k.src_port, to.src_port), (1, k.dst_port, to.dst_port)] {
            if old != new {
                if !udp_none {
                    csum = csum::update(csum, &old.to_ne_bytes(), &new.to_ne_bytes());
                }
                ports[i] = new;
            }
        }
    } else if k.proto == IPPROTO_ICMP && pkt.has_ports() {
        let new = if pkt.icmp_type == ICMP_ECHO_REQUEST {
            to.src_port
        } else {
            to.dst_port
        };
        if new != k.src_port {
            let id: *mut u16 = ptr_at(ctx, pkt.l4 + 4).ok_or(Stat::Truncated)?;
            csum = csum::update(csum, &k.src_port.to_ne_bytes(), &new.to_ne_bytes());
            // SAFETY: bounds checked by ptr_at.
            unsafe { *id = new };
        }
    }
    if k.proto == IPPROTO_UDP && !udp_none && csum == 0 {
        csum = 0xffff;
    }
    // SAFETY: bounds checked by ptr_at.
    unsafe { *l4_csum = csum };
    count(Stat::Translated);
    count(Stat::XdpTranslated);
    Ok(())
}

/// Fast path: rewrite the Ethernet header and TTL, then hand the frame to the container's
/// host-side veth through the devmap; anything uncertain goes to the stack instead.
fn fast_path(ctx: &XdpContext, pkt: &Packet, dst_ip: u32, config: &NatConfig) -> u32 {
    let Some(info) = container(config, dst_ip) else {
        return xdp_action::XDP_PASS;
    };
    if pkt.ttl <= 1 {
        return xdp_action::XDP_PASS;
    }
    // A frame redirected by XDP reaches the container's stack without the skb's note that
    // its checksum is partial (a sender with checksum offload): the stack would verify it
    // and drop it. So a whole datagram's checksum is made full; a fragment's covers the
    // whole datagram, whose senders compute it in full before fragmenting.
    if pkt.frag == Frag::Whole
        && matches!(pkt.key.proto, IPPROTO_TCP | IPPROTO_UDP)
        && full_l4_checksum(ctx, pkt).is_none()
    {
        return xdp_action::XDP_PASS;
    }
    let (Some(eth), Some(iph)) = (ptr_at::<[u8; 12]>(ctx, 0), ptr_at::<Ipv4Hdr>(ctx, pkt.l3))
    else {
        return xdp_action::XDP_PASS;
    };
    // Redirect first: a frame that falls back to the stack must keep its TTL, or the host's
    // forwarding would decrement it a second time.
    let Ok(action) = DEVMAP.redirect(info.host_ifindex, 0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: bounds checked by ptr_at.
    unsafe {
        packet::decrement_ttl(&mut *iph);
        let eth = &mut *eth;
        eth[..6].copy_from_slice(&info.mac);
        eth[6..].copy_from_slice(&config.bridge_mac);
    }
    count(Stat::FastPath);
    action
}

/// Bytes one `bpf_csum_diff` call sums, and how many calls a frame may take (frames on a
/// veth with XDP are at most a page).
const CSUM_CHUNK: usize = 64;
const CSUM_CHUNKS: usize = 4096 / CSUM_CHUNK;

/// Recomputes a whole TCP or UDP datagram's checksum from its bytes and its (already
/// rewritten) addresses. `None` when the frame is shorter than its IP length says.
#[inline(always)]
fn full_l4_checksum(ctx: &XdpContext, pkt: &Packet) -> Option<()> {
    let l4_len = usize::from(pkt.len).checked_sub(pkt.l4 - pkt.l3)?;
    // The whole datagram must be there before the field is touched.
    if ctx.data() + pkt.l4 + l4_len > ctx.data_end() {
        return None;
    }
    let iph: *mut Ipv4Hdr = ptr_at(ctx, pkt.l3)?;
    // The addresses as rewritten (`pkt` holds them as they came).
    // SAFETY: bounds checked by ptr_at.
    let (src, dst) = unsafe { ((*iph).saddr, (*iph).daddr) };
    let field: *mut u16 = ptr_at(ctx, pkt.l4_csum_offset())?;
    // SAFETY: bounds checked by ptr_at.
    let field = unsafe { &mut *field };
    let udp = pkt.key.proto == IPPROTO_UDP;
    // UDP's "no checksum" stays so.
    if udp && *field == 0 {
        return Some(());
    }
    *field = 0;
    // The pseudo header, as its words sit in memory; the sum over the bytes below is kept
    // the same way, so the folded result is stored as it comes.
    let length = u16::try_from(l4_len).ok()?.to_be_bytes();
    let mut sum = csum::add(
        csum::add(src, dst),
        u32::from_ne_bytes([0, pkt.key.proto, length[0], length[1]]),
    );
    let mut done = 0;
    for _ in 0..CSUM_CHUNKS {
        if done + CSUM_CHUNK > l4_len {
            break;
        }
        sum = chunk_sum::<CSUM_CHUNK>(ctx, pkt.l4 + done, sum)?;
        done += CSUM_CHUNK;
    }
    // What is left is under a chunk: halves of it, then the last bytes.
    (sum, done) = part_sum::<32>(ctx, pkt.l4, l4_len, sum, done)?;
    (sum, done) = part_sum::<16>(ctx, pkt.l4, l4_len, sum, done)?;
    (sum, done) = part_sum::<8>(ctx, pkt.l4, l4_len, sum, done)?;
    (sum, done) = part_sum::<4>(ctx, pkt.l4, l4_len, sum, done)?;
    // The last 0 to 3 bytes, zero-padded to a word.
    let mut tail = [0u8; 4];
    for (i, byte) in tail.iter_mut().enumerate().take(3) {
        if done + i < l4_len {
            let at: *mut u8 = ptr_at(ctx, pkt.l4 + done + i)?;
            // SAFETY: bounds checked by ptr_at.
            *byte = unsafe { *at };
        }
    }
    sum = csum::add(sum, u32::from_ne_bytes(tail));
    let folded = !csum::fold(sum);
    // A UDP sum that comes out 0 is sent as all ones (0 means "none").
    *field = if udp && folded == 0 { 0xffff } else { folded };
    Some(())
}

/// [`chunk_sum`] of the next `N` bytes of the `len` at `start`, when `done` leaves as many;
/// the new sum and bytes done.
#[inline(always)]
fn part_sum<const N: usize>(
    ctx: &XdpContext,
    start: usize,
    len: usize,
    sum: u32,
    done: usize,
) -> Option<(u32, usize)> {
    if len - done < N {
        return Some((sum, done));
    }
    Some((chunk_sum::<N>(ctx, start + done, sum)?, done + N))
}

/// `sum` plus the one's-complement sum of the `N` bytes at `offset` (`N` a multiple of 4).
#[inline(always)]
fn chunk_sum<const N: usize>(ctx: &XdpContext, offset: usize, sum: u32) -> Option<u32> {
    let bytes: *mut [u8; N] = ptr_at(ctx, offset)?;
    // SAFETY: the N bytes are inside the frame (ptr_at); the helper only reads them.
    let got = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, bytes.cast(), N as u32, sum) };
    u32::try_from(got).ok()
}
