//! `netlab bench --every-port`: every host port published, 1-65535 for TCP and for UDP
//! (131,070 entries), on each way of writing ports. For each: the time to publish and
//! unpublish them all, and new connections/s to the last port against N=1, measured in turn
//! in the same run; for eBPF, the kernel memory of the published ports' maps.

use std::time::{Duration, Instant};

use super::{
    Progress, Record, Samples, Traffic, measure_traffic,
    scenario::{self, BenchLab, Config, PUBLISH_TIMING_CONFIGS},
};
use crate::{
    error::Result,
    family::Family,
    lab::Lab,
    lifecycle,
    ports::{PortRange, PortSpec, Proto},
};

/// Every port there is.
pub const EVERY_PORT: u16 = u16::MAX;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub runs: usize,
    pub duration: Duration,
}

impl Plan {
    pub fn full() -> Self {
        Self {
            runs: 3,
            duration: Duration::from_secs(2),
        }
    }

    pub fn quick() -> Self {
        Self {
            runs: 1,
            duration: Duration::from_millis(250),
        }
    }
}

pub fn run(plan: &Plan) -> Result<Vec<Record>> {
    let configs = PUBLISH_TIMING_CONFIGS.map(scenario::config);
    let mut samples = Samples::default();
    let mut progress = Progress {
        done: 0,
        total: plan.runs * configs.len() * 3 + 1,
    };
    for run in 0..plan.runs {
        for config in configs {
            for ports in [1, EVERY_PORT] {
                progress.step(&format!("run {} {} N={ports}", run + 1, config.name));
                measure_traffic(
                    config,
                    ports,
                    plan.duration,
                    Traffic::Connections,
                    Family::V4,
                    &mut samples,
                )?;
            }
            progress.step(&format!("run {} {} publish all", run + 1, config.name));
            let name = scenario::publish_record_name(config);
            samples.push_timings(
                name,
                ["publish_every", "unpublish_every"],
                u64::from(EVERY_PORT),
                publish_times(config)?,
            );
        }
    }
    progress.step("eBPF map memory");
    for ports in [1, EVERY_PORT] {
        let mib = ebpf_map_memory(ports)? as f64 / f64::from(1u32 << 20);
        samples.push("ebpf", "map_memory", u64::from(ports), "MiB", mib);
    }
    Ok(samples.records())
}

/// Ports 1-65535 of `proto`, each to the same container port.
fn every_port(proto: Proto) -> PortSpec {
    let all = PortRange {
        start: 1,
        end: EVERY_PORT,
    };
    PortSpec {
        host_ip: None,
        host: all,
        container: all,
        proto,
    }
}

/// Time to publish every TCP and UDP port in one command, then to unpublish them.
fn publish_times(config: Config) -> Result<(Duration, Duration)> {
    let lab = Lab {
        publish: Vec::new(),
        ..scenario::lab_for(config, 1, Family::V4)
    };
    let bench_lab = BenchLab::up(config, lab)?;
    let specs = [every_port(Proto::Tcp), every_port(Proto::Udp)];
    let start = Instant::now();
    lifecycle::publish(&bench_lab.name, "netns0", &specs)?;
    let published = start.elapsed();
    let start = Instant::now();
    lifecycle::unpublish(&bench_lab.name, "netns0", &specs)?;
    Ok((published, start.elapsed()))
}

/// Bytes the eBPF published-port maps take with `ports` TCP and UDP ports published.
fn ebpf_map_memory(ports: u16) -> Result<u64> {
    let config = scenario::config("ebpf-tc");
    let bench_lab = BenchLab::up(config, scenario::lab_for(config, ports, Family::V4))?;
    crate::nat::ebpf::tables::Tables::open(&bench_lab.name)?.publish_memory()
}
