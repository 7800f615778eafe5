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
        // `--no-fail-fast`: a failing suite does not keep the others from running.
        let mut e2e = cargo();
        e2e.args(["test", "--no-fail-fast", "--package", "netlab-e2e", "--"])
            .arg(format!("--test-threads={}", options.jobs))
            .env("NETLAB_BIN", &netlab_bin);
        if let Some(filter) = &options.filter {
            e2e.arg(filter);
        }
        if options.long {
            e2e.arg("--include-ignored");
        }
        let mut suites = Totals::default();
        if let Err(err) = suites.run(&mut e2e) {
            failures.push(format!("end-to-end suites: {err:#}"));
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

/// Passed and failed tests over several `cargo test` runs, read from libtest's output: its
/// `test result:` lines, and for a test binary that died before printing one (a crash, an
/// abort, a kill), the tests it announced (`running N tests`) that did not report `ok` or
/// `ignored` count as failed.
#[derive(Debug, Default)]
struct Totals {
    passed: u64,
    failed: u64,
    /// The test binary whose output is being read: tests announced, passed, ignored so far.
    open: Option<Binary>,
}

#[derive(Debug, Default)]
struct Binary {
    announced: u64,
    ok: u64,
    ignored: u64,
}

impl Totals {
    /// Runs `command`, echoing its output and adding up its tests; fails if it fails.
    fn run(&mut self, command: &mut Command) -> Result<()> {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {command:?}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut read = Ok(());
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(line) => {
                    println!("{line}");
                    self.line(&line);
                }
                Err(err) => {
                    read = Err(err).context("reading test output");
                    break;
                }
            }
        }
        self.close_binary();
        let status = child
            .wait()
            .with_context(|| format!("waiting for {command:?}"))?;
        read?;
        if !status.success() {
            bail!("{command:?} failed: {status}");
        }
        Ok(())
    }

    fn add(&mut self, other: &Self) {
        self.passed += other.passed;
        self.failed += other.failed;
    }

    /// Takes one line of `cargo test` output into account.
    fn line(&mut self, line: &str) {
        if let Some(count) = line
            .strip_prefix("running ")
            .and_then(|rest| rest.strip_suffix(" tests").or(rest.strip_suffix(" test")))
            .and_then(|n| n.parse::<u64>().ok())
        {
            self.close_binary();
            self.open = Some(Binary {
                announced: count,
                ..Binary::default()
            });
        } else if let Some(summary) = line.strip_prefix("test result: ") {
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
            self.open = None;
        } else if let Some(binary) = &mut self.open
            && line.starts_with("test ")
        {
            if line.ends_with(" ... ok") {
                binary.ok += 1;
            } else if line.contains(" ... ignored") {
                binary.ignored += 1;
            }
        }
    }

    /// A binary that announced tests and ended without its summary line died: what it did
    /// not report as passed or ignored failed (at least one test, whatever it announced).
    fn close_binary(&mut self) {
        if let Some(binary) = self.open.take() {
            self.passed += binary.ok;
            self.failed += binary
                .announced
                .saturating_sub(binary.ok + binary.ignored)
                .max(1);
        }
    }
}

fn nix_is_root() -> bool {
    bootstrap::output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

#[cfg(test)]
mod tests {
    use super::Totals;

    fn totals(output: &str) -> (u64, u64) {
        let mut totals = Totals::default();
        for line in output.lines() {
            totals.line(line);
        }
        totals.close_binary();
        (totals.passed, totals.failed)
    }

    #[test]
    fn summary_lines_add_up() {
        let output = "running 2 tests\ntest a ... ok\ntest b ... FAILED\n\
                      test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 3 filtered out; finished in 0.1s\n\
                      running 1 test\ntest c ... ok\n\
                      test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s\n\
                      running 0 tests\n\
                      test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 4 filtered out; finished in 0.0s\n";
        assert_eq!(totals(output), (2, 1));
    }

    #[test]
    fn a_binary_that_dies_before_its_summary_counts_as_failed() {
        // Killed after one of three tests passed, then another binary runs normally.
        let output = "running 3 tests\ntest a ... ok\n\
                      running 1 test\ntest d ... ok\n\
                      test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s\n";
        assert_eq!(totals(output), (2, 2));
        // Killed at the end of the output, announced tests all unreported.
        assert_eq!(totals("running 2 tests\n"), (0, 2));
        // Died after every test reported ok (in a destructor, say): still a failure.
        assert_eq!(totals("running 1 test\ntest a ... ok\n"), (1, 1));
    }
}
