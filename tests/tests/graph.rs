//! `netlab graph` draws what runs: every program the eBPF backend attached appears on the
//! device (or namespace) it is attached to and nowhere else, the iptables backend's chains
//! are the ones jumped to, the nftables backend's the base chains of its table, published ports appear as they are published, a lab file is drawn
//! without deploying anything, and README.md's picture is the default lab's.
//!
//! All traffic-free; the labs live in their own namespaces.

use std::collections::BTreeSet;

use netlab::{
    graph::{self, Format},
    lab::Lab as LabModel,
    nat::{BackendKind, BackendOptions, NatContext},
};
use netlab_e2e::{backend_tests, harness::default_lab, netlab_err, netlab_ok, unique};

/// The hooks a DOT drawing shows, as the pin names of `inspect host` write them:
/// `program@device` on a host device, `program@node:device` on another node's device,
/// `program` for the namespace-wide hooks of the host. Also returns the published-port labels.
fn drawn(dot: &str) -> (BTreeSet<String>, Vec<String>) {
    let mut hooks = BTreeSet::new();
    let mut published = Vec::new();
    for line in dot.lines().map(str::trim) {
        if let Some((node, rest)) = line
            .strip_prefix('"')
            .and_then(|l| l.split_once("\" [label=\""))
        {
            let label = rest.trim_end_matches("\"];");
            for field in label.split('|') {
                let mut lines = field.split("\\n");
                let first = lines.next().unwrap_or_default();
                let device = first
                    .strip_prefix('<')
                    .and_then(|f| f.split_once("> "))
                    .map(|(_, rest)| rest.split(' ').next().unwrap_or_default());
                for hook in lines.filter_map(|l| l.split_once(": ").map(|(_, program)| program)) {
                    hooks.insert(match device {
                        None => hook.to_string(),
                        Some(dev) if node == "host" => format!("{hook}@{dev}"),
                        Some(dev) => format!("{hook}@{node}:{dev}"),
                    });
                }
            }
        } else if line.contains("dir=forward") {
            let label = line
                .split("label=\"")
                .nth(1)
                .and_then(|l| l.split('"').next());
            published.extend(label.map(str::to_string));
        }
    }
    (hooks, published)
}

/// The live lab's drawing matches what is attached and published, on every configuration.
fn a_live_lab_is_drawn_as_it_runs(backend: &str) {
    let lab = default_lab(backend);
    lab.netlab_ok(&["publish", "netns1", "8080:80", "5353:53/udp"]);
    let dot = lab.netlab_ok(&["graph"]);
    let (hooks, published) = drawn(&dot);
    assert_eq!(
        published,
        ["-p 5000:5000/tcp", "-p 8080:80/tcp", "-p 5353:53/udp"],
        "{dot}"
    );
    assert!(dot.contains(&format!("netns {}-netns1", lab.name)), "{dot}");
    if backend.contains("ebpf") {
        let attached: BTreeSet<String> = lab
            .netlab_ok(&["inspect", "host"])
            .lines()
            .filter_map(|line| line.trim().strip_prefix("attached: "))
            .map(str::to_string)
            .collect();
        assert!(attached.len() >= 6, "{attached:?}");
        assert_eq!(hooks, attached, "drawn vs attached\n{dot}");
    } else if backend.contains("nftables") {
        // A table per family the lab has, five base chains each.
        let table = format!("netlab_{}", lab.name);
        let tables = lab.sh_ok("host", "nft list tables");
        let families = ["ip", "ip6"]
            .iter()
            .filter(|family| tables.contains(&format!("table {family} {table}\n")))
            .count();
        assert!(families > 0, "{tables}");
        assert_eq!(hooks.len(), 5 * families, "{hooks:?}");
        for hook in &hooks {
            let (family, chain) = ["ip6", "ip"]
                .into_iter()
                .find_map(|family| {
                    let chain = hook.strip_prefix(&format!("{family} {table} "))?;
                    Some((family, chain))
                })
                .unwrap_or_else(|| panic!("{hook} is not a chain of {table}"));
            let listing = lab.sh_ok("host", &format!("nft list table {family} {table}"));
            let declaration = listing
                .split(&format!("chain {chain} {{\n"))
                .nth(1)
                .and_then(|rest| rest.lines().next())
                .unwrap_or_default();
            assert!(
                declaration.contains(" hook "),
                "{chain} is drawn but is no base chain of {table}:\n{listing}"
            );
        }
    } else {
        let saved = lab.sh_ok("host", "iptables-save");
        let chains: BTreeSet<String> = hooks.iter().cloned().collect();
        assert_eq!(chains.len(), 5, "{chains:?}");
        for chain in &chains {
            assert!(
                saved.lines().any(|l| l.starts_with("-A ")
                    && !l.starts_with("-A NL-")
                    && l.ends_with(&format!("-j {chain}"))),
                "{chain} is drawn but nothing jumps to it:\n{saved}"
            );
        }
    }
    // Unpublishing shows too.
    lab.netlab_ok(&["unpublish", "netns1", "8080:80"]);
    let (_, published) = drawn(&lab.netlab_ok(&["graph"]));
    assert_eq!(published, ["-p 5000:5000/tcp", "-p 5353:53/udp"]);
}

backend_tests!(a_live_lab_is_drawn_as_it_runs);

/// A lab file is drawn without creating anything, in each format.
#[test]
fn a_lab_file_is_drawn_without_deploying_it() {
    let dir = std::env::temp_dir().join(unique("graph"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("lab.toml");
    std::fs::write(
        &file,
        "subnet = \"10.77.0.0/24\"\n[[container]]\nname = \"web\"\naddress = \"10.77.0.5\"\n[[publish]]\nnode = \"web\"\nports = [\"8443:443\"]\n",
    )
    .expect("lab file");
    let name = unique("");
    let file_arg = file.to_str().expect("utf-8 path");
    let dot = netlab_ok(&[
        "--lab",
        &name,
        "graph",
        "-f",
        file_arg,
        "--backend",
        "iptables",
    ]);
    assert!(dot.contains("<d0> ceth0 10.77.0.5/24"), "{dot}");
    assert!(
        dot.contains(&format!("nat PREROUTING: NL-{name}-DNAT")),
        "{dot}"
    );
    let mermaid = netlab_ok(&[
        "--lab", &name, "graph", "-f", file_arg, "--format", "mermaid",
    ]);
    assert!(mermaid.contains("flowchart LR"), "{mermaid}");
    assert!(mermaid.contains("-.->|\"-p 8443:443/tcp\"|"), "{mermaid}");
    let svg_file = dir.join("lab.svg");
    netlab_ok(&[
        "--lab",
        &name,
        "graph",
        "-f",
        file_arg,
        "--format",
        "svg",
        "-o",
        svg_file.to_str().expect("utf-8 path"),
    ]);
    let svg = std::fs::read_to_string(&svg_file).expect("the SVG was written");
    assert!(
        svg.contains("<svg") && svg.contains("10.77.0.5/24"),
        "{svg}"
    );
    // Nothing was deployed.
    assert!(
        !std::path::Path::new("/run/netns")
            .join(format!("{name}-host"))
            .exists()
    );
    let err = netlab_err(&["--lab", &name, "status"]);
    assert!(err.contains("not up"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lab file with an error is refused with the lab file's one-line error.
#[test]
fn a_bad_lab_file_is_not_drawn() {
    let dir = std::env::temp_dir().join(unique("graph"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("lab.toml");
    std::fs::write(
        &file,
        "[[container]]\nname = \"a\"\naddress = \"10.9.9.9\"\n",
    )
    .expect("lab file");
    let err = netlab_err(&[
        "--lab",
        &unique(""),
        "graph",
        "-f",
        file.to_str().expect("path"),
    ]);
    assert!(
        err.contains("10.9.9.9") && !err.trim().contains('\n'),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// README.md's picture of the default lab is what `netlab graph --format mermaid` draws for
/// it (lab `netlab`, dual-stack, the eBPF backend's defaults).
#[test]
fn the_readme_shows_the_default_lab() {
    let lab = LabModel::default_dual_stack();
    let ctx = NatContext {
        lab_name: "netlab",
        lab: &lab,
        options: BackendOptions::default(),
    };
    let hooks = BackendKind::Ebpf.backend().expect("backend").hooks(ctx);
    let drawn = graph::render(
        &graph::picture("netlab", &lab, BackendKind::Ebpf, &hooks),
        Format::Mermaid,
    )
    .expect("mermaid");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let block = readme
        .split("```mermaid\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a mermaid block in README.md");
    assert_eq!(
        block, drawn,
        "regenerate it with `netlab graph --format mermaid`"
    );
}
