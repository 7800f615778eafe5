//! `netlab bench [--quick] [--family 4|6|both] [--versus-routed | --cni | --every-port]
//! [--json FILE] [--svg FILE]`.

use std::{path::PathBuf, process::ExitCode};

use crate::{
    bench::{self, Plan},
    error::{Context as _, Error, Result},
    family::Family,
};

#[derive(Debug, clap::Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "clap flags: --quick, and the modes --versus-routed, --cni and --every-port"
)]
pub struct Args {
    /// A run under two minutes that checks the benchmark works (its numbers mean little).
    #[arg(long)]
    pub quick: bool,
    /// Write one JSON record per measurement here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the plots here (SVG).
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Published port counts to measure (default 1,100,1000,10000; quick: 1,100).
    #[arg(long, value_delimiter = ',')]
    pub ports: Option<Vec<u16>>,
    /// Repetitions (at least 3 for a median and a spread).
    #[arg(long)]
    pub runs: Option<usize>,
    /// Seconds per traffic metric and measurement.
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Only NAT (ebpf-tc, fast path) against routing without NAT, in interleaved rounds at
    /// N=1 and 10,000: the median ratio and its spread for connections/s, latency and UDP
    /// packets/s.
    #[arg(long)]
    pub versus_routed: bool,
    /// Only the CNI plugins: netlab-cni against the reference portmap (iptables), driven as a
    /// runtime drives them, for a container publishing N ports (default 1,100,1000; quick:
    /// 1,10): ADD and DEL times, connections/s and latency.
    #[arg(long, conflicts_with = "versus_routed")]
    pub cni: bool,
    /// Only every port: 1-65535 published for TCP and UDP on each way of writing ports
    /// (iptables-restore, nft-rules, nft-map, eBPF): the time to publish and unpublish them,
    /// connections/s to the last one against N=1, and the eBPF maps' memory.
    #[arg(long, conflicts_with_all = ["versus_routed", "cni", "ports"])]
    pub every_port: bool,
    /// Address family of the traffic: `4` (every metric), `6` (new connections/s, latency
    /// and UDP packets/s on dual-stack labs, for every configuration of every run: records
    /// `<config>-v6`), or `both`, interleaved in one run so that they compare.
    #[arg(long, value_enum, default_value = "4", conflicts_with_all = ["versus_routed", "cni", "every_port"])]
    pub family: BenchFamily,
    /// Rounds of --versus-routed (at least 10 for the record; quick: 3).
    #[arg(long, requires = "versus_routed")]
    pub rounds: Option<usize>,
    /// Measure nothing: redraw the table (and --svg) from a previous run's --json output.
    #[arg(long, value_name = "FILE")]
    pub from_json: Option<PathBuf>,
}

/// `--family`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchFamily {
    #[value(name = "4")]
    V4,
    #[value(name = "6")]
    V6,
    Both,
}

impl BenchFamily {
    fn families(self) -> Vec<Family> {
        match self {
            Self::V4 => vec![Family::V4],
            Self::V6 => vec![Family::V6],
            Self::Both => vec![Family::V4, Family::V6],
        }
    }
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let mut plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    if let Some(ports) = &args.ports {
        if ports
            .iter()
            .any(|n| *n == 0 || u32::from(*n) + u32::from(bench::scenario::BASE_PORT) > 65_535)
        {
            return Err(Error::invalid(format!(
                "--ports: each count must be 1-{}",
                65_535 - u32::from(bench::scenario::BASE_PORT) + 1
            )));
        }
        plan.ports.clone_from(ports);
    }
    if let Some(runs) = args.runs {
        plan.runs = runs.max(1);
    }
    plan.families = args.family.families();
    if let Some(seconds) = args.seconds {
        if !(0.05..=60.0).contains(&seconds) {
            return Err(Error::invalid("--seconds must be between 0.05 and 60"));
        }
        plan.duration = std::time::Duration::from_secs_f64(seconds);
    }
    let records = match &args.from_json {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).op(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).map_err(|err| {
                Error::json(format!("{} is not netlab bench JSON", path.display()), err)
            })?
        }
        None if args.versus_routed => {
            let mut versus = if args.quick {
                bench::versus::Plan::quick()
            } else {
                bench::versus::Plan::full()
            };
            if let Some(ports) = &args.ports {
                versus.ports.clone_from(ports);
            }
            if let Some(rounds) = args.rounds {
                versus.rounds = rounds.max(1);
            }
            versus.duration = plan.duration;
            bench::versus::run(&versus)?
        }
        None if args.every_port => {
            let mut every = if args.quick {
                bench::every_port::Plan::quick()
            } else {
                bench::every_port::Plan::full()
            };
            if let Some(runs) = args.runs {
                every.runs = runs.max(1);
            }
            every.duration = plan.duration;
            bench::every_port::run(&every)?
        }
        None if args.cni => {
            let mut cni = if args.quick {
                bench::cni::Plan::quick()
            } else {
                bench::cni::Plan::full()
            };
            if let Some(ports) = &args.ports {
                cni.ports.clone_from(ports);
            }
            cni.runs = plan.runs;
            cni.duration = plan.duration;
            bench::cni::run(&cni)?
        }
        None => bench::run(&plan)?,
    };
    print!("{}", bench::report::table(&records));
    if records.iter().any(|r| r.config == bench::versus::RATIO) {
        print!("{}", bench::versus::verdicts(&records));
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&records)
            .map_err(|err| Error::json("serializing JSON", err))?;
        std::fs::write(path, text).op(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, bench::report::svg(&records)?)
            .op(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
