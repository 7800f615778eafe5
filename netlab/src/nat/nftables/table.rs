//! The lab's table, `ip netlab_<lab>`: its chains, its maps, and the rules of both shapes.
//! Everything netlab writes lives in it, so teardown is one `delete table` and no other
//! table is touched.

use std::borrow::Cow;

use nftables::{
    batch::Batch,
    expr::MetaKey,
    schema::{Chain, FlushObject, NfCmd, NfListObject, Rule, Table},
    types::{NfChainPolicy, NfChainType, NfFamily, NfHook},
};

use super::maps::{PublishedMap, Role};
use super::exprs::{
    Stmt, accept, address, counter, ct, dnat, dport, drop, fib_daddr_type, field,
    has_any, is, is_not, jump, lookup, masquerade, meta, ports, prefix, set, word,
};
use crate::{
    ipv4net::Ipv4Net,
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
            batch.add_cmd(NfCmd::Flush(FlushObject::Map(Box::new(map.declaration(&table)))));
        }
    }
    for rule in rules(ctx) {
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

/// Every rule of the table, chain by chain.
pub(super) fn rules(ctx: NatContext<'_>) -> Vec<Rule<'static>> {
    let table = table_name(ctx.lab_name);
    let shape = ctx.options.nft_shape;
    let mut rules = Vec::new();
    let mut add = |chain: &'static str, expr: Vec<Stmt>, comment: Option<String>| {
        rules.push(Rule {
            family: FAMILY,
            table: Cow::Owned(table.clone()),
            chain: Cow::Borrowed(chain),
            expr: Cow::Owned(expr),
            handle: None,
            index: None,
            comment: comment.map(Cow::Owned),
        });
    };
    let lab = ctx.lab;
    let (bridge, subnet) = (lab.bridge.as_str(), lab.subnet);
    let loopback = Ipv4Net::literal(std::net::Ipv4Addr::new(127, 0, 0, 0), 8);
    let iif = || meta(MetaKey::Iifname);
    let oif = || meta(MetaKey::Oifname);
    let saddr = || field("ip", "saddr");
    let daddr = || field("ip", "daddr");

    // raw: martians. The container subnet and loopback only ever arrive from the bridge
    // and `lo`; from the external device they are spoofed.
    for martian in [subnet, loopback] {
        add(
            "raw",
            vec![
                is(iif(), word(&lab.external.device)),
                is(saddr(), prefix(martian)),
                drop(),
            ],
            None,
        );
    }
    if shape == NftShape::Rules {
        // Docker's "drop direct access" (a container addressed from anywhere but its
        // bridge) and "drop remote loopback" (a loopback-published port from a wire).
        if lab.masquerade {
            for container in &lab.containers {
                add(
                    "raw",
                    vec![
                        is(daddr(), address(container.address)),
                        is_not(iif(), word(bridge)),
                        drop(),
                    ],
                    None,
                );
            }
        }
        for publish in &lab.publish {
            if let Some(ip) = publish.spec.host_ip.filter(|ip| ip.is_loopback()) {
                let spec = &publish.spec;
                add(
                    "raw",
                    vec![
                        is(daddr(), address(ip)),
                        is_not(iif(), word("lo")),
                        dport(spec.proto.name(), ports(spec.host.start, spec.host.end)),
                        drop(),
                    ],
                    None,
                );
            }
        }
    }

    // prerouting and output: DNAT of what is addressed to the host.
    let local = || is(fib_daddr_type(), word("local"));
    match shape {
        NftShape::Rules => {
            add("prerouting", vec![local(), jump(DNAT_CHAIN)], None);
            add("output", vec![local(), jump(DNAT_CHAIN)], None);
            add("output", vec![local(), jump(LOCAL_CHAIN)], None);
            for publish in &lab.publish {
                let Some(container) = lab.container(&publish.node) else {
                    continue;
                };
                let spec = &publish.spec;
                let (chain, destination) = match spec.host_ip {
                    Some(ip) if ip.is_loopback() => (LOCAL_CHAIN, is(daddr(), address(ip))),
                    Some(ip) => (DNAT_CHAIN, is(daddr(), address(ip))),
                    None => (DNAT_CHAIN, is_not(daddr(), address(lab.gateway))),
                };
                let proto = spec.proto.name();
                let id = publish_id(publish);
                if spec.host == spec.container {
                    // The ports map 1:1 onto themselves: one rule, the port kept.
                    add(
                        chain,
                        vec![
                            destination,
                            dport(proto, ports(spec.host.start, spec.host.end)),
                            counter(),
                            dnat(address(container.address), None),
                        ],
                        Some(id),
                    );
                    continue;
                }
                for host_port in spec.host.start..=spec.host.end {
                    let Some(container_port) = spec.container_port_for(host_port) else {
                        continue;
                    };
                    add(
                        chain,
                        vec![
                            destination.clone(),
                            dport(proto, ports(host_port, host_port)),
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
        NftShape::Map => {
            let transport = || {
                is(
                    meta(MetaKey::L4proto),
                    set(vec![word("tcp"), word("udp")]),
                )
            };
            for (chain, from_wire) in [("prerouting", true), ("output", false)] {
                let mut guard = vec![local()];
                if from_wire {
                    guard.push(is_not(daddr(), prefix(loopback)));
                }
                guard.push(transport());
                for at_address in [true, false] {
                    let mut guard = guard.clone();
                    if !at_address {
                        guard.push(is_not(daddr(), address(lab.gateway)));
                    }
                    let map = |role| PublishedMap::new(at_address, role);
                    let to = |map: PublishedMap| lookup(map.key(), map.name());
                    let mut shifted = guard.clone();
                    shifted.push(dnat(
                        to(map(Role::Shifted)),
                        Some(to(map(Role::ShiftedPort))),
                    ));
                    add(chain, shifted, None);
                    let mut same_port = guard;
                    same_port.push(dnat(to(map(Role::SamePort)), None));
                    add(chain, same_port, None);
                }
            }
        }
    }

    // postrouting: masquerade.
    if lab.masquerade {
        add(
            "postrouting",
            vec![is(saddr(), prefix(subnet)), is_not(oif(), word(bridge)), masquerade()],
            None,
        );
    }
    // Host processes reaching a port published on 127.0.0.1 (route_localnet is on for the
    // bridge): the container must answer to an address it can route back to.
    add(
        "postrouting",
        vec![is(saddr(), prefix(loopback)), is(oif(), word(bridge)), masquerade()],
        None,
    );
    // Self-hairpin: a container reaching its own published port through the host address
    // must see the reply come from the host, not from itself.
    match shape {
        NftShape::Rules => {
            for publish in &lab.publish {
                let Some(container) = lab.container(&publish.node) else {
                    continue;
                };
                let spec = &publish.spec;
                add(
                    "postrouting",
                    vec![
                        is(saddr(), address(container.address)),
                        is(daddr(), address(container.address)),
                        dport(spec.proto.name(), ports(spec.container.start, spec.container.end)),
                        masquerade(),
                    ],
                    None,
                );
            }
        }
        NftShape::Map => {
            for container in &lab.containers {
                add(
                    "postrouting",
                    vec![
                        has_any(ct("status"), &["dnat"]),
                        is(saddr(), address(container.address)),
                        is(daddr(), address(container.address)),
                        masquerade(),
                    ],
                    None,
                );
            }
        }
    }

    // forward: into the bridge only what was DNAT'd to a published port, and replies.
    match shape {
        NftShape::Rules => {
            for publish in &lab.publish {
                let Some(container) = lab.container(&publish.node) else {
                    continue;
                };
                let spec = &publish.spec;
                add(
                    "forward",
                    vec![
                        is(daddr(), address(container.address)),
                        is(oif(), word(bridge)),
                        dport(spec.proto.name(), ports(spec.container.start, spec.container.end)),
                        has_any(ct("status"), &["dnat"]),
                        accept(),
                    ],
                    None,
                );
            }
        }
        // Only the maps DNAT into the subnet: a DNAT'd connection is a published port's.
        NftShape::Map => add(
            "forward",
            vec![
                is(daddr(), prefix(subnet)),
                is(oif(), word(bridge)),
                has_any(ct("status"), &["dnat"]),
                accept(),
            ],
            None,
        ),
    }
    add(
        "forward",
        vec![
            is(daddr(), prefix(subnet)),
            is(oif(), word(bridge)),
            has_any(ct("state"), &["established", "related"]),
            accept(),
        ],
        None,
    );
    add(
        "forward",
        vec![is(saddr(), prefix(subnet)), is(iif(), word(bridge)), accept()],
        None,
    );
    // As Docker 28 does in NAT mode, nothing else from outside into the bridge; a lab
    // without masquerade is routed, its containers addressable from outside.
    if lab.masquerade {
        add(
            "forward",
            vec![is_not(iif(), word(bridge)), is(oif(), word(bridge)), drop()],
            None,
        );
    }
    rules
}
