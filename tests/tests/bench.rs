//! `netlab bench --quick` works end to end: every configuration and metric produces records
//! with their runs, and the JSON and SVG outputs are written. The numbers themselves are not
//! asserted (speed is shown by the benchmark, not by tests).

use std::process::Command;

use netlab_e2e::{netlab_bin, unique};

#[test]
fn quick_bench_produces_every_record() {
    let dir = std::env::temp_dir();
    let json = dir.join(format!("{}.json", unique("bj")));
    let svg = dir.join(format!("{}.svg", unique("bs")));
    let out = Command::new(netlab_bin())
        .args(["bench", "--quick", "--json"])
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .expect("running netlab bench");
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("new TCP connections/s"), "{table}");
    let records: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON written"))
            .expect("valid JSON");
    let svg_text = std::fs::read_to_string(&svg).expect("SVG written");
    let _ = std::fs::remove_file(&json);
    let _ = std::fs::remove_file(&svg);
    let records = records.as_array().expect("records");
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
        for metric in ["connections", "rr_p50", "rr_p99", "bulk_tcp", "udp_pps"] {
            for ports in [1, 100] {
                let record = find(config, metric, ports);
                assert_eq!(record["runs"].as_array().map(Vec::len), Some(3), "{record}");
                assert!(
                    record["value"].as_f64().is_some_and(|v| v > 0.0),
                    "{record}"
                );
                assert!(record["unit"].is_string());
            }
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
        find(config, "publish", 100);
        find(config, "unpublish", 100);
    }
    find("ebpf-tc", "lab_up", 10);
    find("nft-map", "lab_up", 10);
    assert!(
        svg_text.starts_with("<svg") && svg_text.contains("polyline"),
        "an SVG with lines"
    );
}
