//! `cargo xtask demo`: build everything, then run netlab's main job.

use std::process::Command;

use anyhow::Result;

use crate::{
    bootstrap::{TOOLCHAIN, run_command, step},
    bpffs,
    build_ebpf::{self, workspace_root},
};

pub fn run() -> Result<()> {
    build_ebpf::build(&build_ebpf::Options { release: true })?;
    step("building netlab (release)");
    run_cargo_build()?;
    step("running scripts/demo-lab");
    let bpffs = bpffs::Mount::note();
    let demo = run_command(
        Command::new("bash")
            .arg(workspace_root().join("scripts/demo-lab"))
            .env(
                "NETLAB_BIN",
                build_ebpf::target_dir().join("release/netlab"),
            ),
    );
    bpffs.restore();
    demo
}

fn run_cargo_build() -> Result<()> {
    run_command(
        Command::new("cargo")
            .arg(format!("+{TOOLCHAIN}"))
            .current_dir(workspace_root())
            .args([
                "build",
                "--release",
                "--package",
                "netlab",
                "--bin",
                "netlab",
            ]),
    )
}
