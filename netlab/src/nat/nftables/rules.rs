//! The rules of the lab's table, chain by chain, in both shapes: the same NAT as the
//! iptables backend's chains (Docker's bridge driver without the userland proxy).

use std::{borrow::Cow, net::Ipv4Addr};

use nftables::{expr::MetaKey, schema::Rule, types::NfFamily};

use super::{
    exprs::{
        Expr, Stmt, accept, address, counter, ct, dnat, dport, drop, fib_daddr_type, field,
        has_any, is, is_not, jump, lookup, masquerade, meta, ports, prefix, set, word,
    },
    maps::{PublishedMap, Role},
    table::{DNAT_CHAIN, LOCAL_CHAIN, publish_id, table_name},
};
use crate::{
    ipv4net::Ipv4Net,
    lab::{Container, Lab, Publish},
    nat::{NatContext, NftShape},
};

/// Every rule of the table, chain by chain.
pub(super) fn rules(ctx: NatContext<'_>) -> Vec<Rule<'static>> {
    let mut rules = Rules {
        table: table_name(ctx.lab_name),
        list: Vec::new(),
    };
    raw(ctx, &mut rules);
    match ctx.options.nft_shape {
        NftShape::Rules => dnat_per_port(ctx, &mut rules),
        NftShape::Map => dnat_through_maps(ctx, &mut rules),
    }
    postrouting(ctx, &mut rules);
    forward(ctx, &mut rules);
    rules.list
}

struct Rules {
    table: String,
    list: Vec<Rule<'static>>,
}

impl Rules {
    fn add(&mut self, chain: &'static str, expr: Vec<Stmt>) {
        self.add_named(chain, expr, None);
    }

    /// A rule with a comment: the published spec it belongs to.
    fn add_named(&mut self, chain: &'static str, expr: Vec<Stmt>, comment: Option<String>) {
        self.list.push(Rule {
            family: NfFamily::IP,
            table: Cow::Owned(self.table.clone()),
            chain: Cow::Borrowed(chain),
            expr: Cow::Owned(expr),
            handle: None,
            index: None,
            comment: comment.map(Cow::Owned),
        });
    }
}

const LOOPBACK: Ipv4Net = Ipv4Net::literal(Ipv4Addr::new(127, 0, 0, 0), 8);

fn iif() -> Expr {
    meta(MetaKey::Iifname)
}

fn oif() -> Expr {
    meta(MetaKey::Oifname)
}

fn saddr() -> Expr {
    field("ip", "saddr")
}

fn daddr() -> Expr {
    field("ip", "daddr")
}

/// The lab's published specs with the container each leads to.
fn published(lab: &Lab) -> impl Iterator<Item = (&Publish, &Container)> {
    lab.publish
        .iter()
        .filter_map(|publish| Some((publish, lab.container(&publish.node)?)))
}

/// `ip daddr CONTAINER PROTO dport PORTS`: a spec's traffic once DNAT'd, or hairpinned.
fn to_published_container(publish: &Publish, container: &Container) -> [Stmt; 2] {
    let spec = &publish.spec;
    [
        is(daddr(), address(container.address)),
        dport(
            spec.proto.name(),
            ports(spec.container.start, spec.container.end),
        ),
    ]
}

/// `fib daddr type local`: addressed to the host.
fn to_the_host() -> Stmt {
    is(fib_daddr_type(), word("local"))
}

/// raw: martians. The container subnet and loopback only ever arrive from the bridge and
/// `lo`; from the external device they are spoofed. The rules shape adds Docker's "drop
/// direct access" (a container addressed from anywhere but its bridge) and "drop remote
/// loopback" (a loopback-published port reached from a wire).
fn raw(ctx: NatContext<'_>, rules: &mut Rules) {
    let lab = ctx.lab;
    for martian in [lab.subnet, LOOPBACK] {
        rules.add(
            "raw",
            vec![
                is(iif(), word(&lab.external.device)),
                is(saddr(), prefix(martian)),
                drop(),
            ],
        );
    }
    if ctx.options.nft_shape != NftShape::Rules {
        return;
    }
    if lab.masquerade {
        for container in &lab.containers {
            rules.add(
                "raw",
                vec![
                    is(daddr(), address(container.address)),
                    is_not(iif(), word(&lab.bridge)),
                    drop(),
                ],
            );
        }
    }
    for publish in &lab.publish {
        let spec = &publish.spec;
        if let Some(ip) = spec.host_ip4().flatten().filter(Ipv4Addr::is_loopback) {
            rules.add(
                "raw",
                vec![
                    is(daddr(), address(ip)),
                    is_not(iif(), word("lo")),
                    dport(spec.proto.name(), ports(spec.host.start, spec.host.end)),
                    drop(),
                ],
            );
        }
    }
}

/// prerouting and output, rules shape: a jump to the chain of DNAT rules, one per port.
fn dnat_per_port(ctx: NatContext<'_>, rules: &mut Rules) {
    let lab = ctx.lab;
    rules.add("prerouting", vec![to_the_host(), jump(DNAT_CHAIN)]);
    rules.add("output", vec![to_the_host(), jump(DNAT_CHAIN)]);
    rules.add("output", vec![to_the_host(), jump(LOCAL_CHAIN)]);
    for (publish, container) in published(lab) {
        let spec = &publish.spec;
        let Some(host_ip) = spec.host_ip4() else {
            continue;
        };
        let (chain, destination) = match host_ip {
            Some(ip) if ip.is_loopback() => (LOCAL_CHAIN, is(daddr(), address(ip))),
            Some(ip) => (DNAT_CHAIN, is(daddr(), address(ip))),
            None => (DNAT_CHAIN, is_not(daddr(), address(lab.gateway))),
        };
        let id = publish_id(publish);
        for host_port in spec.host.start..=spec.host.end {
            let Some(container_port) = spec.container_port_for(host_port) else {
                continue;
            };
            rules.add_named(
                chain,
                vec![
                    destination.clone(),
                    dport(spec.proto.name(), ports(host_port, host_port)),
                    counter(),
                    dnat(
                        address(container.address),
                        Some(ports(container_port, container_port)),
                    ),
                ],
                Some(id.clone()),
            );
        }
    }
}

/// prerouting and output, map shape: the same eight rules whatever is published. For each
/// of "on one address" and "on every address", the maps of ports that change their number
/// first, then those that keep it; a miss in a map ends the rule.
fn dnat_through_maps(ctx: NatContext<'_>, rules: &mut Rules) {
    for (chain, from_wire) in [("prerouting", true), ("output", false)] {
        let mut guard = vec![to_the_host()];
        if from_wire {
            // Loopback-published ports are the host's own: never from a wire.
            guard.push(is_not(daddr(), prefix(LOOPBACK)));
        }
        guard.push(is(
            meta(MetaKey::L4proto),
            set(vec![word("tcp"), word("udp")]),
        ));
        for at_address in [true, false] {
            let mut guard = guard.clone();
            if !at_address {
                guard.push(is_not(daddr(), address(ctx.lab.gateway)));
            }
            let to = |role| {
                let map = PublishedMap::new(at_address, role);
                lookup(map.key(), map.name())
            };
            let mut shifted = guard.clone();
            shifted.push(dnat(to(Role::Shifted), Some(to(Role::ShiftedPort))));
            rules.add(chain, shifted);
            let mut same_port = guard;
            same_port.push(dnat(to(Role::SamePort), None));
            rules.add(chain, same_port);
        }
    }
}

/// postrouting: masquerade of the subnet, of host processes reaching a port published on
/// 127.0.0.1 (`route_localnet` is on for the bridge: the container must answer to an address
/// it can route back to), and self-hairpin (a container reaching its own published port
/// through the host address must see the reply come from the host, not from itself).
fn postrouting(ctx: NatContext<'_>, rules: &mut Rules) {
    let lab = ctx.lab;
    let bridge = &lab.bridge;
    if lab.masquerade {
        rules.add(
            "postrouting",
            vec![
                is(saddr(), prefix(lab.subnet)),
                is_not(oif(), word(bridge)),
                masquerade(),
            ],
        );
    }
    rules.add(
        "postrouting",
        vec![
            is(saddr(), prefix(LOOPBACK)),
            is(oif(), word(bridge)),
            masquerade(),
        ],
    );
    match ctx.options.nft_shape {
        NftShape::Rules => {
            for (publish, container) in published(lab) {
                let mut rule = vec![is(saddr(), address(container.address))];
                rule.extend(to_published_container(publish, container));
                rule.push(masquerade());
                rules.add("postrouting", rule);
            }
        }
        NftShape::Map => {
            for container in &lab.containers {
                rules.add(
                    "postrouting",
                    vec![
                        has_any(ct("status"), &["dnat"]),
                        is(saddr(), address(container.address)),
                        is(daddr(), address(container.address)),
                        masquerade(),
                    ],
                );
            }
        }
    }
}

/// forward: into the bridge only what was DNAT'd to a published port, and replies; the
/// containers' own traffic out. As Docker 28 does in NAT mode, nothing else from outside
/// into the bridge; a lab without masquerade is routed, its containers addressable.
fn forward(ctx: NatContext<'_>, rules: &mut Rules) {
    let lab = ctx.lab;
    let bridge = &lab.bridge;
    match ctx.options.nft_shape {
        NftShape::Rules => {
            for (publish, container) in published(lab) {
                let mut rule = to_published_container(publish, container).to_vec();
                rule.push(is(oif(), word(bridge)));
                rule.push(has_any(ct("status"), &["dnat"]));
                rule.push(accept());
                rules.add("forward", rule);
            }
        }
        // Only the maps DNAT into the subnet: a DNAT'd connection is a published port's.
        NftShape::Map => rules.add(
            "forward",
            vec![
                is(daddr(), prefix(lab.subnet)),
                is(oif(), word(bridge)),
                has_any(ct("status"), &["dnat"]),
                accept(),
            ],
        ),
    }
    rules.add(
        "forward",
        vec![
            is(daddr(), prefix(lab.subnet)),
            is(oif(), word(bridge)),
            has_any(ct("state"), &["established", "related"]),
            accept(),
        ],
    );
    rules.add(
        "forward",
        vec![
            is(saddr(), prefix(lab.subnet)),
            is(iif(), word(bridge)),
            accept(),
        ],
    );
    if lab.masquerade {
        rules.add(
            "forward",
            vec![is_not(iif(), word(bridge)), is(oif(), word(bridge)), drop()],
        );
    }
}

#[cfg(test)]
mod tests {
    use nftables::schema::{NfCmd, NfListObject};

    use super::*;
    use crate::nat::{
        BackendOptions, NftShape,
        nftables::text,
        test_support::{ctx, lab_with},
    };

    /// The table's rules as `nft add rule` arguments.
    fn rule_lines(specs: &[&str], shape: NftShape) -> Vec<String> {
        let lab = lab_with(specs);
        let options = BackendOptions {
            nft_shape: shape,
            ..BackendOptions::default()
        };
        rules(ctx(&lab, options))
            .into_iter()
            .filter_map(|rule| text::command(&NfCmd::Add(NfListObject::Rule(rule))))
            .map(|line| line.replacen("add rule ip netlab_t ", "", 1))
            .collect()
    }

    #[test]
    fn the_rules_shape_writes_one_dnat_rule_per_port() {
        let lines = rule_lines(
            &[
                "7000-7002:8000-8002/udp",
                "6000-6001:6000-6001",
                "127.0.0.1:9000:90",
            ],
            NftShape::Rules,
        );
        let dnat: Vec<&String> = lines
            .iter()
            .filter(|line| line.starts_with("published "))
            .collect();
        assert_eq!(
            dnat,
            [
                "published ip daddr != 172.18.0.1 udp dport 7000 counter dnat ip to 172.18.0.10 : 8000 comment \"netns0 7000-7002:8000-8002/udp\"",
                "published ip daddr != 172.18.0.1 udp dport 7001 counter dnat ip to 172.18.0.10 : 8001 comment \"netns0 7000-7002:8000-8002/udp\"",
                "published ip daddr != 172.18.0.1 udp dport 7002 counter dnat ip to 172.18.0.10 : 8002 comment \"netns0 7000-7002:8000-8002/udp\"",
                "published ip daddr != 172.18.0.1 tcp dport 6000 counter dnat ip to 172.18.0.10 : 6000 comment \"netns0 6000-6001:6000-6001/tcp\"",
                "published ip daddr != 172.18.0.1 tcp dport 6001 counter dnat ip to 172.18.0.10 : 6001 comment \"netns0 6000-6001:6000-6001/tcp\"",
            ]
        );
        // Loopback: only in the chain output reaches, and Docker's drop of it from a wire.
        assert!(lines.contains(&"published_loopback ip daddr 127.0.0.1 tcp dport 9000 counter dnat ip to 172.18.0.10 : 90 comment \"netns0 127.0.0.1:9000:90/tcp\"".to_owned()), "{lines:#?}");
        assert!(
            lines.contains(&"raw ip daddr 127.0.0.1 iifname != lo tcp dport 9000 drop".to_owned()),
            "{lines:#?}"
        );
        assert!(lines.contains(&"output fib daddr type local jump published_loopback".to_owned()));
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("prerouting") && l.contains("loopback"))
        );
        // Hairpin and forward accept per mapping, on the container's ports.
        assert!(lines.contains(&"postrouting ip saddr 172.18.0.10 ip daddr 172.18.0.10 udp dport 8000-8002 masquerade".to_owned()), "{lines:#?}");
        assert!(lines.contains(&"forward ip daddr 172.18.0.10 udp dport 8000-8002 oifname br0 ct status dnat accept".to_owned()), "{lines:#?}");
        // Docker's "drop direct access", per container.
        assert!(lines.contains(&"raw ip daddr 172.18.0.20 iifname != br0 drop".to_owned()));
    }

    #[test]
    fn the_map_shape_has_the_same_rules_whatever_is_published() {
        let few = rule_lines(&["8080:80"], NftShape::Map);
        let many = rule_lines(
            &["8080:80", "7000-7999:7000-7999/udp", "198.18.0.1:5000:50"],
            NftShape::Map,
        );
        assert_eq!(few, many);
        assert!(few.contains(&"prerouting fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto { tcp, udp } ip daddr != 172.18.0.1 dnat ip to meta l4proto . th dport map @published_any_shifted : meta l4proto . th dport map @published_any_shifted_port".to_owned()), "{few:#?}");
        assert!(few.contains(&"output fib daddr type local meta l4proto { tcp, udp } dnat ip to ip daddr . meta l4proto . th dport map @published_at".to_owned()), "{few:#?}");
        // No counter in the rules: the maps' elements count.
        assert!(!few.iter().any(|line| line.contains("counter")), "{few:#?}");
        assert!(
            !few.iter().any(|line| line.contains("172.18.0.20 iifname")),
            "no per-container raw drop"
        );
    }

    #[test]
    fn a_routed_lab_neither_masquerades_nor_closes_the_bridge() {
        for shape in [NftShape::Rules, NftShape::Map] {
            let mut lab = lab_with(&[]);
            lab.masquerade = false;
            let options = BackendOptions {
                nft_shape: shape,
                ..BackendOptions::default()
            };
            let lines: Vec<String> = rules(ctx(&lab, options))
                .into_iter()
                .filter_map(|rule| text::command(&NfCmd::Add(NfListObject::Rule(rule))))
                .collect();
            assert!(
                !lines
                    .iter()
                    .any(|l| l.contains("oifname != br0 masquerade")),
                "{lines:#?}"
            );
            assert!(
                !lines
                    .iter()
                    .any(|l| l.ends_with("drop") && l.contains("br0")),
                "{lines:#?}"
            );
        }
    }
}
