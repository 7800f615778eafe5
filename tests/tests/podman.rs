//! Real containers: Podman 4 with its CNI network backend, run inside a test's host node,
//! publishing ports through netlab-cni (a conflist of `bridge` + `host-local` +
//! `netlab-cni` instead of `portmap`). `podman run -p` and `podman rm` drive ADD and DEL.

use netlab_e2e::{
    cni::{CNI_GATEWAY, CniHost},
    fixtures::SERVER,
    harness::{HOST_EXT, WAN, assert_refused, client, curl, seen},
    podman::Podman,
};

const HTTPD: [&str; 6] = ["/bin/httpd", "-f", "-p", "80", "-h", "/www"];

/// `web` (busybox httpd on 8080 and on the host address's 8443), `apps` (Python HTTP on a
/// range of ports) and `dns` (Python UDP echo); returns once the slowest answers.
fn start_containers(host: &CniHost, podman: &Podman<'_>) {
    podman.start(
        "web",
        &["8080:80", &format!("{HOST_EXT}:8443:80")],
        &podman.busybox(),
        &HTTPD,
    );
    podman.start(
        "apps",
        &["9000-9001:7000-7001"],
        &podman.python(),
        &["/usr/bin/python3", "-c", SERVER, "http", "7000", "7001"],
    );
    podman.start(
        "dns",
        &["5353:53/udp"],
        &podman.python(),
        &["/usr/bin/python3", "-c", SERVER, "udp", "53"],
    );
    for _ in 0..50 {
        if client(&host.lab, "wan", &["probe", HOST_EXT, "9001", "1"]).trim() == "connected" {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The address `apps` sees when `web` reaches it through the host's address, and web's own.
fn hairpin_peer(podman: &Podman<'_>) -> (String, String) {
    let url = format!("http://{HOST_EXT}:9000/h");
    let hairpin = podman.run(&["exec", "web", "wget", "-qO-", &url]);
    let answer = String::from_utf8_lossy(&hairpin.stdout).into_owned();
    let peer = answer
        .strip_prefix("peer=")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| {
            panic!(
                "hairpin from web: {answer} {}",
                String::from_utf8_lossy(&hairpin.stderr)
            )
        })
        .to_owned();
    let template = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}";
    let inspect = podman.run(&["inspect", "-f", template, "web"]);
    let web_ip = String::from_utf8_lossy(&inspect.stdout).trim().to_owned();
    (peer, web_ip)
}

#[test]
fn podman_publishes_ports_through_netlab_cni() {
    let mut host = CniHost::new("1.0.0");
    host.options = serde_json::json!({"masquerade": true});
    let podman = Podman::new(&host);
    let page = format!("busybox httpd in a podman container of {}\n", host.network);
    std::fs::write(podman.busybox().join("www/index.html"), &page).expect("writing the page");
    start_containers(&host, &podman);

    // From outside, the page byte for byte, on every address and on the host address.
    assert_eq!(curl(&host.lab, "wan", HOST_EXT, 8080, "/index.html"), page);
    assert_eq!(curl(&host.lab, "wan", HOST_EXT, 8443, "/index.html"), page);
    // From the host itself, on 127.0.0.1 too.
    assert_eq!(
        curl(&host.lab, "host", "127.0.0.1", 8080, "/index.html"),
        page
    );
    // A range, the client's address kept.
    for (port, server_port) in [(9000, 7000), (9001, 7001)] {
        let answer = curl(&host.lab, "wan", HOST_EXT, port, "/r");
        assert_eq!(answer, seen(WAN, server_port, "/r"), "GET :{port} from wan");
    }
    // UDP, the client's address kept.
    let echoed = client(&host.lab, "wan", &["udp", HOST_EXT, "5353", "20"]);
    assert_eq!(echoed.trim(), "matched=20/20");
    let peer = client(&host.lab, "wan", &["udp-peer", HOST_EXT, "5353"]);
    assert_eq!(peer.trim(), WAN);
    // Hairpin: web reaches apps through the host's address, and apps sees web's address.
    let (peer, web_ip) = hairpin_peer(&podman);
    assert_eq!(peer, web_ip, "hairpin: the address apps saw");
    assert_ne!(peer, CNI_GATEWAY);

    // No netfilter rule does any of it.
    let rules = "iptables-save -t nat 2>/dev/null; nft list ruleset 2>/dev/null";
    let netfilter = host.lab.sh_ok("host", rules);
    assert!(
        !netfilter.to_ascii_lowercase().contains("dnat"),
        "{netfilter}"
    );

    // A port another container holds is refused, and the holder keeps it.
    let refused = podman.try_start("dup", &["8080:80"], &podman.busybox(), &HTTPD);
    assert!(
        !refused.status.success(),
        "a second container got port 8080"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("host port 8080") && stderr.contains("published already"),
        "{stderr}"
    );
    let _ = podman.run(&["rm", "-f", "dup"]);
    assert_eq!(curl(&host.lab, "wan", HOST_EXT, 8080, "/index.html"), page);

    // `podman rm` runs DEL: web's ports go, the others stay; the last one unpins.
    podman.remove("web");
    assert_refused(
        &host.lab,
        "wan",
        HOST_EXT,
        8080,
        "podman rm web removed its port",
    );
    assert_eq!(
        curl(&host.lab, "wan", HOST_EXT, 9000, "/r"),
        seen(WAN, 7000, "/r")
    );
    assert!(host.pins().is_some());
    podman.remove("apps");
    podman.remove("dns");
    assert_eq!(host.pins(), None, "the last podman rm unpins the datapath");
}
