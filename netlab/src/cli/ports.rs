//! `netlab ports [--json]`.

use std::process::ExitCode;

use crate::{
    error::Result,
    lifecycle,
    text_table::{self, Column, Destination},
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(lab_name: &str, args: &Args) -> Result<ExitCode> {
    let saved = lifecycle::settled(lab_name)?;
    let rows = saved.backend.backend()?.counters(saved.nat_context())?;
    if args.json {
        super::print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = text_table::new(
        &[
            Column::text("node"),
            Column::text("spec"),
            Column::number("count"),
            Column::number("bytes"),
            Column::text("unit"),
        ],
        Destination::Stdout,
    );
    for row in rows {
        table.add_row([
            row.node,
            row.spec,
            row.packets.to_string(),
            row.bytes.to_string(),
            row.unit.to_owned(),
        ]);
    }
    println!("{}", text_table::render(&table));
    Ok(ExitCode::SUCCESS)
}
