//! The eBPF datapath's life outside the CLI: it keeps working after netlab exits and after the
//! foreground loader is killed (the first request after each answered, its first SYN through),
//! `up` picks it up again without attaching anything twice or replacing a map, `down` removes
//! it (also after `up` was killed half-way), and its pins are readable by root only.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::{BufRead as _, BufReader, Lines},
    os::unix::{fs::PermissionsExt as _, process::ExitStatusExt as _},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use aya::programs::{SchedClassifier, TcAttachType};
use netlab_e2e::{
    Lab, cmd_ok,
    harness::{HOST_EXT, Mode, Server, WAN, assert_http, assert_refused, client},
    netlab_bin, sh_in_ok, unique,
};
use serde_json::Value;

/// Starts the `http` test server in netns0 on port 5000 (the port the default lab publishes)
/// and returns once it listens: the only wait these tests need. Every request after that is
/// answered on its first try or the test fails.
fn web(lab: &Lab) -> Server {
    Server::start(lab, "netns0", Mode::Http, &[5000])
}

/// Asserts that ONE request from `wan` to the published port 198.18.0.1:5000 is answered,
/// and that its connection was set up by its first SYN: the kernel resends a SYN after 1 s,
/// so a connect time of 1 s or more means the datapath lost a packet (say, while programs
/// were being swapped), which a retrying client would hide.
#[track_caller]
fn answered_first_try(lab_name: &str, when: &str) {
    let (code, connect) = request(&format!("{lab_name}-wan"));
    assert!(
        code == "200" && connect < 1.0,
        "{when}: the first request got HTTP {code:?} with a connect time of {connect} s \
         (200 within 1 s, before any SYN is resent, expected)"
    );
}

/// One `GET http://198.18.0.1:5000/` from namespace `ns` (3 s at most): the HTTP status
/// (`000` when there was no answer) and the time the TCP connection took to set up.
fn request(ns: &str) -> (String, f64) {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "curl",
            "-s",
            "-m",
            "3",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{time_connect}",
            &format!("http://{HOST_EXT}:5000/"),
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut fields = text.split_whitespace();
    let code = fields.next().unwrap_or_default().to_string();
    let connect = fields
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(f64::INFINITY);
    (code, connect)
}

fn pins(lab_name: &str) -> PathBuf {
    Path::new("/sys/fs/bpf/netlab").join(lab_name)
}

#[test]
fn the_datapath_outlives_the_cli_and_its_pins_are_root_only() {
    let lab = Lab::up(&["--backend", "ebpf"]);
    let _web = web(&lab);
    lab.netlab_ok(&["publish", "netns0", "5001:5000"]);
    // Every netlab process has exited; the kernel keeps translating.
    answered_first_try(&lab.name, "after `up` and `publish` exited");
    let dir = pins(&lab.name);
    let mode = std::fs::metadata(&dir)
        .expect("pin folder")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{} is root-only: {mode:o}", dir.display());
    for entry in std::fs::read_dir(&dir)
        .expect("pins")
        .chain(std::fs::read_dir(dir.join("links")).expect("links"))
    {
        let entry = entry.expect("entry");
        let mode = entry.metadata().expect("metadata").permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "{} is root-only: {mode:o}",
            entry.path().display()
        );
    }
    let conntrack: Value =
        serde_json::from_str(&lab.netlab_ok(&["conntrack", "--json"])).expect("conntrack JSON");
    assert!(
        conntrack
            .as_array()
            .expect("rows")
            .iter()
            .any(|row| row["kind"] == "dnat"
                && row["original"]
                    .as_str()
                    .is_some_and(|o| o.ends_with("-> 198.18.0.1:5000"))),
        "the connection is in the NAT table: {conntrack}"
    );
    let inspect = lab.netlab_ok(&["inspect", "host"]);
    for program in [
        "netlab_nat_ext_ingress@eth0",
        "netlab_nat_ext_egress@eth0",
        "netlab_nat_ctr_ingress@veth0",
        "netlab_sock_connect4",
    ] {
        assert!(
            inspect.contains(&format!("attached: {program}")),
            "{program} in:\n{inspect}"
        );
    }
    assert!(
        inspect.contains("map NETLAB_NAT_PUBLISH: 2 entries"),
        "{inspect}"
    );
}

/// Starts `netlab up --backend ebpf --foreground` for lab `name` and waits until it runs.
/// The returned reader keeps the loader's output pipe open: it prints counters every second.
fn start_foreground(name: &str) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut loader = Command::new(netlab_bin())
        .args(["--lab", name, "up", "--backend", "ebpf", "--foreground"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the foreground loader");
    let mut lines = BufReader::new(loader.stdout.take().expect("stdout")).lines();
    let ready = lines
        .by_ref()
        .take(5)
        .any(|line| line.is_ok_and(|l| l.contains("running in the foreground")));
    assert!(ready, "the loader came up");
    (loader, lines)
}

#[test]
fn kill_9_of_the_foreground_loader_then_up_or_down() {
    for then in ["up", "down"] {
        let name = unique("fg");
        // Whatever happens below, the lab goes.
        let lab = Lab { name: name.clone() };
        let (mut loader, _output) = start_foreground(&name);
        let _web = web(&lab);
        answered_first_try(&name, "while the foreground loader runs");
        loader.kill().expect("kill -9");
        let status = loader.wait().expect("waiting for the loader");
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the loader was killed"
        );
        answered_first_try(
            &name,
            "after the loader was killed (the datapath is pinned)",
        );
        let out = Command::new(netlab_bin())
            .args(["--lab", &name, then])
            .output()
            .expect("netlab");
        assert!(
            out.status.success(),
            "{then}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if then == "up" {
            answered_first_try(&name, "after `up` picked up the running datapath");
        } else {
            assert!(!pins(&name).exists(), "down removed the pins");
            assert!(
                !Path::new(&format!("/run/netns/{name}-host")).exists(),
                "down removed the namespaces"
            );
        }
    }
}

#[test]
fn ctrl_c_on_the_foreground_loader_takes_the_lab_down() {
    let name = unique("fc");
    let _lab = Lab { name: name.clone() };
    let (mut loader, _output) = start_foreground(&name);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(i32::try_from(loader.id()).expect("pid"), libc::SIGINT) };
    let status = loader.wait().expect("wait");
    assert!(status.success(), "clean exit: {status}");
    assert!(!pins(&name).exists(), "programs detached, pins gone");
    assert!(!Path::new(&format!("/run/netns/{name}-host")).exists());
}

#[test]
fn up_again_reconciles_the_declared_ports() {
    let lab = Lab::up(&["--backend", "ebpf"]);
    let _web = web(&lab);
    answered_first_try(&lab.name, "after `up`");
    lab.netlab_ok(&["unpublish", "netns0", "5000:5000"]);
    assert_refused(
        &lab,
        "wan",
        HOST_EXT,
        5000,
        "5000 was unpublished: the host node itself answers, with a reset",
    );
    lab.netlab_ok(&["up", "--backend", "ebpf"]);
    answered_first_try(&lab.name, "the lab's declared port, back after `up`");
}

#[test]
fn up_reattaches_to_a_recreated_container() {
    let lab = Lab::up(&["--backend", "ebpf"]);
    // Someone deletes a container's namespace under netlab; `up` re-creates it, and must
    // attach the datapath to the new veth (the old link's pin is still there).
    cmd_ok("ip", &["netns", "delete", &lab.ns("netns0")]);
    lab.netlab_ok(&["up"]);
    let _web = web(&lab);
    answered_first_try(&lab.name, "DNAT into the re-created container");
    // Self-hairpin needs the container-side program on the new veth.
    let (code, connect) = request(&lab.ns("netns0"));
    assert!(
        code == "200" && connect < 1.0,
        "self-hairpin after re-creation: HTTP {code:?}, connect time {connect} s"
    );
}

/// What forwards is what `status` shows: a publish-map entry or a range block that no command
/// recorded (left by a crash between the map update and the state file) is removed by the
/// next `up`.
#[test]
fn up_removes_ports_that_forward_but_are_not_published() {
    let lab = Lab::up(&["--backend", "ebpf"]);
    let map = pins(&lab.name).join(netlab_common::nat::maps::PUBLISH);
    let map = map.to_str().expect("UTF-8 path");
    // 0.0.0.0:6001/tcp -> 172.18.0.10:6001, as a crashed `publish` would leave it.
    let key = ["0", "0", "0", "0", "0x17", "0x71", "6", "0"];
    // Address, port, padding, the owner (0: a lab's entry) and no counter (slot 0).
    let value = [
        "172", "18", "0", "10", "0x17", "0x71", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0",
        "0", "0", "0", "0", "0", "0", "0", "0",
    ];
    let update: Vec<&str> = ["map", "update", "pinned", map, "key"]
        .into_iter()
        .chain(key)
        .chain(["value"])
        .chain(value)
        .collect();
    cmd_ok("bpftool", &update);
    let lookup = ["map", "lookup", "pinned", map, "key"];
    let lookup: Vec<&str> = lookup.into_iter().chain(key).collect();
    assert!(
        Command::new("bpftool")
            .args(&lookup)
            .output()
            .expect("bpftool")
            .status
            .success(),
        "the stray entry is there before `up`"
    );
    // And a range's block, 0.0.0.0:7000-7001/tcp -> 172.18.0.10:7000 (prefix length 48 + 15).
    let ranges = pins(&lab.name).join(netlab_common::nat::maps::PUBLISH_RANGES);
    let ranges = ranges.to_str().expect("UTF-8 path");
    let block = [
        "63", "0", "0", "0", "0", "0", "0", "0", "6", "0", "0x1b", "0x58",
    ];
    let range = [
        "172", "18", "0", "10", "0x58", "0x1b", "0x58", "0x1b", "0", "0", "0", "0", "0", "0", "0",
        "0", "0", "0", "0", "0", "0", "0", "0", "0",
    ];
    let update: Vec<&str> = ["map", "update", "pinned", ranges, "key"]
        .into_iter()
        .chain(block)
        .chain(["value"])
        .chain(range)
        .collect();
    cmd_ok("bpftool", &update);
    lab.netlab_ok(&["up"]);
    assert!(
        !Command::new("bpftool")
            .args(&lookup)
            .output()
            .expect("bpftool")
            .status
            .success(),
        "`up` left a port that forwards but is not published"
    );
    let blocks = bpftool_json(&["map", "dump", "pinned", ranges, "-j"]);
    assert_eq!(
        blocks.as_array().map(Vec::len),
        Some(0),
        "`up` left a range block that forwards but is not published: {blocks}"
    );
    assert!(
        lab.netlab_ok(&["status"]).contains("5000:5000/tcp"),
        "declared ports stay"
    );
}

/// Unpublishing ports whose entries are partly gone already (a crash in the middle of a
/// batched delete) removes the rest: the batch skips the missing entries, it does not stop
/// at them, and so does the removal of a range's blocks.
#[test]
fn unpublishing_ports_partly_gone_removes_the_rest() {
    let lab = Lab::up(&["--backend", "ebpf"]);
    lab.netlab_ok(&[
        "publish",
        "netns1",
        "9000-9009:9000-9009",
        "9100:9100",
        "9101:9101",
        "9102:9102",
    ]);
    let pins = pins(&lab.name);
    let map = |name: &str| pins.join(name).to_str().expect("UTF-8 path").to_owned();
    let (ports, ranges) = (
        map(netlab_common::nat::maps::PUBLISH),
        map(netlab_common::nat::maps::PUBLISH_RANGES),
    );
    // 0.0.0.0:9101/tcp, and the block 9000-9007/tcp (prefix length 48 + 13), deleted behind
    // netlab's back.
    cmd_ok(
        "bpftool",
        &[
            "map", "delete", "pinned", &ports, "key", "0", "0", "0", "0", "0x23", "0x8d", "6", "0",
        ],
    );
    cmd_ok(
        "bpftool",
        &[
            "map", "delete", "pinned", &ranges, "key", "61", "0", "0", "0", "0", "0", "0", "0",
            "6", "0", "0x23", "0x28",
        ],
    );
    lab.netlab_ok(&[
        "unpublish",
        "netns1",
        "9000-9009:9000-9009",
        "9100:9100",
        "9101:9101",
        "9102:9102",
    ]);
    let entries = bpftool_json(&["map", "dump", "pinned", &ports, "-j"]);
    assert_eq!(
        entries.as_array().map(Vec::len),
        Some(1),
        "only 5000:5000 is left: {entries}"
    );
    let blocks = bpftool_json(&["map", "dump", "pinned", &ranges, "-j"]);
    assert_eq!(
        blocks.as_array().map(Vec::len),
        Some(0),
        "no block of the range is left: {blocks}"
    );
}

/// Every port of both protocols is 32 entries of the ranges map (16 aligned blocks each), not
/// 131,070 of the per-port map: the first, a middle and the last port reach their listeners
/// over TCP, UDP datagrams come back whole, the range counts its traffic, and unpublishing
/// leaves neither map an entry.
#[test]
fn every_port_is_a_few_blocks_and_every_port_forwards() {
    let lab = Lab::up(&["--backend", "ebpf", "--ipv4-only"]);
    lab.netlab_ok(&["unpublish", "netns0", "5000:5000"]);
    let every_port = ["1-65535:1-65535/tcp", "1-65535:1-65535/udp"];
    lab.netlab_ok(&["publish", "netns1", every_port[0], every_port[1]]);
    let inspect = lab.netlab_ok(&["inspect", "host"]);
    for expected in [
        "map NETLAB_NAT_PUBLISH: 0 entries",
        "map NETLAB_NAT_PUBLISH_RANGES: 32 entries",
        "publish *:32768-65535/tcp -> 172.18.0.20:32768-65535 (range from 1)",
    ] {
        assert!(inspect.contains(expected), "no {expected:?} in:\n{inspect}");
    }
    let _web = Server::start(&lab, "netns1", Mode::Http, &[1, 33333, 65535]);
    for port in [1, 33333, 65535] {
        assert_http(&lab, "wan", HOST_EXT, port, port, WAN);
    }
    let _echo = Server::start(&lab, "netns1", Mode::Udp, &[53, 65535]);
    for port in ["53", "65535"] {
        assert_eq!(
            client(&lab, "wan", &["udp", HOST_EXT, port, "20"]).trim(),
            "matched=20/20",
            "UDP port {port}"
        );
    }
    let rows: Value = serde_json::from_str(&lab.netlab_ok(&["ports", "--json"])).expect("JSON");
    for spec in every_port {
        let row = rows
            .as_array()
            .and_then(|rows| rows.iter().find(|row| row["spec"] == spec))
            .unwrap_or_else(|| panic!("no row for {spec}: {rows}"));
        assert!(
            row["packets"].as_u64().is_some_and(|packets| packets >= 20),
            "{spec} counted its traffic: {row}"
        );
    }
    lab.netlab_ok(&["unpublish", "netns1", every_port[0], every_port[1]]);
    let inspect = lab.netlab_ok(&["inspect", "host"]);
    assert!(
        inspect.contains("map NETLAB_NAT_PUBLISH_RANGES: 0 entries"),
        "{inspect}"
    );
    assert_refused(
        &lab,
        "wan",
        HOST_EXT,
        33333,
        "no port is published any more",
    );
}

/// Containers may all call their device eth0: with `--fast-path xdp-redirect`, each gets an
/// XDP pass-through program pinned under its own name, and `up` again attaches nothing twice.
#[test]
fn xdp_redirect_pins_are_named_per_container() {
    let file = std::env::temp_dir().join(format!("{}.toml", unique("eth0")));
    std::fs::write(
        &file,
        "[[container]]\nname = \"a\"\naddress = \"172.18.0.30\"\ndevice = \"eth0\"\n\
         [[container]]\nname = \"b\"\naddress = \"172.18.0.40\"\ndevice = \"eth0\"\n",
    )
    .expect("writing the lab file");
    let path = file.to_str().expect("UTF-8 path");
    let args = [
        "-f",
        path,
        "--backend",
        "ebpf",
        "--ingress",
        "xdp",
        "--fast-path",
        "xdp-redirect",
    ];
    let lab = Lab::up(&args);
    let mut up_again = vec!["up"];
    up_again.extend_from_slice(&args);
    lab.netlab_ok(&up_again);
    let _ = std::fs::remove_file(&file);
    let links = std::fs::read_dir(pins(&lab.name).join("links")).expect("links folder");
    let mut names: Vec<String> = links
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(netlab_common::nat::programs::XDP_PASS))
        .collect();
    names.sort();
    assert_eq!(names, ["netlab_xdp_pass@a:eth0", "netlab_xdp_pass@b:eth0"]);
}

/// What a lab had when `up` was killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Its host node's namespace (the first thing `up` makes, after the state file).
    Namespace,
    /// Its pin folder (made when the NAT is set up, after the topology).
    Pins,
    /// A first pinned link (a program attached; others still to come).
    Link,
}

impl Stage {
    fn reached(self, name: &str) -> bool {
        match self {
            Self::Namespace => Path::new(&format!("/run/netns/{name}-host")).exists(),
            Self::Pins => pins(name).exists(),
            Self::Link => std::fs::read_dir(pins(name).join("links"))
                .is_ok_and(|mut links| links.next().is_some()),
        }
    }
}

/// Everything of lab `name` that exists: its namespaces, its pins, its state and lock files.
fn remains(name: &str) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|ns| ns.starts_with(&format!("{name}-")))
                .map(|ns| format!("/run/netns/{ns}"))
                .collect()
        })
        .unwrap_or_default();
    let files = [
        pins(name),
        PathBuf::from(format!("/run/netlab/{name}.json")),
        PathBuf::from(format!("/run/netlab/{name}.lock")),
    ];
    found.extend(
        files
            .iter()
            .filter(|path| path.exists())
            .map(|path| path.display().to_string()),
    );
    found
}

/// `kill -9` of `netlab up --backend ebpf` while it runs, caught at each stage: the kill
/// lands mid-`up` (the process is killed by the signal, not exited, and the stage's object
/// exists), and `down` afterwards leaves no namespace, pin, state file or lock of the lab.
#[test]
fn kill_9_during_up_then_down_leaves_nothing() {
    // Twelve containers, so that each stage lasts long enough to be seen.
    let mut text = String::new();
    for i in 0..12 {
        let _ = write!(
            text,
            "[[container]]\nname = \"c{i}\"\naddress = \"172.18.1.{}\"\n",
            i + 10
        );
    }
    let file = std::env::temp_dir().join(format!("{}.toml", unique("k9")));
    std::fs::write(&file, text).expect("writing the lab file");
    let path = file.to_str().expect("UTF-8 path").to_string();
    for stage in [Stage::Namespace, Stage::Pins, Stage::Link] {
        let name = unique("ku");
        let lab = Lab { name: name.clone() };
        let mut up = Command::new(netlab_bin())
            .args(["--lab", &name, "up", "-f", &path, "--backend", "ebpf"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("netlab up");
        let deadline = Instant::now() + Duration::from_mins(1);
        while !stage.reached(&name) {
            if let Some(status) = up.try_wait().expect("polling `up`") {
                let _ = std::fs::remove_file(&file);
                panic!("`up` ended ({status}) before {stage:?} was seen");
            }
            assert!(Instant::now() < deadline, "{stage:?} never came");
            std::thread::sleep(Duration::from_micros(200));
        }
        up.kill().expect("kill -9");
        let status = up.wait().expect("waiting for `up`");
        let at_kill = remains(&name);
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{stage:?}: `up` had finished ({status}) when it was killed: the kill did not land mid-`up`"
        );
        assert!(
            !at_kill.is_empty(),
            "{stage:?}: nothing of the lab existed at the kill"
        );
        lab.netlab_ok(&["down"]);
        assert_eq!(
            remains(&name),
            Vec::<String>::new(),
            "{stage:?}: left after `down` (at the kill: {at_kill:?})"
        );
        drop(lab);
    }
    let _ = std::fs::remove_file(&file);
}

/// Runs `f` on a thread inside namespace `ns` (setns affects the calling thread only).
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let file = std::fs::File::open(format!("/run/netns/{ns}"))
        .unwrap_or_else(|err| panic!("opening namespace {ns}: {err}"));
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: setns(2) on a namespace file we hold open, for this thread only.
                let rc = unsafe {
                    libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET)
                };
                assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("the namespace thread")
    })
}

/// `bpftool ... -j` as JSON.
fn bpftool_json(args: &[&str]) -> Value {
    let text = cmd_ok("bpftool", args);
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("bpftool {args:?}: {err}: {text}"))
}

/// What an eBPF lab has attached and pinned, as the kernel reports it.
#[derive(Debug)]
struct Datapath {
    /// `bpftool net show -j` in the host node and in each container (XDP and tc filters; this bpftool
    /// predates tcx, which `tcx` covers).
    net_show: BTreeMap<String, Value>,
    /// The programs attached with tcx to each device of the host node and direction: (id,
    /// name, the ids of the maps it uses), in the kernel's order.
    tcx: BTreeMap<String, Vec<(u32, String, Vec<u32>)>>,
    /// Each pinned link: its link id and program id.
    links: BTreeMap<String, (u64, u64)>,
    /// Each pinned map: its map id.
    maps: BTreeMap<String, u64>,
}

fn datapath(lab: &Lab, devices: &[&str], containers: &[&str]) -> Datapath {
    let mut net_show = BTreeMap::new();
    for node in std::iter::once(&"host").chain(containers) {
        let ns = lab.ns(node);
        let text = sh_in_ok(&ns, "bpftool net show -j");
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("bpftool net show in {ns}: {err}: {text}"));
        net_show.insert((*node).to_string(), json);
    }
    let tcx = in_netns(&lab.ns("host"), || {
        let mut tcx = BTreeMap::new();
        for device in devices {
            for (direction, attach_type) in [
                ("ingress", TcAttachType::Ingress),
                ("egress", TcAttachType::Egress),
            ] {
                let (_, programs) = SchedClassifier::query_tcx(device, attach_type)
                    .unwrap_or_else(|err| panic!("querying tcx {direction} of {device}: {err}"));
                tcx.insert(
                    format!("{device} {direction}"),
                    programs
                        .iter()
                        .map(|p| {
                            let maps = p
                                .map_ids()
                                .unwrap_or_else(|err| {
                                    panic!("map ids of program {}: {err}", p.id())
                                })
                                .unwrap_or_default();
                            (
                                p.id(),
                                p.name_as_str().unwrap_or_default().to_string(),
                                maps,
                            )
                        })
                        .collect(),
                );
            }
        }
        tcx
    });
    let dir = pins(&lab.name);
    let mut links = BTreeMap::new();
    for entry in std::fs::read_dir(dir.join("links")).expect("links folder") {
        let path = entry.expect("a link pin").path();
        let json = bpftool_json(&[
            "link",
            "show",
            "pinned",
            path.to_str().expect("UTF-8"),
            "-j",
        ]);
        let id = |key: &str| {
            json[key]
                .as_u64()
                .unwrap_or_else(|| panic!("no {key} for {}: {json}", path.display()))
        };
        links.insert(
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
            (id("id"), id("prog_id")),
        );
    }
    let mut maps = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("pin folder") {
        let path = entry.expect("a pin").path();
        if path.is_dir() {
            continue;
        }
        let json = bpftool_json(&["map", "show", "pinned", path.to_str().expect("UTF-8"), "-j"]);
        maps.insert(
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
            json["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("no id for {}: {json}", path.display())),
        );
    }
    Datapath {
        net_show,
        tcx,
        links,
        maps,
    }
}

/// `up` again on a running eBPF lab converges: on tc and XDP ingress (and XDP redirect,
/// with its pass-through programs in the containers), the second `up` leaves the attached
/// programs (XDP, tcx and the containers' tc block, as the kernel lists them), the pinned links (same link ids) and
/// the maps (same map ids, the conntrack table among them) exactly as they were.
#[test]
fn up_again_attaches_nothing_twice_and_keeps_the_maps() {
    for options in [
        &["--ingress", "tc", "--fast-path", "on"][..],
        &["--ingress", "xdp", "--fast-path", "on"],
        &["--ingress", "xdp", "--fast-path", "xdp-redirect"],
    ] {
        let mut args = vec!["--backend", "ebpf"];
        args.extend_from_slice(options);
        let lab = Lab::up(&args);
        let devices = ["eth0", "veth0", "veth1"];
        let containers = ["netns0", "netns1"];
        let before = datapath(&lab, &devices, &containers);
        // Not vacuous: what is compared is there, and the attached programs use the pinned
        // conntrack table.
        let ct = before
            .maps
            .get(netlab_common::nat::maps::CONNTRACK)
            .copied()
            .unwrap_or_else(|| panic!("{options:?}: no conntrack map pinned: {before:?}"));
        for (device, direction) in [("eth0", "ingress"), ("eth0", "egress")] {
            let attached = &before.tcx[&format!("{device} {direction}")];
            assert_eq!(
                attached.len(),
                1,
                "{options:?}: one program on tcx {direction} of {device}: {attached:?}"
            );
            assert!(
                attached[0].2.iter().any(|id| u64::from(*id) == ct),
                "{options:?}: the program on tcx {direction} of {device} does not use the pinned conntrack map {ct}: {attached:?}"
            );
        }
        // The containers' program runs on the lab's shared tc block, which both veths bind.
        let tc = before.net_show["host"][0]["tc"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for device in ["veth0", "veth1"] {
            let on_device: Vec<&Value> = tc.iter().filter(|p| p["devname"] == device).collect();
            assert_eq!(
                on_device.len(),
                1,
                "{options:?}: one tc program on {device}: {tc:?}"
            );
            assert_eq!(
                on_device[0]["kind"], "clsact/ingress",
                "{options:?}: {tc:?}"
            );
            assert_eq!(
                on_device[0]["name"], "netlab_nat_ctr_ingress",
                "{options:?}: {tc:?}"
            );
            let id = on_device[0]["id"].as_u64().expect("program id").to_string();
            let program = bpftool_json(&["prog", "show", "id", &id, "-j"]);
            assert!(
                program["map_ids"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|m| m.as_u64() == Some(ct))),
                "{options:?}: the program on {device} does not use the pinned conntrack map {ct}: {program}"
            );
        }
        let xdp_on_eth0 = before.net_show["host"][0]["xdp"]
            .as_array()
            .is_some_and(|xdp| xdp.iter().any(|p| p["devname"] == "eth0"));
        assert_eq!(
            xdp_on_eth0,
            options.contains(&"xdp"),
            "{options:?}: XDP on eth0: {:?}",
            before.net_show
        );
        let mut up_again = vec!["up"];
        up_again.extend_from_slice(&args);
        lab.netlab_ok(&up_again);
        let after = datapath(&lab, &devices, &containers);
        assert_eq!(
            before.tcx, after.tcx,
            "{options:?}: a second `up` changed the tcx programs"
        );
        assert_eq!(
            before.net_show, after.net_show,
            "{options:?}: a second `up` changed `bpftool net show`"
        );
        assert_eq!(
            before.links, after.links,
            "{options:?}: a second `up` changed the pinned links (name: (link id, program id))"
        );
        assert_eq!(
            before.maps, after.maps,
            "{options:?}: a second `up` replaced pinned maps (name: map id)"
        );
    }
}
