//! `cargo xtask test`: every gate, in the order that fails fastest: formatting, clippy, unit
//! tests, then the root end-to-end suites and the leak check that closes them.

use std::process::Command;

use anyhow::{Result, bail};

use crate::{
    bootstrap::{self, TOOLCHAIN, run_command, step},
    bpffs,
    build_ebpf::{self, workspace_root},
    e2e,
    totals::Totals,
};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Only run end-to-end tests whose name contains this string.
    #[arg(long)]
    pub filter: Option<String>,
    /// Skip fmt and clippy (for quick local iterations; CI never does).
    #[arg(long)]
    pub no_lint: bool,
    /// End-to-end tests at once, across all suites (each builds its own labs; 2 cores here).
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Also the long runs (`#[ignore]`d tests: 100 random kills, ...), which `scripts/test`
    /// leaves out to stay under 15 minutes. With --filter, only the long runs it matches.
    #[arg(long)]
    pub long: bool,
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
    // From here on every step runs even when an earlier one failed, so that the closing line
    // counts every test; the run fails at the end if anything did.
    let mut failures: Vec<String> = Vec::new();
    let mut totals = Totals::default();
    step("unit tests");
    let unit = totals.run(cargo().args([
        "test",
        "--no-fail-fast",
        "--workspace",
        "--exclude",
        "netlab-ebpf",
        "--exclude",
        "netlab-e2e",
    ]));
    if let Err(err) = unit {
        failures.push(format!("unit tests: {err:#}"));
    }
    step("building the netlab binaries (netlab, netlab-cni) for the end-to-end suites");
    let built = run_command(cargo().args(["build", "--package", "netlab", "--bins"]));
    if let Err(err) = built {
        failures.push(format!("the end-to-end suites did not run: {err:#}"));
    } else {
        let netlab_bin = build_ebpf::target_dir().join("debug/netlab");
        step("end-to-end suites (root, hermetic namespaces)");
        let selection = e2e::Selection {
            filter: options.filter.as_deref(),
            long: options.long,
            jobs: options.jobs,
        };
        let suites = match e2e::run(cargo(), &netlab_bin, &selection) {
            Ok(suites) => suites,
            Err(err) => {
                failures.push(format!("end-to-end suites: {err:#}"));
                Totals::default()
            }
        };
        if suites.failed > 0 {
            failures.push(format!(
                "end-to-end suites: {} test(s) failed",
                suites.failed
            ));
        }
        // A filter with a typo must not pass as "0 tests, all green".
        if suites.passed + suites.failed == 0 {
            failures.push(match &options.filter {
                Some(filter) => format!("--filter {filter:?} matched no end-to-end test"),
                None => "no end-to-end test ran".to_string(),
            });
        }
        totals.add(&suites);

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
        if let Err(err) = leaks {
            failures.push(format!("leak check: {err:#}"));
        }
    }
    bpffs.restore();
    // One closing line for the whole run, whatever cargo printed last (doc-tests with no
    // tests, say).
    println!("tests: {} passed, {} failed", totals.passed, totals.failed);
    if failures.is_empty() {
        return Ok(());
    }
    bail!(
        "{} step(s) failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    )
}

fn nix_is_root() -> bool {
    bootstrap::output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}
