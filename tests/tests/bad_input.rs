//! Bad input of every kind, against a running lab on each backend: each case gets one line
//! on stderr that names the offending value, exit status 2 for a command line that does not
//! parse and 1 for everything else, and leaves the lab byte for byte as it was (state file,
//! the eBPF maps' contents, the host node's iptables and nftables rules).
//!
//! No traffic: the lab only has to exist.

use std::{fmt::Write as _, io::Write as _, path::Path, process::Command};

use aya::maps::{Map, MapData, PerCpuArray};
use netlab_common::nat::{TrafficCounters, maps as map_names};

use netlab_e2e::{
    Lab,
    harness::{TempFile, rules_without_counters},
    netlab, unique,
};

/// What a case must leave unchanged.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    state_file: Vec<u8>,
    /// `bpftool map dump` of each pinned map that holds state, by name (empty for an
    /// iptables lab). Traffic counters are left out: the kernel's own packets (IPv6 neighbour
    /// discovery on new links) move them; and so are the fast path's caches, which only the
    /// datapath writes. The port counters, 139,265 slots per CPU, are read with aya: dumped
    /// by bpftool, they took a second and a half each time.
    maps: Vec<(String, String)>,
    /// `iptables-save` and `nft list ruleset` in the host node, packet counters left out.
    rules: String,
}

fn snapshot(lab: &Lab) -> Snapshot {
    let state_file =
        std::fs::read(format!("/run/netlab/{}.json", lab.name)).expect("the lab's state file");
    let mut maps = Vec::new();
    let dir = format!("/sys/fs/bpf/netlab/{}", lab.name);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| {
                !["STATS", "DROP_LOG", "NEXT_HOP", "CONTAINER_CACHE"]
                    .iter()
                    .any(|skipped| name.contains(skipped))
            })
            .collect();
        names.sort();
        for name in names {
            if name == map_names::PORT_COUNTERS {
                maps.push((
                    name,
                    port_counters(&format!("{dir}/{}", map_names::PORT_COUNTERS)),
                ));
                continue;
            }
            let out = Command::new("bpftool")
                .args(["map", "dump", "pinned", &format!("{dir}/{name}")])
                .output()
                .expect("running bpftool");
            // A ring buffer cannot be dumped: its refusal is compared like any content.
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            maps.push((name, text));
        }
    }
    let rules = lab.sh_ok("host", "iptables-save; nft list ruleset");
    let rules = rules_without_counters(&rules).join("\n");
    Snapshot {
        state_file,
        maps,
        rules,
    }
}

/// Fails, saying what changed, unless `after` is `before`.
/// The port counters' slots that hold anything, on any CPU.
fn port_counters(pin: &str) -> String {
    let data = MapData::from_pin(pin).expect("opening the port counters");
    let counters: PerCpuArray<MapData, TrafficCounters> =
        PerCpuArray::try_from(Map::PerCpuArray(data)).expect("a per-CPU array");
    let mut out = String::new();
    for slot in 0..counters.len() {
        let values = counters.get(&slot, 0).expect("reading a counter slot");
        if values
            .iter()
            .any(|value| *value != TrafficCounters::default())
        {
            let _ = writeln!(out, "{slot}: {:?}", values.iter().collect::<Vec<_>>());
        }
    }
    out
}

fn assert_unchanged(before: &Snapshot, after: &Snapshot, what: &str) {
    assert!(
        before.state_file == after.state_file,
        "{what} changed the state file:\n{}",
        String::from_utf8_lossy(&after.state_file)
    );
    let changed: Vec<&str> = before
        .maps
        .iter()
        .zip(&after.maps)
        .filter(|(b, a)| b != a)
        .map(|(b, _)| b.0.as_str())
        .collect();
    assert!(
        changed.is_empty() && before.maps.len() == after.maps.len(),
        "{what} changed the maps {changed:?}"
    );
    let gone: Vec<&str> = before
        .rules
        .lines()
        .filter(|l| !after.rules.contains(l))
        .collect();
    let new: Vec<&str> = after
        .rules
        .lines()
        .filter(|l| !before.rules.contains(l))
        .collect();
    assert!(
        before.rules == after.rules,
        "{what} changed the rules: gone {gone:?}, new {new:?}"
    );
}

/// A lab file with `text` (bytes, so it may be anything but UTF-8).
fn lab_file(bytes: &[u8]) -> TempFile {
    let file = TempFile::new("toml", "");
    std::fs::write(file.path(), bytes).expect("writing the lab file");
    file
}

fn toml(text: &str) -> TempFile {
    lab_file(text.as_bytes())
}

/// Bad lab files, each handed to `up` of the running lab, with what the error must name.
fn bad_lab_files() -> Vec<(TempFile, &'static str)> {
    vec![
        (
            toml("subnet = \"172.18.0.0/16\"\ncolour = \"blue\"\n"),
            "colour",
        ),
        (toml("subnet = 5\n"), "integer `5`"),
        (toml("masquerade = \"yes\"\n"), "\"yes\""),
        (toml("subnet = \"172.18.0.0/40\"\n"), "172.18.0.0/40"),
        (toml("subnet = \"172.18.0.0/31\"\n"), "172.18.0.0/31"),
        (
            toml("bridge = \"a-bridge-name-too-long\"\n"),
            "a-bridge-name-too-long",
        ),
        (
            toml(
                "[[container]]\nname = \"a\"\naddress = \"172.18.0.10\"\n[[container]]\nname = \"a\"\naddress = \"172.18.0.11\"\n",
            ),
            "\"a\"",
        ),
        (
            toml(
                "[[container]]\nname = \"a\"\naddress = \"172.18.0.10\"\n[[container]]\nname = \"b\"\naddress = \"172.18.0.10\"\n",
            ),
            "172.18.0.10",
        ),
        (
            toml("[[container]]\nname = \"a\"\naddress = \"10.9.9.9\"\n"),
            "10.9.9.9",
        ),
        (
            toml("[[container]]\nname = \"a\"\naddress = \"172.18.0.1\"\n"),
            "172.18.0.1",
        ),
        (
            toml("[[container]]\nname = \"a/b\"\naddress = \"172.18.0.10\"\n"),
            "a/b",
        ),
        (
            toml("[[container]]\nname = \"..\"\naddress = \"172.18.0.10\"\n"),
            "..",
        ),
        (toml("[[container]]\naddress = \"172.18.0.10\"\n"), "name"),
        (
            toml("[external]\naddress = \"172.18.5.1/24\"\n"),
            "overlaps the container subnet",
        ),
        (
            toml(
                "[[container]]\nname = \"a\"\naddress = \"172.18.0.10\"\n[[publish]]\nnode = \"a\"\nports = [\"8080:80\", \"8080:81\"]\n",
            ),
            "8080",
        ),
        (
            toml(
                "[[container]]\nname = \"a\"\naddress = \"172.18.0.10\"\n[[publish]]\nnode = \"b\"\nports = [\"8080:80\"]\n",
            ),
            "\"b\"",
        ),
        (
            toml(
                "[[container]]\nname = \"a\"\naddress = \"172.18.0.10\"\n[[publish]]\nnode = \"a\"\nports = [\"80800:80\"]\n",
            ),
            "80800",
        ),
        (lab_file(b"subnet = \"172.18.0.0/16\"\n\xff\xfe\n"), "UTF-8"),
        // An empty file is the default network without containers: not what is running.
        (toml(""), "different definition"),
        (lab_file(&vec![b'#'; 10 << 20]), "10485760 bytes"),
        (toml("this is not toml ["), "line 1"),
    ]
}

/// Bad command lines against a running lab on `backend`: (arguments, what stderr must name,
/// exit status).
fn command_cases<'a>(backend: &str, missing: &'a str) -> Vec<(Vec<&'a str>, &'a str, i32)> {
    let mut cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (vec!["publish", "netns0", "0:80"], "0:80", 1),
        (vec!["publish", "netns0", "70000:80"], "70000", 1),
        (vec!["publish", "netns0", "8080:0"], "8080:0", 1),
        (vec!["publish", "netns0", "7000-7001:80"], "7000-7001", 1),
        (vec!["publish", "netns0", "7010-7000:80-70"], "7010-7000", 1),
        (vec!["publish", "netns0", "8080:80/sctp"], "sctp", 1),
        (vec!["publish", "netns0", "8080:80/"], "8080:80/", 1),
        (vec!["publish", "netns0", "http:80"], "http", 1),
        (
            vec!["publish", "netns0", "203.0.113.9:8080:80"],
            "203.0.113.9",
            1,
        ),
        (vec!["publish", "netns0", "1.2.3:8080:80"], "1.2.3", 1),
        (vec!["publish", "nosuch", "8080:80"], "nosuch", 1),
        (vec!["publish", "wan", "8080:80"], "wan", 1),
        (vec!["publish", "netns0", "5000:5000"], "5000", 1),
        (vec!["publish", "netns0", "8200:80", "8200:81"], "8200", 1),
        (vec!["unpublish", "netns0", "9999:80"], "9999:80", 1),
        (vec!["unpublish", "nosuch", "5000:5000"], "nosuch", 1),
        (vec!["publish", "netns0"], "<SPECS>", 2),
        (vec!["exec", "netns0", "ls"], "'ls'", 2),
        (vec!["exec", "nosuch", "--", "true"], "nosuch", 1),
        (vec!["inspect", "nosuch"], "nosuch", 1),
        (vec!["up", "--backend", "pf"], "'pf'", 2),
        (vec!["up", "--ct-entries", "5"], "'5'", 2),
        (vec!["up", "--ct-timeouts", "udp=abc"], "abc", 2),
        (vec!["up", "--ct-timeouts", "bogus=5"], "bogus", 2),
        (
            vec!["up", "--backend", "iptables"],
            "run `netlab down` first",
            1,
        ),
        (vec!["up", "-f", missing], missing, 1),
        (vec!["frobnicate"], "'frobnicate'", 2),
        (vec!["up", "--ingress", "xdp"], "--ingress xdp", 1),
        (vec!["up", "--nft-shape", "rules"], "--nft-shape rules", 1),
        (vec!["up", "--nft-shape", "tree"], "'tree'", 2),
    ];
    if backend == "iptables" {
        // The running lab's backend is iptables; asking for eBPF is the switch refused.
        cases.retain(|(args, ..)| args[..] != ["up", "--backend", "iptables"]);
        cases.push((
            vec!["up", "--backend", "ebpf"],
            "run `netlab down` first",
            1,
        ));
    }
    cases
}

/// Runs every case against `lab`; returns how many ran.
fn check_cases(lab: &Lab, backend: &str) -> usize {
    let files = bad_lab_files();
    let missing = format!("/nonexistent/{}.toml", unique(""));
    let long_lab = "a".repeat(17);
    let mut cases = command_cases(backend, &missing);
    for (file, needle) in &files {
        cases.push((vec!["up", "-f", file.path()], needle, 1));
    }
    let before = snapshot(lab);
    let mut count = 0;
    let mut run = |args: Vec<&str>, needle: &str, code: i32, with_lab: bool| {
        let out = if with_lab {
            lab.netlab(&args)
        } else {
            netlab(&args)
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "netlab {args:?}: exit status; stderr {stderr:?}"
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "netlab {args:?}: one line on stderr: {stderr:?}"
        );
        assert!(
            stderr.contains(needle),
            "netlab {args:?}: stderr should name {needle:?}: {stderr}"
        );
        assert!(
            stderr.len() < 400,
            "netlab {args:?}: a line, not a page: {stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "netlab {args:?} printed {:?}",
            out.stdout
        );
        assert_unchanged(&before, &snapshot(lab), &format!("netlab {args:?}"));
        count += 1;
    };
    for (args, needle, code) in cases {
        run(args, needle, code, true);
    }
    // Lab names that must never become paths or device names.
    for bad in ["../x", "a/b", long_lab.as_str(), "ü", "", "a-b", "counters"] {
        run(vec!["--lab", bad, "status"], "invalid lab name", 1, false);
        run(vec!["--lab", bad, "up"], "invalid lab name", 1, false);
    }
    assert!(!Path::new("/run/netlab/x.json").exists());
    assert_unchanged(&before, &snapshot(lab), "the lab-name cases");
    count
}

fn bad_input_leaves_the_lab_as_it_was(backend: &str) {
    let lab = Lab::up(&["--backend", backend]);
    let count = check_cases(&lab, backend);
    assert!(count >= 60, "{count} cases");
    let _ = writeln!(
        std::io::stderr(),
        "bad input: {backend}: {count} cases held"
    );
}

#[test]
fn ebpf() {
    bad_input_leaves_the_lab_as_it_was("ebpf");
}

#[test]
fn iptables() {
    bad_input_leaves_the_lab_as_it_was("iptables");
}

#[test]
fn nftables() {
    bad_input_leaves_the_lab_as_it_was("nftables");
}
