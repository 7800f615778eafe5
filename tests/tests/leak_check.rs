//! The leak check itself must be able to fail.

use std::process::Command;

use netlab_e2e::Netns;

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
