//! `netlab soak [--minutes M | --seconds S] [--backend B] [--json FILE]`.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use crate::{
    error::{Context as _, Error, Result},
    nat::BackendKind,
    soak::{self, Report},
    text_table::{self, Column, Destination},
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long to run, in minutes.
    #[arg(long, conflicts_with = "seconds", default_value_t = 10.0)]
    pub minutes: f64,
    /// How long to run, in seconds (instead of --minutes).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// NAT backend of the soak's lab.
    #[arg(long, value_enum, default_value_t = BackendKind::Ebpf)]
    pub backend: BackendKind,
    /// Write the report here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(lab_name: &str, args: &Args) -> Result<ExitCode> {
    let seconds = args.seconds.unwrap_or(args.minutes * 60.0);
    if !(1.0..=86_400.0).contains(&seconds) {
        return Err(Error::invalid(format!(
            "a soak of {seconds} s: give 1 s to 24 h"
        )));
    }
    let report = soak::run(lab_name, args.backend, Duration::from_secs_f64(seconds))?;
    print(&report);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|err| Error::json("serializing the soak report", err))?;
        std::fs::write(path, text).op(|| format!("writing {}", path.display()))?;
    }
    if report.failures() > 0 || report.churn_errors > 0 {
        return Err(Error::invalid(format!(
            "the soak saw {} failed requests and {} failed publish/unpublish commands",
            report.failures(),
            report.churn_errors
        )));
    }
    Ok(ExitCode::SUCCESS)
}

fn print(report: &Report) {
    println!(
        "soak: {} backend, {:.0} s, {} publish/unpublish cycles of other ports ({} failed)",
        report.backend, report.seconds, report.churn_cycles, report.churn_errors
    );
    let mut paths = text_table::new(
        &[
            Column::text("path"),
            Column::number("requests"),
            Column::number("failed"),
        ],
        Destination::Stdout,
    );
    for path in &report.paths {
        paths.add_row([
            path.path.to_owned(),
            path.requests.to_string(),
            path.failures.to_string(),
        ]);
    }
    println!("{}", text_table::render(&paths));
    let thirds = report
        .samples
        .chunks(report.samples.len().div_ceil(3).max(1));
    let mut over_time = text_table::new(
        &[
            Column::text("seconds"),
            Column::number("conntrack max"),
            Column::number("loader RSS KiB max"),
            Column::number("loader fds max"),
        ],
        Destination::Stdout,
    );
    for third in thirds {
        let (Some(first), Some(last)) = (third.first(), third.last()) else {
            continue;
        };
        over_time.add_row([
            format!("{}-{}", first.second, last.second),
            third
                .iter()
                .map(|s| s.conntrack)
                .max()
                .unwrap_or(0)
                .to_string(),
            third
                .iter()
                .map(|s| s.loader_rss_kib)
                .max()
                .unwrap_or(0)
                .to_string(),
            third
                .iter()
                .map(|s| s.loader_fds)
                .max()
                .unwrap_or(0)
                .to_string(),
        ]);
    }
    println!("\n{}", text_table::render(&over_time));
}
