//! Finds what the suites left behind: namespaces, links in the root namespace, bpffs pins,
//! state files and iptables rules in the root namespace whose names carry a given prefix.

use std::process::Command;

/// Everything named with `prefix` that still exists, one line each.
pub fn find(prefix: &str) -> Vec<String> {
    let mut leaks = Vec::new();
    for entry in read_dir_names("/run/netns") {
        if entry.starts_with(prefix) {
            leaks.push(format!("namespace /run/netns/{entry}"));
        }
    }
    for dir in [
        "/run/netlab",
        "/sys/fs/bpf/netlab",
        "/sys/fs/bpf/netlab/counters",
    ] {
        for entry in read_dir_names(dir) {
            if entry.starts_with(prefix) {
                leaks.push(format!("{dir}/{entry}"));
            }
        }
    }
    // aya pins a `pinned` map at the root of bpffs when a load names no folder: netlab's
    // maps must never be there, whatever the prefix.
    for entry in read_dir_names("/sys/fs/bpf") {
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
        "/sys/fs/bpf/netlab",
    ] {
        if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none()) {
            leaks.push(format!("{dir} (empty, left behind)"));
        }
    }
    let links = Command::new("ip").args(["-o", "link", "show"]).output();
    if let Ok(out) = links {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line
                .split(':')
                .nth(1)
                .and_then(|n| n.trim().split('@').next());
            if let Some(name) = name.filter(|name| name.starts_with(prefix)) {
                leaks.push(format!("link {name} in the root namespace"));
            }
        }
    }
    let rules = Command::new("iptables-save").output();
    if let Ok(out) = rules {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if line.contains(&format!("NL-{prefix}")) {
                leaks.push(format!("iptables in the root namespace: {line}"));
            }
        }
    }
    leaks
}

fn read_dir_names(dir: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
