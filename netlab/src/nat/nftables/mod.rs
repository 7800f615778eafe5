//! The nftables backend: the same NAT as the iptables backend (Docker's bridge driver
//! without the userland proxy), written for nftables in one table per family that netlab
//! owns, `ip netlab_<lab>` and, in a dual-stack lab, `ip6 netlab_<lab>`, in one of two
//! shapes (`--nft-shape`):
//!
//! - `rules`, as Docker 29's and netavark's nftables drivers ship it: one DNAT rule per
//!   published port (Docker expands a range into its ports), one hairpin masquerade and one
//!   forward accept per mapping, Docker's raw-table drops for direct access to containers
//!   and for loopback-published ports reached from a wire. Every publish rewrites the rules
//!   in one transaction.
//! - `map`, as nftables is best written: DNAT through maps keyed by address, protocol and
//!   port, O(1) in the number of published ports, guarded by `fib daddr type local`; a
//!   publish is one transaction of element updates.
//!
//! Rules and maps are built with the `nftables` crate (netavark's) and applied as one
//! JSON transaction of `nft`, run in the lab's host node.

mod elements;
mod exprs;
mod maps;
mod nft;
mod rules;
mod table;
mod text;

use nftables::{
    batch::Batch,
    schema::{NfCmd, NfListObject},
};

pub use table::table_name;

use super::{ConntrackRow, Hook, NatBackend, NatContext, NftShape, PortCounters, netfilter};
use crate::{
    error::{Error, Result},
    family::{Addressing, Family},
    lab::{HOST_NODE, Publish},
    netlink::Place,
};

#[derive(Debug, Clone, Copy)]
pub struct Nftables;

impl NatBackend for Nftables {
    fn check(&self, ctx: NatContext<'_>) -> Result<()> {
        netfilter::refuse_ipv6_loopback(ctx, "nftables")
    }

    fn setup(&self, ctx: NatContext<'_>) -> Result<()> {
        netfilter::prepare_host(ctx)?;
        nft::apply(ctx, "table", table::sync(ctx))
    }

    fn teardown(&self, ctx: NatContext<'_>) -> Result<()> {
        delete_tables(&ctx.host(), ctx.lab_name)
    }

    fn publish(&self, ctx: NatContext<'_>, added: &[Publish]) -> Result<()> {
        match ctx.options.nft_shape {
            NftShape::Rules => nft::apply(ctx, "rules", table::sync(ctx)),
            NftShape::Map => {
                let mut batch = Batch::new();
                for element in elements::of(ctx, added, elements::Purpose::Add) {
                    batch.add(NfListObject::Element(element));
                }
                nft::apply(ctx, "elements", batch)
            }
        }
    }

    fn unpublish(&self, ctx: NatContext<'_>, removed: &[Publish]) -> Result<()> {
        match ctx.options.nft_shape {
            NftShape::Rules => nft::apply(ctx, "rules", table::sync(ctx))?,
            NftShape::Map => {
                let mut batch = Batch::new();
                for element in elements::of(ctx, removed, elements::Purpose::Delete) {
                    batch.delete(NfListObject::Element(element));
                }
                // An element already gone (an unpublish finished after a crash) fails the
                // whole transaction: then the maps are rewritten from the lab.
                if nft::apply(ctx, "elements", batch).is_err() {
                    nft::apply(ctx, "table", table::sync(ctx))?;
                }
            }
        }
        netfilter::conntrack::forget_udp_flows(ctx, removed);
        Ok(())
    }

    fn counters(&self, ctx: NatContext<'_>) -> Result<Vec<PortCounters>> {
        let mut sums = std::collections::BTreeMap::<String, (u64, u64)>::new();
        for addressing in Addressing::each(ctx.lab) {
            let Some(ruleset) = nft::read(ctx, addressing.family)? else {
                continue;
            };
            for (id, (packets, bytes)) in nft::counters(&ruleset) {
                let sum = sums.entry(id).or_default();
                sum.0 += packets;
                sum.1 += bytes;
            }
        }
        Ok(ctx
            .lab
            .publish
            .iter()
            .map(|publish| {
                let (packets, bytes) = sums
                    .get(&table::publish_id(publish))
                    .copied()
                    .unwrap_or_default();
                // NAT chains see the first packet of each connection only.
                PortCounters {
                    node: publish.node.clone(),
                    spec: publish.spec.to_string(),
                    unit: "connections",
                    packets,
                    bytes,
                }
            })
            .collect())
    }

    fn explain(&self, ctx: NatContext<'_>) -> Vec<String> {
        let exec = ctx.host().exec();
        let mut lines = netfilter::explain_prepare_host(ctx);
        let rules = rules::rules(ctx)
            .into_iter()
            .map(|rule| NfCmd::Add(NfListObject::Rule(rule)));
        let elements = match ctx.options.nft_shape {
            NftShape::Rules => Vec::new(),
            NftShape::Map => elements::of(ctx, &ctx.lab.publish, elements::Purpose::Add),
        };
        let elements = elements
            .into_iter()
            .map(|element| NfCmd::Add(NfListObject::Element(element)));
        for command in table::declarations(ctx)
            .into_iter()
            .chain(rules)
            .chain(elements)
        {
            if let Some(text) = text::command(&command) {
                lines.push(format!("{exec}nft '{text}'"));
            }
        }
        lines
    }

    fn conntrack(&self, ctx: NatContext<'_>) -> Result<Vec<ConntrackRow>> {
        netfilter::conntrack::rows(ctx)
    }

    fn describe(&self, ctx: NatContext<'_>) -> Result<String> {
        let mut out = String::new();
        for addressing in Addressing::each(ctx.lab) {
            out += &nft::listing(ctx, addressing.family)?;
        }
        Ok(out)
    }

    fn hooks(&self, ctx: NatContext<'_>) -> Vec<Hook> {
        let table = table_name(ctx.lab_name);
        Addressing::each(ctx.lab)
            .flat_map(|addressing| {
                let table = format!("{} {table}", table::l3(addressing.family));
                table::BASE_CHAINS.iter().map(move |chain| Hook {
                    node: HOST_NODE.to_owned(),
                    device: None,
                    point: format!(
                        "{} {} priority {}",
                        text::name(&chain.hook),
                        text::name(&chain.kind),
                        chain.priority_name
                    ),
                    runs: format!("{table} {}", chain.name),
                })
            })
            .collect()
    }

    /// A lab whose host is the root namespace leaves its table there when a run crashes;
    /// the table's name is the lab's, so it is netlab's to remove.
    fn remove_leftovers(&self, lab_name: &str) -> Result<()> {
        delete_tables(&Place::Root, lab_name)
    }
}

/// `nft delete table ip netlab_<lab>` and `nft delete table ip6 netlab_<lab>` in `place`,
/// for each that is there: a crashed run's too, whatever the lab has. Without `nft` there
/// is no table to delete.
fn delete_tables(place: &Place, lab_name: &str) -> Result<()> {
    let name = table_name(lab_name);
    let errors: Vec<Error> = Family::ALL
        .into_iter()
        .filter_map(|family| {
            let l3 = table::l3(family);
            let tables = place
                .run(|| Ok(netfilter::tool::run("nft", &["list", "tables", l3], None).ok()))
                .ok()
                .flatten()?;
            let wanted = format!("table {l3} {name}");
            if !tables.lines().any(|line| line.trim() == wanted) {
                return None;
            }
            let mut batch = Batch::new();
            batch.delete(NfListObject::Table(table::table_object(&name, family)));
            nft::apply_in(place, lab_name, &format!("delete table {l3}"), batch).err()
        })
        .collect();
    Error::collect(errors)
}
