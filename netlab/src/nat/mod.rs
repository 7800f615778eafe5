//! NAT backends: masquerade and port publishing. One trait, backend-neutral inputs, and
//! symmetric set-up/tear-down pairs, so a new backend is one module that implements [`NatBackend`]
//! (plus a [`BackendKind`] variant; README.md lists the rest).

pub mod ct_timeouts;
pub mod ebpf;
pub mod iptables;
mod netfilter;
pub mod nftables;
pub mod none;

use netlab_common::nat::CtTimeouts;
use serde::{Deserialize, Serialize};

use crate::{
    error::Result,
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
    /// nftables, in one table netlab owns (`ip netlab_<lab>`), in the shape `--nft-shape` picks.
    Nftables,
    /// No NAT at all: containers are reached by routing only (the benchmark's floor).
    None,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Iptables => "iptables",
            Self::Ebpf => "ebpf",
            Self::Nftables => "nftables",
            Self::None => "none",
        })
    }
}

impl BackendKind {
    pub fn backend(self) -> Result<Box<dyn NatBackend>> {
        match self {
            Self::Iptables => Ok(Box::new(iptables::Iptables)),
            Self::Ebpf => Ok(Box::new(ebpf::Ebpf)),
            Self::Nftables => Ok(Box::new(nftables::Nftables)),
            Self::None => Ok(Box::new(none::NoNat)),
        }
    }
}

/// Which hook of the external device does the eBPF backend's ingress translation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Ingress {
    /// tcx ingress.
    #[default]
    Tc,
    /// Native XDP (generic XDP where the driver has none).
    Xdp,
}

/// Whether the eBPF backend hands translated packets straight to their veth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FastPath {
    /// Through the host's routing and bridge, like any forwarded packet.
    Off,
    /// tcx: `bpf_redirect_peer` into containers, `bpf_redirect_neigh` / `bpf_redirect` out.
    #[default]
    On,
    /// As `on`, and XDP redirects into containers through a devmap. XDP frames lose the
    /// skb's note that a checksum is partial, so XDP writes each whole datagram's TCP or
    /// UDP checksum in full first: correct with any sender, and slower than `on` on veth.
    XdpRedirect,
}

/// How the nftables backend writes published ports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NftShape {
    /// As Docker 29's nftables driver ships it: one DNAT rule per published port, one
    /// hairpin masquerade and one forward accept per mapping, Docker's raw-table drops;
    /// every publish rewrites the rules in one transaction.
    Rules,
    /// As nftables is best written: DNAT through maps keyed by address, protocol and port
    /// (interval keys for ranges), one transaction of element updates per publish.
    #[default]
    Map,
}

/// Backend tuning: the eBPF backend's, and the nftables backend's shape; a backend ignores
/// the options of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendOptions {
    pub ingress: Ingress,
    pub fast_path: FastPath,
    /// Size of the conntrack table (entries; a flow takes two).
    #[serde(default = "default_ct_entries")]
    pub ct_entries: u32,
    /// Conntrack lifetimes.
    #[serde(default)]
    pub ct_timeouts: CtTimeouts,
    /// The nftables backend's shape.
    #[serde(default)]
    pub nft_shape: NftShape,
}

fn default_ct_entries() -> u32 {
    netlab_common::nat::CONNTRACK_MAX_ENTRIES
}

impl Default for BackendOptions {
    fn default() -> Self {
        Self {
            ingress: Ingress::default(),
            fast_path: FastPath::default(),
            ct_entries: default_ct_entries(),
            ct_timeouts: CtTimeouts::default(),
            nft_shape: NftShape::default(),
        }
    }
}

impl BackendOptions {
    /// The first option that differs from `other`, as `up` takes it: `--ingress xdp`.
    pub fn first_difference(&self, other: &Self) -> Option<String> {
        if self.ingress != other.ingress {
            return Some(format!("--ingress {}", value_name(&other.ingress)));
        }
        if self.fast_path != other.fast_path {
            return Some(format!("--fast-path {}", value_name(&other.fast_path)));
        }
        if self.ct_entries != other.ct_entries {
            return Some(format!("--ct-entries {}", other.ct_entries));
        }
        if self.nft_shape != other.nft_shape {
            return Some(format!("--nft-shape {}", value_name(&other.nft_shape)));
        }
        (self.ct_timeouts != other.ct_timeouts).then(|| "--ct-timeouts".to_owned())
    }
}

/// An option's value as the command line spells it.
fn value_name<T: clap::ValueEnum>(value: &T) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned())
}

/// What every backend gets: the lab, its name, and the backend's options.
#[derive(Debug, Clone, Copy)]
pub struct NatContext<'a> {
    pub lab_name: &'a str,
    /// The lab; `lab.publish` is the complete set of ports published once the call returns.
    pub lab: &'a Lab,
    pub options: BackendOptions,
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

/// One translated connection, as `netlab conntrack` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConntrackRow {
    pub proto: String,
    /// The packet as it arrives: `src:port -> dst:port`.
    pub original: String,
    /// What it is rewritten to.
    pub translated: String,
    /// "dnat", "snat", "hairpin", with "reply" for the return direction.
    pub kind: String,
    pub state: String,
    /// Seconds since the last packet.
    pub idle_s: u64,
    /// Seconds left before the entry expires unless another packet refreshes it.
    pub timeout_s: u64,
}

/// Where one piece of a backend's datapath sits, for `netlab graph`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// The node whose network namespace holds it.
    pub node: String,
    /// The device it is attached to; `None` for hooks of the whole namespace (cgroup
    /// socket hooks, netfilter chains).
    pub device: Option<String>,
    /// The attach point as the kernel calls it: `tcx ingress`, `xdp`, `cgroup connect4`,
    /// `nat PREROUTING`.
    pub point: String,
    /// What runs there: a program or a chain.
    pub runs: String,
}

/// A NAT datapath. Every method is idempotent; `teardown` keeps going past failures and
/// reports them all.
pub trait NatBackend {
    /// Refuses what the backend cannot carry in `ctx.lab` (its published ports included),
    /// before anything is changed. Nothing by default.
    fn check(&self, _ctx: NatContext<'_>) -> Result<()> {
        Ok(())
    }
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
    /// The connection-tracking table of the NAT, for `netlab conntrack`.
    fn conntrack(&self, ctx: NatContext<'_>) -> Result<Vec<ConntrackRow>>;
    /// The NAT state in the backend's own terms (rules, map entries), for `inspect`.
    fn describe(&self, ctx: NatContext<'_>) -> Result<String>;
    /// Where `setup` puts the datapath's pieces (programs, chains), for `netlab graph`.
    fn hooks(&self, ctx: NatContext<'_>) -> Vec<Hook>;
    /// Removes what a crashed run of lab `lab_name` may have left outside the lab's
    /// namespaces, knowing nothing but the name (`down` calls it for every backend, since
    /// the state file may be gone). Nothing by default.
    fn remove_leftovers(&self, _lab_name: &str) -> Result<()> {
        Ok(())
    }
}

impl BackendKind {
    /// Every backend, for `down`'s sweep of a crashed run.
    pub const ALL: [Self; 4] = [Self::Iptables, Self::Ebpf, Self::Nftables, Self::None];
}

/// Labs and contexts for the backends' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{BackendOptions, NatContext};
    use crate::lab::{Lab, Publish};

    /// The default lab with `specs` published to netns0 (172.18.0.10).
    pub(crate) fn lab_with(specs: &[&str]) -> Lab {
        let mut lab = Lab::default_lab();
        lab.publish = specs
            .iter()
            .map(|spec| Publish {
                node: "netns0".into(),
                spec: spec.parse().expect("spec"),
            })
            .collect();
        lab
    }

    /// What a backend gets for lab `t`.
    pub(crate) fn ctx(lab: &Lab, options: BackendOptions) -> NatContext<'_> {
        NatContext {
            lab_name: "t",
            lab,
            options,
        }
    }
}
