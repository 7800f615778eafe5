//! `netlab conntrack [--json]`: the NAT's connection table.

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
    let rows = saved.backend.backend()?.conntrack(saved.nat_context())?;
    if args.json {
        super::print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = text_table::new(
        &[
            Column::text("proto"),
            Column::text("original"),
            Column::text("translated"),
            Column::text("kind"),
            Column::text("state"),
            Column::number("idle"),
        ],
        Destination::Stdout,
    );
    for row in rows {
        table.add_row([
            row.proto,
            row.original,
            row.translated,
            row.kind,
            row.state,
            format!("{}s", row.idle_s),
        ]);
    }
    println!("{}", text_table::render(&table));
    Ok(ExitCode::SUCCESS)
}
