//! Reading what the tools print: `iptables-save`, `iptables -L -v`.

use std::net::IpAddr;

use crate::lab::Publish;

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
    container: IpAddr,
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
        // `to:172.18.0.10:80`, `to:[fd00:172:18::10]:80`.
        let to_ok = line.contains(&match container {
            IpAddr::V4(ip) => format!("to:{ip}:"),
            IpAddr::V6(ip) => format!("to:[{ip}]:"),
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_summed_per_spec() {
        let listing = "Chain NL-t-DNAT (2 references)\n    pkts      bytes target     prot opt in     out     source               destination\n       3      180 DNAT       6    --  *      *       0.0.0.0/0            !172.18.0.1           tcp dpt:8080 to:172.18.0.10:80\n       2      120 DNAT       6    --  *      *       0.0.0.0/0            !172.18.0.1           tcp dpt:8081 to:172.18.0.10:81\n       7      420 DNAT       6    --  *      *       0.0.0.0/0            127.0.0.1            tcp dpt:8080 to:172.18.0.10:80\n       5      300 DNAT       17   --  *      *       0.0.0.0/0            !172.18.0.1           udp dpt:8080 to:172.18.0.10:80\n";
        let publish = |spec: &str| Publish {
            node: "netns0".into(),
            spec: spec.parse().expect("spec"),
        };
        let container = IpAddr::from([172, 18, 0, 10]);
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
        let elsewhere = IpAddr::from([172, 18, 0, 20]);
        assert_eq!(
            dnat_counters(listing, &range, elsewhere, "!172.18.0.1"),
            (0, 0)
        );
    }
}
