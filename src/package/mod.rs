//! Model folders as packages: a training run's output (`config.json`, weights, optimizer and
//! scheduler state, tokenizer, `checkpoint-N/` folders) seen as one thing.
//!
//! [`open_package`] lists a folder, gives every file a [`Role`] (from its name, else its
//! content), a format detected by content, a scan verdict for every file that can hold code, the
//! totals by role, a summary of `config.json` and the run's checkpoints in step order. It reads
//! headers and pickles only, never tensor data, and never executes anything: its cost is the
//! folder listing plus one `scan` per checkpoint file.
//!
//! [`convert_all`] converts every weight-bearing pickle of a package to safetensors;
//! [`inference`] writes the part of a package inference needs.

pub mod convert_all;
pub mod inference;
pub mod roles;
pub mod run;
pub mod timeline;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::Error;
use crate::format::{Format, MappedFile};
use crate::limits::{Limits, MAX_PACKAGE_JSON};
use crate::pickle::compat::WeightsOnly;
use crate::pickle::policy::{Finding, Policy, Verdict};
use crate::progress::Progress;
use crate::scan::{Skipped, checkpoint_name, list_folder, scan_file};

pub use roles::Role;
pub use timeline::{PointKind, RunPoint};

/// How to look at a package.
#[derive(Clone, Debug, Default)]
pub struct PackageOptions {
    /// Allowlist additions for the scans.
    pub policy: Policy,
    /// Reading limits, for each file.
    pub limits: Limits,
}

/// A model folder.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Package {
    /// The folder.
    #[serde(serialize_with = "crate::fsutil::serialize_path")]
    pub root: PathBuf,
    /// Every regular file under it, by relative path, in path order.
    pub files: Vec<PackageFile>,
    /// Paths not listed (FIFOs, hidden folders, unreadable entries) and why.
    pub skipped: Vec<Skipped>,
    /// Sums over the files.
    pub totals: Totals,
    /// `config.json` summarised, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigSummary>,
    /// The run's checkpoints, by step.
    pub timeline: Vec<RunPoint>,
}

/// One file of a package.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PackageFile {
    /// Relative to the package.
    #[serde(serialize_with = "crate::fsutil::serialize_path")]
    pub path: PathBuf,
    /// What it is for.
    #[serde(serialize_with = "role_name")]
    pub role: Role,
    /// What its content is.
    #[serde(serialize_with = "format_name")]
    pub format: Format,
    /// Its size.
    pub bytes: u64,
    /// What the scan found, for files that can hold code.
    pub check: Check,
    /// Tensors it holds (for weights; a sharded index counts its whole model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tensors: Option<usize>,
    /// Elements of those tensors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<u64>,
    /// For a shard: the index that lists it.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::fsutil::serialize_opt_path"
    )]
    pub model: Option<PathBuf>,
    /// Why the weights could not be listed, when they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// What a package's scan says about one file.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Check {
    /// Scanned: a verdict, its reasons, and for pickles whether `torch.load(weights_only=True)`
    /// loads it.
    Scanned {
        /// The verdict.
        verdict: Verdict,
        /// Why, worst first.
        findings: Vec<Finding>,
        /// The weights-only answer, for pickle-based files.
        #[serde(skip_serializing_if = "Option::is_none")]
        weights_only: Option<WeightsOnly>,
    },
    /// A file meant to be a checkpoint (by content or name) that could not be judged: nothing
    /// can be promised about it.
    NotScanned {
        /// Why.
        reason: String,
    },
    /// Not a checkpoint or pickle by content or name (JSON, text, a tokenizer model): not
    /// scanned, and not called safe either.
    NotCheckpoint,
}

impl Check {
    /// The verdict, for scanned files.
    pub fn verdict(&self) -> Option<Verdict> {
        match self {
            Check::Scanned { verdict, .. } => Some(*verdict),
            _ => None,
        }
    }

    /// The weights-only answer, for scanned pickles.
    pub fn weights_only(&self) -> Option<&WeightsOnly> {
        match self {
            Check::Scanned { weights_only, .. } => weights_only.as_ref(),
            _ => None,
        }
    }
}

/// Files and bytes of one role.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RoleTotal {
    /// The role.
    #[serde(serialize_with = "role_name")]
    pub role: Role,
    /// Files with it.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// Sums over a package.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Totals {
    /// Files listed.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// By role, in [`Role::ALL`] order, roles with files only.
    pub by_role: Vec<RoleTotal>,
    /// Pickle-based files (they can run code when loaded with `torch.load`).
    pub pickle_files: usize,
    /// Their bytes.
    pub pickle_bytes: u64,
    /// Files in formats that hold no code (safetensors, GGUF, ONNX, NumPy, JSON, text).
    pub safe_format_files: usize,
    /// Their bytes.
    pub safe_format_bytes: u64,
    /// Files scanned, by verdict.
    pub safe: usize,
    /// Files scanned suspicious.
    pub suspicious: usize,
    /// Files scanned dangerous.
    pub dangerous: usize,
    /// Checkpoint files that could not be judged.
    pub not_scanned: usize,
}

impl Totals {
    /// The exit status of `ckptscope info FOLDER`: 2 when a file that claims to be a model
    /// could not be judged (nothing can be promised about the folder), else 0.
    pub fn exit_code(&self) -> u8 {
        if self.not_scanned > 0 { 2 } else { 0 }
    }

    /// The worst verdict among scanned files; `None` when a file could not be scanned (nothing
    /// can be promised) or nothing was scanned.
    pub fn verdict(&self) -> Option<Verdict> {
        if self.not_scanned > 0 {
            None
        } else if self.dangerous > 0 {
            Some(Verdict::Dangerous)
        } else if self.suspicious > 0 {
            Some(Verdict::Suspicious)
        } else if self.safe > 0 {
            Some(Verdict::Safe)
        } else {
            None
        }
    }
}

/// The keys of `config.json` a summary shows, in this order, when present.
pub const CONFIG_KEYS: &[&str] = &[
    "architectures",
    "model_type",
    "torch_dtype",
    "dtype",
    "transformers_version",
    "_diffusers_version",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "tie_word_embeddings",
    "quantization_config",
];

/// `config.json` summarised: the keys of [`CONFIG_KEYS`] it has, with their values as written.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ConfigSummary {
    /// The file, relative to the package.
    #[serde(serialize_with = "crate::fsutil::serialize_path")]
    pub path: PathBuf,
    /// `(key, value)` in [`CONFIG_KEYS`] order.
    pub entries: Vec<(String, serde_json::Value)>,
    /// Why the file could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

fn role_name<S: serde::Serializer>(r: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.json_name())
}

fn format_name<S: serde::Serializer>(f: &Format, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(f.json_name())
}

impl Package {
    /// The file at a relative path (files are kept in path order: a binary search).
    pub fn file(&self, relative: &Path) -> Option<&PackageFile> {
        let i = self
            .files
            .binary_search_by(|f| f.path.as_path().cmp(relative))
            .ok()?;
        self.files.get(i)
    }

    /// The verdict a file's content gets: its own, or for a sharded index the worst of its
    /// shards' (`None` when one of them could not be scanned).
    pub fn verdict_of(&self, file: &PackageFile) -> Option<Verdict> {
        if file.role != Role::WeightsIndex {
            return file.check.verdict();
        }
        let shards: Vec<&PackageFile> = self
            .files
            .iter()
            .filter(|f| f.model.as_deref() == Some(file.path.as_path()))
            .collect();
        if shards.is_empty() {
            return None;
        }
        shards
            .iter()
            .map(|s| s.check.verdict())
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max()
    }

    /// A file's path on disk.
    pub fn absolute(&self, relative: &Path) -> PathBuf {
        self.root.join(relative)
    }
}

/// Reads a JSON file of a package, bounded by [`MAX_PACKAGE_JSON`].
pub fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > MAX_PACKAGE_JSON {
        return Err(format!(
            "{len} bytes, more than the {MAX_PACKAGE_JSON}-byte limit for JSON files"
        ));
    }
    let text = std::fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&text).map_err(|e| format!("not JSON: {e}"))
}

/// Looks at a folder as a package. `progress` counts files; cancelling it stops with
/// [`Error::Cancelled`].
pub fn open_package(
    dir: &Path,
    options: &PackageOptions,
    progress: &Progress,
) -> Result<Package, Error> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::io("read", dir, e))?;
    if !meta.is_dir() {
        return Err(Error::Unsupported {
            path: dir.to_path_buf(),
            what: "not a folder".into(),
        });
    }
    let listing = list_folder(dir, true);
    let mut skipped = listing.special;
    skipped.extend(listing.errors.into_iter().map(|e| Skipped {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    }));
    let relative: Vec<PathBuf> = listing
        .files
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap_or(p).to_path_buf())
        .collect();

    // Shards first: an index names them, and their role comes from it.
    let mut shard_of: HashMap<PathBuf, PathBuf> = HashMap::new();
    for rel in &relative {
        if roles::by_name(rel) == Some(Role::WeightsIndex) {
            let folder = rel.parent().unwrap_or(Path::new(""));
            if let Ok(names) = crate::format::sharded::shard_names(&dir.join(rel), &options.limits)
            {
                for name in names {
                    shard_of.insert(folder.join(name), rel.clone());
                }
            }
        }
    }

    progress.add_total(relative.len() as u64);
    let files: Vec<Result<PackageFile, Error>> = relative
        .par_iter()
        .map(|rel| {
            if progress.is_cancelled() {
                return Err(Error::Cancelled {
                    path: dir.to_path_buf(),
                });
            }
            let file = inspect(dir, rel, shard_of.get(rel), options);
            progress.add_done(1);
            Ok(file)
        })
        .collect();
    let mut files = files.into_iter().collect::<Result<Vec<_>, _>>()?;
    // The listing is sorted already; this keeps [`Package::file`]'s binary search true by
    // construction (a sorted slice costs one pass).
    files.sort_by(|a, b| a.path.cmp(&b.path));
    group_saved_models(&mut files);

    let mut totals = totals(&files);
    // A path named like a model that is not a regular file (a FIFO `model.pt`, a dangling
    // `model.safetensors` link) claims a model that cannot be judged: the folder is incomplete.
    for s in skipped.iter_mut() {
        if let Some(why) = crate::scan::unopened_model(s) {
            totals.not_scanned += 1;
            s.reason = format!("not scanned: {why}");
        }
    }
    let timeline = run_timeline(dir, &files);
    let config = config_summary(dir, &files, &timeline);
    Ok(Package {
        root: dir.to_path_buf(),
        files,
        skipped,
        totals,
        config,
        timeline,
    })
}

/// A TensorFlow SavedModel folder is one model: its `saved_model.pb` stands for it (not
/// scanned until ckptscope reads SavedModels), and every other file under the folder belongs to
/// it (`model`), instead of being judged one by one.
fn group_saved_models(files: &mut [PackageFile]) {
    let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
    for root in crate::scan::saved_models(&paths) {
        let Some(main) = paths
            .iter()
            .filter(|p| p.parent() == Some(root.as_path()))
            .find(|p| {
                crate::format::registry::claimed_by_name(p)
                    .is_some_and(|e| e.format == Format::TfSavedModel)
            })
            .cloned()
        else {
            continue;
        };
        for f in files
            .iter_mut()
            .filter(|f| crate::scan::is_saved_model_part(&root, &f.path))
        {
            f.format = Format::TfSavedModel;
            f.tensors = None;
            f.parameters = None;
            f.problem = None;
            if f.path == main {
                f.role = Role::Weights;
                f.check = Check::NotScanned {
                    reason: crate::format::registry::saved_model_not_read(),
                };
            } else {
                f.role = Role::WeightsShard;
                f.model = Some(main.clone());
                f.check = Check::NotCheckpoint;
            }
        }
    }
}

/// One file: its format, role, scan and, for weights, its tensors.
fn inspect(
    dir: &Path,
    rel: &Path,
    shard_of: Option<&PathBuf>,
    options: &PackageOptions,
) -> PackageFile {
    let path = dir.join(rel);
    let mut file = PackageFile {
        path: rel.to_path_buf(),
        role: Role::Other,
        format: Format::Unknown,
        bytes: 0,
        check: Check::NotCheckpoint,
        tensors: None,
        parameters: None,
        model: shard_of.cloned(),
        problem: None,
    };
    let mapped = match MappedFile::open(&path) {
        Ok(m) => m,
        Err(e) => {
            file.bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            file.role = roles::by_name(rel).unwrap_or(Role::Other);
            file.check = Check::NotScanned {
                reason: e.to_string(),
            };
            return file;
        }
    };
    file.bytes = mapped.len();
    file.format = crate::format::registry::identify(&path, mapped.bytes());
    drop(mapped);
    let named = roles::by_name(rel);
    // Judge everything that is a checkpoint by content or by name (a `.bin` of unknown content
    // is not scanned, and says so); leave JSON, text and compressed logs alone.
    let is_checkpoint = !matches!(
        file.format,
        Format::Unknown | Format::SafetensorsSharded | Format::Compressed
    ) || (checkpoint_name(rel) && named != Some(Role::WeightsIndex));
    if is_checkpoint {
        file.check = match scan_file(&path, &options.policy, &options.limits) {
            Ok(r) => Check::Scanned {
                verdict: r.verdict,
                findings: r.findings,
                weights_only: r.weights_only,
            },
            Err(e) => Check::NotScanned {
                reason: e.to_string(),
            },
        };
    }
    file.role = match (shard_of, named) {
        (Some(_), _) => Role::WeightsShard,
        (None, Some(role)) => role,
        (None, None) if is_checkpoint && file.format.is_read() => {
            // Weights by content: list the tensors (headers and pickles only).
            match crate::format::open_with_limits(&path, &options.limits) {
                Ok(ckpt) => {
                    let names: Vec<&str> = ckpt.tensors.iter().map(|t| t.name.as_str()).collect();
                    file.tensors = Some(ckpt.tensors.len());
                    file.parameters = Some(ckpt.parameters());
                    roles::by_content(file.format, &names)
                }
                Err(e) => {
                    file.problem = Some(e.to_string());
                    roles::by_content(file.format, &["?"])
                }
            }
        }
        (None, None) => Role::Other,
    };
    // A file named like weights that could not be read as weights (truncated, no tensors, code
    // instead of data) still claims to be weights: keep the claim, so conversion attempts it and
    // reports why it failed or was refused, instead of passing over it as "other".
    if file.role == Role::Other
        && is_checkpoint
        && let Some(claimed) = roles::by_extension(rel)
    {
        file.role = claimed;
        if file.problem.is_none() {
            file.problem = Some(match &file.check {
                Check::NotScanned { reason } => reason.clone(),
                _ => "the content is not a checkpoint ckptscope can read".into(),
            });
        }
    }
    if file.role == Role::WeightsIndex && crate::convert::is_sharded_pickle_index(&path) {
        // The format layer opens safetensors indexes only; a pickle model's tensors are those
        // of its shards, each opened (headers and pickles, no tensor data).
        match pickle_index_totals(&path, &options.limits) {
            Ok((tensors, parameters)) => {
                file.tensors = Some(tensors);
                file.parameters = Some(parameters);
            }
            Err(e) => file.problem = Some(e.to_string()),
        }
    } else if file.role == Role::WeightsIndex {
        match crate::format::open_with_limits(&path, &options.limits) {
            Ok(ckpt) => {
                file.tensors = Some(ckpt.tensors.len());
                file.parameters = Some(ckpt.parameters());
            }
            Err(e) => file.problem = Some(e.to_string()),
        }
    }
    file
}

/// Tensors and parameters of a sharded pickle model, summed over the shards its index names.
fn pickle_index_totals(index: &Path, limits: &Limits) -> Result<(usize, u64), Error> {
    let folder = index.parent().unwrap_or(Path::new(""));
    let mut tensors = 0usize;
    let mut parameters = 0u64;
    for shard in crate::format::sharded::shard_names(index, limits)? {
        let ckpt = crate::format::open_with_limits(&folder.join(&shard), limits)?;
        tensors += ckpt.tensors.len();
        parameters = parameters.saturating_add(ckpt.parameters());
    }
    Ok((tensors, parameters))
}

fn totals(files: &[PackageFile]) -> Totals {
    let mut t = Totals {
        files: files.len(),
        ..Totals::default()
    };
    let mut by_role: BTreeMap<Role, (usize, u64)> = BTreeMap::new();
    for f in files {
        t.bytes += f.bytes;
        let e = by_role.entry(f.role).or_default();
        e.0 += 1;
        e.1 += f.bytes;
        if f.format.is_pickle_based() {
            t.pickle_files += 1;
            t.pickle_bytes += f.bytes;
        } else if !crate::format::registry::lookup(f.format).refused() {
            t.safe_format_files += 1;
            t.safe_format_bytes += f.bytes;
        }
        match &f.check {
            Check::Scanned { verdict, .. } => match verdict {
                Verdict::Safe => t.safe += 1,
                Verdict::Suspicious => t.suspicious += 1,
                Verdict::Dangerous => t.dangerous += 1,
            },
            Check::NotScanned { .. } => t.not_scanned += 1,
            Check::NotCheckpoint => {}
        }
    }
    t.by_role = Role::ALL
        .iter()
        .filter_map(|r| {
            by_role.get(r).map(|&(files, bytes)| RoleTotal {
                role: *r,
                files,
                bytes,
            })
        })
        .collect();
    t
}

/// The files of a point that a model is read from: its single-file weights and indexes.
fn is_model_file(f: &PackageFile) -> bool {
    matches!(
        f.role,
        Role::Weights | Role::WeightsIndex | Role::TrainingCheckpoint
    )
}

fn run_timeline(dir: &Path, files: &[PackageFile]) -> Vec<RunPoint> {
    let mut folders: BTreeMap<PathBuf, Vec<&PackageFile>> = BTreeMap::new();
    let mut points = Vec::new();
    for f in files {
        match timeline::point_folder(&f.path) {
            Some(folder) => folders.entry(folder).or_default().push(f),
            None => {
                let name = f
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if let (true, Some((step, epoch))) = (is_model_file(f), timeline::file_step(&name))
                {
                    points.push(RunPoint {
                        step,
                        epoch,
                        path: f.path.clone(),
                        kind: PointKind::File,
                        weights: vec![f.path.clone()],
                        loss: None,
                    });
                }
            }
        }
    }
    for (folder, members) in folders {
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(step) = timeline::folder_step(&name) else {
            continue;
        };
        let state = members
            .iter()
            .find(|f| f.role == Role::TrainerState && f.path.parent() == Some(folder.as_path()))
            .and_then(|f| read_json(&dir.join(&f.path)).ok())
            .map(|v| timeline::trainer_state(&v))
            .unwrap_or_default();
        points.push(RunPoint {
            step,
            epoch: state.epoch,
            path: folder.clone(),
            kind: PointKind::Folder,
            weights: members
                .iter()
                .filter(|f| is_model_file(f))
                .map(|f| f.path.clone())
                .collect(),
            loss: state.loss,
        });
    }
    timeline::sort(&mut points);
    points
}

/// `config.json` at the top, else the one of the latest run point.
fn config_summary(dir: &Path, files: &[PackageFile], points: &[RunPoint]) -> Option<ConfigSummary> {
    let top = PathBuf::from("config.json");
    let rel = if files.iter().any(|f| f.path == top) {
        top
    } else {
        let last = points.iter().rev().find(|p| p.kind == PointKind::Folder)?;
        let candidate = last.path.join("config.json");
        files
            .iter()
            .any(|f| f.path == candidate)
            .then_some(candidate)?
    };
    Some(match read_json(&dir.join(&rel)) {
        Ok(serde_json::Value::Object(map)) => ConfigSummary {
            path: rel,
            entries: CONFIG_KEYS
                .iter()
                .filter_map(|k| map.get(*k).map(|v| ((*k).to_string(), v.clone())))
                .collect(),
            problem: None,
        },
        Ok(_) => ConfigSummary {
            path: rel,
            entries: Vec::new(),
            problem: Some("not a JSON object".into()),
        },
        Err(problem) => ConfigSummary {
            path: rel,
            entries: Vec::new(),
            problem: Some(problem),
        },
    })
}
