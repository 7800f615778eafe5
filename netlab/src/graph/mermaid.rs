//! The picture as a Mermaid flowchart: a subgraph per namespace, a node per device.

use std::fmt::Write as _;

use super::{LinkKind, Picture};

/// Mermaid text for `picture`.
pub fn render(picture: &Picture) -> String {
    let mut out = format!("---\ntitle: {}\n---\nflowchart LR\n", label(&picture.title));
    for (n, node) in picture.boxes.iter().enumerate() {
        let mut title = format!("{} · {}", node.node, node.place);
        for hook in &node.hooks {
            let _ = write!(title, "<br/>{hook}");
        }
        let _ = writeln!(out, "  subgraph n{n}[\"{}\"]", label(&title));
        for (d, device) in node.devices.iter().enumerate() {
            let mut text = device.name.clone();
            if let Some(address) = &device.address {
                let _ = write!(text, " {address}");
            }
            let _ = write!(text, "<br/><i>{}</i>", device.role);
            for hook in &device.hooks {
                let _ = write!(text, "<br/>{hook}");
            }
            let _ = writeln!(out, "    n{n}d{d}[\"{}\"]", label(&text));
        }
        out.push_str("  end\n");
    }
    for link in &picture.links {
        let (Some(from), Some(to)) = (id_of(picture, &link.from), id_of(picture, &link.to)) else {
            continue;
        };
        let arrow = match link.kind {
            LinkKind::Veth => "---",
            LinkKind::Published => "-.->",
        };
        let _ = writeln!(out, "  {from} {arrow}|\"{}\"| {to}", label(&link.label));
    }
    out
}

/// The Mermaid id of device `(node, device)`: `n<box>d<device>`.
fn id_of(picture: &Picture, (node, device): &(String, String)) -> Option<String> {
    let n = picture.boxes.iter().position(|b| &b.node == node)?;
    let d = picture.boxes[n]
        .devices
        .iter()
        .position(|d| &d.name == device)?;
    Some(format!("n{n}d{d}"))
}

/// Text inside a quoted Mermaid label: a double quote would end it.
fn label(text: &str) -> String {
    text.replace('"', "#quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{graph::tests::default_picture, nat::BackendKind};

    #[test]
    fn namespaces_are_subgraphs_and_links_join_devices() {
        let text = render(&default_picture(BackendKind::Ebpf));
        assert!(
            text.starts_with(
                "---\ntitle: lab demo, backend ebpf, masquerade 172.18.0.0/16\n---\nflowchart LR\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  subgraph n2[\"netns0 · netns demo-netns0\"]\n    n2d0[\"ceth0 172.18.0.10/16<br/><i>default via 172.18.0.1</i>\"]\n  end\n"),
            "{text}"
        );
        assert!(
            text.contains("  n0d0 ---|\"veth 198.18.0.0/24\"| n1d0\n"),
            "{text}"
        );
        assert!(text.contains("  n0d2 ---|\"veth\"| n2d0\n"), "{text}");
        assert!(
            text.contains("  n0d0 -.->|\"-p 5000:5000/tcp\"| n2d0\n"),
            "{text}"
        );
        assert_eq!(text.matches("subgraph").count(), 4);
        assert_eq!(text.matches("\n  end\n").count(), 4);
    }
}
