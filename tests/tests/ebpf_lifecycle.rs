//! The eBPF datapath's life outside the CLI: it keeps working after netlab exits and after the
//! foreground loader is killed, `up` picks it up again, `down` removes it, and its pins are
//! readable by root only.

use std::{
    io::{BufRead as _, BufReader, Lines},
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::{Child, ChildStdout, Command, Stdio},
    time::Duration,
};

use netlab_e2e::{Lab, netlab_bin, unique};

/// Starts an HTTP server in netns0 on port 5000 (killed on drop).
struct Web(Child);

impl Web {
    fn start(lab_name: &str) -> Self {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &format!("{lab_name}-netns0"),
                "python3",
                "-m",
                "http.server",
                "5000",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the web server");
        Self(child)
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `wan` gets an answer from the published port 5000 (retrying while the server
/// starts, at most ~5 s).
fn reachable(lab_name: &str) -> bool {
    (0..25).any(|attempt| {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
        reachable_once(lab_name)
    })
}

fn pins(lab_name: &str) -> std::path::PathBuf {
    Path::new("/sys/fs/bpf/netlab").join(lab_name)
}

#[test]
fn the_datapath_outlives_the_cli_and_its_pins_are_root_only() {
    let lab = Lab::up(&["--backend", "ebpf"]);
    let _web = Web::start(&lab.name);
    lab.netlab_ok(&["publish", "netns0", "5001:5000"]);
    // Every netlab process has exited; the kernel keeps translating.
    assert!(reachable(&lab.name));
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
    let conntrack: serde_json::Value =
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
        let _lab = Lab { name: name.clone() };
        let (mut loader, _output) = start_foreground(&name);
        let _web = Web::start(&name);
        assert!(reachable(&name), "works while the loader runs");
        loader.kill().expect("kill -9");
        let _ = loader.wait();
        assert!(
            reachable(&name),
            "works after the loader was killed: the datapath is pinned"
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
            assert!(reachable(&name), "`up` picked up the running datapath");
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
    let _web = Web::start(&lab.name);
    assert!(reachable(&lab.name));
    lab.netlab_ok(&["unpublish", "netns0", "5000:5000"]);
    assert!(!reachable_once(&lab.name), "unpublished");
    lab.netlab_ok(&["up", "--backend", "ebpf"]);
    assert!(
        reachable(&lab.name),
        "the lab's declared port is back after `up`"
    );
}

fn reachable_once(lab_name: &str) -> bool {
    answers(&format!("{lab_name}-wan"))
}

/// Whether a request from namespace `ns` to the published port 198.18.0.1:5000 is answered.
fn answers(ns: &str) -> bool {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "curl",
            "-s",
            "-m",
            "2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://198.18.0.1:5000/",
        ])
        .output()
        .expect("curl");
    out.stdout == b"200"
}

#[test]
fn up_reattaches_to_a_recreated_container() {
    let lab = Lab::up(&["--backend", "ebpf"]);
    // Someone deletes a container's namespace under netlab; `up` re-creates it, and must
    // attach the datapath to the new veth (the old link's pin is still there).
    netlab_e2e::cmd_ok("ip", &["netns", "delete", &lab.ns("netns0")]);
    lab.netlab_ok(&["up"]);
    let _web = Web::start(&lab.name);
    assert!(reachable(&lab.name), "DNAT into the re-created container");
    // Self-hairpin needs the container-side program on the new veth.
    assert!(answers(&lab.ns("netns0")), "self-hairpin after re-creation");
}

/// What forwards is what `status` shows: a publish-map entry that no command recorded (left
/// by a crash between the map update and the state file) is removed by the next `up`.
#[test]
fn up_removes_ports_that_forward_but_are_not_published() {
    let lab = Lab::up(&["--backend", "ebpf"]);
    let map = pins(&lab.name).join(netlab_common::nat::maps::PUBLISH);
    let map = map.to_str().expect("UTF-8 path");
    // 0.0.0.0:6001/tcp -> 172.18.0.10:6001, as a crashed `publish` would leave it.
    let key = ["0", "0", "0", "0", "0x17", "0x71", "6", "0"];
    let value = ["172", "18", "0", "10", "0x17", "0x71", "0", "0"];
    let update: Vec<&str> = ["map", "update", "pinned", map, "key"]
        .into_iter()
        .chain(key)
        .chain(["value"])
        .chain(value)
        .collect();
    netlab_e2e::cmd_ok("bpftool", &update);
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
    assert!(
        lab.netlab_ok(&["status"]).contains("5000:5000/tcp"),
        "declared ports stay"
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
