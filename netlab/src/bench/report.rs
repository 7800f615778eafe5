//! The benchmark's output: a table for the terminal, JSON records, and an SVG with the plots
//! a person would rather look at.

use std::fmt::Write as _;

use super::Record;

const METRICS: [(&str, &str); 9] = [
    (
        "connections",
        "new TCP connections/s (connect, 32-byte request/response, close)",
    ),
    (
        "rr_p50",
        "request/response latency p50, µs (1 byte, established connection)",
    ),
    ("rr_p99", "request/response latency p99, µs"),
    ("bulk_tcp", "bulk TCP throughput, Gbit/s"),
    ("udp_pps", "64-byte UDP packets/s delivered"),
    ("publish", "time to publish N ports, ms"),
    ("unpublish", "time to unpublish N ports, ms"),
    ("lab_up", "time to bring a lab of N containers up, ms"),
    ("lab_down", "time to take a lab of N containers down, ms"),
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
    } else if value >= 1000.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// One table per metric: a row per configuration, a column per N, `median (min-max)`.
pub fn table(records: &[Record]) -> String {
    let mut out = String::new();
    for (metric, title) in METRICS {
        let sizes = sizes_of(records, metric);
        if sizes.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title}");
        let _ = write!(out, "{:<18}", "config \\ N");
        for n in &sizes {
            let _ = write!(out, "{n:>26}");
        }
        let _ = writeln!(out);
        for config in configs_of(records, metric) {
            let _ = write!(out, "{config:<18}");
            for n in &sizes {
                let cell = records
                    .iter()
                    .find(|r| r.metric == metric && r.config == config && r.ports == *n)
                    .map_or_else(String::new, |r| {
                        let min = r.runs.iter().copied().fold(f64::INFINITY, f64::min);
                        let max = r.runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        if r.runs.len() > 1 {
                            format!(
                                "{} ({}-{})",
                                format_value(r.value),
                                format_value(min),
                                format_value(max)
                            )
                        } else {
                            format_value(r.value)
                        }
                    });
                let _ = write!(out, "{cell:>26}");
            }
            let _ = writeln!(out);
        }
    }
    out
}

const COLORS: [&str; 7] = [
    "#444444", "#d62728", "#1f77b4", "#2ca02c", "#9ecae1", "#98df8a", "#ff7f0e",
];

fn color(index: usize) -> &'static str {
    COLORS[index % COLORS.len()]
}

/// How a chart's value axis is scaled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Axis {
    Linear,
    /// For values spanning orders of magnitude (publish times from 0.3 ms to seconds).
    Log,
}

/// A line chart of `metric` against N (log scale), one line per configuration.
fn line_chart(
    svg: &mut String,
    records: &[Record],
    metric: &str,
    title: &str,
    top: f64,
    axis: Axis,
) {
    let (left, width, height) = (80.0, 560.0, 220.0);
    let sizes = sizes_of(records, metric);
    let configs = configs_of(records, metric);
    let max = records
        .iter()
        .filter(|r| r.metric == metric)
        .map(|r| r.value)
        .fold(0.0, f64::max)
        * 1.1;
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="{}" font-size="15" font-weight="bold">{title}</text>"#,
        top + 18.0
    );
    let y0 = top + 30.0 + height;
    let _ = writeln!(
        svg,
        r##"<line x1="{left}" y1="{y0}" x2="{}" y2="{y0}" stroke="#000"/><line x1="{left}" y1="{}" x2="{left}" y2="{y0}" stroke="#000"/>"##,
        left + width,
        top + 30.0
    );
    let x_of = |n: u64| {
        let (lo, hi) = (
            sizes.first().copied().unwrap_or(1).max(1) as f64,
            sizes.last().copied().unwrap_or(1).max(1) as f64,
        );
        let span = (hi.log10() - lo.log10()).max(1e-9);
        left + 20.0 + (width - 40.0) * ((n.max(1) as f64).log10() - lo.log10()) / span
    };
    // Log axis: from the power of ten below the smallest value to the one above the largest.
    let min = records
        .iter()
        .filter(|r| r.metric == metric && r.value > 0.0)
        .map(|r| r.value)
        .fold(f64::INFINITY, f64::min);
    let (log_lo, log_hi) = (
        min.log10().floor(),
        max.log10().ceil().max(min.log10().floor() + 1.0),
    );
    let y_of = |v: f64| match axis {
        Axis::Linear => y0 - height * v / max.max(1e-9),
        Axis::Log => y0 - height * (v.max(1e-9).log10() - log_lo) / (log_hi - log_lo),
    };
    for n in &sizes {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="middle">{n}</text>"#,
            x_of(*n),
            y0 + 15.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-size="11" text-anchor="middle">published ports (log scale)</text>"#,
        left + width / 2.0,
        y0 + 30.0
    );
    let ticks: Vec<f64> = match axis {
        Axis::Linear => (0..=4).map(|i| max * f64::from(i) / 4.0).collect(),
        Axis::Log => (log_lo as i32..=log_hi as i32)
            .map(|e| 10f64.powi(e))
            .collect(),
    };
    for v in ticks {
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text><line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/>"##,
            left - 5.0,
            y_of(v) + 3.0,
            format_value(v),
            left + width,
            y = y_of(v)
        );
    }
    for (i, config) in configs.iter().enumerate() {
        let points: Vec<String> = sizes
            .iter()
            .filter_map(|n| {
                records
                    .iter()
                    .find(|r| r.metric == metric && r.config == *config && r.ports == *n)
            })
            .map(|r| format!("{:.1},{:.1}", x_of(r.ports), y_of(r.value)))
            .collect();
        series(svg, &points, color(i));
        legend(
            svg,
            left + width + 20.0,
            top + 40.0 + 18.0 * i as f64,
            color(i),
            config,
        );
    }
}

/// A polyline with a dot at each point (`"x,y"` strings).
fn series(svg: &mut String, points: &[String], color: &str) {
    let _ = writeln!(
        svg,
        r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
        points.join(" ")
    );
    for point in points {
        let (x, y) = point.split_once(',').unwrap_or(("0", "0"));
        let _ = writeln!(svg, r#"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"#);
    }
}

/// One legend entry: a colour square and a name.
fn legend(svg: &mut String, x: f64, y: f64, color: &str, name: &str) {
    let _ = writeln!(
        svg,
        r#"<rect x="{x}" y="{y}" width="12" height="12" fill="{color}"/><text x="{}" y="{}" font-size="12">{name}</text>"#,
        x + 18.0,
        y + 10.0
    );
}

/// Bars of `metric` at the smallest N, one per configuration.
fn bar_chart(svg: &mut String, records: &[Record], metric: &str, title: &str, top: f64) {
    let (left, width, height) = (80.0, 560.0, 180.0);
    let Some(n) = sizes_of(records, metric).first().copied() else {
        return;
    };
    let rows: Vec<&Record> = records
        .iter()
        .filter(|r| r.metric == metric && r.ports == n)
        .collect();
    let max = rows.iter().map(|r| r.value).fold(0.0, f64::max) * 1.15;
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="{}" font-size="15" font-weight="bold">{title} (N = {n})</text>"#,
        top + 18.0
    );
    let y0 = top + 30.0 + height;
    let bar = width / rows.len().max(1) as f64;
    let _ = writeln!(
        svg,
        r##"<line x1="{left}" y1="{y0}" x2="{}" y2="{y0}" stroke="#000"/>"##,
        left + width
    );
    for (i, record) in rows.iter().enumerate() {
        let h = height * record.value / max.max(1e-9);
        let x = left + bar * i as f64 + bar * 0.15;
        let _ = writeln!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{}"/>"#,
            y0 - h,
            bar * 0.7,
            color(i)
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
            x + bar * 0.35,
            y0 - h - 4.0,
            format_value(record.value)
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
            x + bar * 0.35,
            y0 + 15.0,
            record.config
        );
    }
}

/// The plots: connections/s against N; publish time against N; bulk TCP and UDP packet
/// rate as bars.
pub fn svg(records: &[Record]) -> String {
    let mut body = String::new();
    line_chart(
        &mut body,
        records,
        "connections",
        "New TCP connections per second vs published ports",
        10.0,
        Axis::Linear,
    );
    line_chart(
        &mut body,
        records,
        "publish",
        "Time to publish N ports (ms, log scale)",
        300.0,
        Axis::Log,
    );
    bar_chart(
        &mut body,
        records,
        "bulk_tcp",
        "Bulk TCP throughput (Gbit/s)",
        590.0,
    );
    bar_chart(
        &mut body,
        records,
        "udp_pps",
        "64-byte UDP packets per second delivered",
        830.0,
    );
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"1080\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n"
    )
}
