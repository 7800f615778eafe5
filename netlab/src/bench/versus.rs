//! `netlab bench --versus-routed`: is NAT through the eBPF fast path faster than no NAT at
//! all? Routing (`routed`) and `ebpf-tc` are measured in turn, round after round, each round
//! in fresh labs at N=1 and N=10,000 published ports, and each round's ratio is recorded: the
//! median of ten or more ratios, with their spread, says more on a noisy machine than any
//! one pair of runs.

use std::{fmt::Write as _, time::Duration};

use super::{Progress, Record, Samples, Traffic, measure_traffic, scenario};
use crate::error::Result;

/// The row the ratios are recorded under.
pub const RATIO: &str = "ebpf-tc ÷ routed";

/// What the comparison measures, and the target NAT's ratio to routing has on it.
const METRICS: [(&str, Target); 6] = [
    ("connections", Target::AtLeast(1.05)),
    ("connection_cpu", Target::None),
    ("rr_p50", Target::AtMost(0.95)),
    ("udp_pps", Target::AtLeast(1.05)),
    ("udp_reached_pps", Target::AtLeast(1.05)),
    ("udp_pps_1", Target::AtLeast(1.05)),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    AtLeast(f64),
    AtMost(f64),
    /// Shown, not judged: the CPU a connection cost explains the connection rate's verdict.
    None,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub rounds: usize,
    pub ports: Vec<u16>,
    pub duration: Duration,
}

impl Plan {
    pub fn full() -> Self {
        Self {
            rounds: 10,
            ports: vec![1, 10_000],
            duration: Duration::from_secs(2),
        }
    }

    pub fn quick() -> Self {
        Self {
            rounds: 3,
            ports: vec![1, 100],
            duration: Duration::from_millis(250),
        }
    }
}

/// Runs the rounds; returns the records of both configurations and of their ratio.
pub fn run(plan: &Plan) -> Result<Vec<Record>> {
    let configs = [scenario::config("routed"), scenario::config("ebpf-tc")];
    let mut samples = Samples::default();
    let mut progress = Progress {
        done: 0,
        total: plan.rounds * plan.ports.len(),
    };
    for round in 0..plan.rounds {
        for &ports in &plan.ports {
            progress.step(&format!("round {} N={ports}", round + 1));
            let mut this_round = Samples::default();
            // Which goes first alternates, so neither always runs on a machine the other
            // just warmed.
            let order: Vec<_> = if round % 2 == 0 {
                configs.to_vec()
            } else {
                configs.iter().rev().copied().collect()
            };
            for config in order {
                measure_traffic(
                    config,
                    ports,
                    plan.duration,
                    Traffic::VersusRouted,
                    crate::family::Family::V4,
                    &mut this_round,
                )?;
            }
            let n = u64::from(ports);
            let ratios: Vec<(&str, f64)> = METRICS
                .iter()
                .filter_map(|(metric, _)| {
                    let value = |config| this_round.value(config, metric, n);
                    Some((*metric, value("ebpf-tc")? / value("routed")?))
                })
                .collect();
            samples.0.append(&mut this_round.0);
            for (metric, ratio) in ratios {
                samples.push(RATIO, metric, n, "ratio", ratio);
            }
        }
    }
    Ok(samples.records())
}

/// The verdicts on the targets: NAT ahead by 5 % on connections/s and UDP packets/s (median
/// ratio ≥ 1.05), its p50 latency at most 0.95× routing's. The CPU a connection cost the
/// machine is shown beside them, unjudged. UDP has three verdicts: what the
/// server reads under two senders (the CPU left to it on two cores shared with them, so it
/// swings most), what reached its socket under that load, and what it reads under one.
pub fn verdicts(records: &[Record]) -> String {
    let mut out =
        String::from("\nNAT (ebpf-tc, fast path) versus routing, median of per-round ratios:\n");
    for record in records.iter().filter(|r| r.config == RATIO) {
        let Some((_, target)) = METRICS.iter().find(|(m, _)| *m == record.metric) else {
            continue;
        };
        let verdict = |met: bool| if met { "met" } else { "missed" };
        let verdict = match *target {
            Target::AtLeast(bar) => format!("target ≥ {bar}: {}", verdict(record.value >= bar)),
            Target::AtMost(bar) => format!("target ≤ {bar}: {}", verdict(record.value <= bar)),
            Target::None => "no target (lower: NAT cost the machine less)".to_owned(),
        };
        let (min, max) = record.spread();
        let _ = writeln!(
            out,
            "  {:<15} N={:<6} {:.3} (spread {:.3}-{:.3} over {} rounds), {verdict}",
            record.metric,
            record.ports,
            record.value,
            min,
            max,
            record.runs.len(),
        );
    }
    out
}
