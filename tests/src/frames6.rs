//! Crafting Ethernet/IPv6 frames and checking them, as `frames` does for IPv4: checksums are
//! computed from scratch, over IPv6's pseudo header (which every upper-layer checksum,
//! ICMPv6's included, covers).

use std::net::Ipv6Addr;

use bytes::{BufMut, BytesMut};

pub use crate::frames::{TCP, UDP};
pub const ICMPV6: u8 = 58;
pub const HOP_BY_HOP: u8 = 0;
pub const FRAGMENT: u8 = 44;

fn sum(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !u16::try_from(s).unwrap_or(u16::MAX)
}

/// The upper-layer checksum over IPv6's pseudo header and `segment` (its checksum field
/// included as is): 0 when the field holds the right sum.
pub fn l4_checksum(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, segment: &[u8]) -> u16 {
    let mut pseudo = BytesMut::with_capacity(40);
    pseudo.put_slice(&src.octets());
    pseudo.put_slice(&dst.octets());
    pseudo.put_u32(u32::try_from(segment.len()).unwrap_or(0));
    pseudo.put_slice(&[0, 0, 0, proto]);
    fold(sum(&pseudo) + sum(segment))
}

/// Offset of the checksum field in an upper-layer header.
fn csum_offset(proto: u8) -> usize {
    match proto {
        TCP => 16,
        UDP => 6,
        _ => 2,
    }
}

/// An IPv6 packet in an Ethernet frame.
#[derive(Debug, Clone)]
pub struct Frame6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub proto: u8,
    pub hop_limit: u8,
    /// Extension headers before the upper layer, each (its protocol number, its bytes from
    /// the length byte on, padded to 8 with the next-header byte left out).
    pub ext: Vec<(u8, Vec<u8>)>,
    /// The upper-layer header and payload (checksum filled in by `bytes`).
    pub l4: Vec<u8>,
}

impl Frame6 {
    pub fn tcp(src: (Ipv6Addr, u16), dst: (Ipv6Addr, u16), flags: u8, payload: &[u8]) -> Self {
        let mut l4 = BytesMut::new();
        l4.put_u16(src.1);
        l4.put_u16(dst.1);
        l4.put_u32(1000);
        l4.put_u32(0);
        l4.put_u8(5 << 4);
        l4.put_u8(flags);
        l4.put_u16(64240);
        l4.put_u16(0);
        l4.put_u16(0);
        l4.put_slice(payload);
        Self::new(src.0, dst.0, TCP, l4.to_vec())
    }

    pub fn udp(src: (Ipv6Addr, u16), dst: (Ipv6Addr, u16), payload: &[u8]) -> Self {
        let mut l4 = BytesMut::new();
        l4.put_u16(src.1);
        l4.put_u16(dst.1);
        l4.put_u16(u16::try_from(8 + payload.len()).unwrap_or(0));
        l4.put_u16(0);
        l4.put_slice(payload);
        Self::new(src.0, dst.0, UDP, l4.to_vec())
    }

    /// An ICMPv6 message of `kind` (128 echo request, 1 unreachable, ...) whose body (after
    /// type, code and checksum) is `body`.
    pub fn icmp(src: Ipv6Addr, dst: Ipv6Addr, kind: u8, code: u8, body: &[u8]) -> Self {
        let mut l4 = vec![kind, code, 0, 0];
        l4.extend_from_slice(body);
        Self::new(src, dst, ICMPV6, l4)
    }

    pub fn new(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, l4: Vec<u8>) -> Self {
        Self {
            src,
            dst,
            proto,
            hop_limit: 64,
            ext: Vec::new(),
            l4,
        }
    }

    /// The upper-layer bytes with their checksum computed.
    pub fn l4_bytes(&self) -> Vec<u8> {
        let mut l4 = self.l4.clone();
        let at = csum_offset(self.proto);
        l4[at] = 0;
        l4[at + 1] = 0;
        let check = l4_checksum(self.src, self.dst, self.proto, &l4);
        l4[at..at + 2].copy_from_slice(&check.to_be_bytes());
        l4
    }

    /// The IPv6 packet (no Ethernet header), with `l4` as its upper layer.
    pub fn packet_with(&self, l4: &[u8]) -> Vec<u8> {
        let mut ext = Vec::new();
        let mut next = self.proto;
        for (proto, bytes) in self.ext.iter().rev() {
            let mut header = vec![next];
            header.extend_from_slice(bytes);
            header.extend(ext);
            ext = header;
            next = *proto;
        }
        let mut out = BytesMut::new();
        out.put_u32(6 << 28);
        out.put_u16(u16::try_from(ext.len() + l4.len()).unwrap_or(0));
        out.put_u8(next);
        out.put_u8(self.hop_limit);
        out.put_slice(&self.src.octets());
        out.put_slice(&self.dst.octets());
        out.put_slice(&ext);
        out.put_slice(l4);
        out.to_vec()
    }

    /// The Ethernet frame.
    pub fn bytes(&self) -> Vec<u8> {
        ethernet(&self.packet_with(&self.l4_bytes()))
    }
}

/// `packet` in an Ethernet frame (IPv6 ethertype).
pub fn ethernet(packet: &[u8]) -> Vec<u8> {
    let mut out = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x86, 0xdd];
    out.extend_from_slice(packet);
    out
}

/// A fragment header's bytes after the next-header byte: offset (in 8-byte units), more
/// fragments, identification.
pub fn fragment_header(offset: u16, more: bool, id: u32) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out
}

/// What a test reads back from a frame.
#[derive(Debug, Clone)]
pub struct Parsed6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    /// The upper layer's protocol, past the extension headers.
    pub proto: u8,
    /// Source and destination ports (TCP, UDP), or the echo identifier twice.
    pub ports: (u16, u16),
    /// The upper-layer bytes.
    pub l4: Vec<u8>,
    /// Whether the upper-layer checksum is right (only meaningful for a whole datagram).
    pub l4_checksum_ok: bool,
}

/// Reads an Ethernet/IPv6 frame.
pub fn parse6(frame: &[u8]) -> Parsed6 {
    let ip = &frame[14..];
    let octets = |at: usize| -> Ipv6Addr {
        let mut o = [0u8; 16];
        o.copy_from_slice(&ip[at..at + 16]);
        Ipv6Addr::from(o)
    };
    let (src, dst) = (octets(8), octets(24));
    let mut next = ip[6];
    let mut at = 40;
    while matches!(next, HOP_BY_HOP | FRAGMENT | 43 | 60) {
        let len = if next == FRAGMENT {
            8
        } else {
            (usize::from(ip[at + 1]) + 1) * 8
        };
        next = ip[at];
        at += len;
    }
    let l4 = ip[at..].to_vec();
    let ports = match next {
        TCP | UDP => (
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        ),
        ICMPV6 => {
            let id = u16::from_be_bytes([l4[4], l4[5]]);
            (id, id)
        }
        _ => (0, 0),
    };
    Parsed6 {
        src,
        dst,
        hop_limit: ip[7],
        proto: next,
        ports,
        l4_checksum_ok: l4_checksum(src, dst, next, &l4) == 0,
        l4,
    }
}
