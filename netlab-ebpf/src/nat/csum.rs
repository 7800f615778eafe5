//! Internet checksum arithmetic (RFC 1624) for the fields the programs rewrite in place:
//! the IPv4 header checksum (and, in XDP, every checksum) is updated by hand; in tc the L4
//! checksum goes to `bpf_l4_csum_replace` as one difference, which keeps a partial
//! (offloaded) checksum partial and a full one correct.

/// One's-complement sum of two 32-bit partial sums (end-around carry).
#[inline(always)]
pub fn add(a: u32, b: u32) -> u32 {
    let (sum, carry) = a.overflowing_add(b);
    sum + u32::from(carry)
}

/// What a checksum must take in when a 32-bit word changes from `old` to `new` (both as
/// loaded from the packet): `~old + new`, as `bpf_csum_diff` computes it.
#[inline(always)]
pub fn diff32(old: u32, new: u32) -> u32 {
    add(!old, new)
}

/// The same for a 16-bit word.
#[inline(always)]
pub fn diff16(old: u16, new: u16) -> u32 {
    add(u32::from(!old), u32::from(new))
}

/// One's-complement sum of the 16-bit words of `value` as laid out in memory.
#[inline(always)]
fn words(value: &[u8]) -> u32 {
    let mut sum = 0u32;
    let mut i = 0;
    while i + 1 < value.len() {
        sum += u32::from(u16::from_be_bytes([value[i], value[i + 1]]));
        i += 2;
    }
    sum
}

/// Incremental checksum update (RFC 1624: HC' = ~(~HC + ~m + m')) of a checksum field as
/// stored in the packet, for a field whose bytes change from `old` to `new`.
#[inline(always)]
pub fn update(check: u16, old: &[u8], new: &[u8]) -> u16 {
    let check = u16::from_be(check);
    // ~m summed word by word equals (0xffff * words) - m; add the complement per word.
    let old_words = (old.len() / 2) as u32;
    let sum = u32::from(!check) + old_words * 0xffff - words(old) + words(new);
    (!fold(sum)).to_be()
}

/// Incremental checksum update of a checksum field as loaded from the packet, for covered
/// fields whose change (as [`diff32`] and [`diff16`] give it, on words as loaded) sums to
/// `diff`.
#[inline(always)]
pub fn update_by_diff(check: u16, diff: u32) -> u16 {
    !fold(add(u32::from(!check), diff))
}

/// A 32-bit one's-complement sum folded to 16 bits (end-around carries), not complemented.
#[inline(always)]
pub fn fold(sum: u32) -> u16 {
    let sum = (sum & 0xffff) + (sum >> 16);
    ((sum & 0xffff) + (sum >> 16)) as u16
}
