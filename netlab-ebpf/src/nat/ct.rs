//! Connection tracking of netlab's own: each translated flow has two entries in
//! `CONNTRACK`, one per direction, keyed by the tuple as it appears on the wire and holding
//! the tuple to rewrite it to. Entries expire by protocol and TCP state; the map is an LRU,
//! so a full table evicts the least recently used flows rather than refusing new ones.

use aya_ebpf::{
    bindings::{BPF_ANY, BPF_NOEXIST},
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

/// The live entry for this packet's tuple, refreshed (time, TCP state); an expired entry is
/// removed and reported as missing.
#[inline(always)]
pub fn lookup(pkt: &Packet) -> Option<CtEntry> {
    lookup_key(&pkt.key, pkt.tcp_flags)
}

#[inline(always)]
pub fn lookup_key(key: &FlowKey, tcp_flags: u8) -> Option<CtEntry> {
    let entry = CONNTRACK.get_ptr_mut(key)?;
    // SAFETY: a pointer into the map's value, valid during the program; racing updates of
    // the same flow on two CPUs only race on timestamps and state, both benign.
    let entry = unsafe { &mut *entry };
    let now = now();
    if now.saturating_sub(entry.last_seen_ns) > lifetime(key.proto, entry.state) {
        let _ = CONNTRACK.remove(key);
        count(Stat::Expired);
        return None;
    }
    entry.last_seen_ns = now;
    if key.proto == IPPROTO_TCP {
        if tcp_flags & (TCP_FIN | TCP_RST) != 0 {
            entry.state = ct_state::CLOSING;
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
        if CONNTRACK
            .insert(reversed(&new), reply, u64::from(BPF_NOEXIST))
            .is_ok()
        {
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
    if CONNTRACK.insert(orig, forward, u64::from(BPF_ANY)).is_err() {
        let _ = CONNTRACK.remove(reversed(&new));
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
