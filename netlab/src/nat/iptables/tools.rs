//! Running the iptables tools in the lab's host node: `iptables*` for IPv4, `ip6tables*`
//! for IPv6.

use crate::{
    crash_point,
    error::Result,
    family::Family,
    nat::{NatContext, netfilter::tool::run_in_host},
};

/// The tool of `family`: `iptables` or `ip6tables`.
pub(super) fn program(family: Family) -> &'static str {
    match family {
        Family::V4 => "iptables",
        Family::V6 => "ip6tables",
    }
}

/// `iptables-restore --noflush`: applies `rules` (`what` they are, for the crash point)
/// atomically, leaving other chains alone.
pub(super) fn restore(ctx: NatContext<'_>, family: Family, what: &str, rules: &str) -> Result<()> {
    let tool = format!("{}-restore", program(family));
    crash_point::reached(ctx.lab_name, &format!("{tool} {what}"));
    run_in_host(ctx, &tool, &["--noflush", "--wait"], Some(rules)).map(drop)
}

/// `iptables-save`: every table's rules.
pub(super) fn save(ctx: NatContext<'_>, family: Family) -> Result<String> {
    run_in_host(ctx, &format!("{}-save", program(family)), &[], None)
}

/// `iptables -t nat -L CHAIN -n -v -x`: the chain's rules with exact counters.
pub(super) fn list_nat_chain(ctx: NatContext<'_>, family: Family, chain: &str) -> Result<String> {
    run_in_host(
        ctx,
        program(family),
        &["-w", "-t", "nat", "-L", chain, "-n", "-v", "-x"],
        None,
    )
}
