//! The end-to-end suites as one pool of tests, the way cargo-nextest runs them: every test in a
//! process of its own, `jobs` at a time across all suites. `cargo test` runs the suites one
//! after the other, so each suite's longest test held the whole run while the other slots sat
//! idle (the crash walks, podman, soak); here those tests start first and the short ones fill
//! the slots beside them.

use std::{
    collections::{BTreeSet, VecDeque},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::totals::Totals;

/// Suites whose single tests run for half a minute or more: started first, they overlap the
/// hundreds of short ones instead of ending the run alone.
const LONGEST_FIRST: &[&str] = &["crash", "bench", "soak", "podman"];

/// Suites that must have the machine to themselves. They run after the pool, one test at a
/// time:
/// - `exhaustion`: each case floods a lab with tens of thousands of flows, and beside other
///   tests it would measure the two cores' overload rather than the NAT;
/// - `leak_check`: its cases expect the leak check to find nothing of netlab's own on the
///   machine, which is true only while no other test has a lab (one being set up or torn
///   down left `/sys/fs/bpf/netlab` empty for a moment, and that case failed once).
const ALONE: &[&str] = &["exhaustion", "leak_check"];

#[derive(Debug)]
pub struct Selection<'a> {
    /// Only tests whose name contains this (libtest's own filter).
    pub filter: Option<&'a str>,
    /// Also the `#[ignore]`d long runs.
    pub long: bool,
    /// Tests at once.
    pub jobs: usize,
}

/// One test of one suite's binary.
#[derive(Debug, Clone)]
struct Test {
    binary: PathBuf,
    suite: String,
    name: String,
}

/// A test that ran: what it printed, how long it took, whether it passed.
struct Ran {
    test: Test,
    elapsed: Duration,
    totals: Totals,
    output: String,
}

/// Builds the suites, runs the selected tests with `netlab` at `netlab_bin`, and returns what
/// passed and failed.
pub fn run(cargo: Command, netlab_bin: &Path, selection: &Selection) -> Result<Totals> {
    let tests = list(cargo, selection)?;
    let started = Instant::now();
    let (alone, pooled): (Vec<Test>, Vec<Test>) = tests
        .into_iter()
        .partition(|test| ALONE.contains(&test.suite.as_str()));
    let mut totals = Totals::default();
    let mut slowest = Vec::new();
    for (batch, jobs) in [(pooled, selection.jobs), (alone, 1)] {
        run_pool(batch, jobs, netlab_bin, selection.long, |ran| {
            report(&ran);
            totals.add(&ran.totals);
            slowest.push((
                ran.elapsed,
                format!("{}::{}", ran.test.suite, ran.test.name),
            ));
        });
    }
    println!(
        "end-to-end suites: {} passed, {} failed in {:.0} s; the slowest tests:",
        totals.passed,
        totals.failed,
        started.elapsed().as_secs_f64()
    );
    slowest.sort_by_key(|(elapsed, _)| std::cmp::Reverse(*elapsed));
    for (elapsed, name) in slowest.iter().take(10) {
        println!("  {:6.1} s  {name}", elapsed.as_secs_f64());
    }
    Ok(totals)
}

/// Builds the test binaries of `netlab-e2e` and lists the selected tests, the suites of
/// [`LONGEST_FIRST`] first.
fn list(mut cargo: Command, selection: &Selection) -> Result<Vec<Test>> {
    cargo.args([
        "test",
        "--package",
        "netlab-e2e",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    let out = cargo
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {cargo:?}"))?;
    if !out.status.success() {
        bail!("{cargo:?} failed: {}", out.status);
    }
    let mut binaries = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" || message["profile"]["test"] != true {
            continue;
        }
        if let (Some(executable), Some(suite)) = (
            message["executable"].as_str(),
            message["target"]["name"].as_str(),
        ) {
            binaries.push((suite.to_string(), PathBuf::from(executable)));
        }
    }
    if binaries.is_empty() {
        bail!("{cargo:?} built no test binary");
    }
    let rank = |suite: &str| {
        LONGEST_FIRST
            .iter()
            .position(|first| *first == suite)
            .unwrap_or(LONGEST_FIRST.len())
    };
    binaries.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then_with(|| a.0.cmp(&b.0)));

    let mut tests = Vec::new();
    for (suite, binary) in binaries {
        let names = |ignored: bool| -> Result<Vec<String>> {
            let mut command = Command::new(&binary);
            command.args(["--list", "--format", "terse"]);
            if ignored {
                command.arg("--ignored");
            }
            command.args(selection.filter);
            let listed = crate::bootstrap::output(&mut command)?;
            Ok(listed
                .lines()
                .filter_map(|line| line.strip_suffix(": test"))
                .map(str::to_string)
                .collect())
        };
        let ignored: BTreeSet<String> = if selection.long {
            BTreeSet::new()
        } else {
            names(true)?.into_iter().collect()
        };
        tests.extend(
            names(false)?
                .into_iter()
                .filter(|name| !ignored.contains(name))
                .map(|name| Test {
                    binary: binary.clone(),
                    suite: suite.clone(),
                    name,
                }),
        );
    }
    Ok(tests)
}

/// Runs `tests` on `jobs` workers, each test in its own process, and hands each to `ended`
/// as it ends, while the others still run.
fn run_pool(
    tests: Vec<Test>,
    jobs: usize,
    netlab_bin: &Path,
    long: bool,
    mut ended: impl FnMut(Ran),
) {
    let queue = Mutex::new(VecDeque::from(tests));
    let (done, finished) = mpsc::channel();
    thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let done = done.clone();
            let queue = &queue;
            scope.spawn(move || {
                loop {
                    let next = queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .pop_front();
                    let Some(test) = next else { break };
                    if done.send(run_one(test, netlab_bin, long)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        for ran in finished {
            ended(ran);
        }
    });
}

/// Runs one test in a process of its own and reads its verdict from libtest's output; a
/// process that dies before its summary line failed.
fn run_one(test: Test, netlab_bin: &Path, long: bool) -> Ran {
    let started = Instant::now();
    let mut command = Command::new(&test.binary);
    command
        .args(["--exact", &test.name, "--test-threads=1"])
        .env("NETLAB_BIN", netlab_bin)
        .stdin(Stdio::null());
    if long {
        command.arg("--include-ignored");
    }
    let mut totals = Totals::default();
    let output = match command.output() {
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            for line in stdout.lines() {
                totals.line(line);
            }
            totals.close_binary();
            if !out.status.success() && totals.failed == 0 {
                totals.failed = 1;
            }
            format!("{stdout}{}", String::from_utf8_lossy(&out.stderr))
        }
        Err(err) => {
            totals.failed = 1;
            format!("could not run {command:?}: {err}")
        }
    };
    Ran {
        test,
        elapsed: started.elapsed(),
        totals,
        output,
    }
}

/// One line for a test that passed; everything it printed for one that did not.
fn report(ran: &Ran) {
    let name = format!("{}::{}", ran.test.suite, ran.test.name);
    let seconds = ran.elapsed.as_secs_f64();
    if ran.totals.failed == 0 {
        println!("test {name} ... ok ({seconds:.1} s)");
    } else {
        println!("---- {name}: output ----\n{}", ran.output.trim_end());
        println!("test {name} ... FAILED ({seconds:.1} s)");
    }
}
