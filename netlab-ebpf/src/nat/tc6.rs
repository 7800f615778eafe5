//! The tcx programs' IPv6 side (NAT66): the same translations as for IPv4, on the same hooks
//! (the entry points hand IPv6 packets here), with the IPv6 maps. IPv6 has no header
//! checksum; the upper-layer checksum of TCP, UDP and ICMPv6 alike covers the addresses
//! (pseudo header), so an address rewrite is one difference for `bpf_l4_csum_replace`, the
//! ports another. The fast path into containers is IPv4's; replies ask the FIB every time
//! (IPv4's next-hop cache is not kept for IPv6).

use aya_ebpf::{
    bindings::{
        BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR, BPF_FIB_LKUP_RET_NO_NEIGH,
        BPF_FIB_LKUP_RET_SUCCESS, bpf_fib_lookup,
    },
    helpers::{bpf_fib_lookup as fib_lookup, bpf_redirect, bpf_redirect_neigh, bpf_redirect_peer},
    macros::map,
    maps::PerCpuArray,
    programs::TcContext,
};
use netlab_common::{
    nat::{CounterRef, MARK_TRANSLATED, NatConfig, Stat, ct_flags, flags},
    nat6::{CtEntry6, FlowKey6, FragEntry6, Ipv6Words, NatConfig6, PublishValue6},
};

use super::{
    csum, ct,
    flow::Flow as _,
    icmp6,
    maps::{count, count_port, source_as_gateway},
    maps6::{FRAGMENTS6, container6, in_subnet6, published6, to_container6},
    packet::{ETH_HLEN, Frag, IPPROTO_TCP, IPPROTO_UDP, skb_ptr_at},
    packet6::{ICMPV6_ECHO_REQUEST, IPPROTO_ICMPV6, Ipv6Hdr, Packet6, parse6},
    tc::{Verdict, action, set_macs, via_stack},
};

const AF_INET6: u8 = 10;

/// Both configs, passed as one argument: a BPF function takes at most five registers, and a
/// result returned through memory takes one of them.
pub type Configs<'a> = (&'a NatConfig, &'a NatConfig6);

/// This CPU's working space for the IPv6 packet in hand. A program's call chain has 512
/// bytes of stack in all, and the IPv6 tuples and entries are big: kept here instead, each
/// step of the path reads and writes them in place.
pub struct Scratch6 {
    pub pkt: Packet6,
    /// The entry the packet is rewritten to.
    pub entry: CtEntry6,
    /// A tuple being built: a new flow's rewritten one, or the flow an ICMPv6 error quotes.
    pub key: FlowKey6,
    /// The outer destination of a translated ICMPv6 error.
    pub dst: Ipv6Words,
}

#[map(name = "NETLAB_SCRATCH6")]
static SCRATCH6: PerCpuArray<Scratch6> = PerCpuArray::with_max_entries(1, 0);

/// Runs `path` on this CPU's [`Scratch6`] and returns its tc action.
#[inline(always)]
fn with_scratch(ctx: &TcContext, path: impl FnOnce(&mut Scratch6) -> Result<Verdict, Stat>) -> i32 {
    let Some(scratch) = SCRATCH6.get_ptr_mut(0) else {
        return Verdict::PASS.code();
    };
    // SAFETY: this CPU's slot; tc programs do not run nested on one CPU.
    action(ctx, path(unsafe { &mut *scratch }))
}

/// External device, ingress, IPv6: DNAT for published ports and the reverse of masquerade.
#[inline(never)]
pub fn ext_ingress(ctx: &TcContext, configs: &Configs) -> i32 {
    with_scratch(ctx, |s| try_ext_ingress(ctx, configs, s))
}

#[inline(always)]
fn try_ext_ingress(ctx: &TcContext, configs: &Configs, s: &mut Scratch6) -> Result<Verdict, Stat> {
    let (config, c6) = *configs;
    parse6(ctx, Some(c6), &mut s.pkt)?;
    let fast_path = config.flags & flags::FAST_PATH != 0;
    let masquerade = config.flags & flags::MASQUERADE != 0;
    if s.pkt.frag == Frag::Later {
        if !frag_lookup(s) {
            if !masquerade && to_container6(c6, &s.pkt.key.dst_ip) {
                return Ok(Verdict::PASS);
            }
            return Err(Stat::FragmentsDropped);
        }
        rewrite(ctx, s)?;
        return Ok(if fast_path && to_container6(c6, &s.entry.dst_ip) {
            to_container_peer(ctx, &s.entry.dst_ip, config)
        } else {
            Verdict::PASS
        });
    }
    if icmp6::is_error(&s.pkt) {
        let translated = icmp6::translate_error::<false>(ctx, s)?;
        return if translated && fast_path {
            Ok(to_container_peer(ctx, &s.dst, config))
        } else if !translated && to_container6(c6, &s.pkt.key.dst_ip) && masquerade {
            Err(Stat::DirectAccess)
        } else {
            Ok(Verdict::PASS)
        };
    }
    if !lookup(s) && !create_dnat(configs, s)? {
        if to_container6(c6, &s.pkt.key.dst_ip) {
            // Straight to a container: only in a routed lab (no masquerade).
            if !masquerade {
                return Ok(Verdict::PASS);
            }
            return Err(Stat::DirectAccess);
        }
        // For the host itself: its later fragments pass too.
        frag_remember(&s.pkt, &s.pkt.key.src_ip, &s.pkt.key.dst_ip, 0);
        return Ok(Verdict::PASS);
    }
    rewrite(ctx, s)?;
    count_port(&s.entry.counter, u64::from(s.pkt.len));
    if fast_path && !via_stack(ctx, &s.pkt.key, s.entry.flags) {
        return Ok(to_container_peer(ctx, &s.entry.dst_ip, config));
    }
    Ok(Verdict::PASS)
}

/// External device, egress, IPv6: the reverse of DNAT, and masquerade.
#[inline(never)]
pub fn ext_egress(ctx: &TcContext, configs: &Configs) -> i32 {
    with_scratch(ctx, |s| try_ext_egress(ctx, configs, s))
}

#[inline(always)]
fn try_ext_egress(ctx: &TcContext, configs: &Configs, s: &mut Scratch6) -> Result<Verdict, Stat> {
    let (config, c6) = *configs;
    parse6(ctx, None, &mut s.pkt)?;
    let from_subnet = in_subnet6(c6, &s.pkt.key.src_ip);
    if s.pkt.frag == Frag::Later {
        if frag_lookup(s) {
            return rewrite(ctx, s).map(|()| Verdict::PASS);
        }
        // Never out with a container's address.
        return if from_subnet {
            Err(Stat::FragmentsDropped)
        } else {
            Ok(Verdict::PASS)
        };
    }
    if icmp6::is_error(&s.pkt) {
        icmp6::translate_error::<false>(ctx, s)?;
        return Ok(Verdict::PASS);
    }
    if !lookup(s) {
        if !s.pkt.has_ports() {
            return Ok(Verdict::PASS);
        }
        if from_subnet && config.flags & flags::MASQUERADE != 0 {
            masquerade(ctx, c6, s)?;
        } else if s.pkt.key.src_ip != c6.external_ip || !track_host_flow(s)? {
            return Ok(Verdict::PASS);
        }
    }
    rewrite(ctx, s)?;
    count_port(&s.entry.counter, u64::from(s.pkt.len));
    Ok(Verdict::PASS)
}

/// A container's host-side veth, ingress, IPv6: hairpin and fast-path replies.
#[inline(never)]
pub fn ctr_ingress(ctx: &TcContext, configs: &Configs) -> i32 {
    with_scratch(ctx, |s| try_ctr_ingress(ctx, configs, s))
}

#[inline(always)]
fn try_ctr_ingress(ctx: &TcContext, configs: &Configs, s: &mut Scratch6) -> Result<Verdict, Stat> {
    let config = configs.0;
    parse6(ctx, None, &mut s.pkt)?;
    if s.pkt.frag == Frag::Later {
        if frag_lookup(s) && s.entry.flags & ct_flags::HAIRPIN != 0 {
            rewrite(ctx, s)?;
            return Ok(to_container_egress(ctx, &s.entry.dst_ip, config));
        }
        return Ok(Verdict::PASS);
    }
    if icmp6::is_error(&s.pkt) {
        return Ok(if icmp6::translate_error::<true>(ctx, s)? {
            to_container_egress(ctx, &s.dst, config)
        } else {
            Verdict::PASS
        });
    }
    if !lookup(s) && !create_hairpin(ctx, configs, s)? {
        return Ok(Verdict::PASS);
    }
    if s.entry.flags & ct_flags::HAIRPIN != 0 {
        rewrite(ctx, s)?;
        count_port(&s.entry.counter, u64::from(s.pkt.len));
        return Ok(to_container_egress(ctx, &s.entry.dst_ip, config));
    }
    let reply_to_outside =
        s.entry.flags & (ct_flags::DNAT | ct_flags::REPLY) == ct_flags::DNAT | ct_flags::REPLY;
    if config.flags & flags::FAST_PATH != 0
        && reply_to_outside
        && !via_stack(ctx, &s.pkt.key, s.entry.flags)
    {
        return fib_reply(ctx, s);
    }
    Ok(Verdict::PASS)
}

/// The live conntrack entry of this packet's tuple, into `s.entry` (a BPF function of its
/// own, as each step below: the caller's frame stays small).
#[inline(never)]
fn lookup(s: &mut Scratch6) -> bool {
    ct::lookup_into(&s.pkt.key, Some(s.pkt.tcp_flags), &mut s.entry)
}

/// A new masqueraded flow out of the subnet, into `s.entry`.
#[inline(never)]
fn masquerade(ctx: &TcContext, c6: &NatConfig6, s: &mut Scratch6) -> Result<(), Stat> {
    s.key = s.pkt.key;
    s.key.src_ip = c6.external_ip;
    ct::create_masquerade_into(ctx, &s.pkt.key, &s.key, ct_flags::SNAT, &mut s.entry)
}

/// The host's own connection, tracked as itself (see the IPv4 side), into `s.entry`;
/// `false` when a TCP connection already running when first seen cannot keep its tuple (it
/// goes untracked).
#[inline(never)]
fn track_host_flow(s: &mut Scratch6) -> Result<bool, Stat> {
    let new_flow = s.pkt.key.proto != IPPROTO_TCP || ct::is_syn(s.pkt.tcp_flags);
    match ct::create_into(
        &s.pkt.key,
        &s.pkt.key,
        ct_flags::HOST,
        CounterRef::default(),
        new_flow,
        &mut s.entry,
    ) {
        Ok(()) => Ok(true),
        Err(_) if !new_flow => Ok(false),
        Err(stat) => Err(stat),
    }
}

/// A new hairpin flow, into `s.entry`: a container reaching a port published in IPv6
/// through a host address (`false`: not one).
#[inline(never)]
fn create_hairpin(ctx: &TcContext, configs: &Configs, s: &mut Scratch6) -> Result<bool, Stat> {
    let (config, c6) = *configs;
    let k = &s.pkt.key;
    if !matches!(k.proto, IPPROTO_TCP | IPPROTO_UDP) || to_container6(c6, &k.dst_ip) {
        return Ok(false);
    }
    let Some(target) = published6(c6, &k.dst_ip, k.dst_port, k.proto, false) else {
        return Ok(false);
    };
    // Only a new flow, as on the IPv4 side.
    if if k.proto == IPPROTO_TCP {
        !ct::is_syn(s.pkt.tcp_flags)
    } else {
        k.host_owned(ctx)
    } {
        return Ok(false);
    }
    let as_gateway = source_as_gateway(config, true, k.src_ip == target.ip);
    create_to(
        s,
        &target,
        as_gateway.then_some(&c6.gateway_ip),
        ct_flags::DNAT | ct_flags::HAIRPIN,
    )
}

/// A new flow for a packet to a port published in IPv6, into `s.entry`; `false` when it is
/// not for one.
#[inline(never)]
fn create_dnat(configs: &Configs, s: &mut Scratch6) -> Result<bool, Stat> {
    let (config, c6) = *configs;
    let key = &s.pkt.key;
    if !matches!(key.proto, IPPROTO_TCP | IPPROTO_UDP) {
        return Ok(false);
    }
    let Some(target) = published6(c6, &key.dst_ip, key.dst_port, key.proto, false) else {
        return Ok(false);
    };
    let as_gateway = source_as_gateway(config, false, false);
    create_to(
        s,
        &target,
        as_gateway.then_some(&c6.gateway_ip),
        ct_flags::DNAT,
    )
}

/// Creates the flow of the packet in `s` to the published port's `target`, from `src_ip`
/// instead of the client when given, its forward entry into `s.entry`; `true` once done.
#[inline(always)]
fn create_to(
    s: &mut Scratch6,
    target: &PublishValue6,
    src_ip: Option<&Ipv6Words>,
    flags: u8,
) -> Result<bool, Stat> {
    s.key = s.pkt.key;
    if let Some(src_ip) = src_ip {
        s.key.src_ip = *src_ip;
    }
    s.key.dst_ip = target.ip;
    s.key.dst_port = target.port;
    ct::create_into(
        &s.pkt.key,
        &s.key,
        flags,
        target.counter,
        true,
        &mut s.entry,
    )?;
    Ok(true)
}

/// Remembers how a first fragment's addresses were rewritten, for the later ones.
#[inline(never)]
fn frag_remember(pkt: &Packet6, src_ip: &Ipv6Words, dst_ip: &Ipv6Words, flags: u8) {
    if pkt.frag != Frag::First {
        return;
    }
    let entry = FragEntry6 {
        src_ip: *src_ip,
        dst_ip: *dst_ip,
        flags,
        pad: [0; 3],
    };
    let _ = FRAGMENTS6.insert(pkt.frag_key(), entry, 0);
}

/// How to rewrite a later fragment (its addresses only), into `s.entry`.
#[inline(always)]
fn frag_lookup(s: &mut Scratch6) -> bool {
    let Some(entry) = FRAGMENTS6.get_ptr(s.pkt.frag_key()) else {
        return false;
    };
    // SAFETY: a pointer into the map's value, valid during the program.
    let entry = unsafe { &*entry };
    s.entry = CtEntry6 {
        src_ip: entry.src_ip,
        dst_ip: entry.dst_ip,
        flags: entry.flags,
        ..CtEntry6::default()
    };
    true
}

/// The checksum difference of an address changing from `old` to `new`.
#[inline(always)]
pub fn address_diff(old: &Ipv6Words, new: &Ipv6Words) -> u32 {
    let mut diff = 0;
    for i in 0..4 {
        diff = csum::add(diff, csum::diff32(old[i], new[i]));
    }
    diff
}

/// Rewrites addresses, ports (or the echo identifier) and the upper-layer checksum to
/// `s.entry`, as the IPv4 side's `rewrite` does. The upper-layer header's offset comes from
/// the scratch map, unbounded for the verifier: its fields are written with a helper.
#[inline(never)]
fn rewrite(ctx: &TcContext, s: &Scratch6) -> Result<(), Stat> {
    let (pkt, to) = (&s.pkt, &s.entry);
    let k = &pkt.key;
    frag_remember(pkt, &to.src_ip, &to.dst_ip, to.flags);
    if k.unchanged(to) {
        return Ok(());
    }
    let failed = |_| Stat::RewriteFailed;
    let iph: *mut Ipv6Hdr = skb_ptr_at(ctx, ETH_HLEN).ok_or(Stat::RewriteFailed)?;
    // SAFETY: bounds checked by skb_ptr_at; tc programs may write the packet.
    unsafe {
        (*iph).saddr = to.src_ip;
        (*iph).daddr = to.dst_ip;
    }
    let mut ports_diff = None;
    if matches!(k.proto, IPPROTO_TCP | IPPROTO_UDP) && pkt.has_l4() {
        let word = |src: u16, dst: u16| u32::from(src) | u32::from(dst) << 16;
        let (old, new) = (word(k.src_port, k.dst_port), word(to.src_port, to.dst_port));
        if old != new {
            ctx.store(pkt.l4(), &[to.src_port, to.dst_port], 0)
                .map_err(failed)?;
            ports_diff = Some(csum::diff32(old, new));
        }
    } else if pkt.has_ports() {
        let new = if pkt.icmp_type == ICMPV6_ECHO_REQUEST {
            to.src_port
        } else {
            to.dst_port
        };
        if new != k.src_port {
            ctx.store(pkt.l4() + 4, &new, 0).map_err(failed)?;
            ports_diff = Some(csum::diff16(k.src_port, new));
        }
    }
    if pkt.has_l4() && matches!(k.proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMPV6) {
        let csum_at = pkt.l4_csum_offset();
        let mangled = if k.proto == IPPROTO_UDP {
            u64::from(BPF_F_MARK_MANGLED_0)
        } else {
            0
        };
        let addresses = csum::add(
            address_diff(&k.src_ip, &to.src_ip),
            address_diff(&k.dst_ip, &to.dst_ip),
        );
        if addresses != 0 {
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
    }
    count(if pkt.frag == Frag::Later {
        Stat::Fragments
    } else {
        Stat::Translated
    });
    Ok(())
}

/// Decrements the hop limit (the fast path skips the host's forwarding, which would).
#[inline(always)]
fn decrement_hop_limit(ctx: &TcContext) -> Result<(), Stat> {
    let iph: *mut Ipv6Hdr = skb_ptr_at(ctx, ETH_HLEN).ok_or(Stat::RewriteFailed)?;
    // SAFETY: bounds checked by skb_ptr_at.
    unsafe { (*iph).hop_limit -= 1 };
    Ok(())
}

/// Fast path into a container: straight to the peer of its host-side veth. (No GSO segment
/// gets here: see `tc::via_stack`.)
#[inline(never)]
fn to_container_peer(ctx: &TcContext, dst_ip: &Ipv6Words, config: &NatConfig) -> Verdict {
    let Some(info) = container6(dst_ip) else {
        return Verdict::PASS;
    };
    let Some(iph) = skb_ptr_at::<Ipv6Hdr>(ctx, ETH_HLEN) else {
        return Verdict::PASS;
    };
    // SAFETY: bounds checked by skb_ptr_at; tc programs may write the packet.
    unsafe {
        if (*iph).hop_limit <= 1 {
            return Verdict::PASS;
        }
        (*iph).hop_limit -= 1;
    }
    if set_macs(ctx, &info.mac, &config.bridge_mac).is_err() {
        return Verdict::DROP;
    }
    count(Stat::FastPath);
    // SAFETY: a helper taking plain integers.
    Verdict::redirect(unsafe { bpf_redirect_peer(info.host_ifindex, 0) } as i32)
}

/// Hairpin delivery: out of the target container's host-side veth.
#[inline(never)]
fn to_container_egress(ctx: &TcContext, dst_ip: &Ipv6Words, config: &NatConfig) -> Verdict {
    let Some(info) = container6(dst_ip) else {
        return Verdict::PASS;
    };
    if set_macs(ctx, &info.mac, &config.bridge_mac).is_err() {
        return Verdict::DROP;
    }
    // SAFETY: a helper taking plain integers.
    Verdict::redirect(unsafe { bpf_redirect(info.host_ifindex, 0) } as i32)
}

/// Fast path for a reply leaving a container towards a client outside: routed by the FIB
/// first (before the rewrite), then rewritten and sent straight out.
#[inline(never)]
fn fib_reply(ctx: &TcContext, s: &Scratch6) -> Result<Verdict, Stat> {
    let (pkt, entry) = (&s.pkt, &s.entry);
    // SAFETY: an all-zero bpf_fib_lookup is a valid starting point.
    let mut params: bpf_fib_lookup = unsafe { core::mem::zeroed() };
    params.family = AF_INET6;
    params.l4_protocol = pkt.key.proto;
    params.sport = entry.src_port;
    params.dport = entry.dst_port;
    // SAFETY: ctx wraps the kernel's __sk_buff.
    params.ifindex = unsafe { (*ctx.skb.skb).ifindex };
    params.__bindgen_anon_3.ipv6_src = entry.src_ip;
    params.__bindgen_anon_4.ipv6_dst = entry.dst_ip;
    // SAFETY: params is a valid, fully initialised bpf_fib_lookup on our stack.
    let rc = unsafe {
        fib_lookup(
            ctx.skb.skb.cast(),
            &raw mut params,
            size_of::<bpf_fib_lookup>() as i32,
            0,
        )
    } as u32;
    if rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH || pkt.hop_limit <= 1 {
        return Ok(Verdict::PASS);
    }
    rewrite(ctx, s)?;
    count_port(&entry.counter, u64::from(pkt.len));
    decrement_hop_limit(ctx)?;
    count(Stat::FastPath);
    ctx.set_mark(MARK_TRANSLATED);
    if rc == BPF_FIB_LKUP_RET_NO_NEIGH {
        // SAFETY: no neighbour parameters: the kernel resolves the next hop itself.
        return Ok(Verdict::redirect(unsafe {
            bpf_redirect_neigh(params.ifindex, core::ptr::null_mut(), 0, 0)
        } as i32));
    }
    set_macs(ctx, &params.dmac, &params.smac)?;
    // SAFETY: a helper taking plain integers.
    Ok(Verdict::redirect(
        unsafe { bpf_redirect(params.ifindex, 0) } as i32,
    ))
}
