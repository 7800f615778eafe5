//! Points `NETLAB_EBPF_OBJECT` at the eBPF object built by `cargo xtask build-ebpf`, and
//! refuses to build with a missing or stale object: netlab must never embed old kernel code.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use anyhow::{Context as _, Result, bail};

fn main() -> Result<()> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir
        .parent()
        .context("netlab/ has no parent folder")?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    let object = target_dir.join("bpfel-unknown-none/release/netlab-ebpf");
    let sources = [
        workspace.join("netlab-ebpf/src"),
        workspace.join("netlab-ebpf/Cargo.toml"),
        workspace.join("netlab-common/src"),
        workspace.join("netlab-common/Cargo.toml"),
    ];
    for source in &sources {
        println!("cargo:rerun-if-changed={}", source.display());
    }
    println!("cargo:rerun-if-changed={}", object.display());

    let Ok(built) = std::fs::metadata(&object).and_then(|meta| meta.modified()) else {
        bail!(
            "the eBPF object {} is missing: run `cargo xtask build-ebpf` first",
            object.display()
        );
    };
    let mut newest = SystemTime::UNIX_EPOCH;
    for source in &sources {
        newest = newest.max(newest_mtime(source)?);
    }
    if newest > built {
        bail!(
            "the eBPF object {} is older than the eBPF sources: run `cargo xtask build-ebpf`",
            object.display()
        );
    }
    println!("cargo:rustc-env=NETLAB_EBPF_OBJECT={}", object.display());
    Ok(())
}

fn newest_mtime(path: &Path) -> Result<SystemTime> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_dir() {
        return Ok(meta.modified()?);
    }
    let mut newest = meta.modified()?;
    for entry in std::fs::read_dir(path)? {
        newest = newest.max(newest_mtime(&entry?.path())?);
    }
    Ok(newest)
}
