//! README claims that no other suite proves, each with a test that fails when the claim is
//! false: that each backend configuration really takes its path (attachments and counters),
//! that a download's GSO segments take the fast path out,
//! that the cgroup hooks act only in their own lab, the documented conntrack lifetimes and
//! their expiry, `up --foreground`'s events and counters, live-published ports across `up`,
//! `NETLAB_LAB`, the eBPF `--explain`, `conntrack` on iptables, a port published on one host
//! address, UDP ranges, ICMP errors about TCP flows, the forwarding's TTL and MAC rewrites, and
//! that a port published on 127.0.0.1 receives nothing from the wire.
//!
//! All traffic stays inside the labs' namespaces (172.18.0.0/16, 198.18.0.0/24, loopback).

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use netlab_e2e::{
    Lab,
    fixtures::{CAPTURE, CLIENT, FRAME_CAPTURE, with_packets},
    harness::{
        GATEWAY, Guarded, HOST_EXT, Mode, PYTHON, Server, Session, WAN, assert_http, checked,
        conntrack, datapath_stat, default_lab, lab_with, mac_of, probe, published, run_in,
    },
    netlab_bin,
};
use serde_json::Value;

fn is_ebpf(backend: &str) -> bool {
    backend.contains("ebpf")
}

/// The pinned links of an eBPF lab, as `inspect host` lists them.
fn attached(lab: &Lab) -> Vec<String> {
    lab.netlab_ok(&["inspect", "host"])
        .lines()
        .filter_map(|line| line.trim().strip_prefix("attached: "))
        .map(str::to_string)
        .collect()
}

/// A ping of `count` echoes from `node` to `ip`, which must all be answered.
fn ping(lab: &Lab, node: &str, ip: &str, count: u32) {
    let count = count.to_string();
    let out = checked(
        &format!("ping from {node} to {ip}"),
        &run_in(
            &lab.ns(node),
            15,
            &["ping", "-c", &count, "-i", "0.2", "-W", "2", ip],
        ),
    );
    assert!(
        out.contains(&format!("{count} received")),
        "ping {node} -> {ip}: {out}"
    );
}

/// nftables: its table counted the 3 connections to 5000 (a rule's counter, or the published
/// map element's), and nothing of iptables' or eBPF's is there.
fn nftables_took_its_path(lab: &Lab, backend: &str, pins: &std::path::Path) {
    let table = lab.netlab_ok(&["inspect", "host"]);
    assert!(
        table.contains(&format!(
            "== host: NAT (nftables)\ntable ip netlab_{} {{",
            lab.name
        )),
        "{table}"
    );
    let counted = table
        .lines()
        .any(|line| line.contains(" 5000 counter packets 3 ") && line.contains("172.18.0.10"));
    assert!(
        counted,
        "{backend}: 3 connections to 5000 not counted:\n{table}"
    );
    let iptables = lab.sh_ok("host", "iptables-save");
    assert!(
        !iptables.contains(&format!("NL-{}-", lab.name)),
        "{backend}: iptables chains in an nftables lab:\n{iptables}"
    );
    assert!(!pins.exists(), "{backend}: eBPF pins in an nftables lab");
}

/// Each configuration takes the path it names. eBPF: the programs it names are attached
/// (XDP on the external device only with `--ingress xdp`, the XDP pass-through in containers
/// only with `xdp-redirect`), published and masqueraded traffic is translated, by XDP (the
/// echo replies of a masqueraded ping included) only with `--ingress xdp`, and handed
/// straight to veths only with the fast path on. iptables: its DNAT and MASQUERADE rules
/// counted the traffic, and nothing of eBPF's is pinned. nftables: its table counted the
/// connections, and neither iptables chains nor eBPF pins exist.
fn the_configuration_takes_its_path(backend: &str) {
    let lab = default_lab(backend);
    let _web = Server::start(&lab, "netns0", Mode::Http, &[5000]);
    let _outside = Server::start(&lab, "wan", Mode::Http, &[7777]);
    let xdp = backend.contains("--ingress xdp");
    let fast_path = !backend.contains("--fast-path off");
    let redirect = backend.contains("xdp-redirect");
    let xdp_before = is_ebpf(backend).then(|| datapath_stat(&lab, "xdp_translated"));
    for _ in 0..3 {
        assert_http(&lab, "wan", HOST_EXT, 5000, 5000, WAN);
        assert_http(&lab, "netns0", WAN, 7777, 7777, HOST_EXT);
    }
    let pins = std::path::Path::new("/sys/fs/bpf/netlab").join(&lab.name);
    if backend.contains("nftables") {
        nftables_took_its_path(&lab, backend, &pins);
        return;
    }
    if !is_ebpf(backend) {
        let counted = lab.sh_ok("host", "iptables-save -c -t nat");
        for target in ["-j DNAT", "-j MASQUERADE"] {
            let packets: u64 = counted
                .lines()
                .filter(|line| line.contains(target) && line.contains(&format!("NL-{}-", lab.name)))
                .filter_map(|line| {
                    line.strip_prefix('[')?
                        .split(':')
                        .next()?
                        .parse::<u64>()
                        .ok()
                })
                .sum();
            assert!(
                packets > 0,
                "{backend}: no packet went through {target}:\n{counted}"
            );
        }
        assert!(!pins.exists(), "{backend}: eBPF pins in an iptables lab");
        return;
    }
    let links = attached(&lab);
    for link in [
        "netlab_nat_ext_ingress@eth0",
        "netlab_nat_ext_egress@eth0",
        "netlab_nat_ctr_ingress@veth0",
        "netlab_nat_ctr_ingress@veth1",
    ] {
        assert!(
            links.iter().any(|l| l == link),
            "{backend}: {link} not in {links:?}"
        );
    }
    assert_eq!(
        links.iter().any(|l| l == "netlab_nat_ext_xdp@eth0"),
        xdp,
        "{backend}: XDP on the external device: {links:?}"
    );
    assert_eq!(
        links.iter().any(|l| l.starts_with("netlab_xdp_pass@")),
        redirect,
        "{backend}: XDP pass-through in containers: {links:?}"
    );
    // The kernel agrees: an XDP program sits on the host's eth0 exactly when asked for.
    let link = lab.sh_ok("host", "ip -d link show eth0");
    assert_eq!(link.contains("prog/xdp"), xdp, "{backend}: {link}");
    assert!(
        datapath_stat(&lab, "translated") > 0,
        "{backend}: nothing translated"
    );
    let fast = datapath_stat(&lab, "fast_path");
    if fast_path {
        assert!(
            fast > 0,
            "{backend}: the fast path handed nothing to a veth"
        );
    } else {
        assert_eq!(
            fast, 0,
            "{backend}: packets were fast-pathed with the fast path off"
        );
    }
    let xdp_before = xdp_before.unwrap_or_default();
    let by_xdp = datapath_stat(&lab, "xdp_translated") - xdp_before;
    if xdp {
        assert!(by_xdp >= 6, "{backend}: XDP translated {by_xdp} packets");
        // Reverse masquerade of ICMP through XDP: three echo replies, three translations.
        ping(&lab, "netns0", WAN, 3);
        let after = datapath_stat(&lab, "xdp_translated");
        assert_eq!(
            after - xdp_before - by_xdp,
            3,
            "{backend}: echo replies through XDP"
        );
    } else {
        assert_eq!(by_xdp, 0, "{backend}: XDP translated with tc ingress");
    }
}

/// The cgroup hooks act only in their own lab's host node: two labs with the same
/// addresses, where only lab A publishes 7777. A process in lab B's host node connecting to
/// 198.18.0.1:7777 is left alone (refused: nothing listens there), although lab B's netns0
/// listens on 7777 — A's hooks, were they to act in B, would send it there. In lab A the
/// same connection reaches A's container.
fn cgroup_hooks_act_only_in_their_own_lab(backend: &str) {
    let a = default_lab(backend);
    let b = default_lab(backend);
    let _a_web = Server::start(&a, "netns0", Mode::Http, &[7777]);
    let _b_web = Server::start(&b, "netns0", Mode::Http, &[7777]);
    a.netlab_ok(&["publish", "netns0", "7777:7777"]);
    assert_eq!(
        probe(&b, "host", HOST_EXT, 7777),
        "refused",
        "{backend}: lab B's host"
    );
    assert_http(&a, "host", HOST_EXT, 7777, 7777, HOST_EXT);
}

/// The conntrack lifetimes README gives (established 6 h, closing 10 s, UDP 60 s, ICMP 30 s;
/// SYN 60 s is `nat_correctness`'s), as `conntrack --json` shows them, and a flow that
/// outlives a short `--ct-timeouts` expires: its next packet finds it gone (`expired`).
#[test]
fn conntrack_lifetimes_are_as_documented_and_expire() {
    let lab = default_lab("--backend ebpf");
    let _lines = Server::start(&lab, "wan", Mode::Lines, &[7000]);
    let _udp = Server::start(&lab, "wan", Mode::Udp, &[7001]);
    let mut session = Session::open(&lab, "netns0", WAN, 7000);
    session.exchange("hello");
    let client = |args: &[&str]| {
        let mut argv = vec![PYTHON, "-c", CLIENT];
        argv.extend_from_slice(args);
        checked("client", &run_in(&lab.ns("netns0"), 20, &argv))
    };
    client(&["udp", WAN, "7001", "1"]);
    ping(&lab, "netns0", WAN, 1);
    let timeout_of = |proto: &str, port: &str| -> Vec<(String, u64)> {
        conntrack(&lab)
            .into_iter()
            .filter(|row| {
                row["proto"] == proto && row["original"].as_str().is_some_and(|o| o.contains(port))
            })
            .map(|row| {
                (
                    row["state"].as_str().unwrap_or("").to_string(),
                    row["timeout_s"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    let tcp = timeout_of("tcp", ":7000");
    assert!(
        !tcp.is_empty()
            && tcp
                .iter()
                .all(|(state, t)| state == "established" && (21_500..=21_600).contains(t)),
        "{tcp:?}"
    );
    let udp = timeout_of("udp", ":7001");
    assert!(
        !udp.is_empty() && udp.iter().all(|(_, t)| (50..=60).contains(t)),
        "{udp:?}"
    );
    let icmp = timeout_of("icmp", "198.18.0.2");
    assert!(
        !icmp.is_empty() && icmp.iter().all(|(_, t)| (20..=30).contains(t)),
        "{icmp:?}"
    );
    session.close();
    std::thread::sleep(Duration::from_millis(300));
    let tcp = timeout_of("tcp", ":7000");
    assert!(
        !tcp.is_empty() && tcp.iter().all(|(state, t)| state == "closing" && *t <= 10),
        "{tcp:?}"
    );

    let short = lab_with("--backend ebpf", &["--ct-timeouts", "udp=2"]);
    let _udp = Server::start(&short, "wan", Mode::Udp, &[7001]);
    let expired = datapath_stat(&short, "expired");
    let out = checked(
        "a UDP flow idle past its lifetime",
        &run_in(
            &short.ns("netns0"),
            20,
            &[
                PYTHON,
                "-c",
                "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(2)\ns.connect(('198.18.0.2', 7001))\nfor wait in (0, 3):\n    time.sleep(wait)\n    s.send(b'x')\n    print(s.recv(10).decode())",
            ],
        ),
    );
    assert_eq!(out, "x\nx\n", "both datagrams answered");
    assert_eq!(
        datapath_stat(&short, "expired") - expired,
        1,
        "the idle flow expired"
    );
}

/// `up --foreground` prints datapath events (a new flow) and each published port's counters
/// every second.
#[test]
fn foreground_prints_flow_events_and_counters() {
    let lab = Lab {
        name: netlab_e2e::unique("fgc"),
    };
    let loader = Guarded::spawn(
        Command::new(netlab_bin())
            .args([
                "--lab",
                &lab.name,
                "up",
                "--backend",
                "ebpf",
                "--foreground",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let mut loader = loader;
    let mut lines = BufReader::new(loader.0.stdout.take().expect("stdout")).lines();
    assert!(
        lines
            .by_ref()
            .take(5)
            .any(|line| line.is_ok_and(|l| l.contains("running in the foreground"))),
        "the loader came up"
    );
    let _web = Server::start(&lab, "netns0", Mode::Http, &[5000]);
    assert_http(&lab, "wan", HOST_EXT, 5000, 5000, WAN);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut event, mut counted) = (false, false);
    for line in lines.by_ref() {
        let line = line.expect("UTF-8");
        event |= line.starts_with("[datapath info] dnat") && line.contains(":5000");
        counted |= line.starts_with("5000:5000/tcp") && !line.contains(" 0 packets");
        if (event && counted) || Instant::now() > deadline {
            break;
        }
    }
    assert!(event, "no new-flow event for the published port");
    assert!(counted, "no counter line with packets for 5000:5000/tcp");
}

/// Ports published live stay published when `up` runs again on the running lab.
fn ports_published_live_stay_across_up(backend: &str) {
    let lab = default_lab(backend);
    let _web = Server::start(&lab, "netns1", Mode::Http, &[80]);
    lab.netlab_ok(&["publish", "netns1", "7001:80"]);
    let args: Vec<&str> = std::iter::once("up")
        .chain(backend.split_whitespace().filter(|a| !a.starts_with('+')))
        .collect();
    lab.netlab_ok(&args);
    let listed = published(&lab);
    assert!(
        listed
            .iter()
            .any(|(node, spec)| node == "netns1" && spec == "7001:80/tcp"),
        "{listed:?}"
    );
    assert_http(&lab, "wan", HOST_EXT, 7001, 80, WAN);
}

/// Masquerade never hands a container a source port that a host socket owns, even an idle
/// one the kernel's conntrack knows nothing of (eBPF only: the kernel's NAT checks its
/// conntrack table, not sockets, so with iptables the container keeps the port and the
/// host socket never sees replies to it either way).
#[test]
fn masquerade_skips_a_port_a_host_socket_owns() {
    let lab = default_lab("--backend ebpf");
    let _echo = Server::start(&lab, "wan", Mode::Udp, &[7002]);
    let _idle = Guarded::spawn(
        Command::new("ip")
            .args(["netns", "exec", &lab.ns("host"), PYTHON, "-c"])
            .arg("import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('198.18.0.1', 40100))\ntime.sleep(60)"),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !lab.sh_ok("host", "ss -Hlun").contains("198.18.0.1:40100") {
        assert!(Instant::now() < deadline, "the host socket never bound");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = checked(
        "a datagram from netns0's port 40100",
        &run_in(
            &lab.ns("netns0"),
            20,
            &[
                PYTHON,
                "-c",
                "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(2)\ns.bind(('0.0.0.0', 40100))\ns.connect(('198.18.0.2', 7002))\ns.send(b'?peer')\nprint(s.recv(100).decode())",
            ],
        ),
    );
    let seen = out.trim();
    assert!(seen.starts_with("198.18.0.1"), "masqueraded: {seen}");
    let rows = conntrack(&lab);
    let mapped = rows
        .iter()
        .filter_map(|row| row["translated"].as_str())
        .find(|t| t.contains("-> 198.18.0.2:7002") && t.starts_with("198.18.0.1:"))
        .unwrap_or_else(|| panic!("no masqueraded flow: {rows:#?}"));
    assert!(
        !mapped.starts_with("198.18.0.1:40100 "),
        "masquerade took the host socket's port: {mapped}"
    );
}

/// `NETLAB_LAB` names the lab when `--lab` is not given.
#[test]
fn netlab_lab_names_the_lab() {
    let lab = Lab::up(&["--backend", "iptables"]);
    let out = Command::new(netlab_bin())
        .args(["status", "--json"])
        .env("NETLAB_LAB", &lab.name)
        .output()
        .expect("netlab status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(status["lab"], lab.name.as_str(), "{status}");
}

/// `up --explain` with the eBPF backend prints the bpftool commands that do the same — the
/// load, each attach (XDP with `--ingress xdp`), the publish-map update — and creates
/// nothing.
#[test]
fn ebpf_explain_shows_the_equivalent_commands() {
    let name = netlab_e2e::unique("expl");
    for (ingress, hook) in [("tc", "tcx_ingress"), ("xdp", "xdpdrv")] {
        let out = netlab_e2e::netlab_ok(&[
            "--lab",
            &name,
            "up",
            "--backend",
            "ebpf",
            "--ingress",
            ingress,
            "--explain",
        ]);
        for expected in [
            "bpftool prog loadall".to_string(),
            format!("bpftool net attach {hook} pinned /sys/fs/bpf/netlab/{name}/progs/"),
            "bpftool net attach tcx_egress".to_string(),
            format!("bpftool map update pinned /sys/fs/bpf/netlab/{name}/NETLAB_NAT_PUBLISH"),
        ] {
            assert!(
                out.contains(&expected),
                "--ingress {ingress}: no {expected:?} in:\n{out}"
            );
        }
        assert!(
            !out.contains("iptables -t nat"),
            "no NAT rule in the eBPF explanation:\n{out}"
        );
    }
    assert!(
        !std::path::Path::new("/run/netns")
            .join(format!("{name}-host"))
            .exists(),
        "--explain created a namespace"
    );
    assert!(
        !std::path::Path::new("/run/netlab")
            .join(format!("{name}.json"))
            .exists(),
        "--explain wrote a state file"
    );
}

/// `up --explain` with the nftables backend prints `nft` commands that build the very table
/// `up` builds: run in a namespace of the test's own, they give the same `nft list table`
/// (counters aside), for both shapes, with ports of every kind published.
#[test]
fn nftables_explain_builds_the_same_table() {
    let file = netlab_e2e::harness::TempFile::new(
        "toml",
        "[[container]]\nname = \"a\"\naddress = \"172.18.0.10\"\n\n[[publish]]\nnode = \"a\"\n\
         ports = [\"8080:80\", \"127.0.0.1:9000:90/udp\", \"7000-7002:8000-8002/udp\", \
         \"6000-6001:6000-6001\", \"172.18.0.1:5000:5000\"]\n",
    );
    let path = file.path();
    for shape in ["map", "rules"] {
        let args = ["--backend", "nftables", "--nft-shape", shape, "-f", path];
        let lab = Lab::up(&args);
        let table = format!("netlab_{}", lab.name);
        let listed = |ns: &str| {
            netlab_e2e::harness::rules_without_counters(&netlab_e2e::sh_in_ok(
                ns,
                &format!("nft list table ip {table}"),
            ))
        };
        let built = listed(&lab.ns("host"));
        let mut explain = vec!["up", "--explain"];
        explain.extend_from_slice(&args);
        let scratch = netlab_e2e::Netns::new("nftx");
        let commands: Vec<String> = lab
            .netlab_ok(&explain)
            .lines()
            .filter(|line| line.contains(" nft '"))
            .map(|line| line.replace(&lab.ns("host"), &scratch.name))
            .collect();
        assert!(commands.len() > 15, "{shape}: {commands:#?}");
        netlab_e2e::cmd_ok("sh", &["-ec", &commands.join("\n")]);
        assert_eq!(listed(&scratch.name), built, "{shape}: explained vs built");
    }
}

/// `conntrack` on the netfilter backends (iptables, nftables) lists the kernel's table: a
/// request to a published port shows up with its original and translated tuples.
#[test]
fn conntrack_on_the_netfilter_backends_lists_the_kernels_table() {
    for backend in ["--backend iptables", "--backend nftables"] {
        let lab = default_lab(backend);
        let _web = Server::start(&lab, "netns0", Mode::Http, &[5000]);
        assert_http(&lab, "wan", HOST_EXT, 5000, 5000, WAN);
        let rows = conntrack(&lab);
        // The client's side keeps its address and port; the destination becomes the
        // container.
        let translated_as_expected = |row: &Value| {
            let (Some(original), Some(translated)) =
                (row["original"].as_str(), row["translated"].as_str())
            else {
                return false;
            };
            let Some(client) = original.strip_suffix(" -> 198.18.0.1:5000") else {
                return false;
            };
            client.starts_with("198.18.0.2:")
                && translated == format!("{client} -> 172.18.0.10:5000")
        };
        assert!(
            rows.iter().any(translated_as_expected),
            "{backend}: {rows:#?}"
        );
    }
}

/// A port published on one host address (not loopback) is reachable there only: from `wan`
/// at 198.18.0.1, not through the bridge's address from a container, nor on 127.0.0.1 from
/// the host.
fn a_port_published_on_one_host_address(backend: &str) {
    let lab = default_lab(backend);
    let _web = Server::start(&lab, "netns0", Mode::Http, &[80]);
    lab.netlab_ok(&["publish", "netns0", "198.18.0.1:7200:80"]);
    assert_http(&lab, "wan", HOST_EXT, 7200, 80, WAN);
    assert_ne!(
        probe(&lab, "netns1", GATEWAY, 7200),
        "connected",
        "{backend}: via the bridge's address"
    );
    assert_ne!(
        probe(&lab, "host", "127.0.0.1", 7200),
        "connected",
        "{backend}: via loopback"
    );
}

/// A UDP range maps 1:1: each of 7300-7302/udp reaches its own container port.
fn udp_port_ranges(backend: &str) {
    let lab = default_lab(backend);
    let _echo = Server::start(&lab, "netns0", Mode::Udp, &[8300, 8301, 8302]);
    lab.netlab_ok(&["publish", "netns0", "7300-7302:8300-8302/udp"]);
    for port in ["7300", "7301", "7302"] {
        let out = checked(
            "UDP through a range",
            &run_in(
                &lab.ns("wan"),
                20,
                &[PYTHON, "-c", CLIENT, "udp", HOST_EXT, port, "5"],
            ),
        );
        assert_eq!(out.trim(), "matched=5/5", "{backend}: port {port}");
    }
}

/// ICMP errors about TCP flows reach the socket: a TCP connection refused by an ICMP port
/// unreachable (a REJECT rule, as a firewall would answer) ends as "refused" through
/// masquerade (netns0 to wan) and through a published port (wan to netns0).
fn icmp_errors_about_tcp_flows(backend: &str) {
    let lab = default_lab(backend);
    let reject =
        "iptables -A INPUT -p tcp --dport 7400 -j REJECT --reject-with icmp-port-unreachable";
    lab.sh_ok("wan", reject);
    lab.sh_ok("netns0", reject);
    assert_eq!(
        probe(&lab, "netns0", WAN, 7400),
        "refused",
        "{backend}: through masquerade"
    );
    lab.netlab_ok(&["publish", "netns0", "7400:7400"]);
    assert_eq!(
        probe(&lab, "wan", HOST_EXT, 7400),
        "refused",
        "{backend}: through DNAT"
    );
}

/// Forwarded into a container, a packet has its TTL decremented once and comes from the
/// bridge's MAC address, on the fast path as through the host's forwarding.
fn forwarding_rewrites_ttl_and_mac(backend: &str) {
    let lab = default_lab(backend);
    let _web = Server::start(&lab, "netns0", Mode::Http, &[5000]);
    let mut capture = Session::spawn(&lab, "netns0", FRAME_CAPTURE, &["ceth0", WAN]);
    capture.exchange("?");
    assert_http(&lab, "wan", HOST_EXT, 5000, 5000, WAN);
    let seen: Vec<(u8, String)> = serde_json::from_str(&capture.exchange("?")).expect("JSON");
    let bridge = mac_of(&lab, "host", "br0");
    assert!(!seen.is_empty(), "{backend}: nothing captured");
    for (ttl, mac) in &seen {
        assert_eq!(
            (*ttl, mac.as_str()),
            (63, bridge.as_str()),
            "{backend}: TTL and source MAC"
        );
    }
}

/// `python3 -c PACKETS+SYNS MAC IP PORT`: three TCP SYNs from 198.18.0.2:40000 to IP:PORT
/// out of `eth0`, in frames addressed to MAC, as a neighbour on the external link could send.
const SYNS: &str = "
import sys
mac, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
link = Link('eth0')
for seq in range(3):
    link.send(mac, ipv4('198.18.0.2', ip, TCP, tcp('198.18.0.2', ip, 40000, port, seq, 0x02), new_ident()))
";

/// A port published on 127.0.0.1 receives nothing from the wire: SYNs to 127.0.0.1:7500
/// sent from `wan` to the host's MAC address never reach the container (a capture there
/// sees nothing from `wan`), while the same SYNs to the port published on every address do.
fn loopback_port_receives_nothing_from_the_wire(backend: &str) {
    let lab = default_lab(backend);
    lab.netlab_ok(&["publish", "netns0", "127.0.0.1:7500:7500", "7501:7500"]);
    let mut capture = Session::spawn(&lab, "netns0", &with_packets(CAPTURE), &["ceth0"]);
    capture.exchange("?");
    let host_mac = mac_of(&lab, "host", "eth0");
    let syns = with_packets(SYNS);
    let mut send = |ip: &str, port: &str| {
        checked(
            "SYNs from wan",
            &run_in(
                &lab.ns("wan"),
                10,
                &[PYTHON, "-c", &syns, &host_mac, ip, port],
            ),
        );
        std::thread::sleep(Duration::from_millis(300));
        let seen: Value = serde_json::from_str(&capture.exchange("?")).expect("JSON");
        seen[WAN].as_u64().unwrap_or(0)
    };
    assert_eq!(
        send("127.0.0.1", "7500"),
        0,
        "{backend}: SYNs to 127.0.0.1 reached the container"
    );
    assert!(
        send(HOST_EXT, "7501") > 0,
        "{backend}: the control SYNs never arrived"
    );
}

/// A 10 MB download from a published container port leaves through the host's forwarding
/// with every backend: the container's GSO segments, and its flow's segments after them,
/// cross the bridge (on veth, sent straight out, they overtook each other and the download
/// ran at 0.65-0.8× iptables'). With the eBPF fast path on, the download's acknowledgements
/// still take it into the container, and a container that sends no GSO segment (checksum
/// offload off, so no TSO: its stack cuts MTU-sized segments) has its whole download
/// carried by the fast path.
fn a_download_leaves_through_the_host_and_its_acks_take_the_fast_path(backend: &str) {
    const SIZE: u64 = 10 << 20;
    let lab = default_lab(backend);
    let _bulk = Server::start(&lab, "netns0", Mode::Bulk, &[5000]);
    let bridge_rx = || -> u64 {
        lab.sh_ok("host", "cat /sys/class/net/br0/statistics/rx_bytes")
            .trim()
            .parse()
            .expect("br0's rx_bytes")
    };
    let fast_path = || is_ebpf(backend).then(|| datapath_stat(&lab, "fast_path"));
    let (before, fast_before) = (bridge_rx(), fast_path());
    let out =
        netlab_e2e::harness::client(&lab, "wan", &["get", HOST_EXT, "5000", &SIZE.to_string()]);
    let crossed = bridge_rx() - before;
    let client_side = out.lines().find_map(|line| line.strip_prefix("client "));
    assert!(
        client_side.is_some_and(|seen| seen.starts_with(&format!("{SIZE} "))),
        "{backend}: {out}"
    );
    assert_eq!(
        client_side,
        out.lines().find_map(|line| line.strip_prefix("server ")),
        "{backend}: {out}"
    );
    let fast_path_on = is_ebpf(backend) && !backend.contains("--fast-path off");
    if fast_path_on && backend.contains("tx-csum-off") {
        assert!(
            crossed < SIZE / 10,
            "{backend}: {crossed} bytes of a {SIZE}-byte download without GSO segments crossed the bridge: the fast path was not taken"
        );
    } else {
        assert!(
            crossed >= SIZE,
            "{backend}: only {crossed} bytes of a {SIZE}-byte download crossed the bridge: its segments skipped the host's forwarding"
        );
    }
    if let (Some(before), Some(after)) = (fast_before, fast_path()) {
        let fast = after - before;
        if fast_path_on {
            // 10 MB in 64 KiB segments: at least one acknowledgement per 4 of them.
            assert!(
                fast >= 40,
                "{backend}: only {fast} of the download's acknowledgements took the fast path"
            );
        } else {
            assert_eq!(fast, 0, "{backend}: packets took the fast path");
        }
    }
}

/// The fast path remembers where replies to a client leave (device, MACs, MTU) so that an
/// established flow's replies need no FIB lookup, and asks the FIB again about once a
/// second: when the next hop's MAC changes, connections work again within that second and
/// the remembered MAC follows.
#[test]
fn the_fast_path_remembers_the_next_hop_and_checks_it_again() {
    let lab = default_lab("--backend ebpf --fast-path on");
    let _web = Server::start(&lab, "netns0", Mode::Http, &[5000]);
    let map = format!(
        "/sys/fs/bpf/netlab/{}/{}",
        lab.name,
        netlab_common::nat::maps::NEXT_HOP
    );
    // The remembered destination MAC for replies to `wan` (198.18.0.2), as "aa:bb:..": the
    // freshest of the CPUs' copies of its place in the cache.
    let wan = u32::from(WAN.parse::<std::net::Ipv4Addr>().expect("address")).to_be();
    let slot = netlab_common::nat::cache_slot(wan)
        .to_le_bytes()
        .map(|b| b.to_string());
    let remembered = || -> Option<String> {
        let mut lookup = vec!["-j", "map", "lookup", "pinned", map.as_str(), "key"];
        lookup.extend(slot.iter().map(String::as_str));
        let found: Value =
            serde_json::from_str(&netlab_e2e::cmd_ok("bpftool", &lookup)).expect("bpftool JSON");
        let hops = found["values"].as_array()?.iter().map(|copy| {
            copy["value"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| u8::from_str_radix(b.as_str()?.trim_start_matches("0x"), 16).ok())
                .collect::<Vec<u8>>()
        });
        // NextHop: learned_ns (8 bytes), ifindex (4), client (4), mtu (2), dmac (6), ...
        let (_, hop) = hops
            .filter(|hop| hop.len() == 32 && hop[12..16] == [198, 18, 0, 2])
            .map(|hop| {
                (
                    u64::from_le_bytes(hop[..8].try_into().expect("8 bytes")),
                    hop,
                )
            })
            .max_by_key(|(learned, _)| *learned)?;
        Some(
            hop[18..24]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
        )
    };
    assert_http(&lab, "wan", HOST_EXT, 5000, 5000, WAN);
    assert_eq!(
        remembered(),
        Some(mac_of(&lab, "wan", "eth0")),
        "the next hop learned"
    );
    // A connection's later replies take the remembered hop, not the FIB.
    let before = datapath_stat(&lab, "next_hop_remembered");
    assert_http(&lab, "wan", HOST_EXT, 5000, 5000, WAN);
    assert!(
        datapath_stat(&lab, "next_hop_remembered") > before,
        "no reply took the remembered next hop"
    );

    let new_mac = "02:00:00:00:be:ef";
    lab.sh_ok("wan", &format!("ip link set eth0 address {new_mac}"));
    lab.sh_ok(
        "host",
        &format!("ip neigh replace {WAN} lladdr {new_mac} dev eth0 nud reachable"),
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert_http(&lab, "wan", HOST_EXT, 5000, 5000, WAN);
    assert_eq!(
        remembered().as_deref(),
        Some(new_mac),
        "the next hop checked again"
    );
}

netlab_e2e::backend_tests!(
    a_download_leaves_through_the_host_and_its_acks_take_the_fast_path,
    the_configuration_takes_its_path,
    cgroup_hooks_act_only_in_their_own_lab,
    ports_published_live_stay_across_up,
    a_port_published_on_one_host_address,
    udp_port_ranges,
    icmp_errors_about_tcp_flows,
    forwarding_rewrites_ttl_and_mac,
    loopback_port_receives_nothing_from_the_wire,
);
