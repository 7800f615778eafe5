//! Full tables and exhaustion, with the kernel's NAT (iptables) as the oracle:
//!
//! - a conntrack table far smaller than the flows: flows in use keep working (an evicted
//!   half is restored when used), and new flows still succeed (the eBPF table is an LRU: it
//!   evicts the least recently used flows rather than refusing new ones, as Cilium's does);
//! - masquerade's source ports exhausted towards one remote address and port (40,000
//!   concurrent flows for 32,768 ports): the flows that do not fit are dropped and counted
//!   (`snat_exhausted`), no reply reaches a wrong socket, a connection opened before is
//!   untouched, and once the flows expire new ones succeed;
//! - 100,000 concurrent masqueraded UDP flows from two containers: every reply reaches its
//!   socket.
//!
//! All traffic stays between the lab's containers and its `wan` namespace.

use std::{io::Write as _, time::Duration};

use netlab_common::nat::maps;
use netlab_e2e::{
    fixtures::MANY_FLOWS,
    harness::{
        Mode, PYTHON, Server, Session, WAN, checked, datapath_stat, lab_with, map_entries, run_in,
    },
};

/// One case at a time: each floods a lab with tens of thousands of flows, and two at once on
/// two cores measure the machine's overload rather than the NAT.
/// `cargo xtask test` runs this suite alone, after the others, one test at a time; this lock
/// keeps a plain `cargo test --test exhaustion` to that too.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn is_ebpf(backend: &str) -> bool {
    backend.contains("ebpf")
}

/// `MANY_FLOWS` from `node`: (answered, replies to a wrong socket, resent).
fn many_flows(lab: &netlab_e2e::Lab, node: &str, port: u16, args: &[&str]) -> (u64, u64, u64) {
    let port = port.to_string();
    let mut command = vec![PYTHON, "-c", MANY_FLOWS, WAN, &port];
    command.extend_from_slice(args);
    let output = run_in(&lab.ns(node), 120, &command);
    let out = checked(&format!("UDP flows from {node}: {args:?}"), &output);
    // ICMP errors that reached a flow's socket (the flow sent again and still had to be
    // answered): rare, reported for the record.
    let refused = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.starts_with("refused flow"))
        .count();
    if refused > 0 {
        let _ = writeln!(
            std::io::stderr(),
            "UDP flows from {node} {args:?}: {refused} sockets got an ICMP error"
        );
    }
    let numbers: Vec<u64> = out
        .split_whitespace()
        .map(|n| n.parse().unwrap_or(u64::MAX))
        .collect();
    match numbers[..] {
        [answered, wrong, resent] => (answered, wrong, resent),
        _ => panic!("MANY_FLOWS printed {out:?}"),
    }
}

/// `MANY_FLOWS` run by `processes` processes at once from `node` (a process may hold 20,000
/// sockets here), `flows` in all; their results summed.
fn many_flows_at_once(
    lab: &netlab_e2e::Lab,
    node: &str,
    port: u16,
    flows: u32,
    processes: u32,
    args: &[&str],
) -> (u64, u64, u64) {
    let each = (flows / processes).to_string();
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..processes)
            .map(|_| {
                let mut all = vec![each.as_str()];
                all.extend_from_slice(args);
                scope.spawn(move || many_flows(lab, node, port, &all))
            })
            .collect();
        runs.into_iter()
            .map(|run| run.join().expect("a flow runner"))
            .fold((0, 0, 0), |t, r| (t.0 + r.0, t.1 + r.1, t.2 + r.2))
    })
}

/// Lets a container's sockets use every port above 1023, as many flows as a NAT can map.
fn wide_port_range(lab: &netlab_e2e::Lab, node: &str) {
    lab.sh_ok(node, "sysctl -qw net.ipv4.ip_local_port_range='1024 65535'");
}

fn a_full_conntrack_table_keeps_flows_in_use(backend: &str) {
    let _serial = one_at_a_time();
    let lab = lab_with(backend, &["--ct-entries", "64"]);
    let _lines = Server::start(&lab, "wan", Mode::Lines, &[7100]);
    let _echo = Server::start(&lab, "wan", Mode::Udp, &[7000]);
    let mut sessions: Vec<Session> = (0..5)
        .map(|_| Session::open(&lab, "netns0", WAN, 7100))
        .collect();
    for (i, session) in sessions.iter_mut().enumerate() {
        assert!(
            session
                .exchange(&format!("before {i}"))
                .ends_with(&format!("before {i}"))
        );
    }
    // Ten times the table, one datagram each.
    let (answered, wrong, _) = many_flows(&lab, "netns0", 7000, &["640", "50", "10"]);
    assert_eq!(wrong, 0, "{backend}: a reply reached another flow's socket");
    assert!(answered > 0, "{backend}: no flow got through a full table");
    if is_ebpf(backend) {
        // Each flow answered had both its entries in the table: more than 32 answered, the
        // LRU made room. (Had the size been ignored, the table would hold all 1,280.)
        let held = map_entries(&lab, maps::CONNTRACK);
        assert!(
            answered > 32 && held <= 64,
            "{backend}: {answered} flows answered, {held} entries held by a table of 64"
        );
    }
    for (i, session) in sessions.iter_mut().enumerate() {
        let reply = session.exchange(&format!("after {i}"));
        assert!(
            reply.ends_with(&format!("after {i}")),
            "{backend}: a connection in use broke when the table filled: {reply:?}"
        );
    }
    for session in sessions {
        session.close();
    }
    // New flows succeed, a few at a time. In a table this small the LRU's per-CPU lists may
    // still evict a new flow's entry before its reply: a datagram sent again is no failure,
    // a flow never answered is.
    let (answered, wrong, _) = many_flows(&lab, "netns0", 7000, &["20", "5"]);
    assert_eq!(
        (answered, wrong),
        (20, 0),
        "{backend}: new flows after the flood"
    );
}

fn masquerade_ports_exhausted_towards_one_destination(backend: &str) {
    let _serial = one_at_a_time();
    let lab = lab_with(backend, &["--ct-timeouts", "udp=10"]);
    let _lines = Server::start(&lab, "wan", Mode::Lines, &[7100]);
    let echo = Server::start(&lab, "wan", Mode::Udp, &[7000]);
    let mut before = Session::open(&lab, "netns0", WAN, 7100);
    assert!(before.exchange("before").ends_with("before"));
    let exhausted = is_ebpf(backend).then(|| datapath_stat(&lab, "snat_exhausted"));
    // 70,000 flows from two containers to one address and port: more than the 64,512
    // source ports (1024-65535) a NAT has for them, on either backend.
    let (answered, wrong) = std::thread::scope(|scope| {
        let runs: Vec<_> = ["netns0", "netns1"]
            .map(|node| {
                wide_port_range(&lab, node);
                let lab = &lab;
                scope.spawn(move || many_flows_at_once(lab, node, 7000, 35_000, 2, &["250", "10"]))
            })
            .into_iter()
            .collect();
        runs.into_iter()
            .map(|run| run.join().expect("a container's flows"))
            .fold((0, 0), |t, r| (t.0 + r.0, t.1 + r.1))
    });
    assert_eq!(wrong, 0, "{backend}: a reply reached another flow's socket");
    assert!(
        (50_000..70_000).contains(&answered),
        "{backend}: {answered} of 70,000 flows to one destination got through 64,512 ports"
    );
    let flood = answered;
    if let Some(exhausted_before) = exhausted {
        let dropped = datapath_stat(&lab, "snat_exhausted") - exhausted_before;
        assert!(
            dropped > 0,
            "{backend}: {answered} answered, no exhaustion counted"
        );
    }
    assert!(
        before.exchange("after").ends_with("after"),
        "{backend}: the connection opened before the flood"
    );
    before.close();
    // The flows ended with their processes, and a new echo server drops the old one's backlog
    // (late replies to the flood would reach new sockets that reuse its ports). Once the
    // flows' entries expire, their ports are free again.
    drop(echo);
    std::thread::sleep(Duration::from_secs(11));
    let _echo = Server::start(&lab, "wan", Mode::Udp, &[7000]);
    let (answered, wrong, resent) = many_flows(&lab, "netns0", 7000, &["300", "50"]);
    assert_eq!(
        (answered, wrong),
        (300, 0),
        "{backend}: new flows once the old ones expired"
    );
    // The kernel's table still holds the flood (its UDP entries live 30 to 120 s) and drops
    // new flows' first packets until it evicts some; the eBPF table takes them at once.
    if is_ebpf(backend) {
        assert_eq!(resent, 0, "{backend}: datagrams of new flows lost");
    }
    let _ = writeln!(
        std::io::stderr(),
        "masquerade exhaustion: {backend}: of 70,000 flows to one destination {flood} answered; \
         then 300 new flows, {resent} datagrams sent again"
    );
}

fn a_hundred_thousand_udp_flows(backend: &str) {
    let _serial = one_at_a_time();
    let lab = lab_with(backend, &[]);
    let ports = [7000, 7001, 7002, 7003];
    let _echo = Server::start(&lab, "wan", Mode::Udp, &ports);
    for node in ["netns0", "netns1"] {
        wide_port_range(&lab, node);
    }
    // Two containers, four destination ports each: 8 × 12,500 flows, all open at once.
    std::thread::scope(|scope| {
        let runs: Vec<_> = ["netns0", "netns1"]
            .into_iter()
            .flat_map(|node| ports.map(|port| (node, port)))
            .map(|(node, port)| {
                let lab = &lab;
                scope.spawn(move || many_flows(lab, node, port, &["12500", "200", "90"]))
            })
            .collect();
        let mut total = 0;
        for run in runs {
            let (answered, wrong, _) = run.join().expect("a flow runner");
            assert_eq!(wrong, 0, "{backend}: a reply reached another flow's socket");
            total += answered;
        }
        assert_eq!(
            total, 100_000,
            "{backend}: flows whose reply reached their socket"
        );
    });
}

mod iptables {
    #[test]
    fn a_full_conntrack_table_keeps_flows_in_use() {
        super::a_full_conntrack_table_keeps_flows_in_use("--backend iptables");
    }
    #[test]
    fn masquerade_ports_exhausted_towards_one_destination() {
        super::masquerade_ports_exhausted_towards_one_destination("--backend iptables");
    }
    #[test]
    fn a_hundred_thousand_udp_flows() {
        super::a_hundred_thousand_udp_flows("--backend iptables");
    }
}

mod ebpf_tc {
    const BACKEND: &str = "--backend ebpf --ingress tc --fast-path on";
    #[test]
    fn a_full_conntrack_table_keeps_flows_in_use() {
        super::a_full_conntrack_table_keeps_flows_in_use(BACKEND);
    }
    #[test]
    fn masquerade_ports_exhausted_towards_one_destination() {
        super::masquerade_ports_exhausted_towards_one_destination(BACKEND);
    }
    #[test]
    fn a_hundred_thousand_udp_flows() {
        super::a_hundred_thousand_udp_flows(BACKEND);
    }
}
