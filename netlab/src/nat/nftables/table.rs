//! The lab's table, `ip netlab_<lab>`: its chains, its maps, and the rules of both shapes.
//! Everything netlab writes lives in it, so teardown is one `delete table` and no other
//! table is touched.

use std::borrow::Cow;

use nftables::{
    batch::Batch,
    schema::{Chain, FlushObject, NfCmd, NfListObject, Table},
    types::{NfChainPolicy, NfChainType, NfFamily, NfHook},
};

use super::maps::PublishedMap;
use crate::{
    lab::Publish,
    nat::{NatContext, NftShape},
};

const FAMILY: NfFamily = NfFamily::IP;

/// The table of lab `lab_name`.
pub fn table_name(lab_name: &str) -> String {
    format!("netlab_{lab_name}")
}

/// A chain the kernel runs at a hook.
pub(super) struct BaseChain {
    pub name: &'static str,
    pub kind: NfChainType,
    pub hook: NfHook,
    pub priority: i32,
    /// The priority as `nft` spells it.
    pub priority_name: &'static str,
}

/// The hooks the lab's table sits on. `raw` drops martians before conntrack sees them;
/// `prerouting` and `output` DNAT (wire and host traffic); `postrouting` masquerades;
/// `forward` keeps outside traffic out of the bridge except through published ports.
pub(super) const BASE_CHAINS: [BaseChain; 5] = [
    BaseChain {
        name: "raw",
        kind: NfChainType::Filter,
        hook: NfHook::Prerouting,
        priority: -300,
        priority_name: "raw",
    },
    BaseChain {
        name: "prerouting",
        kind: NfChainType::NAT,
        hook: NfHook::Prerouting,
        priority: -100,
        priority_name: "dstnat",
    },
    // `dstnat` names -100 at prerouting only.
    BaseChain {
        name: "output",
        kind: NfChainType::NAT,
        hook: NfHook::Output,
        priority: -100,
        priority_name: "-100",
    },
    BaseChain {
        name: "postrouting",
        kind: NfChainType::NAT,
        hook: NfHook::Postrouting,
        priority: 100,
        priority_name: "srcnat",
    },
    BaseChain {
        name: "forward",
        kind: NfChainType::Filter,
        hook: NfHook::Forward,
        priority: 0,
        priority_name: "filter",
    },
];

/// The rules shape's DNAT chains: one jumped to from prerouting and output, and one for
/// ports published on a loopback address, from output only: a packet from a wire addressed
/// to 127.0.0.1 must never reach them (Docker's moby#45610).
pub(super) const DNAT_CHAIN: &str = "published";
pub(super) const LOCAL_CHAIN: &str = "published_loopback";

/// What a published port is called in rule and element comments, to find its counters.
pub(super) fn publish_id(publish: &Publish) -> String {
    format!("{} {}", publish.node, publish.spec)
}

/// The lab's table as one transaction that makes it exactly what `ctx` says, whatever was
/// there before: the table, chains and maps are added (a no-op when they exist), then
/// emptied and filled. nftables applies a batch atomically, so no packet sees a half state.
pub(super) fn sync(ctx: NatContext<'_>) -> Batch<'static> {
    let table = table_name(ctx.lab_name);
    let mut batch = Batch::new();
    for command in declarations(ctx) {
        batch.add_cmd(command);
    }
    batch.add_cmd(NfCmd::Flush(FlushObject::Table(table_object(&table))));
    if ctx.options.nft_shape == NftShape::Map {
        for map in PublishedMap::ALL {
            batch.add_cmd(NfCmd::Flush(FlushObject::Map(Box::new(
                map.declaration(&table),
            ))));
        }
    }
    for rule in super::rules::rules(ctx) {
        batch.add(NfListObject::Rule(rule));
    }
    if ctx.options.nft_shape == NftShape::Map {
        for element in super::elements::of(ctx, &ctx.lab.publish, super::elements::Purpose::Add) {
            batch.add(NfListObject::Element(element));
        }
    }
    batch
}

/// The commands that create the table, its chains and its maps (each a no-op when it
/// exists).
pub(super) fn declarations(ctx: NatContext<'_>) -> Vec<NfCmd<'static>> {
    let table = table_name(ctx.lab_name);
    let mut commands = vec![NfCmd::Add(NfListObject::Table(table_object(&table)))];
    for base in &BASE_CHAINS {
        commands.push(NfCmd::Add(NfListObject::Chain(Chain {
            family: FAMILY,
            table: Cow::Owned(table.clone()),
            name: Cow::Borrowed(base.name),
            _type: Some(base.kind),
            hook: Some(base.hook),
            prio: Some(base.priority),
            policy: Some(NfChainPolicy::Accept),
            ..Chain::default()
        })));
    }
    match ctx.options.nft_shape {
        NftShape::Rules => {
            for name in [DNAT_CHAIN, LOCAL_CHAIN] {
                commands.push(NfCmd::Add(NfListObject::Chain(Chain {
                    family: FAMILY,
                    table: Cow::Owned(table.clone()),
                    name: Cow::Borrowed(name),
                    ..Chain::default()
                })));
            }
        }
        NftShape::Map => {
            for map in PublishedMap::ALL {
                commands.push(NfCmd::Add(NfListObject::Map(Box::new(
                    map.declaration(&table),
                ))));
            }
        }
    }
    commands
}

pub(super) fn table_object(name: &str) -> Table<'static> {
    Table {
        family: FAMILY,
        name: Cow::Owned(name.to_owned()),
        handle: None,
    }
}
