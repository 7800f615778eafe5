//! Per-interface packet counters on XDP and tcx.
#![expect(
    clippy::needless_pass_by_value,
    reason = "aya's entry-point macros hand the context over by value"
)]

use aya_ebpf::{
    bindings::{TC_ACT_UNSPEC, xdp_action},
    macros::{classifier, map, xdp},
    maps::PerCpuHashMap,
    programs::{TcContext, XdpContext},
};
use netlab_common::counters::{COUNTERS_MAX_ENTRIES, CounterKey, CounterValue, Hook};

#[map(name = "NETLAB_COUNTERS")]
static NETLAB_COUNTERS: PerCpuHashMap<CounterKey, CounterValue> =
    PerCpuHashMap::with_max_entries(COUNTERS_MAX_ENTRIES, 0);

/// Counts the packet and passes it on.
#[xdp]
pub fn netlab_xdp_count(ctx: XdpContext) -> u32 {
    let len = ctx.data_end().saturating_sub(ctx.data());
    // SAFETY: ctx wraps the kernel's xdp_md, valid for the duration of the program.
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    count(ifindex, Hook::Xdp, len as u64);
    xdp_action::XDP_PASS
}

/// Counts the packet on tcx ingress and lets later tcx programs run.
#[classifier]
pub fn netlab_tc_ingress_count(ctx: TcContext) -> i32 {
    try_tc_count(&ctx, Hook::TcIngress)
}

/// Counts the packet on tcx egress and lets later tcx programs run.
#[classifier]
pub fn netlab_tc_egress_count(ctx: TcContext) -> i32 {
    try_tc_count(&ctx, Hook::TcEgress)
}

/// Returns `TC_ACT_UNSPEC`, not `TC_ACT_OK`: with tcx, `TC_ACT_OK` ends the chain and later
/// programs on the same hook would never run.
fn try_tc_count(ctx: &TcContext, hook: Hook) -> i32 {
    // SAFETY: ctx wraps the kernel's __sk_buff, valid for the duration of the program.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    count(ifindex, hook, u64::from(ctx.len()));
    TC_ACT_UNSPEC
}

fn count(ifindex: u32, hook: Hook, bytes: u64) {
    let key = CounterKey {
        ifindex,
        hook: hook as u32,
    };
    if let Some(value) = NETLAB_COUNTERS.get_ptr_mut(key) {
        // SAFETY: per-CPU value: no other CPU writes it, and preemption is off in BPF.
        unsafe {
            (*value).packets += 1;
            (*value).bytes += bytes;
        }
    } else {
        let value = CounterValue { packets: 1, bytes };
        // A full map only loses this count; there is nothing better to do in the datapath.
        let _ = NETLAB_COUNTERS.insert(key, value, 0);
    }
}
