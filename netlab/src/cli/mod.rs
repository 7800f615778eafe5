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
mod soak;
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
    /// Leave a lab under mixed traffic with ports published and unpublished all along, and
    /// report failed requests, conntrack occupancy and the loader's memory over time.
    Soak(soak::Args),
    /// Count packets on an interface with XDP and tcx programs (the pipeline's smoke test).
    #[command(subcommand)]
    Counters(counters::Command),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::Args),
    /// Print the netlab(1) man page (roff).
    Man,
}

impl Command {
    /// The command's name when it must run as root: everything that enters a namespace,
    /// changes links, or loads, reads or pins eBPF objects. Drawing, explaining, and the
    /// shell files do not.
    fn needs_root(&self) -> Option<&'static str> {
        Some(match self {
            Self::Up(args) if args.explain => return None,
            Self::Graph(_) | Self::Completions(_) | Self::Man => return None,
            Self::Bench(args) if args.from_json.is_some() => return None,
            Self::Up(_) => "up",
            Self::Down => "down",
            Self::Status(_) => "status",
            Self::Inspect(_) => "inspect",
            Self::Exec(_) => "exec",
            Self::Publish(_) => "publish",
            Self::Unpublish(_) => "unpublish",
            Self::Ports(_) => "ports",
            Self::Conntrack(_) => "conntrack",
            Self::Bench(_) => "bench",
            Self::Soak(_) => "soak",
            Self::Counters(_) => "counters",
        })
    }
}

/// Runs a parsed command line; the exit code is the command's own (e.g. for `exec`).
pub fn run(cli: Cli) -> Result<ExitCode> {
    if let Some(name) = cli.command.needs_root()
        && !nix::unistd::geteuid().is_root()
    {
        return Err(crate::Error::NeedsRoot(name));
    }
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
        Command::Soak(args) => soak::run(&lab, &args),
        Command::Completions(args) => Ok(completions::run(&args)),
        Command::Man => man::run(),
    }
}

/// The exit status of a command line that does not parse (an unknown option, a value out of
/// range, a missing argument), as for most Unix tools; every other failure exits with 1.
pub const USAGE_EXIT: u8 = 2;

/// clap's report of a bad command line, on one line: its message (without `error: `), the
/// lines it spreads over joined, and the usage line it gives.
pub fn usage_error_line(rendered: &str) -> String {
    let mut paragraphs = rendered.split("\n\n");
    let message = paragraphs
        .next()
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let usage = paragraphs.find_map(|p| p.trim().strip_prefix("Usage: "));
    match usage {
        Some(usage) => format!(
            "{message} (usage: {})",
            usage.lines().next().unwrap_or(usage)
        ),
        None => format!("{message} (see --help)"),
    }
}

/// Prints `value` as pretty JSON.
fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|err| crate::Error::json("serializing JSON", err))?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn usage_error(args: &[&str]) -> String {
        let err = Cli::try_parse_from(args).expect_err("a usage error");
        usage_error_line(&err.render().to_string())
    }

    #[test]
    fn usage_errors_fit_on_one_line_and_name_what_is_wrong() {
        for (args, needles) in [
            (
                &["netlab", "publish", "netns0"][..],
                &[
                    "required arguments were not provided: <SPECS>...",
                    "usage: netlab publish",
                ][..],
            ),
            (
                &["netlab", "exec", "netns0", "ls"],
                &["'ls'", "usage: netlab exec"],
            ),
            (
                &["netlab", "up", "--ct-entries", "5"],
                &["'5'", "16..=16777216"],
            ),
            (&["netlab", "frobnicate"], &["'frobnicate'"]),
        ] {
            let line = usage_error(args);
            assert!(!line.contains('\n'), "{line}");
            assert!(!line.starts_with("error"), "{line}");
            for needle in needles {
                assert!(line.contains(needle), "{args:?}: {line:?} lacks {needle:?}");
            }
        }
    }
}
