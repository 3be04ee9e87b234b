//! What each file of a model folder is for, from its name first and its content second.
//!
//! Names decide for the files training libraries name by convention (`optimizer.pt`,
//! `rng_state_3.pth`, `tokenizer.json`); content decides what is left: a file ckptscope opens as
//! a checkpoint is weights. A pickle named like weights is still scanned like any pickle: the
//! role says what a file claims to be, the verdict what it can do.

use std::path::Path;

use crate::format::Format;
use crate::format::registry::{self, ContentRole, NamedRole};

/// The part a file plays in a package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A model's weights in one file.
    Weights,
    /// One shard of a model whose index lists it.
    WeightsShard,
    /// The index of a sharded model (`model.safetensors.index.json`).
    WeightsIndex,
    /// Weights together with optimizer state in one file (Lightning `.ckpt`).
    TrainingCheckpoint,
    /// Optimizer state (`optimizer.pt`).
    Optimizer,
    /// Learning-rate scheduler state (`scheduler.pt`).
    Scheduler,
    /// Random number generator state (`rng_state.pth`).
    RngState,
    /// Other training-only state (`scaler.pt`, DeepSpeed optimizer shards).
    TrainingState,
    /// The trainer's arguments, pickled (`training_args.bin`).
    TrainingArgs,
    /// The trainer's progress log (`trainer_state.json`).
    TrainerState,
    /// Model configuration (`config.json`, `generation_config.json`, `hparams.yaml`).
    Config,
    /// Tokenizer and vocabulary files.
    Tokenizer,
    /// Anything else (model card, licence, logs).
    Other,
}

impl Role {
    /// Every role, in the order tables list them.
    pub const ALL: [Role; 13] = [
        Role::Weights,
        Role::WeightsShard,
        Role::WeightsIndex,
        Role::TrainingCheckpoint,
        Role::Optimizer,
        Role::Scheduler,
        Role::RngState,
        Role::TrainingState,
        Role::TrainingArgs,
        Role::TrainerState,
        Role::Config,
        Role::Tokenizer,
        Role::Other,
    ];

    /// A short label for people.
    pub fn label(self) -> &'static str {
        match self {
            Role::Weights => "weights",
            Role::WeightsShard => "weights shard",
            Role::WeightsIndex => "sharded weights index",
            Role::TrainingCheckpoint => "training checkpoint",
            Role::Optimizer => "optimizer state",
            Role::Scheduler => "scheduler",
            Role::RngState => "RNG state",
            Role::TrainingState => "training state",
            Role::TrainingArgs => "training arguments",
            Role::TrainerState => "trainer state",
            Role::Config => "config",
            Role::Tokenizer => "tokenizer",
            Role::Other => "other",
        }
    }

    /// The name in JSON (`weights_shard`).
    pub fn json_name(self) -> &'static str {
        match self {
            Role::Weights => "weights",
            Role::WeightsShard => "weights_shard",
            Role::WeightsIndex => "weights_index",
            Role::TrainingCheckpoint => "training_checkpoint",
            Role::Optimizer => "optimizer",
            Role::Scheduler => "scheduler",
            Role::RngState => "rng_state",
            Role::TrainingState => "training_state",
            Role::TrainingArgs => "training_args",
            Role::TrainerState => "trainer_state",
            Role::Config => "config",
            Role::Tokenizer => "tokenizer",
            Role::Other => "other",
        }
    }

    /// Files inference never needs: optimizer, scheduler, RNG and other training state, the
    /// trainer's arguments and log.
    pub fn is_training_only(self) -> bool {
        matches!(
            self,
            Role::Optimizer
                | Role::Scheduler
                | Role::RngState
                | Role::TrainingState
                | Role::TrainingArgs
                | Role::TrainerState
        )
    }

    /// Files that hold (part of) a model's weights.
    pub fn holds_weights(self) -> bool {
        matches!(
            self,
            Role::Weights | Role::WeightsShard | Role::WeightsIndex | Role::TrainingCheckpoint
        )
    }
}

/// File names of tokenizers and vocabularies (lower case).
const TOKENIZER_NAMES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "chat_template.jinja",
    "chat_template.json",
];

/// The role a file's name gives it, when its name follows a convention.
pub fn by_name(path: &Path) -> Option<Role> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    let ext = Path::new(&name)
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pickle_ext = matches!(ext.as_str(), "pt" | "pth" | "bin" | "pkl" | "ckpt");
    let role = if name == "trainer_state.json" {
        Role::TrainerState
    } else if name == "training_args.bin" {
        Role::TrainingArgs
    } else if name.ends_with(".index.json") {
        Role::WeightsIndex
    } else if TOKENIZER_NAMES.contains(&name.as_str()) {
        Role::Tokenizer
    } else if name.ends_with(".json") && (name == "config.json" || name.ends_with("_config.json"))
        || matches!(
            name.as_str(),
            "model_index.json" | "params.json" | "hparams.yaml" | "hparams.yml"
        )
    {
        Role::Config
    } else if pickle_ext && name.starts_with("rng_state") {
        Role::RngState
    } else if pickle_ext && (name.starts_with("optimizer") || name.contains("optim_states")) {
        Role::Optimizer
    } else if pickle_ext && (name.starts_with("scheduler") || name.starts_with("lr_scheduler")) {
        Role::Scheduler
    } else if pickle_ext && name.starts_with("scaler") {
        Role::TrainingState
    } else {
        return None;
    };
    Some(role)
}

/// The role a weights file's name claims in the format registry (`.pt`, `.pth`, `.bin`,
/// `.safetensors`, `.gguf`, `.onnx`, `.h5`, `.keras`... hold weights; a `.ckpt` is a training
/// checkpoint), for files whose content did not say.
pub fn by_extension(path: &Path) -> Option<Role> {
    let (_, claim) = registry::claim(path)?;
    match claim.role {
        NamedRole::Weights => Some(Role::Weights),
        NamedRole::TrainingCheckpoint => Some(Role::TrainingCheckpoint),
        NamedRole::Unsaid => None,
    }
}

/// The role of a file no naming convention placed, from its format (the registry says which
/// formats hold weights) and, for pickles, the names of its tensors (`optimizer_states.0...`
/// beside `state_dict...` is a training checkpoint).
pub fn by_content(format: Format, tensor_names: &[&str]) -> Role {
    match registry::lookup(format).role {
        ContentRole::Other => Role::Other,
        ContentRole::Weights => Role::Weights,
        ContentRole::ByTensors => {
            let optimizer = tensor_names
                .iter()
                .any(|n| n.starts_with("optimizer_states.") || n.starts_with("optimizer."));
            let model = tensor_names
                .iter()
                .any(|n| !(n.starts_with("optimizer_states.") || n.starts_with("optimizer.")));
            match (optimizer, model) {
                (true, true) => Role::TrainingCheckpoint,
                (true, false) => Role::Optimizer,
                (false, true) => Role::Weights,
                // A pickle with no tensor at all (a config, a tokenizer) holds no weights.
                (false, false) => Role::Other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions_of_trainers() {
        let cases = [
            ("optimizer.pt", Some(Role::Optimizer)),
            ("scheduler.pt", Some(Role::Scheduler)),
            ("rng_state_3.pth", Some(Role::RngState)),
            ("scaler.pt", Some(Role::TrainingState)),
            (
                "bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt",
                Some(Role::Optimizer),
            ),
            ("training_args.bin", Some(Role::TrainingArgs)),
            ("trainer_state.json", Some(Role::TrainerState)),
            ("model.safetensors.index.json", Some(Role::WeightsIndex)),
            ("config.json", Some(Role::Config)),
            ("generation_config.json", Some(Role::Config)),
            ("tokenizer_config.json", Some(Role::Tokenizer)),
            ("merges.txt", Some(Role::Tokenizer)),
            ("hparams.yaml", Some(Role::Config)),
            ("pytorch_model.bin", None),
            ("optimizer_notes.md", None),
            ("README.md", None),
        ];
        for (name, role) in cases {
            assert_eq!(by_name(Path::new(name)), role, "{name}");
        }
    }

    #[test]
    fn pickles_are_judged_by_their_tensors() {
        let f = Format::PytorchZip;
        assert_eq!(by_content(f, &["w", "b"]), Role::Weights);
        assert_eq!(
            by_content(f, &["state_dict.w", "optimizer_states.0.state.0.exp_avg"]),
            Role::TrainingCheckpoint
        );
        assert_eq!(
            by_content(f, &["optimizer.state.0.exp_avg"]),
            Role::Optimizer
        );
        assert_eq!(by_content(f, &[]), Role::Other);
        assert_eq!(by_content(Format::Gguf, &[]), Role::Weights);
        assert_eq!(by_content(Format::Unknown, &["w"]), Role::Other);
    }

    #[test]
    fn extensions_claim_weights() {
        assert_eq!(by_extension(Path::new("a/model.PT")), Some(Role::Weights));
        assert_eq!(
            by_extension(Path::new("epoch=1-step=4.ckpt")),
            Some(Role::TrainingCheckpoint)
        );
        assert_eq!(by_extension(Path::new("notes.txt")), None);
        assert_eq!(by_extension(Path::new("data.pkl")), None);
        assert_eq!(
            by_extension(Path::new("model.weights.h5")),
            Some(Role::Weights)
        );
        assert_eq!(
            by_extension(Path::new("saved_model.pb")),
            Some(Role::Weights)
        );
        assert_eq!(
            by_extension(Path::new("pytorch_model.bin")),
            Some(Role::Weights)
        );
        assert_eq!(by_extension(Path::new("x.feather")), None);
    }
}
