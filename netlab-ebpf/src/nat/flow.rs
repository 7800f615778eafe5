//! What connection tracking needs of a flow's tuple and its entries, for either family:
//! `ct` is written once, over [`Flow`], and runs on IPv4's `FlowKey`/`CtEntry` in
//! `NETLAB_NAT_CT` and on IPv6's `FlowKey6`/`CtEntry6` in `NETLAB_NAT6_CT`. The two pairs
//! have the same fields, so one macro implements both.

use aya_ebpf::{
    macros::map,
    maps::{LruHashMap, PerCpuArray},
    programs::TcContext,
};
use netlab_common::{
    nat::{CounterRef, CtEntry, FlowKey, ct_flags, ct_state},
    nat6::{CtEntry6, FlowKey6},
};

use super::{
    ct::PortSearch,
    host_sockets,
    maps::{self, CONNTRACK},
    maps6::{self, CONNTRACK6},
};

/// A conntrack entry: how to rewrite one direction of a flow.
pub trait Entry: Copy + Default {
    /// [`netlab_common::nat::ct_flags`].
    fn flags(&self) -> u8;
    /// Sets `flags` in [`Self::flags`].
    fn add_flags(&mut self, flags: u8);
    /// [`netlab_common::nat::ct_state`].
    fn state(&self) -> u8;
    fn set_state(&mut self, state: u8);
    fn last_seen_ns(&self) -> u64;
    fn set_last_seen_ns(&mut self, now: u64);
    fn counter(&self) -> CounterRef;
    /// Makes this half of a closed TCP flow the half of a new one on the same tuple and
    /// translation: state new, seen `now`, and nothing learned from the old flow's packets.
    fn restart(&mut self, now: u64);
    /// A copy taken in 8-byte loads: a plain copy of the struct compiles to a call to
    /// `memmove` (a BPF function, ~8 % of a fast-pathed reply's time).
    fn copied(&self) -> Self;
    /// [`Self::copied`], into `out` (an IPv6 entry is 56 bytes of a 512-byte stack).
    fn copy_to(&self, out: &mut Self);
}

/// A flow's tuple as one packet shows it: the key of its conntrack entries.
pub trait Flow: Copy + PartialEq + 'static {
    type Entry: Entry;
    /// The conntrack map of the tuple's family.
    fn conntrack() -> &'static LruHashMap<Self, Self::Entry>;
    /// This CPU's slot for a source-port search of the family.
    fn search() -> Option<&'static mut PortSearch<Self>>;
    fn proto(&self) -> u8;
    fn set_src_port(&mut self, port: u16);
    fn src_port(&self) -> u16;
    fn set_dst_port(&mut self, port: u16);
    /// The tuple of the reply to a packet showing this one.
    fn reversed(&self) -> Self;
    /// [`Self::reversed`], written to `out`.
    fn reversed_into(&self, out: &mut Self);
    /// The tuple a packet has after `entry`'s rewrite.
    fn rewritten(&self, entry: &Self::Entry) -> Self;
    /// Whether `entry` is the other half of this tuple's flow: it rewrites packets to this
    /// tuple reversed (compared field by field: no tuple is built on the stack).
    fn pairs_with(&self, entry: &Self::Entry) -> bool;
    /// Whether `to` rewrites a packet showing this tuple to itself.
    fn unchanged(&self, to: &Self::Entry) -> bool;
    /// Writes to `out` an entry that rewrites packets to this tuple (the inverse of
    /// [`Self::rewritten`]).
    fn entry_into(
        &self,
        flags: u8,
        state: u8,
        counter: CounterRef,
        now: u64,
        out: &mut Self::Entry,
    );
    /// Whether a new flow of a packet showing this tuple would be translated as the DNAT
    /// flow whose forward entry is `entry` is (the published ports read again).
    fn dnat_unchanged(&self, entry: &Self::Entry) -> bool;
    /// Whether a socket of the host node (the namespace of `ctx`) would receive a packet
    /// showing this tuple.
    fn host_owned(&self, ctx: &TcContext) -> bool;
}

/// Implements [`Entry`] and [`Flow`] for a family's key and entry types, which have the
/// same fields (addresses of the family's type).
macro_rules! family_flow {
    ($key:ident, $entry:ident, $map:expr, $search:expr, $owns:path, $dnat_unchanged:path) => {
        impl Entry for $entry {
            #[inline(always)]
            fn flags(&self) -> u8 {
                self.flags
            }
            #[inline(always)]
            fn add_flags(&mut self, flags: u8) {
                self.flags |= flags;
            }
            #[inline(always)]
            fn state(&self) -> u8 {
                self.state
            }
            #[inline(always)]
            fn set_state(&mut self, state: u8) {
                self.state = state;
            }
            #[inline(always)]
            fn last_seen_ns(&self) -> u64 {
                self.last_seen_ns
            }
            #[inline(always)]
            fn set_last_seen_ns(&mut self, now: u64) {
                self.last_seen_ns = now;
            }
            #[inline(always)]
            fn counter(&self) -> CounterRef {
                self.counter
            }
            #[inline(always)]
            fn restart(&mut self, now: u64) {
                self.flags &= !ct_flags::VIA_STACK;
                self.state = ct_state::NEW;
                self.last_seen_ns = now;
            }
            #[inline(always)]
            fn copied(&self) -> Self {
                const WORDS: usize = size_of::<$entry>() / 8;
                const _: () =
                    assert!(size_of::<$entry>().is_multiple_of(8) && align_of::<$entry>() == 8);
                let from = core::ptr::from_ref(self).cast::<u64>();
                let mut words = [0u64; WORDS];
                for (i, word) in words.iter_mut().enumerate() {
                    // SAFETY: within the entry, 8-byte aligned and a whole number of words.
                    *word = unsafe { from.add(i).read_volatile() };
                }
                // SAFETY: plain `#[repr(C)]` integers without padding: any bits are valid.
                unsafe { core::mem::transmute::<[u64; WORDS], $entry>(words) }
            }
            #[inline(always)]
            fn copy_to(&self, out: &mut Self) {
                const WORDS: usize = size_of::<$entry>() / 8;
                let from = core::ptr::from_ref(self).cast::<u64>();
                let to = core::ptr::from_mut(out).cast::<u64>();
                for i in 0..WORDS {
                    // SAFETY: both within their entries, 8-byte aligned (see `copied`).
                    unsafe { to.add(i).write_volatile(from.add(i).read_volatile()) };
                }
            }
        }

        impl Flow for $key {
            type Entry = $entry;
            #[inline(always)]
            fn conntrack() -> &'static LruHashMap<Self, Self::Entry> {
                &$map
            }
            #[inline(always)]
            fn search() -> Option<&'static mut PortSearch<Self>> {
                // SAFETY: this CPU's slot; no program that uses it runs nested in another
                // on one CPU (tc and XDP run in softirq, one at a time).
                $search.get_ptr_mut(0).map(|slot| unsafe { &mut *slot })
            }
            #[inline(always)]
            fn proto(&self) -> u8 {
                self.proto
            }
            #[inline(always)]
            fn set_src_port(&mut self, port: u16) {
                self.src_port = port;
            }
            #[inline(always)]
            fn src_port(&self) -> u16 {
                self.src_port
            }
            #[inline(always)]
            fn set_dst_port(&mut self, port: u16) {
                self.dst_port = port;
            }
            #[inline(always)]
            fn reversed(&self) -> Self {
                Self {
                    src_ip: self.dst_ip,
                    dst_ip: self.src_ip,
                    src_port: self.dst_port,
                    dst_port: self.src_port,
                    proto: self.proto,
                    pad: [0; 3],
                }
            }
            #[inline(always)]
            fn reversed_into(&self, out: &mut Self) {
                out.src_ip = self.dst_ip;
                out.dst_ip = self.src_ip;
                out.src_port = self.dst_port;
                out.dst_port = self.src_port;
                out.proto = self.proto;
                out.pad = [0; 3];
            }
            #[inline(always)]
            fn rewritten(&self, entry: &$entry) -> Self {
                Self {
                    src_ip: entry.src_ip,
                    dst_ip: entry.dst_ip,
                    src_port: entry.src_port,
                    dst_port: entry.dst_port,
                    proto: self.proto,
                    pad: [0; 3],
                }
            }
            #[inline(always)]
            fn pairs_with(&self, entry: &$entry) -> bool {
                entry.src_ip == self.dst_ip
                    && entry.dst_ip == self.src_ip
                    && entry.src_port == self.dst_port
                    && entry.dst_port == self.src_port
            }
            #[inline(always)]
            fn unchanged(&self, to: &$entry) -> bool {
                self.src_ip == to.src_ip
                    && self.dst_ip == to.dst_ip
                    && self.src_port == to.src_port
                    && self.dst_port == to.dst_port
            }
            #[inline(always)]
            fn entry_into(
                &self,
                flags: u8,
                state: u8,
                counter: CounterRef,
                now: u64,
                out: &mut $entry,
            ) {
                out.src_ip = self.src_ip;
                out.dst_ip = self.dst_ip;
                out.src_port = self.src_port;
                out.dst_port = self.dst_port;
                out.flags = flags;
                out.state = state;
                out.pad = [0; 2];
                out.counter = counter;
                out.last_seen_ns = now;
            }
            #[inline(always)]
            fn dnat_unchanged(&self, entry: &$entry) -> bool {
                $dnat_unchanged(self, entry)
            }
            #[inline(always)]
            fn host_owned(&self, ctx: &TcContext) -> bool {
                $owns(ctx, self)
            }
        }
    };
}

/// This CPU's IPv4 port search.
#[map(name = "NETLAB_CT_SEARCH")]
static SEARCH: PerCpuArray<PortSearch<FlowKey>> = PerCpuArray::with_max_entries(1, 0);

/// This CPU's IPv6 port search.
#[map(name = "NETLAB_CT_SEARCH6")]
static SEARCH6: PerCpuArray<PortSearch<FlowKey6>> = PerCpuArray::with_max_entries(1, 0);

family_flow!(
    FlowKey,
    CtEntry,
    CONNTRACK,
    SEARCH,
    host_sockets::owns,
    maps::dnat_unchanged
);
family_flow!(
    FlowKey6,
    CtEntry6,
    CONNTRACK6,
    SEARCH6,
    host_sockets::owns6,
    maps6::dnat_unchanged6
);
