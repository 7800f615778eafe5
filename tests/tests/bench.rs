//! `netlab bench --quick` works end to end: every configuration and metric produces records
//! with their runs (and the eBPF programs' cost per run), and the JSON and SVG outputs are
//! written; `--versus-routed` records one ratio per round; `--cni` measures both CNI
//! plugins; `--family 6` measures IPv6 on the backends that carry it. The numbers
//! themselves are not asserted (speed is shown by the benchmark, not by tests).

use std::process::Command;

use netlab_e2e::{netlab_bin, unique};
use serde_json::Value;

/// Runs `netlab bench ARGS --json FILE` (and `--svg FILE` with `svg`); returns what it
/// printed, its records, and the SVG.
fn bench(args: &[&str], svg: bool) -> (String, Vec<Value>, Option<String>) {
    let dir = std::env::temp_dir();
    let json = dir.join(format!("{}.json", unique("bj")));
    let svg = svg.then(|| dir.join(format!("{}.svg", unique("bs"))));
    let mut command = Command::new(netlab_bin());
    command.arg("bench").args(args).arg("--json").arg(&json);
    if let Some(svg) = &svg {
        command.arg("--svg").arg(svg);
    }
    let out = command.output().expect("running netlab bench");
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON written"))
            .expect("valid JSON");
    let _ = std::fs::remove_file(&json);
    let svg_text = svg.map(|svg| {
        let text = std::fs::read_to_string(&svg).expect("SVG written");
        let _ = std::fs::remove_file(&svg);
        text
    });
    let records = records.as_array().expect("records").clone();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        records,
        svg_text,
    )
}

#[test]
fn quick_bench_produces_every_record() {
    // One port count: the records' shape is the same at every N, and a second one doubled
    // the longest test of the suites.
    let (table, records, svg_text) = bench(&["--quick", "--ports", "1"], true);
    assert!(table.contains("new TCP connections/s"), "{table}");
    let svg_text = svg_text.unwrap_or_default();
    let find = |config: &str, metric: &str, ports: u64| {
        records
            .iter()
            .find(|r| r["config"] == config && r["metric"] == metric && r["ports"] == ports)
            .unwrap_or_else(|| panic!("no record {config} {metric} N={ports}"))
    };
    for config in [
        "routed",
        "iptables",
        "nft-rules",
        "nft-map",
        "ebpf-tc",
        "ebpf-xdp",
    ] {
        for metric in [
            "connections",
            "connection_cpu",
            "connections_32",
            "rr_p50",
            "rr_p99",
            "bulk_tcp",
            "bulk_tcp_down",
            "udp_pps",
            "udp_reached_pps",
            "udp_pps_1",
        ] {
            let record = find(config, metric, 1);
            assert_eq!(record["runs"].as_array().map(Vec::len), Some(3), "{record}");
            assert!(
                record["value"].as_f64().is_some_and(|v| v > 0.0),
                "{record}"
            );
            assert!(record["unit"].is_string());
        }
    }
    for config in ["ebpf-tc-slow", "ebpf-xdp-slow"] {
        assert_eq!(
            find(config, "connections", 1)["runs"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
    }
    for config in [
        "ebpf",
        "iptables-restore",
        "iptables-per-call",
        "nft-rules",
        "nft-map",
    ] {
        find(config, "publish", 1);
        find(config, "unpublish", 1);
    }
    find("ebpf-tc", "lab_up", 10);
    programs_are_costed(&records);
    find("nft-map", "lab_up", 10);
    assert!(
        svg_text.starts_with("<svg") && svg_text.contains("polyline"),
        "an SVG with lines"
    );
}

/// The eBPF programs' cost per run, from the kernel's statistics: a few ns to a few µs, for
/// the eBPF configurations only.
fn programs_are_costed(records: &[Value]) {
    let find = |config: &str, metric: &str| {
        records
            .iter()
            .find(|r| r["config"] == config && r["metric"] == metric && r["ports"] == 1)
            .unwrap_or_else(|| panic!("no record {config} {metric}"))
    };
    for (config, program) in [
        ("ebpf-tc", "netlab_nat_ext_ingress"),
        ("ebpf-tc", "netlab_nat_ctr_ingress"),
        ("ebpf-tc", "netlab_nat_ext_egress"),
        ("ebpf-xdp", "netlab_nat_ext_xdp"),
    ] {
        let cost = find(config, &format!("ns {program}"))["value"]
            .as_f64()
            .expect("a number");
        assert!(
            (5.0..20_000.0).contains(&cost),
            "{config} {program}: {cost} ns"
        );
    }
    assert!(
        !records.iter().any(|r| r["config"] == "iptables"
            && r["metric"].as_str().is_some_and(|m| m.starts_with("ns "))),
        "no eBPF program cost for iptables"
    );
}

/// The metrics of the NAT-versus-routing comparison, which `--family 6` takes too.
const COMPARISON_METRICS: [&str; 6] = [
    "connections",
    "connection_cpu",
    "rr_p50",
    "udp_pps",
    "udp_reached_pps",
    "udp_pps_1",
];

/// `bench --versus-routed --quick`: routed and ebpf-tc measured in turn, and one ratio per
/// round for each metric and N, with the verdict on each target printed.
#[test]
fn versus_routed_records_a_ratio_per_round() {
    let (text, records, _) = bench(&["--versus-routed", "--quick"], false);
    for metric in COMPARISON_METRICS {
        for ports in [1, 100] {
            let ratio = records
                .iter()
                .find(|r| {
                    r["config"] == "ebpf-tc ÷ routed"
                        && r["metric"] == metric
                        && r["ports"] == ports
                })
                .unwrap_or_else(|| panic!("no ratio for {metric} N={ports}"));
            let runs = ratio["runs"].as_array().expect("runs");
            assert_eq!(runs.len(), 3, "{ratio}");
            assert!(
                runs.iter()
                    .all(|r| r.as_f64().is_some_and(|v| v > 0.1 && v < 10.0)),
                "{ratio}"
            );
            assert!(
                text.contains(&format!("{metric:<15} N={ports:<6}")),
                "no verdict for {metric} N={ports}:\n{text}"
            );
        }
    }
}

/// `--cni` measures netlab-cni and portmap, driven as a runtime drives them: every metric
/// for both plugins at every N, three runs each, and connections went through both.
#[test]
fn cni_bench_measures_both_plugins() {
    let (table, records, _) = bench(&["--cni", "--quick", "--ports", "1,3"], false);
    assert!(table.contains("CNI: the port plugin's ADD"), "{table}");
    for config in ["netlab-cni", "portmap"] {
        for metric in [
            "cni_add",
            "cni_add_next",
            "cni_del",
            "cni_del_last",
            "connections",
            "rr_p50",
        ] {
            for ports in [1, 3] {
                let record = records
                    .iter()
                    .find(|r| r["config"] == config && r["metric"] == metric && r["ports"] == ports)
                    .unwrap_or_else(|| panic!("no record {config} {metric} N={ports}"));
                let runs = record["runs"].as_array().expect("runs");
                assert_eq!(runs.len(), 3, "{record}");
                assert!(
                    runs.iter().all(|r| r.as_f64().is_some_and(|v| v > 0.0)),
                    "{record}"
                );
            }
        }
    }
}

/// `--family 6`: every configuration of every run measures IPv6 on dual-stack labs, one
/// record per metric of the NAT-versus-routing comparison, named `<config>-v6`; no IPv4
/// record.
#[test]
fn ipv6_bench_records_every_configuration() {
    let (table, records, _) = bench(
        &["--quick", "--family", "6", "--ports", "1", "--runs", "1"],
        false,
    );
    for config in [
        "routed-v6",
        "iptables-v6",
        "nft-rules-v6",
        "nft-map-v6",
        "ebpf-tc-v6",
        "ebpf-xdp-v6",
    ] {
        for metric in COMPARISON_METRICS {
            let record = records
                .iter()
                .find(|r| r["config"] == config && r["metric"] == metric)
                .unwrap_or_else(|| panic!("no record {config} {metric}: {table}"));
            assert!(
                record["value"].as_f64().is_some_and(|v| v > 0.0),
                "{record}"
            );
        }
    }
    assert!(
        records
            .iter()
            .all(|r| r["config"].as_str().is_some_and(|c| c.ends_with("-v6"))),
        "IPv6 only: {records:?}"
    );
    assert!(table.contains("iptables-v6"), "{table}");
}
