//! The NAT datapath: port publishing (DNAT) and masquerade (SNAT), with connection tracking
//! of our own in an LRU hash map (the kernel's conntrack kfuncs cannot be called from Rust
//! eBPF with today's toolchain).
//!
//! Hooks, all in the lab's host node:
//! - external device, ingress (tcx or XDP): DNAT of published ports, reverse masquerade,
//!   and the fast path into containers (`bpf_redirect_peer`);
//! - external device, tcx egress: reverse DNAT and masquerade;
//! - each container's host-side veth, tcx ingress: hairpin (containers reaching published
//!   ports through the host address, their own included) and fast-path replies;
//! - cgroup `connect4`/`sendmsg4`/`recvmsg4` (and `connect6`/`sendmsg6`/`recvmsg6`), scoped
//!   to the host node's namespace by its cookie: host processes reaching published ports.
//!
//! A dual-stack lab's IPv6 packets take the same hooks (the tc programs hand them to `tc6`;
//! XDP passes them on to tc), with IPv6 maps of their own (`maps6`) and conntrack written
//! once for both families (`flow`).

pub mod csum;
pub mod ct;
pub mod flow;
pub mod frag;
pub mod host_sockets;
pub mod icmp;
pub mod icmp6;
pub mod log;
pub mod maps;
pub mod maps6;
pub mod packet;
pub mod packet6;
pub mod sock;
pub mod sock6;
pub mod tc;
pub mod tc6;
pub mod xdp;
