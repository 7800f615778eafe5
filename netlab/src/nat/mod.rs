//! NAT backends: masquerade and port publishing. One trait, backend-neutral inputs, and
//! symmetric set-up/tear-down pairs, so a new backend is one file that implements [`NatBackend`].

pub mod iptables;

use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    lab::{HOST_NODE, Lab, Publish},
    netlink::Place,
    topology,
};

/// Which datapath does the NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// iptables rules in chains netlab owns, loaded with `iptables-restore --noflush`.
    Iptables,
    /// eBPF programs (tcx/XDP) keyed by pinned maps.
    Ebpf,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Iptables => "iptables",
            Self::Ebpf => "ebpf",
        })
    }
}

impl BackendKind {
    pub fn backend(self) -> Result<Box<dyn NatBackend>> {
        match self {
            Self::Iptables => Ok(Box::new(iptables::Iptables)),
            Self::Ebpf => Err(Error::invalid(
                "the eBPF NAT backend is not built yet; use --backend iptables",
            )),
        }
    }
}

/// What every backend gets: the lab, its name, and where its host node lives.
#[derive(Debug, Clone, Copy)]
pub struct NatContext<'a> {
    pub lab_name: &'a str,
    /// The lab; `lab.publish` is the complete set of ports published once the call returns.
    pub lab: &'a Lab,
}

impl NatContext<'_> {
    /// The host node, where the NAT happens.
    pub fn host(&self) -> Place {
        topology::place(self.lab_name, self.lab, HOST_NODE)
    }
}

/// Per-published-port counters, where the backend can count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortCounters {
    pub node: String,
    pub spec: String,
    /// What `packets` counts: "packets" or, for iptables' nat table, "connections".
    pub unit: &'static str,
    pub packets: u64,
    pub bytes: u64,
}

/// A NAT datapath. Every method is idempotent; `teardown` keeps going past failures and
/// reports them all.
pub trait NatBackend {
    /// Installs masquerade and whatever publishing needs, with no ports published.
    fn setup(&self, ctx: NatContext<'_>) -> Result<()>;
    /// Removes everything `setup` and `publish` installed, and only that.
    fn teardown(&self, ctx: NatContext<'_>) -> Result<()>;
    /// Starts forwarding `added` (already included in `ctx.lab.publish`).
    fn publish(&self, ctx: NatContext<'_>, added: &[Publish]) -> Result<()>;
    /// Stops forwarding `removed` (already gone from `ctx.lab.publish`).
    fn unpublish(&self, ctx: NatContext<'_>, removed: &[Publish]) -> Result<()>;
    /// Counters per published port.
    fn counters(&self, ctx: NatContext<'_>) -> Result<Vec<PortCounters>>;
    /// The commands that do what `setup` and `publish` of `ctx.lab.publish` do, for
    /// `up --explain`.
    fn explain(&self, ctx: NatContext<'_>) -> Vec<String>;
    /// The NAT state in the backend's own terms (rules, map entries), for `inspect`.
    fn describe(&self, ctx: NatContext<'_>) -> Result<String>;
}
