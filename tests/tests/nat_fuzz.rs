//! A differential fuzz test of the NAT: thousands of crafted frames from the external link
//! (truncated and lying headers, IP options, fragments overlapping, out of order and alone,
//! bad checksums, ICMP errors quoting a live translated flow and foreign ones, VLAN-tagged and
//! non-IPv4 frames, martian sources, frames addressed straight to a container) at published
//! and unpublished ports, while real flows run through the same datapath. On every backend
//! configuration (iptables, the kernel's NAT, is the oracle): the real flows carry on byte for
//! byte, a container that publishes nothing sees none of the crafted frames, and on eBPF the
//! drop counters account exactly for the martians and the direct accesses.
//!
//! All traffic stays inside the lab (the crafted frames come from 198.18.0.3-99 on the
//! external link, addresses no node has).

use std::collections::BTreeMap;

use netlab_e2e::{
    fixtures::{CAPTURE, FUZZ_FRAMES, with_packets},
    harness::{
        HOST_EXT, Mode, NETNS1, Server, Session, WAN, checked, datapath_stat, default_lab, mac_of,
        run_in,
    },
};
use serde_json::Value;

/// Crafted frames per configuration.
const FRAMES: u32 = 10_000;

/// Reads the sources a `CAPTURE` session has seen so far.
fn sources(capture: &mut Session) -> BTreeMap<String, u64> {
    let line = capture.exchange("?");
    serde_json::from_str(&line).unwrap_or_else(|err| panic!("capture output {line:?}: {err}"))
}

/// Whether `ip` is one of the fuzzer's made-up sources, 198.18.0.3-99.
fn is_fuzzer(ip: &str) -> bool {
    ip.strip_prefix("198.18.0.")
        .and_then(|host| host.parse::<u8>().ok())
        .is_some_and(|host| (3..=99).contains(&host))
}

fn crafted_frames_leave_real_flows_alone(backend: &str) {
    let lab = default_lab(backend);
    let _published = Server::start(&lab, "netns0", Mode::Lines, &[5000]);
    let _udp = Server::start(&lab, "netns0", Mode::Udp, &[6300]);
    let _bystander = Server::start(&lab, "netns1", Mode::Udp, &[6300, 5000]);
    let _outside = Server::start(&lab, "wan", Mode::Lines, &[7000]);
    // The default lab publishes 5000 on netns0 already.
    lab.netlab_ok(&["publish", "netns0", "6300:6300/udp"]);
    let mut capture = Session::spawn(&lab, "netns1", &with_packets(CAPTURE), &["ceth1"]);
    sources(&mut capture);
    let mut inbound = Session::open(&lab, "wan", HOST_EXT, 5000);
    let mut outbound = Session::open(&lab, "netns0", WAN, 7000);
    for (i, session) in [&mut inbound, &mut outbound].into_iter().enumerate() {
        let reply = session.exchange(&format!("before-{i}"));
        assert!(
            reply.ends_with(&format!("before-{i}")),
            "{backend}: {reply}"
        );
    }
    let counted = |name| backend.contains("ebpf").then(|| datapath_stat(&lab, name));
    let (martians, direct) = (counted("martians"), counted("direct_access"));

    // The outbound flow as it leaves the host (masquerade keeps its port here): the ICMP
    // errors the fuzzer quotes it in reach the container's socket, which must carry on.
    let local_port = lab.sh_ok("netns0", "ss -Htn state established dst 198.18.0.2:7000");
    let local_port = local_port
        .split_whitespace()
        .nth(2)
        .and_then(|local| local.rsplit_once(':'))
        .map_or_else(
            || panic!("no outbound connection in netns0: {local_port:?}"),
            |(_, port)| port.to_string(),
        );
    let quoted = format!("{HOST_EXT}:{local_port}>{WAN}:7000/tcp");
    let host_mac = mac_of(&lab, "host", "eth0");
    let frames = FRAMES.to_string();
    let out = checked(
        "the fuzzer in wan",
        &run_in(
            &lab.ns("wan"),
            120,
            &[
                "python3",
                "-c",
                &with_packets(FUZZ_FRAMES),
                "eth0",
                &host_mac,
                HOST_EXT,
                "5000",
                "6300",
                "6999",
                NETNS1,
                &frames,
                "7",
                &quoted,
            ],
        ),
    );
    let sent: BTreeMap<String, u64> =
        serde_json::from_str(out.trim()).unwrap_or_else(|err| panic!("fuzzer said {out:?}: {err}"));
    // At least: a kind may take several frames (fragments), and the fuzzer stops at the
    // first one that reaches the count.
    let total: u64 = sent.values().sum();
    assert!(total >= u64::from(FRAMES), "{backend}: sent {sent:?}");

    // Some crafted frames have bad checksums on purpose; the real flows must cause none.
    std::thread::sleep(std::time::Duration::from_millis(300));
    lab.forget_checksum_errors();
    // The real flows carry on, on both their connections, byte for byte.
    for (i, session) in [&mut inbound, &mut outbound].into_iter().enumerate() {
        for n in 0..20 {
            let message = format!("after-{i}-{n}");
            let reply = session.exchange(&message);
            assert!(
                reply.ends_with(&message),
                "{backend}: {message} came back as {reply}"
            );
        }
    }
    inbound.close();
    outbound.close();
    // A container that publishes nothing saw none of it.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let seen = sources(&mut capture);
    let leaked: Vec<_> = seen.iter().filter(|(ip, _)| is_fuzzer(ip)).collect();
    assert!(
        leaked.is_empty(),
        "{backend}: netns1 received crafted frames from {leaked:?}"
    );
    // The counters account for the drops that have one reason only.
    if let (Some(martians), Some(direct)) = (martians, direct) {
        let grew = |name, before: u64| datapath_stat(&lab, name) - before;
        assert_eq!(
            grew("martians", martians),
            sent["martian"],
            "{backend}: martians"
        );
        assert_eq!(
            grew("direct_access", direct),
            sent["direct"],
            "{backend}: direct access"
        );
    }
    let summary: Value = serde_json::json!({ "backend": backend, "sent": sent });
    println!("{summary}");
}

netlab_e2e::backend_tests!(crafted_frames_leave_real_flows_alone);
