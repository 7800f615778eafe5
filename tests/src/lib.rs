//! The harness for netlab's end-to-end suites. Every test builds its own namespaces and labs
//! with unique names under [`PREFIX`], held by RAII guards that tear them down even when the
//! test fails or panics; `leak-check` then proves nothing was left behind.

pub mod cni;
pub mod fixtures;
pub mod frames;
pub mod frames6;
pub mod harness;
pub mod leaks;
pub mod podman;
pub mod prog_test;

use std::{
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

/// Every name the suites create starts with this, so the leak check can find leftovers and
/// never mistakes anything else on the machine for one.
pub const PREFIX: &str = "nlt";

/// A name unique to this test run and call: `nlt` + pid + a counter, short enough for a lab
/// name (namespace names become `<lab>-<node>`).
pub fn unique(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{tag}{:x}{n}", std::process::id() % 0xfffff)
}

/// The netlab binary under test (`NETLAB_BIN`, set by `cargo xtask test`).
pub fn netlab_bin() -> String {
    std::env::var("NETLAB_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/netlab").to_string()
    })
}

/// Runs netlab with `args`; returns its output whatever the exit status.
pub fn netlab(args: &[&str]) -> Output {
    Command::new(netlab_bin())
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("running {} {args:?}: {err}", netlab_bin()))
}

/// Runs netlab and panics with its stderr unless it succeeds; returns stdout.
pub fn netlab_ok(args: &[&str]) -> String {
    let out = netlab(args);
    assert!(
        out.status.success(),
        "netlab {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs netlab expecting failure; returns stderr.
pub fn netlab_err(args: &[&str]) -> String {
    let out = netlab(args);
    assert!(
        !out.status.success(),
        "netlab {args:?} unexpectedly succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a shell command inside namespace `ns` (the harness may use iproute2; netlab may not).
pub fn sh_in(ns: &str, script: &str) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", script])
        .output()
        .unwrap_or_else(|err| panic!("ip netns exec {ns}: {err}"))
}

/// Like [`sh_in`], panicking with the output unless the command succeeds; returns stdout.
pub fn sh_in_ok(ns: &str, script: &str) -> String {
    let out = sh_in(ns, script);
    assert!(
        out.status.success(),
        "in {ns}: `{script}` failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a host command (only for fixtures that touch nothing but the test's namespaces).
pub fn cmd_ok(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("{program} {args:?}: {err}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A namespace made by the harness itself, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Self {
        let name = unique(tag);
        cmd_ok("ip", &["netns", "add", &name]);
        sh_in_ok(&name, "ip link set lo up");
        Self { name }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .output();
    }
}

/// A lab brought up by netlab, brought down on drop (even when the test panics).
#[derive(Debug)]
pub struct Lab {
    pub name: String,
}

impl Lab {
    /// `netlab --lab <unique> up <args>`; panics (after cleaning up) if it fails.
    pub fn up(args: &[&str]) -> Self {
        let lab = Self { name: unique("") };
        let mut full = vec!["--lab", lab.name.as_str(), "up"];
        full.extend_from_slice(args);
        netlab_ok(&full);
        lab
    }

    /// Namespace of one of the lab's nodes.
    pub fn ns(&self, node: &str) -> String {
        format!("{}-{node}", self.name)
    }

    /// `netlab --lab <name> <args>`.
    pub fn netlab(&self, args: &[&str]) -> Output {
        let mut full = vec!["--lab", self.name.as_str()];
        full.extend_from_slice(args);
        netlab(&full)
    }

    pub fn netlab_ok(&self, args: &[&str]) -> String {
        let mut full = vec!["--lab", self.name.as_str()];
        full.extend_from_slice(args);
        netlab_ok(&full)
    }

    pub fn netlab_err(&self, args: &[&str]) -> String {
        let mut full = vec!["--lab", self.name.as_str()];
        full.extend_from_slice(args);
        netlab_err(&full)
    }

    pub fn sh(&self, node: &str, script: &str) -> Output {
        sh_in(&self.ns(node), script)
    }

    pub fn sh_ok(&self, node: &str, script: &str) -> String {
        sh_in_ok(&self.ns(node), script)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = netlab(&["--lab", &self.name, "down"]);
        assert!(
            out.status.success() || std::thread::panicking(),
            "netlab down failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// One `#[test]` per case in a module per backend configuration: `backend_tests!(a, b, c);`
/// in a test file whose cases are `fn a(backend: &str)` ... turns them into `iptables::a`,
/// `ebpf_tc::a`, ..., each calling its case with the configuration's `netlab up` arguments
/// (plus [`harness::TX_CSUM_OFF`], a marker [`harness::lab_with`] acts on). The 11
/// configurations are listed here once, for every suite that runs on all of them;
/// `backend_tests!(ipv6: a, b, c)` runs the cases in IPv6, on dual-stack labs of 5 of the
/// configurations: each backend, both nftables shapes, and eBPF with checksum offload off
/// (XDP leaves IPv6 to the tc programs, and `datapath6.rs` checks the IPv6 rewrites of the
/// slow path on crafted frames).
#[macro_export]
macro_rules! backend_tests {
    ($($case:ident),+ $(,)?) => {
        $crate::backend_tests!(@configs [$($case),+]
            iptables: "--backend iptables";
            nft_rules: "--backend nftables --nft-shape rules";
            nft_map: "--backend nftables --nft-shape map";
            ebpf_tc: "--backend ebpf --ingress tc --fast-path on";
            ebpf_tc_no_fast_path: "--backend ebpf --ingress tc --fast-path off";
            ebpf_xdp: "--backend ebpf --ingress xdp --fast-path on";
            ebpf_xdp_no_fast_path: "--backend ebpf --ingress xdp --fast-path off";
            iptables_tx_csum_off: "--backend iptables +tx-csum-off";
            ebpf_tc_tx_csum_off: "--backend ebpf --ingress tc --fast-path on +tx-csum-off";
            ebpf_xdp_tx_csum_off: "--backend ebpf --ingress xdp --fast-path on +tx-csum-off";
            ebpf_xdp_redirect: "--backend ebpf --ingress xdp --fast-path xdp-redirect";
        );
    };
    // The IPv6 configurations, each on a dual-stack lab (`--ipv6`), for the suites whose
    // cases take the family from [`harness::Net`].
    (ipv6: $($case:ident),+ $(,)?) => {
        $crate::backend_tests!(@configs [$($case),+]
            iptables_v6: "--backend iptables --ipv6";
            nft_rules_v6: "--backend nftables --nft-shape rules --ipv6";
            nft_map_v6: "--backend nftables --nft-shape map --ipv6";
            ebpf_tc_v6: "--backend ebpf --ingress tc --fast-path on --ipv6";
            ebpf_tc_v6_tx_csum_off: "--backend ebpf --ingress tc --fast-path on --ipv6 +tx-csum-off";
        );
    };
    (@configs $cases:tt $($module:ident: $backend:literal;)+) => {$(
        mod $module {
            $crate::backend_tests!(@cases $backend; $cases);
        }
    )+};
    (@cases $backend:literal; [$($case:ident),+]) => {$(
        #[test]
        fn $case() {
            super::$case($backend);
        }
    )+};
}
