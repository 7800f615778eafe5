//! A lab's behaviour as its users see it: masquerade, published ports (TCP, UDP, ranges,
//! hairpin, the host's own traffic), payload integrity and concurrency through a published
//! port, unpublish, input errors, publishing from a lab file, and `down`. Every case runs real
//! clients and servers inside the namespaces of a lab of its own, and takes the NAT backend as
//! a parameter: `backend_tests!` turns each case into one `#[test]` per backend. The address
//! family is one more parameter: a configuration whose arguments say `--ipv6` runs each case
//! in IPv6 on a dual-stack lab ([`Net`] holds the addresses of each family).
//!
//! All traffic stays inside the lab: the container subnets 172.18.0.0/16 and
//! `fd00:172:18::/64`, the external link (198.18.0.0/24, `2001:2::/64`) between the host node
//! and `wan`, and loopback inside the lab's namespaces.
//! The harness is `netlab_e2e::harness`, the Python programs `netlab_e2e::fixtures`.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use netlab_e2e::{
    fixtures::{MANY_FLOWS, RAW_SYN, UDP_PROBE, UDP_TWICE},
    harness::{
        CaseLab, Guarded, Mode, Net, PYTHON, Server, Session, TempFile, assert_http, assert_probe,
        assert_refused, checked, client, default_lab, lab_with, pair, pairs, ports, published,
        root_iptables, run_in, status,
    },
};

/// A lab with one container, `web` (172.18.0.30), whose port 80 is published on host port
/// 8080 by the file itself.
const WEB_LAB: &str = r#"
[[container]]
name = "web"
address = "172.18.0.30"

[[publish]]
node = "web"
ports = ["8080:80"]
"#;

/// Case 1: Containers reach the outside through masquerade, and the outside cannot reach them
/// directly: a server in `wan` sees connections from netns0 and netns1 coming from the host's
/// external address 198.18.0.1 and answers them; `ping` from netns0 to `wan` works; `wan`
/// has no way to 172.18.0.10 even though something listens there (no route: the connect
/// fails at once with ENETUNREACH).
fn masquerade(backend: &str) {
    let lab = default_lab(backend);
    let net = lab.net;
    let wan = net.wan;
    let _outside = Server::start(&lab, "wan", Mode::Http, &[7777]);
    for container in ["netns0", "netns1"] {
        assert_http(&lab, container, net.wan, 7777, 7777, net.host_ext);
    }
    let ping = checked(
        "ping from netns0 to wan",
        &run_in(
            &lab.ns("netns0"),
            15,
            &["ping", "-c", "3", "-i", "0.2", "-W", "2", net.wan],
        ),
    );
    assert!(
        ping.contains("3 packets transmitted, 3 received"),
        "ping from netns0 to {wan}: {ping}"
    );

    let _inside = Server::start(&lab, "netns0", Mode::Http, &[5000]);
    assert_probe(
        &lab,
        "wan",
        net.netns0,
        5000,
        "ENETUNREACH",
        "wan has no route to the container subnet",
    );
}

/// Case 2: A published port works from outside without a proxy: `wan` fetches
/// `http://198.18.0.1:5000/` from the server in netns0:5000, which sees the request coming
/// from 198.18.0.2 itself; and `ports` counts the traffic on that port: on iptables exactly
/// the 3 connections (the nat table sees their SYNs only), on eBPF their packets.
fn published_port_from_wan(backend: &str) {
    let lab = default_lab(backend);
    let net = lab.net;
    let _web = Server::start(&lab, "netns0", Mode::Http, &[5000]);
    for _ in 0..3 {
        assert_http(&lab, "wan", net.host_ext, 5000, 5000, net.wan);
    }
    let rows = ports(&lab);
    let row = rows
        .as_array()
        .expect("ports --json is an array")
        .iter()
        .find(|row| row["node"] == "netns0" && row["spec"] == "5000:5000/tcp")
        .unwrap_or_else(|| panic!("no row for netns0 5000:5000/tcp: {rows}"));
    let (packets, bytes) = (
        row["packets"].as_u64().expect("packets"),
        row["bytes"].as_u64().expect("bytes"),
    );
    if row["unit"] == "connections" {
        // The iptables backend counts its DNAT rule's packets: a connection's first, its SYN,
        // 60 bytes from Linux (20 of IPv4, 20 of TCP, 20 of options: MSS, SACK permitted,
        // timestamps, window scale); 80 in IPv6, whose header is 40.
        assert_eq!(
            (packets, bytes),
            (3, 3 * net.syn_bytes),
            "3 connections through 5000:5000/tcp, counted by their SYNs: {row}"
        );
    } else {
        // The eBPF datapath counts every packet of the port's flows, both ways. How many a
        // connection takes is not fixed (delayed ACKs, a response in one segment or two), so
        // the count is bounded by what every one has at least: SYN, SYN-ACK, ACK, the
        // request, the response, a FIN each way; every packet is at least 40 bytes of IPv4
        // and TCP headers, and at most 1,500.
        assert_eq!(row["unit"], "packets", "{row}");
        assert!(
            packets >= 3 * 7 && (40 * packets..=1500 * packets).contains(&bytes),
            "3 connections through 5000:5000/tcp: {row}"
        );
    }
}

/// Case 3: The host node's own processes reach a published port (the OUTPUT path), through its
/// external address and through 127.0.0.1. The container sees the host's address as the
/// source: 198.18.0.1 unchanged, and for loopback the bridge address 172.18.0.1 (a container
/// cannot answer 127.0.0.1), as Docker does without its userland proxy. In IPv6 the eBPF
/// backend's socket hooks do the same for `::1`; with the netfilter backends `::1` stays the
/// host's own (the kernel drops IPv6 loopback traffic that leaves `lo`, and there is no
/// `route_localnet` for it): nothing listens there, so the host refuses at once.
fn from_the_host_node(backend: &str) {
    let lab = default_lab(backend);
    let net = lab.net;
    let _web = Server::start(&lab, "netns0", Mode::Http, &[5000]);
    assert_http(&lab, "host", net.host_ext, 5000, 5000, net.host_ext);
    if net == Net::V4 || backend.contains("ebpf") {
        assert_http(&lab, "host", net.localhost, 5000, 5000, net.gateway);
    } else {
        assert_refused(
            &lab,
            "host",
            net.localhost,
            5000,
            "::1 is not forwarded: the host node itself answers",
        );
    }
}

/// Case 4: Hairpin: a container reaches another container's published port through the host's
/// external address, and the server sees the real client (172.18.0.20); a container reaches
/// its own published port that way too (self-hairpin), the connection masqueraded to the
/// bridge address so the reply comes back the way it went. The bridge address itself is not
/// a published address.
fn hairpin(backend: &str) {
    let lab = default_lab(backend);
    let net = lab.net;
    let _web = Server::start(&lab, "netns0", Mode::Http, &[5000]);
    assert_http(&lab, "netns1", net.host_ext, 5000, 5000, net.netns1);
    assert_http(&lab, "netns0", net.host_ext, 5000, 5000, net.gateway);
    assert_refused(
        &lab,
        "netns1",
        net.gateway,
        5000,
        "port 5000 is published on every host address except the bridge's: the host node itself answers",
    );
}

/// Case 5: A published UDP port: datagrams of random content and sizes (1 to 1472 bytes) sent from
/// `wan` to 198.18.0.1:6000 come back byte for byte from that same address and port, and the
/// server in netns1 sees them coming from 198.18.0.2.
fn udp(backend: &str) {
    let lab = default_lab(backend);
    let net = lab.net;
    lab.netlab_ok(&["publish", "netns1", "6000:6000/udp"]);
    let _echo = Server::start(&lab, "netns1", Mode::Udp, &[6000]);
    assert_eq!(
        client(&lab, "wan", &["udp", net.host_ext, "6000", "50"]).trim(),
        "matched=50/50"
    );
    assert_eq!(
        client(&lab, "wan", &["udp-peer", net.host_ext, "6000"]).trim(),
        net.wan
    );
}

/// Case 6: A range maps 1:1: with 7000-7009:8000-8009 published, host port 7000+k reaches
/// container port 8000+k (servers on 8000, 8005 and 8009 say which port accepted), and the
/// container ports are not published as host ports themselves.
fn port_ranges(backend: &str) {
    let lab = default_lab(backend);
    let net = lab.net;
    lab.netlab_ok(&["publish", "netns0", "7000-7009:8000-8009"]);
    assert!(
        published(&lab).contains(&pair("netns0", "7000-7009:8000-8009/tcp")),
        "{:?}",
        published(&lab)
    );
    let _web = Server::start(&lab, "netns0", Mode::Http, &[8000, 8005, 8009]);
    for offset in [0, 5, 9] {
        assert_http(
            &lab,
            "wan",
            net.host_ext,
            7000 + offset,
            8000 + offset,
            net.wan,
        );
    }
    assert_refused(
        &lab,
        "wan",
        net.host_ext,
        8000,
        "host port 8000 is not published: the host node itself answers",
    );
}

/// Case 7: A 1,000-port range: `ports --json` and `status --json` list it whole, and its first,
/// a middle and its last port reach their listeners.
fn thousand_port_range(backend: &str) {
    let lab = default_lab(backend);
    let net = lab.net;
    lab.netlab_ok(&["publish", "netns0", "20000-20999:20000-20999"]);
    let spec = pair("netns0", "20000-20999:20000-20999/tcp");
    let listed = published(&lab);
    assert!(listed.contains(&spec), "status --json: {listed:?}");
    let status = status(&lab);
    let entry = status["published"]
        .as_array()
        .expect("published is an array")
        .iter()
        .find(|row| row["spec"] == "20000-20999:20000-20999/tcp")
        .expect("listed above");
    assert_eq!(entry[net.container_key], net.netns0, "{entry}");
    let rows = ports(&lab);
    assert!(pairs(&rows).contains(&spec), "ports --json: {rows}");

    let _web = Server::start(&lab, "netns0", Mode::Http, &[20000, 20500, 20999]);
    for port in [20000, 20500, 20999] {
        assert_http(&lab, "wan", net.host_ext, port, port, net.wan);
    }
}

/// Case 8: 10 MB in each direction through a published port keep their integrity: `wan` uploads
/// 10 MiB of random bytes and the server's sha256 of what it read matches the client's; the
/// server sends 10 MiB of random bytes and the client's sha256 matches the server's. The
/// receiving socket merges the segments into one another as it does after the host's
/// routing (below). The same from netns1 through the host's external address (hairpin), its
/// merging not checked: the receiver counts about 190 segments for 10 MiB there and merged
/// none of them in its backlog on any backend, iptables included. Then 1 MiB each way from `wan`
/// with checksums finished in software.
fn ten_megabytes_both_ways(backend: &str) {
    let lab = default_lab(backend);
    bulk_both_ways(&lab, "wan", "10485760", Merging::Checked);
    bulk_both_ways(&lab, "netns1", "10485760", Merging::NotChecked);
    // Then with the NAT's packets having their checksums finished in software: the host
    // node's external device stops offloading them, while the containers and `wan` still
    // do. Their segments reach the NAT with a partial checksum (the pseudo header's sum
    // only), which it must move to the new addresses, or the checksum the external device
    // computes is wrong and `wan` drops every segment.
    lab.sh_ok("host", "ethtool -K eth0 tx off >/dev/null");
    bulk_both_ways(&lab, "wan", "1048576", Merging::NotChecked);
}

/// Whether [`bulk_both_ways`] checks that the receiving socket merged segments.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Merging {
    /// A segment that arrives while the reader holds the socket waits in its backlog, merged
    /// into the one waiting before it (`TCPBacklogCoalesce`) unless that one shares its head
    /// with the sender's copy (a clone, as a local socket sends: the sender keeps its copy
    /// until the receiver, which has not processed the backlog yet, acknowledges it), or the
    /// new one carries payload in a head of its own. The host's routing gives a forwarded
    /// segment its own head (`skb_cow`), so a GSO segment must not skip it (the eBPF fast
    /// path hands GSO segments to the stack), and no datapath may pull payload into the
    /// head. Either fault stopped nearly all such merging (the first: 0 or 1 segment of about
    /// 185 in each 10 MiB, by hand), and bulk TCP ran a tenth to a sixth slower than through
    /// iptables. By hand, one segment in 30 or more merged this way, whatever the datapath;
    /// at least one in 50 must, over up to [`MERGE_TRANSFERS`] transfers.
    Checked,
    NotChecked,
}

/// How many transfers a direction gets to show merging. Merging depends on when segments
/// arrive while the reader holds the socket: a CI run once saw 0 of 175 merged through a
/// sound datapath, though by hand every transfer merged 6 to 68 (alone, with sender and
/// receiver on one CPU or on two, and beside three CPU hogs). The faults [`Merging`] guards
/// against merge next to none in every transfer: mutants `gso-upload-via-stack(-v6)` and
/// `headers-only-pulled` still fail this check.
const MERGE_TRANSFERS: u64 = 3;

/// `size` bytes from `sender` to netns0 through a published port and back, each way checked
/// byte for byte (both ends' byte count and digest).
fn bulk_both_ways(lab: &CaseLab, sender: &str, size: &str, merging: Merging) {
    let _bulk = Server::start(lab, "netns0", Mode::Bulk, &[5000]);
    for (direction, receiver) in [("put", "netns0"), ("get", sender)] {
        if merging == Merging::NotChecked {
            transfer_intact(lab, sender, direction, size);
            continue;
        }
        let (mut received, mut merged) = (0, 0);
        for transfer in 1..=MERGE_TRANSFERS {
            let before = received_and_merged(lab, receiver);
            transfer_intact(lab, sender, direction, size);
            let after = received_and_merged(lab, receiver);
            received += after.0 - before.0;
            merged += after.1 - before.1;
            if merged * 50 >= received {
                break;
            }
            assert!(
                transfer < MERGE_TRANSFERS,
                "{direction} from {sender}: the receiver merged {merged} of {received} segments in its backlog over {transfer} transfers"
            );
        }
    }
}

/// `size` bytes from `sender` to netns0 (`put`) or back (`get`), checked byte for byte.
fn transfer_intact(lab: &CaseLab, sender: &str, direction: &str, size: &str) {
    let out = client(lab, sender, &[direction, lab.net.host_ext, "5000", size]);
    let client_side = out.lines().find_map(|line| line.strip_prefix("client "));
    let server_side = out.lines().find_map(|line| line.strip_prefix("server "));
    assert!(
        client_side.is_some_and(|seen| seen.starts_with(&format!("{size} "))),
        "{direction}: {out}"
    );
    assert_eq!(client_side, server_side, "{direction}: {out}");
}

/// The TCP segments `node`'s namespace received, and how many of them its sockets merged
/// into the one before them in the backlog (see [`Merging`]).
fn received_and_merged(lab: &CaseLab, node: &str) -> (u64, u64) {
    let out = lab.sh_ok(node, "nstat -asz TcpInSegs TcpExtTCPBacklogCoalesce");
    let counter = |name: &str| -> u64 {
        out.lines()
            .find_map(|line| {
                let mut fields = line.split_whitespace();
                (fields.next() == Some(name)).then(|| fields.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("nstat in {node} shows no {name}: {out}"))
    };
    (counter("TcpInSegs"), counter("TcpExtTCPBacklogCoalesce"))
}

/// Case 9: 200 concurrent connections through one published port: all are established at once,
/// each echoes its own distinct line intact, and the server saw every one come from `wan`.
fn two_hundred_concurrent_connections(backend: &str) {
    let lab = default_lab(backend);
    let net = lab.net;
    let wan = net.wan;
    let _echo = Server::start(&lab, "netns0", Mode::Lines, &[5000]);
    let out = client(&lab, "wan", &["concurrent", net.host_ext, "5000", "200"]);
    assert_eq!(
        out.lines().next(),
        Some(format!("ok=200/200 peers={wan}").as_str()),
        "{out}"
    );
}

/// Case 10: Unpublish takes effect at once and only for its port: after unpublishing 9001 (named
/// as `9001:9001/tcp`, its canonical form, though published as `9001:9001`), connecting to
/// it from `wan` fails, 9002 still accepts new connections, and a connection to 9002 that was
/// established before keeps carrying data both ways.
fn unpublish(backend: &str) {
    let lab = default_lab(backend);
    let net = lab.net;
    let wan = net.wan;
    lab.netlab_ok(&["publish", "netns0", "9001:9001", "9002:9002"]);
    let _echo = Server::start(&lab, "netns0", Mode::Lines, &[9001, 9002]);
    for port in ["9001", "9002"] {
        assert_eq!(
            client(&lab, "wan", &["lines", net.host_ext, port, "hello"]).trim(),
            format!("{wan} {port} hello"),
            "before unpublish, port {port}"
        );
    }
    let mut session = Session::open(&lab, "wan", net.host_ext, 9002);
    assert_eq!(session.exchange("before"), format!("{wan} 9002 before"));

    lab.netlab_ok(&["unpublish", "netns0", "9001:9001/tcp"]);

    assert_eq!(
        session.exchange("after"),
        format!("{wan} 9002 after"),
        "the connection established before the unpublish"
    );
    assert_refused(
        &lab,
        "wan",
        net.host_ext,
        9001,
        "9001 was unpublished: the host node itself answers",
    );
    assert_eq!(
        client(&lab, "wan", &["lines", net.host_ext, "9002", "again"]).trim(),
        format!("{wan} 9002 again"),
        "a new connection to 9002"
    );
    assert_eq!(
        session.exchange("still"),
        format!("{wan} 9002 still"),
        "the connection established before the unpublish"
    );
    session.close();
    let listed = published(&lab);
    assert!(
        !listed.contains(&pair("netns0", "9001:9001/tcp"))
            && listed.contains(&pair("netns0", "9002:9002/tcp")),
        "{listed:?}"
    );
}

/// Case 10b: A port published after another was unpublished counts only its own traffic: a
/// connection to 9001 outlives 9001's unpublishing and keeps carrying data, 9003 (published
/// next, so the eBPF backend hands it 9001's counter slot) still counts nothing, then counts
/// its own first connection.
fn counters_of_a_new_port_start_empty(backend: &str) {
    let lab = default_lab(backend);
    let net = lab.net;
    let wan = net.wan;
    lab.netlab_ok(&["publish", "netns0", "9001:9001"]);
    let _echo = Server::start(&lab, "netns0", Mode::Lines, &[9001, 9003]);
    let mut session = Session::open(&lab, "wan", net.host_ext, 9001);
    assert_eq!(session.exchange("before"), format!("{wan} 9001 before"));
    lab.netlab_ok(&["unpublish", "netns0", "9001:9001/tcp"]);
    lab.netlab_ok(&["publish", "netns0", "9003:9003"]);
    for round in 0..5 {
        assert_eq!(
            session.exchange(&format!("after{round}")),
            format!("{wan} 9001 after{round}"),
            "the connection established before the unpublish"
        );
    }
    let count = || {
        let rows = ports(&lab);
        rows.as_array()
            .expect("rows")
            .iter()
            .find(|row| row["spec"] == "9003:9003/tcp")
            .and_then(|row| row["packets"].as_u64())
            .unwrap_or_else(|| panic!("no counter for 9003: {rows}"))
    };
    assert_eq!(count(), 0, "9003 counted the traffic of 9001's connection");
    assert_eq!(
        client(&lab, "wan", &["lines", net.host_ext, "9003", "hello"]).trim(),
        format!("{wan} 9003 hello")
    );
    assert!(count() > 0, "9003 did not count its own connection");
    session.close();
}

/// Case 11: Bad input is refused with one clear line on stderr and a non-zero exit, and leaves the
/// published set (and the datapath) as it was; TCP and UDP ports are allocated separately.
fn bad_input(backend: &str) {
    let lab = default_lab(backend);
    let net = lab.net;
    let _web = Server::start(&lab, "netns0", Mode::Http, &[5000, 8100]);
    let before = status(&lab)["published"].clone();
    let cases: &[(&[&str], &str)] = &[
        (&["publish", "netns0", "0:80"], "0:80"),
        (&["publish", "netns0", "70000:80"], "70000"),
        (&["publish", "netns0", "8080:0"], "8080:0"),
        (&["publish", "netns0", "7000-7001:80"], "7000-7001"),
        (&["publish", "netns0", "7000-7002:80-81"], "7000-7002"),
        (&["publish", "nosuch", "8080:80"], "nosuch"),
        (&["publish", "netns0", "5000:5001"], "already"),
        (&["publish", "netns0", "5000:5000"], "already"),
        (&["publish", "netns1", "4990-5010:4990-5010"], "already"),
        (&["publish", "netns0", "203.0.113.9:8080:80"], "203.0.113.9"),
        // All or nothing: the good spec before the conflicting one is not published either.
        (&["publish", "netns0", "8100:8100", "5000:5000"], "already"),
        (&["publish", "netns0", "8200:80", "8200:81"], "8200"),
        (&["unpublish", "netns0", "8080:80"], "8080:80"),
        (&["unpublish", "netns1", "5000:5000"], "5000:5000"),
        (&["unpublish", "nosuch", "5000:5000"], "nosuch"),
    ];
    for (args, needle) in cases {
        let out = lab.netlab(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "netlab {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "netlab {args:?}: one line on stderr: {stderr:?}"
        );
        assert!(
            stderr.contains(needle),
            "netlab {args:?}: stderr should mention {needle:?}: {stderr}"
        );
        assert_eq!(
            status(&lab)["published"],
            before,
            "netlab {args:?} changed the published set"
        );
    }
    assert_refused(
        &lab,
        "wan",
        net.host_ext,
        8100,
        "the failed `publish 8100:8100 5000:5000` must not publish 8100: the host node itself answers",
    );
    assert_http(&lab, "wan", net.host_ext, 5000, 5000, net.wan);

    lab.netlab_ok(&["publish", "netns0", "5000:5000/udp"]);
    let listed = published(&lab);
    for spec in ["5000:5000/tcp", "5000:5000/udp"] {
        assert!(listed.contains(&pair("netns0", spec)), "{listed:?}");
    }
    let _echo = Server::start(&lab, "netns0", Mode::Udp, &[5000]);
    assert_eq!(
        client(&lab, "wan", &["udp", net.host_ext, "5000", "5"]).trim(),
        "matched=5/5"
    );
    assert_http(&lab, "wan", net.host_ext, 5000, 5000, net.wan);
}

/// Case 12: `down` removes everything: the lab's namespaces and state file are gone, `status` says
/// the lab is not up, and for a lab whose host node is a namespace, the root namespace's
/// iptables rules are the same before `up`, while the lab is up and after `down`.
fn down_removes_everything(backend: &str) {
    let before = root_iptables();
    let file = TempFile::new("toml", &format!("host = \"namespace\"\n{WEB_LAB}"));
    let lab = lab_with(backend, &["-f", file.path()]);
    let net = lab.net;
    let prefix = format!("{}-", lab.name);
    let state = PathBuf::from(format!("/run/netlab/{}.json", lab.name));
    let namespaces = || -> Vec<String> {
        let list = netlab_e2e::cmd_ok("ip", &["netns", "list"]);
        list.lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|name| name.starts_with(&prefix))
            .map(str::to_string)
            .collect()
    };
    {
        let _web = Server::start(&lab, "web", Mode::Http, &[80]);
        assert_http(&lab, "wan", net.host_ext, 8080, 80, net.wan);
    }
    assert_eq!(namespaces().len(), 3, "host, wan, web: {:?}", namespaces());
    assert!(state.exists(), "{} while the lab is up", state.display());
    assert_eq!(
        root_iptables(),
        before,
        "`up` changed the root namespace's rules"
    );
    // The case's end checks need the namespaces: run them before `down` removes them.
    lab.check_no_nat_rules();
    lab.check_checksums();

    lab.netlab_ok(&["down"]);

    assert_eq!(namespaces(), Vec::<String>::new(), "namespaces after down");
    assert!(!state.exists(), "{} after down", state.display());
    let pins = PathBuf::from(format!("/sys/fs/bpf/netlab/{}", lab.name));
    assert!(!pins.exists(), "{} after down", pins.display());
    let err = lab.netlab_err(&["status"]);
    assert!(err.contains("not up"), "status after down: {err}");
    assert_eq!(
        root_iptables(),
        before,
        "the root namespace's rules after down"
    );
}

/// Case 13: A port published by the lab file is reachable from `wan` right after `up -f`: 8080 on
/// the host reaches port 80 of container `web`, which sees the client 198.18.0.2.
fn publish_from_lab_file(backend: &str) {
    let file = TempFile::new("toml", WEB_LAB);
    let lab = lab_with(backend, &["-f", file.path()]);
    let net = lab.net;
    assert_eq!(published(&lab), [pair("web", "8080:80/tcp")]);
    let _web = Server::start(&lab, "web", Mode::Http, &[80]);
    assert_http(&lab, "wan", net.host_ext, 8080, 80, net.wan);
}

/// Case 14: ICMP errors about translated flows reach the sender's socket: a container's
/// datagram to a closed port in `wan` (masqueraded) and a `wan` datagram to a published UDP
/// port nobody listens on (DNAT) both end with the socket seeing "connection refused", which
/// needs the quoted header inside the ICMP error translated back.
fn icmp_errors(backend: &str) {
    let lab = default_lab(backend);
    let net = lab.net;
    let out = checked(
        "UDP probe from netns0",
        &run_in(
            &lab.ns("netns0"),
            10,
            &[PYTHON, "-c", UDP_PROBE, net.wan, "9"],
        ),
    );
    assert_eq!(
        out.trim(),
        "refused",
        "port unreachable from wan back through masquerade"
    );
    lab.netlab_ok(&["publish", "netns0", "6100:6100/udp"]);
    let out = checked(
        "UDP probe from wan",
        &run_in(
            &lab.ns("wan"),
            10,
            &[PYTHON, "-c", UDP_PROBE, net.host_ext, "6100"],
        ),
    );
    assert_eq!(
        out.trim(),
        "refused",
        "port unreachable from the container back through DNAT"
    );
}

/// Case 15: 10,000 masqueraded UDP flows from one container, all open at once: every reply
/// reaches the socket that sent the request (no mapping mixed up), and none is lost. The
/// senders are paced (at most 100 requests in flight) so that no socket buffer or queue can
/// overflow: each flow sends once, and a datagram sent again (after 2 s without its reply)
/// is a loss, which fails the case.
fn ten_thousand_udp_flows(backend: &str) {
    let lab = default_lab(backend);
    let net = lab.net;
    let _echo = Server::start(&lab, "wan", Mode::Udp, &[7000]);
    let out = checked(
        "10,000 UDP flows from netns0",
        &run_in(
            &lab.ns("netns0"),
            60,
            &[PYTHON, "-c", MANY_FLOWS, net.wan, "7000", "10000", "100"],
        ),
    );
    assert_eq!(
        out.trim(),
        "10000 0 0",
        "flows that got their own reply, replies to a wrong socket, datagrams sent again"
    );
}

/// Case 16: a port published on 127.0.0.1 is for the host's own processes only: SYNs to
/// 127.0.0.1 arriving from the external link are never forwarded to the container (Docker's
/// moby#45610), while a host process reaches it. The same raw SYNs to the external address
/// of a port published everywhere are counted, so the check can fail. In IPv6 on the
/// netfilter backends, where `::1` cannot be forwarded (case 3), publishing on `[::1]` is
/// refused with one line that says why, and nothing is published; on eBPF a host process
/// reaches `[::1]`, and `wan` the port published everywhere (the kernel itself drops `::1`
/// from a wire, so raw SYNs there would prove nothing of netlab's).
fn loopback_port_is_not_reachable_from_outside(backend: &str) {
    let lab = default_lab(backend);
    let net = lab.net;
    if net == Net::V6 && backend.contains("ebpf") {
        let _web = Server::start(&lab, "netns0", Mode::Http, &[7100]);
        lab.netlab_ok(&["publish", "netns0", "[::1]:7100:7100", "7101:7100"]);
        assert_http(&lab, "host", net.localhost, 7100, 7100, net.gateway);
        assert_http(&lab, "wan", net.host_ext, 7101, 7100, net.wan);
        assert_refused(
            &lab,
            "wan",
            net.host_ext,
            7100,
            "7100 is published on ::1 only",
        );
        return;
    }
    if net == Net::V6 {
        let err = lab.netlab_err(&["publish", "netns0", "[::1]:7100:7100", "7101:7100"]);
        assert!(
            err.trim().lines().count() == 1 && err.contains("[::1]:7100:7100/tcp"),
            "{err}"
        );
        assert_eq!(published(&lab), [pair("netns0", "5000:5000/tcp")]);
        return;
    }
    let _web = Server::start(&lab, "netns0", Mode::Http, &[7100]);
    lab.netlab_ok(&["publish", "netns0", "127.0.0.1:7100:7100", "7101:7100"]);
    let count = |spec: &str| {
        let rows = ports(&lab);
        rows.as_array()
            .expect("rows")
            .iter()
            .find(|row| row["spec"] == spec)
            .and_then(|row| row["packets"].as_u64())
            .unwrap_or_else(|| panic!("no counter for {spec}: {rows}"))
    };
    let raw_syns = |ip: &str, port: &str| {
        checked(
            "raw SYNs from wan",
            &run_in(&lab.ns("wan"), 10, &[PYTHON, "-c", RAW_SYN, ip, port]),
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    raw_syns("127.0.0.1", "7100");
    assert_eq!(
        count("127.0.0.1:7100:7100/tcp"),
        0,
        "SYNs to 127.0.0.1 from the wire were translated"
    );
    raw_syns(net.host_ext, "7101");
    let counted = count("7101:7100/tcp");
    if backend.contains("ebpf") {
        // Every packet of the flow: the 3 SYNs, and the container's SYN-ACKs and the resets
        // `wan` answers them with (how many of those depends on timing).
        assert!(
            counted >= 3,
            "the same 3 raw SYNs to a port published everywhere are translated: {counted} packets"
        );
    } else {
        // One tuple three times: one connection to the kernel's conntrack, unless the
        // container's SYN-ACK and `wan`'s reset ended it between two SYNs (timing).
        assert!(
            (1..=3).contains(&counted),
            "the same 3 raw SYNs to a port published everywhere are translated: {counted} connections"
        );
    }
    assert_http(&lab, "host", "127.0.0.1", 7100, 7100, net.gateway);
}

/// Case 17: unpublishing a UDP port also stops a flow that is already running: a client that
/// keeps sending from the same socket is not forwarded by the old mapping (Docker flushes
/// conntrack for UDP mappings it removes). The same for a port of a range.
fn unpublish_udp_forgets_running_flows(backend: &str) {
    let lab = default_lab(backend);
    let net = lab.net;
    let _echo = Server::start(&lab, "netns1", Mode::Udp, &[6200]);
    for spec in ["6200:6200/udp", "6190-6210:6190-6210/udp"] {
        lab.netlab_ok(&["publish", "netns1", spec]);
        let mut client = Guarded::spawn(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &lab.ns("wan"),
                    PYTHON,
                    "-c",
                    UDP_TWICE,
                    net.host_ext,
                    "6200",
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        );
        let mut stdin = client.0.stdin.take().expect("stdin");
        let mut lines = BufReader::new(client.0.stdout.take().expect("stdout")).lines();
        let first = lines.next().expect("a first reply").expect("utf-8");
        assert_eq!(first, "one", "{spec}: the flow works while published");
        lab.netlab_ok(&["unpublish", "netns1", spec]);
        writeln!(stdin, "go").expect("signal the client");
        let second = lines.next().expect("a second line").expect("utf-8");
        assert_eq!(
            second, "timeout",
            "{spec}: the old mapping still forwarded after unpublish"
        );
    }
}

/// Every case, on every configuration (`backend_tests!`) and, in IPv6, on those that carry
/// it (`backend_tests!(ipv6: ...)`): one list for both.
macro_rules! every_case {
    ($($configurations:tt)*) => {
        netlab_e2e::backend_tests!($($configurations)*
            masquerade,
            published_port_from_wan,
            from_the_host_node,
            hairpin,
            udp,
            port_ranges,
            thousand_port_range,
            ten_megabytes_both_ways,
            two_hundred_concurrent_connections,
            unpublish,
            counters_of_a_new_port_start_empty,
            bad_input,
            down_removes_everything,
            publish_from_lab_file,
            icmp_errors,
            ten_thousand_udp_flows,
            loopback_port_is_not_reachable_from_outside,
            unpublish_udp_forgets_running_flows,
        );
    };
}

every_case!();
every_case!(ipv6:);
