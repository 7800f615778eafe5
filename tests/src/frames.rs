//! Crafting Ethernet/IPv4 frames and checking them, for `BPF_PROG_TEST_RUN` tests of the
//! datapath's packet rewriting. Checksums are computed from scratch here, so a test compares
//! the datapath's incremental updates against the real thing.

use std::net::Ipv4Addr;

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP: u8 = 1;

/// One's-complement sum of 16-bit big-endian words (odd length padded with zero).
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

/// The Internet checksum of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    fold(sum(data))
}

/// The TCP/UDP checksum over the pseudo header and `segment` (checksum field included as is).
pub fn l4_checksum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, segment: &[u8]) -> u16 {
    let mut pseudo = BytesMut::with_capacity(12);
    pseudo.put_slice(&src.octets());
    pseudo.put_slice(&dst.octets());
    pseudo.put_u8(0);
    pseudo.put_u8(proto);
    pseudo.put_u16(u16::try_from(segment.len()).unwrap_or(0));
    fold(sum(&pseudo) + sum(segment))
}

/// An IPv4 packet in an Ethernet frame, built field by field.
#[derive(Debug, Clone)]
pub struct Frame {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub ttl: u8,
    /// IP options (a multiple of 4 bytes).
    pub options: Vec<u8>,
    /// The flags/fragment-offset field.
    pub frag: u16,
    /// The L4 header and payload (checksum field filled in by `bytes` unless `raw_l4`).
    pub l4: Vec<u8>,
    /// Leave the L4 bytes exactly as given (e.g. a UDP checksum of 0).
    pub raw_l4: bool,
}

impl Frame {
    /// A TCP segment with the given flags and payload.
    pub fn tcp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), flags: u8, payload: &[u8]) -> Self {
        let mut l4 = BytesMut::with_capacity(20 + payload.len());
        l4.put_u16(src.1);
        l4.put_u16(dst.1);
        l4.put_u32(1000); // sequence number
        l4.put_u32(0); // acknowledgment number
        l4.put_u8(5 << 4); // data offset: 5 words
        l4.put_u8(flags);
        l4.put_u16(64240); // window
        l4.put_u16(0); // checksum, filled in by `bytes`
        l4.put_u16(0); // urgent pointer
        l4.put_slice(payload);
        Self::new(src.0, dst.0, TCP, l4)
    }

    /// A UDP datagram.
    pub fn udp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Self {
        let mut l4 = BytesMut::with_capacity(8 + payload.len());
        l4.put_u16(src.1);
        l4.put_u16(dst.1);
        l4.put_u16(u16::try_from(8 + payload.len()).unwrap_or(0));
        l4.put_u16(0); // checksum, filled in by `bytes`
        l4.put_slice(payload);
        Self::new(src.0, dst.0, UDP, l4)
    }

    /// An ICMP echo request (type 8) or reply (type 0).
    pub fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, kind: u8, id: u16, seq: u16) -> Self {
        let mut l4 = BytesMut::new();
        l4.put_u8(kind);
        l4.put_u8(0); // code
        l4.put_u16(0); // checksum, filled in by `bytes`
        l4.put_u16(id);
        l4.put_u16(seq);
        l4.put_slice(b"netlab-ping-payload");
        Self::new(src, dst, ICMP, l4)
    }

    /// An ICMP error (`kind`/`code`) quoting the first 28 bytes of `quoted`'s IP packet (the
    /// least RFC 792 asks for).
    pub fn icmp_error(src: Ipv4Addr, dst: Ipv4Addr, kind: u8, code: u8, quoted: &Frame) -> Self {
        Self::icmp_error_quoting(src, dst, kind, code, quoted, 28)
    }

    /// An ICMP error quoting up to `len` bytes of `quoted`'s IP packet (Linux quotes as much
    /// as fits in 576 bytes).
    pub fn icmp_error_quoting(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        kind: u8,
        code: u8,
        quoted: &Frame,
        len: usize,
    ) -> Self {
        let mut l4 = BytesMut::new();
        l4.put_u8(kind);
        l4.put_u8(code);
        l4.put_u16(0); // checksum, filled in by `bytes`
        l4.put_u16(0); // unused
        // "Fragmentation needed" carries the next hop's MTU (RFC 1191).
        l4.put_u16(if kind == 3 && code == 4 { 1400 } else { 0 });
        let ip = quoted.bytes().slice(14..);
        l4.put_slice(&ip[..ip.len().min(len)]);
        Self::new(src, dst, ICMP, l4)
    }

    fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: BytesMut) -> Self {
        Self {
            src,
            dst,
            proto,
            ttl: 64,
            options: Vec::new(),
            frag: 0,
            l4: l4.into(),
            raw_l4: false,
        }
    }

    /// The frame on the wire: Ethernet, IPv4 with a valid header checksum, L4 with a valid
    /// checksum.
    pub fn bytes(&self) -> Bytes {
        let mut l4 = self.l4.clone();
        if !self.raw_l4 {
            let at = match self.proto {
                TCP => 16,
                UDP => 6,
                _ => 2,
            };
            l4[at..at + 2].copy_from_slice(&[0, 0]);
            let csum = if self.proto == ICMP {
                checksum(&l4)
            } else {
                l4_checksum(self.src, self.dst, self.proto, &l4)
            };
            l4[at..at + 2].copy_from_slice(&csum.to_be_bytes());
        }
        let ihl = 20 + self.options.len();
        let mut ip = BytesMut::with_capacity(ihl);
        ip.put_u8(0x40 | u8::try_from(ihl / 4).unwrap_or(5)); // version 4, header length
        ip.put_u8(0); // DSCP/ECN
        ip.put_u16(u16::try_from(ihl + l4.len()).unwrap_or(0));
        ip.put_u16(0x1234); // identification
        ip.put_u16(self.frag);
        ip.put_u8(self.ttl);
        ip.put_u8(self.proto);
        ip.put_u16(0); // header checksum, below
        ip.put_slice(&self.src.octets());
        ip.put_slice(&self.dst.octets());
        ip.put_slice(&self.options);
        let csum = checksum(&ip);
        ip[10..12].copy_from_slice(&csum.to_be_bytes());
        let mut frame = BytesMut::with_capacity(14 + ip.len() + l4.len());
        frame.put_slice(&[0x02, 0, 0, 0, 0, 0x01]); // destination MAC
        frame.put_slice(&[0x02, 0, 0, 0, 0, 0x02]); // source MAC
        frame.put_u16(0x0800); // IPv4
        frame.put_slice(&ip);
        frame.put_slice(&l4);
        frame.freeze()
    }
}

/// A received frame taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub ttl: u8,
    pub ihl: usize,
    /// Source and destination ports (TCP/UDP), or the identifier twice (ICMP echo).
    pub ports: (u16, u16),
    pub ip_checksum_ok: bool,
    pub l4_checksum_ok: bool,
    /// The L4 bytes.
    pub l4: Vec<u8>,
}

/// Parses a frame produced by [`Frame::bytes`] (or rewritten by the datapath).
pub fn parse(frame: &[u8]) -> Parsed {
    let ip = &frame[14..];
    let mut header = ip;
    let ihl = usize::from(header.get_u8() & 0x0f) * 4;
    header.advance(1); // DSCP/ECN
    let total = usize::from(header.get_u16()).min(ip.len());
    header.advance(4); // identification, flags and fragment offset
    let ttl = header.get_u8();
    let proto = header.get_u8();
    header.advance(2); // header checksum
    let src = Ipv4Addr::from_bits(header.get_u32());
    let dst = Ipv4Addr::from_bits(header.get_u32());
    let l4 = ip[ihl..total].to_vec();
    let mut l4_header = &l4[..];
    let ports = match proto {
        ICMP => {
            l4_header.advance(4); // type, code, checksum
            let id = l4_header.get_u16();
            (id, id)
        }
        _ => (l4_header.get_u16(), l4_header.get_u16()),
    };
    let l4_checksum_ok = match proto {
        ICMP => checksum(&l4) == 0,
        // 0 means "no checksum": never right for a datagram that had one, so it does not
        // pass here; a test of a checksum-less datagram checks the 0 itself.
        UDP if l4[6..8] == [0, 0] => false,
        _ => l4_checksum(src, dst, proto, &l4) == 0,
    };
    Parsed {
        src,
        dst,
        proto,
        ttl,
        ihl,
        ports,
        ip_checksum_ok: checksum(&ip[..ihl]) == 0,
        l4_checksum_ok,
        l4,
    }
}
