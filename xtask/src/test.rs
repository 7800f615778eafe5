//! `cargo xtask test`: every gate, in the order that fails fastest: formatting, clippy, unit
//! tests, then the root end-to-end suites and the leak check that closes them.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

use crate::{
    bootstrap::{self, TOOLCHAIN, run_command, step},
    bpffs,
    build_ebpf::{self, workspace_root},
};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Only run end-to-end tests whose name contains this string.
    #[arg(long)]
    pub filter: Option<String>,
    /// Skip fmt and clippy (for quick local iterations; CI never does).
    #[arg(long)]
    pub no_lint: bool,
    /// Parallel end-to-end tests (each builds its own labs; 2 cores here).
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
}

fn cargo() -> Command {
    let mut command = Command::new("cargo");
    command
        .arg(format!("+{TOOLCHAIN}"))
        .current_dir(workspace_root());
    command
}

pub fn run(options: &Options) -> Result<()> {
    if !nix_is_root() {
        bail!("the end-to-end tests create network namespaces: run `cargo xtask test` as root");
    }
    build_ebpf::build(&build_ebpf::Options { release: true })?;
    let bpffs = bpffs::Mount::note();
    if !options.no_lint {
        step("cargo fmt --check");
        run_command(cargo().args(["fmt", "--all", "--check"]))?;
        step("cargo clippy (userspace, all targets)");
        run_command(cargo().args([
            "clippy",
            "--workspace",
            "--exclude",
            "netlab-ebpf",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
        step("cargo clippy (eBPF crate, bpfel-unknown-none)");
        run_command(
            cargo()
                .arg("clippy")
                .args(build_ebpf::EBPF_CARGO_ARGS)
                .args(["--", "-D", "warnings"])
                .env("RUSTC_BOOTSTRAP", "1"),
        )?;
    }
    step("unit tests");
    let mut totals = Totals::default();
    totals.run(cargo().args([
        "test",
        "--workspace",
        "--exclude",
        "netlab-ebpf",
        "--exclude",
        "netlab-e2e",
    ]))?;
    step("building the netlab binary for the end-to-end suites");
    run_command(cargo().args(["build", "--package", "netlab", "--bin", "netlab"]))?;
    let netlab_bin = workspace_root().join("target/debug/netlab");

    step("end-to-end suites (root, hermetic namespaces)");
    let mut e2e = cargo();
    e2e.args(["test", "--package", "netlab-e2e", "--"])
        .arg(format!("--test-threads={}", options.jobs))
        .env("NETLAB_BIN", &netlab_bin);
    if let Some(filter) = &options.filter {
        e2e.arg(filter);
    }
    let suites = totals.run(&mut e2e);

    // The leak check runs whatever the suites did: a failing test must not hide a leak.
    step("leak check: nothing the suites created may be left behind");
    let leaks = run_command(cargo().args([
        "run",
        "--quiet",
        "--package",
        "netlab-e2e",
        "--bin",
        "leak-check",
    ]));
    // One closing line for the whole run, whatever cargo printed last (doc-tests with no
    // tests, say).
    bpffs.restore();
    println!("tests: {} passed, {} failed", totals.passed, totals.failed);
    suites?;
    leaks
}

/// Passed and failed tests over several `cargo test` runs, read from their summary lines.
#[derive(Debug, Default)]
struct Totals {
    passed: u64,
    failed: u64,
}

impl Totals {
    /// Runs `command`, echoing its output and adding up its `test result:` lines.
    fn run(&mut self, command: &mut Command) -> Result<()> {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {command:?}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading test output")?;
            println!("{line}");
            if let Some(summary) = line.strip_prefix("test result: ") {
                let count = |word: &str| {
                    summary
                        .split(';')
                        .find_map(|part| {
                            part.trim()
                                .trim_start_matches("ok. ")
                                .trim_start_matches("FAILED. ")
                                .strip_suffix(word)
                        })
                        .and_then(|n| n.trim().parse::<u64>().ok())
                        .unwrap_or(0)
                };
                self.passed += count(" passed");
                self.failed += count(" failed");
            }
        }
        let status = child
            .wait()
            .with_context(|| format!("waiting for {command:?}"))?;
        if !status.success() {
            bail!("{command:?} failed: {status}");
        }
        Ok(())
    }
}

fn nix_is_root() -> bool {
    bootstrap::output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}
