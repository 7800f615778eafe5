//! `netlab ports [--json]`.

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
    let rows = saved.backend.backend()?.counters(saved.nat_context())?;
    if args.json {
        super::print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<12} {:<28} {:>12} {:>12} unit",
        "node", "spec", "count", "bytes"
    );
    for row in rows {
        println!(
            "{:<12} {:<28} {:>12} {:>12} {}",
            row.node, row.spec, row.packets, row.bytes, row.unit
        );
    }
    Ok(ExitCode::SUCCESS)
}
