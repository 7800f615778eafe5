//! The rules: what the lab's chains hold, and the jumps to them from the built-in chains,
//! as `iptables-restore` input.

use std::fmt::Write as _;

use super::parse;
use crate::{
    family::{Addressing, Family, socket_text},
    nat::NatContext,
};

/// The chains of one lab: (table, chain suffix, built-in chain that jumps to it, jump match).
/// Ports published on a loopback address go in `LOCAL`, jumped to from OUTPUT only: a
/// packet from a wire addressed to 127.0.0.1 must never reach them (PREROUTING would DNAT it
/// before the martian check; Docker's moby#45610). `RAW` drops martians before conntrack and
/// NAT see them.
pub(super) const JUMPS: [(&str, &str, &str, &str); 6] = [
    ("raw", "RAW", "PREROUTING", ""),
    ("nat", "DNAT", "PREROUTING", "-m addrtype --dst-type LOCAL"),
    ("nat", "DNAT", "OUTPUT", "-m addrtype --dst-type LOCAL"),
    ("nat", "LOCAL", "OUTPUT", "-m addrtype --dst-type LOCAL"),
    ("nat", "POST", "POSTROUTING", ""),
    ("filter", "FWD", "FORWARD", ""),
];

/// The name of lab `lab_name`'s chain `suffix` (`NL-<lab>-<suffix>`): every chain netlab
/// owns starts with [`chain_prefix`].
pub fn chain(lab_name: &str, suffix: &str) -> String {
    format!("{}{suffix}", chain_prefix(lab_name))
}

/// What the names of lab `lab_name`'s chains start with.
pub fn chain_prefix(lab_name: &str) -> String {
    format!("NL-{lab_name}-")
}

/// The full content of the lab's chains in one family (for `iptables-restore` or
/// `ip6tables-restore`) for the current published set. Each call rewrites the chains whole
/// (declaring a chain in `--noflush` mode flushes it), so the result never depends on what
/// was there before.
pub(super) fn chains(ctx: NatContext<'_>, family: Addressing<'_>) -> String {
    let lab = ctx.lab;
    let (raw_chain, dnat, local, post, fwd) = (
        chain(ctx.lab_name, "RAW"),
        chain(ctx.lab_name, "DNAT"),
        chain(ctx.lab_name, "LOCAL"),
        chain(ctx.lab_name, "POST"),
        chain(ctx.lab_name, "FWD"),
    );
    let bridge = &lab.bridge;
    let subnet = family.subnet();
    let loopback = family.family.loopback_net();
    let host_len = family.family.host_prefix_len();
    let external = &lab.external.device;
    // Martians: the container subnet and loopback only ever arrive from the bridge and
    // `lo`. From the external device they are spoofed (with rp_filter off, as in a fresh
    // namespace, the kernel would DNAT and forward the subnet's, and answer them).
    let raw = format!(
        "*raw\n:{raw_chain} - [0:0]\n-A {raw_chain} -s {subnet} -i {external} -j DROP\n-A {raw_chain} -s {loopback} -i {external} -j DROP\n"
    );
    let mut nat = format!("*nat\n:{dnat} - [0:0]\n:{local} - [0:0]\n:{post} - [0:0]\n");
    let mut filter = format!("*filter\n:{fwd} - [0:0]\n");
    if lab.masquerade {
        let _ = writeln!(nat, "-A {post} -s {subnet} ! -o {bridge} -j MASQUERADE");
    }
    match family.family {
        // Host processes reaching a port published on loopback (route_localnet is on for
        // the bridge): the container must answer to an address it can route back to.
        Family::V4 => {
            let _ = writeln!(nat, "-A {post} -s {loopback} -o {bridge} -j MASQUERADE");
        }
        // IPv6 has no route_localnet: the reply, translated back to ::1, would arrive on
        // the bridge and be dropped as a martian. ::1 stays the host's own, so a connection
        // there is answered (or refused) by the host instead of hanging.
        Family::V6 => {
            let _ = writeln!(nat, "-A {dnat} -d {loopback} -j RETURN");
        }
    }
    for publish in &lab.publish {
        let spec = &publish.spec;
        let (Some(container), Some(host_ip)) = (
            lab.container(&publish.node)
                .and_then(|c| family.container(c)),
            family.host_ip(spec),
        ) else {
            continue;
        };
        let proto = spec.proto;
        let cip = container;
        let destination = host_ip.map_or_else(
            || format!("! -d {}", family.gateway()),
            |ip| format!("-d {ip}"),
        );
        let dnat = if host_ip.is_some_and(|ip| ip.is_loopback()) {
            &local
        } else {
            &dnat
        };
        // One rule per port, as Docker does: iptables' port ranges in DNAT do not map
        // 1:1, and this is the cost the benchmark compares against.
        for host_port in spec.host.start..=spec.host.end {
            let Some(container_port) = spec.container_port_for(host_port) else {
                continue;
            };
            let _ = writeln!(
                nat,
                "-A {dnat} {destination} -p {proto} -m {proto} --dport {host_port} -j DNAT --to-destination {}",
                socket_text(cip, container_port)
            );
        }
        let cports = port_match(spec.container.start, spec.container.end);
        // Self-hairpin: a container reaching its own published port through the host
        // address must see the reply come from the host, not from itself.
        let _ = writeln!(
            nat,
            "-A {post} -s {cip}/{host_len} -d {cip}/{host_len} -p {proto} -m {proto} --dport {cports} -j MASQUERADE"
        );
        // Only connections this lab DNAT'd to the port: the same port addressed straight
        // to the container (a neighbour routing the subnet via the host) is not published.
        let _ = writeln!(
            filter,
            "-A {fwd} -d {cip}/{host_len} -o {bridge} -p {proto} -m {proto} --dport {cports} -m conntrack --ctstate DNAT -j ACCEPT"
        );
    }
    // Replies, containers' own traffic (out, to each other, hairpin), then, as Docker 28
    // does in NAT mode, nothing else from outside into the bridge: containers are reached
    // through published ports only. A lab without masquerade is routed: its containers
    // are addressable from outside, as in Docker's routed gateway mode.
    let _ = write!(
        filter,
        "-A {fwd} -d {subnet} -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A {fwd} -s {subnet} -i {bridge} -j ACCEPT\n"
    );
    if lab.masquerade {
        let _ = writeln!(filter, "-A {fwd} ! -i {bridge} -o {bridge} -j DROP");
    }
    format!("{raw}COMMIT\n{nat}COMMIT\n{filter}COMMIT\n")
}

/// Jump rules from the built-in chains that are missing, given the current rules.
pub(super) fn missing_jumps(ctx: NatContext<'_>, saved: &str) -> String {
    let mut by_table = std::collections::BTreeMap::<&str, String>::new();
    for (table, suffix, builtin, matcher) in JUMPS {
        let target = chain(ctx.lab_name, suffix);
        let rule = if matcher.is_empty() {
            format!("-A {builtin} -j {target}")
        } else {
            format!("-A {builtin} {matcher} -j {target}")
        };
        if !saved.lines().any(|line| line == rule) {
            let rule = rule.replacen("-A", "-I", 1);
            let _ = writeln!(by_table.entry(table).or_default(), "{rule}");
        }
    }
    by_table
        .into_iter()
        .fold(String::new(), |mut out, (table, rules)| {
            let _ = write!(out, "*{table}\n{rules}COMMIT\n");
            out
        })
}

/// The script that removes every rule and chain of the lab (`NL-<lab>-*`) from `saved`
/// (`iptables-save` output): jumps from the built-in chains first, then the chains' rules,
/// then the chains.
pub(super) fn removal(lab_name: &str, saved: &str) -> String {
    let prefix = chain_prefix(lab_name);
    let mut script = String::new();
    for table in ["raw", "nat", "filter"] {
        let mut section = String::new();
        for jump in parse::jumps_to(saved, table, &prefix) {
            let _ = writeln!(section, "{}", jump.replacen("-A", "-D", 1));
        }
        let chains = parse::chains_of(saved, table, &prefix);
        for name in &chains {
            let _ = writeln!(section, "-F {name}");
        }
        for name in &chains {
            let _ = writeln!(section, "-X {name}");
        }
        if !section.is_empty() {
            let _ = write!(script, "*{table}\n{section}COMMIT\n");
        }
    }
    script
}

fn port_match(start: u16, end: u16) -> String {
    if start == end {
        start.to_string()
    } else {
        format!("{start}:{end}")
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    pub(in crate::nat::iptables) use crate::nat::test_support::lab_with;
    use crate::{family::Family, lab::Lab, nat::BackendOptions};

    /// The context the backend gets for `lab`, with the default options.
    pub(in crate::nat::iptables) fn ctx(lab: &Lab) -> NatContext<'_> {
        crate::nat::test_support::ctx(lab, BackendOptions::default())
    }

    fn chains4(lab: &Lab) -> String {
        chains(ctx(lab), Addressing::of(lab, Family::V4).expect("IPv4"))
    }

    fn chains6(lab: &Lab) -> String {
        chains(ctx(lab), Addressing::of(lab, Family::V6).expect("IPv6"))
    }

    #[test]
    fn a_dual_stack_lab_has_the_same_rules_in_ip6tables() {
        let mut lab = lab_with(&[
            "8080:80",
            "[2001:2::1]:8443:443",
            "[fd00:172:18::1]:9000:90/udp",
            "127.0.0.1:9001:91",
        ]);
        assert!(Addressing::of(&lab, Family::V6).is_none(), "IPv4 only");
        lab.enable_default_ipv6();
        let v6 = chains6(&lab);
        for rule in [
            "-A NL-t-RAW -s fd00:172:18::/64 -i eth0 -j DROP\n",
            "-A NL-t-RAW -s ::1/128 -i eth0 -j DROP\n",
            "-A NL-t-POST -s fd00:172:18::/64 ! -o br0 -j MASQUERADE\n",
            "-A NL-t-DNAT ! -d fd00:172:18::1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:172:18::10]:80\n",
            "-A NL-t-DNAT -d 2001:2::1 -p tcp -m tcp --dport 8443 -j DNAT --to-destination [fd00:172:18::10]:443\n",
            "-A NL-t-DNAT -d ::1/128 -j RETURN\n-A NL-t-DNAT ! -d fd00:172:18::1 -p tcp -m tcp --dport 8080",
            "-A NL-t-DNAT -d fd00:172:18::1 -p udp -m udp --dport 9000 -j DNAT --to-destination [fd00:172:18::10]:90\n",
            "-A NL-t-POST -s fd00:172:18::10/128 -d fd00:172:18::10/128 -p tcp -m tcp --dport 80 -j MASQUERADE\n",
            "-A NL-t-FWD -d fd00:172:18::10/128 -o br0 -p tcp -m tcp --dport 443 -m conntrack --ctstate DNAT -j ACCEPT\n",
            "-A NL-t-FWD ! -i br0 -o br0 -j DROP\n",
        ] {
            assert!(v6.contains(rule), "missing {rule}in {v6}");
        }
        // Each family gets the specs published in it, and no address of the other.
        assert!(!v6.contains("9001") && !v6.contains("172.18."), "{v6}");
        assert!(!v6.contains("-s ::1/128 -o br0"), "{v6}");
        let refuse = crate::nat::netfilter::refuse_ipv6_loopback;
        assert!(refuse(ctx(&lab), "iptables").is_ok());
        lab.publish.push(crate::lab::Publish {
            node: "netns0".into(),
            spec: "[::1]:9002:92".parse().expect("spec"),
        });
        let refused = refuse(ctx(&lab), "iptables").unwrap_err().to_string();
        assert!(refused.contains("[::1]:9002:92/tcp") && refused.contains("route_localnet"));
        let v4 = chains4(&lab);
        assert!(v4.contains("--dport 8080 -j DNAT --to-destination 172.18.0.10:80\n"));
        assert!(v4.contains("--dport 9001 "), "{v4}");
        assert!(
            !v4.contains("8443") && !v4.contains("9000") && !v4.contains("fd00"),
            "{v4}"
        );
    }

    #[test]
    fn one_dnat_rule_per_port_mapped_one_to_one() {
        let lab = lab_with(&["7000-7002:8000-8002/udp", "127.0.0.1:9000:90"]);
        let rules = chains4(&lab);
        for (host, container) in [(7000, 8000), (7001, 8001), (7002, 8002)] {
            assert!(
                rules.contains(&format!(
                    "-A NL-t-DNAT ! -d 172.18.0.1 -p udp -m udp --dport {host} -j DNAT --to-destination 172.18.0.10:{container}\n"
                )),
                "{rules}"
            );
        }
        // Loopback: only in the chain OUTPUT reaches, never PREROUTING.
        assert!(rules.contains("-A NL-t-LOCAL -d 127.0.0.1 -p tcp -m tcp --dport 9000 -j DNAT --to-destination 172.18.0.10:90\n"));
        assert!(!rules.contains("-A NL-t-DNAT -d 127.0.0.1"));
        assert!(rules.contains("-A NL-t-POST -s 172.18.0.10/32 -d 172.18.0.10/32 -p udp -m udp --dport 8000:8002 -j MASQUERADE\n"));
        assert!(rules.contains("-A NL-t-POST -s 172.18.0.0/16 ! -o br0 -j MASQUERADE\n"));
        assert!(rules.contains(
            "COMMIT\n*nat\n:NL-t-DNAT - [0:0]\n:NL-t-LOCAL - [0:0]\n:NL-t-POST - [0:0]\n"
        ));
        assert_eq!(rules.matches("COMMIT\n").count(), 3);
    }

    #[test]
    fn martians_from_the_external_device_are_dropped_before_conntrack() {
        let lab = lab_with(&[]);
        let rules = chains4(&lab);
        assert!(
            rules.starts_with(
                "*raw\n:NL-t-RAW - [0:0]\n-A NL-t-RAW -s 172.18.0.0/16 -i eth0 -j DROP\n-A NL-t-RAW -s 127.0.0.0/8 -i eth0 -j DROP\nCOMMIT\n"
            ),
            "{rules}"
        );
        // The device is the lab's, whatever its name.
        let mut renamed = lab_with(&[]);
        renamed.external.device = "uplink".into();
        let rules = chains4(&renamed);
        assert!(
            rules.contains("-A NL-t-RAW -s 172.18.0.0/16 -i uplink -j DROP\n"),
            "{rules}"
        );
        assert!(!rules.contains("-i eth0"), "{rules}");
    }

    #[test]
    fn forwarding_into_the_bridge_only_for_dnat_and_replies() {
        let lab = lab_with(&["8080:80", "7000-7002:8000-8002/udp"]);
        let rules = chains4(&lab);
        let filter = rules.split("*filter\n").nth(1).expect("a filter section");
        assert_eq!(
            filter,
            ":NL-t-FWD - [0:0]\n\
             -A NL-t-FWD -d 172.18.0.10/32 -o br0 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT\n\
             -A NL-t-FWD -d 172.18.0.10/32 -o br0 -p udp -m udp --dport 8000:8002 -m conntrack --ctstate DNAT -j ACCEPT\n\
             -A NL-t-FWD -d 172.18.0.0/16 -o br0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
             -A NL-t-FWD -s 172.18.0.0/16 -i br0 -j ACCEPT\n\
             -A NL-t-FWD ! -i br0 -o br0 -j DROP\n\
             COMMIT\n"
        );
        // With nothing published, outside traffic into the bridge is still closed.
        let rules = chains4(&lab_with(&[]));
        assert!(rules.contains("-A NL-t-FWD ! -i br0 -o br0 -j DROP\nCOMMIT\n"));
        assert!(!rules.contains("--ctstate DNAT"));
    }

    #[test]
    fn no_masquerade_rule_when_the_lab_says_so() {
        let mut lab = lab_with(&[]);
        lab.masquerade = false;
        let rules = chains4(&lab);
        assert!(!rules.contains("! -o br0 -j MASQUERADE"));
        assert!(
            !rules.contains("-j DROP\nCOMMIT\n*filter") && !rules.contains("-o br0 -j DROP"),
            "a routed lab is open: {rules}"
        );
    }

    #[test]
    fn only_missing_jumps_are_added() {
        let lab = lab_with(&[]);
        let saved = "*nat\n-A PREROUTING -m addrtype --dst-type LOCAL -j NL-t-DNAT\n-A POSTROUTING -j NL-t-POST\nCOMMIT\n";
        let jumps = missing_jumps(ctx(&lab), saved);
        assert_eq!(
            jumps,
            "*filter\n-I FORWARD -j NL-t-FWD\nCOMMIT\n*nat\n-I OUTPUT -m addrtype --dst-type LOCAL -j NL-t-DNAT\n-I OUTPUT -m addrtype --dst-type LOCAL -j NL-t-LOCAL\nCOMMIT\n*raw\n-I PREROUTING -j NL-t-RAW\nCOMMIT\n"
        );
    }

    #[test]
    fn removal_takes_jumps_then_rules_then_chains_of_this_lab_only() {
        let saved = "*nat\n:PREROUTING ACCEPT [0:0]\n:NL-t-DNAT - [0:0]\n:NL-other-DNAT - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j NL-t-DNAT\n-A PREROUTING -m addrtype --dst-type LOCAL -j NL-other-DNAT\n-A NL-t-DNAT -p tcp -m tcp --dport 1 -j DNAT --to-destination 172.18.0.10:1\nCOMMIT\n*filter\n:NL-t-FWD - [0:0]\n-A FORWARD -j NL-t-FWD\nCOMMIT\n";
        assert_eq!(
            removal("t", saved),
            "*nat\n-D PREROUTING -m addrtype --dst-type LOCAL -j NL-t-DNAT\n-F NL-t-DNAT\n-X NL-t-DNAT\nCOMMIT\n*filter\n-D FORWARD -j NL-t-FWD\n-F NL-t-FWD\n-X NL-t-FWD\nCOMMIT\n"
        );
        assert_eq!(removal("gone", saved), "");
    }
}
