//! The leak check itself must be able to fail: on a leftover, and on a place it cannot look
//! at (a tool that fails or is missing counts as a failure, never as "nothing found").

use std::{os::unix::fs::PermissionsExt as _, path::PathBuf, process::Command};

use netlab_e2e::{Netns, unique};

fn leak_check(prefix: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_leak-check"))
        .arg(prefix)
        .output()
        .expect("running leak-check")
}

#[test]
fn leak_check_fails_on_a_leftover_namespace() {
    let ns = Netns::new("leak");
    let out = leak_check(&ns.name);
    assert!(
        !out.status.success(),
        "a leftover namespace must fail the leak check"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&ns.name));
    let name = ns.name.clone();
    drop(ns);
    let out = leak_check(&name);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A folder of stand-in programs put first on the leak check's `PATH`, removed on drop.
struct FakeTools(PathBuf);

impl FakeTools {
    /// `tools`: (program name, shell script body).
    fn new(tools: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(unique("tools"));
        std::fs::create_dir(&dir).expect("creating the fake tools folder");
        for (name, body) in tools {
            let path = dir.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("writing a fake tool");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        Self(dir)
    }

    /// The leak check, for a prefix nothing has, with these tools first on its `PATH`.
    fn leak_check(&self) -> (bool, String) {
        let path = std::env::var("PATH").unwrap_or_default();
        let out = Command::new(env!("CARGO_BIN_EXE_leak-check"))
            .arg(unique("none"))
            .env("PATH", format!("{}:{path}", self.0.display()))
            .output()
            .expect("running leak-check");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

impl Drop for FakeTools {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn leak_check_passes_with_the_real_tools() {
    let (ok, out) = FakeTools::new(&[]).leak_check();
    assert!(ok, "nothing named so exists, every tool works: {out}");
}

#[test]
fn a_failing_or_missing_tool_fails_the_leak_check() {
    for (tool, body) in [
        (
            "iptables-save",
            "echo 'iptables-save: cannot initialize' >&2; exit 1",
        ),
        ("ip", "exit 255"),
        ("nft", "echo 'nft: not found' >&2; exit 127"),
    ] {
        let (ok, out) = FakeTools::new(&[(tool, body)]).leak_check();
        assert!(!ok, "a failing `{tool}` passed the leak check: {out}");
        assert!(
            out.contains(&format!("could not check: `{tool}")),
            "the failure names {tool}: {out}"
        );
    }
}

#[test]
fn nftables_rules_of_netlab_fail_the_leak_check() {
    let prefix = unique("nft");
    for ruleset in [
        format!("table ip nat {{\\n\\tchain NL-{prefix}-POST {{\\n\\t}}\\n}}"),
        "table inet netlab {\\n}".to_string(),
    ] {
        let tools = FakeTools::new(&[("nft", &format!("printf '{ruleset}\\n'"))]);
        let path = std::env::var("PATH").unwrap_or_default();
        let out = Command::new(env!("CARGO_BIN_EXE_leak-check"))
            .arg(&prefix)
            .env("PATH", format!("{}:{path}", tools.0.display()))
            .output()
            .expect("running leak-check");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{ruleset:?} passed: {stdout}");
        assert!(
            stdout.contains("nftables in the root namespace"),
            "{stdout}"
        );
    }
}
