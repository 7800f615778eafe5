//! `netlab exec NODE -- CMD [ARGS...]`: like `ip netns exec`, the command replaces netlab, so
//! stdin, stdout, stderr and the exit code are the command's own.

use std::{os::unix::process::CommandExt as _, process::ExitCode};

use nix::sched::{CloneFlags, setns};

use crate::{
    error::{Context as _, Error, Result},
    netlink::Place,
    netns, state, topology,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Node whose namespace the command runs in.
    pub node: String,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

pub fn run(lab_name: &str, args: &Args) -> Result<ExitCode> {
    let saved = state::require(lab_name)?;
    let node = args.node.as_str();
    saved.lab.require_node(node)?;
    if let Place::Netns(ns) = topology::place(lab_name, &saved.lab, node) {
        let file = netns::open(&ns)?;
        // netlab is single-threaded here, so moving the whole process is safe.
        setns(&file, CloneFlags::CLONE_NEWNET).op(|| format!("entering namespace {ns:?}"))?;
    }
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| Error::invalid("no command given"))?;
    let err = std::process::Command::new(program).args(rest).exec();
    Err(Error::io(format!("running {program}"), err))
}
