//! Running `nft` in the lab's host node: applying a transaction, and reading the table back.

use std::collections::BTreeMap;

use nftables::{
    batch::Batch,
    expr::{Expression, NamedExpression},
    helper::{self, NftablesError},
    schema::{NfListObject, NfObject, Nftables},
    stmt::{Counter, Statement},
};

use super::{
    maps::PublishedMap,
    table::{DNAT_CHAIN, LOCAL_CHAIN, l3, table_name},
};
use crate::{
    crash_point,
    error::{Error, Result},
    family::Family,
    nat::{NatContext, netfilter::tool::run_in_host},
    netlink::Place,
};

/// `nft -j -f -` of `batch` in the host node: one transaction, all of it or nothing.
/// `what` names it for the crash point and the error.
pub(super) fn apply(ctx: NatContext<'_>, what: &str, batch: Batch<'_>) -> Result<()> {
    apply_in(&ctx.host(), ctx.lab_name, what, batch)
}

/// [`apply`] in `place`, for lab `lab_name`.
pub(super) fn apply_in(place: &Place, lab_name: &str, what: &str, batch: Batch<'_>) -> Result<()> {
    crash_point::reached(lab_name, &format!("nft {what}"));
    let op = || format!("nft {what}");
    let mut ruleset =
        serde_json::to_value(batch.to_nftables()).map_err(|err| Error::json(op(), err))?;
    super::maps::declare_element_counters(&mut ruleset);
    let payload = ruleset.to_string();
    place.run(|| {
        helper::apply_ruleset_raw(&payload, helper::DEFAULT_NFT, helper::DEFAULT_ARGS)
            .map(drop)
            .map_err(|err| command_error(op(), err))
    })
}

/// The lab's table of `family` as `nft -j list table` gives it, or `None` when there is
/// none.
pub(super) fn read(ctx: NatContext<'_>, family: Family) -> Result<Option<Nftables<'static>>> {
    let table = table_name(ctx.lab_name);
    let l3 = l3(family);
    ctx.host().run(|| {
        match helper::get_current_ruleset_with_args(
            helper::DEFAULT_NFT,
            ["list", "table", l3, table.as_str()],
        ) {
            Ok(ruleset) => Ok(Some(ruleset)),
            Err(NftablesError::NftFailed { stderr, .. }) if stderr.contains("No such file") => {
                Ok(None)
            }
            Err(err) => Err(command_error(format!("nft list table {l3} {table}"), err)),
        }
    })
}

/// The lab's table of `family` in `nft`'s own syntax (`nft list table`), empty when there
/// is none.
pub(super) fn listing(ctx: NatContext<'_>, family: Family) -> Result<String> {
    let table = table_name(ctx.lab_name);
    match run_in_host(ctx, "nft", &["list", "table", l3(family), &table], None) {
        Err(Error::Command { stderr, .. }) if stderr.contains("No such file") => Ok(String::new()),
        other => other,
    }
}

/// Packets and bytes per published port (by the id in rule and element comments): the
/// counters of the rules shape's DNAT rules, or of the map shape's address elements.
pub(super) fn counters(ruleset: &Nftables<'_>) -> BTreeMap<String, (u64, u64)> {
    let mut sums = BTreeMap::<String, (u64, u64)>::new();
    let mut add = |id: &str, counter: Option<&Counter<'_>>| {
        if let Some(Counter::Anonymous(Some(counted))) = counter {
            let sum = sums.entry(id.to_owned()).or_default();
            sum.0 += counted.packets.unwrap_or(0) as u64;
            sum.1 += counted.bytes.unwrap_or(0) as u64;
        }
    };
    for object in ruleset.objects.iter() {
        let NfObject::ListObject(object) = object else {
            continue;
        };
        match object {
            NfListObject::Rule(rule) if [DNAT_CHAIN, LOCAL_CHAIN].contains(&&*rule.chain) => {
                let Some(id) = rule.comment.as_deref() else {
                    continue;
                };
                for statement in rule.expr.iter() {
                    if let Statement::Counter(counter) = statement {
                        add(id, Some(counter));
                    }
                }
            }
            NfListObject::Map(map)
                if PublishedMap::named(&map.name).is_some_and(PublishedMap::counts) =>
            {
                for element in map.elem.iter().flat_map(|elements| elements.iter()) {
                    // A map element is `[KEY, VALUE]`; the key carries comment and counter.
                    let Expression::List(pair) = element else {
                        continue;
                    };
                    if let Some(Expression::Named(NamedExpression::Elem(elem))) = pair.first()
                        && let Some(id) = elem.comment.as_deref()
                    {
                        add(id, elem.counter.as_ref());
                    }
                }
            }
            _ => {}
        }
    }
    sums
}

/// `nft`'s failure as one line: what was run and what it said.
pub(super) fn command_error(op: String, err: NftablesError) -> Error {
    let stderr = match err {
        NftablesError::NftFailed { stderr, .. } => stderr,
        other => other.to_string(),
    };
    Error::Command {
        op,
        stderr: stderr.trim().replace('\n', "; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nft -j list table` of a lab of each shape, cut down to what counts.
    const LISTING: &str = r#"{"nftables": [
        {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
        {"map": {"family": "ip", "name": "published_any_shifted", "table": "netlab_t", "type": ["inet_proto", "inet_service"], "handle": 4, "map": "ipv4_addr", "flags": ["interval"], "stmt": [{"counter": null}],
          "elem": [[{"elem": {"val": {"concat": ["tcp", 8080]}, "counter": {"packets": 3, "bytes": 180}, "comment": "netns0 8080:80/tcp"}}, "172.18.0.10"],
                   [{"elem": {"val": {"concat": ["udp", {"range": [7000, 7002]}]}, "counter": {"packets": 2, "bytes": 100}, "comment": "netns0 7000-7002:8000-8002/udp"}}, "172.18.0.10"]]}},
        {"map": {"family": "ip", "name": "published_any_shifted_port", "table": "netlab_t", "type": ["inet_proto", "inet_service"], "handle": 5, "map": "inet_service",
          "elem": [[{"concat": ["tcp", 8080]}, 80]]}},
        {"rule": {"family": "ip", "table": "netlab_t", "chain": "published", "handle": 9, "comment": "netns1 9000-9001:90-91/tcp",
          "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 9000}}, {"counter": {"packets": 4, "bytes": 240}}, {"dnat": {"addr": "172.18.0.20", "port": 90}}]}},
        {"rule": {"family": "ip", "table": "netlab_t", "chain": "published", "handle": 10, "comment": "netns1 9000-9001:90-91/tcp",
          "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 9001}}, {"counter": {"packets": 1, "bytes": 60}}, {"dnat": {"addr": "172.18.0.20", "port": 91}}]}},
        {"rule": {"family": "ip", "table": "netlab_t", "chain": "forward", "handle": 11, "comment": "not a port",
          "expr": [{"counter": {"packets": 99, "bytes": 99}}, {"accept": null}]}}
    ]}"#;

    #[test]
    fn counters_are_summed_per_published_spec() {
        let ruleset: Nftables<'_> = serde_json::from_str(LISTING).expect("a listing");
        let sums = counters(&ruleset);
        assert_eq!(sums.get("netns0 8080:80/tcp"), Some(&(3, 180)));
        assert_eq!(sums.get("netns0 7000-7002:8000-8002/udp"), Some(&(2, 100)));
        assert_eq!(sums.get("netns1 9000-9001:90-91/tcp"), Some(&(5, 300)));
        assert_eq!(sums.len(), 3, "{sums:?}");
    }
}
