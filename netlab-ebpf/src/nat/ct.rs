//! Connection tracking of netlab's own: each translated flow has two entries in
//! `CONNTRACK`, one per direction, keyed by the tuple as it appears on the wire and holding
//! the tuple to rewrite it to. The TCP state belongs to the flow, so both entries always
//! carry the same one; entries expire by protocol and state. The map is an LRU: a full table
//! evicts the least recently used entries rather than refusing new flows, and a flow that
//! lost one half to eviction restores it when it is used again (at most once per
//! [`CT_RESTORE_INTERVAL_NS`], which also keeps that half fresh in the LRU). A half whose
//! other half's tuple a new flow has taken meanwhile is an orphan: it is dropped, and the
//! flow's next packet starts it anew on a tuple of its own, so that no reply ever reaches
//! another flow's socket.

use aya_ebpf::{
    bindings::{__sk_buff, BPF_NOEXIST},
    cty::c_void,
    helpers::{bpf_get_prandom_u32, bpf_ktime_get_coarse_ns, bpf_loop},
    programs::TcContext,
};
use netlab_common::nat::{
    CT_RESTORE_INTERVAL_NS, CounterRef, CtEntry, CtTimeouts, FlowKey, NatConfig, SNAT_PORT_MIN,
    SNAT_RETRIES, Stat, ct_flags, ct_state, flags,
};

use super::{
    host_sockets,
    maps::{CONNTRACK, config, count, published},
    packet::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Packet},
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

/// `entry` copied out of its map slot in 8-byte loads: a plain copy of the struct compiles
/// to a call to `memmove` (a BPF function, ~8 % of a fast-pathed reply's time).
#[inline(always)]
fn copied(entry: &CtEntry) -> CtEntry {
    const WORDS: usize = size_of::<CtEntry>() / 8;
    const _: () = assert!(size_of::<CtEntry>().is_multiple_of(8) && align_of::<CtEntry>() == 8);
    let from = core::ptr::from_ref(entry).cast::<u64>();
    let mut words = [0u64; WORDS];
    for (i, word) in words.iter_mut().enumerate() {
        // SAFETY: within the entry, which is 8-byte aligned and a whole number of words.
        *word = unsafe { from.add(i).read_volatile() };
    }
    // SAFETY: CtEntry is plain `#[repr(C)]` integers without padding: any bits are valid.
    unsafe { core::mem::transmute::<[u64; WORDS], CtEntry>(words) }
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
/// directions are both expired is removed and reported as missing, and so is a closing TCP
/// flow that a new SYN reuses (the caller then creates it anew, reading the published ports
/// again, as the kernel does for a SYN that meets a connection in `TIME_WAIT`).
#[inline(always)]
pub fn lookup(pkt: &Packet) -> Option<CtEntry> {
    lookup_key(&pkt.key, Some(pkt.tcp_flags))
}

/// The tuple a packet has after `entry`'s rewrite.
#[inline(always)]
fn rewritten(key: &FlowKey, entry: &CtEntry) -> FlowKey {
    FlowKey {
        src_ip: entry.src_ip,
        dst_ip: entry.dst_ip,
        src_port: entry.src_port,
        dst_port: entry.dst_port,
        proto: key.proto,
        pad: [0; 3],
    }
}

/// Whether `to` rewrites a packet showing `key` to itself.
#[inline(always)]
pub fn unchanged(key: &FlowKey, to: &CtEntry) -> bool {
    key.src_ip == to.src_ip
        && key.dst_ip == to.dst_ip
        && key.src_port == to.src_port
        && key.dst_port == to.dst_port
}

/// An entry that rewrites packets to the tuple `to` (the inverse of [`rewritten`]).
#[inline(always)]
fn entry_to(to: &FlowKey, flags: u8, state: u8, counter: CounterRef, now: u64) -> CtEntry {
    CtEntry {
        src_ip: to.src_ip,
        dst_ip: to.dst_ip,
        src_port: to.src_port,
        dst_port: to.dst_port,
        flags,
        state,
        pad: [0; 2],
        counter,
        last_seen_ns: now,
    }
}

/// The key of the other direction of the flow that `entry` at `key` belongs to.
#[inline(always)]
fn partner_of(key: &FlowKey, entry: &CtEntry) -> FlowKey {
    reversed(&rewritten(key, entry))
}

#[inline(always)]
fn expired(proto: u8, entry: &CtEntry, now: u64) -> bool {
    let idle = now.saturating_sub(entry.last_seen_ns);
    // No lifetime is under a second: a flow seen within one (nearly every packet of a live
    // flow) needs no look at the configured lifetimes.
    if idle < MIN_LIFETIME_NS {
        return false;
    }
    let timeouts = config().map_or(CtTimeouts::DEFAULT, |config| config.timeouts);
    idle > timeouts.lifetime_ns(proto, entry.state)
}

/// The shortest lifetime `--ct-timeouts` accepts (one second).
const MIN_LIFETIME_NS: u64 = 1_000_000_000;

/// How stale `last_seen_ns` may get on a live flow (about a millisecond).
const LAST_SEEN_GRANULARITY_NS: u64 = 1 << 20;

/// The other half of the flow of `entry` at `key`, as its tuple's slot holds it.
enum OtherHalf {
    /// This flow's, live or not.
    Ours(*mut CtEntry),
    /// Gone (the flow's own removal, or the LRU's).
    Missing,
    /// Another flow's: this flow expired, or lost the half to the LRU, and a new flow took
    /// the tuple. This half is an orphan: its packets would draw replies that reach the
    /// other flow's socket.
    Taken,
}

#[inline(always)]
fn other_half(key: &FlowKey, entry: &CtEntry) -> OtherHalf {
    let partner = partner_of(key, entry);
    let Some(other) = CONNTRACK.get_ptr_mut(partner) else {
        return OtherHalf::Missing;
    };
    // SAFETY: a pointer into the map's value, valid during the program.
    if partner_of(&partner, unsafe { &*other }) == *key {
        OtherHalf::Ours(other)
    } else {
        OtherHalf::Taken
    }
}

/// Whether the flow of `entry` at `key` is over: both directions idle past their lifetime
/// (a direction counts as live while either is: a flow idle one way — one-way UDP, a
/// half-closed TCP connection — keeps both its mappings), or this half orphaned.
#[inline(always)]
fn flow_expired(key: &FlowKey, entry: &CtEntry, now: u64) -> bool {
    if !expired(key.proto, entry, now) {
        return false;
    }
    match other_half(key, entry) {
        // SAFETY: as in `other_half`.
        OtherHalf::Ours(other) => expired(key.proto, unsafe { &*other }, now),
        OtherHalf::Missing | OtherHalf::Taken => true,
    }
}

/// Removes the flow of `entry` at `key`: this half, and the other one if it is still ours.
#[inline(always)]
fn remove_flow(key: &FlowKey, entry: &CtEntry) {
    let ours = matches!(other_half(key, entry), OtherHalf::Ours(_));
    let partner = partner_of(key, entry);
    let _ = CONNTRACK.remove(key);
    if ours {
        let _ = CONNTRACK.remove(partner);
    }
}

/// Looks a flow up by one of its tuples. `tcp_flags` is the packet's, to refresh the entry
/// and follow the TCP state; `None` only peeks (an ICMP error about the flow must not keep
/// it alive). A half whose other half another flow took is removed and reported as missing
/// (the caller creates the flow anew, on a tuple of its own); that is checked when the
/// entry's time is refreshed, about once a millisecond of a flow's traffic.
#[inline(always)]
pub fn lookup_key(key: &FlowKey, tcp_flags: Option<u8>) -> Option<CtEntry> {
    let entry = CONNTRACK.get_ptr_mut(key)?;
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
        return Some(copied(entry));
    };
    if key.proto == IPPROTO_TCP {
        if is_syn(tcp_flags) && entry.state == ct_state::CLOSING {
            remove_flow(key, entry);
            return None;
        }
        let state = next_state(entry.state, tcp_flags);
        if state != entry.state {
            entry.state = state;
            if let OtherHalf::Ours(other) = other_half(key, entry) {
                // SAFETY: as above.
                unsafe { (*other).state = state };
            }
        }
    }
    let idle = now.saturating_sub(entry.last_seen_ns);
    // Lifetimes are seconds: a write per millisecond at most spares every packet of a busy
    // flow a store to a line other CPUs read, and the look at the other half a lookup.
    if idle >= LAST_SEEN_GRANULARITY_NS {
        match other_half(key, entry) {
            OtherHalf::Taken => {
                let _ = CONNTRACK.remove(key);
                count(Stat::CtOrphaned);
                return None;
            }
            OtherHalf::Missing if idle >= CT_RESTORE_INTERVAL_NS => {
                restore_partner(key, entry, now);
            }
            OtherHalf::Missing | OtherHalf::Ours(_) => {}
        }
        entry.last_seen_ns = now;
    }
    Some(copied(entry))
}

/// Puts back the other direction of a flow that the LRU evicted (its tuple free).
#[inline(always)]
fn restore_partner(key: &FlowKey, entry: &CtEntry, now: u64) {
    let restored = entry_to(
        &reversed(key),
        entry.flags ^ ct_flags::REPLY,
        entry.state,
        entry.counter,
        now,
    );
    if CONNTRACK
        .insert(partner_of(key, entry), restored, u64::from(BPF_NOEXIST))
        .is_ok()
    {
        count(Stat::CtRestored);
    }
}

/// Whether the entry at `reply_key` may be overwritten by a new flow whose packets show
/// `orig`: it is that very flow's stale half, or its own flow is over. Anything else
/// belongs to a live flow, whose replies must never reach another socket.
#[inline(always)]
fn claimable(reply_key: &FlowKey, orig: &FlowKey, now: u64) -> bool {
    let Some(entry) = CONNTRACK.get_ptr(reply_key) else {
        return true;
    };
    // SAFETY: a pointer into the map's value, valid during the program.
    let entry = unsafe { &*entry };
    partner_of(reply_key, entry) == *orig || flow_expired(reply_key, entry, now)
}

/// A source-port search, one attempt per call of [`attempt`]: `bpf_loop` runs it, so the
/// verifier checks one attempt rather than every one of [`SNAT_RETRIES`] (it was most of
/// the time a first `up` took). It lives on the calling program's stack, which it shares
/// with the callback's (512 bytes for both): kept small.
#[repr(C)]
struct PortSearch {
    orig: FlowKey,
    /// The tuple the flow's packets get; its source port moves as the search goes, and
    /// stays on the one found.
    new: FlowKey,
    counter: CounterRef,
    now: u64,
    /// The skb whose namespace's sockets may own a tuple too (`attempt::<true>` asks them).
    host_sockets: *mut __sk_buff,
    start: u32,
    flags: u8,
    /// 1 once a free reply tuple is found (and its entry in).
    found: u8,
    pad: [u8; 2],
}

/// One attempt of a [`PortSearch`]: `bpf_loop`'s callback (1 stops the loop). The socket
/// lookup, and its tuple on the stack, are only in the variant that asks (`ASK_SOCKETS`).
extern "C" fn attempt<const ASK_SOCKETS: bool>(index: u64, search: *mut c_void) -> i64 {
    // SAFETY: `create_with` passes its own `PortSearch`, alive on its stack for the loop.
    let search = unsafe { &mut *search.cast::<PortSearch>() };
    let attempt = index as u32;
    if attempt > 0 {
        let span = u32::from(u16::MAX - SNAT_PORT_MIN) + 1;
        let port = SNAT_PORT_MIN + ((search.start.wrapping_add(attempt)) % span) as u16;
        search.new.src_port = port.to_be();
        if search.orig.proto == IPPROTO_ICMP {
            search.new.dst_port = search.new.src_port;
        }
        if attempt == 1 {
            count(Stat::SnatCollisions);
        }
    }
    let reply_key = reversed(&search.new);
    if ASK_SOCKETS && host_sockets::owns(&TcContext::new(search.host_sockets), &reply_key) {
        return 0;
    }
    let reply = search.new_entry(&reversed(&search.orig), search.flags | ct_flags::REPLY);
    if CONNTRACK
        .insert(reply_key, reply, u64::from(BPF_NOEXIST))
        .is_ok()
        || (claimable(&reply_key, &search.orig, search.now)
            && CONNTRACK.insert(reply_key, reply, 0).is_ok())
    {
        search.found = 1;
        return 1;
    }
    0
}

/// Creates both directions of a flow whose packets `orig` are rewritten to `new`. With
/// `pick_source_port`, the new source port (or ICMP identifier) may move off
/// `new.src_port` when its reply tuple is another flow's: first the port asked for, then
/// random ports above [`SNAT_PORT_MIN`], [`SNAT_RETRIES`] tries in all, as Linux remaps
/// clashing tuples. The reply entry goes in first with `BPF_NOEXIST`, so a live flow's
/// mapping is never overwritten; when two CPUs create the same flow at once, both end up
/// with the winner's.
#[inline(always)]
pub fn create(
    orig: &FlowKey,
    new: FlowKey,
    flags: u8,
    counter: CounterRef,
    pick_source_port: bool,
) -> Result<CtEntry, Stat> {
    let tries = if pick_source_port { SNAT_RETRIES } else { 1 };
    let search = PortSearch::new(orig, new, flags, counter, core::ptr::null_mut());
    create_with(search, attempt::<false> as *mut c_void, tries)
}

/// [`create`] for masquerade, a source port always picked: a reply tuple that a socket of
/// the namespace of `ctx` owns is the host's too, as if the kernel's conntrack knew it.
#[inline(always)]
pub fn create_masquerade(
    ctx: &TcContext,
    orig: &FlowKey,
    new: FlowKey,
    flags: u8,
    counter: CounterRef,
) -> Result<CtEntry, Stat> {
    let search = PortSearch::new(orig, new, flags, counter, ctx.skb.skb);
    create_with(search, attempt::<true> as *mut c_void, SNAT_RETRIES)
}

impl PortSearch {
    #[inline(always)]
    fn new(
        orig: &FlowKey,
        new: FlowKey,
        flags: u8,
        counter: CounterRef,
        host_sockets: *mut __sk_buff,
    ) -> Self {
        Self {
            orig: *orig,
            new,
            counter,
            now: now(),
            host_sockets,
            // SAFETY: a helper without arguments.
            start: unsafe { bpf_get_prandom_u32() },
            flags,
            found: 0,
            pad: [0; 2],
        }
    }

    /// An entry of the flow being created: rewriting to `to`, with `flags`.
    #[inline(always)]
    fn new_entry(&self, to: &FlowKey, flags: u8) -> CtEntry {
        entry_to(to, flags, ct_state::NEW, self.counter, self.now)
    }
}

/// Runs `search` (`tries` attempts of `callback`), then adds the flow's forward entry.
#[inline(always)]
fn create_with(mut search: PortSearch, callback: *mut c_void, tries: u32) -> Result<CtEntry, Stat> {
    // SAFETY: the callback and its state outlive the call; no flags.
    unsafe { bpf_loop(tries, callback, (&raw mut search).cast(), 0) };
    if search.found == 0 {
        return Err(Stat::SnatExhausted);
    }
    let orig = &search.orig;
    let reply_key = reversed(&search.new);
    let forward = search.new_entry(&search.new, search.flags);
    if CONNTRACK
        .insert(orig, forward, u64::from(BPF_NOEXIST))
        .is_err()
    {
        // Another CPU created this flow at the same moment: use the winner's mapping, and
        // take back our reply entry unless it is the winner's too (same tuple).
        // SAFETY: the value is copied out at once.
        let winner = unsafe { CONNTRACK.get(orig) }.copied();
        if winner.is_none_or(|winner| partner_of(orig, &winner) != reply_key) {
            let _ = CONNTRACK.remove(reply_key);
        }
        return winner.ok_or(Stat::CtInsertFailed);
    }
    Ok(forward)
}

/// The tuple of the reply to a packet showing `key`.
#[inline(always)]
pub fn reversed(key: &FlowKey) -> FlowKey {
    FlowKey {
        src_ip: key.dst_ip,
        dst_ip: key.src_ip,
        src_port: key.dst_port,
        dst_port: key.src_port,
        proto: key.proto,
        pad: [0; 3],
    }
}

/// A new flow for a packet to a published port (DNAT, the source kept unless its reply
/// tuple clashes with another flow's; with [`flags::MASQ_ALL`], the source becomes the
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
    let src_ip = if config.flags & flags::MASQ_ALL != 0 {
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

/// Whether a packet showing `key` belongs to a flow that was translated before it got here
/// (by XDP, which runs first): its reply direction is known.
#[inline(always)]
pub fn translated_earlier(key: &FlowKey) -> bool {
    // SAFETY: the value is not read.
    unsafe { CONNTRACK.get(reversed(key)) }.is_some()
}
