//! `netlab bench`: the NAT backends against each other and against no NAT at all, measured
//! in one run with the configurations interleaved, so that the drift of a noisy machine hits
//! them all alike.
#![expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "statistics and plot coordinates: counts far below 2^52 become floats, and percentile indices come back from floats"
)]

pub mod cni;
pub mod cpu_time;
pub mod every_port;
pub mod load;
pub mod prog_cost;
pub mod report;
pub mod scenario;
pub mod versus;

use std::{io::Write as _, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{error::Result, family::Family};

use self::scenario::{
    BenchLab, Config, LAB_TIMING_CONFIGS, PUBLISH_TIMING_CONFIGS, configs, configs6, first_port,
    lab_for, record_name,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub ports: Vec<u16>,
    pub runs: usize,
    /// How long each traffic metric runs per measurement.
    pub duration: Duration,
    /// Lab sizes for the up/down timing.
    pub lab_sizes: Vec<usize>,
    /// Port counts for the per-call iptables timing (it is slow: one process per rule).
    pub per_call_max: u16,
    /// The families measured: IPv4 runs every metric and the timings; IPv6 runs new
    /// connections/s, latency and UDP packets/s, on the configurations that carry it, in
    /// the same runs, interleaved with IPv4's (records `<config>-v6`).
    pub families: Vec<Family>,
}

impl Plan {
    pub fn full() -> Self {
        Self {
            ports: vec![1, 100, 1000, 10_000],
            runs: 3,
            duration: Duration::from_secs(2),
            lab_sizes: vec![10, 100],
            per_call_max: 1000,
            families: vec![Family::V4],
        }
    }

    /// Under two minutes: proves the benchmark works, says little about speed.
    pub fn quick() -> Self {
        Self {
            ports: vec![1, 100],
            runs: 3,
            duration: Duration::from_millis(250),
            lab_sizes: vec![10],
            per_call_max: 100,
            families: vec![Family::V4],
        }
    }
}

/// One measured quantity: the median of its runs, and the runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub config: String,
    pub metric: String,
    pub ports: u64,
    pub value: f64,
    pub unit: String,
    pub runs: Vec<f64>,
}

impl Record {
    /// The smallest and the largest of the runs.
    pub fn spread(&self) -> (f64, f64) {
        let min = self.runs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    }
}

const PUBLISH_METRICS: [&str; 2] = ["publish", "unpublish"];

/// Raw samples, grouped into records at the end.
#[derive(Debug, Default)]
struct Samples(Vec<(String, String, u64, &'static str, f64)>);

impl Samples {
    fn push(&mut self, config: &str, metric: &str, ports: u64, unit: &'static str, value: f64) {
        self.0
            .push((config.to_string(), metric.to_string(), ports, unit, value));
    }

    /// Two timings in milliseconds, e.g. publish then unpublish.
    fn push_timings(
        &mut self,
        config: &str,
        metrics: [&'static str; 2],
        n: u64,
        times: (Duration, Duration),
    ) {
        self.push(config, metrics[0], n, "ms", times.0.as_secs_f64() * 1e3);
        self.push(config, metrics[1], n, "ms", times.1.as_secs_f64() * 1e3);
    }

    /// The value last pushed for `config`, `metric` and `ports`.
    fn value(&self, config: &str, metric: &str, ports: u64) -> Option<f64> {
        self.0
            .iter()
            .rev()
            .find(|(c, m, n, ..)| c == config && m == metric && *n == ports)
            .map(|sample| sample.4)
    }

    fn records(&self) -> Vec<Record> {
        let mut records: Vec<Record> = Vec::new();
        for (config, metric, ports, unit, value) in &self.0 {
            match records
                .iter_mut()
                .find(|r| r.config == *config && r.metric == *metric && r.ports == *ports)
            {
                Some(record) => record.runs.push(*value),
                None => records.push(Record {
                    config: config.clone(),
                    metric: metric.clone(),
                    ports: *ports,
                    value: 0.0,
                    unit: (*unit).to_string(),
                    runs: vec![*value],
                }),
            }
        }
        for record in &mut records {
            record.value = median(&record.runs);
        }
        records
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]),
    }
}

/// A one-line progress bar on stderr.
struct Progress {
    done: usize,
    total: usize,
}

impl Progress {
    fn step(&mut self, what: &str) {
        self.done += 1;
        let width = 30;
        let filled = width * self.done / self.total.max(1);
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r[{}{}] {}/{} {what:<40}",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.done,
            self.total
        );
        let _ = err.flush();
        if self.done == self.total {
            let _ = writeln!(err);
        }
    }
}

/// Runs the plan; returns the records.
pub fn run(plan: &Plan) -> Result<Vec<Record>> {
    let ipv4 = plan.families.contains(&Family::V4);
    let configs = if ipv4 { configs() } else { Vec::new() };
    let configs6 = if plan.families.contains(&Family::V6) {
        configs6()
    } else {
        Vec::new()
    };
    let traffic_steps: usize = (0..plan.runs)
        .map(|run| {
            (configs.iter().filter(|c| run == 0 || c.every_run).count() + configs6.len())
                * plan.ports.len()
        })
        .sum();
    // The timings are IPv4's: an IPv6-only run has none.
    let (timed_ports, lab_sizes): (&[u16], &[usize]) = if ipv4 {
        (&plan.ports, &plan.lab_sizes)
    } else {
        (&[], &[])
    };
    let publish_steps = timed_ports.len() * PUBLISH_TIMING_CONFIGS.len()
        + timed_ports
            .iter()
            .filter(|n| **n <= plan.per_call_max)
            .count();
    let lab_steps = lab_sizes.len() * LAB_TIMING_CONFIGS.len();
    let mut progress = Progress {
        done: 0,
        total: traffic_steps + publish_steps + lab_steps * plan.runs,
    };
    let mut samples = Samples::default();
    let _stats = prog_cost::StatsEnabled::new()?;

    for run in 0..plan.runs {
        for &ports in &plan.ports {
            for config in configs.iter().filter(|c| run == 0 || c.every_run) {
                progress.step(&format!("run {} {} N={ports}", run + 1, config.name));
                measure_traffic(
                    *config,
                    ports,
                    plan.duration,
                    Traffic::All,
                    Family::V4,
                    &mut samples,
                )?;
            }
            for config in &configs6 {
                let name = record_name(*config, Family::V6);
                progress.step(&format!("run {} {name} N={ports}", run + 1));
                measure_traffic(
                    *config,
                    ports,
                    plan.duration,
                    Traffic::VersusRouted,
                    Family::V6,
                    &mut samples,
                )?;
            }
        }
        for &size in lab_sizes {
            for config in LAB_TIMING_CONFIGS.map(scenario::config) {
                progress.step(&format!("run {} lab of {size} ({})", run + 1, config.name));
                let (up, down) = scenario::lab_times(config, size)?;
                let name = if config.routed() { "none" } else { config.name };
                samples.push_timings(name, ["lab_up", "lab_down"], size as u64, (up, down));
            }
        }
    }
    for &ports in timed_ports {
        for config in PUBLISH_TIMING_CONFIGS.map(scenario::config) {
            progress.step(&format!("publish N={ports} ({})", config.name));
            for _ in 0..plan.runs {
                let name = scenario::publish_record_name(config);
                let times = scenario::publish_times(config, ports)?;
                samples.push_timings(name, PUBLISH_METRICS, u64::from(ports), times);
            }
        }
        if ports <= plan.per_call_max {
            progress.step(&format!("publish N={ports} (iptables per call)"));
            let times = scenario::iptables_per_call_times(ports)?;
            samples.push_timings(
                "iptables-per-call",
                PUBLISH_METRICS,
                u64::from(ports),
                times,
            );
        }
    }
    Ok(samples.records())
}

/// Which traffic metrics a measurement takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Traffic {
    /// Every one, and the eBPF programs' cost.
    All,
    /// New connections/s (2 clients), latency and UDP packets/s (read under two senders
    /// and under one, and reached the socket): the NAT-versus-routing comparison.
    VersusRouted,
    /// New connections/s (2 clients) only: every port published.
    Connections,
}

/// The traffic metrics through one fresh lab.
fn measure_traffic(
    config: Config,
    ports: u16,
    duration: Duration,
    traffic: Traffic,
    family: Family,
    samples: &mut Samples,
) -> Result<()> {
    let all = traffic == Traffic::All;
    let lab = BenchLab::up(config, lab_for(config, ports, family))?;
    let port = first_port(ports) + (ports - 1);
    let server = load::Server::start(&lab.ns("netns0"), port)?;
    let wan = lab.ns("wan");
    let target = lab.target(config, port, family);
    let name = record_name(config, family);
    let name = name.as_str();
    let n = u64::from(ports);
    let ebpf = all && config.backend == crate::nat::BackendKind::Ebpf;
    // Warm-up: caches, neighbour entries, conntrack, JIT'd code paths.
    load::connection_rate(&wan, target, 2, duration / 4)?;
    let programs_before = if ebpf {
        prog_cost::snapshot(
            &lab.name,
            &crate::netlink::Place::Netns(lab.ns(crate::lab::HOST_NODE)),
        )?
    } else {
        prog_cost::Snapshot::new()
    };
    let busy = cpu_time::BusyTime::now()?;
    let made =
        load::connection_rate(&wan, target, 2, duration)?.some_succeeded(config.name, target)?;
    let busy = busy.elapsed()?;
    samples.push(name, "connections", n, "conn/s", made.per_second);
    if made.done > 0 {
        samples.push(
            name,
            "connection_cpu",
            n,
            "us",
            busy.as_secs_f64() * 1e6 / made.done as f64,
        );
    }
    if traffic == Traffic::Connections {
        return Ok(());
    }
    if all {
        // Many at once, as Cilium's TCP_CRR runs: 32 client flows.
        let made = load::connection_rate(&wan, target, 32, duration)?;
        samples.push(name, "connections_32", n, "conn/s", made.per_second);
    }
    let rtts = load::request_response(&wan, target, duration)?;
    let pct = |p: f64| {
        rtts.get(((rtts.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    samples.push(name, "rr_p50", n, "us", pct(0.50));
    if all {
        samples.push(name, "rr_p99", n, "us", pct(0.99));
        samples.push(
            name,
            "bulk_tcp",
            n,
            "Gbit/s",
            load::bulk(&wan, target, duration)?,
        );
        samples.push(
            name,
            "bulk_tcp_down",
            n,
            "Gbit/s",
            load::download(&wan, target, duration)?,
        );
    }
    // Two senders on two cores: the receiver competes for CPU with them and with the
    // datapath, so what it reads and what reached its socket are both kept.
    let udp = load::udp_rate(&wan, target, &server, 2, duration)?;
    samples.push(name, "udp_pps", n, "pps", udp.received);
    samples.push(name, "udp_reached_pps", n, "pps", udp.reached);
    // One sender leaves the receiver a core of its own: what it reads is then what the
    // sender's core, which runs the datapath too, gets through, not the scheduler's share.
    let one = load::udp_rate(&wan, target, &server, 1, duration)?;
    samples.push(name, "udp_pps_1", n, "pps", one.received);
    if ebpf {
        let after = prog_cost::snapshot(
            &lab.name,
            &crate::netlink::Place::Netns(lab.ns(crate::lab::HOST_NODE)),
        )?;
        for (program, ns) in prog_cost::per_packet(&programs_before, &after) {
            samples.push(name, &report::program_metric(&program), n, "ns", ns);
        }
    }
    Ok(())
}

#[cfg(test)]
#[expect(clippy::float_cmp, reason = "medians of small integers are exact")]
mod tests {
    use super::{Samples, median};

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn samples_group_into_records_by_config_metric_and_ports() {
        let mut samples = Samples::default();
        for value in [10.0, 30.0, 20.0] {
            samples.push("ebpf-tc", "connections", 1, "conn/s", value);
        }
        samples.push("iptables", "connections", 1, "conn/s", 5.0);
        let records = samples.records();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].runs, [10.0, 30.0, 20.0]);
        assert_eq!(records[0].value, 20.0);
        assert_eq!(
            (records[1].config.as_str(), records[1].value),
            ("iptables", 5.0)
        );
        let table = super::report::table(&records);
        assert!(table.contains("20.0 (10.0-30.0)"), "{table}");
        assert!(
            super::report::svg(&records)
                .expect("plots")
                .contains("<polyline")
        );
    }
}
