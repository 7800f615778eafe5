//! The tcx programs: the external device's ingress and egress, and each container's
//! host-side veth ingress. Headers are read with `bpf_skb_load_bytes` and rewritten with
//! `bpf_skb_store_bytes` plus incremental checksum helpers, which keep a partial (offloaded)
//! checksum partial and a full one correct.
#![expect(
    clippy::needless_pass_by_value,
    reason = "aya's entry-point macros hand the context over by value"
)]

use aya_ebpf::{
    bindings::{
        BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR, BPF_FIB_LKUP_RET_NO_NEIGH,
        BPF_FIB_LKUP_RET_SUCCESS, TC_ACT_SHOT, TC_ACT_UNSPEC, bpf_fib_lookup,
    },
    helpers::{bpf_fib_lookup as fib_lookup, bpf_redirect, bpf_redirect_neigh, bpf_redirect_peer},
    macros::classifier,
    programs::TcContext,
};
use netlab_common::nat::{CtEntry, FlowKey, NatConfig, PublishKey, Stat, ct_flags, flags};

use super::{
    ct, icmp, log,
    maps::{CONTAINERS, config, count, count_port, published},
    packet::{ICMP_ECHO_REQUEST, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Packet, ip, parse},
};

const AF_INET: u8 = 2;

/// What to do with a packet after translation.
enum Verdict {
    /// Let the stack (and later programs) carry on.
    Pass,
    /// Drop it (counted).
    Drop,
    /// A redirect helper's return value.
    Redirect(i32),
}

impl Verdict {
    fn code(self) -> i32 {
        match self {
            Self::Pass => TC_ACT_UNSPEC,
            Self::Drop => TC_ACT_SHOT,
            Self::Redirect(code) => code,
        }
    }
}

/// External device, ingress: DNAT for published ports and the reverse of masquerade.
#[classifier]
pub fn netlab_nat_ext_ingress(ctx: TcContext) -> i32 {
    try_ext_ingress(&ctx)
        .unwrap_or_else(|stat| skipped(&ctx, stat))
        .code()
}

/// External device, egress: the reverse of DNAT and masquerade.
#[classifier]
pub fn netlab_nat_ext_egress(ctx: TcContext) -> i32 {
    try_ext_egress(&ctx)
        .unwrap_or_else(|stat| skipped(&ctx, stat))
        .code()
}

/// A container's host-side veth, ingress: hairpin and fast-path replies.
#[classifier]
pub fn netlab_nat_ctr_ingress(ctx: TcContext) -> i32 {
    try_ctr_ingress(&ctx)
        .unwrap_or_else(|stat| skipped(&ctx, stat))
        .code()
}

/// Packets the NAT does not handle pass untouched (and are counted by reason); packets it
/// had to give up on are dropped.
fn skipped(ctx: &TcContext, stat: Stat) -> Verdict {
    count(stat);
    match stat {
        Stat::SnatExhausted | Stat::CtInsertFailed | Stat::RewriteFailed => {
            log::dropped(ctx, stat);
            Verdict::Drop
        }
        _ => Verdict::Pass,
    }
}

fn try_ext_ingress(ctx: &TcContext) -> Result<Verdict, Stat> {
    let Some(config) = config() else {
        return Ok(Verdict::Pass);
    };
    let pkt = parse(ctx)?;
    let fast_path = config.flags & flags::FAST_PATH != 0;
    if icmp::is_error(&pkt) {
        return Ok(match icmp::translate_error(ctx, &pkt)? {
            Some(dst) if fast_path => to_container_peer(ctx, &pkt, dst, config),
            _ => Verdict::Pass,
        });
    }
    let entry = if let Some(entry) = ct::lookup(&pkt) {
        entry
    } else if let Some(entry) = ct::create_dnat(config, &pkt.key)? {
        log::new_flow(ctx, "dnat", &pkt.key, &entry);
        entry
    } else {
        // Already for a container (translated by XDP, or routed to it): the fast path
        // still applies.
        if fast_path {
            return Ok(to_container_peer(ctx, &pkt, pkt.key.dst_ip, config));
        }
        return Ok(Verdict::Pass);
    };
    rewrite(ctx, &pkt, &entry)?;
    count_port(&entry.publish, u64::from(pkt.len));
    if fast_path {
        return Ok(to_container_peer(ctx, &pkt, entry.dst_ip, config));
    }
    Ok(Verdict::Pass)
}

fn try_ext_egress(ctx: &TcContext) -> Result<Verdict, Stat> {
    let Some(config) = config() else {
        return Ok(Verdict::Pass);
    };
    let pkt = parse(ctx)?;
    if icmp::is_error(&pkt) {
        icmp::translate_error(ctx, &pkt)?;
        return Ok(Verdict::Pass);
    }
    let entry = if let Some(entry) = ct::lookup(&pkt) {
        entry
    } else {
        let k = &pkt.key;
        let from_subnet = k.src_ip & config.subnet_mask == config.subnet;
        if config.flags & flags::MASQUERADE == 0 || !from_subnet || !pkt.has_ports() {
            return Ok(Verdict::Pass);
        }
        let new = FlowKey {
            src_ip: config.external_ip,
            ..*k
        };
        let entry = ct::create(k, new, ct_flags::SNAT, PublishKey::default(), true)?;
        log::new_flow(ctx, "masquerade", k, &entry);
        entry
    };
    rewrite(ctx, &pkt, &entry)?;
    count_port(&entry.publish, u64::from(pkt.len));
    Ok(Verdict::Pass)
}

fn try_ctr_ingress(ctx: &TcContext) -> Result<Verdict, Stat> {
    let Some(config) = config() else {
        return Ok(Verdict::Pass);
    };
    let pkt = parse(ctx)?;
    let k = &pkt.key;
    let entry = if let Some(entry) = ct::lookup(&pkt) {
        entry
    } else {
        // A container reaching a published port through a host address: hairpin. (The
        // bridge's own address matches only ports published on it explicitly: `published`
        // applies "every address" to the external one.)
        if !matches!(k.proto, IPPROTO_TCP | IPPROTO_UDP) {
            return Ok(Verdict::Pass);
        }
        let Some((publish, target)) = published(config, k.dst_ip, k.dst_port, k.proto, false)
        else {
            return Ok(Verdict::Pass);
        };
        // Its own port: the reply must come back through us, so the source becomes the
        // gateway (a packet from its own address would be dropped as martian).
        let own = k.src_ip == target.ip;
        let src_ip = if own { config.gateway_ip } else { k.src_ip };
        let new = FlowKey {
            src_ip,
            dst_ip: target.ip,
            dst_port: target.port,
            ..*k
        };
        let entry = ct::create(k, new, ct_flags::DNAT | ct_flags::HAIRPIN, publish, own)?;
        log::new_flow(ctx, "hairpin", k, &entry);
        entry
    };
    if entry.flags & ct_flags::HAIRPIN != 0 {
        rewrite(ctx, &pkt, &entry)?;
        count_port(&entry.publish, u64::from(pkt.len));
        return Ok(to_container_egress(ctx, &entry, config));
    }
    let reply_to_outside =
        entry.flags & (ct_flags::DNAT | ct_flags::REPLY) == ct_flags::DNAT | ct_flags::REPLY;
    if config.flags & flags::FAST_PATH != 0 && reply_to_outside {
        return fast_reply(ctx, &pkt, &entry);
    }
    // Translated on the external device's egress, after the stack has routed it.
    Ok(Verdict::Pass)
}

/// Rewrites addresses, ports (or the ICMP echo identifier) and checksums to `to`.
#[inline(always)]
fn rewrite(ctx: &TcContext, pkt: &Packet, to: &CtEntry) -> Result<(), Stat> {
    let k = &pkt.key;
    let csum = pkt.l4_csum_offset();
    let l4 = matches!(k.proto, IPPROTO_TCP | IPPROTO_UDP);
    let mangled = if k.proto == IPPROTO_UDP {
        u64::from(BPF_F_MARK_MANGLED_0)
    } else {
        0
    };
    let failed = |_| Stat::RewriteFailed;
    for (offset, old, new) in [
        (ip::SADDR, k.src_ip, to.src_ip),
        (ip::DADDR, k.dst_ip, to.dst_ip),
    ] {
        if old == new {
            continue;
        }
        if l4 {
            ctx.l4_csum_replace(
                csum,
                u64::from(old),
                u64::from(new),
                u64::from(BPF_F_PSEUDO_HDR) | mangled | 4,
            )
            .map_err(failed)?;
        }
        ctx.l3_csum_replace(pkt.l3 + ip::CHECK, u64::from(old), u64::from(new), 4)
            .map_err(failed)?;
        ctx.store(pkt.l3 + offset, &new, 0).map_err(failed)?;
    }
    if l4 {
        for (offset, old, new) in [(0, k.src_port, to.src_port), (2, k.dst_port, to.dst_port)] {
            if old != new {
                ctx.l4_csum_replace(csum, u64::from(old), u64::from(new), mangled | 2)
                    .map_err(failed)?;
                ctx.store(pkt.l4 + offset, &new, 0).map_err(failed)?;
            }
        }
    } else if k.proto == IPPROTO_ICMP && pkt.has_ports() {
        // Echo: the identifier is the "port"; a request carries our source's, a reply our
        // destination's (both ports of a key hold it, so either works).
        let new = if pkt.icmp_type == ICMP_ECHO_REQUEST {
            to.src_port
        } else {
            to.dst_port
        };
        if new != k.src_port {
            ctx.l4_csum_replace(csum, u64::from(k.src_port), u64::from(new), 2)
                .map_err(failed)?;
            ctx.store(pkt.l4 + 4, &new, 0).map_err(failed)?;
        }
    }
    count(Stat::Translated);
    Ok(())
}

/// Decrements the TTL (the fast path skips the host's forwarding, which would).
#[inline(always)]
fn decrement_ttl(ctx: &TcContext, pkt: &Packet) -> Result<(), Stat> {
    let failed = |_| Stat::RewriteFailed;
    // TTL and protocol share a 16-bit word of the header checksum.
    let old = u16::from_be_bytes([pkt.ttl, pkt.key.proto]).to_be();
    let new = u16::from_be_bytes([pkt.ttl - 1, pkt.key.proto]).to_be();
    ctx.l3_csum_replace(pkt.l3 + ip::CHECK, u64::from(old), u64::from(new), 2)
        .map_err(failed)?;
    ctx.store(pkt.l3 + ip::TTL, &(pkt.ttl - 1), 0)
        .map_err(failed)
}

/// Fast path into a container: straight to the peer of its host-side veth, skipping the
/// host's routing and bridge. Falls back to the stack whenever it cannot be sure.
#[inline(always)]
fn to_container_peer(ctx: &TcContext, pkt: &Packet, dst_ip: u32, config: &NatConfig) -> Verdict {
    // SAFETY: the value is copied out at once.
    let Some(info) = (unsafe { CONTAINERS.get(dst_ip) }).copied() else {
        return Verdict::Pass;
    };
    if pkt.ttl <= 1 || decrement_ttl(ctx, pkt).is_err() {
        return Verdict::Pass;
    }
    if ctx.store(0, &info.mac, 0).is_err() || ctx.store(6, &config.bridge_mac, 0).is_err() {
        return Verdict::Drop;
    }
    count(Stat::FastPath);
    // SAFETY: a helper taking plain integers.
    Verdict::Redirect(unsafe { bpf_redirect_peer(info.host_ifindex, 0) } as i32)
}

/// Hairpin delivery: out of the target container's host-side veth, as the bridge would.
#[inline(always)]
fn to_container_egress(ctx: &TcContext, entry: &CtEntry, config: &NatConfig) -> Verdict {
    // SAFETY: the value is copied out at once.
    let Some(info) = (unsafe { CONTAINERS.get(entry.dst_ip) }).copied() else {
        return Verdict::Pass;
    };
    if ctx.store(0, &info.mac, 0).is_err() || ctx.store(6, &config.bridge_mac, 0).is_err() {
        return Verdict::Drop;
    }
    // SAFETY: a helper taking plain integers.
    Verdict::Redirect(unsafe { bpf_redirect(info.host_ifindex, 0) } as i32)
}

/// Fast path for a reply leaving a container towards a client outside: route it first
/// (before rewriting: a packet already carrying the host's address would be a martian if
/// handed back to the stack), then rewrite and send it straight out.
#[inline(always)]
fn fast_reply(ctx: &TcContext, pkt: &Packet, entry: &CtEntry) -> Result<Verdict, Stat> {
    // SAFETY: an all-zero bpf_fib_lookup is a valid starting point.
    let mut params: bpf_fib_lookup = unsafe { core::mem::zeroed() };
    params.family = AF_INET;
    params.l4_protocol = pkt.key.proto;
    params.sport = entry.src_port;
    params.dport = entry.dst_port;
    params.__bindgen_anon_1.tot_len = pkt.len;
    // SAFETY: ctx wraps the kernel's __sk_buff.
    params.ifindex = unsafe { (*ctx.skb.skb).ifindex };
    params.__bindgen_anon_3.ipv4_src = entry.src_ip;
    params.__bindgen_anon_4.ipv4_dst = entry.dst_ip;
    // SAFETY: params is a valid, fully initialised bpf_fib_lookup on our stack.
    let rc = unsafe {
        fib_lookup(
            ctx.skb.skb.cast(),
            &raw mut params,
            size_of::<bpf_fib_lookup>() as i32,
            0,
        )
    };
    let rc = rc as u32;
    if rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH || pkt.ttl <= 1 {
        return Ok(Verdict::Pass);
    }
    rewrite(ctx, pkt, entry)?;
    count_port(&entry.publish, u64::from(pkt.len));
    decrement_ttl(ctx, pkt)?;
    count(Stat::FastPath);
    if rc == BPF_FIB_LKUP_RET_NO_NEIGH {
        // SAFETY: no neighbour parameters: the kernel resolves the next hop itself.
        return Ok(Verdict::Redirect(unsafe {
            bpf_redirect_neigh(params.ifindex, core::ptr::null_mut(), 0, 0)
        } as i32));
    }
    if ctx.store(0, &params.dmac, 0).is_err() || ctx.store(6, &params.smac, 0).is_err() {
        return Err(Stat::RewriteFailed);
    }
    // SAFETY: a helper taking plain integers.
    Ok(Verdict::Redirect(
        unsafe { bpf_redirect(params.ifindex, 0) } as i32,
    ))
}
