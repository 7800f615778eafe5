//! `netlab status [--json]`.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    process::ExitCode,
};

use serde::Serialize;

use crate::{
    error::Result,
    lab::{HOST_NODE, WAN_NODE},
    lifecycle,
    netlink::Place,
    netns,
    text_table::{self, Column, Destination},
    topology,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Node {
    name: String,
    namespace: String,
    present: bool,
    addresses: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Status {
    lab: String,
    backend: String,
    subnet: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    subnet6: Option<String>,
    bridge: String,
    nodes: Vec<Node>,
    published: Vec<Published>,
}

#[derive(Debug, Serialize)]
struct Published {
    node: String,
    spec: String,
    container: Ipv4Addr,
    /// The container's IPv6 address, when the spec is published in IPv6.
    #[serde(skip_serializing_if = "Option::is_none")]
    container6: Option<Ipv6Addr>,
    /// Whether the spec is published in IPv4 (the text shows `container` only then).
    #[serde(skip)]
    ipv4: bool,
}

pub fn run(lab_name: &str, args: &Args) -> Result<ExitCode> {
    let saved = lifecycle::settled(lab_name)?;
    let lab = &saved.lab;
    let node = |name: &str, addresses: Vec<String>| {
        let (namespace, present) = match topology::place(lab_name, lab, name) {
            Place::Root => ("(root)".to_string(), true),
            Place::Netns(ns) => {
                let present = netns::exists(&ns);
                (ns, present)
            }
        };
        Node {
            name: name.to_string(),
            namespace,
            present,
            addresses,
        }
    };
    let ipv6 = lab.ipv6;
    let mut host = vec![
        format!("{} {}/{}", lab.bridge, lab.gateway, lab.subnet.prefix_len()),
        format!("{} {}", lab.external.device, lab.external.address),
    ];
    let mut wan = vec![format!(
        "{} {}/{}",
        lab.external.peer_device,
        lab.external.peer_address,
        lab.external.address.prefix_len()
    )];
    if let Some(ipv6) = ipv6 {
        host.push(format!(
            "{} {}",
            lab.bridge,
            ipv6.subnet.with_address(ipv6.gateway)
        ));
        host.push(format!("{} {}", lab.external.device, ipv6.external));
        wan.push(format!(
            "{} {}",
            lab.external.peer_device,
            ipv6.external.with_address(ipv6.peer)
        ));
    }
    let mut nodes = vec![node(HOST_NODE, host), node(WAN_NODE, wan)];
    for c in &lab.containers {
        let mut addresses = vec![format!(
            "{} {}/{}",
            c.device,
            c.address,
            lab.subnet.prefix_len()
        )];
        if let (Some(ipv6), Some(address6)) = (ipv6, c.address6) {
            addresses.push(format!(
                "{} {}",
                c.device,
                ipv6.subnet.with_address(address6)
            ));
        }
        nodes.push(node(&c.name, addresses));
    }
    let status = Status {
        lab: lab_name.to_string(),
        backend: saved.backend.to_string(),
        subnet: lab.subnet.to_string(),
        subnet6: ipv6.map(|ipv6| ipv6.subnet.to_string()),
        bridge: lab.bridge.clone(),
        nodes,
        published: lab
            .publish
            .iter()
            .filter_map(|p| {
                lab.container(&p.node).map(|c| Published {
                    node: p.node.clone(),
                    spec: p.spec.to_string(),
                    container: c.address,
                    container6: c
                        .address6
                        .filter(|_| ipv6.is_some() && p.spec.host_ip6().is_some()),
                    ipv4: p.spec.host_ip4().is_some(),
                })
            })
            .collect(),
    };
    if args.json {
        super::print_json(&status)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_text(&status);
    Ok(ExitCode::SUCCESS)
}

/// The status for people: a line about the lab, its nodes, what is published.
fn print_text(status: &Status) {
    let subnet6 = status
        .subnet6
        .as_ref()
        .map_or_else(String::new, |subnet6| format!("  subnet6 {subnet6}"));
    println!(
        "lab {}  backend {}  subnet {}{subnet6}  bridge {}",
        status.lab, status.backend, status.subnet, status.bridge
    );
    let mut nodes = text_table::new(
        &[
            Column::text("node"),
            Column::text("namespace"),
            Column::text("present"),
            Column::text("addresses"),
        ],
        Destination::Stdout,
    );
    for n in &status.nodes {
        nodes.add_row([
            n.name.clone(),
            n.namespace.clone(),
            if n.present { "yes" } else { "MISSING" }.to_owned(),
            n.addresses.join(", "),
        ]);
    }
    println!("{}", text_table::render(&nodes));
    if !status.published.is_empty() {
        let mut published = text_table::new(
            &[
                Column::text("published"),
                Column::text("node"),
                Column::text("container"),
            ],
            Destination::Stdout,
        );
        for p in &status.published {
            let container = match (p.ipv4, p.container6) {
                (true, Some(v6)) => format!("{}, {v6}", p.container),
                (false, Some(v6)) => v6.to_string(),
                (_, None) => p.container.to_string(),
            };
            published.add_row([p.spec.clone(), p.node.clone(), container]);
        }
        println!("\n{}", text_table::render(&published));
    }
}
