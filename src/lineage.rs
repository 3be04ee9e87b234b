//! Version lineage: which checkpoint each one came from.
//!
//! There is no single standard, so every convention found in practice is read and normalised
//! into one [`Record`]: ckptscope's own keys (written by the converter and by `set-parent`),
//! ModelSpec, kohya sd-scripts, Hugging Face / PEFT configs beside the file, anemoi-style uuids
//! (also inside JSON-valued metadata), and Lightning's epoch/global_step. A folder is scanned by
//! reading headers only, and parents are linked by file name, path, declared hash, computed hash
//! or uuid into a DAG; a parent that is not found stays as a dangling node with what is known.
//!
//! A checkpoint's content id is the SHA-256 of its tensor data only (for safetensors, the bytes
//! after the header), so editing metadata keeps it. Ids are cached on disk per (path, size,
//! mtime), so a second look is instant.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Problem};
use crate::format::{Checkpoint, Format};
use crate::hash::{CacheDir, HashCache, HashKind};
use crate::progress::Progress;

/// How a parent is referred to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    /// A file name (`model-v1.safetensors`).
    Name,
    /// A path, relative to the child's folder or absolute.
    Path,
    /// A SHA-256 of the parent's file or tensor data.
    Sha256,
    /// A uuid the parent declares as its own.
    Uuid,
    /// A Hugging Face repository id (`meta-llama/Llama-3-8B`).
    HfRepo,
    /// A short hash of the AUTOMATIC1111 kind (not comparable to SHA-256).
    ShortHash,
}

/// One reference to a parent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ParentRef {
    /// How it refers.
    pub kind: RefKind,
    /// The value (a name, path, hash or uuid).
    pub value: String,
    /// The metadata key (or file) it was read from.
    pub via: String,
}

/// What a checkpoint says about itself and where it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    /// Display name (ModelSpec title, or the file name).
    pub name: String,
    /// Version label.
    pub version: Option<String>,
    /// When it was made (as written).
    pub created: Option<String>,
    /// Training step.
    pub step: Option<u64>,
    /// Training epoch.
    pub epoch: Option<u64>,
    /// Its own uuid.
    pub uuid: Option<String>,
    /// Hashes it declares for itself (normalised lowercase hex).
    pub own_hashes: Vec<String>,
    /// Architecture, when declared.
    pub architecture: Option<String>,
    /// Its parents.
    pub parents: Vec<ParentRef>,
}

fn norm_hash(s: &str) -> Option<String> {
    let h = s.trim().trim_start_matches("0x").to_ascii_lowercase();
    (h.len() >= 8 && h.bytes().all(|b| b.is_ascii_hexdigit())).then_some(h)
}

fn parse_u64(s: &str) -> Option<u64> {
    s.trim()
        .trim_matches('"')
        .parse::<f64>()
        .ok()
        .filter(|v| *v >= 0.0 && v.is_finite())
        .map(|v| v as u64)
}

/// `org/name` (names may hold dots, `Llama-3.1-8B`), not a relative file path.
fn looks_like_hub_repo(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    v.matches('/').count() == 1
        && !v.starts_with(['/', '.', '~'])
        && !v.contains('\\')
        && ![
            ".safetensors",
            ".bin",
            ".pt",
            ".pth",
            ".ckpt",
            ".pkl",
            ".json",
            ".gguf",
        ]
        .iter()
        .any(|e| lower.ends_with(e))
}

/// Classifies a free-text parent reference.
fn reference(value: &str, via: &str) -> Option<ParentRef> {
    let v = value.trim().trim_matches('"');
    if v.is_empty() || v == "None" || v == "null" {
        return None;
    }
    let kind = if let Some(h) = norm_hash(v).filter(|h| h.len() == 64) {
        return Some(ParentRef {
            kind: RefKind::Sha256,
            value: h,
            via: via.into(),
        });
    } else if looks_like_hub_repo(v) {
        RefKind::HfRepo
    } else if v.contains('/') || v.contains('\\') {
        RefKind::Path
    } else {
        RefKind::Name
    };
    Some(ParentRef {
        kind,
        value: v.to_string(),
        via: via.into(),
    })
}

/// Reads the lineage of a checkpoint from its metadata (and the configs beside `path`).
pub fn record(path: &Path, metadata: &[(String, String)]) -> Record {
    let get = |k: &str| {
        metadata
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut r = Record {
        name: get("modelspec.title")
            .map(str::to_string)
            .unwrap_or(file_name),
        version: get("version")
            .or(get("modelspec.version"))
            .map(str::to_string),
        created: get("created")
            .or(get("modelspec.date"))
            .map(str::to_string)
            .or_else(|| {
                get("ss_training_started_at").and_then(parse_u64).map(|s| {
                    crate::timefmt::rfc3339_utc(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(s),
                    )
                })
            })
            .or(get("ckptscope.converted_at").map(str::to_string)),
        step: get("step")
            .or(get("global_step"))
            .or(get("ss_steps"))
            .and_then(parse_u64),
        epoch: get("epoch").or(get("ss_epoch")).and_then(parse_u64),
        uuid: get("uuid").map(str::to_string),
        architecture: get("modelspec.architecture").map(str::to_string),
        ..Record::default()
    };
    for key in ["modelspec.hash_sha256", "sshs_model_hash", "hash_sha256"] {
        if let Some(h) = get(key).and_then(norm_hash) {
            r.own_hashes.push(h);
        }
    }
    let add = |r: &mut Record, p: Option<ParentRef>| {
        if let Some(p) = p
            && !r
                .parents
                .iter()
                .any(|q| q.kind == p.kind && q.value == p.value)
        {
            r.parents.push(p);
        }
    };
    // ckptscope's own keys and the documented general ones.
    add(
        &mut r,
        get("ckptscope.source").and_then(|v| reference(v, "ckptscope.source")),
    );
    add(
        &mut r,
        get("ckptscope.source_sha256").and_then(|v| reference(v, "ckptscope.source_sha256")),
    );
    add(&mut r, get("parent").and_then(|v| reference(v, "parent")));
    add(
        &mut r,
        get("parent_sha256").and_then(|v| reference(v, "parent_sha256")),
    );
    // ModelSpec: merged_from is a comma-separated list of names or hashes.
    if let Some(list) = get("modelspec.merged_from") {
        for part in list.split(',') {
            add(&mut r, reference(part, "modelspec.merged_from"));
        }
    }
    // kohya sd-scripts.
    add(
        &mut r,
        get("ss_sd_model_name").and_then(|v| reference(v, "ss_sd_model_name")),
    );
    add(
        &mut r,
        get("ss_new_sd_model_hash").and_then(|v| reference(v, "ss_new_sd_model_hash")),
    );
    if let Some(h) = get("ss_sd_model_hash")
        .and_then(norm_hash)
        .filter(|h| h.len() < 64)
    {
        add(
            &mut r,
            Some(ParentRef {
                kind: RefKind::ShortHash,
                value: h,
                via: "ss_sd_model_hash".into(),
            }),
        );
    }
    // Hugging Face base_model: a string or a JSON list.
    if let Some(v) = get("base_model") {
        match serde_json::from_str::<Vec<String>>(v) {
            Ok(list) => list
                .iter()
                .for_each(|b| add(&mut r, reference(b, "base_model"))),
            Err(_) => add(&mut r, reference(v, "base_model")),
        }
    }
    // anemoi-style uuids, at the top level or inside JSON-valued metadata.
    if let Some(p) = get("parent_uuid") {
        add(
            &mut r,
            Some(ParentRef {
                kind: RefKind::Uuid,
                value: p.to_string(),
                via: "parent_uuid".into(),
            }),
        );
    }
    for (key, value) in metadata {
        if !value.trim_start().starts_with('{') {
            continue;
        }
        let Ok(json) = serde_json::from_str::<serde_json::Value>(value) else {
            continue;
        };
        if let Some(u) = find_key(&json, "uuid", 0) {
            r.uuid.get_or_insert(u);
        }
        if let Some(p) = find_key(&json, "parent_uuid", 0) {
            add(
                &mut r,
                Some(ParentRef {
                    kind: RefKind::Uuid,
                    value: p,
                    via: format!("{key}.parent_uuid"),
                }),
            );
        }
    }
    // PEFT / transformers configs beside the file.
    if let Some(folder) = path.parent() {
        for (file, key) in [
            ("adapter_config.json", "base_model_name_or_path"),
            ("config.json", "_name_or_path"),
        ] {
            let Ok(text) = std::fs::read_to_string(folder.join(file)) else {
                continue;
            };
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            if let Some(v) = json.get(key).and_then(|v| v.as_str()) {
                add(&mut r, reference(v, &format!("{file}:{key}")));
            }
        }
    }
    r
}

fn find_key(v: &serde_json::Value, key: &str, depth: usize) -> Option<String> {
    if depth > 8 {
        return None;
    }
    match v {
        serde_json::Value::Object(map) => map
            .get(key)
            .and_then(|x| x.as_str().map(str::to_string))
            .or_else(|| map.values().find_map(|x| find_key(x, key, depth + 1))),
        _ => None,
    }
}

// ---- the family -------------------------------------------------------------------------------

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

fn is_checkpoint_name(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    [".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".pkl"]
        .iter()
        .any(|e| name.ends_with(e))
        || name.ends_with(".safetensors.index.json")
}

/// Reads the lineage record of one file (headers only; pickles through the safe engine).
pub fn read_record(path: &Path) -> Result<(Record, Format), Error> {
    let ckpt = crate::format::open(path)?;
    let pairs = crate::analysis::diff::metadata_pairs(&ckpt);
    Ok((record(path, &pairs), ckpt.format))
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
            let found = (0..n).find(|&i| {
                if i == child {
                    return false;
                }
                let Some(path) = &g.nodes[i].path else {
                    return false;
                };
                match r.kind {
                    RefKind::Name => name_of(path) == r.value || g.nodes[i].record.name == r.value,
                    RefKind::Path => {
                        let candidate = child_dir
                            .as_ref()
                            .map(|d| d.join(&r.value))
                            .unwrap_or_else(|| PathBuf::from(&r.value));
                        candidate
                            .canonicalize()
                            .ok()
                            .is_some_and(|c| Some(c) == canon[i])
                    }
                    RefKind::Sha256 => hashes[i].contains(&r.value),
                    RefKind::Uuid => g.nodes[i].record.uuid.as_deref() == Some(r.value.as_str()),
                    RefKind::HfRepo | RefKind::ShortHash => false,
                }
            });
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

// ---- set-parent ---------------------------------------------------------------------------------

/// What `set_parent` wrote.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SetParentReport {
    /// The file rewritten.
    pub file: PathBuf,
    /// Keys written.
    pub keys: Vec<(String, String)>,
    /// Content id before and after (equal: only the header changed).
    pub content_id: String,
}

/// Writes `parent`, `parent_sha256` (whole-file SHA-256 of the parent) into `file`'s
/// `__metadata__`, rewriting only the header: the data bytes are copied unchanged into a
/// temporary file that replaces `file` atomically once it is verified.
pub fn set_parent(
    file: &Path,
    parent: &Path,
    cache: &CacheDir,
    progress: &Progress,
) -> Result<SetParentReport, Error> {
    let ckpt = crate::format::open(file)?;
    if ckpt.format != Format::Safetensors {
        return Err(Error::Unsupported {
            path: file.to_path_buf(),
            what: format!(
                "set-parent writes safetensors metadata; this is a {}",
                ckpt.format.label()
            ),
        });
    }
    if !parent.is_file() {
        return Err(Error::io(
            "open",
            parent,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such parent file"),
        ));
    }
    let parent_ref = match (file.parent(), parent.parent()) {
        (Some(a), Some(b)) if a.canonicalize().ok() == b.canonicalize().ok() => parent
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        _ => parent
            .canonicalize()
            .unwrap_or_else(|_| parent.to_path_buf())
            .to_string_lossy()
            .into_owned(),
    };
    let mut cache = HashCache::load(cache);
    let parent_sha = cache.hash_of(parent, HashKind::File, progress)?;
    cache.save();
    let keys = vec![
        ("parent".to_string(), parent_ref),
        ("parent_sha256".to_string(), parent_sha),
    ];
    let mut metadata: Vec<(String, String)> = ckpt
        .metadata
        .iter()
        .filter(|(k, _)| !keys.iter().any(|(n, _)| n == k))
        .cloned()
        .collect();
    metadata.extend(keys.iter().cloned());
    let before = crate::hash::content_id(&ckpt, &Progress::default())?;
    rewrite_metadata(&ckpt, &metadata)?;
    let after = crate::hash::content_id(&crate::format::open(file)?, &Progress::default())?;
    if before != after {
        return Err(Error::invalid(
            file,
            Problem::Other("the data changed while rewriting the header".into()),
        ));
    }
    Ok(SetParentReport {
        file: file.to_path_buf(),
        keys,
        content_id: after,
    })
}

/// Replaces a single safetensors file's `__metadata__` (tensor entries unchanged), atomically.
pub fn rewrite_metadata(ckpt: &Checkpoint, metadata: &[(String, String)]) -> Result<(), Error> {
    let path = &ckpt.path;
    let source = ckpt
        .sources
        .first()
        .ok_or_else(|| Error::invalid(path, Problem::Other("no source".into())))?;
    let bytes = source.mapped()?.bytes();
    let header_end = usize::try_from(source.header_size)
        .ok()
        .and_then(|n| n.checked_add(8))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| Error::invalid(path, Problem::Other("header out of range".into())))?;
    let old_header = bytes.get(8..header_end).unwrap_or_default();
    let old: serde_json::Value = serde_json::from_slice(old_header).map_err(|e| {
        Error::invalid(
            path,
            Problem::HeaderNotJson {
                message: e.to_string(),
            },
        )
    })?;
    let mut text = String::from("{\"__metadata__\":{");
    for (i, (k, v)) in metadata.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(k).unwrap_or_default());
        text.push(':');
        text.push_str(&serde_json::to_string(v).unwrap_or_default());
    }
    text.push('}');
    for t in &ckpt.tensors {
        if let Some(entry) = old.get(&t.name) {
            text.push(',');
            text.push_str(&serde_json::to_string(&t.name).unwrap_or_default());
            text.push(':');
            text.push_str(&entry.to_string());
        }
    }
    text.push('}');
    let mut header = text.into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let data = bytes.get(header_end..).unwrap_or_default();
    let werr = |e: std::io::Error| Error::io("write", path, e);
    // A symbolic link (the Hugging Face cache's snapshots/<rev>/x -> ../../blobs/<sha>) stays a
    // link: its target is rewritten, keeping its mode.
    let mut tmp = crate::fsutil::AtomicFile::new(path).map_err(werr)?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 22, tmp.file_mut());
        w.write_all(&(header.len() as u64).to_le_bytes())
            .map_err(werr)?;
        w.write_all(&header).map_err(werr)?;
        w.write_all(data).map_err(werr)?;
        w.flush().map_err(werr)?;
    }
    tmp.file().sync_all().map_err(werr)?;
    // Verify before replacing: the new file opens and its data section is the old one.
    let check = crate::format::open(&tmp.reopen_path())?;
    let new_source = check
        .sources
        .first()
        .ok_or_else(|| Error::invalid(path, Problem::Other("no source".into())))?;
    let new_bytes = new_source.mapped()?.bytes();
    if new_bytes.get(8 + header.len()..) != Some(data) || check.tensors.len() != ckpt.tensors.len()
    {
        return Err(Error::invalid(
            path,
            Problem::Other("the rewritten file did not verify; the original is unchanged".into()),
        ));
    }
    drop(check);
    tmp.commit(crate::fsutil::Replace::Always).map_err(werr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn conventions_are_normalised() {
        let r = record(
            Path::new("/x/lora.safetensors"),
            &pairs(&[
                ("modelspec.title", "My LoRA"),
                ("modelspec.date", "2025-03-01"),
                (
                    "modelspec.hash_sha256",
                    "0xABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
                ),
                (
                    "modelspec.merged_from",
                    "base-a.safetensors, base-b.safetensors",
                ),
                ("ss_sd_model_name", "v1-5-pruned.ckpt"),
                ("ss_sd_model_hash", "e1441589"),
                ("ss_steps", "1500"),
                ("ss_epoch", "3"),
                (
                    "config",
                    r#"{"run": {"uuid": "u-2", "parent_uuid": "u-1"}}"#,
                ),
            ]),
        );
        assert_eq!(r.name, "My LoRA");
        assert_eq!(r.created.as_deref(), Some("2025-03-01"));
        assert_eq!((r.step, r.epoch), (Some(1500), Some(3)));
        assert_eq!(r.uuid.as_deref(), Some("u-2"));
        assert_eq!(
            r.own_hashes,
            ["abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"]
        );
        let kinds: Vec<(RefKind, &str)> = r
            .parents
            .iter()
            .map(|p| (p.kind, p.value.as_str()))
            .collect();
        assert!(kinds.contains(&(RefKind::Name, "base-a.safetensors")));
        assert!(kinds.contains(&(RefKind::Name, "base-b.safetensors")));
        assert!(kinds.contains(&(RefKind::Name, "v1-5-pruned.ckpt")));
        assert!(kinds.contains(&(RefKind::ShortHash, "e1441589")));
        assert!(kinds.contains(&(RefKind::Uuid, "u-1")));
    }

    #[test]
    fn references_are_classified() {
        assert_eq!(
            reference("meta-llama/Llama-3-8B", "k").unwrap().kind,
            RefKind::HfRepo
        );
        assert_eq!(
            reference("../base/model.safetensors", "k").unwrap().kind,
            RefKind::Path
        );
        assert_eq!(reference("model.pt", "k").unwrap().kind, RefKind::Name);
        assert_eq!(
            reference(&"a".repeat(64), "k").unwrap().kind,
            RefKind::Sha256
        );
        assert!(reference("None", "k").is_none());
    }
}
