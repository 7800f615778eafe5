//! Installs what building the eBPF object needs: the `rust-src` component and a `bpf-linker`
//! linked against the Rust toolchain's own libLLVM. Every step checks first, so running it
//! again is cheap and changes nothing.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

/// The toolchain pinned in rust-toolchain.toml; bpf-linker must match its LLVM major.
pub const TOOLCHAIN: &str = "1.95.0";
/// bpf-linker's cargo feature for the pinned toolchain's LLVM major.
const BPF_LINKER_LLVM_FEATURE: &str = "llvm-22";
const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn ensure_all() -> Result<()> {
    ensure_rust_src()?;
    ensure_bpf_linker()
}

/// `rustup component add rust-src`, needed by `-Z build-std=core`.
pub fn ensure_rust_src() -> Result<()> {
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        TOOLCHAIN,
    ]))?;
    if installed.lines().any(|line| line.trim() == "rust-src") {
        return Ok(());
    }
    step("installing the rust-src component");
    run_command(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        TOOLCHAIN,
    ]))
}

/// Builds bpf-linker against rustc's libLLVM: a plain `cargo install bpf-linker` picks up
/// Debian's LLVM 14 and fails to link.
pub fn ensure_bpf_linker() -> Result<()> {
    if bpf_linker_works() {
        return Ok(());
    }
    let prefix = llvm_prefix()?;
    step(&format!(
        "building bpf-linker {BPF_LINKER_VERSION} against rustc's libLLVM (prefix {}, ~2 minutes)",
        prefix.display()
    ));
    run_command(
        Command::new("cargo")
            .args([
                &format!("+{TOOLCHAIN}"),
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--force",
                "--no-default-features",
                "--features",
                BPF_LINKER_LLVM_FEATURE,
            ])
            .env("LLVM_PREFIX", &prefix),
    )?;
    if !bpf_linker_works() {
        bail!("bpf-linker was installed but `bpf-linker --version` still fails");
    }
    Ok(())
}

fn bpf_linker_works() -> bool {
    Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// A folder that looks like an LLVM install to bpf-linker's build script: `lib/libLLVM.so`
/// and the versioned file name, both pointing at the toolchain's own library. The installed
/// binary keeps a runpath here, so the folder is permanent.
fn llvm_prefix() -> Result<PathBuf> {
    let sysroot =
        output(Command::new("rustc").args([&format!("+{TOOLCHAIN}"), "--print", "sysroot"]))?;
    let lib_dir = Path::new(sysroot.trim()).join("lib");
    let library = std::fs::read_dir(&lib_dir)
        .with_context(|| format!("reading {}", lib_dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("libLLVM.so."))
        .with_context(|| format!("no libLLVM.so.* in {}", lib_dir.display()))?;
    let prefix = PathBuf::from(format!("/opt/netlab-llvm/rust-{TOOLCHAIN}"));
    let prefix_lib = prefix.join("lib");
    std::fs::create_dir_all(&prefix_lib)
        .with_context(|| format!("creating {}", prefix_lib.display()))?;
    for link_name in ["libLLVM.so", library.as_str()] {
        let link = prefix_lib.join(link_name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(lib_dir.join(&library), &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    Ok(prefix)
}

/// Prints one bootstrap step, so a fresh machine's log says what is being installed and why.
pub fn step(message: &str) {
    println!("==> {message}");
}

pub fn run_command(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(())
}

pub fn output(command: &mut Command) -> Result<String> {
    let out = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("{command:?} printed non-UTF-8"))
}
