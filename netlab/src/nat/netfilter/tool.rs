//! Running a tool (iptables, nft, conntrack) in the lab's host node.

use std::{
    io::Write as _,
    process::{Command, Stdio},
};

use crate::{
    error::{Error, Result},
    nat::NatContext,
};

/// Runs a command in the lab's host node: a child forked from a thread inside the namespace
/// is born inside it.
pub(in crate::nat) fn run_in_host(
    ctx: NatContext<'_>,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String> {
    ctx.host().run(|| run(program, args, stdin))
}

/// Runs a command in the calling thread's namespace; its output, or an error naming the
/// command and what it said.
pub(in crate::nat) fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let op = format!("{program} {}", args.join(" "));
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
        .map_err(|err| Error::io(format!("running {op} (is {program} installed?)"), err))?;
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
}
