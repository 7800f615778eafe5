//! The harness of the lab suites (`behaviour.rs`, `nat_correctness.rs`): a lab per case on a
//! backend configuration ([`lab_with`], [`default_lab`]), servers and clients run inside its
//! namespaces ([`Server`], [`client`], [`Session`], [`curl`]), and readers of netlab's JSON
//! output. The Python programs they run are in [`crate::fixtures`].
//!
//! All traffic stays inside the lab: the container subnet 172.18.0.0/16, the external link
//! 198.18.0.0/24 between the host node and `wan`, and loopback inside the lab's namespaces.

use std::{
    collections::BTreeSet,
    io::{BufRead as _, BufReader, Write as _},
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    Lab,
    fixtures::{CLIENT, SERVER},
    unique,
};

/// The host node's address on the external link: where `wan` reaches published ports.
pub const HOST_EXT: &str = "198.18.0.1";
/// The `wan` node's address.
pub const WAN: &str = "198.18.0.2";
/// The bridge's address, the containers' gateway.
pub const GATEWAY: &str = "172.18.0.1";
/// Container `netns0` of the default lab.
pub const NETNS0: &str = "172.18.0.10";
/// Container `netns1` of the default lab.
pub const NETNS1: &str = "172.18.0.20";

pub const PYTHON: &str = "python3";
/// How long a server may take to bind all its ports.
pub const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound on any one client run (the clients' own socket timeouts are shorter).
pub const CLIENT_TIMEOUT_SECS: u32 = 60;

/// One file under the temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempFile(PathBuf);

impl TempFile {
    pub fn new(extension: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{}.{extension}", unique("f")));
        std::fs::write(&path, contents)
            .unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
        Self(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("temporary paths are UTF-8")
    }

    pub fn read(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap_or_default()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A child process leading a process group of its own; the whole group is killed on drop.
#[derive(Debug)]
pub struct Guarded(pub Child);

impl Guarded {
    pub fn spawn(command: &mut Command) -> Self {
        Self(
            command
                .process_group(0)
                .spawn()
                .unwrap_or_else(|err| panic!("spawning {command:?}: {err}")),
        )
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // Only a child that is not yet reaped: its pid (and group id) cannot have been reused.
        if let Ok(None) = self.0.try_wait() {
            let group = libc::pid_t::try_from(self.0.id()).expect("pids fit in pid_t");
            // SAFETY: kill(2) takes no pointers; a negative pid signals the process group that
            // this child leads (it was spawned with `process_group(0)`).
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.0.wait();
    }
}

/// What a [`Server`] runs; see [`SERVER`](crate::fixtures::SERVER).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Http,
    Lines,
    Bulk,
    Udp,
    Dns,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Lines => "lines",
            Self::Bulk => "bulk",
            Self::Udp => "udp",
            Self::Dns => "dns",
        }
    }
}

/// A server process in one node of a lab, listening on the given ports; killed on drop.
#[derive(Debug)]
pub struct Server {
    // Declared first so the process is killed before its log file is removed.
    process: Guarded,
    log: TempFile,
    what: String,
}

impl Server {
    /// Starts a [`SERVER`](crate::fixtures::SERVER) in `node` and returns once every port is
    /// listening (or panics after [`READY_TIMEOUT`]).
    pub fn start(lab: &Lab, node: &str, mode: Mode, ports: &[u16]) -> Self {
        let ns = lab.ns(node);
        let log = TempFile::new("log", "");
        let stderr = std::fs::File::create(&log.0).expect("opening the server log");
        let process = Guarded::spawn(
            Command::new("ip")
                .args(["netns", "exec", &ns, PYTHON, "-c", SERVER, mode.name()])
                .args(ports.iter().map(u16::to_string))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr),
        );
        let mut server = Self {
            process,
            log,
            what: format!("{} server in {node} on {ports:?}", mode.name()),
        };
        server.wait_listening(&ns, mode, ports);
        server
    }

    fn wait_listening(&mut self, ns: &str, mode: Mode, ports: &[u16]) {
        let ss = if matches!(mode, Mode::Udp | Mode::Dns) {
            "-Hlun"
        } else {
            "-Hltn"
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.process.0.try_wait().expect("polling the server") {
                panic!(
                    "{} exited ({status}) before listening: {}",
                    self.what,
                    self.log.read()
                );
            }
            let out = crate::sh_in(ns, &format!("ss {ss}"));
            let listening = listening_ports(&String::from_utf8_lossy(&out.stdout));
            if ports.iter().all(|port| listening.contains(port)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not listening after {READY_TIMEOUT:?} (listening: {listening:?}): {}",
                self.what,
                self.log.read()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Local ports in `ss -H` output.
pub fn listening_ports(ss: &str) -> BTreeSet<u16> {
    ss.lines()
        .filter_map(|line| line.split_whitespace().nth(3))
        .filter_map(|local| local.rsplit_once(':'))
        .filter_map(|(_, port)| port.parse().ok())
        .collect()
}

/// Runs `argv` inside namespace `ns`, killed if it runs longer than `secs` seconds.
pub fn run_in(ns: &str, secs: u32, argv: &[&str]) -> Output {
    Command::new("timeout")
        .args(["-k", "2", &secs.to_string(), "ip", "netns", "exec", ns])
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("running {argv:?} in {ns}: {err}"))
}

/// Stdout of a run that must have succeeded.
#[track_caller]
pub fn checked(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the Python `program` with `args` in `node`; panics unless it succeeds within
/// [`CLIENT_TIMEOUT_SECS`]; returns its stdout.
#[track_caller]
pub fn python(lab: &Lab, node: &str, program: &str, args: &[&str]) -> String {
    let mut command_line = vec![PYTHON, "-c", program];
    command_line.extend_from_slice(args);
    checked(
        &format!("python {args:?} in {node}"),
        &run_in(&lab.ns(node), CLIENT_TIMEOUT_SECS, &command_line),
    )
}

/// Runs a [`CLIENT`](crate::fixtures::CLIENT) in `node`; panics unless it succeeds; returns its stdout.
#[track_caller]
pub fn client(lab: &Lab, node: &str, args: &[&str]) -> String {
    let mut command_line = vec![PYTHON, "-c", CLIENT];
    command_line.extend_from_slice(args);
    checked(
        &format!("client {args:?} in {node}"),
        &run_in(&lab.ns(node), CLIENT_TIMEOUT_SECS, &command_line),
    )
}

/// How a TCP connection attempt from `node` to `ip:port` ends within 2 s: `connected`,
/// `refused`, `timeout` or an errno name.
#[track_caller]
pub fn probe(lab: &Lab, node: &str, ip: &str, port: u16) -> String {
    client(lab, node, &["probe", ip, &port.to_string(), "2"])
        .trim()
        .to_string()
}

/// Asserts that a connection from `node` to `ip:port` is not accepted (refused or timed out).
#[track_caller]
pub fn assert_unreachable(lab: &Lab, node: &str, ip: &str, port: u16, why: &str) {
    let outcome = probe(lab, node, ip, port);
    assert_ne!(
        outcome, "connected",
        "{node} -> {ip}:{port} connected, but {why}"
    );
}

/// `GET http://IP:PORT/PATH` with curl from `node`; returns the body.
#[track_caller]
pub fn curl(lab: &Lab, node: &str, ip: &str, port: u16, path: &str) -> String {
    let url = format!("http://{}:{port}{path}", Net::url_host(ip));
    let out = run_in(
        &lab.ns(node),
        15,
        &[
            "curl",
            "-sS",
            "--fail",
            "--noproxy",
            "*",
            "--max-time",
            "5",
            &url,
        ],
    );
    checked(&format!("curl {url} from {node}"), &out)
}

/// What the `http` server answers when `peer` asks for `path` on its port `port`.
pub fn seen(peer: &str, port: u16, path: &str) -> String {
    format!("peer={peer} port={port} path={path}\n")
}

/// Asserts that `GET http://IP:PORT/...` from `from` is answered by the `http` server on its
/// port `server_port`, which saw the request coming from `peer`.
#[track_caller]
pub fn assert_http(lab: &Lab, from: &str, ip: &str, port: u16, server_port: u16, peer: &str) {
    let path = format!("/{from}-to-{ip}-{port}");
    assert_eq!(
        curl(lab, from, ip, port, &path),
        seen(peer, server_port, &path),
        "GET http://{ip}:{port}{path} from {from}"
    );
}

/// `netlab status --json`.
#[track_caller]
pub fn status(lab: &Lab) -> Value {
    let text = lab.netlab_ok(&["status", "--json"]);
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("status --json: {err}: {text}"))
}

/// `netlab conntrack --json`: rows `{proto, original, translated, kind, state, idle_s,
/// timeout_s}`.
#[track_caller]
pub fn conntrack(lab: &Lab) -> Vec<Value> {
    let text = lab.netlab_ok(&["conntrack", "--json"]);
    let rows: Value =
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("conntrack --json: {err}: {text}"));
    rows.as_array()
        .unwrap_or_else(|| panic!("conntrack --json is not an array: {rows}"))
        .clone()
}

/// One eBPF datapath statistic (summed over CPUs), from the `stat NAME: VALUE` lines of
/// `netlab inspect host`. Only the eBPF backend has them: panics when `name` is missing.
#[track_caller]
pub fn datapath_stat(lab: &Lab, name: &str) -> u64 {
    inspected_figure(lab, &format!("stat {name}: "), "")
}

/// How many entries eBPF map `name` holds, from the `map NAME: N entries` lines of `netlab
/// inspect host` (eBPF backend only: panics when the map is missing).
#[track_caller]
pub fn map_entries(lab: &Lab, name: &str) -> u64 {
    inspected_figure(lab, &format!("map {name}: "), " entries")
}

/// The number between `prefix` and `suffix` on a line of `netlab inspect host`.
#[track_caller]
fn inspected_figure(lab: &Lab, prefix: &str, suffix: &str) -> u64 {
    let text = lab.netlab_ok(&["inspect", "host"]);
    text.lines()
        .find_map(|line| line.trim().strip_prefix(prefix)?.strip_suffix(suffix))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{prefix}…{suffix}` in `inspect host`:\n{text}"))
}

/// The MAC address of device `dev` in `node`: where crafted frames are sent to reach it.
#[track_caller]
pub fn mac_of(lab: &Lab, node: &str, dev: &str) -> String {
    lab.sh_ok(node, &format!("cat /sys/class/net/{dev}/address"))
        .trim()
        .to_string()
}

/// `netlab ports --json`.
#[track_caller]
pub fn ports(lab: &Lab) -> Value {
    let text = lab.netlab_ok(&["ports", "--json"]);
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("ports --json: {err}: {text}"))
}

/// The `(node, spec)` pairs of `status --json`'s `published`.
#[track_caller]
pub fn published(lab: &Lab) -> Vec<(String, String)> {
    pairs(&status(lab)["published"])
}

/// The `(node, spec)` pairs of a JSON array of objects with those keys.
pub fn pairs(rows: &Value) -> Vec<(String, String)> {
    rows.as_array()
        .unwrap_or_else(|| panic!("expected a JSON array: {rows}"))
        .iter()
        .map(|row| {
            (
                row["node"].as_str().unwrap_or_default().to_string(),
                row["spec"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub fn pair(node: &str, spec: &str) -> (String, String) {
    (node.to_string(), spec.to_string())
}

/// The root namespace's `iptables-save` and `ip6tables-save`, without their `#` comment
/// lines (they carry the time).
pub fn root_iptables() -> String {
    ["iptables-save", "ip6tables-save"]
        .iter()
        .map(|tool| {
            let out = Command::new(tool)
                .output()
                .unwrap_or_else(|err| panic!("running {tool}: {err}"));
            checked(&format!("{tool} in the root namespace"), &out)
                .lines()
                .filter(|line| !line.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The addresses a case uses, in the family it runs in: IPv6 when its backend arguments
/// make the lab dual-stack (`--ipv6`), else IPv4. The family is one more parameter of a
/// case, not a second copy of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    /// 4 or 6.
    pub family: u8,
    /// The host node's external address.
    pub host_ext: &'static str,
    /// `wan`'s address.
    pub wan: &'static str,
    /// The bridge's address.
    pub gateway: &'static str,
    pub netns0: &'static str,
    pub netns1: &'static str,
    /// The host's loopback address.
    pub localhost: &'static str,
    /// `status --json`'s key for a published spec's container address in this family.
    pub container_key: &'static str,
    /// Bytes of a SYN from Linux: the IP header, 20 of TCP, 20 of options.
    pub syn_bytes: u64,
}

impl Net {
    pub const V4: Net = Net {
        family: 4,
        host_ext: HOST_EXT,
        wan: WAN,
        gateway: GATEWAY,
        netns0: NETNS0,
        netns1: NETNS1,
        localhost: "127.0.0.1",
        container_key: "container",
        syn_bytes: 60,
    };
    pub const V6: Net = Net {
        family: 6,
        host_ext: "2001:2::1",
        wan: "2001:2::2",
        gateway: "fd00:172:18::1",
        netns0: "fd00:172:18::10",
        netns1: "fd00:172:18::20",
        localhost: "::1",
        container_key: "container6",
        syn_bytes: 80,
    };

    /// The family `backend` (a case's `netlab up` arguments) runs in.
    pub fn of(backend: &str) -> Net {
        if backend.split_whitespace().any(|arg| arg == "--ipv6") {
            Net::V6
        } else {
            Net::V4
        }
    }

    /// `host:port` as a URL writes it.
    pub fn url_host(ip: &str) -> String {
        if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        }
    }
}

/// Marker in a backend's argument string (not passed to netlab): turn transmit checksum
/// offload off on every interface of the lab, so that checksums are really computed by the
/// senders and verified by the receivers (on veth a partial checksum is never checked), and
/// require the TCP/UDP checksum error counters of every node to stay at 0.
pub const TX_CSUM_OFF: &str = "+tx-csum-off";

/// A lab for one case: `backend` is the `netlab up` arguments that select the backend.
///
/// When the case ends (without a panic), it checks what every case must leave true: on eBPF
/// configurations no node has an iptables or nftables NAT rule; with transmit checksum
/// offload off, the offload is still off and no node counted a TCP, UDP, ICMP or IP checksum
/// error (beyond those a case caused on purpose).
#[derive(Debug)]
pub struct CaseLab {
    lab: Lab,
    /// The family the case runs in, and its addresses.
    pub net: Net,
    backend: String,
    nodes: Vec<String>,
    checksum_nodes: Vec<String>,
    /// Checksum errors per node that a test caused on purpose.
    forgiven: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl std::ops::Deref for CaseLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

/// The checksum error counters of a node, as `nstat` names them.
const CHECKSUM_COUNTERS: [&str; 4] = [
    "TcpInCsumErrors",
    "UdpInCsumErrors",
    "IcmpInCsumErrors",
    "IpExtInCsumErrors",
];

impl CaseLab {
    /// Checksum errors counted in `node` since its namespace was made (`nstat -a` prints
    /// absolute counters: its history file is shared by every namespace). Every counter must
    /// be printed, or the check would pass by reading nothing.
    fn checksum_errors(&self, node: &str) -> u64 {
        let out = self
            .lab
            .sh_ok(node, &format!("nstat -az {}", CHECKSUM_COUNTERS.join(" ")));
        CHECKSUM_COUNTERS
            .iter()
            .map(|counter| {
                out.lines()
                    .find(|line| line.split_whitespace().next() == Some(counter))
                    .and_then(|line| line.split_whitespace().nth(1))
                    .and_then(|value| value.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("nstat in {node} printed no {counter}: {out}"))
            })
            .sum()
    }

    /// Forgets the checksum errors counted so far (of packets a test corrupted on purpose):
    /// only those counted from now on fail the case.
    pub fn forget_checksum_errors(&self) {
        for node in &self.checksum_nodes {
            let errors = self.checksum_errors(node);
            self.forgiven
                .lock()
                .expect("not poisoned")
                .insert(node.clone(), errors);
        }
    }

    /// Asserts, with transmit checksum offload off, that it is still off on every device
    /// and that no node counted a checksum error it was not told to forgive. Runs when the
    /// case ends; a case that removes the lab calls it before.
    pub fn check_checksums(&self) {
        for node in &self.checksum_nodes {
            if !netns_exists(&self.lab.ns(node)) {
                continue;
            }
            let offload = self.lab.sh_ok(
                node,
                "for dev in $(ls /sys/class/net); do [ $dev = lo ] || echo $dev $(ethtool -k $dev | grep '^tx-checksumming:'); done",
            );
            for line in offload.lines() {
                assert!(
                    line.ends_with("tx-checksumming: off"),
                    "offload back on in {node}: {line}"
                );
            }
            let forgiven = self
                .forgiven
                .lock()
                .expect("not poisoned")
                .get(node)
                .copied()
                .unwrap_or(0);
            let errors = self.checksum_errors(node);
            assert_eq!(
                errors,
                forgiven,
                "checksum errors in {node} ({})",
                CHECKSUM_COUNTERS.join(", ")
            );
        }
    }

    /// Asserts that no node of an eBPF lab has an iptables or nftables NAT rule.
    pub fn check_no_nat_rules(&self) {
        if !self.backend.contains("ebpf") {
            return;
        }
        for node in &self.nodes {
            if !netns_exists(&self.lab.ns(node)) {
                continue;
            }
            let rules = nat_rules(&self.lab, node);
            assert!(
                rules.is_empty(),
                "{}: the eBPF backend needs no NAT rule, but {node} has: {rules:#?}",
                self.backend
            );
        }
    }
}

impl Drop for CaseLab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        self.check_no_nat_rules();
        self.check_checksums();
    }
}

fn netns_exists(ns: &str) -> bool {
    std::path::Path::new("/run/netns").join(ns).exists()
}

/// `iptables-save` / `nft list ruleset` output without comments and packet counters
/// (`:CHAIN POLICY [packets:bytes]`, nft's `counter packets P bytes B`), which move with any
/// packet (an IGMP report of a new link), one line each.
pub fn rules_without_counters(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let line = line.split_once(" [").map_or(line, |(head, _)| head);
            line.split_once("counter packets")
                .map_or(line, |(head, _)| head)
                .trim_end()
                .to_string()
        })
        .collect()
}

/// The iptables, ip6tables and nftables rules of `node` that translate addresses (DNAT, SNAT,
/// MASQUERADE, REDIRECT, NETMAP, in any table, as either tool prints them). Both tools must
/// run: a missing tool or a failing one fails the test rather than reading as "no rule".
pub fn nat_rules(lab: &Lab, node: &str) -> Vec<String> {
    let text = lab.sh_ok(node, "iptables-save && ip6tables-save && nft list ruleset");
    text.lines()
        .filter(|line| {
            let line = line.to_ascii_lowercase();
            ["dnat", "snat", "masquerade", "redirect", "netmap"]
                .iter()
                .any(|target| line.contains(target))
        })
        .map(str::to_string)
        .collect()
}

/// The lab `up` builds from `extra` arguments on `backend`.
pub fn lab_with(backend: &str, extra: &[&str]) -> CaseLab {
    let mut args: Vec<&str> = backend
        .split_whitespace()
        .filter(|arg| *arg != TX_CSUM_OFF)
        .collect();
    args.extend_from_slice(extra);
    // The IPv4 configurations' labs are IPv4-only, the `*_v6` ones' dual-stack: each lab has
    // the families its traffic uses. (The default, dual-stack, lab is `up` as users run it in
    // `claims.rs`, `crash.rs`, `topology.rs` and `security.rs`.)
    if Net::of(backend) == Net::V4 && !extra.iter().any(|arg| matches!(*arg, "-f" | "--file")) {
        args.push("--ipv4-only");
    }
    let lab = Lab::up(&args);
    let status: Value =
        serde_json::from_str(&lab.netlab_ok(&["status", "--json"])).expect("status JSON");
    let nodes: Vec<String> = status["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|node| node["name"].as_str().expect("node name").to_string())
        .collect();
    let mut checksum_nodes = Vec::new();
    if backend.contains(TX_CSUM_OFF) {
        for name in &nodes {
            lab.sh_ok(name, "for dev in $(ls /sys/class/net); do [ $dev = lo ] || ethtool -K $dev tx off >/dev/null; done");
            checksum_nodes.push(name.clone());
        }
    }
    let case = CaseLab {
        lab,
        net: Net::of(backend),
        backend: backend.to_string(),
        nodes,
        checksum_nodes,
        forgiven: std::sync::Mutex::default(),
    };
    if backend.contains("ebpf") {
        case.check_no_nat_rules();
    } else {
        // So the check above cannot pass by looking nowhere: the same look finds the
        // iptables backend's rules.
        let rules = nat_rules(&case, "host");
        assert!(
            !rules.is_empty(),
            "the iptables backend's NAT rules are missing"
        );
    }
    case
}

/// The default lab on `backend`.
pub fn default_lab(backend: &str) -> CaseLab {
    lab_with(backend, &[])
}

/// A long-lived connection from a node to a `lines` server, driven line by line.
#[derive(Debug)]
pub struct Session {
    stdout: BufReader<ChildStdout>,
    stdin: Option<ChildStdin>,
    process: Guarded,
}

impl Session {
    /// A [`CLIENT`](crate::fixtures::CLIENT) `session` from `node` to a `lines` server at
    /// `ip:port`.
    pub fn open(lab: &Lab, node: &str, ip: &str, port: u16) -> Self {
        Self::spawn(lab, node, CLIENT, &["session", ip, &port.to_string()])
    }

    /// Any Python `script` run with `args` in `node` that, like `session`, answers each line
    /// on its stdin with one line on its stdout.
    pub fn spawn(lab: &Lab, node: &str, script: &str, args: &[&str]) -> Self {
        let mut process = Guarded::spawn(
            Command::new("timeout")
                .args(["-k", "2", &CLIENT_TIMEOUT_SECS.to_string()])
                .args(["ip", "netns", "exec", &lab.ns(node), PYTHON, "-c", script])
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        );
        let stdin = process.0.stdin.take();
        let stdout = BufReader::new(process.0.stdout.take().expect("piped stdout"));
        Self {
            stdout,
            stdin,
            process,
        }
    }

    /// Sends `message` as a line; returns the reply line (the client gives up after 5 s).
    pub fn exchange(&mut self, message: &str) -> String {
        let stdin = self.stdin.as_mut().expect("session is open");
        writeln!(stdin, "{message}").expect("writing to the session client");
        stdin.flush().expect("flushing the session client");
        let mut reply = String::new();
        self.stdout
            .read_line(&mut reply)
            .expect("reading from the session client");
        reply.trim_end_matches('\n').to_string()
    }

    /// Closes the connection and asserts that the client saw no error.
    pub fn close(mut self) {
        drop(self.stdin.take());
        let status = self
            .process
            .0
            .wait()
            .expect("waiting for the session client");
        assert!(status.success(), "session client exited with {status}");
    }
}

/// Asserts how a TCP connection attempt from `node` to `ip:port` ends within 2 s (see
/// [`probe`]): `connected`, `refused` (a reset came back: nothing listens where the SYN was
/// delivered), `timeout` (the SYN was dropped on the way) or an errno name such as
/// `ENETUNREACH` (the sender has no route).
#[track_caller]
pub fn assert_probe(lab: &Lab, node: &str, ip: &str, port: u16, expected: &str, why: &str) {
    let outcome = probe(lab, node, ip, port);
    assert_eq!(
        outcome, expected,
        "{node} -> {ip}:{port} ended `{outcome}`, not `{expected}`: {why}"
    );
}

/// Asserts that a connection from `node` to `ip:port` is refused: the SYN reached a node
/// where nothing listens on that port (not forwarded, and not dropped either).
#[track_caller]
pub fn assert_refused(lab: &Lab, node: &str, ip: &str, port: u16, why: &str) {
    assert_probe(lab, node, ip, port, "refused", why);
}

/// Asserts that a connection from `node` to `ip:port` times out: the SYN was dropped, no
/// reset and no ICMP error came back.
#[track_caller]
pub fn assert_dropped(lab: &Lab, node: &str, ip: &str, port: u16, why: &str) {
    assert_probe(lab, node, ip, port, "timeout", why);
}
