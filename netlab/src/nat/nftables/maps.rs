//! The map shape's maps. A port published on one address is found by address, protocol
//! and port (`published_at*`), one on every address by protocol and port
//! (`published_any*`). Ports that keep their number (`8080:8080`, `7000-7099:7000-7099`)
//! are one interval element of a map giving the container's address. Ports that change it
//! (`8080:80`) are one interval element of a `_shifted` map giving the address, and one
//! element per port of a `_shifted_port` map giving the container's port: `nft` 1.0.6
//! cannot read a map whose values are address and port together.

use std::borrow::Cow;

use nftables::{
    expr::MetaKey,
    schema::{Map, SetFlag, SetType, SetTypeValue},
};

use super::{
    exprs::{Expr, concat, field, meta},
    table::{l3, nf_family},
};
use crate::family::Family;

/// One of the six maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PublishedMap {
    /// Keyed by host address too (a port published on one address).
    pub at_address: bool,
    pub role: Role,
}

/// What a map gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// The container's address, for ports that keep their number.
    SamePort,
    /// The container's address, for ports that change it.
    Shifted,
    /// The container's port, for ports that change it.
    ShiftedPort,
}

impl PublishedMap {
    pub(super) const ALL: [Self; 6] = [
        Self::new(true, Role::SamePort),
        Self::new(true, Role::Shifted),
        Self::new(true, Role::ShiftedPort),
        Self::new(false, Role::SamePort),
        Self::new(false, Role::Shifted),
        Self::new(false, Role::ShiftedPort),
    ];

    pub(super) const fn new(at_address: bool, role: Role) -> Self {
        Self { at_address, role }
    }

    pub(super) fn name(self) -> &'static str {
        match (self.at_address, self.role) {
            (true, Role::SamePort) => "published_at",
            (true, Role::Shifted) => "published_at_shifted",
            (true, Role::ShiftedPort) => "published_at_shifted_port",
            (false, Role::SamePort) => "published_any",
            (false, Role::Shifted) => "published_any_shifted",
            (false, Role::ShiftedPort) => "published_any_shifted_port",
        }
    }

    /// Whether each element has a counter: the address maps hold one element per
    /// published spec, which is what `netlab ports` counts. A packet is looked up in one
    /// of them at most once.
    pub(super) fn counts(self) -> bool {
        self.role != Role::ShiftedPort
    }

    /// The map named `name`, if it is one of these.
    pub(super) fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|map| map.name() == name)
    }

    pub(super) fn declaration(self, table: &str, family: Family) -> Map<'static> {
        let address = match family {
            Family::V4 => SetType::Ipv4Addr,
            Family::V6 => SetType::Ipv6Addr,
        };
        let mut key = vec![SetType::InetProto, SetType::InetService];
        if self.at_address {
            key.insert(0, address);
        }
        let (value, flags) = match self.role {
            // A range of host ports is one interval key.
            Role::SamePort | Role::Shifted => (address, Some([SetFlag::Interval].into())),
            // One key per port: a container port is a function of the host port.
            Role::ShiftedPort => (SetType::InetService, None),
        };
        Map {
            family: nf_family(family),
            table: Cow::Owned(table.to_owned()),
            name: Cow::Borrowed(self.name()),
            set_type: SetTypeValue::Concatenated(Cow::Owned(key)),
            map: SetTypeValue::Single(value),
            flags,
            ..Map::default()
        }
    }

    /// What the packet is looked up by: `[ip daddr .] meta l4proto . th dport`.
    pub(super) fn key(self, family: Family) -> Expr {
        let mut parts = vec![meta(MetaKey::L4proto), field("th", "dport")];
        if self.at_address {
            parts.insert(0, field(l3(family), "daddr"));
        }
        concat(parts)
    }
}

/// Declares per-element counters on the maps that count, in `ruleset` as JSON: the
/// `nftables` crate's `Map` has no `stmt` field, and without the map's `counter` statement
/// `nft` drops the counters of its elements.
pub(super) fn declare_element_counters(ruleset: &mut serde_json::Value) {
    let commands = ruleset
        .get_mut("nftables")
        .and_then(serde_json::Value::as_array_mut);
    for command in commands.into_iter().flatten() {
        let Some(map) = command
            .get_mut("add")
            .and_then(|add| add.get_mut("map"))
            .and_then(serde_json::Value::as_object_mut)
        else {
            continue;
        };
        let counted = map
            .get("name")
            .and_then(serde_json::Value::as_str)
            .and_then(PublishedMap::named)
            .is_some_and(PublishedMap::counts);
        if counted {
            map.insert("stmt".into(), serde_json::json!([{ "counter": null }]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_address_maps_get_element_counters() {
        let mut ruleset = serde_json::json!({"nftables": [
            {"add": {"table": {"family": "ip", "name": "netlab_t"}}},
            {"add": {"map": {"name": "published_any"}}},
            {"add": {"map": {"name": "published_any_shifted_port"}}},
            {"add": {"map": {"name": "someone_elses"}}},
        ]});
        declare_element_counters(&mut ruleset);
        let stmt = |i: usize| ruleset["nftables"][i]["add"]["map"].get("stmt").cloned();
        assert_eq!(stmt(1), Some(serde_json::json!([{"counter": null}])));
        assert_eq!(stmt(2), None);
        assert_eq!(stmt(3), None);
    }

    #[test]
    fn a_packet_finds_a_published_port_in_one_counting_map_at_most() {
        for at_address in [true, false] {
            let counting: Vec<_> = PublishedMap::ALL
                .into_iter()
                .filter(|map| map.at_address == at_address && map.counts())
                .collect();
            // The shifted rule looks up `_shifted` first; a miss there goes on to the
            // same-port map: two maps, each spec in exactly one.
            assert_eq!(counting.len(), 2);
        }
        assert!(
            PublishedMap::ALL
                .iter()
                .all(|m| PublishedMap::named(m.name()) == Some(*m))
        );
    }
}
