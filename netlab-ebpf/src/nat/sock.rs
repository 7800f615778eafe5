//! cgroup socket hooks for host processes: `connect4`/`sendmsg4` send a connection or
//! datagram for a published address straight to the container (TC never sees host-local
//! traffic the way PREROUTING does), `recvmsg4` makes replies look as if they came from the
//! published address. Attached to the cgroup root, they act only in the lab's host node
//! (matched by its network namespace cookie).
#![expect(
    clippy::needless_pass_by_value,
    reason = "aya's entry-point macros hand the context over by value"
)]

use aya_ebpf::{
    helpers::{bpf_bind, bpf_get_netns_cookie, bpf_get_socket_cookie},
    macros::cgroup_sock_addr,
    programs::SockAddrContext,
};
use netlab_common::nat::{SockKey, SockOrig};

use super::{
    maps::{SOCK_ORIG, config, published},
    packet::is_loopback,
};

/// Allow the operation (cgroup `sock_addr` programs return 1 to allow).
const ALLOW: i32 = 1;

/// `struct sockaddr_in`.
#[repr(C)]
struct SockaddrIn {
    family: u16,
    port: u16,
    addr: u32,
    zero: [u8; 8],
}

const AF_INET: u16 = 2;

#[cgroup_sock_addr(connect4)]
pub fn netlab_sock_connect4(ctx: SockAddrContext) -> i32 {
    if let Some(asked) = to_container(&ctx)
        && !is_loopback(asked)
    {
        // Keep the source the address the process connected to, as iptables' OUTPUT DNAT
        // does (the route to the container would otherwise pick the bridge's address). An
        // already bound socket keeps its own address: the helper fails, which is fine.
        let mut addr = SockaddrIn {
            family: AF_INET,
            port: 0,
            addr: asked,
            zero: [0; 8],
        };
        // SAFETY: a sockaddr_in of the size we pass, on our stack.
        let _ = unsafe {
            bpf_bind(
                ctx.sock_addr.cast(),
                (&raw mut addr).cast(),
                size_of::<SockaddrIn>() as i32,
            )
        };
    }
    ALLOW
}

#[cgroup_sock_addr(sendmsg4)]
pub fn netlab_sock_sendmsg4(ctx: SockAddrContext) -> i32 {
    if let Some(asked) = to_container(&ctx)
        && !is_loopback(asked)
    {
        // SAFETY: the kernel's bpf_sock_addr for this call; msg_src_ip4 is writable here.
        unsafe { (*ctx.sock_addr).msg_src_ip4 = asked };
    }
    ALLOW
}

#[cgroup_sock_addr(recvmsg4)]
pub fn netlab_sock_recvmsg4(ctx: SockAddrContext) -> i32 {
    from_published(&ctx);
    ALLOW
}

#[inline(always)]
fn in_host_node(ctx: &SockAddrContext) -> bool {
    let Some(config) = config() else { return false };
    // SAFETY: the helper reads the context's socket's namespace.
    unsafe { bpf_get_netns_cookie(ctx.sock_addr.cast()) == config.host_netns_cookie }
}

/// Rewrites a destination that is a published address to the container's; returns the
/// address asked for when it did.
#[inline(always)]
fn to_container(ctx: &SockAddrContext) -> Option<u32> {
    let config = config()?;
    if !in_host_node(ctx) {
        return None;
    }
    // SAFETY: the kernel's bpf_sock_addr for this call.
    let addr = unsafe { &mut *ctx.sock_addr };
    let (ip, port, proto) = (addr.user_ip4, addr.user_port as u16, addr.protocol as u8);
    let target = published(config, ip, port, proto, true)?;
    // SAFETY: the helper reads the context's socket.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock_addr.cast()) };
    let key = SockKey {
        cookie,
        ip: target.ip,
        port: target.port,
        pad: 0,
    };
    let _ = SOCK_ORIG.insert(key, SockOrig { ip, port, pad: 0 }, 0);
    addr.user_ip4 = target.ip;
    addr.user_port = u32::from(target.port);
    Some(ip)
}

#[inline(always)]
fn from_published(ctx: &SockAddrContext) {
    if !in_host_node(ctx) {
        return;
    }
    // SAFETY: the kernel's bpf_sock_addr for this call.
    let addr = unsafe { &mut *ctx.sock_addr };
    // SAFETY: the helper reads the context's socket.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock_addr.cast()) };
    let key = SockKey {
        cookie,
        ip: addr.user_ip4,
        port: addr.user_port as u16,
        pad: 0,
    };
    // SAFETY: the value is copied out at once.
    if let Some(orig) = unsafe { SOCK_ORIG.get(key) }.copied() {
        addr.user_ip4 = orig.ip;
        addr.user_port = u32::from(orig.port);
    }
}
