//! Crafting Ethernet/IPv4 frames and checking them, for `BPF_PROG_TEST_RUN` tests of the
//! datapath's packet rewriting. Checksums are computed from scratch here, so a test compares
//! the datapath's incremental updates against the real thing.

use std::net::Ipv4Addr;

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
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&u16::try_from(segment.len()).unwrap_or(0).to_be_bytes());
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
        let mut l4 = vec![0u8; 20];
        l4[0..2].copy_from_slice(&src.1.to_be_bytes());
        l4[2..4].copy_from_slice(&dst.1.to_be_bytes());
        l4[4..8].copy_from_slice(&1000u32.to_be_bytes());
        l4[12] = 5 << 4;
        l4[13] = flags;
        l4[14..16].copy_from_slice(&64240u16.to_be_bytes());
        l4.extend_from_slice(payload);
        Self::new(src.0, dst.0, TCP, l4)
    }

    /// A UDP datagram.
    pub fn udp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Self {
        let mut l4 = vec![0u8; 8];
        l4[0..2].copy_from_slice(&src.1.to_be_bytes());
        l4[2..4].copy_from_slice(&dst.1.to_be_bytes());
        l4[4..6].copy_from_slice(&u16::try_from(8 + payload.len()).unwrap_or(0).to_be_bytes());
        l4.extend_from_slice(payload);
        Self::new(src.0, dst.0, UDP, l4)
    }

    /// An ICMP echo request (type 8) or reply (type 0).
    pub fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, kind: u8, id: u16, seq: u16) -> Self {
        let mut l4 = vec![kind, 0, 0, 0];
        l4.extend_from_slice(&id.to_be_bytes());
        l4.extend_from_slice(&seq.to_be_bytes());
        l4.extend_from_slice(b"netlab-ping-payload");
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
        let mut l4 = vec![kind, code, 0, 0, 0, 0, 0, 0];
        if kind == 3 && code == 4 {
            l4[6..8].copy_from_slice(&1400u16.to_be_bytes());
        }
        let ip = &quoted.bytes()[14..];
        l4.extend_from_slice(&ip[..ip.len().min(len)]);
        Self::new(src, dst, ICMP, l4)
    }

    fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: Vec<u8>) -> Self {
        Self {
            src,
            dst,
            proto,
            ttl: 64,
            options: Vec::new(),
            frag: 0,
            l4,
            raw_l4: false,
        }
    }

    /// The frame on the wire: Ethernet, IPv4 with a valid header checksum, L4 with a valid
    /// checksum.
    pub fn bytes(&self) -> Vec<u8> {
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
        let mut ip = vec![0u8; 20];
        ip[0] = 0x40 | u8::try_from(ihl / 4).unwrap_or(5);
        ip[2..4].copy_from_slice(&u16::try_from(ihl + l4.len()).unwrap_or(0).to_be_bytes());
        ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        ip[6..8].copy_from_slice(&self.frag.to_be_bytes());
        ip[8] = self.ttl;
        ip[9] = self.proto;
        ip[12..16].copy_from_slice(&self.src.octets());
        ip[16..20].copy_from_slice(&self.dst.octets());
        ip.extend_from_slice(&self.options);
        let csum = checksum(&ip);
        ip[10..12].copy_from_slice(&csum.to_be_bytes());
        let mut frame = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00];
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&l4);
        frame
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
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let l4 = ip[ihl..total].to_vec();
    let proto = ip[9];
    let ports = match proto {
        ICMP => {
            let id = u16::from_be_bytes([l4[4], l4[5]]);
            (id, id)
        }
        _ => (
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        ),
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
        ttl: ip[8],
        ihl,
        ports,
        ip_checksum_ok: checksum(&ip[..ihl]) == 0,
        l4_checksum_ok,
        l4,
    }
}
