//! Connection tracking of netlab's own: each translated flow has two entries in
//! `CONNTRACK`, one per direction, keyed by the tuple as it appears on the wire and holding
//! the tuple to rewrite it to. Entries expire by protocol and TCP state; the map is an LRU,
//! so a full table evicts the least recently used flows rather than refusing new ones.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_prandom_u32, bpf_ktime_get_ns},
};
use netlab_common::nat::{
    CtEntry, FlowKey, NatConfig, PublishKey, SNAT_PORT_MIN, SNAT_RETRIES, Stat, ct_flags, ct_state,
    timeouts,
};

use super::{
    maps::{CONNTRACK, count, published},
    packet::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Packet},
};

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

#[inline(always)]
fn now() -> u64 {
    // SAFETY: a helper without arguments.
    unsafe { bpf_ktime_get_ns() }
}

#[inline(always)]
fn lifetime(proto: u8, state: u8) -> u64 {
    match (proto, state) {
        (IPPROTO_TCP, ct_state::ESTABLISHED) => timeouts::TCP_ESTABLISHED_NS,
        (IPPROTO_TCP, ct_state::CLOSING) => timeouts::TCP_CLOSING_NS,
        (IPPROTO_TCP, _) => timeouts::TCP_NEW_NS,
        (IPPROTO_ICMP, _) => timeouts::ICMP_NS,
        _ => timeouts::UDP_NS,
    }
}

/// The live entry for this packet's tuple, refreshed (time, TCP state); a flow whose two
/// directions are both expired is removed and reported as missing.
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

#[inline(always)]
fn expired(proto: u8, entry: &CtEntry, now: u64) -> bool {
    now.saturating_sub(entry.last_seen_ns) > lifetime(proto, entry.state)
}

/// Looks a flow up by one of its tuples. `tcp_flags` is the packet's, to refresh the entry
/// and follow the TCP state; `None` only peeks (an ICMP error about the flow must not keep
/// it alive). A direction counts as live while either direction is: a flow idle one way
/// (one-way UDP, a half-closed TCP connection) keeps both its mappings.
#[inline(always)]
pub fn lookup_key(key: &FlowKey, tcp_flags: Option<u8>) -> Option<CtEntry> {
    let entry = CONNTRACK.get_ptr_mut(key)?;
    // SAFETY: a pointer into the map's value, valid during the program; racing updates of
    // the same flow on two CPUs only race on timestamps and state, both benign.
    let entry = unsafe { &mut *entry };
    let now = now();
    if expired(key.proto, entry, now) {
        let partner = reversed(&rewritten(key, entry));
        // SAFETY: the value is copied out at once.
        let partner_live =
            unsafe { CONNTRACK.get(partner) }.is_some_and(|p| !expired(key.proto, p, now));
        if !partner_live {
            let _ = CONNTRACK.remove(key);
            let _ = CONNTRACK.remove(partner);
            count(Stat::Expired);
            return None;
        }
    }
    let Some(tcp_flags) = tcp_flags else {
        return Some(*entry);
    };
    entry.last_seen_ns = now;
    if key.proto == IPPROTO_TCP {
        if tcp_flags & (TCP_FIN | TCP_RST) != 0 {
            entry.state = ct_state::CLOSING;
        } else if tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN {
            // A new connection reusing the tuple starts over.
            entry.state = ct_state::NEW;
        } else if entry.state == ct_state::NEW
            && (entry.flags & ct_flags::REPLY != 0 || tcp_flags & (TCP_ACK | TCP_SYN) == TCP_ACK)
        {
            entry.state = ct_state::ESTABLISHED;
        }
    }
    Some(*entry)
}

/// Creates both directions of a flow whose packets `orig` are rewritten to `new`. With
/// `pick_source_port`, the new source port (or ICMP identifier) may move off
/// `new.src_port` when that mapping is taken: first the port asked for, then random ports
/// above [`SNAT_PORT_MIN`], [`SNAT_RETRIES`] tries in all. The reply entry goes in first with
/// `BPF_NOEXIST`, so an existing flow's mapping is never overwritten.
#[inline(always)]
pub fn create(
    orig: &FlowKey,
    mut new: FlowKey,
    flags: u8,
    publish: PublishKey,
    pick_source_port: bool,
) -> Result<CtEntry, Stat> {
    let now = now();
    let tries = if pick_source_port { SNAT_RETRIES } else { 1 };
    let reply = CtEntry {
        src_ip: orig.dst_ip,
        dst_ip: orig.src_ip,
        src_port: orig.dst_port,
        dst_port: orig.src_port,
        flags: flags | ct_flags::REPLY,
        state: ct_state::NEW,
        pad: [0; 2],
        publish,
        last_seen_ns: now,
    };
    let mut inserted = false;
    // SAFETY: a helper without arguments.
    let start = unsafe { bpf_get_prandom_u32() };
    for attempt in 0..tries {
        if attempt > 0 {
            let span = u32::from(u16::MAX - SNAT_PORT_MIN) + 1;
            let port = SNAT_PORT_MIN + ((start.wrapping_add(attempt)) % span) as u16;
            new.src_port = port.to_be();
            if orig.proto == IPPROTO_ICMP {
                new.dst_port = new.src_port;
            }
            if attempt == 1 {
                count(Stat::SnatCollisions);
            }
        }
        let reply_key = reversed(&new);
        let free = CONNTRACK
            .insert(reply_key, reply, u64::from(BPF_NOEXIST))
            .is_ok();
        // A reply entry whose other direction is gone (evicted, or this very flow's stale
        // half) belongs to no live flow: take it over instead of losing the port.
        if free || (orphan(&reply_key) && CONNTRACK.insert(reply_key, reply, 0).is_ok()) {
            inserted = true;
            break;
        }
    }
    if !inserted {
        count(Stat::SnatExhausted);
        return Err(Stat::SnatExhausted);
    }
    let forward = CtEntry {
        src_ip: new.src_ip,
        dst_ip: new.dst_ip,
        src_port: new.src_port,
        dst_port: new.dst_port,
        flags,
        state: ct_state::NEW,
        pad: [0; 2],
        publish,
        last_seen_ns: now,
    };
    if CONNTRACK
        .insert(orig, forward, u64::from(BPF_NOEXIST))
        .is_err()
    {
        // Another CPU created this flow at the same moment (or the table is full): undo our
        // reply entry and use the winner's mapping, so the flow has exactly one.
        let _ = CONNTRACK.remove(reversed(&new));
        // SAFETY: the value is copied out at once.
        if let Some(winner) = unsafe { CONNTRACK.get(orig) } {
            return Ok(*winner);
        }
        count(Stat::CtInsertFailed);
        return Err(Stat::CtInsertFailed);
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

/// A new flow for a packet to a published port (DNAT, the source kept), or `None` when the
/// packet is not for a published port.
#[inline(always)]
pub fn create_dnat(config: &NatConfig, key: &FlowKey) -> Result<Option<CtEntry>, Stat> {
    if !matches!(key.proto, IPPROTO_TCP | IPPROTO_UDP) {
        return Ok(None);
    }
    let Some((publish, target)) = published(config, key.dst_ip, key.dst_port, key.proto, false)
    else {
        return Ok(None);
    };
    let new = FlowKey {
        dst_ip: target.ip,
        dst_port: target.port,
        ..*key
    };
    create(key, new, ct_flags::DNAT, publish, false).map(Some)
}

/// Whether the entry at `key` has lost its other direction.
#[inline(always)]
fn orphan(key: &FlowKey) -> bool {
    // SAFETY: the value is copied out at once.
    let Some(entry) = (unsafe { CONNTRACK.get(key) }).copied() else {
        return false;
    };
    // SAFETY: as above.
    unsafe { CONNTRACK.get(reversed(&rewritten(key, &entry))) }.is_none()
}
