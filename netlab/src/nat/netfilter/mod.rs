//! What the backends that use the kernel's own NAT (iptables, nftables) share: the host
//! node's settings they need, the tools they run there, and the kernel's conntrack table.

pub mod conntrack;
pub mod tool;

use crate::{
    error::{Error, Result},
    nat::NatContext,
    sysctl, topology,
};

/// The error for a spec published on `::1`, which no netfilter backend can carry: the
/// reply, translated back to `::1`, would arrive on the bridge and be dropped as a martian
/// (IPv6 has no `route_localnet`). `backend` names the backend in the message.
pub(in crate::nat) fn refuse_ipv6_loopback(ctx: NatContext<'_>, backend: &str) -> Result<()> {
    match ctx.lab.publish.iter().find(|p| {
        p.spec
            .host_ip6()
            .flatten()
            .is_some_and(|ip| ip.is_loopback())
    }) {
        Some(publish) => Err(Error::invalid(format!(
            "cannot publish {} with the {backend} backend: the kernel does not route IPv6 loopback traffic out of lo (there is no route_localnet for IPv6); publish on [::] or another host address",
            publish.spec
        ))),
        None => Ok(()),
    }
}

/// Self-hairpin: the bridge must hand a frame back out of the port it came in on, and
/// bridged frames must traverse netfilter's IPv4 hooks (iptables and nftables `ip` tables
/// alike; the IPv6 hooks too in a dual-stack lab) so the hairpin flow can be masqueraded. `route_localnet` lets host processes reach
/// ports published on 127.0.0.1.
pub(in crate::nat) fn prepare_host(ctx: NatContext<'_>) -> Result<()> {
    let host = ctx.host();
    crate::crash_point::reached(ctx.lab_name, "sysctls and hairpin for netfilter");
    sysctl::write(&host, "net.bridge.bridge-nf-call-iptables", "1")?;
    if ctx.lab.ipv6.is_some() {
        sysctl::write(&host, "net.bridge.bridge-nf-call-ip6tables", "1")?;
    }
    sysctl::write(
        &host,
        &format!("net.ipv4.conf.{}.route_localnet", ctx.lab.bridge),
        "1",
    )?;
    topology::set_hairpin(ctx.lab_name, ctx.lab, true)
}

/// The commands that do what [`prepare_host`] does, for `up --explain`.
pub(in crate::nat) fn explain_prepare_host(ctx: NatContext<'_>) -> Vec<String> {
    let exec = ctx.host().exec();
    let mut lines = vec![
        format!("{exec}sysctl -w net.bridge.bridge-nf-call-iptables=1"),
        format!(
            "{exec}sysctl -w net.ipv4.conf.{}.route_localnet=1",
            ctx.lab.bridge
        ),
    ];
    if ctx.lab.ipv6.is_some() {
        lines.insert(
            1,
            format!("{exec}sysctl -w net.bridge.bridge-nf-call-ip6tables=1"),
        );
    }
    for container in &ctx.lab.containers {
        lines.push(format!(
            "{exec}bridge link set dev {} hairpin on",
            container.host_device
        ));
    }
    lines
}
