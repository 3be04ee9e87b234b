//! "Convert all pickles": every weight-bearing pickle of a package (single files, sharded
//! models through their index, Lightning checkpoints) converted to safetensors next to it.
//!
//! Each file goes through [`crate::convert::convert`] (streamed, verified, atomic). One failure
//! does not stop the others; an existing output is never replaced unless asked; training-only
//! pickles (optimizer, scheduler, RNG state, training arguments) are skipped with the reason.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::convert::{
    ConvertError, ConvertOptions, ConvertReport, convert, default_output, is_sharded_pickle_index,
};
use crate::pickle::policy::Verdict;
use crate::pipeline::WriteError;
use crate::progress::Progress;

use super::{Package, PackageFile, Role};

/// What happened to one file.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Written and verified.
    Converted {
        /// What the conversion did.
        report: Box<ConvertReport>,
    },
    /// Left alone on purpose (not weights, output exists, part of a sharded model).
    Skipped {
        /// Why.
        reason: String,
    },
    /// Not converted because its verdict is worse than what was accepted.
    Refused {
        /// Why.
        reason: String,
    },
    /// The conversion failed; nothing was left behind.
    Failed {
        /// Why.
        reason: String,
    },
    /// Not reached: the run was cancelled first (or during it).
    Cancelled,
}

/// One file of a convert-all run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Item {
    /// The input, relative to the package.
    pub input: PathBuf,
    /// The output it was (or would be) written to, relative to the package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<PathBuf>,
    /// Its role.
    #[serde(serialize_with = "super::role_name")]
    pub role: Role,
    /// Its scan verdict, when it was scanned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// What a convert-all run did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// One entry per pickle of the package, in path order.
    pub items: Vec<Item>,
}

impl Summary {
    /// Files converted.
    pub fn converted(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Converted { .. }))
    }

    /// Files skipped on purpose.
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped { .. }))
    }

    /// Files refused for their verdict.
    pub fn refused(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Refused { .. }))
    }

    /// Files whose conversion failed.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed { .. }))
    }

    /// Files not reached because the run was cancelled.
    pub fn cancelled(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Cancelled))
    }

    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.items.iter().filter(|i| f(&i.outcome)).count()
    }

    /// `ckptscope convert DIR`'s exit status: 2 when a conversion failed or the run was
    /// cancelled, 1 when a file was refused for its verdict or converted without some tensors,
    /// 0 otherwise (everything converted or skipped on purpose).
    pub fn exit_code(&self) -> u8 {
        let partial = self.items.iter().any(|i| match &i.outcome {
            Outcome::Converted { report } => !report.skipped.is_empty(),
            _ => false,
        });
        if self.failed() > 0 || self.cancelled() > 0 {
            2
        } else if self.refused() > 0 || partial {
            1
        } else {
            0
        }
    }
}

/// Progress of a run, for a window to show: overall (files done of files to convert) and the
/// file being converted, with its own progress.
#[derive(Debug, Default)]
pub struct RunProgress {
    /// Files finished (any outcome) of files to convert.
    pub overall: Arc<Progress>,
    current: Mutex<Option<(PathBuf, Arc<Progress>)>>,
}

impl RunProgress {
    /// A new, shared progress.
    pub fn new() -> Arc<RunProgress> {
        Arc::new(RunProgress {
            overall: Progress::new(),
            current: Mutex::new(None),
        })
    }

    /// The file being converted and its progress.
    pub fn current(&self) -> Option<(PathBuf, Arc<Progress>)> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops the run: the file being converted is abandoned (nothing left behind), the rest are
    /// not started.
    pub fn cancel(&self) {
        self.overall.cancel();
        if let Some((_, p)) = self.current() {
            p.cancel();
        }
    }

    fn set_current(&self, current: Option<(PathBuf, Arc<Progress>)>) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = current;
    }
}

/// The pickles of a package and what convert-all does with each: `Ok(())` to convert, or the
/// reason it is skipped.
pub fn plan(package: &Package, force: bool) -> Vec<(&PackageFile, Result<PathBuf, String>)> {
    package
        .files
        .iter()
        .filter(|f| f.format.is_pickle_based() || is_pickle_index(package, f) || unreadable(f))
        .map(|f| (f, decide(package, f, force)))
        .collect()
}

/// A file named like pickle weights whose content is not readable (truncated, corrupt): it is
/// attempted, so the summary says why it failed instead of passing over it.
fn unreadable(f: &PackageFile) -> bool {
    let pickle_ext = f
        .path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| matches!(e.as_str(), "pt" | "pth" | "bin" | "ckpt"));
    matches!(
        f.format,
        crate::format::Format::Unknown | crate::format::Format::Zip
    ) && f.role.holds_weights()
        && pickle_ext
}

/// A `pytorch_model.bin.index.json` (its shards are pickles).
fn is_pickle_index(package: &Package, f: &PackageFile) -> bool {
    f.role == Role::WeightsIndex && is_sharded_pickle_index(&package.absolute(&f.path))
}

fn decide(package: &Package, f: &PackageFile, force: bool) -> Result<PathBuf, String> {
    match f.role {
        Role::Weights | Role::TrainingCheckpoint | Role::WeightsIndex => {}
        Role::WeightsShard => {
            let index = f.model.as_deref().unwrap_or(Path::new("its index"));
            return Err(format!(
                "a shard: converted with its model, {}",
                index.display()
            ));
        }
        role if role.is_training_only() => {
            return Err(format!("{}, not weights", role.label()));
        }
        _ => return Err("holds no tensors to convert".into()),
    }
    let output = default_output(&f.path);
    if !force && package.absolute(&output).exists() {
        return Err(format!("{} exists (--force replaces it)", output.display()));
    }
    Ok(output)
}

/// Converts every weight-bearing pickle of `package` as [`plan`] says, one after the other;
/// `options` is the template for each conversion (its `output` and `force` are set per file).
/// `on_item` hears of each file as it finishes.
pub fn convert_all(
    package: &Package,
    options: &ConvertOptions,
    progress: &RunProgress,
    mut on_item: impl FnMut(&Item),
) -> Summary {
    let planned = plan(package, options.force);
    let to_do = planned.iter().filter(|(_, d)| d.is_ok()).count();
    progress.overall.add_total(to_do as u64);
    let mut summary = Summary::default();
    for (file, decision) in planned {
        let mut item = Item {
            input: file.path.clone(),
            output: None,
            role: file.role,
            verdict: package.verdict_of(file),
            outcome: Outcome::Cancelled,
        };
        match decision {
            Err(reason) => item.outcome = Outcome::Skipped { reason },
            Ok(_) if progress.overall.is_cancelled() => {}
            Ok(output) => {
                item.output = Some(output.clone());
                let one = Progress::new();
                progress.set_current(Some((file.path.clone(), one.clone())));
                let opts = ConvertOptions {
                    output: Some(package.absolute(&output)),
                    ..options.clone()
                };
                item.outcome = match convert(&package.absolute(&file.path), &opts, &one) {
                    Ok(report) => Outcome::Converted {
                        report: Box::new(report),
                    },
                    Err(e) if e.is_cancelled() => Outcome::Cancelled,
                    Err(e @ ConvertError::Refused { .. }) => Outcome::Refused {
                        reason: e.to_string(),
                    },
                    Err(e @ ConvertError::Write(WriteError::Exists(_))) => Outcome::Skipped {
                        reason: e.to_string(),
                    },
                    Err(e) => Outcome::Failed {
                        reason: e.to_string(),
                    },
                };
                progress.set_current(None);
                progress.overall.add_done(1);
            }
        }
        on_item(&item);
        summary.items.push(item);
    }
    summary
}
