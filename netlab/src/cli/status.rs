//! `netlab status [--json]`.

use std::{net::Ipv4Addr, process::ExitCode};

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
    bridge: String,
    nodes: Vec<Node>,
    published: Vec<Published>,
}

#[derive(Debug, Serialize)]
struct Published {
    node: String,
    spec: String,
    container: Ipv4Addr,
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
    let mut nodes = vec![
        node(
            HOST_NODE,
            vec![
                format!("{} {}/{}", lab.bridge, lab.gateway, lab.subnet.prefix_len()),
                format!("{} {}", lab.external.device, lab.external.address),
            ],
        ),
        node(
            WAN_NODE,
            vec![format!(
                "{} {}/{}",
                lab.external.peer_device,
                lab.external.peer_address,
                lab.external.address.prefix_len()
            )],
        ),
    ];
    for c in &lab.containers {
        nodes.push(node(
            &c.name,
            vec![format!(
                "{} {}/{}",
                c.device,
                c.address,
                lab.subnet.prefix_len()
            )],
        ));
    }
    let status = Status {
        lab: lab_name.to_string(),
        backend: saved.backend.to_string(),
        subnet: lab.subnet.to_string(),
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
    println!(
        "lab {}  backend {}  subnet {}  bridge {}",
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
            published.add_row([p.spec.clone(), p.node.clone(), p.container.to_string()]);
        }
        println!("\n{}", text_table::render(&published));
    }
}
