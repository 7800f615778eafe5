//! `netlab conntrack [--json]`: the NAT's connection table.

use std::process::ExitCode;

use crate::{error::Result, state};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(lab_name: &str, args: &Args) -> Result<ExitCode> {
    let saved = state::require(lab_name)?;
    let rows = saved.backend.backend()?.conntrack(saved.nat_context())?;
    if args.json {
        super::print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<5} {:<44} {:<44} {:<18} {:<12} idle",
        "proto", "original", "translated", "kind", "state"
    );
    for row in rows {
        println!(
            "{:<5} {:<44} {:<44} {:<18} {:<12} {}s",
            row.proto, row.original, row.translated, row.kind, row.state, row.idle_s
        );
    }
    Ok(ExitCode::SUCCESS)
}
