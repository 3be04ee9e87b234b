//! A training run's checkpoints in step order: Trainer `checkpoint-N/` folders (and DeepSpeed
//! `global_stepN/`), Lightning `epoch=E-step=S.ckpt` files.

use std::path::{Path, PathBuf};

/// One saved point of a run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunPoint {
    /// The training step.
    pub step: u64,
    /// The epoch, when the name or the trainer state says it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<f64>,
    /// The folder or file, relative to the package.
    #[serde(serialize_with = "crate::fsutil::serialize_path")]
    pub path: PathBuf,
    /// A folder of files (`checkpoint-500/`) or one file (`step=500.ckpt`).
    pub kind: PointKind,
    /// The files in it that hold the weights (for a file point, the file itself).
    #[serde(serialize_with = "crate::fsutil::serialize_paths")]
    pub weights: Vec<PathBuf>,
    /// The last training loss logged up to this step (`trainer_state.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
}

/// What a run point is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PointKind {
    /// A folder holding a model and its training state.
    Folder,
    /// One checkpoint file.
    File,
}

/// The step a folder name states: `checkpoint-500` (Hugging Face Trainer), `global_step500`
/// (DeepSpeed).
pub fn folder_step(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix("checkpoint-")
        .or_else(|| name.strip_prefix("global_step"))?;
    parse_digits(digits)
}

/// The step (and epoch) a checkpoint file name states: `epoch=3-step=1200.ckpt`,
/// `step=1200.ckpt`, `model-step=1200-val_loss=0.3.ckpt`.
pub fn file_step(name: &str) -> Option<(u64, Option<f64>)> {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let field = |key: &str| {
        stem.split(['-', '_'])
            .find_map(|part| part.strip_prefix(key)?.strip_prefix('='))
    };
    let step = parse_digits(field("step")?)?;
    let epoch = field("epoch").and_then(parse_digits).map(|e| e as f64);
    Some((step, epoch))
}

fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// What `trainer_state.json` says about the point it was saved at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainerState {
    /// `global_step`.
    pub step: Option<u64>,
    /// `epoch`.
    pub epoch: Option<f64>,
    /// The last `loss` in `log_history`.
    pub loss: Option<f64>,
}

/// Reads the parts of a `trainer_state.json` the timeline shows; anything missing or of another
/// type is left out.
pub fn trainer_state(json: &serde_json::Value) -> TrainerState {
    let loss = json
        .get("log_history")
        .and_then(|h| h.as_array())
        .and_then(|h| h.iter().rev().find_map(|e| e.get("loss")?.as_f64()));
    TrainerState {
        step: json.get("global_step").and_then(|s| s.as_u64()),
        epoch: json.get("epoch").and_then(|e| e.as_f64()),
        loss,
    }
}

/// Sorts points by step, then path (two runs in one folder interleave by step).
pub(crate) fn sort(points: &mut [RunPoint]) {
    points.sort_by(|a, b| a.step.cmp(&b.step).then_with(|| a.path.cmp(&b.path)));
}

/// The run-point folder a file sits in, if any: the nearest ancestor (below the package root)
/// named like `checkpoint-N`.
pub fn point_folder(relative: &Path) -> Option<PathBuf> {
    let mut found = None;
    let mut at = PathBuf::new();
    let parent = relative.parent()?;
    for part in parent.components() {
        at.push(part);
        if folder_step(&part.as_os_str().to_string_lossy()).is_some() {
            found = Some(at.clone());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_steps() {
        assert_eq!(folder_step("checkpoint-500"), Some(500));
        assert_eq!(folder_step("global_step12"), Some(12));
        assert_eq!(folder_step("checkpoint-"), None);
        assert_eq!(folder_step("checkpoint-5x"), None);
        assert_eq!(folder_step("checkpoints"), None);
        assert_eq!(file_step("epoch=3-step=1200.ckpt"), Some((1200, Some(3.0))));
        assert_eq!(file_step("step=7.ckpt"), Some((7, None)));
        assert_eq!(
            file_step("model-epoch=1-step=40-val_loss=0.31.ckpt"),
            Some((40, Some(1.0)))
        );
        assert_eq!(file_step("last.ckpt"), None);
        assert_eq!(file_step("laststep=3.ckpt"), None);
        assert_eq!(file_step("step=-3.ckpt"), None);
        assert_eq!(
            point_folder(Path::new("run/checkpoint-4/model.safetensors")),
            Some(PathBuf::from("run/checkpoint-4"))
        );
        assert_eq!(point_folder(Path::new("model.safetensors")), None);
    }

    #[test]
    fn trainer_state_is_read_leniently() {
        let v: serde_json::Value = serde_json::json!({
            "global_step": 4, "epoch": 1.0,
            "log_history": [{"loss": 4.2, "step": 1}, {"loss": 4.1, "step": 2}, {"train_loss": 4.0}]
        });
        let s = trainer_state(&v);
        assert_eq!(s.step, Some(4));
        assert_eq!(s.loss, Some(4.1));
        assert_eq!(
            trainer_state(&serde_json::json!([1])),
            TrainerState::default()
        );
    }
}
