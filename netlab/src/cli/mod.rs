//! The command line: one file per subcommand, each with its arguments and `run`.

mod bench;
mod completions;
mod conntrack;
mod counters;
mod down;
mod exec;
mod foreground;
mod graph;
mod inspect;
mod man;
mod ports;
mod publish;
mod status;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::Result;

#[derive(Debug, Parser)]
#[command(
    name = "netlab",
    version,
    about = "Container networks with NAT in eBPF or iptables"
)]
pub struct Cli {
    /// Name of the lab to act on (1-16 letters, digits or '_').
    #[arg(long, global = true, env = "NETLAB_LAB", default_value = "netlab")]
    pub lab: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the lab (or converge it, when it is up already).
    Up(up::Args),
    /// Remove everything the lab created, also after a crash. Idempotent.
    Down,
    /// Nodes, namespaces, addresses, backend and published ports.
    Status(status::Args),
    /// Devices, routes, neighbours and NAT state of a node, read over netlink.
    Inspect(inspect::Args),
    /// Run a command inside a node's namespace (like `ip netns exec`).
    Exec(exec::Args),
    /// Publish container ports: `NODE [HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/tcp|/udp]...`
    Publish(publish::Args),
    /// Stop publishing ports: NODE SPEC...
    Unpublish(publish::Args),
    /// Published ports and their counters.
    Ports(ports::Args),
    /// The NAT's connection-tracking table.
    Conntrack(conntrack::Args),
    /// Measure the NAT backends against each other and against no NAT, in one run.
    Bench(bench::Args),
    /// Draw the lab (running, or from a lab file without deploying it): namespaces,
    /// devices, links, published ports and where the NAT's programs or chains sit.
    Graph(graph::Args),
    /// Count packets on an interface with XDP and tcx programs (the pipeline's smoke test).
    #[command(subcommand)]
    Counters(counters::Command),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::Args),
    /// Print the netlab(1) man page (roff).
    Man,
}

/// Runs a parsed command line; the exit code is the command's own (e.g. for `exec`).
pub fn run(cli: Cli) -> Result<ExitCode> {
    let lab = cli.lab;
    match cli.command {
        Command::Up(args) => up::run(&lab, &args),
        Command::Down => down::run(&lab),
        Command::Status(args) => status::run(&lab, &args),
        Command::Inspect(args) => inspect::run(&lab, &args),
        Command::Exec(args) => exec::run(&lab, &args),
        Command::Publish(args) => publish::run(&lab, &args, true),
        Command::Unpublish(args) => publish::run(&lab, &args, false),
        Command::Ports(args) => ports::run(&lab, &args),
        Command::Conntrack(args) => conntrack::run(&lab, &args),
        Command::Counters(command) => counters::run(command),
        Command::Bench(args) => bench::run(&args),
        Command::Graph(args) => graph::run(&lab, &args),
        Command::Completions(args) => Ok(completions::run(&args)),
        Command::Man => man::run(),
    }
}

/// Prints `value` as pretty JSON.
fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|err| crate::Error::json("serializing JSON", err))?;
    println!("{text}");
    Ok(())
}
