//! What netlab must never touch: another owner's rules, and a non-root user's expectations.
//!
//! - Foreign iptables, ip6tables and nftables rules (filter and nat, chains of their own) in
//!   the lab's host node survive `up` converging, `publish` and `unpublish` untouched, on
//!   every backend and on a dual-stack lab (and the nftables backend's teardown, which
//!   deletes its own table only);
//!   the root namespace's rules are the same before `up` and after `down` (read, never
//!   written: the machine's own firewall is not the tests' to change).
//! - A non-root user gets one line naming the command and the need for root, exit 1, and no
//!   lab; drawing and explaining need no root.
//!
//! - One lab's commands never change another lab's maps.
//!
//! Lab names and node names that would escape their folders, and labs' cgroup hooks acting
//! only in their own lab, are tested in `bad_input.rs` and `claims.rs`.

use std::process::Command;

use netlab_e2e::{
    Lab,
    harness::{HOST_EXT, Mode, Server, curl, rules_without_counters},
    netlab_bin, unique,
};

/// The rules of the root namespace that are not a netlab lab's (other tests' labs come and
/// go meanwhile), packet counters left out.
fn root_rules() -> Vec<String> {
    let out = Command::new("sh")
        .args(["-c", "iptables-save && ip6tables-save && nft list ruleset"])
        .output()
        .expect("reading the root namespace's rules");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rules_without_counters(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .filter(|line| !line.contains("NL-"))
        .collect()
}

/// The foreign rules of the host node: those that do not name the lab's `NL-` chains.
fn foreign_rules(lab: &Lab) -> Vec<String> {
    let chains = format!("NL-{}-", lab.name);
    rules_without_counters(&lab.sh_ok(
        "host",
        "iptables-save && ip6tables-save && nft list ruleset",
    ))
    .into_iter()
    .filter(|line| !line.contains(&chains))
    .filter(|line| {
        // Built-in chain headers and table/commit lines are everyone's.
        ["FOREIGN", "foreign", "203.0.113", "2001:db8"]
            .iter()
            .any(|mark| line.contains(mark))
    })
    .collect()
}

/// Another owner's rules: iptables and ip6tables chains in filter and nat with jumps from
/// the built-in chains, and an nftables table of its own.
const FOREIGN: &str = "\
ip6tables -N FOREIGN-FWD && ip6tables -A FOREIGN-FWD -s 2001:db8::/32 -j DROP && \
ip6tables -I FORWARD -j FOREIGN-FWD && \
ip6tables -t nat -N FOREIGN-NAT && \
ip6tables -t nat -A FOREIGN-NAT -d 2001:db8::7 -p tcp --dport 9 -j DNAT --to-destination [2001:db8::8]:9 && \
ip6tables -t nat -A PREROUTING -j FOREIGN-NAT && \
iptables -N FOREIGN-FWD && iptables -A FOREIGN-FWD -s 203.0.113.0/24 -j DROP && \
iptables -I FORWARD -j FOREIGN-FWD && \
iptables -t nat -N FOREIGN-NAT && \
iptables -t nat -A FOREIGN-NAT -d 203.0.113.7 -p tcp --dport 9 -j DNAT --to-destination 203.0.113.8:9 && \
iptables -t nat -A PREROUTING -j FOREIGN-NAT && \
iptables -t nat -A POSTROUTING -s 203.0.113.0/24 -j MASQUERADE && \
nft add table inet foreign && \
nft add chain inet foreign input '{ type filter hook input priority 10; policy accept; }' && \
nft add rule inet foreign input ip saddr 203.0.113.0/24 counter drop";

fn foreign_rules_are_untouched(backend: &[&str]) {
    let root_before = root_rules();
    let lab = Lab::up(backend);
    lab.sh_ok("host", FOREIGN);
    let before = foreign_rules(&lab);
    assert!(
        before.len() >= 14,
        "the foreign rules are in place: {before:#?}"
    );
    lab.netlab_ok(&["publish", "netns1", "8080:80", "5353:53/udp"]);
    assert_eq!(foreign_rules(&lab), before, "{backend:?}: publish");
    lab.netlab_ok(&["unpublish", "netns1", "8080:80", "5353:53/udp"]);
    assert_eq!(foreign_rules(&lab), before, "{backend:?}: unpublish");
    let mut up = vec!["up"];
    up.extend_from_slice(backend);
    lab.netlab_ok(&up);
    assert_eq!(foreign_rules(&lab), before, "{backend:?}: up converging");
    // The lab's own rules went where they belong, beside the foreign ones.
    match backend[1] {
        "iptables" => {
            let ours = lab.sh_ok("host", "iptables-save");
            assert!(ours.contains(&format!("-j NL-{}-DNAT", lab.name)), "{ours}");
            let ours6 = lab.sh_ok("host", "ip6tables-save");
            assert_eq!(
                ours6.contains(&format!("-j NL-{}-DNAT", lab.name)),
                !backend.contains(&"--ipv4-only"),
                "ip6tables rules in a dual-stack lab only: {ours6}"
            );
        }
        "nftables" => {
            // Teardown deletes the lab's table and nothing else: `down` stopped just
            // before it deletes the host node leaves the foreign rules to be seen.
            let ipv4_table = format!("table ip netlab_{}", lab.name);
            let ipv6_table = format!("table ip6 netlab_{}", lab.name);
            let listed = lab.sh_ok("host", "nft list tables");
            assert!(listed.contains(&ipv4_table), "{listed}");
            assert_eq!(
                listed.contains(&ipv6_table),
                !backend.contains(&"--ipv4-only"),
                "an ip6 table in a dual-stack lab only: {listed}"
            );
            let out = Command::new(netlab_bin())
                .args(["--lab", &lab.name, "down"])
                .env("NETLAB_CRASH_AT", "ip netns del <lab>-host")
                .output()
                .expect("running netlab down");
            assert!(!out.status.success(), "down was to stop at the host node");
            assert_eq!(foreign_rules(&lab), before, "{backend:?}: teardown");
            let tables = lab.sh_ok("host", "nft list tables");
            assert!(
                !tables.contains(&ipv4_table) && !tables.contains(&ipv6_table),
                "{backend:?}: {ipv4_table} left:\n{tables}"
            );
            assert!(tables.contains("table inet foreign"), "{tables}");
        }
        _ => {}
    }
    drop(lab);
    assert_eq!(
        root_rules(),
        root_before,
        "{backend:?}: the root namespace's rules"
    );
}

#[test]
fn foreign_rules_are_untouched_by_ebpf() {
    foreign_rules_are_untouched(&["--backend", "ebpf"]);
}

#[test]
fn foreign_rules_are_untouched_by_iptables() {
    foreign_rules_are_untouched(&["--backend", "iptables", "--ipv4-only"]);
}

#[test]
fn foreign_rules_are_untouched_by_iptables_dual_stack() {
    foreign_rules_are_untouched(&["--backend", "iptables"]);
}

#[test]
fn foreign_rules_are_untouched_by_nftables_rules() {
    foreign_rules_are_untouched(&[
        "--backend",
        "nftables",
        "--nft-shape",
        "rules",
        "--ipv4-only",
    ]);
}

#[test]
fn foreign_rules_are_untouched_by_nftables_dual_stack() {
    foreign_rules_are_untouched(&["--backend", "nftables", "--nft-shape", "map"]);
}

#[test]
fn foreign_rules_are_untouched_by_nftables_map() {
    foreign_rules_are_untouched(&["--backend", "nftables", "--nft-shape", "map", "--ipv4-only"]);
}

/// netlab run by `nobody`: a copy of the binary anyone may run. `cp` writes the copy: were
/// this process to hold it open for writing, a child that another test thread forks at that
/// moment would inherit the descriptor, and running the copy would fail with "Text file
/// busy" until that child execs.
fn as_nobody(args: &[&str]) -> std::process::Output {
    let copy = std::env::temp_dir().join(unique("bin"));
    let copied = Command::new("cp")
        .arg(netlab_bin())
        .arg(&copy)
        .status()
        .expect("running cp");
    assert!(copied.success(), "copying netlab");
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&copy)
        .args(args)
        .output()
        .expect("running netlab as nobody");
    let _ = std::fs::remove_file(&copy);
    out
}

#[test]
fn a_non_root_user_gets_one_clear_line() {
    let lab = unique("");
    for command in [
        vec!["up"],
        vec!["down"],
        vec!["status"],
        vec!["publish", "netns0", "8080:80"],
        vec!["exec", "netns0", "--", "true"],
        vec!["counters", "attach", "--netns", "x", "--dev", "y"],
    ] {
        let mut args = vec!["--lab", lab.as_str()];
        args.extend_from_slice(&command);
        let out = as_nobody(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{command:?}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("root is needed for `{}`", command[0])),
            "{command:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(!std::path::Path::new(&format!("/run/netns/{lab}-host")).exists());
    // What reads nothing of the kernel needs no root.
    for command in [vec!["graph"], vec!["up", "--explain"], vec!["man"]] {
        let mut args = vec!["--lab", lab.as_str()];
        args.extend_from_slice(&command);
        let out = as_nobody(&args);
        assert!(
            out.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Two eBPF labs publishing the same host port to different containers: each forwards to its
/// own, and unpublishing in one leaves the other's maps and forwarding alone.
#[test]
fn one_lab_cannot_touch_another_labs_maps() {
    let a = Lab::up(&["--backend", "ebpf"]);
    let b = Lab::up(&["--backend", "ebpf"]);
    let _a_web = Server::start(&a, "netns0", Mode::Http, &[80]);
    let _b_web = Server::start(&b, "netns1", Mode::Http, &[80]);
    a.netlab_ok(&["publish", "netns0", "7777:80"]);
    b.netlab_ok(&["publish", "netns1", "7777:80"]);
    let whoami = |lab: &Lab| curl(lab, "wan", HOST_EXT, 7777, "/whoami");
    assert_eq!(whoami(&a), "self=172.18.0.10\n");
    assert_eq!(whoami(&b), "self=172.18.0.20\n");
    let b_maps = |lab: &Lab| {
        lab.netlab_ok(&["inspect", "host"])
            .lines()
            .filter(|l| l.trim_start().starts_with("publish ") || l.contains("entries"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let before = b_maps(&b);
    a.netlab_ok(&["unpublish", "netns0", "7777:80"]);
    a.netlab_ok(&["down"]);
    assert_eq!(
        b_maps(&b),
        before,
        "lab B's maps changed with lab A's commands"
    );
    assert_eq!(whoami(&b), "self=172.18.0.20\n");
}
