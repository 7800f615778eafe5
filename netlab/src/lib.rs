//! netlab: container networks built the way Docker's bridge driver builds them, over
//! netlink, with port publishing and masquerade in eBPF or iptables.

pub mod cli;
pub mod ebpf;
pub mod error;
pub mod lab;
pub mod netns;
pub mod ports;

pub use error::{Error, Result};
