//! Published port ranges in the datapath. A spec of more than one port is written as the
//! few aligned blocks of ports that cover it, each one prefix of an LPM trie (`1-65535` is
//! 16 entries), with one counter slot for the whole range: publishing every port writes 32
//! entries and 2 counter slots instead of 131,070 of each. A single port stays in the
//! per-port hash, which the datapath asks first. Each family has its trie: the same code
//! writes both, over [`Prefix`].

use std::collections::HashMap;

use aya::maps::{
    Map, MapData,
    lpm_trie::{Key, LpmTrie},
};
use netlab_common::{
    nat::{
        PORT_PREFIX_FIXED_BITS, PUBLISH_RANGES_MAX_ENTRIES, PortPrefix, PublishRange,
        maps as map_names,
    },
    nat6::{self, PORT_PREFIX6_FIXED_BITS, PortPrefix6, PublishRange6, words_of},
};

use crate::{
    error::{Error, Result},
    ports::PortSpec,
};

/// The key data of a family's ranges trie.
pub(crate) trait Prefix: aya::Pod + Eq + std::hash::Hash + std::fmt::Debug {
    /// What a block leads to.
    type Range: aya::Pod;
    /// Bits before the port (always matched in full).
    const FIXED_BITS: u32;
    /// The trie's name.
    const MAP: &'static str;
    /// The port (network order): a block's first.
    fn port(&self) -> u16;
    /// The prefix of `spec`'s block starting at host port `first`, or `None` when `spec` is
    /// not published in this family.
    fn of_spec(spec: &PortSpec, first: u16) -> Option<Self>;
}

impl Prefix for PortPrefix {
    type Range = PublishRange;
    const FIXED_BITS: u32 = PORT_PREFIX_FIXED_BITS;
    const MAP: &'static str = map_names::PUBLISH_RANGES;
    fn port(&self) -> u16 {
        self.port
    }
    fn of_spec(spec: &PortSpec, first: u16) -> Option<Self> {
        let ip = spec.host_ip4()?.map_or(0, |ip| u32::from(ip).to_be());
        Some(Self {
            ip,
            proto: spec.proto.number(),
            pad: 0,
            port: first.to_be(),
        })
    }
}

impl Prefix for PortPrefix6 {
    type Range = PublishRange6;
    const FIXED_BITS: u32 = PORT_PREFIX6_FIXED_BITS;
    const MAP: &'static str = nat6::maps::PUBLISH_RANGES6;
    fn port(&self) -> u16 {
        self.port
    }
    fn of_spec(spec: &PortSpec, first: u16) -> Option<Self> {
        let ip = spec.host_ip6()?.map_or([0; 4], words_of);
        Some(Self {
            ip,
            proto: spec.proto.number(),
            pad: 0,
            port: first.to_be(),
        })
    }
}

use super::tables::Tables;

/// One aligned block of ports: `first` and the ports after it that share its first `bits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Block {
    pub first: u16,
    /// Bits of the port the block fixes: 16 for one port, 0 for all 65,536.
    pub bits: u32,
}

impl Block {
    pub fn last(self) -> u16 {
        let size = 1u32 << (16 - self.bits);
        u16::try_from(u32::from(self.first) + size - 1).unwrap_or(u16::MAX)
    }
}

/// The fewest aligned blocks that cover `start..=end` exactly, in order.
pub(crate) fn blocks(start: u16, end: u16) -> Vec<Block> {
    let mut out = Vec::new();
    let (mut next, end) = (u32::from(start), u32::from(end));
    while next <= end {
        // The largest block that starts at `next` (aligned to its size) and ends by `end`.
        let mut size_bits = next.trailing_zeros().min(16);
        while next + (1 << size_bits) - 1 > end {
            size_bits -= 1;
        }
        out.push(Block {
            first: u16::try_from(next).unwrap_or(u16::MAX),
            bits: 16 - size_bits,
        });
        next += 1 << size_bits;
    }
    out
}

/// Whether `spec` goes to the ranges map (more than one port) rather than the per-port map.
pub(crate) fn is_range(spec: &PortSpec) -> bool {
    spec.host.start != spec.host.end
}

/// A key of a ranges map, comparable and hashable (aya's `Key` is neither).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RangeKey<P = PortPrefix> {
    pub prefix: P,
    pub block: Block,
}

/// A key of the IPv6 ranges map.
pub(crate) type RangeKey6 = RangeKey<PortPrefix6>;

impl<P: Prefix> RangeKey<P> {
    fn trie_key(self) -> Key<P> {
        Key::new(P::FIXED_BITS + self.block.bits, self.prefix)
    }

    fn from_trie_key(key: Key<P>) -> Self {
        let prefix = key.data();
        Self {
            prefix,
            block: Block {
                first: u16::from_be(prefix.port()),
                bits: key.prefix_len().saturating_sub(P::FIXED_BITS),
            },
        }
    }
}

/// The IPv4 trie keys of range `spec`, one per block (none for a spec published on IPv6
/// only).
pub(crate) fn range_keys(spec: &PortSpec) -> Vec<RangeKey> {
    keys_of(spec)
}

/// The IPv6 trie keys of range `spec`, one per block (none for a spec published on IPv4
/// only).
pub(crate) fn range_keys6(spec: &PortSpec) -> Vec<RangeKey6> {
    keys_of(spec)
}

fn keys_of<P: Prefix>(spec: &PortSpec) -> Vec<RangeKey<P>> {
    blocks(spec.host.start, spec.host.end)
        .into_iter()
        .map_while(|block| {
            Some(RangeKey {
                prefix: P::of_spec(spec, block.first)?,
                block,
            })
        })
        .collect()
}

impl Tables {
    fn ranges_map<P: Prefix>(&self) -> Result<LpmTrie<MapData, P, P::Range>> {
        LpmTrie::try_from(Map::LpmTrie(self.data(P::MAP)?))
            .map_err(|err| Error::ebpf("opening the published ranges map", err))
    }

    /// Every published range's blocks (a few per range: one system call each is cheap).
    pub(crate) fn published_ranges(&self) -> Result<HashMap<RangeKey, PublishRange>> {
        self.published_ranges_of()
    }

    /// [`Self::published_ranges`] of either family.
    pub(crate) fn published_ranges_of<P: Prefix>(&self) -> Result<HashMap<RangeKey<P>, P::Range>> {
        let map = self.ranges_map::<P>()?;
        map.iter()
            .map(|entry| {
                entry
                    .map(|(key, value)| (RangeKey::from_trie_key(key), value))
                    .map_err(|err| Error::ebpf("reading the published ranges", err))
            })
            .collect()
    }

    /// Forwards every block of a range (`what` names it in errors).
    pub(crate) fn write_range<P: Prefix>(
        &self,
        keys: &[RangeKey<P>],
        value: P::Range,
        what: &str,
    ) -> Result<()> {
        let mut map = self.ranges_map::<P>()?;
        for key in keys {
            map.insert(&key.trie_key(), value, 0).map_err(|err| {
                Error::ebpf(
                    format!(
                        "publishing {what} (the ranges map holds at most {PUBLISH_RANGES_MAX_ENTRIES} blocks)"
                    ),
                    err,
                )
            })?;
        }
        Ok(())
    }

    /// Stops forwarding the blocks `keys`; one not there was removed already.
    pub(crate) fn remove_ranges<P: Prefix>(&self, keys: &[RangeKey<P>], what: &str) -> Result<()> {
        let mut map = self.ranges_map::<P>()?;
        for key in keys {
            match map.remove(&key.trie_key()) {
                Err(aya::maps::MapError::SyscallError(err))
                    if err.io_error.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(Error::ebpf(format!("unpublishing {what}"), err)),
                Ok(()) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(blocks: &[Block]) -> Vec<u16> {
        blocks.iter().flat_map(|b| b.first..=b.last()).collect()
    }

    #[test]
    fn every_port_is_sixteen_blocks() {
        let all = blocks(1, 65535);
        assert_eq!(all.len(), 16);
        assert_eq!(all[0], Block { first: 1, bits: 16 });
        assert_eq!(
            all[15],
            Block {
                first: 32768,
                bits: 1
            }
        );
        assert_eq!(blocks(0, 65535), vec![Block { first: 0, bits: 0 }]);
    }

    #[test]
    fn blocks_cover_a_range_exactly_in_order() {
        for (start, end) in [
            (1, 1),
            (80, 81),
            (8000, 8100),
            (1, 65534),
            (1023, 1025),
            (65535, 65535),
        ] {
            let got = blocks(start, end);
            assert_eq!(
                covered(&got),
                (start..=end).collect::<Vec<_>>(),
                "{start}-{end}"
            );
            for block in &got {
                let size = u32::from(block.last()) - u32::from(block.first) + 1;
                assert_eq!(u32::from(block.first) % size, 0, "{block:?} is not aligned");
            }
            // The fewest: no two neighbours of one size make an aligned block twice as big.
            for pair in got.windows(2) {
                let twice = 2 * (u32::from(pair[0].last()) - u32::from(pair[0].first) + 1);
                let mergeable =
                    pair[0].bits == pair[1].bits && u32::from(pair[0].first) % twice == 0;
                assert!(!mergeable, "{start}-{end}: {pair:?} could be one block");
            }
        }
    }

    #[test]
    fn a_trie_key_reads_back_as_written() {
        let spec: PortSpec = "198.18.0.1:8000-8100:80-180/udp".parse().expect("spec");
        for key in range_keys(&spec) {
            assert_eq!(RangeKey::from_trie_key(key.trie_key()), key);
            assert_eq!(u16::from_be(key.prefix.port), key.block.first);
        }
    }
}
