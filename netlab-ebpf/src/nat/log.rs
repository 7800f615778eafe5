//! Datapath events for `netlab up --foreground`, through aya-log: drops always (they are
//! rare), new flows only when the loader asked for them.

use aya_ebpf::EbpfContext;
use aya_log_ebpf::{info, warn};
use netlab_common::nat::{CtEntry, FlowKey, Stat, flags};

use super::maps::config;

/// A new translated flow: `orig` is rewritten to `to`.
#[inline(always)]
pub fn new_flow<C: EbpfContext>(ctx: &C, kind: &str, orig: &FlowKey, to: &CtEntry) {
    if config().is_none_or(|config| config.flags & flags::LOG_FLOWS == 0) {
        return;
    }
    info!(
        ctx,
        "{} proto {} {:i}:{} -> {:i}:{} becomes {:i}:{} -> {:i}:{}",
        kind,
        orig.proto,
        u32::from_be(orig.src_ip),
        u16::from_be(orig.src_port),
        u32::from_be(orig.dst_ip),
        u16::from_be(orig.dst_port),
        u32::from_be(to.src_ip),
        u16::from_be(to.src_port),
        u32::from_be(to.dst_ip),
        u16::from_be(to.dst_port)
    );
}

/// A packet the datapath had to drop.
#[inline(always)]
pub fn dropped<C: EbpfContext>(ctx: &C, stat: Stat) {
    let reason = match stat {
        Stat::SnatExhausted => "no free masquerade port",
        Stat::CtInsertFailed => "conntrack table full",
        _ => "packet rewrite failed",
    };
    warn!(ctx, "dropped a packet: {}", reason);
}
