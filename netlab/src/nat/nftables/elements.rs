//! The map shape's elements: what publishing a port adds to the maps of `table.rs`.

use std::borrow::Cow;

use nftables::{
    expr::{Elem, Expression, NamedExpression},
    schema::Element,
    stmt::{AnonymousCounter, Counter},
};

use super::{
    exprs::{Expr, address, concat, number, ports, word},
    maps::{PublishedMap, Role},
    table::{nf_family, publish_id, table_name},
};
use crate::{family::Addressing, lab::Publish, nat::NatContext};

/// What the elements are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// Adding: key and value, and on the address maps a comment and a counter.
    Add,
    /// Deleting: the keys.
    Delete,
}

/// The elements `publishes` put in the maps of each family's table, one command per map
/// that gets any. The address maps count per element, which is what `netlab ports` shows:
/// a NAT chain sees the first packet of a connection only, so these count connections, as
/// iptables' do.
pub(super) fn of(
    ctx: NatContext<'_>,
    publishes: &[Publish],
    purpose: Purpose,
) -> Vec<Element<'static>> {
    Addressing::each(ctx.lab)
        .flat_map(|addressing| of_family(ctx, addressing, publishes, purpose))
        .collect()
}

/// [`of`] in one family's table.
fn of_family(
    ctx: NatContext<'_>,
    addressing: Addressing<'_>,
    publishes: &[Publish],
    purpose: Purpose,
) -> Vec<Element<'static>> {
    let mut per_map: Vec<(PublishedMap, Vec<Expr>)> = PublishedMap::ALL
        .iter()
        .map(|&map| (map, Vec::new()))
        .collect();
    for publish in publishes {
        let spec = &publish.spec;
        let (Some(container), Some(host_ip)) = (
            ctx.lab
                .container(&publish.node)
                .and_then(|c| addressing.container(c)),
            addressing.host_ip(spec),
        ) else {
            continue;
        };
        let map = |role| PublishedMap::new(host_ip.is_some(), role);
        let shifted = spec.host != spec.container;
        let addr_map = map(if shifted {
            Role::Shifted
        } else {
            Role::SamePort
        });
        let key = |port_part: Expr| {
            let mut parts = vec![word(spec.proto.name()), port_part];
            if let Some(ip) = host_ip {
                parts.insert(0, address(ip));
            }
            concat(parts)
        };
        let host_ports = key(ports(spec.host.start, spec.host.end));
        let entry = match purpose {
            Purpose::Delete => host_ports,
            Purpose::Add => {
                let counted = Expression::Named(NamedExpression::Elem(Elem {
                    val: Box::new(host_ports),
                    timeout: None,
                    expires: None,
                    comment: Some(Cow::Owned(publish_id(publish))),
                    counter: Some(Counter::Anonymous(Some(AnonymousCounter::default()))),
                }));
                Expression::List(vec![counted, address(container)])
            }
        };
        push(&mut per_map, addr_map, entry);
        if !shifted {
            continue;
        }
        for host_port in spec.host.start..=spec.host.end {
            let Some(container_port) = spec.container_port_for(host_port) else {
                continue;
            };
            let entry = match purpose {
                Purpose::Delete => key(number(host_port)),
                Purpose::Add => {
                    Expression::List(vec![key(number(host_port)), number(container_port)])
                }
            };
            push(&mut per_map, map(Role::ShiftedPort), entry);
        }
    }
    let table = table_name(ctx.lab_name);
    per_map
        .into_iter()
        .filter(|(_, elements)| !elements.is_empty())
        .map(|(map, elements)| Element {
            family: nf_family(addressing.family),
            table: Cow::Owned(table.clone()),
            name: Cow::Borrowed(map.name()),
            elem: Cow::Owned(elements),
        })
        .collect()
}

fn push(per_map: &mut [(PublishedMap, Vec<Expr>)], map: PublishedMap, entry: Expr) {
    if let Some((_, elements)) = per_map.iter_mut().find(|(m, _)| *m == map) {
        elements.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use nftables::schema::{NfCmd, NfListObject};

    use super::*;
    use crate::nat::{
        BackendOptions,
        nftables::text,
        test_support::{ctx, lab_with},
    };

    fn element_lines(specs: &[&str], purpose: Purpose) -> Vec<String> {
        let lab = lab_with(specs);
        of(ctx(&lab, BackendOptions::default()), &lab.publish, purpose)
            .into_iter()
            .filter_map(|element| text::command(&NfCmd::Add(NfListObject::Element(element))))
            .collect()
    }

    #[test]
    fn a_range_keeping_its_ports_is_one_interval_element() {
        assert_eq!(
            element_lines(&["7000-7999:7000-7999/udp"], Purpose::Add),
            [
                "add element ip netlab_t published_any { udp . 7000-7999 counter comment \"netns0 7000-7999:7000-7999/udp\" : 172.18.0.10 }"
            ]
        );
    }

    #[test]
    fn shifted_ports_take_one_port_element_each() {
        assert_eq!(
            element_lines(&["198.18.0.1:8080-8081:80-81"], Purpose::Add),
            [
                "add element ip netlab_t published_at_shifted { 198.18.0.1 . tcp . 8080-8081 counter comment \"netns0 198.18.0.1:8080-8081:80-81/tcp\" : 172.18.0.10 }",
                "add element ip netlab_t published_at_shifted_port { 198.18.0.1 . tcp . 8080 : 80, 198.18.0.1 . tcp . 8081 : 81 }",
            ]
        );
        // Deleting names the keys only.
        assert_eq!(
            element_lines(&["8080:80"], Purpose::Delete),
            [
                "add element ip netlab_t published_any_shifted { tcp . 8080 }",
                "add element ip netlab_t published_any_shifted_port { tcp . 8080 }",
            ]
        );
    }
}
