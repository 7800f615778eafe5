//! `cargo xtask build-ebpf`: the eBPF object that the netlab binary embeds.

use std::{path::PathBuf, process::Command};

use anyhow::Result;

use crate::bootstrap::{self, TOOLCHAIN};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Accepted for symmetry with cargo; the object is always built optimised, because the
    /// verifier rejects unoptimised BPF code.
    #[arg(long)]
    pub release: bool,
}

/// Cargo arguments that select the eBPF crate and its target (after the subcommand).
pub const EBPF_CARGO_ARGS: [&str; 7] = [
    "--package",
    "netlab-ebpf",
    "--release",
    "--target",
    "bpfel-unknown-none",
    "-Z",
    "build-std=core",
];

/// Where the object lands; netlab's build script embeds it from here. Both follow cargo:
/// `CARGO_TARGET_DIR` when set, else the workspace's `target/` (netlab/build.rs does the
/// same).
pub fn object_path() -> PathBuf {
    target_dir().join("bpfel-unknown-none/release/netlab-ebpf")
}

/// cargo's target folder: `CARGO_TARGET_DIR` when set, else the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

pub fn build(_options: &Options) -> Result<()> {
    bootstrap::ensure_rust_src()?;
    bootstrap::ensure_bpf_linker()?;
    bootstrap::step("building the eBPF object (bpfel-unknown-none, with BTF)");
    bootstrap::run_command(
        Command::new("cargo")
            .current_dir(workspace_root())
            .arg(format!("+{TOOLCHAIN}"))
            .arg("build")
            .args(EBPF_CARGO_ARGS)
            // The stable compiler with the nightly-only -Z build-std: one pinned toolchain
            // means one LLVM major for bpf-linker to match.
            .env("RUSTC_BOOTSTRAP", "1")
            .env(
                "CARGO_TARGET_BPFEL_UNKNOWN_NONE_RUSTFLAGS",
                "-C debuginfo=2 -C link-arg=--btf",
            ),
    )?;
    println!("eBPF object: {}", object_path().display());
    Ok(())
}
