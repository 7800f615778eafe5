//! The command line: one file per subcommand, each with its arguments and `run`.

mod counters;

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
    /// Name of the lab to act on.
    #[arg(long, global = true, env = "NETLAB_LAB", default_value = "netlab")]
    pub lab: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Count packets on an interface with XDP and tcx programs (the pipeline's smoke test).
    #[command(subcommand)]
    Counters(counters::Command),
}

/// Runs a parsed command line; the exit code is the command's own (e.g. for `exec`).
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Counters(command) => counters::run(command),
    }
}
