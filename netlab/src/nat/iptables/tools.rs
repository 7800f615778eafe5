//! Running the iptables tools in the lab's host node.

use crate::{
    crash_point,
    error::Result,
    nat::{NatContext, netfilter::tool::run_in_host},
};

/// `iptables-restore --noflush`: applies `rules` (`what` they are, for the crash point)
/// atomically, leaving other chains alone.
pub(super) fn restore(ctx: NatContext<'_>, what: &str, rules: &str) -> Result<()> {
    crash_point::reached(ctx.lab_name, &format!("iptables-restore {what}"));
    run_in_host(
        ctx,
        "iptables-restore",
        &["--noflush", "--wait"],
        Some(rules),
    )
    .map(drop)
}

/// `iptables-save`: every table's rules.
pub(super) fn save(ctx: NatContext<'_>) -> Result<String> {
    run_in_host(ctx, "iptables-save", &[], None)
}

/// `iptables -t nat -L CHAIN -n -v -x`: the chain's rules with exact counters.
pub(super) fn list_nat_chain(ctx: NatContext<'_>, chain: &str) -> Result<String> {
    run_in_host(
        ctx,
        "iptables",
        &["-w", "-t", "nat", "-L", chain, "-n", "-v", "-x"],
        None,
    )
}
