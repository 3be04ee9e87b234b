//! The module tree stays a tree: every top-level module imports only modules of the layers
//! below it (the order stated in `src/lib.rs`), and no two sibling files of a module import
//! each other, directly or around a loop (a folder's `mod.rs` counts as that folder among its
//! siblings), and what a module doc says it "Must not import: `a`, `b`" it does not import.
//!
//! The check reads the sources: every `crate::name` path and every `use crate::{a, b::c}` group
//! counts, in code, doc links and tests alike (a test that needs an upper layer belongs in
//! `tests/`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top: a module may import the ones before it.
const LAYERS: &[&str] = &[
    "dtype", "timefmt", "progress", "fsutil", "limits", "verdict", "error", "archive", "detect",
    "pickle", "format", "desktop", "analysis", "hash", "pipeline", "lineage", "convert", "export",
    "scan", "package", "output", "gui", "cli",
];

/// Top-level modules of the binary (`src/main.rs`), not of the library: they reach the library
/// as `ckptscope::`, and the library cannot name them.
const BINARY: &[&str] = &["cli"];

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
fn the_binarys_modules_are_the_top_layers_and_not_the_librarys() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let main = std::fs::read_to_string(src().join("main.rs")).unwrap();
    for (i, name) in BINARY.iter().enumerate() {
        assert_eq!(
            LAYERS[LAYERS.len() - BINARY.len() + i],
            *name,
            "the binary's modules sit above every module of the library"
        );
        assert!(
            main.lines().any(|l| l.trim() == format!("mod {name};")),
            "src/main.rs declares `mod {name};`"
        );
        assert!(
            !lib.lines()
                .any(|l| l.trim().ends_with(&format!("mod {name};"))),
            "src/lib.rs does not declare `{name}`: it belongs to the binary"
        );
    }
}

#[test]
fn modules_import_only_layers_below() {
    let mut violations = Vec::new();
    for (top, rel) in files() {
        let text = std::fs::read_to_string(src().join(&rel)).unwrap();
        let own = LAYERS.iter().position(|l| *l == top).unwrap_or(usize::MAX);
        let mut names = referenced(&text, "crate");
        if BINARY.contains(&top.as_str()) {
            names.extend(referenced(&text, "ckptscope"));
        }
        for name in names {
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

/// The module path of a file inside `src/`: `pickle/policy/mod.rs` is `pickle::policy`,
/// `pickle/policy/classify.rs` is `pickle::policy::classify`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut path: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if path.last().is_some_and(|n| n == "mod.rs") {
        path.pop();
    } else if let Some(last) = path.last_mut() {
        *last = last.trim_end_matches(".rs").to_string();
    }
    path
}

/// The file of module `path` (`src/a/b.rs` or `src/a/b/mod.rs`), if there is one.
fn module_file(path: &[String]) -> Option<PathBuf> {
    let (last, parent) = path.split_last()?;
    let folder: PathBuf = parent.iter().collect();
    [
        folder.join(format!("{last}.rs")),
        folder.join(last).join("mod.rs"),
    ]
    .into_iter()
    .find(|p| src().join(p).is_file())
}

/// What a file names of its siblings (the other children of its parent module): the first
/// level after `super::` and after the parent's full path.
fn sibling_references(text: &str, path: &[String]) -> BTreeSet<String> {
    let parent = path.split_last().map(|(_, p)| p).unwrap_or(&[]);
    let mut names = referenced(text, "super");
    if parent.is_empty() {
        names.extend(referenced(text, "crate"));
    } else {
        names.extend(referenced(text, &format!("crate::{}", parent.join("::"))));
    }
    names
}

#[test]
fn sibling_files_form_no_cycle() {
    // Nodes are modules; an edge joins two children of one module (a folder's files and
    // sub-folders, whose `mod.rs` speaks for them) when one names the other.
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for (_, rel) in files() {
        let path = module_path(&rel);
        let Some((own, parent)) = path.split_last() else {
            continue;
        };
        if parent.is_empty() {
            continue; // top-level modules are ordered by LAYERS
        }
        let text = std::fs::read_to_string(src().join(&rel)).unwrap();
        for name in sibling_references(&text, &path) {
            if &name == own {
                continue;
            }
            let mut sibling = parent.to_vec();
            sibling.push(name);
            if let Some(target) = module_file(&sibling) {
                edges.entry(rel.clone()).or_default().insert(target);
            }
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        let names: Vec<String> = cycle.iter().map(|p| p.display().to_string()).collect();
        panic!("sibling files import each other: {}", names.join(" -> "));
    }
}

/// A loop in `edges`, if there is one, from a node back to itself.
fn find_cycle(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
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
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut state, &mut Vec::new()))
}

#[test]
fn the_cycle_finder_reports_a_loop_through_a_folder() {
    let p = |s: &str| PathBuf::from(s);
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    edges
        .entry(p("pickle/container.rs"))
        .or_default()
        .insert(p("pickle/policy/mod.rs"));
    edges
        .entry(p("pickle/policy/mod.rs"))
        .or_default()
        .insert(p("pickle/torchscript.rs"));
    assert_eq!(find_cycle(&edges), None);
    edges
        .entry(p("pickle/torchscript.rs"))
        .or_default()
        .insert(p("pickle/container.rs"));
    let cycle = find_cycle(&edges).expect("the loop is found");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);
    assert_eq!(
        module_path(Path::new("pickle/policy/mod.rs")),
        ["pickle", "policy"]
    );
    let text = "use crate::pickle::torchscript::is_allowlisted;\nuse super::{compat, Runner};";
    let names: Vec<String> =
        sibling_references(text, &module_path(Path::new("pickle/policy/mod.rs")))
            .into_iter()
            .collect();
    assert_eq!(names, ["Runner", "compat", "torchscript"]);
}

/// What a module doc forbids: "Must not import: `a`, `b` and above (why)."
#[derive(Debug, Default, PartialEq)]
struct Forbidden {
    /// Names in backticks: sibling modules, top-level layers, or items of the parent module.
    names: Vec<String>,
    /// "Must not import: anything": no other top-level module and no sibling.
    anything: bool,
    /// "anything but `a`": the names it may import all the same.
    but: Vec<String>,
}

/// The "Must not import:" rules of a file's module doc (`//!` lines). Text in parentheses is
/// commentary; `` `x` and above `` (or `and everything above`) adds every layer above `x`.
/// A phrasing the test cannot read is an error, so that no rule is stated and not checked.
fn forbidden(text: &str) -> Result<Forbidden, String> {
    let doc: Vec<&str> = text
        .lines()
        .map(str::trim_start)
        .take_while(|l| l.starts_with("//!") || l.is_empty() || l.starts_with("#!"))
        .filter_map(|l| l.strip_prefix("//!"))
        .collect();
    let doc = doc
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = Forbidden::default();
    let lower = doc.to_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("must not import") {
        let start = from + at + "must not import".len();
        let Some(clause) = doc[start..].strip_prefix(':') else {
            return Err(format!(
                "state it as \"Must not import: `a`, `b`.\" (found \"{}\")",
                doc[from + at..].chars().take(60).collect::<String>()
            ));
        };
        // The clause ends with its sentence: a period outside backticks and parentheses.
        let (mut depth, mut ticks, mut end) = (0usize, false, clause.len());
        let mut plain = String::new();
        let chars: Vec<(usize, char)> = clause.char_indices().collect();
        for (i, &(pos, c)) in chars.iter().enumerate() {
            match c {
                '`' if depth == 0 => {
                    ticks = !ticks;
                    plain.push(c);
                }
                '(' if !ticks => depth += 1,
                ')' if !ticks => depth = depth.saturating_sub(1),
                '.' if !ticks
                    && depth == 0
                    && chars.get(i + 1).is_none_or(|(_, n)| n.is_whitespace()) =>
                {
                    end = pos;
                    break;
                }
                _ if depth == 0 => plain.push(c),
                _ => {}
            }
        }
        from = start + 1 + end;
        let mut plain = plain.trim();
        if plain == "anything" {
            out.anything = true;
            continue;
        }
        let listed_but = plain.strip_prefix("anything but ");
        if let Some(but) = listed_but {
            out.anything = true;
            plain = but;
        }
        let mut rest = plain;
        let mut found = false;
        while let Some(open) = rest.find('`') {
            let tail = &rest[open + 1..];
            let Some(close) = tail.find('`') else {
                return Err(format!("unclosed backtick in \"{plain}\""));
            };
            let name = &tail[..close];
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(format!("`{name}` is not one module or item name"));
            }
            rest = &tail[close + 1..];
            found = true;
            let above = ["and above", "and everything above"]
                .iter()
                .find_map(|w| rest.trim_start().strip_prefix(w));
            match above {
                Some(after) => {
                    let Some(level) = LAYERS.iter().position(|l| *l == name) else {
                        return Err(format!("`{name} and above`: `{name}` is not a layer"));
                    };
                    out.names
                        .extend(LAYERS[level..].iter().map(|s| s.to_string()));
                    rest = after;
                }
                None if listed_but.is_some() => out.but.push(name.to_string()),
                None => out.names.push(name.to_string()),
            }
        }
        let words = rest
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty() && *w != "and" && *w != "or");
        if !found || words.count() > 0 {
            return Err(format!(
                "\"Must not import: {plain}\": list names in backticks, commentary in parentheses"
            ));
        }
    }
    Ok(out)
}

#[test]
fn the_rule_reader_reads_lists_layers_and_commentary() {
    let doc = "//! Owns: x. Must not import: `write`, `verify` (they import it).\n\
               //! Must not import: `analysis` and\n//! everything above (`format::pytorch` is one).\n\
               use crate::a;";
    let f = forbidden(doc).unwrap();
    assert!(!f.anything);
    assert_eq!(&f.names[..2], ["write", "verify"]);
    assert_eq!(f.names[2], "analysis");
    assert_eq!(f.names.last().map(String::as_str), Some("cli"));
    assert!(!f.names.contains(&"format".to_string()));
    assert!(
        forbidden("//! Must not import: anything (a leaf).")
            .unwrap()
            .anything
    );
    let but = forbidden("//! Must not\n//! import: anything but `error` (a leaf).").unwrap();
    assert!(but.anything);
    assert_eq!(but.but, ["error"]);
    assert!(but.names.is_empty());
    assert!(forbidden("//! It must not import the app or any view.").is_err());
    assert!(forbidden("//! Must not import: `value` internals.").is_err());
    assert!(forbidden("//! Must not import: the policy's state.").is_err());
    assert_eq!(
        forbidden("/// Must not import: prose in an item doc.\n").unwrap(),
        Forbidden::default()
    );
}

/// True when the parent module's file declares an item called `name`.
fn parent_declares(path: &[String], name: &str) -> bool {
    let parent = path.split_last().map(|(_, p)| p).unwrap_or(&[]);
    let file = if parent.is_empty() {
        Some(PathBuf::from("lib.rs"))
    } else {
        module_file(parent)
    };
    let Some(text) = file.and_then(|f| std::fs::read_to_string(src().join(f)).ok()) else {
        return false;
    };
    ["struct", "enum", "fn", "trait", "type", "const", "static"]
        .iter()
        .any(|kw| {
            let needle = format!("{kw} {name}");
            text.match_indices(&needle).any(|(at, _)| {
                text[at + needle.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
            })
        })
}

#[test]
fn must_not_import_headers_hold() {
    let mut violations = Vec::new();
    let mut checked = 0;
    for (_, rel) in files() {
        let text = std::fs::read_to_string(src().join(&rel)).unwrap();
        let rule = match forbidden(&text) {
            Ok(rule) => rule,
            Err(why) => {
                violations.push(format!("src/{}: {why}", rel.display()));
                continue;
            }
        };
        let path = module_path(&rel);
        let siblings = sibling_references(&text, &path);
        let layers = referenced(&text, "crate");
        if rule.anything {
            checked += 1;
            let top = path.first().cloned().unwrap_or_default();
            let mut named: Vec<String> = layers
                .iter()
                .filter(|l| **l != top && LAYERS.contains(&l.as_str()))
                .cloned()
                .collect();
            named.extend(
                siblings
                    .iter()
                    .filter(|n| {
                        let mut sibling = path.clone();
                        sibling.pop();
                        sibling.push(n.to_string());
                        path.len() > 1 && module_file(&sibling).is_some()
                    })
                    .cloned(),
            );
            named.retain(|n| !rule.but.contains(n));
            if !named.is_empty() {
                violations.push(format!(
                    "src/{} imports nothing by its doc{}, but names {}",
                    rel.display(),
                    if rule.but.is_empty() {
                        String::new()
                    } else {
                        format!(" but {}", rule.but.join(", "))
                    },
                    named.join(", ")
                ));
            }
        }
        for name in &rule.names {
            checked += 1;
            let mut sibling = path.clone();
            sibling.pop();
            sibling.push(name.clone());
            let names_it = if module_file(&sibling).is_some() {
                siblings.contains(name)
            } else if LAYERS.contains(&name.as_str()) {
                layers.contains(name)
            } else if parent_declares(&path, name) {
                siblings.contains(name)
            } else {
                violations.push(format!(
                    "src/{}: \"must not import `{name}`\" names no sibling module, layer or item of its parent",
                    rel.display()
                ));
                continue;
            };
            if names_it {
                violations.push(format!(
                    "src/{} imports `{name}`, which its doc forbids",
                    rel.display()
                ));
            }
        }
    }
    assert!(checked > 40, "the headers were read ({checked} rules)");
    assert!(
        violations.is_empty(),
        "\"Must not import\" broken:\n{}",
        violations.join("\n")
    );
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
