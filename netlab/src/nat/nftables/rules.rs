//! The rules of the lab's tables, chain by chain, in both shapes: the same NAT as the
//! iptables backend's chains (Docker's bridge driver without the userland proxy), in each
//! family's table.

use std::borrow::Cow;

use nftables::{expr::MetaKey, schema::Rule};

use super::{
    exprs::{
        Expr, Stmt, accept, address, counter, ct, dnat, dport, drop, fib_daddr_type, field,
        has_any, is, is_not, jump, lookup, masquerade, meta, ports, prefix, set, word,
    },
    maps::{PublishedMap, Role},
    table::{DNAT_CHAIN, LOCAL_CHAIN, l3, nf_family, publish_id, table_name},
};
use crate::{
    family::{Addressing, Family},
    lab::Publish,
    nat::{NatContext, NftShape},
};

/// Every rule of the tables, table by table, chain by chain.
pub(super) fn rules(ctx: NatContext<'_>) -> Vec<Rule<'static>> {
    let mut list = Vec::new();
    for addressing in Addressing::each(ctx.lab) {
        let mut rules = Rules {
            table: table_name(ctx.lab_name),
            addressing,
            list: Vec::new(),
        };
        raw(ctx, &mut rules);
        match ctx.options.nft_shape {
            NftShape::Rules => dnat_per_port(ctx, &mut rules),
            NftShape::Map => dnat_through_maps(ctx, &mut rules),
        }
        postrouting(ctx, &mut rules);
        forward(ctx, &mut rules);
        list.extend(rules.list);
    }
    list
}

/// The rules of one family's table, and what they need of the family.
struct Rules<'a> {
    table: String,
    addressing: Addressing<'a>,
    list: Vec<Rule<'static>>,
}

impl Rules<'_> {
    fn add(&mut self, chain: &'static str, expr: Vec<Stmt>) {
        self.add_named(chain, expr, None);
    }

    /// A rule with a comment: the published spec it belongs to.
    fn add_named(&mut self, chain: &'static str, expr: Vec<Stmt>, comment: Option<String>) {
        self.list.push(Rule {
            family: nf_family(self.family()),
            table: Cow::Owned(self.table.clone()),
            chain: Cow::Borrowed(chain),
            expr: Cow::Owned(expr),
            handle: None,
            index: None,
            comment: comment.map(Cow::Owned),
        });
    }

    fn family(&self) -> Family {
        self.addressing.family
    }

    fn saddr(&self) -> Expr {
        field(l3(self.family()), "saddr")
    }

    fn daddr(&self) -> Expr {
        field(l3(self.family()), "daddr")
    }

    fn subnet(&self) -> Expr {
        prefix(self.addressing.subnet())
    }

    fn loopback(&self) -> Expr {
        prefix(self.family().loopback_net())
    }

    /// The lab's published specs of this family, with the container address each leads
    /// to and where on the host it is published (`None`: every address).
    fn published<'p>(
        &self,
        ctx: NatContext<'p>,
    ) -> impl Iterator<Item = (&'p Publish, Expr, Option<std::net::IpAddr>)> + use<'p, '_> {
        let addressing = self.addressing;
        ctx.lab.publish.iter().filter_map(move |publish| {
            let container = ctx.lab.container(&publish.node)?;
            let host_ip = addressing.host_ip(&publish.spec)?;
            Some((publish, address(addressing.container(container)?), host_ip))
        })
    }

    /// `ip daddr CONTAINER PROTO dport PORTS`: a spec's traffic once DNAT'd, or
    /// hairpinned.
    fn to_published_container(&self, publish: &Publish, container: &Expr) -> [Stmt; 2] {
        let spec = &publish.spec;
        [
            is(self.daddr(), container.clone()),
            dport(
                spec.proto.name(),
                ports(spec.container.start, spec.container.end),
            ),
        ]
    }

    /// `fib daddr type local`, for traffic addressed to the host; in IPv6 not to `::1`,
    /// which stays the host's own (the kernel drops IPv6 loopback traffic that leaves
    /// `lo`, and IPv6 has no `route_localnet`).
    fn to_the_host(&self) -> Vec<Stmt> {
        let mut guard = vec![is(fib_daddr_type(), word("local"))];
        if self.family() == Family::V6 {
            guard.push(is_not(self.daddr(), self.loopback()));
        }
        guard
    }
}

fn iif() -> Expr {
    meta(MetaKey::Iifname)
}

fn oif() -> Expr {
    meta(MetaKey::Oifname)
}

/// raw: martians. The container subnet and loopback only ever arrive from the bridge and
/// `lo`; from the external device they are spoofed. The rules shape adds Docker's "drop
/// direct access" (a container addressed from anywhere but its bridge) and "drop remote
/// loopback" (a loopback-published port reached from a wire).
fn raw(ctx: NatContext<'_>, rules: &mut Rules) {
    let lab = ctx.lab;
    for martian in [rules.subnet(), rules.loopback()] {
        rules.add(
            "raw",
            vec![
                is(iif(), word(&lab.external.device)),
                is(rules.saddr(), martian),
                drop(),
            ],
        );
    }
    if ctx.options.nft_shape != NftShape::Rules {
        return;
    }
    if lab.masquerade {
        for container in &lab.containers {
            let Some(ip) = rules.addressing.container(container) else {
                continue;
            };
            rules.add(
                "raw",
                vec![
                    is(rules.daddr(), address(ip)),
                    is_not(iif(), word(&lab.bridge)),
                    drop(),
                ],
            );
        }
    }
    let loopback: Vec<_> = rules
        .published(ctx)
        .filter_map(|(publish, _, host_ip)| {
            Some((publish, host_ip.filter(std::net::IpAddr::is_loopback)?))
        })
        .collect();
    for (publish, ip) in loopback {
        let spec = &publish.spec;
        rules.add(
            "raw",
            vec![
                is(rules.daddr(), address(ip)),
                is_not(iif(), word("lo")),
                dport(spec.proto.name(), ports(spec.host.start, spec.host.end)),
                drop(),
            ],
        );
    }
}

/// prerouting and output, rules shape: a jump to the chain of DNAT rules, one per port.
fn dnat_per_port(ctx: NatContext<'_>, rules: &mut Rules) {
    let to_the_host = rules.to_the_host();
    for (chain, target) in [
        ("prerouting", DNAT_CHAIN),
        ("output", DNAT_CHAIN),
        ("output", LOCAL_CHAIN),
    ] {
        let mut rule = to_the_host.clone();
        rule.push(jump(target));
        rules.add(chain, rule);
    }
    let gateway = rules.addressing.gateway();
    let published: Vec<_> = rules.published(ctx).collect();
    for (publish, container, host_ip) in published {
        let spec = &publish.spec;
        let (chain, destination) = match host_ip {
            Some(ip) if ip.is_loopback() => (LOCAL_CHAIN, is(rules.daddr(), address(ip))),
            Some(ip) => (DNAT_CHAIN, is(rules.daddr(), address(ip))),
            None => (DNAT_CHAIN, is_not(rules.daddr(), address(gateway))),
        };
        let id = publish_id(publish);
        for host_port in spec.host.start..=spec.host.end {
            let Some(container_port) = spec.container_port_for(host_port) else {
                continue;
            };
            let rule = vec![
                destination.clone(),
                dport(spec.proto.name(), ports(host_port, host_port)),
                counter(),
                dnat(
                    rules.family(),
                    container.clone(),
                    Some(ports(container_port, container_port)),
                ),
            ];
            rules.add_named(chain, rule, Some(id.clone()));
        }
    }
}

/// prerouting and output, map shape: the same eight rules whatever is published. For each
/// of "on one address" and "on every address", the maps of ports that change their number
/// first, then those that keep it; a miss in a map ends the rule.
fn dnat_through_maps(_ctx: NatContext<'_>, rules: &mut Rules) {
    let family = rules.family();
    for (chain, from_wire) in [("prerouting", true), ("output", false)] {
        let mut guard = rules.to_the_host();
        if from_wire && family == Family::V4 {
            // Loopback-published ports are the host's own: never from a wire.
            guard.push(is_not(rules.daddr(), rules.loopback()));
        }
        guard.push(is(
            meta(MetaKey::L4proto),
            set(vec![word("tcp"), word("udp")]),
        ));
        for at_address in [true, false] {
            let mut guard = guard.clone();
            if !at_address {
                guard.push(is_not(rules.daddr(), address(rules.addressing.gateway())));
            }
            let to = |role| {
                let map = PublishedMap::new(at_address, role);
                lookup(map.key(family), map.name())
            };
            let mut shifted = guard.clone();
            shifted.push(dnat(family, to(Role::Shifted), Some(to(Role::ShiftedPort))));
            rules.add(chain, shifted);
            let mut same_port = guard;
            same_port.push(dnat(family, to(Role::SamePort), None));
            rules.add(chain, same_port);
        }
    }
}

/// postrouting: masquerade of the subnet, of host processes reaching a port published on
/// 127.0.0.1 (`route_localnet` is on for the bridge: the container must answer to an address
/// it can route back to; IPv6 has no such thing), and self-hairpin (a container reaching its
/// own published port through the host address must see the reply come from the host, not
/// from itself).
fn postrouting(ctx: NatContext<'_>, rules: &mut Rules) {
    let lab = ctx.lab;
    let bridge = &lab.bridge;
    if lab.masquerade {
        rules.add(
            "postrouting",
            vec![
                is(rules.saddr(), rules.subnet()),
                is_not(oif(), word(bridge)),
                masquerade(),
            ],
        );
    }
    if rules.family() == Family::V4 {
        rules.add(
            "postrouting",
            vec![
                is(rules.saddr(), rules.loopback()),
                is(oif(), word(bridge)),
                masquerade(),
            ],
        );
    }
    match ctx.options.nft_shape {
        NftShape::Rules => {
            let published: Vec<_> = rules.published(ctx).collect();
            for (publish, container, _) in published {
                let mut rule = vec![is(rules.saddr(), container.clone())];
                rule.extend(rules.to_published_container(publish, &container));
                rule.push(masquerade());
                rules.add("postrouting", rule);
            }
        }
        NftShape::Map => {
            for container in &lab.containers {
                let Some(ip) = rules.addressing.container(container) else {
                    continue;
                };
                rules.add(
                    "postrouting",
                    vec![
                        has_any(ct("status"), &["dnat"]),
                        is(rules.saddr(), address(ip)),
                        is(rules.daddr(), address(ip)),
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
            let published: Vec<_> = rules.published(ctx).collect();
            for (publish, container, _) in published {
                let mut rule = rules.to_published_container(publish, &container).to_vec();
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
                is(rules.daddr(), rules.subnet()),
                is(oif(), word(bridge)),
                has_any(ct("status"), &["dnat"]),
                accept(),
            ],
        ),
    }
    rules.add(
        "forward",
        vec![
            is(rules.daddr(), rules.subnet()),
            is(oif(), word(bridge)),
            has_any(ct("state"), &["established", "related"]),
            accept(),
        ],
    );
    rules.add(
        "forward",
        vec![
            is(rules.saddr(), rules.subnet()),
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
    use crate::{
        lab::Lab,
        nat::{
            BackendOptions, NftShape,
            nftables::text,
            test_support::{ctx, lab_with},
        },
    };

    /// The tables' rules of `lab` in `shape`, as `nft` commands.
    fn commands(lab: &Lab, shape: NftShape) -> Vec<String> {
        let options = BackendOptions {
            nft_shape: shape,
            ..BackendOptions::default()
        };
        rules(ctx(lab, options))
            .into_iter()
            .filter_map(|rule| text::command(&NfCmd::Add(NfListObject::Rule(rule))))
            .collect()
    }

    /// The table's rules as `nft add rule` arguments.
    fn rule_lines(specs: &[&str], shape: NftShape) -> Vec<String> {
        commands(&lab_with(specs), shape)
            .into_iter()
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
    fn a_dual_stack_lab_has_a_table_per_family() {
        let mut lab = lab_with(&["8080:80", "[2001:2::1]:8443:443", "127.0.0.1:9000:90"]);
        lab.enable_default_ipv6();
        for shape in [NftShape::Rules, NftShape::Map] {
            let lines = commands(&lab, shape);
            let v6: Vec<&String> = lines
                .iter()
                .filter(|l| l.starts_with("add rule ip6 netlab_t "))
                .collect();
            let v4 = lines.len() - v6.len();
            assert!(v4 > 0 && !v6.is_empty(), "{lines:#?}");
            for expected in [
                "raw iifname eth0 ip6 saddr fd00:172:18::/64 drop",
                "raw iifname eth0 ip6 saddr ::1/128 drop",
                "postrouting ip6 saddr fd00:172:18::/64 oifname != br0 masquerade",
                "forward ip6 daddr fd00:172:18::/64 oifname br0 ct state established,related accept",
            ] {
                assert!(
                    v6.iter().any(|l| l.ends_with(expected)),
                    "{shape:?}: {expected}: {v6:#?}"
                );
            }
            // ::1 stays the host's, and IPv4 addresses stay in the ip table.
            assert!(
                v6.iter()
                    .filter(|l| l.contains("fib daddr type local"))
                    .all(|l| l.contains("ip6 daddr != ::1/128")),
                "{v6:#?}"
            );
            assert!(
                !v6.iter()
                    .any(|l| l.contains("172.18.") || l.contains("127.0.0"))
            );
            if shape == NftShape::Rules {
                assert!(v6.iter().any(|l| l.contains(
                    "published ip6 daddr 2001:2::1 tcp dport 8443 counter dnat ip6 to [fd00:172:18::10]:443"
                )), "{v6:#?}");
                assert!(!v6.iter().any(|l| l.contains("9000")), "{v6:#?}");
            }
        }
    }

    #[test]
    fn a_routed_lab_neither_masquerades_nor_closes_the_bridge() {
        for shape in [NftShape::Rules, NftShape::Map] {
            let mut lab = lab_with(&[]);
            lab.masquerade = false;
            let lines = commands(&lab, shape);
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
