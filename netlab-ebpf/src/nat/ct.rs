//! Connection tracking of netlab's own: each translated flow has two entries in
//! `CONNTRACK`, one per direction, keyed by the tuple as it appears on the wire and holding
//! the tuple to rewrite it to. The TCP state belongs to the flow, so both entries always
//! carry the same one; entries expire by protocol and state. The map is an LRU: a full table
//! evicts the least recently used entries rather than refusing new flows, and a flow that
//! lost one half to eviction restores it when it is used again (a TCP flow with its first
//! packet once its entry's time is due a refresh, a tick of the coarse clock at most, or at
//! once while the table evicts live flows; others at most once per
//! [`CT_RESTORE_INTERVAL_NS`]: see [`live`]); a new flow whose forward
//! entry's insert evicted its reply entry puts that back at once ([`mark_used`]). A half whose
//! other half's tuple a new flow has taken meanwhile is an orphan: it is dropped, and the
//! flow's next packet starts it anew on a tuple of its own, so that no reply ever reaches
//! another flow's socket.
//!
//! Written once for both families, over [`Flow`]: IPv4 flows live in `NETLAB_NAT_CT`,
//! IPv6 ones in `NETLAB_NAT6_CT`.

use aya_ebpf::{
    EbpfContext,
    bindings::{__sk_buff, BPF_NOEXIST},
    cty::c_void,
    helpers::{bpf_get_prandom_u32, bpf_ktime_get_coarse_ns, bpf_loop},
    programs::TcContext,
};
use netlab_common::nat::{
    CT_RESTORE_INTERVAL_NS, CounterRef, CtEntry, CtTimeouts, FlowKey, NatConfig, SNAT_PORT_MIN,
    SNAT_RETRIES, Stat, ct_flags, ct_state,
};

use super::{
    flow::{Entry, Flow},
    log,
    maps::{CT_PRESSURE, config, count, published, source_as_gateway},
    packet::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Packet},
    packet6::IPPROTO_ICMPV6,
};

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

/// `CLOCK_MONOTONIC` as of the last timer tick. `bpf_ktime_get_ns` reads the clock source
/// instead, which under a VM's pvclock was ~15 % of a fast-pathed packet's time (`perf`);
/// lifetimes are seconds, and a tick is at most a few milliseconds.
#[inline(always)]
fn now() -> u64 {
    // SAFETY: a helper without arguments.
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// Whether TCP `flags` open a new connection (a SYN that is not a SYN-ACK).
#[inline(always)]
pub fn is_syn(flags: u8) -> bool {
    flags & (TCP_SYN | TCP_ACK) == TCP_SYN
}

/// The flow's TCP state after a packet with `flags`: established once a packet without SYN
/// is seen (the handshake's last ACK, not the SYN-ACK: spoofed SYNs never establish),
/// closing on FIN or RST, and never back.
#[inline(always)]
fn next_state(state: u8, flags: u8) -> u8 {
    if flags & (TCP_FIN | TCP_RST) != 0 {
        ct_state::CLOSING
    } else if state == ct_state::NEW && flags & (TCP_SYN | TCP_ACK) == TCP_ACK {
        ct_state::ESTABLISHED
    } else {
        state
    }
}

/// The live entry for this packet's tuple, refreshed (time, TCP state); a flow whose two
/// directions are both expired is removed and reported as missing. A new SYN on a closing
/// TCP flow's tuple starts a new flow, as the kernel does for a SYN that meets a connection
/// in `TIME_WAIT`: in place when the published ports, read again, would translate it as
/// before (see [`restartable`]); otherwise the old flow is removed and reported as
/// missing, and the caller creates the new one.
#[inline(always)]
pub fn lookup<C: EbpfContext>(ctx: &C, pkt: &Packet) -> Option<CtEntry> {
    let (entry, then) = live(&pkt.key, Some(pkt.tcp_flags))?;
    // SAFETY: a pointer into the map's value, valid until the map's next insert.
    let entry = unsafe { &*entry }.copied();
    match then {
        Then::RestorePartner => restore_partner(&pkt.key, &entry),
        Then::LogNewFlow => {
            let kind = if entry.flags & ct_flags::HAIRPIN != 0 {
                "hairpin"
            } else {
                "dnat"
            };
            log::new_flow(ctx, kind, &pkt.key, &entry);
        }
        Then::Nothing => {}
    }
    Some(entry)
}

/// The key of the other direction of the flow that `entry` at `key` belongs to.
#[inline(always)]
fn partner_of<K: Flow>(key: &K, entry: &K::Entry) -> K {
    key.rewritten(entry).reversed()
}

#[inline(always)]
fn expired<E: Entry>(proto: u8, entry: &E, now: u64) -> bool {
    let idle = now.saturating_sub(entry.last_seen_ns());
    // No lifetime is under a second: a flow seen within one (nearly every packet of a live
    // flow) needs no look at the configured lifetimes.
    if idle < MIN_LIFETIME_NS {
        return false;
    }
    let timeouts = config().map_or(CtTimeouts::DEFAULT, |config| config.timeouts);
    // ICMPv6 lives as long as ICMP.
    let proto = if proto == IPPROTO_ICMPV6 {
        IPPROTO_ICMP
    } else {
        proto
    };
    idle > timeouts.lifetime_ns(proto, entry.state())
}

/// The shortest lifetime `--ct-timeouts` accepts (one second).
const MIN_LIFETIME_NS: u64 = 1_000_000_000;

/// How stale `last_seen_ns` may get on a live flow (about a millisecond).
const LAST_SEEN_GRANULARITY_NS: u64 = 1 << 20;

/// The other half of the flow of `entry` at `key`, as its tuple's slot holds it.
enum OtherHalf<E> {
    /// This flow's, live or not.
    Ours(*mut E),
    /// Gone (the flow's own removal, or the LRU's).
    Missing,
    /// Another flow's: this flow expired, or lost the half to the LRU, and a new flow took
    /// the tuple. This half is an orphan: its packets would draw replies that reach the
    /// other flow's socket.
    Taken,
}

#[inline(always)]
fn other_half<K: Flow>(key: &K, entry: &K::Entry) -> OtherHalf<K::Entry> {
    let partner = partner_of(key, entry);
    let Some(other) = K::conntrack().get_ptr_mut(partner) else {
        return OtherHalf::Missing;
    };
    // SAFETY: a pointer into the map's value, valid during the program.
    if key.pairs_with(unsafe { &*other }) {
        OtherHalf::Ours(other)
    } else {
        OtherHalf::Taken
    }
}

/// Whether the flow of `entry` at `key` is over: both directions idle past their lifetime
/// (a direction counts as live while either is: a flow idle one way — one-way UDP, a
/// half-closed TCP connection — keeps both its mappings), or this half orphaned.
#[inline(always)]
fn flow_expired<K: Flow>(key: &K, entry: &K::Entry, now: u64) -> bool {
    if !expired(key.proto(), entry, now) {
        return false;
    }
    match other_half(key, entry) {
        // SAFETY: as in `other_half`.
        OtherHalf::Ours(other) => expired(key.proto(), unsafe { &*other }, now),
        OtherHalf::Missing | OtherHalf::Taken => true,
    }
}

/// Removes the flow of `entry` at `key`: this half, and the other one if it is still ours.
#[inline(always)]
fn remove_flow<K: Flow>(key: &K, entry: &K::Entry) {
    let ours = matches!(other_half(key, entry), OtherHalf::Ours(_));
    let partner = partner_of(key, entry);
    let _ = K::conntrack().remove(key);
    if ours {
        let _ = K::conntrack().remove(partner);
    }
}

/// Looks a flow up by one of its tuples. `tcp_flags` is the packet's, to refresh the entry
/// and follow the TCP state; `None` only peeks (an ICMP error about the flow must not keep
/// it alive). A half whose other half another flow took is removed and reported as missing
/// (the caller creates the flow anew, on a tuple of its own); that is checked when the
/// entry's time is refreshed, about once a millisecond of a flow's traffic.
#[inline(always)]
pub fn lookup_key<K: Flow>(key: &K, tcp_flags: Option<u8>) -> Option<K::Entry> {
    let (entry, then) = live(key, tcp_flags)?;
    // SAFETY: a pointer into the map's value, valid until the map's next insert.
    let entry = unsafe { &*entry }.copied();
    if then == Then::RestorePartner {
        restore_partner(key, &entry);
    }
    Some(entry)
}

/// [`lookup_key`], the entry copied to `out` (whether there is one is returned).
#[inline(always)]
pub fn lookup_into<K: Flow>(key: &K, tcp_flags: Option<u8>, out: &mut K::Entry) -> bool {
    let Some((entry, then)) = live(key, tcp_flags) else {
        return false;
    };
    // SAFETY: as above.
    unsafe { &*entry }.copy_to(out);
    if then == Then::RestorePartner {
        restore_partner(key, out);
    }
    true
}

/// What [`live`]'s caller does once it has copied the entry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    Nothing,
    /// Put back the flow's other half, which the LRU evicted.
    RestorePartner,
    /// Log the flow as new: a SYN restarted it in place.
    LogNewFlow,
}

/// The live entry of `key`, refreshed, in the map (see [`lookup`]), and what is left to do
/// ([`Then`]). The caller copies the entry before it puts an evicted half back: the insert
/// may make the LRU evict again, in a full table even a half just looked up, and reuse its
/// memory for the new entry.
#[inline(always)]
fn live<K: Flow>(key: &K, tcp_flags: Option<u8>) -> Option<(*mut K::Entry, Then)> {
    let entry = K::conntrack().get_ptr_mut(key)?;
    // SAFETY: a pointer into the map's value, valid during the program; racing updates of
    // the same flow on two CPUs only race on timestamps and state, both benign.
    let entry = unsafe { &mut *entry };
    let now = now();
    if flow_expired(key, entry, now) {
        remove_flow(key, entry);
        count(Stat::Expired);
        return None;
    }
    let Some(tcp_flags) = tcp_flags else {
        return Some((entry, Then::Nothing));
    };
    if key.proto() == IPPROTO_TCP {
        if is_syn(tcp_flags) && entry.state() == ct_state::CLOSING {
            if let Some(other) = restartable(key, entry) {
                entry.restart(now);
                // SAFETY: as above.
                unsafe { (*other).restart(now) };
                count(Stat::CtRestarted);
                return Some((entry, Then::LogNewFlow));
            }
            remove_flow(key, entry);
            return None;
        }
        let state = next_state(entry.state(), tcp_flags);
        if state != entry.state() {
            entry.set_state(state);
            if let OtherHalf::Ours(other) = other_half(key, entry) {
                // SAFETY: as above.
                unsafe { (*other).set_state(state) };
            }
        }
    }
    let idle = now.saturating_sub(entry.last_seen_ns());
    let mut then = Then::Nothing;
    // Lifetimes are seconds: a write per millisecond at most spares every packet of a busy
    // flow a store to a line other CPUs read, and the look at the other half a lookup;
    // but a table that evicts live flows gets that look on every TCP packet (see
    // [`under_pressure`]).
    let due = idle >= LAST_SEEN_GRANULARITY_NS;
    if due || key.proto() == IPPROTO_TCP && under_pressure(now) {
        match other_half(key, entry) {
            OtherHalf::Taken => {
                let _ = K::conntrack().remove(key);
                count(Stat::CtOrphaned);
                return None;
            }
            // TCP at this refresh: its peer answers every segment, and an answer without the
            // mapping would reach the host, whose reset ends the connection (the kernel's
            // conntrack never loses a live connection's mapping). Other protocols at most
            // once a second: a one-way flow's reply half is never looked up, so the LRU
            // evicts it again first, and putting it back on every refresh would churn a
            // full table.
            OtherHalf::Missing => {
                if key.proto() == IPPROTO_TCP || idle >= CT_RESTORE_INTERVAL_NS {
                    then = Then::RestorePartner;
                }
            }
            OtherHalf::Ours(_) => {}
        }
        if due {
            entry.set_last_seen_ns(now);
        }
    }
    Some((entry, then))
}

/// The other half of a closing flow that a SYN on `key`'s tuple may start anew in place, or
/// `None` when the new flow must be created from scratch. It may when `entry` is a DNAT
/// flow's forward half, both halves are there, and the published ports, read again, would
/// give the new flow the same translation, counters and reply tuple: removing the old flow
/// and creating the new one would write the same two entries (the source-port search tries
/// the kept port first, and finds it free once the old flow is gone). This spares a busy
/// client, which reuses its ports, two deletes and two inserts per connection, each a trip
/// through the LRU's lists. Masqueraded and host flows are created anew: whether a host
/// socket owns the reply tuple now is for the search to ask.
#[inline(always)]
fn restartable<K: Flow>(key: &K, entry: &K::Entry) -> Option<*mut K::Entry> {
    if entry.flags() & (ct_flags::DNAT | ct_flags::REPLY) != ct_flags::DNAT
        || !key.dnat_unchanged(entry)
    {
        return None;
    }
    match other_half(key, entry) {
        OtherHalf::Ours(other) => Some(other),
        OtherHalf::Missing | OtherHalf::Taken => None,
    }
}

/// How long a CPU that put an evicted half back looks at the other half of every TCP
/// packet's flow.
const PRESSURE_NS: u64 = 1_000_000_000;

/// Whether this CPU put an evicted half back within the last [`PRESSURE_NS`]: the table is
/// full and the LRU evicts halves of live flows. A busy TCP flow's half would otherwise
/// come back only at its flow's next refresh (a tick of the coarse clock, 4 ms here), and
/// an answer in between would reach the host, whose reset ends the connection. Looking the
/// other half up on every packet puts it back at the flow's next packet, and marks it used,
/// so that the LRU takes idle entries first. One array access per TCP packet otherwise.
#[inline(always)]
fn under_pressure(now: u64) -> bool {
    CT_PRESSURE.get(0).is_some_and(|until| now < *until)
}

/// Notes that this CPU put an evicted half back (see [`under_pressure`]).
#[inline(always)]
fn note_pressure(now: u64) {
    if let Some(until) = CT_PRESSURE.get_ptr_mut(0) {
        // SAFETY: this CPU's slot; nothing else writes it meanwhile.
        unsafe { *until = now + PRESSURE_NS };
    }
}

/// Puts back the other direction of a flow that the LRU evicted (its tuple free); `entry`
/// is a copy of the half that is left.
#[inline(always)]
fn restore_partner<K: Flow>(key: &K, entry: &K::Entry) {
    let mut restored = K::Entry::default();
    key.reversed().entry_into(
        entry.flags() ^ ct_flags::REPLY,
        entry.state(),
        entry.counter(),
        entry.last_seen_ns(),
        &mut restored,
    );
    let partner = partner_of(key, entry);
    if K::conntrack()
        .insert(partner, restored, u64::from(BPF_NOEXIST))
        .is_ok()
    {
        mark_used(&partner);
        note_pressure(now());
        count(Stat::CtRestored);
    }
}

/// Marks the entry at `key` used, as a lookup does. The LRU evicts entries never looked up
/// first: an entry just inserted is one, and the next insert anywhere (in a full table,
/// often this very flow's other half) may take it before the packet it is for arrives —
/// the reply to the segment that created or restored it, which the host would then reset.
/// Returns whether the entry is there.
#[inline(always)]
fn mark_used<K: Flow>(key: &K) -> bool {
    K::conntrack().get_ptr(key).is_some()
}

/// Whether the entry at `reply_key` may be overwritten by a new flow whose packets show
/// `orig`: it is that very flow's stale half, or its own flow is over. Anything else
/// belongs to a live flow, whose replies must never reach another socket.
#[inline(always)]
fn claimable<K: Flow>(reply_key: &K, orig: &K, now: u64) -> bool {
    let Some(entry) = K::conntrack().get_ptr(reply_key) else {
        return true;
    };
    // SAFETY: a pointer into the map's value, valid during the program.
    let entry = unsafe { &*entry };
    orig.pairs_with(entry) || flow_expired(reply_key, entry, now)
}

/// A source-port search, one attempt per call of [`attempt`]: `bpf_loop` runs it, so the
/// verifier checks one attempt rather than every one of [`SNAT_RETRIES`] (it was most of
/// the time a first `up` took). It lives in a per-CPU scratch slot of its family
/// ([`Flow::search`]), not on the stack: a program's call chain has 512 bytes of stack in
/// all, and an IPv6 search's tuples and entries alone would take half.
#[repr(C)]
pub struct PortSearch<K: Flow> {
    orig: K,
    /// The tuple the flow's packets get; its source port moves as the search goes, and
    /// stays on the one found.
    new: K,
    /// The reply direction's tuple and entry of the attempt under way.
    reply_key: K,
    reply: K::Entry,
    /// The forward direction's entry, once a reply tuple is found.
    forward: K::Entry,
    counter: CounterRef,
    now: u64,
    start: u32,
    flags: u8,
    /// 1 once a free reply tuple is found (and its entry in).
    found: u8,
    pad: [u8; 2],
}

/// What a search's `bpf_loop` callback gets on the stack (its only argument must point
/// there): the skb whose namespace's sockets may own a tuple too (`attempt::<_, true>`
/// asks them).
#[repr(C)]
struct SearchCtx {
    host_sockets: *mut __sk_buff,
}

/// One attempt of a [`PortSearch`]: `bpf_loop`'s callback (1 stops the loop). The socket
/// lookup, and its tuple on the stack, are only in the variant that asks (`ASK_SOCKETS`).
#[expect(
    clippy::needless_borrows_for_generic_args,
    reason = "by reference, the map helpers read the search's tuples in its per-CPU slot; by value, they would be copied to the stack first"
)]
extern "C" fn attempt<K: Flow, const ASK_SOCKETS: bool>(index: u64, ctx: *mut c_void) -> i64 {
    let Some(search) = K::search() else {
        return 1;
    };
    let attempt = index as u32;
    if attempt > 0 {
        let span = u32::from(u16::MAX - SNAT_PORT_MIN) + 1;
        let port = SNAT_PORT_MIN + ((search.start.wrapping_add(attempt)) % span) as u16;
        search.new.set_src_port(port.to_be());
        if matches!(search.orig.proto(), IPPROTO_ICMP | IPPROTO_ICMPV6) {
            search.new.set_dst_port(search.new.src_port());
        }
        if attempt == 1 {
            count(Stat::SnatCollisions);
        }
    }
    search.new.reversed_into(&mut search.reply_key);
    if ASK_SOCKETS {
        // SAFETY: `create_masquerade` passes its own `SearchCtx`, alive on its stack for
        // the loop.
        let skb = unsafe { (*ctx.cast::<SearchCtx>()).host_sockets };
        if search.reply_key.host_owned(&TcContext::new(skb)) {
            return 0;
        }
    }
    search.orig.reversed().entry_into(
        search.flags | ct_flags::REPLY,
        ct_state::NEW,
        search.counter,
        search.now,
        &mut search.reply,
    );
    if K::conntrack()
        .insert(&search.reply_key, &search.reply, u64::from(BPF_NOEXIST))
        .is_ok()
        || (claimable(&search.reply_key, &search.orig, search.now)
            && K::conntrack()
                .insert(&search.reply_key, &search.reply, 0)
                .is_ok())
    {
        search.found = 1;
        return 1;
    }
    0
}

/// Creates both directions of a flow whose packets `orig` are rewritten to `new`, and
/// copies the forward entry to `out`. With `pick_source_port`, the new source port (or ICMP
/// identifier) may move off `new`'s when its reply tuple is another flow's: first the port
/// asked for, then random ports above [`SNAT_PORT_MIN`], [`SNAT_RETRIES`] tries in all, as
/// Linux remaps clashing tuples. The reply entry goes in first with `BPF_NOEXIST`, so a live
/// flow's mapping is never overwritten; when two CPUs create the same flow at once, both end
/// up with the winner's.
#[inline(always)]
pub fn create_into<K: Flow>(
    orig: &K,
    new: &K,
    flags: u8,
    counter: CounterRef,
    pick_source_port: bool,
    out: &mut K::Entry,
) -> Result<(), Stat> {
    let tries = if pick_source_port { SNAT_RETRIES } else { 1 };
    search(orig, new, flags, counter, core::ptr::null_mut(), tries, out)
}

/// [`create_into`], the entry returned.
#[inline(always)]
pub fn create<K: Flow>(
    orig: &K,
    new: K,
    flags: u8,
    counter: CounterRef,
    pick_source_port: bool,
) -> Result<K::Entry, Stat> {
    let mut out = K::Entry::default();
    create_into(orig, &new, flags, counter, pick_source_port, &mut out)?;
    Ok(out)
}

/// [`create_into`] for masquerade, a source port always picked: a reply tuple that a socket
/// of the namespace of `ctx` owns is the host's too, as if the kernel's conntrack knew it.
#[inline(always)]
pub fn create_masquerade_into<K: Flow>(
    ctx: &TcContext,
    orig: &K,
    new: &K,
    flags: u8,
    out: &mut K::Entry,
) -> Result<(), Stat> {
    let host_sockets = ctx.skb.skb;
    search(
        orig,
        new,
        flags,
        CounterRef::default(),
        host_sockets,
        SNAT_RETRIES,
        out,
    )
}

/// [`create_masquerade_into`], the entry returned.
#[inline(always)]
pub fn create_masquerade<K: Flow>(
    ctx: &TcContext,
    orig: &K,
    new: K,
    flags: u8,
) -> Result<K::Entry, Stat> {
    let mut out = K::Entry::default();
    create_masquerade_into(ctx, orig, &new, flags, &mut out)?;
    Ok(out)
}

/// Runs a port search of `tries` attempts (asking the sockets of `host_sockets`' namespace
/// unless it is null), then adds the flow's forward entry and copies it to `out`.
#[inline(always)]
fn search<K: Flow>(
    orig: &K,
    new: &K,
    flags: u8,
    counter: CounterRef,
    host_sockets: *mut __sk_buff,
    tries: u32,
    out: &mut K::Entry,
) -> Result<(), Stat> {
    let search = K::search().ok_or(Stat::CtInsertFailed)?;
    search.orig = *orig;
    search.new = *new;
    search.counter = counter;
    search.now = now();
    // SAFETY: a helper without arguments.
    search.start = unsafe { bpf_get_prandom_u32() };
    search.flags = flags;
    search.found = 0;
    let mut ctx = SearchCtx { host_sockets };
    let callback = if host_sockets.is_null() {
        attempt::<K, false> as *mut c_void
    } else {
        attempt::<K, true> as *mut c_void
    };
    // SAFETY: the callback and its context outlive the call; no flags.
    unsafe { bpf_loop(tries, callback, (&raw mut ctx).cast(), 0) };
    add_forward(search, out)
}

/// Adds the forward entry of a search that found its reply tuple (a BPF function of its
/// own: LLVM kept a constant in a register across the map helpers here, which the verifier
/// refuses).
#[inline(never)]
#[expect(
    clippy::needless_borrows_for_generic_args,
    reason = "by reference, the map helpers read the search's tuples in its per-CPU slot; by value, they would be copied to the stack first"
)]
fn add_forward<K: Flow>(search: &mut PortSearch<K>, out: &mut K::Entry) -> Result<(), Stat> {
    if search.found == 0 {
        return Err(Stat::SnatExhausted);
    }
    search.new.reversed_into(&mut search.reply_key);
    search.new.entry_into(
        search.flags,
        ct_state::NEW,
        search.counter,
        search.now,
        &mut search.forward,
    );
    if K::conntrack()
        .insert(&search.orig, &search.forward, u64::from(BPF_NOEXIST))
        .is_ok()
    {
        // In a full table, this insert may have evicted the reply entry the search just
        // added, never looked up yet: put it back, the forward entry marked used first so
        // that this insert spares it.
        if !mark_used(&search.reply_key) {
            mark_used(&search.orig);
            let _ = K::conntrack().insert(&search.reply_key, &search.reply, u64::from(BPF_NOEXIST));
            mark_used(&search.reply_key);
            note_pressure(search.now);
        }
        search.forward.copy_to(out);
        return Ok(());
    }
    // Another CPU created this flow at the same moment: use the winner's mapping, and take
    // back our reply entry unless it is the winner's too (same tuple).
    let Some(winner) = K::conntrack().get_ptr(&search.orig) else {
        let _ = K::conntrack().remove(&search.reply_key);
        return Err(Stat::CtInsertFailed);
    };
    // SAFETY: a pointer into the map's value, valid during the program.
    let winner = unsafe { &*winner };
    if !search.reply_key.pairs_with(winner) {
        let _ = K::conntrack().remove(&search.reply_key);
    }
    winner.copy_to(out);
    Ok(())
}

/// A new flow for a packet to a published port (DNAT, the source kept unless its reply
/// tuple clashes with another flow's; with `MASQ_ALL`, the source becomes the
/// bridge's address and a port of its own), or `None` when the packet is not for a published
/// port.
#[inline(always)]
pub fn create_dnat(config: &NatConfig, key: &FlowKey) -> Result<Option<CtEntry>, Stat> {
    if !matches!(key.proto, IPPROTO_TCP | IPPROTO_UDP) {
        return Ok(None);
    }
    let Some(target) = published(config, key.dst_ip, key.dst_port, key.proto, false) else {
        return Ok(None);
    };
    let src_ip = if source_as_gateway(config, false, false) {
        config.gateway_ip
    } else {
        key.src_ip
    };
    let new = FlowKey {
        src_ip,
        dst_ip: target.ip,
        dst_port: target.port,
        ..*key
    };
    create(key, new, ct_flags::DNAT, target.counter, true).map(Some)
}

/// Marks the entry at `key` with `flags` (in the map: every later lookup sees them).
#[inline(always)]
pub fn add_flags<K: Flow>(key: &K, flags: u8) {
    if let Some(entry) = K::conntrack().get_ptr_mut(key) {
        // SAFETY: a pointer into the map's value, valid during the program; a racing update
        // of the same flow on another CPU sets the same bit.
        unsafe { (*entry).add_flags(flags) };
    }
}

/// Whether a packet showing `key` belongs to a flow that was translated before it got here
/// (by XDP, which runs first): its reply direction is known.
#[inline(always)]
pub fn translated_earlier<K: Flow>(key: &K) -> bool {
    // SAFETY: the value is not read.
    unsafe { K::conntrack().get(key.reversed()) }.is_some()
}
