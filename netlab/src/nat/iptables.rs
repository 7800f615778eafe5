//! The iptables backend: the reference the other backends are compared with. It behaves like
//! Docker's bridge driver (28) without the userland proxy: DNAT per published port, masquerade
//! for the subnet, hairpin NAT, containers closed to direct routed access from outside, and
//! martian sources on the external device dropped. Rules live only in chains named
//! `NL-<lab>-*`, jumped to from the built-in chains, and are changed atomically with
//! `iptables-restore --noflush`, run in the lab's host node.

use std::{
    fmt::Write as _,
    io::Write as _,
    process::{Command, Stdio},
};

use crate::{
    error::{Error, Result},
    lab::{Lab, Publish},
    ports::Proto,
    sysctl,
};

use super::{ConntrackRow, NatBackend, NatContext, PortCounters};

#[derive(Debug, Clone, Copy)]
pub struct Iptables;

/// The chains of one lab: (table, chain suffix, built-in chain that jumps to it, jump match).
/// Ports published on a loopback address go in `LOCAL`, jumped to from OUTPUT only: a
/// packet from a wire addressed to 127.0.0.1 must never reach them (PREROUTING would DNAT it
/// before the martian check; Docker's moby#45610). `RAW` drops martians before conntrack and
/// NAT see them.
const JUMPS: [(&str, &str, &str, &str); 6] = [
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

impl Iptables {
    /// The full content of the lab's chains for the current published set. Each call
    /// rewrites the chains whole (declaring a chain in `--noflush` mode flushes it), so
    /// the result never depends on what was there before.
    fn chains(ctx: NatContext<'_>) -> String {
        let lab = ctx.lab;
        let (raw_chain, dnat, local, post, fwd) = (
            chain(ctx.lab_name, "RAW"),
            chain(ctx.lab_name, "DNAT"),
            chain(ctx.lab_name, "LOCAL"),
            chain(ctx.lab_name, "POST"),
            chain(ctx.lab_name, "FWD"),
        );
        let bridge = &lab.bridge;
        let subnet = lab.subnet;
        let external = &lab.external.device;
        // Martians: the container subnet and loopback only ever arrive from the bridge and
        // `lo`. From the external device they are spoofed (with rp_filter off, as in a fresh
        // namespace, the kernel would DNAT and forward the subnet's, and answer them).
        let raw = format!(
            "*raw\n:{raw_chain} - [0:0]\n-A {raw_chain} -s {subnet} -i {external} -j DROP\n-A {raw_chain} -s 127.0.0.0/8 -i {external} -j DROP\n"
        );
        let mut nat = format!("*nat\n:{dnat} - [0:0]\n:{local} - [0:0]\n:{post} - [0:0]\n");
        let mut filter = format!("*filter\n:{fwd} - [0:0]\n");
        if lab.masquerade {
            let _ = writeln!(nat, "-A {post} -s {subnet} ! -o {bridge} -j MASQUERADE");
        }
        // Host processes reaching a port published on 127.0.0.1 (route_localnet is on for
        // the bridge): the container must answer to an address it can route back to.
        let _ = writeln!(nat, "-A {post} -s 127.0.0.0/8 -o {bridge} -j MASQUERADE");
        for publish in &lab.publish {
            let Some(container) = lab.container(&publish.node) else {
                continue;
            };
            let spec = &publish.spec;
            let proto = spec.proto;
            let cip = container.address;
            let destination = spec
                .host_ip
                .map_or_else(|| format!("! -d {}", lab.gateway), |ip| format!("-d {ip}"));
            let dnat = if spec.host_ip.is_some_and(|ip| ip.is_loopback()) {
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
                    "-A {dnat} {destination} -p {proto} -m {proto} --dport {host_port} -j DNAT --to-destination {cip}:{container_port}"
                );
            }
            let cports = port_match(spec.container.start, spec.container.end);
            // Self-hairpin: a container reaching its own published port through the host
            // address must see the reply come from the host, not from itself.
            let _ = writeln!(
                nat,
                "-A {post} -s {cip}/32 -d {cip}/32 -p {proto} -m {proto} --dport {cports} -j MASQUERADE"
            );
            // Only connections this lab DNAT'd to the port: the same port addressed straight
            // to the container (a neighbour routing the subnet via the host) is not published.
            let _ = writeln!(
                filter,
                "-A {fwd} -d {cip}/32 -o {bridge} -p {proto} -m {proto} --dport {cports} -m conntrack --ctstate DNAT -j ACCEPT"
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
    fn missing_jumps(ctx: NatContext<'_>, saved: &str) -> String {
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

    fn sync(ctx: NatContext<'_>) -> Result<()> {
        // Chains first (a jump to a missing chain is an error), then the jumps.
        restore(ctx, &Self::chains(ctx))?;
        let saved = save(ctx)?;
        let jumps = Self::missing_jumps(ctx, &saved);
        if !jumps.is_empty() {
            restore(ctx, &jumps)?;
        }
        Ok(())
    }
}

fn port_match(start: u16, end: u16) -> String {
    if start == end {
        start.to_string()
    } else {
        format!("{start}:{end}")
    }
}

/// Runs a command in the lab's host node: a child forked from a thread inside the namespace
/// is born inside it.
fn run_in_host(
    ctx: NatContext<'_>,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String> {
    let op = format!("{program} {}", args.join(" "));
    ctx.host().run(|| {
        let mut child = Command::new(program)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| Error::io(format!("running {op} (is iptables installed?)"), err))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())
                .map_err(|err| Error::io(format!("feeding {op}"), err))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|err| Error::io(format!("running {op}"), err))?;
        if !out.status.success() {
            return Err(Error::Command {
                op,
                stderr: String::from_utf8_lossy(&out.stderr)
                    .trim()
                    .replace('\n', "; "),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    })
}

fn restore(ctx: NatContext<'_>, rules: &str) -> Result<()> {
    run_in_host(
        ctx,
        "iptables-restore",
        &["--noflush", "--wait"],
        Some(rules),
    )
    .map(drop)
}

fn save(ctx: NatContext<'_>) -> Result<String> {
    run_in_host(ctx, "iptables-save", &[], None)
}

impl NatBackend for Iptables {
    fn setup(&self, ctx: NatContext<'_>) -> Result<()> {
        let lab: &Lab = ctx.lab;
        // Self-hairpin: the bridge must hand a frame back out of the port it came in on, and
        // bridged frames must traverse iptables so the hairpin flow can be masqueraded.
        let host = ctx.host();
        sysctl::write(&host, "net.bridge.bridge-nf-call-iptables", "1")?;
        sysctl::write(
            &host,
            &format!("net.ipv4.conf.{}.route_localnet", lab.bridge),
            "1",
        )?;
        crate::topology::set_hairpin(ctx.lab_name, lab, true)?;
        Self::sync(ctx)
    }

    fn teardown(&self, ctx: NatContext<'_>) -> Result<()> {
        let saved = save(ctx)?;
        let prefix = chain_prefix(ctx.lab_name);
        let mut script = String::new();
        for table in ["raw", "nat", "filter"] {
            let mut section = String::new();
            let mut in_table = false;
            for line in saved.lines() {
                if let Some(name) = line.strip_prefix('*') {
                    in_table = name == table;
                } else if in_table && line.starts_with("-A ") {
                    let builtin_jump = line.contains(&format!("-j {prefix}"))
                        && !line.starts_with(&format!("-A {prefix}"));
                    if builtin_jump {
                        let _ = writeln!(section, "{}", line.replacen("-A", "-D", 1));
                    }
                }
            }
            let chains: Vec<&str> = saved
                .lines()
                .filter_map(|line| line.strip_prefix(':'))
                .filter_map(|line| line.split_whitespace().next())
                .filter(|name| name.starts_with(&prefix))
                .collect();
            // Only chains of this table: iptables-save lists them under their table header.
            let table_chains: Vec<&str> = chains
                .into_iter()
                .filter(|name| table_of(&saved, name) == Some(table))
                .collect();
            for name in &table_chains {
                let _ = writeln!(section, "-F {name}");
            }
            for name in &table_chains {
                let _ = writeln!(section, "-X {name}");
            }
            if !section.is_empty() {
                let _ = write!(script, "*{table}\n{section}COMMIT\n");
            }
        }
        if script.is_empty() {
            Ok(())
        } else {
            restore(ctx, &script)
        }
    }

    fn publish(&self, ctx: NatContext<'_>, _added: &[Publish]) -> Result<()> {
        Self::sync(ctx)
    }

    fn unpublish(&self, ctx: NatContext<'_>, removed: &[Publish]) -> Result<()> {
        Self::sync(ctx)?;
        forget_udp_flows(ctx, removed);
        Ok(())
    }

    fn conntrack(&self, ctx: NatContext<'_>) -> Result<Vec<ConntrackRow>> {
        let out = run_in_host(ctx, "conntrack", &["-L"], None)?;
        Ok(out.lines().filter_map(conntrack_row).collect())
    }

    fn counters(&self, ctx: NatContext<'_>) -> Result<Vec<PortCounters>> {
        // The nat table sees the first packet of each connection only: these count connections.
        let mut out = String::new();
        for suffix in ["DNAT", "LOCAL"] {
            let name = chain(ctx.lab_name, suffix);
            out += &run_in_host(
                ctx,
                "iptables",
                &["-w", "-t", "nat", "-L", &name, "-n", "-v", "-x"],
                None,
            )?;
        }
        let mut rows = Vec::new();
        for publish in &ctx.lab.publish {
            let (mut packets, mut bytes) = (0, 0);
            let Some(container) = ctx.lab.container(&publish.node) else {
                continue;
            };
            for line in out.lines() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let Some(dpt) = fields.iter().find_map(|f| f.strip_prefix("dpt:")) else {
                    continue;
                };
                let Ok(port) = dpt.parse::<u16>() else {
                    continue;
                };
                let proto = publish.spec.proto;
                let proto_ok = fields
                    .get(3)
                    .is_some_and(|p| *p == proto.name() || *p == proto.number().to_string());
                let to_ok = line.contains(&format!("to:{}:", container.address));
                // The destination column tells specs on different host addresses apart.
                let destination = publish
                    .spec
                    .host_ip
                    .map_or_else(|| format!("!{}", ctx.lab.gateway), |ip| ip.to_string());
                let destination_ok = fields.get(8).is_some_and(|d| *d == destination);
                if proto_ok && to_ok && destination_ok && publish.spec.host.contains(port) {
                    packets += fields
                        .first()
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                    bytes += fields
                        .get(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                }
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
        let mut lines = vec![
            format!("{exec}sysctl -w net.bridge.bridge-nf-call-iptables=1"),
            format!(
                "{exec}sysctl -w net.ipv4.conf.{}.route_localnet=1",
                ctx.lab.bridge
            ),
        ];
        for container in &ctx.lab.containers {
            lines.push(format!(
                "{exec}bridge link set dev {} hairpin on",
                container.host_device
            ));
        }
        let mut table = "";
        for line in Self::chains(ctx).lines() {
            if let Some(name) = line.strip_prefix('*') {
                table = name;
            } else if let Some(chain) = line.strip_prefix(':') {
                let chain = chain.split_whitespace().next().unwrap_or_default();
                lines.push(format!("{exec}iptables -t {table} -N {chain}"));
            } else if line.starts_with("-A") {
                lines.push(format!("{exec}iptables -t {table} {line}"));
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
                "{exec}iptables -t {table} -I {builtin} {matcher}-j {target}"
            ));
        }
        lines
    }

    fn describe(&self, ctx: NatContext<'_>) -> Result<String> {
        let prefix = chain_prefix(ctx.lab_name);
        Ok(save(ctx)?
            .lines()
            .filter(|line| line.starts_with('*') || line.contains(&prefix))
            .flat_map(|line| [line, "\n"])
            .collect())
    }
}

/// The table under which iptables-save declares `chain`.
fn table_of<'a>(saved: &'a str, chain: &str) -> Option<&'a str> {
    let mut table = None;
    for line in saved.lines() {
        if let Some(name) = line.strip_prefix('*') {
            table = Some(name);
        } else if line
            .strip_prefix(':')
            .and_then(|l| l.split_whitespace().next())
            == Some(chain)
        {
            return table;
        }
    }
    None
}

/// One line of `conntrack -L`: `tcp 6 431999 ESTABLISHED src=.. dst=.. sport=.. dport=..
/// src=.. dst=.. sport=.. dport=.. [ASSURED] mark=0 use=1`.
fn conntrack_row(line: &str) -> Option<ConntrackRow> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let proto = (*fields.first()?).to_string();
    let value = |key: &str, nth: usize| {
        fields
            .iter()
            .filter_map(|f| f.strip_prefix(key))
            .nth(nth)
            .unwrap_or("?")
            .to_string()
    };
    let tuple = |nth| {
        format!(
            "{}:{} -> {}:{}",
            value("src=", nth),
            value("sport=", nth),
            value("dst=", nth),
            value("dport=", nth)
        )
    };
    let state = fields
        .get(3)
        .filter(|f| !f.contains('='))
        .map_or("-", |f| *f)
        .to_string();
    Some(ConntrackRow {
        proto,
        original: tuple(0),
        // The reply tuple reversed is what the original was translated to.
        translated: format!(
            "{}:{} -> {}:{}",
            value("dst=", 1),
            value("dport=", 1),
            value("src=", 1),
            value("sport=", 1)
        ),
        kind: "nf_conntrack".to_string(),
        state,
        idle_s: 0,
        timeout_s: fields.get(2).and_then(|f| f.parse().ok()).unwrap_or(0),
    })
}

/// Docker flushes conntrack for a UDP mapping it removes: otherwise a client that keeps
/// sending keeps being forwarded by the old entry. Only flows of the removed ports that were
/// translated to their container are deleted (`--reply-src`), not the host's own flows to
/// the same port number. Best effort: without the `conntrack` tool they simply time out.
fn forget_udp_flows(ctx: NatContext<'_>, removed: &[Publish]) {
    for publish in removed.iter().filter(|p| p.spec.proto == Proto::Udp) {
        let Some(container) = ctx.lab.container(&publish.node) else {
            continue;
        };
        let Ok(listing) = run_in_host(
            ctx,
            "conntrack",
            &[
                "-L",
                "-p",
                "udp",
                "--reply-src",
                &container.address.to_string(),
            ],
            None,
        ) else {
            continue;
        };
        let mut ports: Vec<u16> = listing
            .lines()
            .filter_map(|line| {
                line.split_whitespace()
                    .find_map(|f| f.strip_prefix("dport="))
            })
            .filter_map(|port| port.parse().ok())
            .filter(|port| publish.spec.host.contains(*port))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        for port in ports {
            // Exit status 1 means "nothing matched": fine.
            let _ = run_in_host(
                ctx,
                "conntrack",
                &[
                    "-D",
                    "-p",
                    "udp",
                    "--orig-port-dst",
                    &port.to_string(),
                    "--reply-src",
                    &container.address.to_string(),
                ],
                None,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::BackendOptions;

    fn lab_with(specs: &[&str]) -> Lab {
        let mut lab = Lab::default_lab();
        lab.publish = specs
            .iter()
            .map(|spec| Publish {
                node: "netns0".into(),
                spec: spec.parse().expect("spec"),
            })
            .collect();
        lab
    }

    fn ctx(lab: &Lab) -> NatContext<'_> {
        NatContext {
            lab_name: "t",
            lab,
            options: BackendOptions::default(),
        }
    }

    #[test]
    fn one_dnat_rule_per_port_mapped_one_to_one() {
        let lab = lab_with(&["7000-7002:8000-8002/udp", "127.0.0.1:9000:90"]);
        let rules = Iptables::chains(ctx(&lab));
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
        let rules = Iptables::chains(ctx(&lab));
        assert!(
            rules.starts_with(
                "*raw\n:NL-t-RAW - [0:0]\n-A NL-t-RAW -s 172.18.0.0/16 -i eth0 -j DROP\n-A NL-t-RAW -s 127.0.0.0/8 -i eth0 -j DROP\nCOMMIT\n"
            ),
            "{rules}"
        );
        // The device is the lab's, whatever its name.
        let mut renamed = lab_with(&[]);
        renamed.external.device = "uplink".into();
        let rules = Iptables::chains(ctx(&renamed));
        assert!(
            rules.contains("-A NL-t-RAW -s 172.18.0.0/16 -i uplink -j DROP\n"),
            "{rules}"
        );
        assert!(!rules.contains("-i eth0"), "{rules}");
    }

    #[test]
    fn forwarding_into_the_bridge_only_for_dnat_and_replies() {
        let lab = lab_with(&["8080:80", "7000-7002:8000-8002/udp"]);
        let rules = Iptables::chains(ctx(&lab));
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
        let rules = Iptables::chains(ctx(&lab_with(&[])));
        assert!(rules.contains("-A NL-t-FWD ! -i br0 -o br0 -j DROP\nCOMMIT\n"));
        assert!(!rules.contains("--ctstate DNAT"));
    }

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

    #[test]
    fn no_masquerade_rule_when_the_lab_says_so() {
        let mut lab = lab_with(&[]);
        lab.masquerade = false;
        let rules = Iptables::chains(ctx(&lab));
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
        let jumps = Iptables::missing_jumps(ctx(&lab), saved);
        assert_eq!(
            jumps,
            "*filter\n-I FORWARD -j NL-t-FWD\nCOMMIT\n*nat\n-I OUTPUT -m addrtype --dst-type LOCAL -j NL-t-DNAT\n-I OUTPUT -m addrtype --dst-type LOCAL -j NL-t-LOCAL\nCOMMIT\n*raw\n-I PREROUTING -j NL-t-RAW\nCOMMIT\n"
        );
    }

    #[test]
    fn conntrack_lines_are_parsed() {
        let line = "tcp      6 431999 ESTABLISHED src=198.18.0.2 dst=198.18.0.1 sport=40000 dport=5000 src=172.18.0.10 dst=198.18.0.2 sport=5000 dport=40000 [ASSURED] mark=0 use=1";
        let row = conntrack_row(line).expect("a row");
        assert_eq!(row.proto, "tcp");
        assert_eq!(row.state, "ESTABLISHED");
        assert_eq!(row.original, "198.18.0.2:40000 -> 198.18.0.1:5000");
        assert_eq!(row.translated, "198.18.0.2:40000 -> 172.18.0.10:5000");
        assert_eq!(row.timeout_s, 431_999);
        let syn = "tcp      6 58 SYN_RECV src=198.18.0.99 dst=198.18.0.1 sport=1234 dport=7200 src=172.18.0.10 dst=198.18.0.99 sport=7200 dport=1234 mark=0 use=1";
        let row = conntrack_row(syn).expect("a row");
        assert_eq!((row.state.as_str(), row.timeout_s), ("SYN_RECV", 58));
    }
}
