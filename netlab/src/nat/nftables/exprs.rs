//! Short constructors for the `nftables` crate's expressions and statements, so the rules in
//! `table.rs` read close to the `nft` syntax they stand for.

use std::{borrow::Cow, net::IpAddr};

use nftables::{
    expr::{
        CT, Expression, Fib, FibFlag, FibResult, Map, Meta, MetaKey, NamedExpression, Payload,
        PayloadField, Prefix, Range, SetItem,
    },
    stmt::{Counter, JumpTarget, Match, NAT, NATFamily, Operator, Statement},
};

use crate::family::{Family, IpPrefix};

pub(super) type Expr = Expression<'static>;
pub(super) type Stmt = Statement<'static>;

/// A word or an address: `tcp`, `eth0`, `172.18.0.10`, `dnat`.
pub(super) fn word(text: &(impl ToString + ?Sized)) -> Expr {
    Expression::String(Cow::Owned(text.to_string()))
}

pub(super) fn number(value: u16) -> Expr {
    Expression::Number(u32::from(value))
}

/// `a-b`, or `a` when the range is one value.
pub(super) fn range(start: Expr, end: Expr) -> Expr {
    if start == end {
        start
    } else {
        Expression::Range(Box::new(Range {
            range: [start, end],
        }))
    }
}

/// `start-end` of ports.
pub(super) fn ports(start: u16, end: u16) -> Expr {
    range(number(start), number(end))
}

/// `a . b . c`
pub(super) fn concat(parts: Vec<Expr>) -> Expr {
    Expression::Named(NamedExpression::Concat(parts))
}

/// `{ a, b }`
pub(super) fn set(items: Vec<Expr>) -> Expr {
    Expression::Named(NamedExpression::Set(
        items.into_iter().map(SetItem::Element).collect(),
    ))
}

/// `172.18.0.0/16`, `fd00:172:18::/64`
pub(super) fn prefix(IpPrefix(network, len): IpPrefix) -> Expr {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(address(network)),
        len: u32::from(len),
    }))
}

pub(super) fn address(ip: impl Into<IpAddr>) -> Expr {
    word(&ip.into())
}

/// `ip saddr`, `ip daddr`, `th dport`: a header field.
pub(super) fn field(protocol: &'static str, name: &'static str) -> Expr {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Borrowed(protocol),
            field: Cow::Borrowed(name),
        },
    )))
}

/// `meta iifname`, `meta l4proto`, ...
pub(super) fn meta(key: MetaKey) -> Expr {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

/// `ct state`, `ct status`.
pub(super) fn ct(key: &'static str) -> Expr {
    Expression::Named(NamedExpression::CT(CT {
        key: Cow::Borrowed(key),
        family: None,
        dir: None,
    }))
}

/// `fib daddr type`: what routing says the destination is (`local` for the host's own).
pub(super) fn fib_daddr_type() -> Expr {
    Expression::Named(NamedExpression::Fib(Fib {
        result: FibResult::Type,
        flags: [FibFlag::Daddr].into_iter().collect(),
    }))
}

/// `KEY map @NAME`: the value `KEY` maps to in map `NAME`.
pub(super) fn lookup(key: Expr, map: &str) -> Expr {
    Expression::Named(NamedExpression::Map(Box::new(Map {
        key,
        data: word(&format!("@{map}")),
    })))
}

/// `LEFT RIGHT`: a match (`RIGHT` a value, a prefix, a range, or a set).
pub(super) fn is(left: Expr, right: Expr) -> Stmt {
    Statement::Match(Match {
        left,
        right,
        op: Operator::EQ,
    })
}

/// `LEFT != RIGHT`
pub(super) fn is_not(left: Expr, right: Expr) -> Stmt {
    Statement::Match(Match {
        left,
        right,
        op: Operator::NEQ,
    })
}

/// `LEFT { FLAG, ... }`: one of the flags is set (`ct state established,related`).
pub(super) fn has_any(left: Expr, flags: &[&'static str]) -> Stmt {
    Statement::Match(Match {
        left,
        right: Expression::List(flags.iter().map(|flag| word(*flag)).collect()),
        op: Operator::IN,
    })
}

/// `PROTO dport PORTS` for a published port's protocol.
pub(super) fn dport(proto: &'static str, ports: Expr) -> Stmt {
    is(field(proto, "dport"), ports)
}

pub(super) fn counter() -> Stmt {
    Statement::Counter(Counter::Anonymous(None))
}

pub(super) fn accept() -> Stmt {
    Statement::Accept(None)
}

pub(super) fn drop() -> Stmt {
    Statement::Drop(None)
}

pub(super) fn jump(chain: &str) -> Stmt {
    Statement::Jump(JumpTarget {
        target: Cow::Owned(chain.to_owned()),
    })
}

pub(super) fn masquerade() -> Stmt {
    Statement::Masquerade(None)
}

/// `dnat ip to ADDR[:PORT]` (`dnat ip6 to` in IPv6); without a port, the packet keeps its
/// own.
pub(super) fn dnat(family: Family, addr: Expr, port: Option<Expr>) -> Stmt {
    Statement::DNAT(Some(NAT {
        addr: Some(addr),
        family: Some(match family {
            Family::V4 => NATFamily::IP,
            Family::V6 => NATFamily::IP6,
        }),
        port,
        flags: None,
    }))
}
