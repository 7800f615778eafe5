//! The lab's tables, `ip netlab_<lab>` and, in a dual-stack lab, `ip6 netlab_<lab>`: their
//! chains, their maps, and the rules of both shapes. Everything netlab writes lives in
//! them, so teardown is a `delete table` per family and no other table is touched.

use std::borrow::Cow;

use nftables::{
    batch::Batch,
    schema::{Chain, FlushObject, NfCmd, NfListObject, Table},
    types::{NfChainPolicy, NfChainType, NfFamily, NfHook},
};

use super::maps::PublishedMap;
use crate::{
    family::{Addressing, Family},
    lab::Publish,
    nat::{NatContext, NftShape},
};

/// The table family of an address family.
pub(super) fn nf_family(family: Family) -> NfFamily {
    match family {
        Family::V4 => NfFamily::IP,
        Family::V6 => NfFamily::IP6,
    }
}

/// The network header's name in rules (`ip daddr`, `ip6 daddr`) and a table family's
/// name in commands (`add table ip6 ...`).
pub(super) fn l3(family: Family) -> &'static str {
    match family {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    }
}

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

/// The lab's tables as one transaction that makes them exactly what `ctx` says, whatever
/// was there before: tables, chains and maps are added (a no-op when they exist), then
/// emptied and filled. nftables applies a batch atomically, so no packet sees a half state.
pub(super) fn sync(ctx: NatContext<'_>) -> Batch<'static> {
    let table = table_name(ctx.lab_name);
    let mut batch = Batch::new();
    for command in declarations(ctx) {
        batch.add_cmd(command);
    }
    for addressing in Addressing::each(ctx.lab) {
        let family = addressing.family;
        batch.add_cmd(NfCmd::Flush(FlushObject::Table(table_object(
            &table, family,
        ))));
        if ctx.options.nft_shape == NftShape::Map {
            for map in PublishedMap::ALL {
                batch.add_cmd(NfCmd::Flush(FlushObject::Map(Box::new(
                    map.declaration(&table, family),
                ))));
            }
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

/// The commands that create the tables, their chains and their maps (each a no-op when it
/// exists).
pub(super) fn declarations(ctx: NatContext<'_>) -> Vec<NfCmd<'static>> {
    Addressing::each(ctx.lab)
        .flat_map(|addressing| declarations_of(ctx, addressing.family))
        .collect()
}

/// [`declarations`] of one family's table.
fn declarations_of(ctx: NatContext<'_>, family: Family) -> Vec<NfCmd<'static>> {
    let table = table_name(ctx.lab_name);
    let mut commands = vec![NfCmd::Add(NfListObject::Table(table_object(
        &table, family,
    )))];
    for base in &BASE_CHAINS {
        commands.push(NfCmd::Add(NfListObject::Chain(Chain {
            family: nf_family(family),
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
                    family: nf_family(family),
                    table: Cow::Owned(table.clone()),
                    name: Cow::Borrowed(name),
                    ..Chain::default()
                })));
            }
        }
        NftShape::Map => {
            for map in PublishedMap::ALL {
                commands.push(NfCmd::Add(NfListObject::Map(Box::new(
                    map.declaration(&table, family),
                ))));
            }
        }
    }
    commands
}

pub(super) fn table_object(name: &str, family: Family) -> Table<'static> {
    Table {
        family: nf_family(family),
        name: Cow::Owned(name.to_owned()),
        handle: None,
    }
}
