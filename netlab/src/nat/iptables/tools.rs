//! Running the iptables tools (and `conntrack`) in the lab's host node.

use std::{
    io::Write as _,
    process::{Command, Stdio},
};

use crate::{
    crash_point,
    error::{Error, Result},
    nat::NatContext,
};

/// Runs a command in the lab's host node: a child forked from a thread inside the namespace
/// is born inside it.
pub(super) fn run_in_host(
    ctx: NatContext<'_>,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String> {
    let op = format!("{program} {}", args.join(" "));
    ctx.host().run(|| {
        let mut child = Command::new(program)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| Error::io(format!("running {op} (is iptables installed?)"), err))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())
                .map_err(|err| Error::io(format!("feeding {op}"), err))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|err| Error::io(format!("running {op}"), err))?;
        if !out.status.success() {
            return Err(Error::Command {
                op,
                stderr: String::from_utf8_lossy(&out.stderr)
                    .trim()
                    .replace('\n', "; "),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    })
}

/// `iptables-restore --noflush`: applies `rules` (`what` they are, for the crash point)
/// atomically, leaving other chains alone.
pub(super) fn restore(ctx: NatContext<'_>, what: &str, rules: &str) -> Result<()> {
    crash_point::reached(ctx.lab_name, &format!("iptables-restore {what}"));
    run_in_host(
        ctx,
        "iptables-restore",
        &["--noflush", "--wait"],
        Some(rules),
    )
    .map(drop)
}

/// `iptables-save`: every table's rules.
pub(super) fn save(ctx: NatContext<'_>) -> Result<String> {
    run_in_host(ctx, "iptables-save", &[], None)
}

/// `iptables -t nat -L CHAIN -n -v -x`: the chain's rules with exact counters.
pub(super) fn list_nat_chain(ctx: NatContext<'_>, chain: &str) -> Result<String> {
    run_in_host(
        ctx,
        "iptables",
        &["-w", "-t", "nat", "-L", chain, "-n", "-v", "-x"],
        None,
    )
}
