//! `netlab soak` for 30 seconds per backend: mixed traffic on every path with ports
//! published and unpublished all along, run by `up --foreground`. No request on a port that
//! stays published may fail, the conntrack table must stay bounded, and the loader's memory
//! and file descriptors flat. (BENCHMARKS.md has a 10-minute run.)

use serde_json::Value;

use netlab_e2e::{harness::TempFile, netlab_ok, unique};

fn soak(backend: &str) {
    let report = TempFile::new("json", "");
    let lab = unique("");
    netlab_ok(&[
        "--lab",
        &lab,
        "soak",
        "--seconds",
        "30",
        "--backend",
        backend,
        "--json",
        report.path(),
    ]);
    let report: Value = serde_json::from_str(&report.read()).expect("the soak's JSON report");
    for path in report["paths"].as_array().expect("paths") {
        let requests = path["requests"].as_u64().unwrap_or(0);
        assert!(
            requests > 100,
            "{backend}: {path}: too few requests to mean anything"
        );
        assert_eq!(path["failures"], 0, "{backend}: {path}");
    }
    assert!(
        report["churn_cycles"].as_u64().unwrap_or(0) > 10,
        "{backend}: {report}"
    );
    assert_eq!(report["churn_errors"], 0, "{backend}");
    let samples = report["samples"].as_array().expect("samples");
    // A sample lists the whole table: the kernel's takes a while.
    assert!(samples.len() >= 20, "{backend}: {} samples", samples.len());
    let thirds: Vec<&[Value]> = samples.chunks(samples.len().div_ceil(3)).collect();
    let max = |third: &[Value], field: &str| {
        third
            .iter()
            .filter_map(|s| s[field].as_u64())
            .max()
            .unwrap_or(0)
    };
    let floor = |third: &[Value], field: &str| {
        third
            .iter()
            .filter_map(|s| s[field].as_u64())
            .min()
            .unwrap_or(0)
    };
    let (middle, last) = (max(thirds[1], "conntrack"), max(thirds[2], "conntrack"));
    if backend == "ebpf" {
        // Flows live about 10 s after their last packet: from the second third on, the
        // table holds what arrives in a lifetime, and no more.
        assert!(
            last <= middle + middle / 3 + 500,
            "{backend}: conntrack entries grew from {middle} to {last}"
        );
    } else {
        // The kernel keeps closed connections 120 s (TIME_WAIT): still filling at 30 s,
        // within its table.
        assert!(last < 262_144, "{backend}: {last} conntrack entries");
    }
    let (rss_first, rss_last) = (
        max(thirds[0], "loader_rss_kib"),
        max(thirds[2], "loader_rss_kib"),
    );
    assert!(rss_first > 0, "{backend}: no loader memory read");
    assert!(
        rss_last <= rss_first + 2048,
        "{backend}: the loader grew from {rss_first} KiB to {rss_last} KiB"
    );
    // A sample taken while the loader runs a tool (`iptables -L` for the counters) sees
    // that child's pipes for a moment. A leak raises the floor: the fewest descriptors open.
    let (fds_first, fds_last) = (
        floor(thirds[0], "loader_fds"),
        floor(thirds[2], "loader_fds"),
    );
    assert!(fds_first > 0, "{backend}: no loader descriptors read");
    assert!(
        fds_last <= fds_first + 2,
        "{backend}: the loader's descriptors grew from {fds_first} to {fds_last}"
    );
    assert!(!std::path::Path::new(&format!("/run/netns/{lab}-host")).exists());
}

#[test]
fn ebpf() {
    soak("ebpf");
}

#[test]
fn iptables() {
    soak("iptables");
}
