//! The `nft` command line for what the backend sends as JSON, for `up --explain`: the same
//! objects, in the syntax people type. Covers the expressions and statements `table.rs`
//! and `elements.rs` build.

use std::fmt::Write as _;

use nftables::{
    expr::{Expression, MetaKey, NamedExpression, Payload},
    schema::{NfCmd, NfListObject, SetTypeValue},
    stmt::{Operator, Statement},
};

use super::{maps::PublishedMap, table::BASE_CHAINS};

/// `add table ip T`, `add chain ...`, `add rule ...`, `add element ...`: the argument of
/// `nft` for one command the backend sends.
pub(super) fn command(command: &NfCmd<'_>) -> Option<String> {
    let NfCmd::Add(object) = command else {
        return None;
    };
    Some(match object {
        NfListObject::Table(table) => format!("add table {} {}", name(&table.family), table.name),
        NfListObject::Chain(chain) => {
            let head = format!(
                "add chain {} {} {}",
                name(&chain.family),
                chain.table,
                chain.name
            );
            match BASE_CHAINS.iter().find(|base| base.name == chain.name) {
                Some(base) if chain.hook.is_some() => format!(
                    "{head} {{ type {} hook {} priority {}; policy accept; }}",
                    name(&base.kind),
                    name(&base.hook),
                    base.priority_name
                ),
                _ => head,
            }
        }
        NfListObject::Map(map) => {
            let flags = map
                .flags
                .as_ref()
                .filter(|flags| !flags.is_empty())
                .map(|flags| {
                    let names: Vec<String> = flags.iter().map(name).collect();
                    format!(" flags {};", names.join(","))
                })
                .unwrap_or_default();
            let counter = if PublishedMap::named(&map.name).is_some_and(PublishedMap::counts) {
                " counter;"
            } else {
                ""
            };
            format!(
                "add map {} {} {} {{ type {} : {};{flags}{counter} }}",
                name(&map.family),
                map.table,
                map.name,
                set_type(&map.set_type),
                set_type(&map.map)
            )
        }
        NfListObject::Rule(rule) => {
            let statements: Vec<String> = rule.expr.iter().map(statement).collect();
            let comment = rule
                .comment
                .as_ref()
                .map(|c| format!(" comment \"{c}\""))
                .unwrap_or_default();
            format!(
                "add rule {} {} {} {}{comment}",
                name(&rule.family),
                rule.table,
                rule.chain,
                statements.join(" ")
            )
        }
        NfListObject::Element(element) => {
            let items: Vec<String> = element.elem.iter().map(element_item).collect();
            format!(
                "add element {} {} {} {{ {} }}",
                name(&element.family),
                element.table,
                element.name,
                items.join(", ")
            )
        }
        _ => return None,
    })
}

/// One element of a map, `KEY : VALUE`, or of a set.
fn element_item(item: &Expression<'_>) -> String {
    match item {
        Expression::List(pair) if pair.len() == 2 => {
            format!("{} : {}", expression(&pair[0]), expression(&pair[1]))
        }
        other => expression(other),
    }
}

fn statement(statement: &Statement<'_>) -> String {
    match statement {
        Statement::Match(m) => {
            let (left, right) = (expression(&m.left), expression(&m.right));
            match m.op {
                Operator::NEQ => format!("{left} != {right}"),
                _ => format!("{left} {right}"),
            }
        }
        Statement::Accept(_) => "accept".into(),
        Statement::Drop(_) => "drop".into(),
        Statement::Jump(target) => format!("jump {}", target.target),
        Statement::Counter(_) => "counter".into(),
        Statement::Masquerade(_) => "masquerade".into(),
        Statement::DNAT(Some(nat)) => {
            let addr = nat.addr.as_ref().map(expression).unwrap_or_default();
            let family = nat.family.as_ref().map_or_else(|| "ip".to_owned(), name);
            match &nat.port {
                // An IPv6 address with a port goes in brackets.
                Some(port) if addr.contains(':') => {
                    format!("dnat {family} to [{addr}]:{}", expression(port))
                }
                Some(port) => format!("dnat {family} to {addr} : {}", expression(port)),
                None => format!("dnat {family} to {addr}"),
            }
        }
        other => format!("{other:?}"),
    }
}

fn expression(expression: &Expression<'_>) -> String {
    match expression {
        Expression::String(text) => text.to_string(),
        Expression::Number(n) => n.to_string(),
        Expression::Boolean(b) => b.to_string(),
        // Flags: `established,related`.
        Expression::List(items) => items
            .iter()
            .map(self::expression)
            .collect::<Vec<_>>()
            .join(","),
        Expression::Range(range) => format!(
            "{}-{}",
            self::expression(&range.range[0]),
            self::expression(&range.range[1])
        ),
        Expression::Named(named) => named_expression(named),
        other => format!("{other:?}"),
    }
}

fn named_expression(named: &NamedExpression<'_>) -> String {
    match named {
        NamedExpression::Concat(parts) => {
            parts.iter().map(expression).collect::<Vec<_>>().join(" . ")
        }
        NamedExpression::Set(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|item| match item {
                    nftables::expr::SetItem::Element(e) => expression(e),
                    other => format!("{other:?}"),
                })
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
        NamedExpression::Map(map) => {
            format!("{} map {}", expression(&map.key), expression(&map.data))
        }
        NamedExpression::Prefix(prefix) => format!("{}/{}", expression(&prefix.addr), prefix.len),
        NamedExpression::Payload(Payload::PayloadField(field)) => {
            format!("{} {}", field.protocol, field.field)
        }
        NamedExpression::Meta(meta) => match meta.key {
            MetaKey::Iifname | MetaKey::Oifname => name(&meta.key),
            key => format!("meta {}", name(&key)),
        },
        NamedExpression::CT(ct) => format!("ct {}", ct.key),
        NamedExpression::Fib(fib) => {
            let flags: Vec<String> = fib.flags.iter().map(name).collect();
            format!("fib {} {}", flags.join(" . "), name(&fib.result))
        }
        NamedExpression::Elem(elem) => {
            let mut text = expression(&elem.val);
            if elem.counter.is_some() {
                text += " counter";
            }
            if let Some(comment) = &elem.comment {
                let _ = write!(text, " comment \"{comment}\"");
            }
            text
        }
        other => format!("{other:?}"),
    }
}

/// A type, hook or key name as nft spells it: the enum's serde name.
pub(super) fn name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn set_type(value: &SetTypeValue<'_>) -> String {
    match value {
        SetTypeValue::Single(t) => name(t),
        SetTypeValue::Concatenated(types) => types.iter().map(name).collect::<Vec<_>>().join(" . "),
    }
}
