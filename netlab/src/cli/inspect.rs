//! `netlab inspect [NODE] [--json]`.

use std::process::ExitCode;

use serde::Serialize;

use crate::{
    error::Result,
    inspect::{self, NodeView},
    lab::HOST_NODE,
    lifecycle, topology,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Node to inspect (default: host).
    #[arg(default_value = HOST_NODE)]
    pub node: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Inspect {
    node: String,
    #[serde(flatten)]
    view: NodeView,
    nat: Option<String>,
}

pub fn run(lab_name: &str, args: &Args) -> Result<ExitCode> {
    let saved = lifecycle::settled(lab_name)?;
    let lab = &saved.lab;
    let node = args.node.as_str();
    lab.require_node(node)?;
    let place = topology::place(lab_name, lab, node);
    let view = crate::netlink::runtime()?.block_on(inspect::read(&place))?;
    let nat = if node == HOST_NODE {
        Some(saved.backend.backend()?.describe(saved.nat_context())?)
    } else {
        None
    };
    let report = Inspect {
        node: node.to_string(),
        view,
        nat,
    };
    if args.json {
        super::print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("== {node}: devices");
    for d in &report.view.devices {
        let master = d
            .master
            .as_deref()
            .map(|m| format!(" master {m}"))
            .unwrap_or_default();
        println!(
            "{}: {} {}{master} {} {}",
            d.index,
            d.name,
            if d.up { "UP" } else { "DOWN" },
            d.mac.as_deref().unwrap_or(""),
            d.addresses.join(" ")
        );
    }
    println!("== {node}: routes");
    for r in &report.view.routes {
        let via = r.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
        let dev = r
            .device
            .as_deref()
            .map(|d| format!(" dev {d}"))
            .unwrap_or_default();
        println!("{}{via}{dev}", r.destination);
    }
    println!("== {node}: neighbours");
    for n in &report.view.neighbours {
        println!(
            "{} dev {} lladdr {} {}",
            n.address,
            n.device.as_deref().unwrap_or("?"),
            n.mac.as_deref().unwrap_or("-"),
            n.state
        );
    }
    if let Some(nat) = &report.nat {
        println!("== {node}: NAT ({})", saved.backend);
        print!("{nat}");
    }
    Ok(ExitCode::SUCCESS)
}
