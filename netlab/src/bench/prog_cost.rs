//! What each eBPF program of a lab costs per packet: the kernel's own run-time statistics
//! (`BPF_ENABLE_STATS`: run time and run count per program, helpers included), read before
//! and after a measurement's traffic. Enabled through a file descriptor, not the
//! `kernel.bpf_stats_enabled` sysctl, so they stop when the benchmark does.

use std::{collections::BTreeMap, os::fd::OwnedFd};

use aya::programs::{ProgramInfo, loaded_programs};

use crate::{
    bpf_loader,
    error::{Error, Result},
    nat::ebpf::{attach, pin_dir},
    netlink::Place,
};

/// Run-time statistics on while this lives.
#[derive(Debug)]
pub struct StatsEnabled(
    #[expect(
        dead_code,
        reason = "held for its effect: closing it disables the statistics"
    )]
    OwnedFd,
);

impl StatsEnabled {
    pub fn new() -> Result<Self> {
        aya::sys::enable_stats(aya::sys::Stats::RunTime)
            .map(Self)
            .map_err(|err| Error::ebpf("enabling eBPF run-time statistics", err))
    }
}

/// Run time (ns) and run count of each program attached by lab `lab_name`, by name.
pub type Snapshot = BTreeMap<String, (u64, u64)>;

/// The statistics of the programs behind the lab's pinned links, and of the one on its tc
/// block in `host` (the containers' program, counted once for all their veths).
pub fn snapshot(lab_name: &str, host: &Place) -> Result<Snapshot> {
    let links = pin_dir(lab_name).join("links");
    let mut ids = BTreeMap::<u32, String>::new();
    let entries = std::fs::read_dir(&links)
        .map_err(|err| Error::io(format!("listing {}", links.display()), err))?;
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let program = file.split('@').next().unwrap_or(&file).to_owned();
        ids.insert(bpf_loader::pinned_link_program(&entry.path())?, program);
    }
    ids.extend(attach::block_programs(lab_name, host)?);
    let mut stats = Snapshot::new();
    for info in loaded_programs().flatten() {
        if let Some(program) = ids.get(&info.id()) {
            let (time, count) = totals(&info);
            let entry = stats.entry(program.clone()).or_default();
            entry.0 += time;
            entry.1 += count;
        }
    }
    Ok(stats)
}

fn totals(info: &ProgramInfo) -> (u64, u64) {
    let nanos = u64::try_from(info.run_time().as_nanos()).unwrap_or(u64::MAX);
    (nanos, info.run_count())
}

/// Nanoseconds per run of each program between two snapshots, for the programs that ran.
pub fn per_packet(before: &Snapshot, after: &Snapshot) -> Vec<(String, f64)> {
    after
        .iter()
        .filter_map(|(program, &(time, count))| {
            let (time_before, count_before) = before.get(program).copied().unwrap_or_default();
            let runs = count.saturating_sub(count_before);
            (runs > 0).then(|| {
                (
                    program.clone(),
                    time.saturating_sub(time_before) as f64 / runs as f64,
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_time_over_runs_between_snapshots() {
        let before = Snapshot::from([("a".into(), (1_000, 10)), ("b".into(), (500, 5))]);
        let after = Snapshot::from([
            ("a".into(), (4_000, 20)),
            ("b".into(), (500, 5)),
            ("c".into(), (900, 3)),
        ]);
        let cost = per_packet(&before, &after);
        assert_eq!(cost, [("a".to_owned(), 300.0), ("c".to_owned(), 300.0)]);
    }
}
