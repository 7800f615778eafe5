//! netlab: container networks built the way Docker's bridge driver builds them, over
//! netlink, with port publishing and masquerade in eBPF or iptables.

pub mod bench;
pub mod bpf_loader;
pub mod cli;
pub mod cni;
pub mod crash_point;
pub mod error;
pub mod family;
pub mod graph;
pub mod iface_counters;
pub mod inspect;
pub mod ipv4net;
pub mod ipv6net;
pub mod lab;
pub mod lab_lock;
pub mod lifecycle;
pub mod link;
pub mod nat;
pub mod netlink;
pub mod netns;
pub mod ports;
pub mod shared_dirs;
pub mod soak;
pub mod state;
pub mod sysctl;
pub mod text_table;
pub mod topology;

pub use error::{Error, Result};
