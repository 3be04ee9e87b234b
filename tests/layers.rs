//! The module tree stays a tree: every top-level module imports only modules of the layers
//! below it (the order stated in `src/lib.rs`), and no two sibling files of a module import
//! each other, directly or around a loop.
//!
//! The check reads the sources: every `crate::name` path and every `use crate::{a, b::c}` group
//! counts, in code, doc links and tests alike (a test that needs an upper layer belongs in
//! `tests/`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top: a module may import the ones before it.
const LAYERS: &[&str] = &[
    "dtype", "timefmt", "progress", "fsutil", "desktop", "limits", "error", "archive", "detect",
    "pickle", "format", "analysis", "hash", "pipeline", "lineage", "convert", "export", "scan",
    "package", "output", "gui",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Names that follow `prefix` in `text`: `prefix::a` gives `a`; `prefix::{a, b::c}` gives `a`
/// and `b` (only the first level of the group).
fn referenced(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let needle = format!("{prefix}::");
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + needle.len()..];
        // `ckptscope::crate::x` does not exist, but `my_crate::x` does: whole words only.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item = String::new();
            let mut first_level = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => first_level.push(std::mem::take(&mut item)),
                    _ => item.push(c),
                }
            }
            first_level.push(item);
            for item in first_level {
                let word: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !word.is_empty() {
                    names.insert(word);
                }
            }
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                names.insert(word);
            }
        }
    }
    names
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// (top-level module, path inside `src/`) of every source file but `lib.rs` and `main.rs`.
fn files() -> Vec<(String, PathBuf)> {
    let root = src();
    let mut all = Vec::new();
    sources(&root, &mut all);
    all.sort();
    all.into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&root).unwrap().to_path_buf();
            let first = rel.components().next()?.as_os_str().to_string_lossy();
            let top = first.trim_end_matches(".rs").to_string();
            (top != "lib" && top != "main").then_some((top, rel))
        })
        .collect()
}

#[test]
fn every_top_level_module_is_in_the_layer_list() {
    let tops: BTreeSet<String> = files().into_iter().map(|(t, _)| t).collect();
    for top in &tops {
        assert!(
            LAYERS.contains(&top.as_str()),
            "src/{top} is in no layer: add it to LAYERS here and to the order in src/lib.rs"
        );
    }
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let stated = lib
        .lines()
        .find_map(|l| l.strip_prefix("//! Layers, bottom to top: "))
        .expect("src/lib.rs states the layer order");
    let stated: Vec<&str> = stated
        .trim_end_matches('.')
        .split(" < ")
        .flat_map(|group| group.trim_matches(['(', ')']).split(", "))
        .map(|s| s.trim_matches('`'))
        .collect();
    assert_eq!(stated, LAYERS, "src/lib.rs and this test state one order");
}

#[test]
fn modules_import_only_layers_below() {
    let mut violations = Vec::new();
    for (top, rel) in files() {
        let text = std::fs::read_to_string(src().join(&rel)).unwrap();
        let own = LAYERS.iter().position(|l| *l == top).unwrap_or(usize::MAX);
        for name in referenced(&text, "crate") {
            let Some(level) = LAYERS.iter().position(|l| *l == name) else {
                continue; // a re-export at the crate root (`crate::Error`)
            };
            if level > own {
                violations.push(format!("src/{} imports `{name}`", rel.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports from a layer above:\n{}",
        violations.join("\n")
    );
}

#[test]
fn sibling_files_form_no_cycle() {
    // Edges between the files of one folder (`mod.rs` excluded: it declares its children and
    // hosts the types they share).
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for (top, rel) in files() {
        let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) else {
            continue;
        };
        if rel.file_name().is_some_and(|n| n == "mod.rs") {
            continue;
        }
        let text = std::fs::read_to_string(src().join(&rel)).unwrap();
        let module_path = parent.to_string_lossy().replace('/', "::");
        let mut names = referenced(&text, &format!("crate::{module_path}"));
        names.extend(referenced(&text, "super"));
        let _ = top;
        for name in names {
            let sibling = parent.join(format!("{name}.rs"));
            let sibling_dir = parent.join(&name).join("mod.rs");
            for target in [sibling, sibling_dir] {
                if target != rel && src().join(&target).is_file() {
                    edges.entry(rel.clone()).or_default().insert(target);
                }
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        node: &PathBuf,
        edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        state: &mut BTreeMap<PathBuf, u8>,
        path: &mut Vec<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        match state.get(node) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| p == node).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(node.clone());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(node.clone(), 1);
        path.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, state, path) {
                return Some(cycle);
            }
        }
        path.pop();
        state.insert(node.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, &edges, &mut state, &mut Vec::new()) {
            let names: Vec<String> = cycle.iter().map(|p| p.display().to_string()).collect();
            panic!("sibling files import each other: {}", names.join(" -> "));
        }
    }
}

#[test]
fn no_source_file_is_over_900_lines() {
    let mut long = Vec::new();
    for (_, rel) in files() {
        let lines = std::fs::read_to_string(src().join(&rel))
            .unwrap()
            .lines()
            .count();
        if lines > 900 {
            long.push(format!("src/{} has {lines} lines", rel.display()));
        }
    }
    assert!(long.is_empty(), "split these:\n{}", long.join("\n"));
}

#[test]
fn the_reference_finder_reads_groups_and_paths() {
    let text = "use crate::{format::{Checkpoint, open}, pickle};\nlet x = crate::hash::hex(b);\n\
                my_crate::gui::x(); // not ours";
    let names: Vec<String> = referenced(text, "crate").into_iter().collect();
    assert_eq!(names, ["format", "hash", "pickle"]);
}
