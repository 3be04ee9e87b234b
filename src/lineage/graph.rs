//! Linking records into a lineage graph: a folder is scanned by reading headers only, and
//! parents are linked by file name, path, declared hash, computed hash or uuid into a DAG; a
//! parent that is not found stays as a dangling node with what is known.
//!
//! Owns: [`Graph`], [`family`]. Must not import: `set_parent`.
//!
//! `clippy::indexing_slicing` is allowed here: node indexes are positions in the graph's own node
//! list.

#![allow(clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::format::Format;
use crate::hash::{CacheDir, HashCache, HashKind};
use crate::lineage::records::{ParentRef, Record, RefKind, read_record};
use crate::progress::Progress;

/// A node of the lineage graph.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Node {
    /// The file; `None` for a parent that was referenced but not found.
    pub path: Option<PathBuf>,
    /// Content id, when known (cached or computed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Display name.
    pub name: String,
    /// Version label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Creation date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Training step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
    /// Training epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Container format.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "format_opt")]
    pub format: Option<Format>,
    /// For dangling nodes: how they were referred to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<ParentRef>,
    /// The full record (not in the JSON document).
    #[serde(skip)]
    pub record: Record,
}

fn format_opt<S: serde::Serializer>(f: &Option<Format>, s: S) -> Result<S::Ok, S::Error> {
    match f {
        Some(f) => s.serialize_str(f.json_name()),
        None => s.serialize_none(),
    }
}

/// A parent link.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Edge {
    /// Index of the child node.
    pub child: usize,
    /// Index of the parent node.
    pub parent: usize,
    /// The metadata key that names the parent, and how it matched (`parent (name)`).
    pub via: String,
}

/// Checkpoints and their parent links.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Graph {
    /// Every checkpoint found, then every dangling parent.
    pub nodes: Vec<Node>,
    /// Child → parent links.
    pub edges: Vec<Edge>,
    /// Versions of one run (same name apart from numbers, or a uuid chain), oldest first.
    pub timelines: Vec<Vec<usize>>,
}

impl Graph {
    /// Index of the node for `path`.
    pub fn find(&self, path: &Path) -> Option<usize> {
        let canon = path.canonicalize().ok();
        self.nodes.iter().position(|n| {
            n.path.as_deref() == Some(path)
                || (canon.is_some() && n.path.as_ref().and_then(|p| p.canonicalize().ok()) == canon)
        })
    }

    /// Parents of node `i`, with the link description.
    pub fn parents(&self, i: usize) -> impl Iterator<Item = (usize, &str)> {
        self.edges
            .iter()
            .filter(move |e| e.child == i)
            .map(|e| (e.parent, e.via.as_str()))
    }

    /// Children of node `i`.
    pub fn children(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.edges
            .iter()
            .filter(move |e| e.parent == i)
            .map(|e| e.child)
    }
}

/// Options of a lineage scan.
#[derive(Clone, Debug, Default)]
pub struct LineageOptions {
    /// More folders to scan (and files, like recent files).
    pub extra: Vec<PathBuf>,
    /// Compute (and cache) hashes of candidate parents to resolve hash references; without it
    /// only cached and declared hashes are used.
    pub hash: bool,
    /// Where hashes computed before are remembered (and new ones written).
    pub cache: CacheDir,
}

/// Files lineage looks at: the formats whose registry entry carries lineage metadata.
fn is_checkpoint_name(p: &Path) -> bool {
    crate::format::registry::lineage_name(p)
}

/// The lineage of `path`: a file (its folder is scanned) or a folder.
pub fn family(path: &Path, options: &LineageOptions, progress: &Progress) -> Result<Graph, Error> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut roots: Vec<PathBuf> = vec![if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().unwrap_or(Path::new(".")).to_path_buf()
    }];
    roots.extend(options.extra.iter().cloned());
    for root in &roots {
        if root.is_file() {
            files.push(root.clone());
            continue;
        }
        let entries = std::fs::read_dir(if root.as_os_str().is_empty() {
            Path::new(".")
        } else {
            root
        })
        .map_err(|e| Error::io("list", root, e))?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_file() && is_checkpoint_name(&p) {
                files.push(p);
            }
        }
    }
    if path.is_file() && !files.iter().any(|f| f == path) {
        files.push(path.to_path_buf());
    }
    // Shards belong to their index: list the model once.
    let shard_names: Vec<String> = files
        .iter()
        .filter(|f| f.to_string_lossy().ends_with(".safetensors.index.json"))
        .filter_map(|f| std::fs::read(f).ok())
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .flat_map(|v| {
            v.get("weight_map")
                .and_then(|m| m.as_object())
                .map(|m| {
                    m.values()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .collect();
    files.retain(|f| {
        !shard_names
            .iter()
            .any(|s| f.file_name().is_some_and(|n| n == s.as_str()))
    });
    files.sort();
    files.dedup();

    let mut cache = HashCache::load(&options.cache);
    let mut g = Graph::default();
    for f in &files {
        let Ok((record, format)) = read_record(f) else {
            continue;
        };
        g.nodes.push(Node {
            path: Some(f.clone()),
            id: cache.get(f, HashKind::Content),
            name: record.name.clone(),
            version: record.version.clone(),
            created: record.created.clone(),
            step: record.step,
            epoch: record.epoch,
            format: Some(format),
            unresolved: None,
            record,
        });
    }
    link(&mut g, options, &mut cache, progress);
    cache.save();
    g.timelines = timelines(&g);
    Ok(g)
}

/// References that describe the same parent in one convention (a name and a hash of it);
/// `None` for references that each name a parent of their own (`merged_from` lists).
fn ref_group(via: &str) -> Option<&'static str> {
    match via {
        "ckptscope.source" | "ckptscope.source_sha256" => Some("ckptscope"),
        "parent" | "parent_sha256" => Some("parent"),
        "ss_sd_model_name" | "ss_new_sd_model_hash" | "ss_sd_model_hash" => Some("kohya"),
        _ => None,
    }
}

fn kind_word(kind: RefKind) -> &'static str {
    match kind {
        RefKind::Name => "name",
        RefKind::Path => "path",
        RefKind::Sha256 => "sha256",
        RefKind::Uuid => "uuid",
        RefKind::HfRepo => "hub repo",
        RefKind::ShortHash => "short hash",
    }
}

fn link(g: &mut Graph, options: &LineageOptions, cache: &mut HashCache, progress: &Progress) {
    let n = g.nodes.len();
    let name_of = |p: &Path| {
        p.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let canon: Vec<Option<PathBuf>> = g
        .nodes
        .iter()
        .map(|n| n.path.as_ref().and_then(|p| p.canonicalize().ok()))
        .collect();
    // Hashes known for each node without reading data: declared ones, and cached ones.
    let mut hashes: Vec<Vec<String>> = g
        .nodes
        .iter()
        .map(|node| {
            let mut h = node.record.own_hashes.clone();
            if let Some(p) = &node.path {
                h.extend(cache.get(p, HashKind::File));
                h.extend(cache.get(p, HashKind::Content));
            }
            h
        })
        .collect();
    let needs_hash = g
        .nodes
        .iter()
        .any(|n| n.record.parents.iter().any(|p| p.kind == RefKind::Sha256));
    if options.hash && needs_hash {
        for (i, node) in g.nodes.iter().enumerate() {
            let Some(p) = &node.path else { continue };
            for kind in [HashKind::File, HashKind::Content] {
                if let Ok(h) = cache.hash_of(p, kind, progress)
                    && !hashes[i].contains(&h)
                {
                    hashes[i].push(h);
                }
            }
        }
    }
    // Every node indexed once by each way a reference can name it, in node order (a reference
    // resolves to the first node it names, as a scan in order would): linking is then a lookup
    // per reference, and each path is canonicalised once.
    let mut by: HashMap<(RefKind, String), Vec<usize>> = HashMap::new();
    for (i, node) in g.nodes.iter().enumerate() {
        let Some(path) = &node.path else { continue };
        let mut keys = vec![(RefKind::Name, name_of(path))];
        if !node.record.name.is_empty() {
            keys.push((RefKind::Name, node.record.name.clone()));
        }
        if let Some(c) = &canon[i] {
            keys.push((RefKind::Path, c.to_string_lossy().into_owned()));
        }
        keys.extend(hashes[i].iter().map(|h| (RefKind::Sha256, h.clone())));
        if let Some(u) = &node.record.uuid {
            keys.push((RefKind::Uuid, u.clone()));
        }
        for key in keys {
            let list = by.entry(key).or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    let mut dangling: HashMap<(RefKind, String), usize> = HashMap::new();
    let mut edges: Vec<Edge> = Vec::new();
    for child in 0..n {
        let child_dir = g.nodes[child]
            .path
            .as_ref()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let refs = g.nodes[child].record.parents.clone();
        // A converted file names its source twice (name and hash): one edge per parent, with
        // every reference that matched it.
        let mut found_for: Vec<(usize, Vec<String>)> = Vec::new();
        let mut unresolved: Vec<&ParentRef> = Vec::new();
        for r in &refs {
            let key = match r.kind {
                RefKind::Path => child_dir
                    .as_ref()
                    .map(|d| d.join(&r.value))
                    .unwrap_or_else(|| PathBuf::from(&r.value))
                    .canonicalize()
                    .ok()
                    .map(|c| c.to_string_lossy().into_owned()),
                RefKind::HfRepo | RefKind::ShortHash => None,
                _ => Some(r.value.clone()),
            };
            let found = key
                .and_then(|k| by.get(&(r.kind, k)))
                .and_then(|list| list.iter().copied().find(|&i| i != child));
            let via = format!("{} ({})", r.via, kind_word(r.kind));
            match found {
                Some(p) => match found_for.iter_mut().find(|(q, _)| *q == p) {
                    Some((_, vias)) => vias.push(via),
                    None => found_for.push((p, vec![via])),
                },
                None => unresolved.push(r),
            }
        }
        let resolved_groups: Vec<&str> = refs
            .iter()
            .filter(|r| !unresolved.iter().any(|u| std::ptr::eq(*u, *r)))
            .filter_map(|r| ref_group(&r.via))
            .collect();
        let mut dangling_groups: Vec<&str> = Vec::new();
        for r in unresolved {
            // References of one convention (name + hash) name one parent: if one of them
            // resolved, or one already made a dangling node, the others add nothing.
            if let Some(group) = ref_group(&r.via) {
                if resolved_groups.contains(&group) || dangling_groups.contains(&group) {
                    continue;
                }
                dangling_groups.push(group);
            }
            let key = (r.kind, r.value.clone());
            let parent = *dangling.entry(key).or_insert_with(|| {
                g.nodes.push(Node {
                    path: None,
                    id: None,
                    name: if r.kind == RefKind::Sha256 {
                        format!("sha256 {}…", &r.value[..12.min(r.value.len())])
                    } else {
                        r.value.clone()
                    },
                    version: None,
                    created: None,
                    step: None,
                    epoch: None,
                    format: None,
                    unresolved: Some(r.clone()),
                    record: Record::default(),
                });
                g.nodes.len() - 1
            });
            found_for.push((parent, vec![format!("{} ({})", r.via, kind_word(r.kind))]));
        }
        for (parent, vias) in found_for {
            edges.push(Edge {
                child,
                parent,
                via: vias.join(", "),
            });
        }
    }
    g.edges = edges;
}

/// Groups versions of one run: file names equal once digits are removed (`checkpoint-1000`,
/// `checkpoint-2000`), ordered by step, then creation date, then name.
fn timelines(g: &Graph) -> Vec<Vec<usize>> {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let Some(p) = &n.path else { continue };
        let name = p
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.chars().any(|c| c.is_ascii_digit()) {
            continue;
        }
        let key: String = name.chars().filter(|c| !c.is_ascii_digit()).collect();
        groups.entry(key).or_default().push(i);
    }
    let step_of = |i: usize| {
        g.nodes[i].step.or_else(|| {
            // The last number in the file name.
            let name = g.nodes[i]
                .path
                .as_ref()?
                .file_stem()?
                .to_string_lossy()
                .into_owned();
            name.rsplit(|c: char| !c.is_ascii_digit())
                .find(|s| !s.is_empty())?
                .parse()
                .ok()
        })
    };
    groups
        .into_values()
        .filter(|v| v.len() >= 2)
        .map(|mut v| {
            v.sort_by(|&a, &b| {
                step_of(a)
                    .cmp(&step_of(b))
                    .then(g.nodes[a].created.cmp(&g.nodes[b].created))
                    .then(g.nodes[a].name.cmp(&g.nodes[b].name))
            });
            v
        })
        .collect()
}
