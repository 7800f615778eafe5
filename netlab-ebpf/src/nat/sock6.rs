//! The cgroup socket hooks' IPv6 side, as `sock` does for IPv4: `connect6`/`sendmsg6` send a
//! connection or datagram for an address a port is published on in IPv6 straight to the
//! container, `recvmsg6` shows replies as coming from it. A process asking for `::1` is
//! sent to the container as well (its source is then the bridge's address, which the
//! container can answer): what the netfilter backends cannot do, IPv6 having no
//! `route_localnet`.
#![expect(
    clippy::needless_pass_by_value,
    reason = "aya's entry-point macros hand the context over by value"
)]

use aya_ebpf::{
    helpers::{bpf_bind, bpf_get_netns_cookie, bpf_get_socket_cookie},
    macros::cgroup_sock_addr,
    programs::SockAddrContext,
};
use netlab_common::nat6::{Ipv6Words, SockKey6, SockOrig6};

use super::{
    maps::config,
    maps6::{SOCK_ORIG6, config6, is_loopback6, published6},
};

/// Allow the operation (cgroup `sock_addr` programs return 1 to allow).
const ALLOW: i32 = 1;

/// `struct sockaddr_in6`.
#[repr(C)]
struct SockaddrIn6 {
    family: u16,
    port: u16,
    flowinfo: u32,
    addr: Ipv6Words,
    scope_id: u32,
}

const AF_INET6: u16 = 10;

#[cgroup_sock_addr(connect6)]
pub fn netlab_sock_connect6(ctx: SockAddrContext) -> i32 {
    if let Some(asked) = to_container(&ctx)
        && !is_loopback6(&asked)
    {
        // Keep the source the address the process connected to, as the IPv4 side does.
        let mut addr = SockaddrIn6 {
            family: AF_INET6,
            port: 0,
            flowinfo: 0,
            addr: asked,
            scope_id: 0,
        };
        // SAFETY: a sockaddr_in6 of the size we pass, on our stack.
        let _ = unsafe {
            bpf_bind(
                ctx.sock_addr.cast(),
                (&raw mut addr).cast(),
                size_of::<SockaddrIn6>() as i32,
            )
        };
    }
    ALLOW
}

#[cgroup_sock_addr(sendmsg6)]
pub fn netlab_sock_sendmsg6(ctx: SockAddrContext) -> i32 {
    if let Some(asked) = to_container(&ctx)
        && !is_loopback6(&asked)
    {
        // SAFETY: the kernel's bpf_sock_addr for this call; msg_src_ip6 is writable here.
        unsafe { write_words(&raw mut (*ctx.sock_addr).msg_src_ip6, &asked) };
    }
    ALLOW
}

#[cgroup_sock_addr(recvmsg6)]
pub fn netlab_sock_recvmsg6(ctx: SockAddrContext) -> i32 {
    from_published(&ctx);
    ALLOW
}

#[inline(always)]
fn in_host_node(ctx: &SockAddrContext) -> bool {
    let Some(config) = config() else { return false };
    // SAFETY: the helper reads the context's socket's namespace.
    unsafe { bpf_get_netns_cookie(ctx.sock_addr.cast()) == config.host_netns_cookie }
}

/// Rewrites a destination that is an address a port is published on to the container's;
/// returns the address asked for when it did.
#[inline(always)]
fn to_container(ctx: &SockAddrContext) -> Option<Ipv6Words> {
    let c6 = config6()?;
    if !in_host_node(ctx) {
        return None;
    }
    // SAFETY: the kernel's bpf_sock_addr for this call.
    let addr = unsafe { &mut *ctx.sock_addr };
    // SAFETY: user_ip6 is readable in these hooks.
    let ip = unsafe { read_words(&raw const addr.user_ip6) };
    let (port, proto) = (addr.user_port as u16, addr.protocol as u8);
    let target = published6(c6, &ip, port, proto, true)?;
    // SAFETY: the helper reads the context's socket.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock_addr.cast()) };
    let key = SockKey6 {
        cookie,
        ip: target.ip,
        port: target.port,
        pad: [0; 6],
    };
    let _ = SOCK_ORIG6.insert(key, SockOrig6 { ip, port, pad: 0 }, 0);
    // SAFETY: user_ip6 is writable in these hooks.
    unsafe { write_words(&raw mut addr.user_ip6, &target.ip) };
    addr.user_port = u32::from(target.port);
    Some(ip)
}

#[inline(always)]
fn from_published(ctx: &SockAddrContext) {
    if config6().is_none() || !in_host_node(ctx) {
        return;
    }
    // SAFETY: the kernel's bpf_sock_addr for this call.
    let addr = unsafe { &mut *ctx.sock_addr };
    // SAFETY: the helper reads the context's socket.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock_addr.cast()) };
    let key = SockKey6 {
        cookie,
        // SAFETY: user_ip6 is readable in these hooks.
        ip: unsafe { read_words(&raw const addr.user_ip6) },
        port: addr.user_port as u16,
        pad: [0; 6],
    };
    // SAFETY: the value is copied out at once.
    if let Some(orig) = unsafe { SOCK_ORIG6.get(key) }.copied() {
        // SAFETY: user_ip6 is writable in these hooks.
        unsafe { write_words(&raw mut addr.user_ip6, &orig.ip) };
        addr.user_port = u32::from(orig.port);
    }
}

/// Reads an address from a context field, one 32-bit load at a fixed offset from the
/// context each (see [`write_words`]).
///
/// # Safety
/// `field` is a readable address field of the hook's `bpf_sock_addr`.
#[inline(always)]
unsafe fn read_words(field: *const [u32; 4]) -> Ipv6Words {
    let field = field.cast::<u32>();
    // SAFETY: within the field, as the caller guarantees.
    unsafe {
        [
            field.read_volatile(),
            field.add(1).read_volatile(),
            field.add(2).read_volatile(),
            field.add(3).read_volatile(),
        ]
    }
}

/// Writes an address to a context field, one 32-bit store at a fixed offset from the
/// context each: the verifier refuses a store through a pointer computed from it, which
/// LLVM makes of a plain 16-byte assignment.
///
/// # Safety
/// `field` is a writable address field of the hook's `bpf_sock_addr`.
#[inline(always)]
unsafe fn write_words(field: *mut [u32; 4], ip: &Ipv6Words) {
    let field = field.cast::<u32>();
    // SAFETY: within the field, as the caller guarantees.
    unsafe {
        field.write_volatile(ip[0]);
        field.add(1).write_volatile(ip[1]);
        field.add(2).write_volatile(ip[2]);
        field.add(3).write_volatile(ip[3]);
    }
}
