//! The iptables backend: the reference the other backends are compared with. It behaves like
//! Docker's bridge driver (28) without the userland proxy: DNAT per published port, masquerade
//! for the subnet, hairpin NAT, containers closed to direct routed access from outside, and
//! martian sources on the external device dropped. Rules live only in chains named
//! `NL-<lab>-*`, jumped to from the built-in chains, and are changed atomically with
//! `iptables-restore --noflush`, run in the lab's host node; a dual-stack lab has the same
//! chains in ip6tables.

mod parse;
mod rules;
mod tools;

use std::fmt::Write as _;

use crate::{
    error::{Error, Result},
    family::{Addressing, Family},
    lab::{HOST_NODE, Publish},
};

use rules::JUMPS;
pub use rules::{chain, chain_prefix};
use tools::{program, restore, save};

use super::{ConntrackRow, Hook, NatBackend, NatContext, PortCounters, netfilter};

#[derive(Debug, Clone, Copy)]
pub struct Iptables;

impl Iptables {
    fn sync(ctx: NatContext<'_>) -> Result<()> {
        for addressing in Addressing::each(ctx.lab) {
            let family = addressing.family;
            // Chains first (a jump to a missing chain is an error), then the jumps.
            restore(ctx, family, "chains", &rules::chains(ctx, addressing))?;
            let saved = save(ctx, family)?;
            let jumps = rules::missing_jumps(ctx, &saved);
            if !jumps.is_empty() {
                restore(ctx, family, "jumps", &jumps)?;
            }
        }
        Ok(())
    }
}

impl NatBackend for Iptables {
    fn check(&self, ctx: NatContext<'_>) -> Result<()> {
        netfilter::refuse_ipv6_loopback(ctx, "iptables")
    }

    fn setup(&self, ctx: NatContext<'_>) -> Result<()> {
        netfilter::prepare_host(ctx)?;
        Self::sync(ctx)
    }

    fn teardown(&self, ctx: NatContext<'_>) -> Result<()> {
        // Both families whatever the lab has: a crashed run's chains go too.
        let errors: Vec<Error> = Family::ALL
            .into_iter()
            .filter_map(|family| {
                let script = match save(ctx, family) {
                    Ok(saved) => rules::removal(ctx.lab_name, &saved),
                    Err(err) => return Some(err),
                };
                if script.is_empty() {
                    return None;
                }
                restore(ctx, family, "removal", &script).err()
            })
            .collect();
        Error::collect(errors)
    }

    fn publish(&self, ctx: NatContext<'_>, _added: &[Publish]) -> Result<()> {
        Self::sync(ctx)
    }

    fn unpublish(&self, ctx: NatContext<'_>, removed: &[Publish]) -> Result<()> {
        Self::sync(ctx)?;
        netfilter::conntrack::forget_udp_flows(ctx, removed);
        Ok(())
    }

    fn conntrack(&self, ctx: NatContext<'_>) -> Result<Vec<ConntrackRow>> {
        netfilter::conntrack::rows(ctx)
    }

    fn counters(&self, ctx: NatContext<'_>) -> Result<Vec<PortCounters>> {
        // The nat table sees the first packet of each connection only: these count connections.
        let mut listings = Vec::new();
        for addressing in Addressing::each(ctx.lab) {
            let mut listing = String::new();
            for suffix in ["DNAT", "LOCAL"] {
                let chain = chain(ctx.lab_name, suffix);
                listing += &tools::list_nat_chain(ctx, addressing.family, &chain)?;
            }
            listings.push((addressing, listing));
        }
        let mut rows = Vec::new();
        for publish in &ctx.lab.publish {
            let Some(container) = ctx.lab.container(&publish.node) else {
                continue;
            };
            let (mut packets, mut bytes) = (0, 0);
            for (addressing, listing) in &listings {
                let (Some(host_ip), Some(address)) = (
                    addressing.host_ip(&publish.spec),
                    addressing.container(container),
                ) else {
                    continue;
                };
                let destination = host_ip
                    .map_or_else(|| format!("!{}", addressing.gateway()), |ip| ip.to_string());
                let counted = parse::dnat_counters(listing, publish, address, &destination);
                packets += counted.0;
                bytes += counted.1;
            }
            rows.push(PortCounters {
                node: publish.node.clone(),
                spec: publish.spec.to_string(),
                unit: "connections",
                packets,
                bytes,
            });
        }
        Ok(rows)
    }

    fn explain(&self, ctx: NatContext<'_>) -> Vec<String> {
        let exec = ctx.host().exec();
        let mut lines = netfilter::explain_prepare_host(ctx);
        for addressing in Addressing::each(ctx.lab) {
            let tool = program(addressing.family);
            let mut table = "";
            for line in rules::chains(ctx, addressing).lines() {
                if let Some(name) = line.strip_prefix('*') {
                    table = name;
                } else if let Some(chain) = line.strip_prefix(':') {
                    let chain = chain.split_whitespace().next().unwrap_or_default();
                    lines.push(format!("{exec}{tool} -t {table} -N {chain}"));
                } else if line.starts_with("-A") {
                    lines.push(format!("{exec}{tool} -t {table} {line}"));
                }
            }
            for (table, suffix, builtin, matcher) in JUMPS {
                let target = chain(ctx.lab_name, suffix);
                let matcher = if matcher.is_empty() {
                    String::new()
                } else {
                    format!("{matcher} ")
                };
                lines.push(format!(
                    "{exec}{tool} -t {table} -I {builtin} {matcher}-j {target}"
                ));
            }
        }
        lines
    }

    fn describe(&self, ctx: NatContext<'_>) -> Result<String> {
        let prefix = chain_prefix(ctx.lab_name);
        let mut out = String::new();
        for addressing in Addressing::each(ctx.lab) {
            let family = addressing.family;
            let _ = writeln!(out, "# {}-save", program(family));
            for line in save(ctx, family)?
                .lines()
                .filter(|line| line.starts_with('*') || line.contains(&prefix))
            {
                out += line;
                out.push('\n');
            }
        }
        Ok(out)
    }

    fn hooks(&self, ctx: NatContext<'_>) -> Vec<Hook> {
        JUMPS
            .iter()
            .map(|(table, suffix, builtin, _)| Hook {
                node: HOST_NODE.to_owned(),
                device: None,
                point: format!("{table} {builtin}"),
                runs: chain(ctx.lab_name, suffix),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::iptables::rules::tests::{ctx, lab_with};

    #[test]
    fn explain_creates_every_chain_and_jump() {
        let lab = lab_with(&["8080:80"]);
        let lines = Iptables.explain(ctx(&lab));
        for chain in ["raw -N NL-t-RAW", "nat -N NL-t-DNAT", "filter -N NL-t-FWD"] {
            assert!(
                lines
                    .iter()
                    .any(|line| line.ends_with(&format!("iptables -t {chain}"))),
                "{chain}: {lines:#?}"
            );
        }
        assert!(
            lines
                .iter()
                .any(|line| line.ends_with("iptables -t raw -I PREROUTING -j NL-t-RAW")),
            "{lines:#?}"
        );
        assert!(
            lines.iter().any(
                |line| line.ends_with("iptables -t filter -A NL-t-FWD ! -i br0 -o br0 -j DROP")
            ),
            "{lines:#?}"
        );
    }
}
