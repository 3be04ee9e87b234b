//! `ckptscope lineage`: the DAG as an indented tree (roots first, children below their
//! parents), and the JSON document.
//!
//! `clippy::indexing_slicing` is allowed here: node indexes are positions in the graph's own node
//! list.

#![allow(clippy::indexing_slicing)]

use std::io::{self, Write};

use serde::Serialize;

use crate::lineage::{Graph, Node};
use crate::output::human::term;

#[derive(Serialize)]
struct GraphJson<'a> {
    nodes: Vec<NodeJson<'a>>,
    edges: Vec<EdgeJson<'a>>,
    timelines: Vec<Vec<String>>,
}

/// A node with its fields written here, not flattened from [`Node`]: its `path` is a display
/// string (serde refuses paths that are not UTF-8), and flattening wrote `"path"` twice.
#[derive(Serialize)]
struct NodeJson<'a> {
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unresolved: Option<&'a crate::lineage::ParentRef>,
}

impl<'a> NodeJson<'a> {
    fn of(n: &'a Node) -> Self {
        NodeJson {
            path: n.path.as_ref().map(|p| p.display().to_string()),
            id: n.id.as_deref(),
            name: &n.name,
            version: n.version.as_deref(),
            created: n.created.as_deref(),
            step: n.step,
            epoch: n.epoch,
            format: n.format.map(|f| f.json_name()),
            unresolved: n.unresolved.as_ref(),
        }
    }
}

#[derive(Serialize)]
struct EdgeJson<'a> {
    child: String,
    parent: String,
    via: &'a str,
}

/// How a node is named in edges: its path, or `?name` for a dangling parent.
fn key(n: &Node) -> String {
    match &n.path {
        Some(p) => p.display().to_string(),
        None => format!("?{}", n.name),
    }
}

/// Writes `{"nodes": [...], "edges": [{"child", "parent", "via"}], "timelines": [[path...]]}`.
pub fn write_json(out: &mut impl Write, g: &Graph) -> io::Result<()> {
    let doc = GraphJson {
        nodes: g.nodes.iter().map(NodeJson::of).collect(),
        edges: g
            .edges
            .iter()
            .map(|e| EdgeJson {
                child: key(&g.nodes[e.child]),
                parent: key(&g.nodes[e.parent]),
                via: &e.via,
            })
            .collect(),
        timelines: g
            .timelines
            .iter()
            .map(|t| t.iter().map(|&i| key(&g.nodes[i])).collect())
            .collect(),
    };
    serde_json::to_writer(&mut *out, &doc)?;
    out.write_all(b"\n")
}

/// A node as shown in the tree, escaped for terminals (names, versions and dates come from
/// metadata).
fn label(n: &Node) -> String {
    term(&raw_label(n)).into_owned()
}

fn raw_label(n: &Node) -> String {
    let mut s = match &n.path {
        Some(p) => p
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        None => format!("{} (not found)", n.name),
    };
    if n.path.is_some() && n.name != s {
        s.push_str(&format!(" “{}”", n.name));
    }
    let mut facts = Vec::new();
    if let Some(v) = &n.version {
        facts.push(format!("v{}", v.trim_start_matches('v')));
    }
    if let Some(step) = n.step {
        facts.push(format!("step {step}"));
    }
    if let Some(e) = n.epoch {
        facts.push(format!("epoch {e}"));
    }
    if let Some(c) = &n.created {
        facts.push(c.clone());
    }
    if !facts.is_empty() {
        s.push_str(&format!("  [{}]", facts.join(", ")));
    }
    s
}

/// Writes the tree: each root, then its descendants indented, with how each link was found.
pub fn write_human(out: &mut impl Write, g: &Graph) -> io::Result<()> {
    if g.nodes.is_empty() {
        return writeln!(out, "no checkpoints found");
    }
    let roots: Vec<usize> = (0..g.nodes.len())
        .filter(|&i| g.parents(i).next().is_none())
        .collect();
    let mut shown = vec![false; g.nodes.len()];
    for &r in &roots {
        tree(out, g, r, 0, None, &mut shown)?;
    }
    // Nodes only reachable through cycles.
    for i in 0..g.nodes.len() {
        if !shown[i] {
            tree(out, g, i, 0, None, &mut shown)?;
        }
    }
    for t in &g.timelines {
        let names: Vec<String> = t.iter().map(|&i| label(&g.nodes[i])).collect();
        writeln!(out, "timeline: {}", names.join(" → "))?;
    }
    Ok(())
}

fn tree(
    out: &mut impl Write,
    g: &Graph,
    i: usize,
    depth: usize,
    via: Option<&str>,
    shown: &mut [bool],
) -> io::Result<()> {
    let indent = "  ".repeat(depth);
    let arrow = if depth > 0 { "└─ " } else { "" };
    let link = via.map(|v| format!("   ← {}", term(v))).unwrap_or_default();
    if shown[i] {
        return writeln!(
            out,
            "{indent}{arrow}{} (see above){link}",
            label(&g.nodes[i])
        );
    }
    shown[i] = true;
    writeln!(out, "{indent}{arrow}{}{link}", label(&g.nodes[i]))?;
    let children: Vec<(usize, String)> = g
        .edges
        .iter()
        .filter(|e| e.parent == i)
        .map(|e| (e.child, e.via.clone()))
        .collect();
    for (c, v) in children {
        if depth < 64 {
            tree(out, g, c, depth + 1, Some(&v), shown)?;
        }
    }
    Ok(())
}

/// `ckptscope set-parent`'s report: each key written, and the content id that proves the tensor
/// data unchanged.
pub fn write_set_parent(
    out: &mut impl Write,
    report: &crate::lineage::SetParentReport,
) -> io::Result<()> {
    for (k, v) in &report.keys {
        writeln!(out, "{}: {} = {}", report.file.display(), term(k), term(v))?;
    }
    writeln!(
        out,
        "header rewritten; tensor data unchanged (content id {})",
        report.content_id
    )
}
