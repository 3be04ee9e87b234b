//! "Compare consecutive": how much each layer moved between consecutive checkpoints of a run.
//!
//! For each pair of consecutive [`RunPoint`]s the model of each is opened (headers and pickles;
//! a pickle that is not safe to read is refused as everywhere else), their tensors are paired by
//! name and compared by value ([`crate::analysis::diff::compare`], streamed and cancellable), and
//! the relative change ‖b − a‖ / ‖a‖ of each tensor is gathered into its **layer**: the first
//! number among the dotted parts of its name (`model.layers.7.mlp.up_proj.weight` is layer 7).
//! Tensors without one (embeddings, final norm, head) form the group "other". A group's change is
//! the mean of its tensors' changes weighted by their element counts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::analysis::diff::{Status, compare};
use crate::error::Error;
use crate::format::{Checkpoint, OpenOptions, PickleOptions};
use crate::progress::Progress;

use super::{Package, PointKind, Role, RunPoint};

/// The change of one layer between two points.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GroupChange {
    /// The layer index; `None` for tensors outside numbered layers.
    pub layer: Option<u64>,
    /// Tensors compared in the group.
    pub tensors: usize,
    /// Mean relative L2 change of the group's tensors, weighted by their sizes.
    pub rel_change: f64,
    /// The tensor of the group that moved most, and by how much.
    pub most_changed: (String, f64),
}

/// Two consecutive points and how each layer changed from the first to the second.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StepChange {
    /// The earlier point's model file, relative to the package.
    pub a: PathBuf,
    /// The later point's model file.
    pub b: PathBuf,
    /// Steps of both points.
    pub steps: (u64, u64),
    /// One entry per layer, by layer index ("other" last).
    pub groups: Vec<GroupChange>,
    /// Tensors in only one of the two (or whose shape or dtype changed): not measured.
    pub unpaired: usize,
}

/// A layer being summed: tensors, Σ change × elements, Σ elements, the tensor that moved most.
type Group = (usize, f64, u64, (String, f64));

/// The whole run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunChanges {
    /// One entry per consecutive pair, in step order.
    pub steps: Vec<StepChange>,
    /// Points whose model could not be opened, and why; the pairs around them are left out.
    pub problems: Vec<(PathBuf, String)>,
}

/// The file a point's model is read from: its safetensors (index) before its pickles.
pub fn point_model(package: &Package, point: &RunPoint) -> Option<PathBuf> {
    if point.kind == PointKind::File {
        return Some(point.path.clone());
    }
    let rank = |p: &PathBuf| {
        let role = package.file(p).map(|f| f.role);
        let name = p.to_string_lossy().to_ascii_lowercase();
        let safe = name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json");
        let index = role == Some(Role::WeightsIndex);
        (role == Some(Role::WeightsShard), !safe, !index)
    };
    let mut candidates: Vec<&PathBuf> = point
        .weights
        .iter()
        .filter(|p| {
            package
                .file(p)
                .is_some_and(|f| f.role.holds_weights() && f.role != Role::WeightsShard)
        })
        .collect();
    candidates.sort_by_key(|p| rank(p));
    candidates.first().map(|p| (*p).clone())
}

/// The layer a tensor name belongs to: its first all-digit dotted part.
pub fn layer_of(name: &str) -> Option<u64> {
    name.split('.')
        .find(|part| {
            !part.is_empty() && part.len() <= 9 && part.bytes().all(|b| b.is_ascii_digit())
        })
        .and_then(|part| part.parse().ok())
}

/// Compares each point of `package`'s timeline with the next. Cancelling stops between tensors
/// and returns [`Error::Cancelled`].
pub fn run_changes(
    package: &Package,
    options: &super::PackageOptions,
    progress: &Progress,
) -> Result<RunChanges, Error> {
    let mut out = RunChanges::default();
    let mut models: Vec<(u64, PathBuf, Result<Checkpoint, String>)> = Vec::new();
    for point in &package.timeline {
        let Some(model) = point_model(package, point) else {
            out.problems
                .push((point.path.clone(), "holds no weights file".into()));
            continue;
        };
        let open = OpenOptions {
            pickle: PickleOptions {
                policy: options.policy.clone(),
                ..PickleOptions::default()
            },
            limits: options.limits.clone(),
            ..OpenOptions::default()
        };
        let ckpt = crate::format::open_with(&package.absolute(&model), &open)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                if c.tensors.is_empty() {
                    Err("no tensors could be read from it".to_string())
                } else {
                    Ok(c)
                }
            });
        if let Err(e) = &ckpt {
            out.problems.push((model.clone(), e.clone()));
        }
        models.push((point.step, model, ckpt));
    }
    // Work: the bytes of every tensor pair compared.
    let pairs: Vec<(&Checkpoint, &Checkpoint, usize)> = models
        .windows(2)
        .enumerate()
        .filter_map(|(i, w)| match w {
            [(_, _, Ok(a)), (_, _, Ok(b))] => Some((a, b, i)),
            _ => None,
        })
        .collect();
    let total: u64 = pairs
        .iter()
        .flat_map(|(a, b, _)| {
            a.tensors.iter().filter_map(|t| {
                let u = b.tensor(&t.name)?;
                Some(t.byte_len().saturating_add(u.byte_len()))
            })
        })
        .fold(0, u64::saturating_add);
    progress.add_total(total);
    for (a, b, i) in pairs {
        let (Some((step_a, path_a, _)), Some((step_b, path_b, _))) =
            (models.get(i), models.get(i + 1))
        else {
            continue;
        };
        let mut groups: BTreeMap<(bool, u64), Group> = BTreeMap::new();
        let mut unpaired = 0;
        for ta in &a.tensors {
            if progress.is_cancelled() {
                return Err(Error::Cancelled {
                    path: package.root.clone(),
                });
            }
            let tb = b.tensor(&ta.name);
            let d = compare(a, Some(ta), b, tb, progress);
            let change = match (d.status, &d.measures) {
                (Status::Identical, _) => 0.0,
                (_, Some(m)) if d.error.is_none() && m.rel_l2.is_finite() => m.rel_l2,
                _ => {
                    unpaired += 1;
                    continue;
                }
            };
            let layer = layer_of(&ta.name);
            let key = (layer.is_none(), layer.unwrap_or(0));
            let weight = ta.elements().max(1);
            let g = groups
                .entry(key)
                .or_insert_with(|| (0, 0.0, 0, (String::new(), -1.0)));
            g.0 += 1;
            g.1 += change * weight as f64;
            g.2 = g.2.saturating_add(weight);
            if change > g.3.1 {
                g.3 = (ta.name.clone(), change);
            }
        }
        unpaired += b
            .tensors
            .iter()
            .filter(|t| a.tensor(&t.name).is_none())
            .count();
        out.steps.push(StepChange {
            a: path_a.clone(),
            b: path_b.clone(),
            steps: (*step_a, *step_b),
            groups: groups
                .into_iter()
                .map(
                    |((other, layer), (tensors, sum, weight, most))| GroupChange {
                        layer: (!other).then_some(layer),
                        tensors,
                        rel_change: sum / weight.max(1) as f64,
                        most_changed: most,
                    },
                )
                .collect(),
            unpaired,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_the_first_number_in_a_name() {
        assert_eq!(layer_of("model.layers.7.mlp.up_proj.weight"), Some(7));
        assert_eq!(
            layer_of("bert.encoder.layer.11.output.dense.bias"),
            Some(11)
        );
        assert_eq!(layer_of("h.0.attn.c_attn.weight"), Some(0));
        assert_eq!(layer_of("lm_head.weight"), None);
        assert_eq!(
            layer_of("conv1d.weight"),
            None,
            "digits inside a word are no index"
        );
        assert_eq!(
            layer_of("x.12345678901234567890.y"),
            None,
            "absurd numbers are no index"
        );
    }
}
