//! Finds what the suites left behind: namespaces, links in the root namespace, bpffs pins,
//! state files, and iptables, ip6tables and nftables rules in the root namespace whose names
//! carry a given prefix, and IPv6 routes to netlab's default networks there. A place that cannot be looked at (a tool that is missing or fails, a folder
//! that cannot be read) is reported like a leftover: the check never passes by looking at
//! nothing.

use std::{io::ErrorKind, process::Command};

/// Everything named with `prefix` that still exists, and every place that could not be
/// checked, one line each.
pub fn find(prefix: &str) -> Vec<String> {
    let mut leaks = Vec::new();
    for entry in read_dir_names("/run/netns", &mut leaks) {
        if entry.starts_with(prefix) {
            leaks.push(format!("namespace /run/netns/{entry}"));
        }
    }
    for dir in [
        "/run/netlab",
        "/sys/fs/bpf/netlab",
        "/sys/fs/bpf/netlab/counters",
        // netlab-cni's datapaths, `<network>@<netns cookie>`.
        "/sys/fs/bpf/netlab/cni",
    ] {
        for entry in read_dir_names(dir, &mut leaks) {
            if entry.starts_with(prefix) {
                leaks.push(format!("{dir}/{entry}"));
            }
        }
    }
    // aya pins a `pinned` map at the root of bpffs when a load names no folder: netlab's
    // maps must never be there, whatever the prefix.
    for entry in read_dir_names("/sys/fs/bpf", &mut leaks) {
        if entry.starts_with("NETLAB_") {
            leaks.push(format!(
                "/sys/fs/bpf/{entry} (a map pinned outside netlab's folders)"
            ));
        }
    }
    // netlab's shared folders go when the last lab leaves them empty.
    for dir in [
        "/run/netlab",
        "/sys/fs/bpf/netlab/counters",
        "/sys/fs/bpf/netlab/cni",
        "/sys/fs/bpf/netlab",
    ] {
        if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none()) {
            leaks.push(format!("{dir} (empty, left behind)"));
        }
    }
    if let Some(links) = tool_output("ip", &["-o", "link", "show"], &mut leaks) {
        for line in links.lines() {
            let name = line
                .split(':')
                .nth(1)
                .and_then(|n| n.trim().split('@').next());
            if let Some(name) = name.filter(|name| name.starts_with(prefix)) {
                leaks.push(format!("link {name} in the root namespace"));
            }
        }
    }
    let chain = format!("NL-{prefix}");
    for tool in ["iptables-save", "ip6tables-save"] {
        if let Some(rules) = tool_output(tool, &[], &mut leaks) {
            for line in rules.lines() {
                if line.contains(&chain) {
                    leaks.push(format!("{tool} in the root namespace: {line}"));
                }
            }
        }
    }
    // A lab's networks are routed inside its namespaces only: the root namespace never has
    // a route to them (the IPv4 ones are the machine's to use; the IPv6 ones are netlab's
    // defaults, which nothing else here uses).
    if let Some(routes) = tool_output("ip", &["-6", "route", "show", "table", "all"], &mut leaks) {
        for line in routes.lines() {
            if line.starts_with("2001:2:") || line.starts_with("fd00:172:") {
                leaks.push(format!("IPv6 route in the root namespace: {line}"));
            }
        }
    }
    // netlab never writes nftables itself, but iptables-nft rules show up here too (and
    // iptables-legacy ones only in iptables-save): a chain of the prefix's labs, or anything
    // else that names netlab (a table, a set, a comment), is a leftover. The `NL-` chains of
    // labs outside the prefix (a user's lab called `netlab`, say) are not this check's.
    if let Some(ruleset) = tool_output("nft", &["list", "ruleset"], &mut leaks) {
        for line in ruleset.lines() {
            if line.contains(&chain) || names_netlab(line) {
                leaks.push(format!("nftables in the root namespace: {}", line.trim()));
            }
        }
    }
    leaks
}

/// Whether `line` mentions netlab other than in an `NL-<lab>-...` chain name.
fn names_netlab(line: &str) -> bool {
    line.split(|c: char| c.is_whitespace() || c == '"')
        .filter(|word| !word.starts_with("NL-"))
        .any(|word| word.to_ascii_lowercase().contains("netlab"))
}

/// The stdout of `program args`, or `None` with the reason in `leaks` when it cannot be run
/// or fails.
fn tool_output(program: &str, args: &[&str], leaks: &mut Vec<String>) -> Option<String> {
    let what = [program].iter().chain(args).copied().collect::<Vec<_>>();
    let what = what.join(" ");
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => {
            leaks.push(format!(
                "could not check: `{what}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            None
        }
        Err(err) => {
            leaks.push(format!("could not check: `{what}` did not run: {err}"));
            None
        }
    }
}

/// The names in `dir`; none if it does not exist, and the reason in `leaks` if it cannot be
/// read.
fn read_dir_names(dir: &str, leaks: &mut Vec<String>) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut names = Vec::new();
            for entry in entries {
                match entry {
                    Ok(entry) => names.push(entry.file_name().to_string_lossy().into_owned()),
                    Err(err) => leaks.push(format!("could not check: reading {dir}: {err}")),
                }
            }
            names
        }
        Err(err) if err.kind() == ErrorKind::NotFound => Vec::new(),
        Err(err) => {
            leaks.push(format!("could not check: reading {dir}: {err}"));
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::names_netlab;

    #[test]
    fn netlab_is_found_outside_lab_chains_only() {
        assert!(names_netlab("table inet netlab {"));
        assert!(names_netlab("  comment \"NetLab nat\""));
        assert!(!names_netlab("  chain NL-netlab-DNAT {"));
        assert!(!names_netlab("  jump NL-netlab-POST"));
        assert!(!names_netlab("table ip nat {"));
    }
}
