//! The benchmark's output: a table for the terminal, JSON records, and an SVG with the plots
//! a person would rather look at.

use std::fmt::Write as _;

use plotters::{
    coord::{
        Shift,
        combinators::LogCoord,
        ranged1d::{Ranged, ValueFormatter},
    },
    prelude::*,
    style::text_anchor::{HPos, Pos, VPos},
};

use super::Record;
use crate::error::{Error, Result};
use crate::text_table::{self, Column, Destination};

const METRICS: [(&str, &str); 21] = [
    (
        "connections",
        "new TCP connections/s (connect, 32-byte request/response, close)",
    ),
    (
        "connection_cpu",
        "CPU time per new TCP connection, µs, whole machine (the 2 clients' connections above)",
    ),
    (
        "connections_32",
        "new TCP connections/s with 32 concurrent client flows (TCP_CRR-like)",
    ),
    (
        "rr_p50",
        "request/response latency p50, µs (1 byte, established connection)",
    ),
    ("rr_p99", "request/response latency p99, µs"),
    ("bulk_tcp", "bulk TCP upload (client → container), Gbit/s"),
    (
        "bulk_tcp_down",
        "bulk TCP download (container → client), Gbit/s",
    ),
    (
        "udp_pps",
        "64-byte UDP packets/s the server read, two senders flat out",
    ),
    (
        "udp_reached_pps",
        "64-byte UDP packets/s that reached the server's socket under that load (read, or dropped by its full buffer)",
    ),
    (
        "udp_pps_1",
        "64-byte UDP packets/s the server read, one sender flat out",
    ),
    ("publish", "time to publish N ports, ms"),
    ("unpublish", "time to unpublish N ports, ms"),
    (
        "publish_every",
        "time to publish every port, 1-65535 TCP and UDP (131,070 entries), ms",
    ),
    ("unpublish_every", "time to unpublish every port, ms"),
    (
        "map_memory",
        "eBPF: kernel memory of the published ports' map and counters with N ports, MiB",
    ),
    ("lab_up", "time to bring a lab of N containers up, ms"),
    ("lab_down", "time to take a lab of N containers down, ms"),
    (
        "cni_add",
        "CNI: the port plugin's ADD for a container publishing N ports, ms",
    ),
    (
        "cni_add_next",
        "CNI: ADD of a second container (one port) after one with N ports, ms",
    ),
    (
        "cni_del",
        "CNI: DEL of the container with N ports (another one stays), ms",
    ),
    (
        "cni_del_last",
        "CNI: DEL of the last container (netlab-cni unpins its datapath), ms",
    ),
];

fn configs_of<'a>(records: &'a [Record], metric: &str) -> Vec<&'a str> {
    let mut configs: Vec<&str> = Vec::new();
    for record in records.iter().filter(|r| r.metric == metric) {
        if !configs.contains(&record.config.as_str()) {
            configs.push(&record.config);
        }
    }
    configs
}

fn sizes_of(records: &[Record], metric: &str) -> Vec<u64> {
    let mut sizes: Vec<u64> = records
        .iter()
        .filter(|r| r.metric == metric)
        .map(|r| r.ports)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "-".to_string()
    } else if value == 0.0 {
        "0".to_string()
    } else if value >= 1000.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// What a program's per-packet cost is recorded as: `ns <program>`.
pub fn program_metric(program: &str) -> String {
    format!("ns {program}")
}

/// Every metric of `records` with its title: the fixed ones, then each eBPF program's cost.
fn metrics_of(records: &[Record]) -> Vec<(String, String)> {
    let mut metrics: Vec<(String, String)> = METRICS
        .iter()
        .map(|(metric, title)| ((*metric).to_owned(), (*title).to_owned()))
        .collect();
    let mut programs: Vec<&str> = records
        .iter()
        .filter_map(|r| r.metric.strip_prefix("ns "))
        .collect();
    programs.sort_unstable();
    programs.dedup();
    metrics.extend(programs.into_iter().map(|program| {
        (
            program_metric(program),
            format!("{program}: ns per run (bpf_stats over each measurement's traffic)"),
        )
    }));
    metrics
}

/// One table per metric: a row per configuration, a column per N, `median (min-max)`.
pub fn table(records: &[Record]) -> String {
    let mut out = String::new();
    for (metric, title) in metrics_of(records) {
        let (metric, title) = (metric.as_str(), title.as_str());
        let sizes = sizes_of(records, metric);
        if sizes.is_empty() {
            continue;
        }
        let columns: Vec<Column> = std::iter::once(Column::text("config \\ N"))
            .chain(sizes.iter().map(|n| Column::number(n.to_string())))
            .collect();
        let mut table = text_table::new(&columns, Destination::Stdout);
        for config in configs_of(records, metric) {
            let cells = sizes.iter().map(|n| {
                records
                    .iter()
                    .find(|r| r.metric == metric && r.config == config && r.ports == *n)
                    .map_or_else(String::new, cell)
            });
            table.add_row(std::iter::once(config.to_owned()).chain(cells));
        }
        let _ = write!(out, "\n{title}\n{}\n", text_table::render(&table));
    }
    out
}

/// `median (min-max)` of a record's runs, or the median alone for one run.
fn cell(record: &Record) -> String {
    let (min, max) = record.spread();
    if record.runs.len() > 1 {
        format!(
            "{} ({}-{})",
            format_value(record.value),
            format_value(min),
            format_value(max)
        )
    } else {
        format_value(record.value)
    }
}

/// One colour per configuration, in the order of the records.
const COLORS: [RGBColor; 9] = [
    RGBColor(0x44, 0x44, 0x44),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x9e, 0xca, 0xe1),
    RGBColor(0x98, 0xdf, 0x8a),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xc5, 0xb0, 0xd5),
];

fn color(index: usize) -> RGBColor {
    COLORS[index % COLORS.len()]
}

/// How a chart's value axis is scaled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Axis {
    Linear,
    /// For values spanning orders of magnitude (publish times from 0.3 ms to seconds).
    Log,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = std::result::Result<(), Box<dyn std::error::Error + 'static>>;

/// A line chart of `metric` against N (log scale), one line per configuration.
fn line_chart(
    area: &Area<'_>,
    records: &[Record],
    metric: &str,
    title: &str,
    axis: Axis,
    legend: SeriesLabelPosition,
) -> DrawResult {
    let sizes = sizes_of(records, metric);
    let (Some(&first), Some(&last)) = (sizes.first(), sizes.last()) else {
        return Ok(());
    };
    let values = || {
        records
            .iter()
            .filter(|r| r.metric == metric)
            .map(|r| r.value)
    };
    let max = values().fold(0.0, f64::max) * 1.1;
    // A log axis runs from the power of ten below the smallest value to the one above the largest.
    let min = values().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let x_range = (first.max(1) as f64..last.max(1) as f64 * 1.5).log_scale();
    let mut chart = ChartBuilder::on(area);
    chart
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .margin_right(20)
        .x_label_area_size(40)
        .y_label_area_size(60);
    let configs = configs_of(records, metric);
    let points = |config: &str| -> Vec<(f64, f64)> {
        sizes
            .iter()
            .filter_map(|n| {
                records
                    .iter()
                    .find(|r| r.metric == metric && r.config == config && r.ports == *n)
            })
            .map(|r| (r.ports.max(1) as f64, r.value))
            .collect()
    };
    let lines: Vec<(&str, Vec<(f64, f64)>)> = configs.iter().map(|c| (*c, points(c))).collect();
    match axis {
        Axis::Linear => draw_lines(
            chart.build_cartesian_2d(x_range, 0.0..max.max(1e-9))?,
            &lines,
            legend,
        ),
        Axis::Log => {
            let lo = 10f64.powf(min.log10().floor());
            let hi = 10f64.powf(max.log10().ceil().max(min.log10().floor() + 1.0));
            draw_lines(
                chart.build_cartesian_2d(x_range, (lo..hi).log_scale())?,
                &lines,
                legend,
            )
        }
    }
}

/// The mesh, one line with dots per configuration, and the legend where it hides no line.
fn draw_lines<'a, Y: Ranged<ValueType = f64> + ValueFormatter<f64>>(
    mut chart: ChartContext<'a, SVGBackend<'a>, Cartesian2d<LogCoord<f64>, Y>>,
    lines: &[(&str, Vec<(f64, f64)>)],
    legend: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_mesh()
        .x_desc("published ports (log scale)")
        .x_label_formatter(&|n| format!("{n:.0}"))
        .y_label_formatter(&|v| format_value(*v))
        .light_line_style(WHITE)
        .draw()?;
    for (i, (config, line)) in lines.iter().enumerate() {
        let style = color(i);
        chart.draw_series(line.iter().map(|p| Circle::new(*p, 3, style.filled())))?;
        chart
            .draw_series(LineSeries::new(line.iter().copied(), style.stroke_width(2)))?
            .label(*config)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], style.filled()));
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

/// Bars of `metric` at the smallest N, one per configuration.
fn bar_chart(area: &Area<'_>, records: &[Record], metric: &str, title: &str) -> DrawResult {
    let Some(n) = sizes_of(records, metric).first().copied() else {
        return Ok(());
    };
    let rows: Vec<&Record> = records
        .iter()
        .filter(|r| r.metric == metric && r.ports == n)
        .collect();
    let max = rows.iter().map(|r| r.value).fold(0.0, f64::max) * 1.15;
    let count = i32::try_from(rows.len()).unwrap_or(i32::MAX);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{title} (N = {n})"), ("sans-serif", 16))
        .margin(10)
        .margin_right(20)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d((0..count - 1).into_segmented(), 0.0..max.max(1e-9))?;
    let name = |segment: &SegmentValue<i32>| match segment {
        SegmentValue::CenterOf(i) => usize::try_from(*i)
            .ok()
            .and_then(|i| rows.get(i))
            .map_or_else(String::new, |r| r.config.clone()),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_labels(rows.len())
        .x_label_formatter(&name)
        .y_label_formatter(&|v| format_value(*v))
        .draw()?;
    for (i, record) in (0..count).zip(&rows) {
        let style = color(usize::try_from(i).unwrap_or(0));
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), record.value),
            ],
            style.filled(),
        );
        bar.set_margin(0, 0, 12, 12);
        chart.draw_series(std::iter::once(bar))?;
        chart.draw_series(std::iter::once(Text::new(
            format_value(record.value),
            (SegmentValue::CenterOf(i), record.value),
            TextStyle::from(("sans-serif", 11).into_font())
                .pos(Pos::new(HPos::Center, VPos::Bottom)),
        )))?;
    }
    Ok(())
}

/// The plots: connections/s (one client flow at a time and 32) and publish time against N;
/// bulk TCP both ways and UDP packet rate as bars.
pub fn svg(records: &[Record]) -> Result<String> {
    let mut out = String::new();
    draw_all(&mut out, records).map_err(|err| Error::Drawing {
        what: "the benchmark's plots",
        message: err.to_string(),
    })?;
    Ok(out)
}

fn draw_all(out: &mut String, records: &[Record]) -> DrawResult {
    let root = SVGBackend::with_string(out, (800, 1620)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((6, 1));
    line_chart(
        &areas[0],
        records,
        "connections",
        "New TCP connections per second vs published ports",
        Axis::Linear,
        // Lines run high, and iptables falls only on the right.
        SeriesLabelPosition::LowerLeft,
    )?;
    line_chart(
        &areas[1],
        records,
        "publish",
        "Time to publish N ports (ms, log scale)",
        Axis::Log,
        // Publishing one port is fast on every backend.
        SeriesLabelPosition::UpperLeft,
    )?;
    line_chart(
        &areas[2],
        records,
        "connections_32",
        "New TCP connections per second, 32 concurrent clients",
        Axis::Linear,
        SeriesLabelPosition::LowerLeft,
    )?;
    bar_chart(
        &areas[3],
        records,
        "bulk_tcp",
        "Bulk TCP upload, client to container (Gbit/s)",
    )?;
    bar_chart(
        &areas[4],
        records,
        "bulk_tcp_down",
        "Bulk TCP download, container to client (Gbit/s)",
    )?;
    bar_chart(
        &areas[5],
        records,
        "udp_pps",
        "64-byte UDP packets per second read, two senders",
    )?;
    root.present()?;
    Ok(())
}
