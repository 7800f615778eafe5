//! netlab-cni, driven the way libcni and the reference plugins' `portmap` integration test
//! drive a chained plugin: `bridge` + `host-local` + `netlab-cni`, in a host namespace of
//! the test's own, for each CNI version; real traffic from `wan`, from the host and between
//! containers.

use netlab_e2e::{
    cni::{CNI_GATEWAY, CNI_GATEWAY6, Call, CniHost},
    harness::{HOST_EXT, Mode, Server, WAN, assert_http, assert_refused, client},
};
use serde_json::{Value, json};

fn tcp(host: u16, container: u16) -> Value {
    json!({"hostPort": host, "containerPort": container, "protocol": "tcp", "hostIP": ""})
}

fn udp(host: u16, container: u16) -> Value {
    json!({"hostPort": host, "containerPort": container, "protocol": "udp", "hostIP": ""})
}

/// Datagrams to `port` from `from` all echoed (`matched=20/20`), and the echo server saw
/// `peer`.
#[track_caller]
fn assert_udp(host: &CniHost, from: &str, port: u16, peer: &str) {
    let port = port.to_string();
    let echoed = client(&host.lab, from, &["udp", HOST_EXT, &port, "20"]);
    assert_eq!(
        echoed.trim(),
        "matched=20/20",
        "UDP from {from} to {HOST_EXT}:{port}"
    );
    let seen = client(&host.lab, from, &["udp-peer", HOST_EXT, &port]);
    assert_eq!(
        seen.trim(),
        peer,
        "UDP from {from}: the peer the container saw"
    );
}

/// netlab-cni's error: its code and message.
fn error_of(value: &Value) -> (u64, String) {
    (
        value["code"].as_u64().expect("an error code"),
        value["msg"].as_str().expect("an error message").to_owned(),
    )
}

/// Everything `portmap`'s integration test checks, and what it cannot: TCP and UDP from
/// outside with the client's address kept, a host IP, a range of ports, the host's own
/// connections (external address and 127.0.0.1), hairpin from another container (whose
/// address the server sees) and from the container itself, masquerade out, CHECK, no netfilter rule anywhere, DEL.
fn publishes_and_removes(version: &str) {
    let mut host = CniHost::new(version);
    host.options = json!({"masquerade": true});
    let web = host
        .add(
            "web",
            &json!([
                tcp(8080, 80),
                udp(5353, 53),
                {"hostPort": 8443, "containerPort": 80, "protocol": "tcp", "hostIP": HOST_EXT},
                tcp(9000, 80), tcp(9001, 80), tcp(9002, 80),
            ]),
        )
        .expect("ADD of web");
    let _http = Server::start(&host.lab, "web", Mode::Http, &[80]);
    let _echo = Server::start(&host.lab, "web", Mode::Udp, &[53]);
    let other = host
        .add("other", &json!([]))
        .expect("ADD of a container without ports");
    assert_ne!(CniHost::address_of(&other), CniHost::address_of(&web));

    assert_http(&host.lab, "wan", HOST_EXT, 8080, 80, WAN);
    assert_http(&host.lab, "wan", HOST_EXT, 8443, 80, WAN);
    for port in 9000..=9002 {
        assert_http(&host.lab, "wan", HOST_EXT, port, 80, WAN);
    }
    assert_udp(&host, "wan", 5353, WAN);
    // The host's own connections: from its external address to it, from the bridge's
    // address to 127.0.0.1 (as the lab's eBPF and iptables backends do).
    assert_http(&host.lab, "host", HOST_EXT, 8080, 80, HOST_EXT);
    assert_http(&host.lab, "host", "127.0.0.1", 8080, 80, CNI_GATEWAY);
    // Hairpin keeps the client's address, as in the lab; a container reaching its own port
    // is masqueraded to the bridge's address so the replies come back the same way.
    assert_http(
        &host.lab,
        "other",
        HOST_EXT,
        8080,
        80,
        &CniHost::address_of(&other),
    );
    assert_http(&host.lab, "web", HOST_EXT, 8080, 80, CNI_GATEWAY);
    // Masquerade out: `wan` sees the host's address.
    let _outside = Server::start(&host.lab, "wan", Mode::Http, &[7000]);
    assert_http(&host.lab, "web", WAN, 7000, 7000, HOST_EXT);

    let netfilter = host.lab.sh_ok(
        "host",
        "iptables-save -t nat 2>/dev/null; nft list ruleset 2>/dev/null",
    );
    assert!(
        !netfilter.to_ascii_lowercase().contains("dnat"),
        "netlab-cni must publish without netfilter rules: {netfilter}"
    );

    if version != "0.3.1" {
        let (ok, out) = host.netlab_cni(&Call {
            command: "CHECK",
            container: "web",
            netns: Some(host.netns_path("web")),
            conf: host.plugin_conf(
                &json!([tcp(8080, 80), udp(5353, 53), {"hostPort": 8443, "containerPort": 80, "protocol": "tcp", "hostIP": HOST_EXT}, tcp(9000, 80), tcp(9001, 80), tcp(9002, 80)]),
                Some(&web),
            ),
            env: &[],
        });
        assert!(ok, "CHECK of web: {out}");
    }

    assert!(host.del("web"));
    assert_refused(
        &host.lab,
        "wan",
        HOST_EXT,
        8080,
        "web's DEL removed port 8080",
    );
    assert!(
        host.pins().is_some(),
        "another container still uses the datapath"
    );
    assert!(host.del("other"));
    assert_eq!(host.pins(), None, "the last DEL unpins the datapath");
}

#[test]
fn version_0_3_1_publishes_and_removes() {
    publishes_and_removes("0.3.1");
}

#[test]
fn version_0_4_0_publishes_and_removes() {
    publishes_and_removes("0.4.0");
}

#[test]
fn version_1_0_0_publishes_and_removes() {
    publishes_and_removes("1.0.0");
}

/// Two containers publish different ports; a third asking for a taken one (on every
/// address, or on the host's address) is refused and changes nothing; once the owner is
/// gone, the port can be had.
#[test]
fn a_port_taken_by_another_container_is_refused() {
    let host = CniHost::new("1.0.0");
    host.add("one", &json!([tcp(8080, 80)]))
        .expect("ADD of one");
    host.add("two", &json!([tcp(8081, 81)]))
        .expect("ADD of two");
    let _one = Server::start(&host.lab, "one", Mode::Http, &[80]);
    let _two = Server::start(&host.lab, "two", Mode::Http, &[81]);
    for mappings in [
        json!([tcp(8080, 82)]),
        json!([tcp(8090, 82), {"hostPort": 8080, "containerPort": 82, "protocol": "tcp", "hostIP": HOST_EXT}]),
    ] {
        let name = "three";
        let refused = host.add(name, &mappings).expect_err("8080 is taken");
        let (code, msg) = error_of(&refused);
        assert_eq!(code, 100, "{msg}");
        assert!(
            msg.contains("host port 8080") && msg.contains(":80 by another container"),
            "{msg}"
        );
        host.del(name);
    }
    assert_http(&host.lab, "wan", HOST_EXT, 8080, 80, WAN);
    assert_http(&host.lab, "wan", HOST_EXT, 8081, 81, WAN);
    assert_refused(
        &host.lab,
        "wan",
        HOST_EXT,
        8090,
        "a refused ADD publishes nothing",
    );

    assert!(host.del("one"));
    host.add("four", &json!([tcp(8080, 82)]))
        .expect("8080 is free again");
    let _four = Server::start(&host.lab, "four", Mode::Http, &[82]);
    assert_http(&host.lab, "wan", HOST_EXT, 8080, 82, WAN);
    assert_http(&host.lab, "wan", HOST_EXT, 8081, 81, WAN);
    host.del_all(&["two", "four"]);
}

/// DEL without `prevResult`, after the container's namespace is gone, twice: success each
/// time, nothing left.
#[test]
fn del_is_idempotent_without_prev_result_and_without_the_namespace() {
    let host = CniHost::new("1.0.0");
    host.add("gone", &json!([tcp(8080, 80)])).expect("ADD");
    netlab_e2e::cmd_ok("ip", &["netns", "delete", &host.lab.ns("gone")]);
    for _ in 0..2 {
        let (ok, out) = host.netlab_cni(&Call {
            command: "DEL",
            container: "gone",
            netns: None,
            conf: host.plugin_conf(&json!([]), None),
            env: &[],
        });
        assert!(ok, "DEL: {out}");
        assert_eq!(out, Value::Null, "DEL prints nothing");
    }
    assert_eq!(host.pins(), None);
    assert_refused(&host.lab, "wan", HOST_EXT, 8080, "DEL removed the port");
}

/// The plugin dies in the middle of ADD, its port written: the next DEL removes what it
/// wrote, and so does a GC that no longer lists the container.
#[test]
fn a_crash_in_add_is_recovered_by_del_and_by_gc() {
    let host = CniHost::new("1.0.0");
    let crash = [("NETLAB_CRASH_AT", "cni: published 8080:80/tcp")];
    for recovery in ["DEL", "GC"] {
        let name = format!("crash{}", recovery.to_ascii_lowercase());
        let died = host.add_with(&name, &json!([tcp(8080, 80), tcp(8081, 80)]), &crash);
        assert!(died.is_err(), "the plugin was to crash");
        let _server = Server::start(&host.lab, &name, Mode::Http, &[80]);
        assert_http(&host.lab, "wan", HOST_EXT, 8080, 80, WAN);
        let (ok, out) = match recovery {
            "DEL" => host.netlab_cni(&Call {
                command: "DEL",
                container: &name,
                netns: Some(host.netns_path(&name)),
                conf: host.plugin_conf(&json!([]), None),
                env: &[],
            }),
            _ => host.gc(&["someone-else"]),
        };
        assert!(ok, "{recovery}: {out}");
        assert_eq!(host.pins(), None, "{recovery} after the crash left pins");
        assert_refused(
            &host.lab,
            "wan",
            HOST_EXT,
            8080,
            "the crashed ADD's port is gone",
        );
        host.del(&name);
    }
}

/// GC keeps the attachments the runtime lists and removes the others; CHECK then fails for
/// a removed one, naming what is missing.
#[test]
fn gc_keeps_valid_attachments_and_check_sees_the_difference() {
    let host = CniHost::new("1.0.0");
    let kept = host
        .add("kept", &json!([tcp(8080, 80)]))
        .expect("ADD of kept");
    let dropped = host
        .add("dropped", &json!([tcp(8081, 80)]))
        .expect("ADD of dropped");
    let _kept = Server::start(&host.lab, "kept", Mode::Http, &[80]);
    let _dropped = Server::start(&host.lab, "dropped", Mode::Http, &[80]);
    let (ok, out) = host.gc(&["kept"]);
    assert!(ok, "GC: {out}");
    assert_http(&host.lab, "wan", HOST_EXT, 8080, 80, WAN);
    assert_refused(
        &host.lab,
        "wan",
        HOST_EXT,
        8081,
        "GC removed dropped's port",
    );
    for (name, prev, mappings, expected) in [
        ("kept", &kept, json!([tcp(8080, 80)]), None),
        (
            "dropped",
            &dropped,
            json!([tcp(8081, 80)]),
            Some("is not in the datapath"),
        ),
        (
            "kept",
            &kept,
            json!([tcp(8080, 80), tcp(8082, 80)]),
            Some("8082:80/tcp does not forward"),
        ),
    ] {
        let (ok, out) = host.netlab_cni(&Call {
            command: "CHECK",
            container: name,
            netns: Some(host.netns_path(name)),
            conf: host.plugin_conf(&mappings, Some(prev)),
            env: &[],
        });
        match expected {
            None => assert!(ok, "CHECK of {name}: {out}"),
            Some(words) => {
                assert!(!ok, "CHECK of {name} passed");
                let (code, msg) = error_of(&out);
                assert_eq!(code, 101, "{msg}");
                assert!(msg.contains(words), "{msg}");
            }
        }
    }
    host.del_all(&["kept", "dropped"]);
}

/// Configurations netlab-cni cannot honour are refused with the spec's codes and leave the
/// host as it was; VERSION answers without a network, STATUS says it is ready.
#[test]
fn bad_configurations_are_refused_and_change_nothing() {
    let host = CniHost::new("1.0.0");
    let call = |conf: Value| {
        host.netlab_cni(&Call {
            command: "ADD",
            container: "bad",
            netns: Some("/run/netns/nothing-here".into()),
            conf,
            env: &[],
        })
    };
    let prev = json!({"cniVersion": "1.0.0", "interfaces": [], "ips": []});
    let mut netfilter_knob = host.plugin_conf(&json!([tcp(8080, 80)]), Some(&prev));
    netfilter_knob["markMasqBit"] = json!(13);
    let mut old = host.plugin_conf(&json!([]), Some(&prev));
    old["cniVersion"] = json!("0.2.0");
    for (conf, code, words) in [
        (netfilter_knob, 2, "markMasqBit"),
        (
            host.plugin_conf(&json!([tcp(8080, 80)]), None),
            7,
            "needs prevResult",
        ),
        (old, 1, "0.2.0"),
        (
            host.plugin_conf(&json!([tcp(0, 80)]), Some(&prev)),
            7,
            "invalid hostPort 0",
        ),
        (json!({"cniVersion": "1.0.0"}), 6, "name"),
    ] {
        let (ok, out) = call(conf);
        assert!(!ok, "refused: {out}");
        let (got, msg) = error_of(&out);
        assert_eq!(got, code, "{msg}");
        assert!(msg.contains(words), "{msg}");
        assert!(out["cniVersion"].is_string(), "{out}");
    }
    assert_eq!(host.pins(), None, "a refused ADD pins nothing");
    let (ok, version) = host.netlab_cni(&Call {
        command: "VERSION",
        container: "",
        netns: None,
        conf: json!({"cniVersion": "1.0.0"}),
        env: &[],
    });
    assert!(ok);
    // STATUS (spec 1.1): ready, nothing printed.
    let (ok, status) = host.netlab_cni(&Call {
        command: "STATUS",
        container: "",
        netns: None,
        conf: json!({"cniVersion": "1.1.0", "name": host.network, "type": "netlab-cni"}),
        env: &[],
    });
    assert!(ok && status.is_null(), "STATUS: {status}");
    assert_eq!(
        version["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
}

/// Many ADDs and DELs at once (a runtime starting and stopping containers in parallel):
/// every port is published to its own container, and once all are deleted nothing is left.
#[test]
fn concurrent_adds_and_dels_lose_nothing() {
    const N: u16 = 6;
    let host = CniHost::new("1.0.0");
    std::thread::scope(|scope| {
        for i in 0..N {
            let host = &host;
            scope.spawn(move || {
                host.add(&format!("c{i}"), &json!([tcp(8100 + i, 80 + i)]))
                    .unwrap_or_else(|err| panic!("ADD of c{i}: {err}"));
            });
        }
    });
    let servers: Vec<Server> = (0..N)
        .map(|i| Server::start(&host.lab, &format!("c{i}"), Mode::Http, &[80 + i]))
        .collect();
    for i in 0..N {
        assert_http(&host.lab, "wan", HOST_EXT, 8100 + i, 80 + i, WAN);
    }
    drop(servers);
    std::thread::scope(|scope| {
        for i in 0..N {
            let host = &host;
            scope.spawn(move || assert!(host.del(&format!("c{i}"))));
        }
    });
    assert_eq!(host.pins(), None, "the last DEL unpins the datapath");
}

/// `masqAll: true`, as `portmap` has it: every connection to a published port (from outside,
/// TCP and UDP, and hairpinned from another container) reaches the container from the
/// bridge's address, and the replies still find their way back.
#[test]
fn masq_all_shows_every_client_as_the_bridge() {
    let mut host = CniHost::new("1.0.0");
    host.options = json!({"masqAll": true});
    host.add("web", &json!([tcp(8080, 80), udp(5353, 53)]))
        .expect("ADD of web");
    host.add("other", &json!([])).expect("ADD of other");
    let _http = Server::start(&host.lab, "web", Mode::Http, &[80]);
    let _echo = Server::start(&host.lab, "web", Mode::Udp, &[53]);
    assert_http(&host.lab, "wan", HOST_EXT, 8080, 80, CNI_GATEWAY);
    assert_udp(&host, "wan", 5353, CNI_GATEWAY);
    assert_http(&host.lab, "other", HOST_EXT, 8080, 80, CNI_GATEWAY);
    host.del_all(&["web", "other"]);
}

/// One host namespace serves one network: an ADD for another network is refused (code 102),
/// naming the network that is there, and changes nothing.
#[test]
fn a_second_network_in_the_same_host_is_refused() {
    let host = CniHost::new("1.0.0");
    let web = host
        .add("web", &json!([tcp(8080, 80)]))
        .expect("ADD of web");
    let mut conf = host.plugin_conf(&json!([tcp(8081, 80)]), Some(&web));
    conf["name"] = json!("othernet");
    let (ok, out) = host.netlab_cni(&Call {
        command: "ADD",
        container: "web2",
        netns: Some(host.netns_path("web")),
        conf,
        env: &[],
    });
    assert!(!ok, "a second network was accepted: {out}");
    let (code, msg) = error_of(&out);
    assert_eq!(code, 102, "{msg}");
    assert!(msg.contains(&host.network), "{msg}");
    let _server = Server::start(&host.lab, "web", Mode::Http, &[80]);
    assert_http(&host.lab, "wan", HOST_EXT, 8080, 80, WAN);
    assert_refused(
        &host.lab,
        "wan",
        HOST_EXT,
        8081,
        "the refused ADD published nothing",
    );
    host.del_all(&["web"]);
}

/// Without a default route, ADD says to name the external device, and pins nothing; with
/// `externalDevice`, ports are published there.
#[test]
fn without_a_default_route_the_external_device_is_named() {
    let mut host = CniHost::new("1.0.0");
    host.lab.sh_ok("host", "ip route del default");
    let refused = host
        .add("web", &json!([tcp(8080, 80)]))
        .expect_err("no default route");
    let (code, msg) = error_of(&refused);
    assert_eq!(code, 7, "{msg}");
    assert!(msg.contains("externalDevice"), "{msg}");
    assert_eq!(host.pins(), None);
    host.bridge_del("web");
    host.options = json!({"externalDevice": "eth0"});
    host.add("web", &json!([tcp(8080, 80)]))
        .expect("ADD with externalDevice");
    let _server = Server::start(&host.lab, "web", Mode::Http, &[80]);
    assert_http(&host.lab, "wan", HOST_EXT, 8080, 80, WAN);
    assert!(host.del("web"));
}

/// A container gone without netlab-cni's DEL leaves its entries; when the IPAM gives its
/// address to a new container, that ADD removes them: the old port stops forwarding, the
/// old hook goes, the new container's port works, on each CPU, whose fast path had the old
/// container cached.
#[test]
fn a_stale_owner_of_the_address_is_removed() {
    let host = CniHost::new("1.0.0");
    let old = host
        .add("old", &json!([tcp(8080, 80)]))
        .expect("ADD of old");
    let address = CniHost::address_of(&old);
    {
        let _server = Server::start(&host.lab, "old", Mode::Http, &[80]);
        for cpu in 0..2 {
            host.lab.sh_ok(
                "wan",
                &format!("taskset -c {cpu} curl -sS --fail --max-time 5 -o /dev/null http://{HOST_EXT}:8080/"),
            );
        }
    }
    assert!(host.bridge_del("old"));
    let args = format!("IgnoreUnknown=1;IP={address}");
    let new = host
        .add_with(
            "new",
            &json!([tcp(8081, 80)]),
            &[("CNI_ARGS", args.as_str())],
        )
        .expect("ADD of new");
    assert_eq!(
        CniHost::address_of(&new),
        address,
        "the IPAM gave the address out again"
    );
    let _server = Server::start(&host.lab, "new", Mode::Http, &[80]);
    for cpu in 0..2 {
        host.lab.sh_ok(
            "wan",
            &format!(
                "taskset -c {cpu} curl -sS --fail --max-time 5 -o /dev/null http://{HOST_EXT}:8081/"
            ),
        );
    }
    assert_http(&host.lab, "wan", HOST_EXT, 8081, 80, WAN);
    assert_refused(
        &host.lab,
        "wan",
        HOST_EXT,
        8080,
        "the stale owner's port was removed",
    );
    assert_eq!(
        host.container_links(),
        1,
        "only the new container's hook is pinned"
    );
    host.del_all(&["new"]);
}

/// A dual-stack network, as Podman's `--ipv6` networks are: a mapping without `hostIP` is
/// published in both families, one on `::` in IPv6 only, one on `0.0.0.0` in IPv4 only (as
/// `portmap` does). From `wan` and from the host in IPv6, with the client's address kept
/// (the host's `::1` reaches it too, through the cgroup hook, from the bridge's address);
/// masquerade out in IPv6; CHECK; a port taken in IPv6 refused; DEL removes both families'.
#[test]
fn dual_stack_networks_publish_in_both_families() {
    const HOST_EXT6: &str = "2001:2::1";
    const WAN6: &str = "2001:2::2";
    let mut host = CniHost::dual_stack("1.0.0");
    host.options = json!({"masquerade": true});
    let mappings = json!([
        tcp(8080, 80),
        {"hostPort": 8081, "containerPort": 80, "protocol": "tcp", "hostIP": "::"},
        {"hostPort": 8082, "containerPort": 80, "protocol": "tcp", "hostIP": "0.0.0.0"},
    ]);
    let web = host.add("web", &mappings).expect("ADD of web");
    let web6 = CniHost::address6_of(&web);
    assert!(web6.starts_with("fd00:88::"), "{web}");
    let _http = Server::start(&host.lab, "web", Mode::Http, &[80]);
    assert_http(&host.lab, "wan", HOST_EXT, 8080, 80, WAN);
    assert_http(&host.lab, "wan", HOST_EXT6, 8080, 80, WAN6);
    assert_http(&host.lab, "wan", HOST_EXT6, 8081, 80, WAN6);
    assert_refused(
        &host.lab,
        "wan",
        HOST_EXT,
        8081,
        "8081 is published on :: only",
    );
    assert_http(&host.lab, "wan", HOST_EXT, 8082, 80, WAN);
    assert_refused(
        &host.lab,
        "wan",
        HOST_EXT6,
        8082,
        "8082 is published on 0.0.0.0 only",
    );
    assert_http(&host.lab, "host", HOST_EXT6, 8080, 80, HOST_EXT6);
    assert_http(&host.lab, "host", "::1", 8080, 80, CNI_GATEWAY6);
    let _outside = Server::start(&host.lab, "wan", Mode::Http, &[7000]);
    assert_http(&host.lab, "web", WAN6, 7000, 7000, HOST_EXT6);

    let (ok, out) = host.netlab_cni(&Call {
        command: "CHECK",
        container: "web",
        netns: Some(host.netns_path("web")),
        conf: host.plugin_conf(&mappings, Some(&web)),
        env: &[],
    });
    assert!(ok, "CHECK of web: {out}");
    let refused = host
        .add(
            "other",
            &json!([{"hostPort": 8081, "containerPort": 80, "protocol": "tcp", "hostIP": "::"}]),
        )
        .expect_err("8081 is taken in IPv6");
    let (code, msg) = error_of(&refused);
    assert_eq!(code, 100, "{msg}");
    assert!(msg.contains("8081") && msg.contains(&web6), "{msg}");

    assert!(host.del("web"));
    for (address, port) in [(HOST_EXT6, 8080), (HOST_EXT6, 8081), (HOST_EXT, 8080)] {
        assert_refused(
            &host.lab,
            "wan",
            address,
            port,
            "web's DEL removed its ports",
        );
    }
    host.del_all(&["other"]);
}
