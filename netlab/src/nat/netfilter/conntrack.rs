//! The kernel's connection-tracking table, through the `conntrack` tool: what the
//! netfilter backends show as `netlab conntrack` and flush when a UDP port is unpublished.

use super::tool::run_in_host;
use crate::{
    error::Result,
    family::{Addressing, Family},
    lab::Publish,
    nat::{ConntrackRow, NatContext},
    ports::Proto,
};

/// `conntrack`'s name for `family`.
fn family_arg(family: Family) -> &'static str {
    match family {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

/// Every tracked connection of the host node, of each family the lab has (`conntrack -L -f
/// ipv4`, `-f ipv6`).
pub(in crate::nat) fn rows(ctx: NatContext<'_>) -> Result<Vec<ConntrackRow>> {
    let mut rows = Vec::new();
    for addressing in Addressing::each(ctx.lab) {
        let family = family_arg(addressing.family);
        let out = run_in_host(ctx, "conntrack", &["-L", "-f", family], None)?;
        rows.extend(out.lines().filter_map(conntrack_row));
    }
    Ok(rows)
}

/// Docker flushes conntrack for a UDP mapping it removes: otherwise a client that keeps
/// sending keeps being forwarded by the old entry. Only flows of the removed ports that were
/// translated to their container are deleted (`--reply-src`), not the host's own flows to
/// the same port number. Best effort: without the `conntrack` tool they simply time out.
pub(in crate::nat) fn forget_udp_flows(ctx: NatContext<'_>, removed: &[Publish]) {
    let udp = removed.iter().filter(|p| p.spec.proto == Proto::Udp);
    for (publish, addressing) in udp.flat_map(|p| Addressing::each(ctx.lab).map(move |a| (p, a))) {
        let Some(container) = ctx
            .lab
            .container(&publish.node)
            .and_then(|c| addressing.container(c))
            .filter(|_| addressing.host_ip(&publish.spec).is_some())
        else {
            continue;
        };
        let (family, container) = (family_arg(addressing.family), container.to_string());
        let Ok(listing) = run_in_host(
            ctx,
            "conntrack",
            &["-L", "-f", family, "-p", "udp", "--reply-src", &container],
            None,
        ) else {
            continue;
        };
        let ports = original_dports(&listing)
            .into_iter()
            .filter(|port| publish.spec.host.contains(*port));
        for port in ports {
            // Exit status 1 means "nothing matched": fine.
            let _ = run_in_host(
                ctx,
                "conntrack",
                &[
                    "-D",
                    "-f",
                    family,
                    "-p",
                    "udp",
                    "--orig-port-dst",
                    &port.to_string(),
                    "--reply-src",
                    &container,
                ],
                None,
            );
        }
    }
}

/// One line of `conntrack -L`: `tcp 6 431999 ESTABLISHED src=.. dst=.. sport=.. dport=..
/// src=.. dst=.. sport=.. dport=.. [ASSURED] mark=0 use=1`.
fn conntrack_row(line: &str) -> Option<ConntrackRow> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let proto = (*fields.first()?).to_string();
    let value = |key: &str, nth: usize| {
        fields
            .iter()
            .filter_map(|f| f.strip_prefix(key))
            .nth(nth)
            .unwrap_or("?")
            .to_string()
    };
    let tuple = |nth| {
        format!(
            "{}:{} -> {}:{}",
            value("src=", nth),
            value("sport=", nth),
            value("dst=", nth),
            value("dport=", nth)
        )
    };
    let state = fields
        .get(3)
        .filter(|f| !f.contains('='))
        .map_or("-", |f| *f)
        .to_string();
    Some(ConntrackRow {
        proto,
        original: tuple(0),
        // The reply tuple reversed is what the original was translated to.
        translated: format!(
            "{}:{} -> {}:{}",
            value("dst=", 1),
            value("dport=", 1),
            value("src=", 1),
            value("sport=", 1)
        ),
        kind: "nf_conntrack".to_string(),
        state,
        idle_s: 0,
        timeout_s: fields.get(2).and_then(|f| f.parse().ok()).unwrap_or(0),
    })
}

/// The original destination ports (`dport=` of the original tuple) in a `conntrack -L`
/// listing, sorted, each once.
fn original_dports(listing: &str) -> Vec<u16> {
    let mut ports: Vec<u16> = listing
        .lines()
        .filter_map(|line| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix("dport="))
        })
        .filter_map(|port| port.parse().ok())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conntrack_lines_are_parsed() {
        let line = "tcp      6 431999 ESTABLISHED src=198.18.0.2 dst=198.18.0.1 sport=40000 dport=5000 src=172.18.0.10 dst=198.18.0.2 sport=5000 dport=40000 [ASSURED] mark=0 use=1";
        let row = conntrack_row(line).expect("a row");
        assert_eq!(row.proto, "tcp");
        assert_eq!(row.state, "ESTABLISHED");
        assert_eq!(row.original, "198.18.0.2:40000 -> 198.18.0.1:5000");
        assert_eq!(row.translated, "198.18.0.2:40000 -> 172.18.0.10:5000");
        assert_eq!(row.timeout_s, 431_999);
        let syn = "tcp      6 58 SYN_RECV src=198.18.0.99 dst=198.18.0.1 sport=1234 dport=7200 src=172.18.0.10 dst=198.18.0.99 sport=7200 dport=1234 mark=0 use=1";
        let row = conntrack_row(syn).expect("a row");
        assert_eq!((row.state.as_str(), row.timeout_s), ("SYN_RECV", 58));
    }

    #[test]
    fn dports_are_read_from_the_original_tuple() {
        let listing = "udp      17 29 src=198.18.0.2 dst=198.18.0.1 sport=40000 dport=5353 src=172.18.0.10 dst=198.18.0.2 sport=53 dport=40000 mark=0 use=1\nudp      17 29 src=198.18.0.2 dst=198.18.0.1 sport=40001 dport=5353 src=172.18.0.10 dst=198.18.0.2 sport=53 dport=40001 mark=0 use=1\nudp      17 29 src=198.18.0.2 dst=198.18.0.1 sport=40002 dport=5300 src=172.18.0.10 dst=198.18.0.2 sport=53 dport=40002 mark=0 use=1\n";
        assert_eq!(original_dports(listing), vec![5300, 5353]);
    }
}
