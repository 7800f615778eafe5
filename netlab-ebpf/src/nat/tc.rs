//! The tcx programs: the external device's ingress and egress, and each container's
//! host-side veth ingress. Headers are read and rewritten in place (direct packet access);
//! the IPv4 checksum is updated by hand and the L4 one by `bpf_l4_csum_replace`, given one
//! difference for the addresses and one for the ports, which keeps a partial (offloaded)
//! checksum partial and a full one correct. IPv6 packets go to `tc6`, from the same hooks.
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
use netlab_common::nat::{
    CounterRef, CtEntry, FlowKey, MARK_TRANSLATED, NatConfig, NextHop, Stat, XDP_META_TRANSLATED,
    cache_slot, ct_flags, flags,
};

use super::{
    csum, ct,
    flow::Flow,
    frag, host_sockets, icmp, log,
    maps::{
        NEXT_HOP, config, container, count, count_port, count_untranslated, published,
        source_as_gateway,
    },
    maps6::configs,
    packet::{
        self, Frag, ICMP_ECHO_REQUEST, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Ipv4Hdr, Packet,
        in_subnet, parse, rewrite_addresses, skb_ptr_at, to_container,
    },
    packet6::ETH_P_IPV6,
    tc6,
};

const AF_INET: u8 = 2;

/// What to do with a packet after translation: the tc action. A plain integer, so that a BPF
/// function returning one never hands back a register left undefined on some path (the
/// verifier refuses to shift one that held a pointer, as LLVM did with an enum's payload).
#[derive(Clone, Copy)]
pub struct Verdict(i32);

impl Verdict {
    /// Let the stack (and later programs) carry on.
    pub const PASS: Self = Self(TC_ACT_UNSPEC);
    /// Drop it (counted).
    pub const DROP: Self = Self(TC_ACT_SHOT);

    /// A redirect helper's return value.
    pub fn redirect(code: i32) -> Self {
        Self(code)
    }

    pub fn code(self) -> i32 {
        self.0
    }
}

/// External device, ingress: DNAT for published ports and the reverse of masquerade.
#[classifier]
pub fn netlab_nat_ext_ingress(ctx: TcContext) -> i32 {
    by_family(&ctx, ext_ingress, tc6::ext_ingress)
}

/// External device, egress: the reverse of DNAT and masquerade.
#[classifier]
pub fn netlab_nat_ext_egress(ctx: TcContext) -> i32 {
    // SAFETY: ctx wraps the kernel's __sk_buff.
    if unsafe { (*ctx.skb.skb).mark } == MARK_TRANSLATED {
        return Verdict::PASS.code();
    }
    by_family(&ctx, ext_egress, tc6::ext_egress)
}

/// A container's host-side veth, ingress: hairpin and fast-path replies.
#[classifier]
pub fn netlab_nat_ctr_ingress(ctx: TcContext) -> i32 {
    by_family(&ctx, ctr_ingress, tc6::ctr_ingress)
}

/// Runs `ipv4`, or `ipv6` for an IPv6 packet in a dual-stack lab (in an IPv4-only lab IPv6
/// passes untouched). Each is a BPF function of its own, which returns the tc action: the
/// entry point's frame stays small, and each family's path has the stack to itself.
#[inline(always)]
fn by_family(
    ctx: &TcContext,
    ipv4: impl FnOnce(&TcContext) -> i32,
    ipv6: impl FnOnce(&TcContext, &tc6::Configs) -> i32,
) -> i32 {
    let ethertype: Option<*mut u16> = skb_ptr_at(ctx, 12);
    // SAFETY: bounds checked by skb_ptr_at.
    if ethertype.is_some_and(|e| u16::from_be(unsafe { *e }) == ETH_P_IPV6) {
        if let Some(configs) = configs() {
            ipv6(ctx, &configs)
        } else {
            count(Stat::Skipped);
            Verdict::PASS.code()
        }
    } else {
        ipv4(ctx)
    }
}

/// The tc action of a translation's result.
#[inline(always)]
pub fn action(ctx: &TcContext, result: Result<Verdict, Stat>) -> i32 {
    result.unwrap_or_else(|stat| skipped(ctx, stat)).code()
}

#[inline(never)]
fn ext_ingress(ctx: &TcContext) -> i32 {
    action(ctx, try_ext_ingress(ctx))
}

#[inline(never)]
fn ext_egress(ctx: &TcContext) -> i32 {
    action(ctx, try_ext_egress(ctx))
}

#[inline(never)]
fn ctr_ingress(ctx: &TcContext) -> i32 {
    action(ctx, try_ctr_ingress(ctx))
}

/// Packets the NAT does not handle pass untouched (and are counted by reason); packets it
/// had to give up on are dropped.
fn skipped(ctx: &TcContext, stat: Stat) -> Verdict {
    if count_untranslated(ctx, stat) {
        Verdict::DROP
    } else {
        Verdict::PASS
    }
}

#[inline(always)]
fn try_ext_ingress(ctx: &TcContext) -> Result<Verdict, Stat> {
    let Some(config) = config() else {
        return Ok(Verdict::PASS);
    };
    let pkt = parse(ctx, Some(config))?;
    let fast_path = config.flags & flags::FAST_PATH != 0;
    if config.flags & flags::XDP_INGRESS != 0
        && xdp_translated(ctx)
        && to_container(config, pkt.key.dst_ip)
    {
        return Ok(if fast_path {
            to_container_peer(ctx, &pkt, pkt.key.dst_ip, config)
        } else {
            Verdict::PASS
        });
    }
    if pkt.frag == Frag::Later {
        // Translated (by us or by XDP before us) like its first fragment, or dropped.
        let Some(entry) = frag::lookup(&pkt) else {
            if config.flags & flags::MASQUERADE == 0 && to_container(config, pkt.key.dst_ip) {
                return Ok(Verdict::PASS);
            }
            return Err(Stat::FragmentsDropped);
        };
        rewrite(ctx, &pkt, &entry)?;
        return Ok(if fast_path && to_container(config, entry.dst_ip) {
            to_container_peer(ctx, &pkt, entry.dst_ip, config)
        } else {
            Verdict::PASS
        });
    }
    if icmp::is_error(&pkt) {
        return match icmp::translate_error(ctx, &pkt, false)? {
            Some(dst) if fast_path => Ok(to_container_peer(ctx, &pkt, dst, config)),
            // An error about no flow of ours, straight to a container: direct access.
            None if to_container(config, pkt.key.dst_ip)
                && config.flags & flags::MASQUERADE != 0 =>
            {
                Err(Stat::DirectAccess)
            }
            _ => Ok(Verdict::PASS),
        };
    }
    let entry = if let Some(entry) = ct::lookup(ctx, &pkt) {
        entry
    } else if let Some(entry) = ct::create_dnat(config, &pkt.key)? {
        log::new_flow(ctx, "dnat", &pkt.key, &entry);
        entry
    } else if to_container(config, pkt.key.dst_ip) {
        // Straight to a container: with masquerade (NAT mode), only a flow XDP translated
        // may get there — a neighbour routing the subnet through us reaches published ports
        // only, as with Docker. A lab without masquerade is routed: its containers are open.
        if config.flags & flags::MASQUERADE == 0 {
            return Ok(Verdict::PASS);
        }
        if config.flags & flags::XDP_INGRESS == 0 || !ct::translated_earlier(&pkt.key) {
            return Err(Stat::DirectAccess);
        }
        return Ok(if fast_path {
            to_container_peer(ctx, &pkt, pkt.key.dst_ip, config)
        } else {
            Verdict::PASS
        });
    } else {
        // For the host itself: its later fragments pass too.
        frag::remember(&pkt, pkt.key.src_ip, pkt.key.dst_ip, 0);
        if pkt.key.dst_ip == config.external_ip
            && matches!(pkt.key.proto, IPPROTO_TCP | IPPROTO_UDP)
            && !host_sockets::owns(ctx, &pkt.key)
        {
            count(Stat::Untracked);
        }
        return Ok(Verdict::PASS);
    };
    rewrite(ctx, &pkt, &entry)?;
    count_port(&entry.counter, u64::from(pkt.len));
    if fast_path && !via_stack(ctx, &pkt.key, entry.flags) {
        return Ok(to_container_peer(ctx, &pkt, entry.dst_ip, config));
    }
    Ok(Verdict::PASS)
}

/// Whether the XDP program translated this packet already (its metadata says so).
#[inline(always)]
fn xdp_translated(ctx: &TcContext) -> bool {
    const LEN: usize = size_of::<u32>();
    // SAFETY: ctx wraps the kernel's __sk_buff.
    let (meta, data) = unsafe {
        let skb = ctx.skb.skb;
        ((*skb).data_meta as usize, (*skb).data as usize)
    };
    if meta + LEN > data {
        return false;
    }
    // SAFETY: bounds checked against the start of the packet, where the metadata ends.
    unsafe { (meta as *const u32).read_unaligned() == XDP_META_TRANSLATED }
}

#[inline(always)]
fn try_ext_egress(ctx: &TcContext) -> Result<Verdict, Stat> {
    let Some(config) = config() else {
        return Ok(Verdict::PASS);
    };
    let pkt = parse(ctx, None)?;
    let from_subnet = in_subnet(config, pkt.key.src_ip);
    if pkt.frag == Frag::Later {
        return match frag::lookup(&pkt) {
            Some(entry) => rewrite(ctx, &pkt, &entry).map(|()| Verdict::PASS),
            // Never out with a container's private address.
            None if from_subnet => Err(Stat::FragmentsDropped),
            None => Ok(Verdict::PASS),
        };
    }
    if icmp::is_error(&pkt) {
        icmp::translate_error(ctx, &pkt, false)?;
        return Ok(Verdict::PASS);
    }
    let entry = if let Some(entry) = ct::lookup(ctx, &pkt) {
        entry
    } else if !pkt.has_ports() {
        return Ok(Verdict::PASS);
    } else if from_subnet && config.flags & flags::MASQUERADE != 0 {
        let k = &pkt.key;
        let new = FlowKey {
            src_ip: config.external_ip,
            ..*k
        };
        let entry = ct::create_masquerade(ctx, k, new, ct_flags::SNAT)?;
        log::new_flow(ctx, "masquerade", k, &entry);
        entry
    } else if pkt.key.src_ip == config.external_ip {
        // The host's own connection: tracked (as itself) so masquerade never reuses its tuple;
        // a new one moves off a tuple a container's flow already has, as Linux does. A TCP
        // connection already running when it was first seen keeps its tuple or goes untracked.
        let new_flow = pkt.key.proto != IPPROTO_TCP || ct::is_syn(pkt.tcp_flags);
        match ct::create(
            &pkt.key,
            pkt.key,
            ct_flags::HOST,
            CounterRef::default(),
            new_flow,
        ) {
            Ok(entry) => entry,
            Err(_) if !new_flow => return Ok(Verdict::PASS),
            Err(stat) => return Err(stat),
        }
    } else {
        return Ok(Verdict::PASS);
    };
    rewrite(ctx, &pkt, &entry)?;
    count_port(&entry.counter, u64::from(pkt.len));
    Ok(Verdict::PASS)
}

#[inline(always)]
fn try_ctr_ingress(ctx: &TcContext) -> Result<Verdict, Stat> {
    let Some(config) = config() else {
        return Ok(Verdict::PASS);
    };
    let pkt = parse(ctx, None)?;
    if pkt.frag == Frag::Later {
        // Hairpin fragments are delivered here; the others are translated on the external
        // device, where they leave.
        if let Some(entry) = frag::lookup(&pkt)
            && entry.flags & ct_flags::HAIRPIN != 0
        {
            rewrite(ctx, &pkt, &entry)?;
            return Ok(to_container_egress(ctx, entry.dst_ip, config));
        }
        return Ok(Verdict::PASS);
    }
    if icmp::is_error(&pkt) {
        // Errors about hairpin flows go back to the container that started them.
        return Ok(match icmp::translate_error(ctx, &pkt, true)? {
            Some(dst) => to_container_egress(ctx, dst, config),
            None => Verdict::PASS,
        });
    }
    let k = &pkt.key;
    let entry = if let Some(entry) = ct::lookup(ctx, &pkt) {
        entry
    } else {
        // A container reaching a published port through a host address: hairpin. (The
        // bridge's own address matches only ports published on it explicitly: `published`
        // applies "every address" to the external one.) Traffic between containers leaves
        // here: no port is published on a container's address, and a hairpin flow's
        // replies, the only ones of ours between containers, were found above.
        if !matches!(k.proto, IPPROTO_TCP | IPPROTO_UDP) || to_container(config, k.dst_ip) {
            return Ok(Verdict::PASS);
        }
        let Some(target) = published(config, k.dst_ip, k.dst_port, k.proto, false) else {
            return Ok(Verdict::PASS);
        };
        // Only a new flow: not a container's answer to a host process whose port happens to
        // be published (a TCP segment without a lone SYN, a datagram a host socket expects).
        if if k.proto == IPPROTO_TCP {
            !ct::is_syn(pkt.tcp_flags)
        } else {
            host_sockets::owns(ctx, k)
        } {
            return Ok(Verdict::PASS);
        }
        // Its own port: the source becomes the gateway (see `source_as_gateway`).
        let own = k.src_ip == target.ip;
        let src_ip = if source_as_gateway(config, true, own) {
            config.gateway_ip
        } else {
            k.src_ip
        };
        let new = FlowKey {
            src_ip,
            dst_ip: target.ip,
            dst_port: target.port,
            ..*k
        };
        let entry = ct::create(
            k,
            new,
            ct_flags::DNAT | ct_flags::HAIRPIN,
            target.counter,
            true,
        )?;
        log::new_flow(ctx, "hairpin", k, &entry);
        entry
    };
    if entry.flags & ct_flags::HAIRPIN != 0 {
        rewrite(ctx, &pkt, &entry)?;
        count_port(&entry.counter, u64::from(pkt.len));
        return Ok(to_container_egress(ctx, entry.dst_ip, config));
    }
    let reply_to_outside =
        entry.flags & (ct_flags::DNAT | ct_flags::REPLY) == ct_flags::DNAT | ct_flags::REPLY;
    if config.flags & flags::FAST_PATH != 0 && reply_to_outside && !via_stack(ctx, k, entry.flags) {
        return fast_reply(ctx, &pkt, &entry);
    }
    // Translated on the external device's egress, after the stack has routed it.
    Ok(Verdict::PASS)
}

/// Rewrites addresses, ports (or the ICMP echo identifier) and checksums to `to`, and
/// counts the packet; a rewrite to what the packet already is (a host connection tracked as
/// itself, a fragment XDP translated before us) is neither done nor counted. A first
/// fragment's rewrite is remembered for the later ones, the identity included.
#[inline(always)]
fn rewrite(ctx: &TcContext, pkt: &Packet, to: &CtEntry) -> Result<(), Stat> {
    let k = &pkt.key;
    frag::remember(pkt, to.src_ip, to.dst_ip, to.flags);
    if k.unchanged(to) {
        return Ok(());
    }
    // A later fragment has no L4 header: its addresses only (the checksum is in the first).
    let l4 = matches!(k.proto, IPPROTO_TCP | IPPROTO_UDP) && pkt.frag != Frag::Later;
    let iph: *mut Ipv4Hdr = skb_ptr_at(ctx, pkt.l3).ok_or(Stat::RewriteFailed)?;
    // SAFETY: bounds checked by skb_ptr_at; tc programs may write the packet.
    rewrite_addresses(unsafe { &mut *iph }, k, to);
    // What the L4 checksum must take in for the ports (or the echo identifier), which the
    // pseudo header does not hold.
    let mut ports_diff = None;
    if l4 {
        let word = |src: u16, dst: u16| u32::from(src) | u32::from(dst) << 16;
        let (old, new) = (word(k.src_port, k.dst_port), word(to.src_port, to.dst_port));
        if old != new {
            let ports: *mut [u16; 2] = skb_ptr_at(ctx, pkt.l4).ok_or(Stat::RewriteFailed)?;
            // SAFETY: bounds checked by skb_ptr_at.
            unsafe { *ports = [to.src_port, to.dst_port] };
            ports_diff = Some(csum::diff32(old, new));
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
            let id: *mut u16 = skb_ptr_at(ctx, pkt.l4 + 4).ok_or(Stat::RewriteFailed)?;
            // SAFETY: bounds checked by skb_ptr_at.
            unsafe { *id = new };
            ports_diff = Some(csum::diff16(k.src_port, new));
        }
    }
    // The checksum helper last: it may move the packet data. UDP's "no checksum" (0) stays
    // so, and a sum that comes out 0 is sent as 0xffff.
    let csum_at = pkt.l4_csum_offset();
    let mangled = if k.proto == IPPROTO_UDP {
        u64::from(BPF_F_MARK_MANGLED_0)
    } else {
        0
    };
    let failed = |_| Stat::RewriteFailed;
    if l4 && (k.src_ip != to.src_ip || k.dst_ip != to.dst_ip) {
        let addresses = csum::add(
            csum::diff32(k.src_ip, to.src_ip),
            csum::diff32(k.dst_ip, to.dst_ip),
        );
        // Size 0: `to` is a difference.
        ctx.l4_csum_replace(
            csum_at,
            0,
            u64::from(addresses),
            u64::from(BPF_F_PSEUDO_HDR) | mangled,
        )
        .map_err(failed)?;
    }
    if let Some(diff) = ports_diff {
        ctx.l4_csum_replace(csum_at, 0, u64::from(diff), mangled)
            .map_err(failed)?;
    }
    count(if pkt.frag == Frag::Later {
        Stat::Fragments
    } else {
        Stat::Translated
    });
    Ok(())
}

/// Decrements the TTL (the fast path skips the host's forwarding, which would).
#[inline(always)]
fn decrement_ttl(ctx: &TcContext, pkt: &Packet) -> Result<(), Stat> {
    let iph: *mut Ipv4Hdr = skb_ptr_at(ctx, pkt.l3).ok_or(Stat::RewriteFailed)?;
    // SAFETY: bounds checked by skb_ptr_at.
    packet::decrement_ttl(unsafe { &mut *iph });
    Ok(())
}

/// Sets the Ethernet destination and source, a byte at a time: an array copy compiles to a
/// call to `memmove` (a BPF function), which costs more than the twelve stores.
#[inline(always)]
pub fn set_macs(ctx: &TcContext, dst: &[u8; 6], src: &[u8; 6]) -> Result<(), Stat> {
    let eth: *mut [u8; 12] = skb_ptr_at(ctx, 0).ok_or(Stat::RewriteFailed)?;
    let eth = eth.cast::<u8>();
    for i in 0..6 {
        // SAFETY: bounds checked by skb_ptr_at (12 bytes).
        unsafe {
            eth.add(i).write_volatile(dst[i]);
            eth.add(6 + i).write_volatile(src[i]);
        }
    }
    Ok(())
}

/// Whether the packet is a GSO segment, several MTU-sized segments in one skb: bulk TCP
/// from a local sender (a NIC's GRO makes them too).
#[inline(always)]
fn is_gso(ctx: &TcContext) -> bool {
    // SAFETY: a field of the program's own context.
    let segs = unsafe { (*ctx.skb.skb).gso_segs };
    segs > 1
}

/// Whether a packet of the flow whose entry at `key` has `flags` takes the stack's way
/// rather than the fast path, into its container or out of it: a GSO segment does, and so
/// does every packet of its flow in that direction after it (the entry is marked).
///
/// On a veth link, one TCP flow's segments reach the next device's backlogs on both CPUs
/// (the sender transmits from the softirq of each acknowledgement too). Sent straight on,
/// they overtook each other far more often than after the host's forwarding; the sender
/// took the reordering for loss, and bulk TCP ran at 0.7-0.9× iptables' into a container
/// and 0.65-0.8× out of one. One forwarding per 64 KiB segment costs little. The flow's
/// small segments follow its GSO ones: sent straight on, they would overtake those still in
/// the stack's backlog. Other flows' small packets, where the fast path pays, still take it.
#[inline(always)]
pub fn via_stack<K: Flow>(ctx: &TcContext, key: &K, flags: u8) -> bool {
    if flags & ct_flags::VIA_STACK != 0 {
        return true;
    }
    if !is_gso(ctx) {
        return false;
    }
    ct::add_flags(key, ct_flags::VIA_STACK);
    true
}

/// Fast path into a container: straight to the peer of its host-side veth, skipping the
/// host's routing and bridge. Falls back to the stack whenever it cannot be sure. (No GSO
/// segment gets here: see [`via_stack`].)
#[inline(always)]
fn to_container_peer(ctx: &TcContext, pkt: &Packet, dst_ip: u32, config: &NatConfig) -> Verdict {
    let Some(info) = container(config, dst_ip) else {
        return Verdict::PASS;
    };
    if pkt.ttl <= 1 || decrement_ttl(ctx, pkt).is_err() {
        return Verdict::PASS;
    }
    if set_macs(ctx, &info.mac, &config.bridge_mac).is_err() {
        return Verdict::DROP;
    }
    count(Stat::FastPath);
    // SAFETY: a helper taking plain integers.
    Verdict::redirect(unsafe { bpf_redirect_peer(info.host_ifindex, 0) } as i32)
}

/// Hairpin delivery: out of the target container's host-side veth, as the bridge would.
#[inline(always)]
fn to_container_egress(ctx: &TcContext, dst_ip: u32, config: &NatConfig) -> Verdict {
    let Some(info) = container(config, dst_ip) else {
        return Verdict::PASS;
    };
    if set_macs(ctx, &info.mac, &config.bridge_mac).is_err() {
        return Verdict::DROP;
    }
    // SAFETY: a helper taking plain integers.
    Verdict::redirect(unsafe { bpf_redirect(info.host_ifindex, 0) } as i32)
}

/// How long a remembered next hop is used before the FIB is asked again.
const NEXT_HOP_LIFETIME_NS: u64 = 1_000_000_000;

/// Fast path for a reply leaving a container towards a client outside: route it first
/// (before rewriting: a packet already carrying the host's address would be a martian if
/// handed back to the stack), then rewrite and send it straight out. The route is the one
/// remembered for the client when it is fresh and the packet fits its MTU; otherwise the
/// FIB is asked, and its answer remembered.
#[inline(always)]
fn fast_reply(ctx: &TcContext, pkt: &Packet, entry: &CtEntry) -> Result<Verdict, Stat> {
    // A per-CPU slot, copied out at once: no one writes it meanwhile.
    if let Some(hop) = NEXT_HOP.get(cache_slot(entry.dst_ip)).copied()
        && hop.client == entry.dst_ip
        && entry.last_seen_ns.wrapping_sub(hop.learned_ns) < NEXT_HOP_LIFETIME_NS
        && pkt.len <= hop.mtu
        && pkt.ttl > 1
    {
        count(Stat::NextHopRemembered);
        return send_reply(ctx, pkt, entry, &hop);
    }
    fib_reply(ctx, pkt, entry)
}

/// Rewrites a fast-pathed reply (addresses, ports, TTL), counts it and marks it.
#[inline(always)]
fn translate_reply(ctx: &TcContext, pkt: &Packet, entry: &CtEntry) -> Result<(), Stat> {
    rewrite(ctx, pkt, entry)?;
    count_port(&entry.counter, u64::from(pkt.len));
    decrement_ttl(ctx, pkt)?;
    count(Stat::FastPath);
    // Translated already: the external device's egress program lets it go at once.
    ctx.set_mark(MARK_TRANSLATED);
    Ok(())
}

/// Rewrites a reply and sends it out of `hop`'s device to its next hop.
#[inline(always)]
fn send_reply(
    ctx: &TcContext,
    pkt: &Packet,
    entry: &CtEntry,
    hop: &NextHop,
) -> Result<Verdict, Stat> {
    translate_reply(ctx, pkt, entry)?;
    set_macs(ctx, &hop.dmac, &hop.smac)?;
    // SAFETY: a helper taking plain integers.
    Ok(Verdict::redirect(
        unsafe { bpf_redirect(hop.ifindex, 0) } as i32
    ))
}

/// [`fast_reply`] through a FIB lookup.
#[inline(always)]
fn fib_reply(ctx: &TcContext, pkt: &Packet, entry: &CtEntry) -> Result<Verdict, Stat> {
    // SAFETY: an all-zero bpf_fib_lookup is a valid starting point.
    let mut params: bpf_fib_lookup = unsafe { core::mem::zeroed() };
    params.family = AF_INET;
    params.l4_protocol = pkt.key.proto;
    params.sport = entry.src_port;
    params.dport = entry.dst_port;
    // tot_len stays 0: the kernel then checks the MTU against the skb, and reports the
    // device's MTU, which the remembered next hop keeps. (No GSO segment gets here: see
    // [`via_stack`].)
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
        return Ok(Verdict::PASS);
    }
    if rc == BPF_FIB_LKUP_RET_NO_NEIGH {
        translate_reply(ctx, pkt, entry)?;
        // SAFETY: no neighbour parameters: the kernel resolves the next hop itself.
        return Ok(Verdict::redirect(unsafe {
            bpf_redirect_neigh(params.ifindex, core::ptr::null_mut(), 0, 0)
        } as i32));
    }
    let hop = NextHop {
        learned_ns: entry.last_seen_ns,
        ifindex: params.ifindex,
        client: entry.dst_ip,
        // With tot_len 0, the lookup reports the device's MTU here.
        // SAFETY: a union of two u16.
        mtu: unsafe { params.__bindgen_anon_1.mtu_result },
        dmac: params.dmac,
        smac: params.smac,
        pad: [0; 2],
    };
    if let Some(place) = NEXT_HOP.get_ptr_mut(cache_slot(entry.dst_ip)) {
        // SAFETY: this CPU's copy of the slot; nothing else writes it meanwhile.
        unsafe { *place = hop };
    }
    send_reply(ctx, pkt, entry, &hop)
}
