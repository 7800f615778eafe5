//! Sockets of the host node's own, found with the kernel's socket lookup: masquerade must
//! not hand a container a tuple that a host socket owns, and a container's reply to a host
//! process is not a new hairpin flow.

use aya_ebpf::{
    bindings::{BPF_F_CURRENT_NETNS, bpf_sock_tuple},
    helpers::{bpf_sk_lookup_udp, bpf_sk_release, bpf_skc_lookup_tcp},
    programs::TcContext,
};
use netlab_common::{nat::FlowKey, nat6::FlowKey6};

use super::packet::{IPPROTO_TCP, IPPROTO_UDP};

/// Whether a socket of the host node (in the program's namespace) would receive a packet
/// showing `key` (source: the remote end, destination: a host address): a TCP socket in any
/// state, listening included, or a bound UDP socket.
#[inline(always)]
pub fn owns(ctx: &TcContext, key: &FlowKey) -> bool {
    // SAFETY: an all-zero tuple is valid; the IPv4 half is filled below.
    let mut tuple: bpf_sock_tuple = unsafe { core::mem::zeroed() };
    tuple.__bindgen_anon_1.ipv4.saddr = key.src_ip;
    tuple.__bindgen_anon_1.ipv4.daddr = key.dst_ip;
    tuple.__bindgen_anon_1.ipv4.sport = key.src_port;
    tuple.__bindgen_anon_1.ipv4.dport = key.dst_port;
    // The IPv4 part of the tuple: two addresses and two ports.
    lookup(ctx, key.proto, &mut tuple, 12)
}

/// Whether a socket of protocol `proto` matches the first `size` bytes of `tuple`.
#[inline(always)]
fn lookup(ctx: &TcContext, proto: u8, tuple: &mut bpf_sock_tuple, size: u32) -> bool {
    let netns = BPF_F_CURRENT_NETNS as u64;
    let skb = ctx.skb.skb.cast();
    // SAFETY: the tuple lives on our stack for the call; a socket found is released at once.
    unsafe {
        let sock = match proto {
            IPPROTO_TCP => bpf_skc_lookup_tcp(skb, tuple, size, netns, 0),
            IPPROTO_UDP => bpf_sk_lookup_udp(skb, tuple, size, netns, 0),
            _ => return false,
        };
        if sock.is_null() {
            return false;
        }
        bpf_sk_release(sock.cast());
    }
    true
}

/// [`owns`] for an IPv6 tuple.
#[inline(always)]
pub fn owns6(ctx: &TcContext, key: &FlowKey6) -> bool {
    // SAFETY: an all-zero tuple is valid; the IPv6 half is filled below.
    let mut tuple: bpf_sock_tuple = unsafe { core::mem::zeroed() };
    // SAFETY: writing the IPv6 member of the union.
    unsafe {
        let ipv6 = &mut tuple.__bindgen_anon_1.ipv6;
        ipv6.saddr = key.src_ip;
        ipv6.daddr = key.dst_ip;
        ipv6.sport = key.src_port;
        ipv6.dport = key.dst_port;
    }
    // The IPv6 part of the tuple: two addresses and two ports.
    lookup(ctx, key.proto, &mut tuple, 36)
}
