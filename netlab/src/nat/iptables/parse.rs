//! Reading what the tools print: `iptables-save`, `iptables -L -v`, `conntrack -L`.

use std::net::Ipv4Addr;

use crate::{lab::Publish, nat::ConntrackRow};

/// The `-A BUILTIN ... -j <prefix>...` lines of `table` in `saved`: jumps from a built-in
/// chain into one of the chains named `<prefix>*`.
pub(super) fn jumps_to<'a>(saved: &'a str, table: &str, prefix: &str) -> Vec<&'a str> {
    let target = format!("-j {prefix}");
    let own = format!("-A {prefix}");
    lines_of_table(saved, table)
        .filter(|line| line.starts_with("-A ") && line.contains(&target) && !line.starts_with(&own))
        .collect()
}

/// The chains of `table` in `saved` whose names start with `prefix`.
pub(super) fn chains_of<'a>(saved: &'a str, table: &str, prefix: &str) -> Vec<&'a str> {
    lines_of_table(saved, table)
        .filter_map(|line| line.strip_prefix(':'))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(prefix))
        .collect()
}

/// The lines under `saved`'s `*table` header.
fn lines_of_table<'a>(saved: &'a str, table: &str) -> impl Iterator<Item = &'a str> {
    let mut current = None;
    saved.lines().filter(move |line| {
        if let Some(name) = line.strip_prefix('*') {
            current = Some(name == table);
            false
        } else {
            current == Some(true)
        }
    })
}

/// Packets and bytes of the DNAT rules in `listing` (`iptables -L -n -v -x` of the DNAT
/// chains) that belong to `publish`, sent to `container` from a spec whose destination match
/// is `destination` (`1.2.3.4`, or `!GATEWAY` for every host address).
pub(super) fn dnat_counters(
    listing: &str,
    publish: &Publish,
    container: Ipv4Addr,
    destination: &str,
) -> (u64, u64) {
    let (mut packets, mut bytes) = (0, 0);
    let proto = publish.spec.proto;
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(port) = fields
            .iter()
            .find_map(|f| f.strip_prefix("dpt:"))
            .and_then(|dpt| dpt.parse::<u16>().ok())
        else {
            continue;
        };
        let proto_ok = fields
            .get(3)
            .is_some_and(|p| *p == proto.name() || *p == proto.number().to_string());
        let to_ok = line.contains(&format!("to:{container}:"));
        // The destination column tells specs on different host addresses apart.
        let destination_ok = fields.get(8).is_some_and(|d| *d == destination);
        if proto_ok && to_ok && destination_ok && publish.spec.host.contains(port) {
            let number = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            packets += number(0);
            bytes += number(1);
        }
    }
    (packets, bytes)
}

/// One line of `conntrack -L`: `tcp 6 431999 ESTABLISHED src=.. dst=.. sport=.. dport=..
/// src=.. dst=.. sport=.. dport=.. [ASSURED] mark=0 use=1`.
pub(super) fn conntrack_row(line: &str) -> Option<ConntrackRow> {
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
pub(super) fn original_dports(listing: &str) -> Vec<u16> {
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
    fn counters_are_summed_per_spec() {
        let listing = "Chain NL-t-DNAT (2 references)\n    pkts      bytes target     prot opt in     out     source               destination\n       3      180 DNAT       6    --  *      *       0.0.0.0/0            !172.18.0.1           tcp dpt:8080 to:172.18.0.10:80\n       2      120 DNAT       6    --  *      *       0.0.0.0/0            !172.18.0.1           tcp dpt:8081 to:172.18.0.10:81\n       7      420 DNAT       6    --  *      *       0.0.0.0/0            127.0.0.1            tcp dpt:8080 to:172.18.0.10:80\n       5      300 DNAT       17   --  *      *       0.0.0.0/0            !172.18.0.1           udp dpt:8080 to:172.18.0.10:80\n";
        let publish = |spec: &str| Publish {
            node: "netns0".into(),
            spec: spec.parse().expect("spec"),
        };
        let container = Ipv4Addr::new(172, 18, 0, 10);
        let range = publish("8080-8081:80-81");
        assert_eq!(
            dnat_counters(listing, &range, container, "!172.18.0.1"),
            (5, 300)
        );
        let local = publish("127.0.0.1:8080:80");
        assert_eq!(
            dnat_counters(listing, &local, container, "127.0.0.1"),
            (7, 420)
        );
        let udp = publish("8080:80/udp");
        assert_eq!(
            dnat_counters(listing, &udp, container, "!172.18.0.1"),
            (5, 300)
        );
        let elsewhere = Ipv4Addr::new(172, 18, 0, 20);
        assert_eq!(
            dnat_counters(listing, &range, elsewhere, "!172.18.0.1"),
            (0, 0)
        );
    }

    #[test]
    fn dports_are_read_from_the_original_tuple() {
        let listing = "udp      17 29 src=198.18.0.2 dst=198.18.0.1 sport=40000 dport=5353 src=172.18.0.10 dst=198.18.0.2 sport=53 dport=40000 mark=0 use=1\nudp      17 29 src=198.18.0.2 dst=198.18.0.1 sport=40001 dport=5353 src=172.18.0.10 dst=198.18.0.2 sport=53 dport=40001 mark=0 use=1\nudp      17 29 src=198.18.0.2 dst=198.18.0.1 sport=40002 dport=5300 src=172.18.0.10 dst=198.18.0.2 sport=53 dport=40002 mark=0 use=1\n";
        assert_eq!(original_dports(listing), vec![5300, 5353]);
    }
}
