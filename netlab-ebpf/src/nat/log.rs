//! Datapath events for `netlab up --foreground`, through aya-log: drops always (they are
//! rare), new flows only when the loader asked for them.

use aya_ebpf::{EbpfContext, helpers::bpf_ktime_get_ns};
use aya_log_ebpf::{info, warn};
use netlab_common::nat::{CtEntry, FlowKey, Stat, flags};

use super::maps::{LAST_DROP_LOG, config};

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

/// A packet the datapath had to drop; at most one event per CPU every
/// [`DROP_LOG_INTERVAL_NS`], so a flood of drops (spoofed martians, say) cannot flood the
/// log. The drop counters count them all.
#[inline(always)]
pub fn dropped<C: EbpfContext>(ctx: &C, stat: Stat) {
    let Some(last) = LAST_DROP_LOG.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: per-CPU slot, no concurrent writer.
    unsafe {
        if now.saturating_sub(*last) < DROP_LOG_INTERVAL_NS {
            return;
        }
        *last = now;
    }
    let reason = match stat {
        Stat::SnatExhausted => "no free masquerade port",
        Stat::CtInsertFailed => "conntrack table full",
        Stat::FragmentsDropped => "fragment without its first fragment",
        Stat::Martians => "martian source on the external device",
        Stat::DirectAccess => "direct access to a container from outside",
        _ => "packet rewrite failed",
    };
    warn!(ctx, "dropped a packet: {}", reason);
}

/// Minimum time between two drop events of one CPU.
const DROP_LOG_INTERVAL_NS: u64 = 100_000_000;
