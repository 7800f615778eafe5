//! The pipeline end to end: build, embed, load, attach, pin, count real traffic.

use netlab_e2e::{Netns, cmd_ok, netlab_err, netlab_ok, sh_in_ok};

/// Two namespaces joined by a veth pair, 198.19.0.1 <-> 198.19.0.2 (benchmarking range),
/// where nothing but what a test sends crosses the pair: no IPv6 (no neighbour discovery,
/// no MLD) and each end's neighbour entry written in (no ARP).
fn pair() -> (Netns, Netns) {
    let a = Netns::new("ca");
    let b = Netns::new("cb");
    for ns in [&a, &b] {
        sh_in_ok(
            &ns.name,
            "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
        );
    }
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
    let mac = |ns: &Netns, dev: &str| {
        sh_in_ok(&ns.name, &format!("cat /sys/class/net/{dev}/address"))
            .trim()
            .to_string()
    };
    let (mac_a, mac_b) = (mac(&a, "va"), mac(&b, "vb"));
    sh_in_ok(
        &a.name,
        &format!("ip neigh replace 198.19.0.2 lladdr {mac_b} dev va nud permanent"),
    );
    sh_in_ok(
        &b.name,
        &format!("ip neigh replace 198.19.0.1 lladdr {mac_a} dev vb nud permanent"),
    );
    (a, b)
}

/// Packets and bytes a hook counted.
fn counted(rows: &serde_json::Value, hook: &str) -> (u64, u64) {
    rows.as_array()
        .expect("counters JSON is an array")
        .iter()
        .filter(|row| row["hook"] == hook)
        .map(|row| {
            (
                row["packets"].as_u64().expect("packets is a number"),
                row["bytes"].as_u64().expect("bytes is a number"),
            )
        })
        .fold((0, 0), |(p, b), (packets, bytes)| (p + packets, b + bytes))
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
    // Nothing else crosses the pair (see `pair`): 5 echo requests in, 5 replies out, each
    // a 98-byte frame (14 of Ethernet, 20 of IPv4, 8 of ICMP, ping's 56 of data).
    assert_eq!(
        counted(&rows, "xdp"),
        (5, 5 * 98),
        "XDP saw the 5 echo requests: {json}"
    );
    assert_eq!(
        counted(&rows, "tc-ingress"),
        (5, 5 * 98),
        "tcx ingress saw the 5 echo requests: {json}"
    );
    assert_eq!(
        counted(&rows, "tc-egress"),
        (5, 5 * 98),
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
