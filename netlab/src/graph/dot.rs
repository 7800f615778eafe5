//! The picture as Graphviz DOT: one record per namespace, a field per device, so the veth
//! pairs and published ports run between the devices they join.

use std::fmt::Write as _;

use super::{LinkKind, NodeBox, Picture};

/// DOT text for `picture`.
pub fn render(picture: &Picture) -> String {
    let mut out = String::new();
    // Undirected: a veth pair has no direction; published ports say theirs with `dir`.
    let _ = writeln!(out, "graph netlab {{");
    let _ = writeln!(
        out,
        "  graph [rankdir=LR, label={}, labelloc=t, fontname=\"sans-serif\"];",
        quoted(&picture.title)
    );
    let _ = writeln!(
        out,
        "  node [shape=record, fontname=\"sans-serif\", fontsize=11];"
    );
    let _ = writeln!(out, "  edge [fontname=\"sans-serif\", fontsize=10];");
    for node in &picture.boxes {
        let _ = writeln!(
            out,
            "  {} [label={}];",
            quoted(&node.node),
            quoted(&record(node))
        );
    }
    for link in &picture.links {
        let end = |(node, device): &(String, String)| {
            let field = field_of(picture, node, device);
            format!("{}:d{field}", quoted(node))
        };
        let style = match link.kind {
            LinkKind::Veth => "penwidth=2",
            LinkKind::Published => {
                "dir=forward, style=dashed, color=\"#1f77b4\", fontcolor=\"#1f77b4\""
            }
        };
        let _ = writeln!(
            out,
            "  {} -- {} [label={}, {style}];",
            end(&link.from),
            end(&link.to),
            quoted(&link.label)
        );
    }
    out.push_str("}\n");
    out
}

/// The field index of `device` in `node`'s record (0 when not found: the first device).
fn field_of(picture: &Picture, node: &str, device: &str) -> usize {
    picture
        .boxes
        .iter()
        .find(|b| b.node == node)
        .and_then(|b| b.devices.iter().position(|d| d.name == device))
        .unwrap_or(0)
}

/// `node\nplace\nhooks|<d0> device...|<d1> ...`: with `rankdir=LR` a record's fields stack
/// top to bottom.
fn record(node: &NodeBox) -> String {
    let mut title = format!("{}\\n{}", escape(&node.node), escape(&node.place));
    for hook in &node.hooks {
        let _ = write!(title, "\\n{}", escape(hook));
    }
    let mut fields = vec![title];
    for (i, device) in node.devices.iter().enumerate() {
        let mut field = format!("<d{i}> {}", escape(&device.name));
        if let Some(address) = &device.address {
            let _ = write!(field, " {}", escape(address));
        }
        let _ = write!(field, "\\n{}", escape(&device.role));
        for hook in &device.hooks {
            let _ = write!(field, "\\n{}", escape(hook));
        }
        fields.push(field);
    }
    fields.join("|")
}

/// Record labels give `{ } | < >` and spaces at the ends a meaning; escape them.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '{' | '}' | '|' | '<' | '>' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A DOT string literal.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{graph::tests::default_picture, nat::BackendKind};

    #[test]
    fn namespaces_are_records_and_links_join_devices() {
        let dot = render(&default_picture(BackendKind::Ebpf));
        assert!(dot.starts_with("graph netlab {\n"), "{dot}");
        assert!(
            dot.contains(r#""netns0" [label="netns0\nnetns demo-netns0|<d0> ceth0 172.18.0.10/16\ndefault via 172.18.0.1"];"#),
            "{dot}"
        );
        // host's devices: eth0 (d0), br0 (d1), veth0 (d2), veth1 (d3).
        assert!(
            dot.contains(r#""host":d0 -- "wan":d0 [label="veth 198.18.0.0/24", penwidth=2"#),
            "{dot}"
        );
        assert!(
            dot.contains(r#""host":d2 -- "netns0":d0 [label="veth", penwidth=2"#),
            "{dot}"
        );
        assert!(
            dot.contains(
                r#""host":d0 -- "netns0":d0 [label="-p 5000:5000/tcp", dir=forward, style=dashed"#
            ),
            "{dot}"
        );
        assert!(
            dot.contains(r"<d2> veth0\nport of br0\ntc block ingress: netlab_nat_ctr_ingress"),
            "{dot}"
        );
        assert!(dot.ends_with("}\n"));
    }

    #[test]
    fn record_syntax_is_escaped() {
        assert_eq!(escape("a{b}|<c>"), r"a\{b\}\|\<c\>");
        assert_eq!(quoted(r#"say "hi""#), r#""say \"hi\"""#);
    }
}
