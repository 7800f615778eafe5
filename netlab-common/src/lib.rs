//! Types shared by netlab's eBPF programs and its loader.
//!
//! Every type here is `#[repr(C)]` with explicit padding, so both sides agree on the layout
//! byte for byte, and each field documents its byte order. With the `user` feature the types
//! implement [`aya::Pod`] so the loader can use them as map keys and values.
#![no_std]

pub mod counters;
pub mod nat;
pub mod nat6;

pub use counters::{CounterKey, CounterValue, Hook};
