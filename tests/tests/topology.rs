//! The lab topology, end to end: what `up` builds, real traffic across it, `exec`, `inspect`,
//! convergence, crash clean-up and input validation.

use std::{
    fmt::Write as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use netlab_e2e::{Lab, netlab, netlab_bin, netlab_err, unique};

fn ping(lab: &Lab, node: &str, address: &str) -> bool {
    lab.sh(node, &format!("ping -c 1 -W 1 {address}"))
        .status
        .success()
}

/// `netlab inspect NODE --json`.
fn inspect(lab: &Lab, node: &str) -> serde_json::Value {
    serde_json::from_str(&lab.netlab_ok(&["inspect", node, "--json"])).expect("JSON")
}

fn namespaces_of(lab_name: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(&format!("{lab_name}-")))
                .collect()
        })
        .unwrap_or_default()
}

/// A lab file with `n` containers on 10.90.0.0/16, written to a temporary file.
fn lab_file(n: usize) -> tempfile::TempPath {
    let mut text = String::from("subnet = \"10.90.0.0/16\"\n");
    for i in 0..n {
        let (hi, lo) = ((i + 2) / 250, (i + 2) % 250 + 2);
        let _ = writeln!(
            text,
            "[[container]]\nname = \"c{i}\"\naddress = \"10.90.{hi}.{lo}\""
        );
    }
    write_temp(&text)
}

mod tempfile {
    /// A file removed on drop.
    #[derive(Debug)]
    pub struct TempPath(pub std::path::PathBuf);
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    impl TempPath {
        pub fn as_str(&self) -> &str {
            self.0.to_str().expect("UTF-8 temp path")
        }
    }
}

fn write_temp(text: &str) -> tempfile::TempPath {
    let path = std::env::temp_dir().join(format!("{}.toml", unique("f")));
    std::fs::write(&path, text).expect("writing a lab file");
    tempfile::TempPath(path)
}

#[test]
fn default_lab_carries_traffic_over_the_bridge_and_to_the_host() {
    let lab = Lab::up(&[]);
    assert!(
        ping(&lab, "netns0", "172.18.0.20"),
        "netns0 -> netns1 over the bridge"
    );
    assert!(
        ping(&lab, "netns1", "172.18.0.10"),
        "netns1 -> netns0 over the bridge"
    );
    assert!(ping(&lab, "host", "172.18.0.10"), "host -> netns0");
    assert!(
        ping(&lab, "netns1", "172.18.0.1"),
        "netns1 -> host (gateway)"
    );
    assert!(
        ping(&lab, "wan", "198.18.0.1"),
        "wan -> host external address"
    );
    // TCP across the bridge, with the payload checked.
    let server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("netns1"),
            "socat",
            "-T",
            "5",
            "TCP-LISTEN:7777,reuseaddr",
            "EXEC:cat",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("starting socat");
    let _kill = Kill(server);
    let deadline = Instant::now() + Duration::from_secs(5);
    let echoed = loop {
        let out = lab.sh(
            "netns0",
            "printf netlab-payload | socat -t 2 - TCP:172.18.0.20:7777",
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text == "netlab-payload" || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(echoed, "netlab-payload");
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn wan_cannot_reach_the_container_subnet() {
    let lab = Lab::up(&[]);
    assert!(
        !ping(&lab, "wan", "172.18.0.10"),
        "wan has no route to the containers"
    );
    let routes = lab.sh_ok("wan", "ip -4 route show");
    assert!(!routes.contains("172.18."), "wan routes: {routes}");
}

#[test]
fn inspect_shows_routes_devices_and_learned_neighbours() {
    let lab = Lab::up(&[]);
    assert!(ping(&lab, "host", "172.18.0.10"));
    let host = inspect(&lab, "host");
    let neighbours = host["neighbours"].as_array().expect("neighbours");
    assert!(
        neighbours
            .iter()
            .any(|n| n["address"] == "172.18.0.10" && n["device"] == "br0"),
        "the host learned netns0's MAC on br0: {neighbours:?}"
    );
    let devices = host["devices"].as_array().expect("devices");
    let veth0 = devices
        .iter()
        .find(|d| d["name"] == "veth0")
        .expect("veth0 in host");
    assert_eq!(veth0["master"], "br0");
    assert_eq!(veth0["up"], true);
    let br0 = devices.iter().find(|d| d["name"] == "br0").expect("br0");
    assert_eq!(br0["addresses"][0], "172.18.0.1/16");

    let netns0 = inspect(&lab, "netns0");
    let routes = netns0["routes"].as_array().expect("routes");
    assert!(
        routes
            .iter()
            .any(|r| r["destination"] == "default" && r["gateway"] == "172.18.0.1"),
        "default route via the bridge: {routes:?}"
    );
    assert!(
        routes
            .iter()
            .any(|r| r["destination"] == "172.18.0.0/16" && r["device"] == "ceth0")
    );
    // And iproute2 agrees with what netlab reports.
    let ip_routes = lab.sh_ok("netns0", "ip -4 route show");
    assert!(
        ip_routes.contains("default via 172.18.0.1 dev ceth0"),
        "{ip_routes}"
    );
}

#[test]
fn exec_passes_exit_code_and_stdio_through() {
    let lab = Lab::up(&[]);
    let out = lab.netlab(&[
        "exec",
        "netns0",
        "--",
        "sh",
        "-c",
        "ip -4 -o addr show ceth0; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stdout).contains("172.18.0.10/16"));
    let mut child = Command::new(netlab_bin())
        .args(["--lab", &lab.name, "exec", "wan", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("netlab exec");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), b"through stdin")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.stdout, b"through stdin");
    let err = lab.netlab_err(&["exec", "nosuch", "--", "true"]);
    assert!(err.contains("unknown node \"nosuch\""), "{err}");
}

/// The host node's links (without their operational state), IPv4 addresses and iptables
/// rules (without comments and counters); every command must succeed.
fn host_snapshot(lab: &Lab) -> Vec<String> {
    let links = lab.sh_ok("host", "ip -o link show");
    let addresses = lab.sh_ok("host", "ip -4 -o addr show");
    let rules = lab.sh_ok("host", "iptables-save");
    let links = links.lines().map(|line| {
        line.split_whitespace()
            .scan(false, |skip, word| {
                // `state UP` / `state DOWN`: the operational state may change on its own.
                let keep = !*skip && word != "state";
                *skip = word == "state";
                Some(keep.then_some(word))
            })
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
    });
    let rules = rules
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| line.split('[').next().unwrap_or_default().to_string());
    links
        .chain(addresses.lines().map(str::to_string))
        .chain(rules)
        .collect()
}

#[test]
fn up_converges_and_down_is_idempotent() {
    let lab = Lab::up(&[]);
    let before = host_snapshot(&lab);
    assert!(
        before.iter().any(|line| line.contains("br0")),
        "the snapshot sees the lab: {before:?}"
    );
    lab.netlab_ok(&["up"]);
    assert_eq!(before, host_snapshot(&lab), "a second `up` changes nothing");
    assert!(ping(&lab, "netns0", "172.18.0.20"));
    lab.netlab_ok(&["down"]);
    lab.netlab_ok(&["down"]);
    assert!(namespaces_of(&lab.name).is_empty());
    let err = lab.netlab_err(&["status"]);
    assert!(err.contains("is not up"), "{err}");
}

#[test]
fn two_labs_coexist() {
    let a = Lab::up(&[]);
    let b = Lab::up(&[]);
    assert!(ping(&a, "netns0", "172.18.0.20"));
    assert!(ping(&b, "netns0", "172.18.0.20"));
    drop(a);
    assert!(
        ping(&b, "netns1", "172.18.0.10"),
        "removing one lab leaves the other working"
    );
}

#[test]
fn a_lab_file_declares_containers() {
    let file = write_temp(
        "subnet = \"10.77.0.0/24\"\nbridge = \"lab0\"\n[[container]]\nname = \"web\"\naddress = \"10.77.0.5\"\n[[container]]\nname = \"db\"\naddress = \"10.77.0.6\"\ndevice = \"eth0\"\n",
    );
    let lab = Lab::up(&["-f", file.as_str()]);
    assert!(ping(&lab, "web", "10.77.0.6"));
    assert!(ping(&lab, "db", "10.77.0.1"));
    let addr = lab.sh_ok("db", "ip -4 -o addr show eth0");
    assert!(addr.contains("10.77.0.6/24"), "{addr}");
}

#[test]
fn explain_prints_the_walkthrough_commands_and_changes_nothing() {
    let name = unique("x");
    let out = netlab(&[
        "--lab",
        &name,
        "up",
        "--backend",
        "iptables",
        "--ipv4-only",
        "--explain",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        format!("ip netns add {name}-host"),
        format!("ip -n {name}-host link add br0 type bridge"),
        format!("ip -n {name}-host addr add 172.18.0.1/16 dev br0"),
        format!("ip -n {name}-host link add veth0 type veth peer name ceth0 netns {name}-netns0"),
        format!("ip -n {name}-host link set veth0 master br0"),
        format!("ip -n {name}-netns0 route add default via 172.18.0.1"),
        format!("ip netns exec {name}-host sysctl -w net.ipv4.ip_forward=1"),
        "-j DNAT --to-destination 172.18.0.10:5000".to_string(),
        "-s 172.18.0.0/16 ! -o br0 -j MASQUERADE".to_string(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        !text.contains("ip6tables") && !text.contains(" -6 "),
        "{text}"
    );
    let out = netlab(&["--lab", &name, "up", "--backend", "iptables", "--explain"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        format!("ip netns exec {name}-netns0 sysctl -w net.ipv6.conf.default.accept_ra=0"),
        format!("ip netns exec {name}-host sysctl -w net.ipv6.conf.all.forwarding=1"),
        format!("ip -n {name}-host -6 addr add fd00:172:18::1/64 dev br0 nodad"),
        format!("ip -n {name}-netns0 -6 addr add fd00:172:18::10/64 dev ceth0 nodad"),
        format!("ip -n {name}-netns0 -6 route add default via fd00:172:18::1"),
        format!("ip -n {name}-wan -6 addr add 2001:2::2/64 dev eth0 nodad"),
        "ip6tables -t nat -A NL-".to_string(),
        "-j DNAT --to-destination [fd00:172:18::10]:5000".to_string(),
        "-s fd00:172:18::/64 ! -o br0 -j MASQUERADE".to_string(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    assert!(namespaces_of(&name).is_empty(), "--explain created nothing");
}

/// A dual-stack lab is usable in IPv6 the moment `up` returns: no address is tentative
/// (duplicate address detection off), every node ignores router advertisements, each
/// container reaches the other, the bridge and `wan` at once, `wan` has no way to the IPv6
/// subnet, and `inspect` and `status` show both families.
#[test]
fn a_dual_stack_lab_is_usable_when_up_returns() {
    let lab = Lab::up(&["--backend", "iptables", "--ipv6"]);
    for (node, address) in [
        ("netns0", "fd00:172:18::20"),
        ("netns1", "fd00:172:18::1"),
        ("netns1", "2001:2::2"),
        ("host", "fd00:172:18::10"),
    ] {
        let out = lab.sh_ok(node, &format!("ping -6 -c 1 -W 1 {address}"));
        assert!(out.contains("1 received"), "{node} -> {address}: {out}");
    }
    for node in ["host", "wan", "netns0", "netns1"] {
        let tentative = lab.sh_ok(node, "ip -6 addr show tentative");
        assert!(tentative.is_empty(), "{node}: {tentative}");
        let accept_ra = lab.sh_ok(
            node,
            "for f in /proc/sys/net/ipv6/conf/*/accept_ra; do echo $f $(cat $f); done",
        );
        for line in accept_ra.lines() {
            assert!(line.ends_with(" 0"), "{node}: {line}");
        }
    }
    let out = lab.sh("wan", "ping -6 -c 1 -W 1 fd00:172:18::10");
    assert!(
        !out.status.success(),
        "wan reached the IPv6 container subnet"
    );
    let netns0 = inspect(&lab, "netns0");
    let routes = netns0["routes"].as_array().expect("routes");
    assert!(
        routes
            .iter()
            .any(|r| r["destination"] == "default" && r["gateway"] == "fd00:172:18::1"),
        "{routes:?}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&lab.netlab_ok(&["status", "--json"])).expect("JSON");
    assert_eq!(status["subnet6"], "fd00:172:18::/64");
    assert_eq!(status["published"][0]["container6"], "fd00:172:18::10");
}

/// The built-in lab is dual-stack; `--ipv4-only` keeps it IPv4-only, and so does a later
/// `up` of the running IPv4-only lab; `--ipv4-only` with a lab file is refused.
#[test]
fn the_built_in_lab_is_dual_stack_unless_asked() {
    let subnet6 = |lab: &Lab| {
        let status: serde_json::Value =
            serde_json::from_str(&lab.netlab_ok(&["status", "--json"])).expect("status JSON");
        status.to_string().contains("fd00:172:18::")
    };
    let lab = Lab::up(&["--backend", "iptables"]);
    assert!(subnet6(&lab), "dual-stack by default");
    lab.netlab_ok(&["down"]);
    lab.netlab_ok(&["up", "--backend", "iptables", "--ipv4-only"]);
    assert!(!subnet6(&lab), "--ipv4-only");
    lab.netlab_ok(&["up"]);
    assert!(!subnet6(&lab), "a running IPv4-only lab stays so");
    let err = lab.netlab_err(&["up", "-f", "/dev/null", "--ipv4-only"]);
    assert!(
        err.contains("--ipv4-only") && err.contains("--file"),
        "{err}"
    );
}

#[test]
fn bad_lab_files_are_refused_and_change_nothing() {
    for (text, needle) in [
        ("bogus = 1\n", "bogus"),
        (
            "[[container]]\nname = \"averyveryverylongname\"\naddress = \"172.18.0.5\"\n",
            "averyveryverylongname",
        ),
        (
            "[[container]]\nname = \"a\"\naddress = \"172.18.0.5\"\n[[container]]\nname = \"b\"\naddress = \"172.18.0.5\"\n",
            "172.18.0.5",
        ),
        (
            "[[container]]\nname = \"a\"\naddress = \"10.1.0.5\"\n",
            "10.1.0.5",
        ),
        ("subnet = \"172.18.0.0/33\"\n", "172.18.0.0/33"),
        ("subnet = \"198.18.0.0/16\"\n", "198.18.0.0"),
        (
            "[[container]]\nname = \"a\"\naddress = \"172.18.0.5\"\n[[container]]\nname = \"a\"\naddress = \"172.18.0.6\"\n",
            "\"a\"",
        ),
        (
            "[[publish]]\nnode = \"ghost\"\nports = [\"80:80\"]\n",
            "ghost",
        ),
        ("subnet6 = \"fd00::1/64\"\n", "write it as fd00::/64"),
        ("gateway6 = \"fd00::1\"\n", "needs an IPv6 subnet"),
        (
            "[[container]]\nname = \"a\"\naddress = \"172.18.0.5\"\n[[publish]]\nnode = \"a\"\nports = [\"[2001:2::1]:80:80\"]\n",
            "needs an IPv6 subnet",
        ),
    ] {
        let file = write_temp(text);
        let name = unique("b");
        let err = netlab_err(&["--lab", &name, "up", "-f", file.as_str()]);
        assert!(
            err.contains(needle),
            "error for {text:?} should name {needle:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            namespaces_of(&name).is_empty(),
            "nothing created for {text:?}"
        );
        assert!(!std::path::Path::new(&format!("/run/netlab/{name}.json")).exists());
    }
    let err = netlab_err(&["--lab", "bad-name", "up"]);
    assert!(err.contains("invalid lab name"), "{err}");
}

#[test]
fn a_failure_half_way_rolls_back() {
    let name = unique("r");
    // Something that is not a namespace sits where netns1's namespace must go.
    let blocker = format!("/run/netns/{name}-netns1");
    std::fs::create_dir_all(&blocker).expect("creating the blocker");
    let err = netlab_err(&["--lab", &name, "up"]);
    std::fs::remove_dir(&blocker).expect("removing the blocker");
    assert!(err.contains(&format!("{name}-netns1")), "{err}");
    assert!(
        namespaces_of(&name).is_empty(),
        "rolled back: {:?}",
        namespaces_of(&name)
    );
    assert!(!std::path::Path::new(&format!("/run/netlab/{name}.json")).exists());
}

#[test]
fn down_after_kill_9_half_way_through_up_leaves_nothing() {
    let file = lab_file(100);
    for delay_ms in [5, 30, 80] {
        let name = unique("k");
        let mut child = Command::new(netlab_bin())
            .args(["--lab", &name, "up", "-f", file.as_str()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("netlab up");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let out = netlab(&["--lab", &name, "down"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            namespaces_of(&name).is_empty(),
            "after kill at {delay_ms} ms: {:?}",
            namespaces_of(&name)
        );
        assert!(!std::path::Path::new(&format!("/run/netlab/{name}.json")).exists());
    }
}

#[test]
fn a_hundred_containers_come_up_and_talk() {
    let file = lab_file(100);
    let lab = Lab::up(&["-f", file.as_str()]);
    assert_eq!(namespaces_of(&lab.name).len(), 102);
    assert!(
        ping(&lab, "c0", "10.90.0.101"),
        "first container reaches the last one"
    );
    assert!(ping(&lab, "c99", "10.90.0.1"));
}
