//! The pipeline end to end: build, embed, load, attach, pin, count real traffic.

use netlab_e2e::{Netns, cmd_ok, netlab_err, netlab_ok, sh_in_ok};

/// Two namespaces joined by a veth pair, 198.19.0.1 <-> 198.19.0.2 (benchmarking range).
fn pair() -> (Netns, Netns) {
    let a = Netns::new("ca");
    let b = Netns::new("cb");
    cmd_ok(
        "ip",
        &[
            "link", "add", "va", "netns", &a.name, "type", "veth", "peer", "vb", "netns", &b.name,
        ],
    );
    sh_in_ok(
        &a.name,
        "ip addr add 198.19.0.1/30 dev va && ip link set va up",
    );
    sh_in_ok(
        &b.name,
        "ip addr add 198.19.0.2/30 dev vb && ip link set vb up",
    );
    (a, b)
}

fn packets(rows: &serde_json::Value, hook: &str) -> u64 {
    rows.as_array()
        .expect("counters JSON is an array")
        .iter()
        .filter(|row| row["hook"] == hook)
        .map(|row| row["packets"].as_u64().expect("packets is a number"))
        .sum()
}

struct Detach<'a>(&'a str);
impl Drop for Detach<'_> {
    fn drop(&mut self) {
        let _ = netlab_e2e::netlab(&["counters", "detach", "--netns", self.0, "--dev", "vb"]);
    }
}

#[test]
fn counters_move_when_pinging_across_the_veth() {
    let (a, b) = pair();
    netlab_ok(&["counters", "attach", "--netns", &b.name, "--dev", "vb"]);
    let _detach = Detach(&b.name);

    let stray: Vec<String> = std::fs::read_dir("/sys/fs/bpf")
        .expect("bpffs")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("NETLAB_"))
        .collect();
    assert!(
        stray.is_empty(),
        "attach pinned maps at the root of bpffs: {stray:?}"
    );

    // The counters outlive the CLI: traffic is sent after `attach` has exited.
    sh_in_ok(&a.name, "ping -c 5 -i 0.05 -W 1 198.19.0.2");
    let json = netlab_ok(&[
        "counters", "show", "--netns", &b.name, "--dev", "vb", "--json",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert!(
        packets(&rows, "xdp") >= 5,
        "XDP saw the 5 echo requests: {json}"
    );
    assert!(
        packets(&rows, "tc-ingress") >= 5,
        "tcx ingress saw the 5 echo requests: {json}"
    );
    assert!(
        packets(&rows, "tc-egress") >= 5,
        "tcx egress saw the 5 replies: {json}"
    );

    netlab_ok(&["counters", "detach", "--netns", &b.name, "--dev", "vb"]);
    // Idempotent.
    netlab_ok(&["counters", "detach", "--netns", &b.name, "--dev", "vb"]);
    let err = netlab_err(&["counters", "show", "--netns", &b.name, "--dev", "vb"]);
    assert!(err.contains("no counters attached"), "{err}");
}

#[test]
fn attaching_twice_is_refused() {
    let (_a, b) = pair();
    netlab_ok(&["counters", "attach", "--netns", &b.name, "--dev", "vb"]);
    let _detach = Detach(&b.name);
    let err = netlab_err(&["counters", "attach", "--netns", &b.name, "--dev", "vb"]);
    assert!(err.contains("already attached"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn unknown_namespace_or_device_is_a_clear_error() {
    let err = netlab_err(&[
        "counters",
        "attach",
        "--netns",
        "nlt-no-such-ns",
        "--dev",
        "vb",
    ]);
    assert!(
        err.contains("unknown namespace \"nlt-no-such-ns\""),
        "{err}"
    );
    let (_a, b) = pair();
    let err = netlab_err(&[
        "counters",
        "attach",
        "--netns",
        &b.name,
        "--dev",
        "nosuchdev",
    ]);
    assert!(err.contains("nosuchdev"), "{err}");
    // The failed attach rolled back: nothing pinned.
    let err = netlab_err(&["counters", "show", "--netns", &b.name, "--dev", "nosuchdev"]);
    assert!(err.contains("no counters attached"), "{err}");
}
