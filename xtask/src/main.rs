//! Build, test and demo drivers for netlab: `cargo xtask <command>`.

mod bootstrap;
mod bpffs;
mod build_ebpf;
mod demo;
mod e2e;
mod test;
mod totals;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "netlab's build, test and demo drivers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install what the eBPF build needs (rust-src, bpf-linker), idempotently.
    Bootstrap,
    /// Build the eBPF object (bootstrapping rust-src and bpf-linker when missing).
    BuildEbpf(build_ebpf::Options),
    /// Run every quality gate and test: fmt, clippy, unit tests, root end-to-end tests, leak check.
    Test(test::Options),
    /// Build everything and run the demo.
    Demo,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Bootstrap => bootstrap::ensure_all(),
        Command::BuildEbpf(options) => build_ebpf::build(&options),
        Command::Test(options) => test::run(&options),
        Command::Demo => demo::run(),
    }
}
