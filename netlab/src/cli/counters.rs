//! `netlab counters attach|show|detach --netns NS --dev DEV`.

use std::process::ExitCode;

use crate::{
    error::Result,
    iface_counters as counters,
    text_table::{self, Column, Destination},
};

#[derive(Debug, clap::Args)]
pub struct Target {
    /// Namespace holding the interface (as in `ip netns list`).
    #[arg(long)]
    pub netns: String,
    /// Interface to count on.
    #[arg(long = "dev")]
    pub device: String,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Attach XDP and tcx counters to the interface; they stay attached after netlab exits.
    Attach(Target),
    /// Print the counters.
    Show {
        #[command(flatten)]
        target: Target,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Detach the counters (idempotent).
    Detach(Target),
}

pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Attach(target) => {
            counters::attach(&target.netns, &target.device)?;
            println!("counters attached to {} in {}", target.device, target.netns);
        }
        Command::Show { target, json } => {
            let rows = counters::read(&target.netns, &target.device)?;
            if json {
                super::print_json(&rows)?;
            } else {
                let mut table = text_table::new(
                    &[
                        Column::number("ifindex"),
                        Column::text("hook"),
                        Column::number("packets"),
                        Column::number("bytes"),
                    ],
                    Destination::Stdout,
                );
                for row in rows {
                    table.add_row([
                        row.ifindex.to_string(),
                        row.hook.to_owned(),
                        row.packets.to_string(),
                        row.bytes.to_string(),
                    ]);
                }
                println!("{}", text_table::render(&table));
            }
        }
        Command::Detach(target) => counters::detach(&target.netns, &target.device)?,
    }
    Ok(ExitCode::SUCCESS)
}
