//! A lab's behaviour as its users see it: masquerade, published ports (TCP, UDP, ranges,
//! hairpin, the host's own traffic), payload integrity and concurrency through a published
//! port, unpublish, input errors, publishing from a lab file, and `down`. Every case runs real
//! clients and servers inside the namespaces of a lab of its own, and takes the NAT backend as
//! a parameter: `backend_tests!` turns each case into one `#[test]` per backend.
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

use netlab_e2e::{Lab, unique};
use serde_json::Value;

/// The host node's address on the external link: where `wan` reaches published ports.
const HOST_EXT: &str = "198.18.0.1";
/// The `wan` node's address.
const WAN: &str = "198.18.0.2";
/// The bridge's address, the containers' gateway.
const GATEWAY: &str = "172.18.0.1";
/// Container `netns0` of the default lab.
const NETNS0: &str = "172.18.0.10";
/// Container `netns1` of the default lab.
const NETNS1: &str = "172.18.0.20";

const PYTHON: &str = "python3";
/// How long a server may take to bind all its ports.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound on any one client run (the clients' own socket timeouts are shorter).
const CLIENT_TIMEOUT_SECS: u32 = 60;

/// The servers, `python3 -c SERVER MODE PORT...`; every port is bound before any is served.
/// - `http`: `GET` answers `peer=<client address> port=<accepting port> path=<path>`.
/// - `lines`: echoes each line prefixed with `<client address> <accepting port> `.
/// - `bulk`: `PUT n` reads n bytes and answers `<bytes read> <sha256>`; `GET n` sends
///   `<sha256>` and a newline, then n random bytes, then closes.
/// - `udp`: echoes each datagram byte for byte; `?peer` is answered with the sender's address.
const SERVER: &str = r#"
import hashlib, os, socket, socketserver, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Tcp(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024


class Lines(socketserver.StreamRequestHandler):
    def handle(self):
        prefix = f"{self.client_address[0]} {self.server.server_address[1]} ".encode()
        for line in self.rfile:
            self.wfile.write(prefix + line)


class Bulk(socketserver.StreamRequestHandler):
    def handle(self):
        verb, size = self.rfile.readline().split()
        size = int(size)
        if verb == b"PUT":
            digest, left = hashlib.sha256(), size
            while left:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                digest.update(chunk)
                left -= len(chunk)
            self.wfile.write(f"{size - left} {digest.hexdigest()}\n".encode())
        elif verb == b"GET":
            data = os.urandom(size)
            self.wfile.write(hashlib.sha256(data).hexdigest().encode() + b"\n" + data)


class Http(BaseHTTPRequestHandler):
    def do_GET(self):
        peer, port = self.client_address[0], self.server.server_address[1]
        body = f"peer={peer} port={port} path={self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def server_bind(self):
        # HTTPServer.server_bind resolves the host name, which could send a DNS query.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "lab", self.server_address[1]


def tcp(handler, server=Tcp):
    return lambda port: server(("0.0.0.0", port), handler).serve_forever


def udp(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))

    def serve():
        while True:
            data, peer = sock.recvfrom(65535)
            sock.sendto(peer[0].encode() if data == b"?peer" else data, peer)

    return serve


MODES = {"http": tcp(Http, HttpServer), "lines": tcp(Lines), "bulk": tcp(Bulk), "udp": udp}
loops = [MODES[sys.argv[1]](int(port)) for port in sys.argv[2:]]
for loop in loops:
    threading.Thread(target=loop, daemon=True).start()
threading.Event().wait()
"#;

/// The clients, `python3 -c CLIENT MODE ARGS...`; each prints its findings on stdout and the
/// test compares them, or fails with a traceback.
/// - `lines HOST PORT MSG...`: one connection, each message as a line, prints each reply.
/// - `session HOST PORT`: the same with messages read from stdin as they come.
/// - `probe HOST PORT SECS`: prints `connected`, `refused`, `timeout` or the errno name.
/// - `put HOST PORT SIZE` / `get HOST PORT SIZE`: 10 MB-style transfers with the `bulk`
///   server; print `client <bytes> <sha256>` and `server <bytes> <sha256>`.
/// - `concurrent HOST PORT N`: N connections open at once, each echoing a distinct line
///   through a `lines` server; prints `ok=<good>/<N> peers=<addresses the server saw>`.
/// - `udp HOST PORT N`: N datagrams of random content and size (1 to 1472 bytes) over a
///   connected socket (so replies from any other address are not taken); prints
///   `matched=<equal echoes>/<N>`.
/// - `udp-peer HOST PORT`: prints the sender address the `udp` server saw.
const CLIENT: &str = r#"
import errno, hashlib, os, random, socket, sys, threading


def connect(host, port, timeout=5.0):
    return socket.create_connection((host, int(port)), timeout=float(timeout))


def lines(host, port, *messages):
    with connect(host, port) as sock, sock.makefile("rb") as replies:
        for message in messages:
            sock.sendall(message.encode() + b"\n")
            print(replies.readline().decode().rstrip("\n"), flush=True)


def session(host, port):
    with connect(host, port) as sock, sock.makefile("rb") as replies:
        for message in iter(sys.stdin.readline, ""):
            sock.sendall(message.encode())
            reply = replies.readline()
            if not reply:
                sys.exit("the server closed the connection")
            print(reply.decode().rstrip("\n"), flush=True)


def probe(host, port, timeout):
    try:
        connect(host, port, timeout).close()
        print("connected")
    except ConnectionRefusedError:
        print("refused")
    except TimeoutError:
        print("timeout")
    except OSError as err:
        print(errno.errorcode.get(err.errno, str(err)))


def put(host, port, size):
    data = os.urandom(int(size))
    with connect(host, port, 30) as sock, sock.makefile("rb") as replies:
        sock.sendall(f"PUT {size}\n".encode() + data)
        sock.shutdown(socket.SHUT_WR)
        remote = replies.readline().decode().strip()
    print(f"client {len(data)} {hashlib.sha256(data).hexdigest()}")
    print(f"server {remote}")


def get(host, port, size):
    digest, received = hashlib.sha256(), 0
    with connect(host, port, 30) as sock, sock.makefile("rb") as replies:
        sock.sendall(f"GET {size}\n".encode())
        remote = replies.readline().decode().strip()
        while chunk := replies.read(1 << 16):
            digest.update(chunk)
            received += len(chunk)
    print(f"client {received} {digest.hexdigest()}")
    print(f"server {size} {remote}")


def concurrent(host, port, count):
    count = int(count)
    barrier = threading.Barrier(count, timeout=30)
    lock = threading.Lock()
    peers, failures = set(), []

    def one(index):
        try:
            with connect(host, port, 30) as sock, sock.makefile("rb") as replies:
                barrier.wait()  # every connection is established before any sends
                payload = f"connection {index} {os.urandom(16).hex()}"
                sock.sendall(payload.encode() + b"\n")
                reply = replies.readline().decode().rstrip("\n")
            peer, _port, echoed = reply.split(" ", 2)
            if echoed != payload:
                raise ValueError(f"sent {payload!r}, echoed {echoed!r}")
            with lock:
                peers.add(peer)
        except Exception as err:
            barrier.abort()
            with lock:
                failures.append(f"connection {index}: {err!r}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"ok={count - len(failures)}/{count} peers={','.join(sorted(peers))}")
    for failure in failures[:10]:
        print(failure)


def udp(host, port, count):
    count, matched = int(count), 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.connect((host, int(port)))
        for index in range(count):
            # The smallest and the largest unfragmented datagram first, then random sizes.
            size = (1, 1472)[index] if index < 2 else random.randint(1, 1472)
            payload = os.urandom(size)
            sock.send(payload)
            reply = sock.recv(65535)
            if reply == payload:
                matched += 1
            else:
                print(f"datagram {index}: sent {size} bytes, got {len(reply)} other bytes")
    print(f"matched={matched}/{count}")


def udp_peer(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.connect((host, int(port)))
        sock.send(b"?peer")
        print(sock.recv(65535).decode())


MODES = {"lines": lines, "session": session, "probe": probe, "put": put, "get": get,
         "concurrent": concurrent, "udp": udp, "udp-peer": udp_peer}
MODES[sys.argv[1]](*sys.argv[2:])
"#;

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

/// One file under the temporary directory, removed on drop.
#[derive(Debug)]
struct TempFile(PathBuf);

impl TempFile {
    fn new(extension: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{}.{extension}", unique("f")));
        std::fs::write(&path, contents)
            .unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("temporary paths are UTF-8")
    }

    fn read(&self) -> String {
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
struct Guarded(Child);

impl Guarded {
    fn spawn(command: &mut Command) -> Self {
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

/// What a [`Server`] runs; see [`SERVER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Http,
    Lines,
    Bulk,
    Udp,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Lines => "lines",
            Self::Bulk => "bulk",
            Self::Udp => "udp",
        }
    }
}

/// A server process in one node of a lab, listening on the given ports; killed on drop.
#[derive(Debug)]
struct Server {
    // Declared first so the process is killed before its log file is removed.
    process: Guarded,
    log: TempFile,
    what: String,
}

impl Server {
    /// Starts a [`SERVER`] in `node` and returns once every port is listening (or panics
    /// after [`READY_TIMEOUT`]).
    fn start(lab: &Lab, node: &str, mode: Mode, ports: &[u16]) -> Self {
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
        let ss = if mode == Mode::Udp { "-Hlun" } else { "-Hltn" };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.process.0.try_wait().expect("polling the server") {
                panic!(
                    "{} exited ({status}) before listening: {}",
                    self.what,
                    self.log.read()
                );
            }
            let out = netlab_e2e::sh_in(ns, &format!("ss {ss}"));
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
fn listening_ports(ss: &str) -> BTreeSet<u16> {
    ss.lines()
        .filter_map(|line| line.split_whitespace().nth(3))
        .filter_map(|local| local.rsplit_once(':'))
        .filter_map(|(_, port)| port.parse().ok())
        .collect()
}

/// Runs `argv` inside namespace `ns`, killed if it runs longer than `secs` seconds.
fn run_in(ns: &str, secs: u32, argv: &[&str]) -> Output {
    Command::new("timeout")
        .args(["-k", "2", &secs.to_string(), "ip", "netns", "exec", ns])
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("running {argv:?} in {ns}: {err}"))
}

/// Stdout of a run that must have succeeded.
#[track_caller]
fn checked(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a [`CLIENT`] in `node`; panics unless it succeeds; returns its stdout.
#[track_caller]
fn client(lab: &Lab, node: &str, args: &[&str]) -> String {
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
fn probe(lab: &Lab, node: &str, ip: &str, port: u16) -> String {
    client(lab, node, &["probe", ip, &port.to_string(), "2"])
        .trim()
        .to_string()
}

/// Asserts that a connection from `node` to `ip:port` is not accepted (refused or timed out).
#[track_caller]
fn assert_unreachable(lab: &Lab, node: &str, ip: &str, port: u16, why: &str) {
    let outcome = probe(lab, node, ip, port);
    assert_ne!(
        outcome, "connected",
        "{node} -> {ip}:{port} connected, but {why}"
    );
}

/// `GET http://IP:PORT/PATH` with curl from `node`; returns the body.
#[track_caller]
fn curl(lab: &Lab, node: &str, ip: &str, port: u16, path: &str) -> String {
    let url = format!("http://{ip}:{port}{path}");
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
fn seen(peer: &str, port: u16, path: &str) -> String {
    format!("peer={peer} port={port} path={path}\n")
}

/// Asserts that `GET http://IP:PORT/...` from `from` is answered by the `http` server on its
/// port `server_port`, which saw the request coming from `peer`.
#[track_caller]
fn assert_http(lab: &Lab, from: &str, ip: &str, port: u16, server_port: u16, peer: &str) {
    let path = format!("/{from}-to-{ip}-{port}");
    assert_eq!(
        curl(lab, from, ip, port, &path),
        seen(peer, server_port, &path),
        "GET http://{ip}:{port}{path} from {from}"
    );
}

/// `netlab status --json`.
#[track_caller]
fn status(lab: &Lab) -> Value {
    let text = lab.netlab_ok(&["status", "--json"]);
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("status --json: {err}: {text}"))
}

/// `netlab ports --json`.
#[track_caller]
fn ports(lab: &Lab) -> Value {
    let text = lab.netlab_ok(&["ports", "--json"]);
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("ports --json: {err}: {text}"))
}

/// The `(node, spec)` pairs of `status --json`'s `published`.
#[track_caller]
fn published(lab: &Lab) -> Vec<(String, String)> {
    pairs(&status(lab)["published"])
}

/// The `(node, spec)` pairs of a JSON array of objects with those keys.
fn pairs(rows: &Value) -> Vec<(String, String)> {
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

fn pair(node: &str, spec: &str) -> (String, String) {
    (node.to_string(), spec.to_string())
}

/// The root namespace's `iptables-save`, without its `#` comment lines (they carry the time).
fn root_iptables() -> String {
    let out = Command::new("iptables-save")
        .output()
        .expect("running iptables-save");
    checked("iptables-save in the root namespace", &out)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Marker in a backend's argument string (not passed to netlab): turn transmit checksum
/// offload off on every interface of the lab, so that checksums are really computed by the
/// senders and verified by the receivers (on veth a partial checksum is never checked), and
/// require the TCP/UDP checksum error counters of every node to stay at 0.
const TX_CSUM_OFF: &str = "+tx-csum-off";

/// A lab for one case: `backend` is the `netlab up` arguments that select the backend.
#[derive(Debug)]
struct CaseLab {
    lab: Lab,
    checksum_nodes: Vec<String>,
}

impl std::ops::Deref for CaseLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

impl Drop for CaseLab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        for node in &self.checksum_nodes {
            if !std::path::Path::new("/run/netns")
                .join(self.lab.ns(node))
                .exists()
            {
                continue;
            }
            let out = self
                .lab
                .sh_ok(node, "nstat -az TcpInCsumErrors UdpInCsumErrors");
            for line in out.lines().filter(|line| line.contains("InCsumErrors")) {
                let value: u64 = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(u64::MAX);
                assert_eq!(value, 0, "checksum errors in {node}: {line}");
            }
        }
    }
}

/// The lab `up` builds from `extra` arguments on `backend`.
fn lab_with(backend: &str, extra: &[&str]) -> CaseLab {
    let mut args: Vec<&str> = backend
        .split_whitespace()
        .filter(|arg| *arg != TX_CSUM_OFF)
        .collect();
    args.extend_from_slice(extra);
    let lab = Lab::up(&args);
    assert_nat_rules_match_backend(&lab, backend);
    let mut checksum_nodes = Vec::new();
    if backend.contains(TX_CSUM_OFF) {
        let status: Value =
            serde_json::from_str(&lab.netlab_ok(&["status", "--json"])).expect("status JSON");
        for node in status["nodes"].as_array().expect("nodes") {
            let name = node["name"].as_str().expect("node name").to_string();
            lab.sh_ok(&name, "for dev in $(ls /sys/class/net); do ethtool -K $dev tx off >/dev/null 2>&1 || true; done; nstat -n");
            checksum_nodes.push(name);
        }
    }
    CaseLab {
        lab,
        checksum_nodes,
    }
}

/// The eBPF backend publishes and masquerades with no iptables or nftables NAT rule in the
/// lab; the iptables backend has them (so this check cannot pass by looking nowhere).
fn assert_nat_rules_match_backend(lab: &Lab, backend: &str) {
    let rules = lab.sh_ok(
        "host",
        "iptables-save; nft list ruleset 2>/dev/null || true",
    );
    let nat_rules = rules
        .lines()
        .filter(|line| {
            line.contains("DNAT")
                || line.contains("MASQUERADE")
                || line.contains("masquerade")
                || line.contains("dnat to")
        })
        .count();
    if backend.contains("ebpf") {
        assert_eq!(nat_rules, 0, "the eBPF backend needs no NAT rule:\n{rules}");
    } else {
        assert!(
            nat_rules > 0,
            "the iptables backend's NAT rules are missing:\n{rules}"
        );
    }
}

/// The default lab on `backend`.
fn default_lab(backend: &str) -> CaseLab {
    lab_with(backend, &[])
}

/// A long-lived connection from a node to a `lines` server, driven line by line.
#[derive(Debug)]
struct Session {
    stdout: BufReader<ChildStdout>,
    stdin: Option<ChildStdin>,
    process: Guarded,
}

impl Session {
    fn open(lab: &Lab, node: &str, ip: &str, port: u16) -> Self {
        let mut process = Guarded::spawn(
            Command::new("timeout")
                .args(["-k", "2", &CLIENT_TIMEOUT_SECS.to_string()])
                .args(["ip", "netns", "exec", &lab.ns(node), PYTHON, "-c", CLIENT])
                .args(["session", ip, &port.to_string()])
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
    fn exchange(&mut self, message: &str) -> String {
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
    fn close(mut self) {
        drop(self.stdin.take());
        let status = self
            .process
            .0
            .wait()
            .expect("waiting for the session client");
        assert!(status.success(), "session client exited with {status}");
    }
}

/// Case 1: Containers reach the outside through masquerade, and the outside cannot reach them
/// directly: a server in `wan` sees connections from netns0 and netns1 coming from the host's
/// external address 198.18.0.1 and answers them; `ping` from netns0 to `wan` works; `wan`
/// has no way to 172.18.0.10 even though something listens there.
fn masquerade(backend: &str) {
    let lab = default_lab(backend);
    let _outside = Server::start(&lab, "wan", Mode::Http, &[7777]);
    for container in ["netns0", "netns1"] {
        assert_http(&lab, container, WAN, 7777, 7777, HOST_EXT);
    }
    let ping = checked(
        "ping from netns0 to wan",
        &run_in(
            &lab.ns("netns0"),
            15,
            &["ping", "-c", "3", "-i", "0.2", "-W", "2", WAN],
        ),
    );
    assert!(
        ping.contains("3 packets transmitted, 3 received"),
        "ping from netns0 to {WAN}: {ping}"
    );

    let _inside = Server::start(&lab, "netns0", Mode::Http, &[5000]);
    assert_unreachable(
        &lab,
        "wan",
        NETNS0,
        5000,
        "wan has no route to the container subnet",
    );
}

/// Case 2: A published port works from outside without a proxy: `wan` fetches
/// `http://198.18.0.1:5000/` from the server in netns0:5000, which sees the request coming
/// from 198.18.0.2 itself; and `ports` counts the traffic on that port.
fn published_port_from_wan(backend: &str) {
    let lab = default_lab(backend);
    let _web = Server::start(&lab, "netns0", Mode::Http, &[5000]);
    for _ in 0..3 {
        assert_http(&lab, "wan", HOST_EXT, 5000, 5000, WAN);
    }
    let rows = ports(&lab);
    let row = rows
        .as_array()
        .expect("ports --json is an array")
        .iter()
        .find(|row| row["node"] == "netns0" && row["spec"] == "5000:5000/tcp")
        .unwrap_or_else(|| panic!("no row for netns0 5000:5000/tcp: {rows}"));
    assert!(
        row["packets"].as_u64().is_some_and(|count| count >= 3),
        "3 connections went through 5000:5000/tcp: {row}"
    );
}

/// Case 3: The host node's own processes reach a published port (the OUTPUT path), through its
/// external address and through 127.0.0.1. The container sees the host's address as the
/// source: 198.18.0.1 unchanged, and for loopback the bridge address 172.18.0.1 (a container
/// cannot answer 127.0.0.1), as Docker does without its userland proxy.
fn from_the_host_node(backend: &str) {
    let lab = default_lab(backend);
    let _web = Server::start(&lab, "netns0", Mode::Http, &[5000]);
    assert_http(&lab, "host", HOST_EXT, 5000, 5000, HOST_EXT);
    assert_http(&lab, "host", "127.0.0.1", 5000, 5000, GATEWAY);
}

/// Case 4: Hairpin: a container reaches another container's published port through the host's
/// external address, and the server sees the real client (172.18.0.20); a container reaches
/// its own published port that way too (self-hairpin), the connection masqueraded to the
/// bridge address so the reply comes back the way it went. The bridge address itself is not
/// a published address.
fn hairpin(backend: &str) {
    let lab = default_lab(backend);
    let _web = Server::start(&lab, "netns0", Mode::Http, &[5000]);
    assert_http(&lab, "netns1", HOST_EXT, 5000, 5000, NETNS1);
    assert_http(&lab, "netns0", HOST_EXT, 5000, 5000, GATEWAY);
    assert_unreachable(
        &lab,
        "netns1",
        GATEWAY,
        5000,
        "port 5000 is published on every host address except the bridge's",
    );
}

/// Case 5: A published UDP port: datagrams of random content and sizes (1 to 1472 bytes) sent from
/// `wan` to 198.18.0.1:6000 come back byte for byte from that same address and port, and the
/// server in netns1 sees them coming from 198.18.0.2.
fn udp(backend: &str) {
    let lab = default_lab(backend);
    lab.netlab_ok(&["publish", "netns1", "6000:6000/udp"]);
    let _echo = Server::start(&lab, "netns1", Mode::Udp, &[6000]);
    assert_eq!(
        client(&lab, "wan", &["udp", HOST_EXT, "6000", "50"]).trim(),
        "matched=50/50"
    );
    assert_eq!(
        client(&lab, "wan", &["udp-peer", HOST_EXT, "6000"]).trim(),
        WAN
    );
}

/// Case 6: A range maps 1:1: with 7000-7009:8000-8009 published, host port 7000+k reaches
/// container port 8000+k (servers on 8000, 8005 and 8009 say which port accepted), and the
/// container ports are not published as host ports themselves.
fn port_ranges(backend: &str) {
    let lab = default_lab(backend);
    lab.netlab_ok(&["publish", "netns0", "7000-7009:8000-8009"]);
    assert!(
        published(&lab).contains(&pair("netns0", "7000-7009:8000-8009/tcp")),
        "{:?}",
        published(&lab)
    );
    let _web = Server::start(&lab, "netns0", Mode::Http, &[8000, 8005, 8009]);
    for offset in [0, 5, 9] {
        assert_http(&lab, "wan", HOST_EXT, 7000 + offset, 8000 + offset, WAN);
    }
    assert_unreachable(
        &lab,
        "wan",
        HOST_EXT,
        8000,
        "host port 8000 is not published",
    );
}

/// Case 7: A 1,000-port range: `ports --json` and `status --json` list it whole, and its first,
/// a middle and its last port reach their listeners.
fn thousand_port_range(backend: &str) {
    let lab = default_lab(backend);
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
    assert_eq!(entry["container"], NETNS0, "{entry}");
    let rows = ports(&lab);
    assert!(pairs(&rows).contains(&spec), "ports --json: {rows}");

    let _web = Server::start(&lab, "netns0", Mode::Http, &[20000, 20500, 20999]);
    for port in [20000, 20500, 20999] {
        assert_http(&lab, "wan", HOST_EXT, port, port, WAN);
    }
}

/// Case 8: 10 MB in each direction through a published port keep their integrity: `wan` uploads
/// 10 MiB of random bytes and the server's sha256 of what it read matches the client's; the
/// server sends 10 MiB of random bytes and the client's sha256 matches the server's.
fn ten_megabytes_both_ways(backend: &str) {
    const SIZE: &str = "10485760";
    let lab = default_lab(backend);
    let _bulk = Server::start(&lab, "netns0", Mode::Bulk, &[5000]);
    for direction in ["put", "get"] {
        let out = client(&lab, "wan", &[direction, HOST_EXT, "5000", SIZE]);
        let client_side = out.lines().find_map(|line| line.strip_prefix("client "));
        let server_side = out.lines().find_map(|line| line.strip_prefix("server "));
        assert!(
            client_side.is_some_and(|seen| seen.starts_with(&format!("{SIZE} "))),
            "{direction}: {out}"
        );
        assert_eq!(client_side, server_side, "{direction}: {out}");
    }
}

/// Case 9: 200 concurrent connections through one published port: all are established at once,
/// each echoes its own distinct line intact, and the server saw every one come from `wan`.
fn two_hundred_concurrent_connections(backend: &str) {
    let lab = default_lab(backend);
    let _echo = Server::start(&lab, "netns0", Mode::Lines, &[5000]);
    let out = client(&lab, "wan", &["concurrent", HOST_EXT, "5000", "200"]);
    assert_eq!(
        out.lines().next(),
        Some(format!("ok=200/200 peers={WAN}").as_str()),
        "{out}"
    );
}

/// Case 10: Unpublish takes effect at once and only for its port: after unpublishing 9001 (named
/// as `9001:9001/tcp`, its canonical form, though published as `9001:9001`), connecting to
/// it from `wan` fails, 9002 still accepts new connections, and a connection to 9002 that was
/// established before keeps carrying data both ways.
fn unpublish(backend: &str) {
    let lab = default_lab(backend);
    lab.netlab_ok(&["publish", "netns0", "9001:9001", "9002:9002"]);
    let _echo = Server::start(&lab, "netns0", Mode::Lines, &[9001, 9002]);
    for port in ["9001", "9002"] {
        assert_eq!(
            client(&lab, "wan", &["lines", HOST_EXT, port, "hello"]).trim(),
            format!("{WAN} {port} hello"),
            "before unpublish, port {port}"
        );
    }
    let mut session = Session::open(&lab, "wan", HOST_EXT, 9002);
    assert_eq!(session.exchange("before"), format!("{WAN} 9002 before"));

    lab.netlab_ok(&["unpublish", "netns0", "9001:9001/tcp"]);

    assert_eq!(
        session.exchange("after"),
        format!("{WAN} 9002 after"),
        "the connection established before the unpublish"
    );
    assert_unreachable(&lab, "wan", HOST_EXT, 9001, "9001 was unpublished");
    assert_eq!(
        client(&lab, "wan", &["lines", HOST_EXT, "9002", "again"]).trim(),
        format!("{WAN} 9002 again"),
        "a new connection to 9002"
    );
    assert_eq!(
        session.exchange("still"),
        format!("{WAN} 9002 still"),
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

/// Case 11: Bad input is refused with one clear line on stderr and a non-zero exit, and leaves the
/// published set (and the datapath) as it was; TCP and UDP ports are allocated separately.
fn bad_input(backend: &str) {
    let lab = default_lab(backend);
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
    assert_unreachable(
        &lab,
        "wan",
        HOST_EXT,
        8100,
        "the failed `publish 8100:8100 5000:5000` must not publish 8100",
    );
    assert_http(&lab, "wan", HOST_EXT, 5000, 5000, WAN);

    lab.netlab_ok(&["publish", "netns0", "5000:5000/udp"]);
    let listed = published(&lab);
    for spec in ["5000:5000/tcp", "5000:5000/udp"] {
        assert!(listed.contains(&pair("netns0", spec)), "{listed:?}");
    }
    let _echo = Server::start(&lab, "netns0", Mode::Udp, &[5000]);
    assert_eq!(
        client(&lab, "wan", &["udp", HOST_EXT, "5000", "5"]).trim(),
        "matched=5/5"
    );
    assert_http(&lab, "wan", HOST_EXT, 5000, 5000, WAN);
}

/// Case 12: `down` removes everything: the lab's namespaces and state file are gone, `status` says
/// the lab is not up, and for a lab whose host node is a namespace, the root namespace's
/// iptables rules are the same before `up`, while the lab is up and after `down`.
fn down_removes_everything(backend: &str) {
    let before = root_iptables();
    let file = TempFile::new("toml", &format!("host = \"namespace\"\n{WEB_LAB}"));
    let lab = lab_with(backend, &["-f", file.path()]);
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
        assert_http(&lab, "wan", HOST_EXT, 8080, 80, WAN);
    }
    assert_eq!(namespaces().len(), 3, "host, wan, web: {:?}", namespaces());
    assert!(state.exists(), "{} while the lab is up", state.display());
    assert_eq!(
        root_iptables(),
        before,
        "`up` changed the root namespace's rules"
    );

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
    assert_eq!(published(&lab), [pair("web", "8080:80/tcp")]);
    let _web = Server::start(&lab, "web", Mode::Http, &[80]);
    assert_http(&lab, "wan", HOST_EXT, 8080, 80, WAN);
}

/// `python3 -c UDP_PROBE IP PORT`: sends one datagram on a connected UDP socket and prints
/// how it ends: `reply`, `refused` (an ICMP port unreachable reached the socket) or `timeout`.
const UDP_PROBE: &str = r"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b'probe')
try:
    s.recv(100)
    print('reply')
except ConnectionRefusedError:
    print('refused')
except socket.timeout:
    print('timeout')
";

/// `python3 -c MANY_FLOWS IP PORT N`: N UDP sockets each send a distinct payload to an echo
/// server and must each get their own payload back; prints how many did.
const MANY_FLOWS: &str = r"
import resource, select, socket, sys, time
ip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, n + 100))
socks = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.connect((ip, port))
    socks.append(s)
ep = select.epoll()
index = {}
for i, s in enumerate(socks):
    index[s.fileno()] = i
    ep.register(s.fileno(), select.EPOLLIN)
# UDP may drop under load (socket buffers): send again to flows still waiting, every
# second; what matters is that every reply that comes back reaches its own socket.
ok, wrong, deadline, next_send = set(), 0, time.time() + 40, 0
while len(ok) < n and time.time() < deadline:
    if time.time() >= next_send:
        for i, s in enumerate(socks):
            if i not in ok:
                s.send(b'flow-%d' % i)
                if i % 500 == 499:
                    time.sleep(0.01)
        next_send = time.time() + 1
    for fd, _ in ep.poll(0.2):
        i = index[fd]
        try:
            data = socks[i].recv(100)
        except BlockingIOError:
            continue
        if data == b'flow-%d' % i:
            ok.add(i)
        else:
            wrong += 1
print(len(ok), wrong)
";

/// Case 14: ICMP errors about translated flows reach the sender's socket: a container's
/// datagram to a closed port in `wan` (masqueraded) and a `wan` datagram to a published UDP
/// port nobody listens on (DNAT) both end with the socket seeing "connection refused", which
/// needs the quoted header inside the ICMP error translated back.
fn icmp_errors(backend: &str) {
    let lab = default_lab(backend);
    let out = checked(
        "UDP probe from netns0",
        &run_in(&lab.ns("netns0"), 10, &[PYTHON, "-c", UDP_PROBE, WAN, "9"]),
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
            &[PYTHON, "-c", UDP_PROBE, HOST_EXT, "6100"],
        ),
    );
    assert_eq!(
        out.trim(),
        "refused",
        "port unreachable from the container back through DNAT"
    );
}

/// Case 15: 10,000 masqueraded UDP flows from one container: every reply reaches the socket
/// that sent the request (no mapping mixed up, none lost).
fn ten_thousand_udp_flows(backend: &str) {
    let lab = default_lab(backend);
    let _echo = Server::start(&lab, "wan", Mode::Udp, &[7000]);
    let out = checked(
        "10,000 UDP flows from netns0",
        &run_in(
            &lab.ns("netns0"),
            60,
            &[PYTHON, "-c", MANY_FLOWS, WAN, "7000", "10000"],
        ),
    );
    assert_eq!(
        out.trim(),
        "10000 0",
        "replies that reached their own socket, and wrong ones"
    );
}

/// `python3 -c RAW_SYN IP PORT`: sends three TCP SYNs to IP:PORT out of `eth0` in a
/// broadcast frame, as a hostile neighbour on the external link could.
const RAW_SYN: &str = r"
import socket, struct, sys
def csum(data):
    if len(data) % 2: data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
src, dst, port = socket.inet_aton('198.18.0.2'), socket.inet_aton(sys.argv[1]), int(sys.argv[2])
tcp = struct.pack('!HHIIBBHHH', 40000, port, 1, 0, 5 << 4, 2, 64240, 0, 0)
tcp = tcp[:16] + struct.pack('!H', csum(src + dst + struct.pack('!BBH', 0, 6, len(tcp)) + tcp)) + tcp[18:]
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, src, dst)
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
for _ in range(3):
    s.send(b'\xff' * 6 + b'\x02\x00\x00\x00\x00\x01' + b'\x08\x00' + ip + tcp)
";

/// Case 16: a port published on 127.0.0.1 is for the host's own processes only: SYNs to
/// 127.0.0.1 arriving from the external link are never forwarded to the container (Docker's
/// moby#45610), while a host process reaches it. The same raw SYNs to the external address
/// of a port published everywhere are counted, so the check can fail.
fn loopback_port_is_not_reachable_from_outside(backend: &str) {
    let lab = default_lab(backend);
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
    raw_syns(HOST_EXT, "7101");
    assert!(
        count("7101:7100/tcp") > 0,
        "the same raw SYNs to a port published everywhere are translated"
    );
    assert_http(&lab, "host", "127.0.0.1", 7100, 7100, GATEWAY);
}

/// `python3 -c UDP_TWICE IP PORT`: one UDP socket sends `one` and prints the reply, waits for
/// a line on stdin, then sends `two` and prints the reply or `timeout`.
const UDP_TWICE: &str = r"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], int(sys.argv[2])))
for message in (b'one', b'two'):
    s.send(message)
    try:
        print(s.recv(100).decode(), flush=True)
    except (socket.timeout, ConnectionRefusedError):
        print('timeout', flush=True)
    if message == b'one':
        sys.stdin.readline()
";

/// Case 17: unpublishing a UDP port also stops a flow that is already running: a client that
/// keeps sending from the same socket is not forwarded by the old mapping (Docker flushes
/// conntrack for UDP mappings it removes).
fn unpublish_udp_forgets_running_flows(backend: &str) {
    let lab = default_lab(backend);
    let _echo = Server::start(&lab, "netns1", Mode::Udp, &[6200]);
    lab.netlab_ok(&["publish", "netns1", "6200:6200/udp"]);
    let mut client = Guarded::spawn(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.ns("wan"),
                PYTHON,
                "-c",
                UDP_TWICE,
                HOST_EXT,
                "6200",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    let mut stdin = client.0.stdin.take().expect("stdin");
    let mut lines = BufReader::new(client.0.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a first reply").expect("utf-8");
    assert_eq!(first, "one", "the flow works while published");
    lab.netlab_ok(&["unpublish", "netns1", "6200:6200/udp"]);
    writeln!(stdin, "go").expect("signal the client");
    let second = lines.next().expect("a second line").expect("utf-8");
    assert_eq!(
        second, "timeout",
        "the old mapping still forwarded after unpublish"
    );
}

/// One `#[test]` per case in a module per backend configuration (the `netlab up` arguments).
macro_rules! backend_tests {
    ($($module:ident: $backend:literal;)+) => {$(
        mod $module {
            backend_tests!(@cases $backend;
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
                bad_input,
                down_removes_everything,
                publish_from_lab_file,
                icmp_errors,
                ten_thousand_udp_flows,
                loopback_port_is_not_reachable_from_outside,
                unpublish_udp_forgets_running_flows,
            );
        }
    )+};
    (@cases $backend:literal; $($case:ident,)+) => {$(
        #[test]
        fn $case() {
            super::$case($backend);
        }
    )+};
}

backend_tests! {
    iptables: "--backend iptables";
    ebpf_tc: "--backend ebpf --ingress tc --fast-path on";
    ebpf_tc_no_fast_path: "--backend ebpf --ingress tc --fast-path off";
    ebpf_xdp: "--backend ebpf --ingress xdp --fast-path on";
    ebpf_xdp_no_fast_path: "--backend ebpf --ingress xdp --fast-path off";
    iptables_tx_csum_off: "--backend iptables +tx-csum-off";
    ebpf_tc_tx_csum_off: "--backend ebpf --ingress tc --fast-path on +tx-csum-off";
    ebpf_xdp_tx_csum_off: "--backend ebpf --ingress xdp --fast-path on +tx-csum-off";
    ebpf_xdp_redirect_tx_csum_off: "--backend ebpf --ingress xdp --fast-path xdp-redirect +tx-csum-off";
}
