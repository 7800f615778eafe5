//! The eBPF backend: NAT in tcx/XDP programs keyed by pinned maps. `setup` loads and
//! attaches the programs and pins everything under `/sys/fs/bpf/netlab/<lab>/`, so the
//! datapath outlives the CLI; `publish`/`unpublish` are map updates on the pinned maps.

pub(crate) mod attach;
mod batch;
mod block;
pub mod events;
mod ranges;
pub(crate) mod tables;

use netlab_common::nat::{ct_flags, ct_state, maps as map_names, programs};

use crate::{
    error::Result,
    lab::{HOST_NODE, Publish},
    topology,
};

use super::{ConntrackRow, FastPath, Hook, Ingress, NatBackend, NatContext, PortCounters};

pub use attach::pin_dir;

#[derive(Debug, Clone, Copy)]
pub struct Ebpf;

impl NatBackend for Ebpf {
    fn setup(&self, ctx: NatContext<'_>) -> Result<()> {
        attach::setup(ctx)?;
        tables::Tables::open(ctx.lab_name)?.prune(ctx.lab)
    }

    fn teardown(&self, ctx: NatContext<'_>) -> Result<()> {
        // The block's filter holds its program; unpinning the links detaches the others, and
        // unpinning the maps frees them.
        let detached = attach::detach_container_filter(ctx);
        crate::crash_point::reached(ctx.lab_name, "unpin /sys/fs/bpf/netlab/<lab>");
        let unpinned = crate::bpf_loader::bpffs::remove_dir(&pin_dir(ctx.lab_name));
        crate::error::Error::collect(
            [detached.err(), unpinned.err()]
                .into_iter()
                .flatten()
                .collect(),
        )
    }

    fn publish(&self, ctx: NatContext<'_>, added: &[Publish]) -> Result<()> {
        tables::Tables::open(ctx.lab_name)?.publish(ctx.lab, added)
    }

    fn unpublish(&self, ctx: NatContext<'_>, removed: &[Publish]) -> Result<()> {
        tables::Tables::open(ctx.lab_name)?.unpublish(ctx.lab, removed)
    }

    fn counters(&self, ctx: NatContext<'_>) -> Result<Vec<PortCounters>> {
        tables::Tables::open(ctx.lab_name)?.port_counters(ctx.lab)
    }

    fn conntrack(&self, ctx: NatContext<'_>) -> Result<Vec<ConntrackRow>> {
        let tables = tables::Tables::open(ctx.lab_name)?;
        let now = tables::monotonic_ns();
        let timeouts = ctx.options.ct_timeouts;
        let expires = |flow: &tables::TrackedFlow| {
            // ICMPv6 lives as long as ICMP.
            let proto = if flow.proto == 58 { 1 } else { flow.proto };
            flow.last_seen_ns + timeouts.lifetime_ns(proto, flow.state)
        };
        Ok(tables
            .conntrack()?
            .into_iter()
            // Expired entries stay in the map until reused or evicted; like the kernel's
            // table, the listing shows live flows only.
            .filter(|flow| expires(flow) > now)
            .map(|entry| {
                let mut kind = Vec::new();
                for (bit, name) in [
                    (ct_flags::HOST, "host"),
                    (ct_flags::HAIRPIN, "hairpin"),
                    (ct_flags::DNAT, "dnat"),
                    (ct_flags::SNAT, "snat"),
                    (ct_flags::REPLY, "reply"),
                ] {
                    if entry.flags & bit != 0 {
                        kind.push(name);
                    }
                }
                ConntrackRow {
                    proto: crate::ports::protocol_name(entry.proto),
                    original: entry.original.clone(),
                    translated: entry.translated.clone(),
                    kind: kind.join("+"),
                    state: match entry.state {
                        ct_state::ESTABLISHED => "established",
                        ct_state::CLOSING => "closing",
                        _ => "new",
                    }
                    .to_string(),
                    idle_s: now.saturating_sub(entry.last_seen_ns) / 1_000_000_000,
                    timeout_s: expires(&entry).saturating_sub(now) / 1_000_000_000,
                }
            })
            .collect())
    }

    fn explain(&self, ctx: NatContext<'_>) -> Vec<String> {
        let dir = pin_dir(ctx.lab_name).display().to_string();
        let mut lines = vec![
            "mount -t bpf bpf /sys/fs/bpf   # if not mounted".to_string(),
            format!("bpftool prog loadall netlab-ebpf.o {dir}/progs pinmaps {dir}"),
        ];
        let block = block::index(ctx.lab_name);
        let mut block_filter = None;
        for hook in self.hooks(ctx) {
            let exec = topology::place(ctx.lab_name, ctx.lab, &hook.node).exec();
            let program = format!("pinned {dir}/progs/{}", hook.runs);
            lines.push(match (hook.point.as_str(), &hook.device) {
                ("xdp", Some(dev)) => {
                    format!("{exec}bpftool net attach xdpdrv {program} dev {dev}")
                }
                (block::HOOK_POINT, Some(dev)) => {
                    block_filter = Some(format!(
                        "{exec}tc filter add block {block} pref 1 handle 1 bpf direct-action object-{program}"
                    ));
                    format!("{exec}tc qdisc add dev {dev} ingress_block {block} clsact")
                }
                (point, Some(dev)) => format!(
                    "{exec}bpftool net attach {} {program} dev {dev}",
                    point.replace(' ', "_")
                ),
                (point, None) => format!(
                    "bpftool cgroup attach <cgroup2 root> {} {program} multi",
                    point.trim_start_matches("cgroup ")
                ),
            });
        }
        // Once every veth binds the block (see `block`).
        lines.extend(block_filter);
        for publish in &ctx.lab.publish {
            if let Some(container) = ctx.lab.container(&publish.node) {
                let spec = &publish.spec;
                let (map, entries) = if ranges::is_range(spec) {
                    let blocks = ranges::range_keys(spec).len();
                    (map_names::PUBLISH_RANGES, format!("{blocks} blocks"))
                } else {
                    (map_names::PUBLISH, "1 port".to_owned())
                };
                lines.push(format!(
                    "bpftool map update pinned {dir}/{map} key <{} {}/{}> value <{}:{}>   # {entries}",
                    spec.host_ip.map_or_else(|| "*".to_string(), |ip| ip.to_string()),
                    spec.host,
                    spec.proto,
                    container.address,
                    spec.container,
                ));
            }
        }
        lines
    }

    fn describe(&self, ctx: NatContext<'_>) -> Result<String> {
        tables::Tables::open(ctx.lab_name)?.describe(ctx)
    }

    fn hooks(&self, ctx: NatContext<'_>) -> Vec<Hook> {
        let host = |device: Option<&str>, point: &str, runs: &str| Hook {
            node: HOST_NODE.to_owned(),
            device: device.map(str::to_owned),
            point: point.to_owned(),
            runs: runs.to_owned(),
        };
        let ext = Some(ctx.lab.external.device.as_str());
        let xdp = ctx.options.ingress == Ingress::Xdp;
        let mut hooks = Vec::new();
        if xdp {
            hooks.push(host(ext, "xdp", programs::XDP_EXTERNAL_INGRESS));
        }
        // With XDP translating, tcx ingress still translates ICMP errors and is where the
        // fast path hands packets on.
        hooks.push(host(ext, "tcx ingress", programs::TC_EXTERNAL_INGRESS));
        hooks.push(host(ext, "tcx egress", programs::TC_EXTERNAL_EGRESS));
        for container in &ctx.lab.containers {
            hooks.push(host(
                Some(&container.host_device),
                block::HOOK_POINT,
                programs::TC_CONTAINER_INGRESS,
            ));
            if xdp && ctx.options.fast_path == FastPath::XdpRedirect {
                // veth drops frames redirected to it by XDP unless its peer runs XDP too.
                hooks.push(Hook {
                    node: container.name.clone(),
                    device: Some(container.device.clone()),
                    point: "xdp".to_owned(),
                    runs: programs::XDP_PASS.to_owned(),
                });
            }
        }
        for program in attach::CGROUP_HOOKS {
            let point = format!("cgroup {}", &program["netlab_sock_".len()..]);
            hooks.push(host(None, &point, program));
        }
        hooks
    }

    fn remove_leftovers(&self, lab_name: &str) -> Result<()> {
        // Unpinning detaches (`down` then removes the shared folders no lab uses).
        crate::bpf_loader::bpffs::remove_dir(&pin_dir(lab_name))
    }
}
