//! Counting passed and failed tests from libtest's output, whoever ran the binaries.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

/// Passed and failed tests over several `cargo test` runs, read from libtest's output: its
/// `test result:` lines, and for a test binary that died before printing one (a crash, an
/// abort, a kill), the tests it announced (`running N tests`) that did not report `ok` or
/// `ignored` count as failed.
#[derive(Debug, Default)]
pub struct Totals {
    pub passed: u64,
    pub failed: u64,
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
    pub fn run(&mut self, command: &mut Command) -> Result<()> {
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

    pub fn add(&mut self, other: &Self) {
        self.passed += other.passed;
        self.failed += other.failed;
    }

    /// Takes one line of `cargo test` output into account.
    pub fn line(&mut self, line: &str) {
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
    pub fn close_binary(&mut self) {
        if let Some(binary) = self.open.take() {
            self.passed += binary.ok;
            self.failed += binary
                .announced
                .saturating_sub(binary.ok + binary.ignored)
                .max(1);
        }
    }
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
