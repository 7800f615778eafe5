//! IPv4 fragments of translated flows, as Cilium handles them: the first fragment carries
//! the ports and is translated as a whole packet (its L4 checksum covers the whole datagram,
//! so an incremental update stays right); how its addresses were rewritten is remembered,
//! keyed by (source, destination, IP id, protocol), and the later fragments, which carry no
//! ports, get the same address rewrite. A later fragment with no such entry cannot be
//! translated and is dropped by the callers, never forwarded with an untranslated address.

use netlab_common::nat::{CtEntry, FragEntry};

use super::{
    maps::FRAGMENTS,
    packet::{Frag, Packet},
};

/// Remembers how a first fragment's addresses were rewritten (to themselves when it was not
/// translated), so its later fragments follow it.
#[inline(always)]
pub fn remember(pkt: &Packet, src_ip: u32, dst_ip: u32, flags: u8) {
    if pkt.frag != Frag::First {
        return;
    }
    let entry = FragEntry {
        src_ip,
        dst_ip,
        flags,
        pad: [0; 3],
    };
    let _ = FRAGMENTS.insert(pkt.frag_key(), entry, 0);
}

/// How to rewrite a later fragment, as a conntrack entry that changes its addresses only.
#[inline(always)]
pub fn lookup(pkt: &Packet) -> Option<CtEntry> {
    // SAFETY: the value is copied out at once.
    let entry = unsafe { FRAGMENTS.get(pkt.frag_key()) }.copied()?;
    Some(CtEntry {
        src_ip: entry.src_ip,
        dst_ip: entry.dst_ip,
        flags: entry.flags,
        ..CtEntry::default()
    })
}
