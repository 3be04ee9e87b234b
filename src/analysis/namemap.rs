//! Pairing tensors across formats: the names llama.cpp gives a Hugging Face Llama model when it
//! converts it to GGUF, and the row order it changes on the way.
//!
//! `convert_hf_to_gguf.py` renames every tensor (`model.layers.0.self_attn.q_proj.weight` is
//! `blk.0.attn_q.weight`) and permutes the rows of the query and key projections: Hugging Face
//! rotates the pairs (i, i + d/2) of each head, GGML the pairs (2i, 2i + 1), so within each head
//! the two halves of the rows are interleaved. To compare values, the GGUF side is read through
//! a strided view that undoes that permutation (no copy: the view walks rows in Hugging Face
//! order), so both sides are compared, and shown, in PyTorch order. The trade-off: only the
//! Llama family is known, because its converter is the one that renames and permutes like this;
//! other architectures pair by name as stored.
//!
//! Owns: [`Mapping`] (which side is GGUF, the head counts, the pairs of names) and the views that
//! undo the permutation. Must not import: `diff`, `output`, `gui`.

use std::collections::HashMap;

use crate::analysis::slice::View;
use crate::format::{Checkpoint, Format, TensorEntry};

/// Which of the two compared checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Which {
    /// The first (A).
    A,
    /// The second (B).
    B,
}

/// The llama.cpp name mapping between a Hugging Face Llama checkpoint and its GGUF conversion.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Mapping {
    /// The side that is GGUF.
    pub gguf: Which,
    /// `llama.attention.head_count`: heads of the query projection.
    pub n_head: u64,
    /// `llama.attention.head_count_kv`: heads of the key projection (equal to `n_head` when the
    /// key is absent, as llama.cpp reads it).
    pub n_head_kv: u64,
}

/// The GGUF names of the per-layer tensors, keyed by the Hugging Face name after
/// `model.layers.N.`.
const LAYER_NAMES: [(&str, &str); 9] = [
    ("input_layernorm", "attn_norm"),
    ("self_attn.q_proj", "attn_q"),
    ("self_attn.k_proj", "attn_k"),
    ("self_attn.v_proj", "attn_v"),
    ("self_attn.o_proj", "attn_output"),
    ("post_attention_layernorm", "ffn_norm"),
    ("mlp.gate_proj", "ffn_gate"),
    ("mlp.up_proj", "ffn_up"),
    ("mlp.down_proj", "ffn_down"),
];

/// The GGUF name llama.cpp gives the Hugging Face Llama tensor `hf` (with or without the
/// `model.` prefix of `LlamaForCausalLM`); `None` for tensors it drops or does not know
/// (`rotary_emb.inv_freq`).
pub fn llama_gguf_name(hf: &str) -> Option<String> {
    let body = hf.strip_prefix("model.").unwrap_or(hf);
    match body {
        "embed_tokens.weight" => return Some("token_embd.weight".into()),
        "norm.weight" => return Some("output_norm.weight".into()),
        _ => {}
    }
    if hf == "lm_head.weight" {
        return Some("output.weight".into());
    }
    let rest = body.strip_prefix("layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    if layer.is_empty() || !layer.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (module, param) = rest.rsplit_once('.')?;
    if param != "weight" && param != "bias" {
        return None;
    }
    let (_, gguf) = LAYER_NAMES.iter().find(|(h, _)| *h == module)?;
    Some(format!("blk.{layer}.{gguf}.{param}"))
}

/// Whether `ckpt` is a GGUF file of the Llama family (`general.architecture = llama`).
pub fn is_llama_gguf(ckpt: &Checkpoint) -> bool {
    ckpt.format == Format::Gguf && ckpt.metadata_value("general.architecture") == Some("llama")
}

/// Why a mapping cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// Neither side, or both, is GGUF.
    #[error("the llama.cpp name mapping pairs a GGUF file with a Hugging Face checkpoint: {0}")]
    Sides(String),
    /// The GGUF file is not of the Llama family.
    #[error(
        "the llama.cpp name mapping is for general.architecture = llama; {path} says `{found}`"
    )]
    Architecture {
        /// What the file says.
        found: String,
        /// The GGUF file.
        path: String,
    },
    /// A head count is missing or not a positive integer.
    #[error("`{key}` is {what} in {path}; the Q/K permutation needs the head counts")]
    Heads {
        /// The metadata key.
        key: &'static str,
        /// What it is instead.
        what: String,
        /// The GGUF file.
        path: String,
    },
}

impl Mapping {
    /// The llama.cpp mapping between `a` and `b`: one must be a Llama GGUF file, the other
    /// not GGUF; the head counts come from the GGUF metadata.
    pub fn llama(a: &Checkpoint, b: &Checkpoint) -> Result<Mapping, MappingError> {
        let (gguf, ckpt) = match (a.format == Format::Gguf, b.format == Format::Gguf) {
            (true, false) => (Which::A, a),
            (false, true) => (Which::B, b),
            (true, true) => return Err(MappingError::Sides("both files are GGUF".into())),
            (false, false) => return Err(MappingError::Sides("neither file is GGUF".into())),
        };
        let path = ckpt.path.display().to_string();
        let arch = ckpt.metadata_value("general.architecture").unwrap_or("");
        if arch != "llama" {
            return Err(MappingError::Architecture {
                found: arch.to_string(),
                path,
            });
        }
        let count = |key: &'static str| -> Result<Option<u64>, MappingError> {
            let Some(text) = ckpt.metadata_value(key) else {
                return Ok(None);
            };
            match text.parse::<u64>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(MappingError::Heads {
                    key,
                    what: format!("`{text}`"),
                    path: path.clone(),
                }),
            }
        };
        let n_head = count("llama.attention.head_count")?.ok_or(MappingError::Heads {
            key: "llama.attention.head_count",
            what: "missing".into(),
            path: path.clone(),
        })?;
        let n_head_kv = count("llama.attention.head_count_kv")?.unwrap_or(n_head);
        Ok(Mapping {
            gguf,
            n_head,
            n_head_kv,
        })
    }

    /// The mapping to offer without being asked: when one side is a Llama GGUF file and the
    /// other holds at least one tensor with a Hugging Face Llama name that the GGUF file has.
    pub fn offered(a: &Checkpoint, b: &Checkpoint) -> Option<Mapping> {
        if !(is_llama_gguf(a) || is_llama_gguf(b)) {
            return None;
        }
        let m = Mapping::llama(a, b).ok()?;
        let (hf, gguf) = m.hf_and_gguf(a, b);
        hf.tensors
            .iter()
            .any(|t| llama_gguf_name(&t.name).is_some_and(|g| gguf.tensor(&g).is_some()))
            .then_some(m)
    }

    /// `(Hugging Face side, GGUF side)` of `(a, b)`.
    pub fn hf_and_gguf<'c>(
        &self,
        a: &'c Checkpoint,
        b: &'c Checkpoint,
    ) -> (&'c Checkpoint, &'c Checkpoint) {
        match self.gguf {
            Which::A => (b, a),
            Which::B => (a, b),
        }
    }

    /// The pairs of names `(in A, in B)` that the mapping makes, for every Hugging Face tensor
    /// whose llama.cpp name is in the GGUF file.
    pub fn pairs(&self, a: &Checkpoint, b: &Checkpoint) -> Vec<(String, String)> {
        let (hf, gguf) = self.hf_and_gguf(a, b);
        let mut out = Vec::new();
        for t in &hf.tensors {
            if let Some(g) = llama_gguf_name(&t.name).filter(|g| gguf.tensor(g).is_some()) {
                out.push(match self.gguf {
                    Which::A => (g, t.name.clone()),
                    Which::B => (t.name.clone(), g),
                });
            }
        }
        out
    }

    /// The partner of every mapped name, both ways (`a name -> b name` and back).
    pub fn partners(&self, a: &Checkpoint, b: &Checkpoint) -> Partners {
        let mut p = Partners::default();
        for (x, y) in self.pairs(a, b) {
            p.b_of_a.insert(x.clone(), y.clone());
            p.a_of_b.insert(y, x);
        }
        p
    }

    /// The heads whose rows llama.cpp permuted in the tensor called `gguf_name`: `n_head` for
    /// `attn_q`, `n_head_kv` for `attn_k` (weights and biases); `None` for every other tensor.
    pub fn permuted_heads(&self, gguf_name: &str) -> Option<u64> {
        let (_, rest) = gguf_name.strip_prefix("blk.")?.split_once('.')?;
        match rest {
            "attn_q.weight" | "attn_q.bias" => Some(self.n_head),
            "attn_k.weight" | "attn_k.bias" => Some(self.n_head_kv),
            _ => None,
        }
    }
}

/// Mapped names both ways.
#[derive(Clone, Debug, Default)]
pub struct Partners {
    /// Name in B of a name in A.
    pub b_of_a: HashMap<String, String>,
    /// Name in A of a name in B.
    pub a_of_b: HashMap<String, String>,
}

/// The view of a GGUF tensor whose rows llama.cpp permuted over `heads` heads, walking its
/// elements in the Hugging Face order: element `[r, ...]` of the view is the GGUF row that
/// holds Hugging Face row `r`.
///
/// Within a head of `d` rows, llama.cpp stores Hugging Face row `i·d/2 + j` (half `i` of 2,
/// `j < d/2`) at row `2j + i`; so the view splits the rows as `[heads, 2, d/2]` with strides
/// `[d, 1, 2]` rows.
pub fn unpermuted_view(t: &TensorEntry, heads: u64) -> Result<View, String> {
    let base = View::of(t);
    let (Some(&rows), Some(&row_stride)) = (base.shape.first(), base.strides.first()) else {
        return Err(format!(
            "cannot undo llama.cpp's Q/K permutation of `{}`: it is a scalar",
            t.name
        ));
    };
    let per_head = if heads > 0 && rows % heads == 0 {
        rows / heads
    } else {
        0
    };
    if per_head == 0 || per_head % 2 != 0 {
        return Err(format!(
            "cannot undo llama.cpp's Q/K permutation of `{}`: its {rows} rows do not split into {heads} heads of an even number of rows",
            t.name
        ));
    }
    let half = per_head / 2;
    let mut shape = vec![heads, 2, half];
    let mut strides = vec![per_head * row_stride, row_stride, 2 * row_stride];
    shape.extend(base.shape.iter().skip(1));
    strides.extend(base.strides.iter().skip(1));
    Ok(View {
        shape,
        strides,
        offset: base.offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    #[test]
    fn llama_names() {
        for (hf, gguf) in [
            ("model.embed_tokens.weight", "token_embd.weight"),
            ("model.norm.weight", "output_norm.weight"),
            ("lm_head.weight", "output.weight"),
            (
                "model.layers.0.input_layernorm.weight",
                "blk.0.attn_norm.weight",
            ),
            (
                "model.layers.31.self_attn.q_proj.weight",
                "blk.31.attn_q.weight",
            ),
            ("model.layers.2.self_attn.k_proj.bias", "blk.2.attn_k.bias"),
            (
                "model.layers.2.self_attn.v_proj.weight",
                "blk.2.attn_v.weight",
            ),
            (
                "model.layers.2.self_attn.o_proj.weight",
                "blk.2.attn_output.weight",
            ),
            (
                "model.layers.7.post_attention_layernorm.weight",
                "blk.7.ffn_norm.weight",
            ),
            (
                "model.layers.1.mlp.gate_proj.weight",
                "blk.1.ffn_gate.weight",
            ),
            ("model.layers.1.mlp.up_proj.weight", "blk.1.ffn_up.weight"),
            (
                "model.layers.1.mlp.down_proj.weight",
                "blk.1.ffn_down.weight",
            ),
            ("layers.1.mlp.down_proj.weight", "blk.1.ffn_down.weight"),
            ("embed_tokens.weight", "token_embd.weight"),
        ] {
            assert_eq!(llama_gguf_name(hf).as_deref(), Some(gguf), "{hf}");
        }
        for hf in [
            "model.layers.0.self_attn.rotary_emb.inv_freq",
            "model.layers.x.mlp.up_proj.weight",
            "model.layers..mlp.up_proj.weight",
            "model.layers.0.mlp.up_proj.scales",
            "model.lm_head.weight",
            "",
        ] {
            assert_eq!(llama_gguf_name(hf), None, "{hf}");
        }
    }

    #[test]
    fn permuted_heads_of_q_and_k_only() {
        let m = Mapping {
            gguf: Which::B,
            n_head: 32,
            n_head_kv: 8,
        };
        assert_eq!(m.permuted_heads("blk.3.attn_q.weight"), Some(32));
        assert_eq!(m.permuted_heads("blk.3.attn_k.bias"), Some(8));
        assert_eq!(m.permuted_heads("blk.3.attn_v.weight"), None);
        assert_eq!(m.permuted_heads("token_embd.weight"), None);
    }

    /// llama.cpp's `permute` on row numbers: reshape(n, 2, d/2).swapaxes(1, 2).
    fn llama_permute(rows: u64, heads: u64) -> Vec<u64> {
        let d = rows / heads;
        let mut out = Vec::new();
        for h in 0..heads {
            for j in 0..d / 2 {
                for i in 0..2 {
                    out.push(h * d + i * (d / 2) + j);
                }
            }
        }
        out
    }

    #[test]
    fn the_view_undoes_llama_permutation() {
        // A 12 × 3 GGUF tensor of 3 heads: GGUF row g holds Hugging Face row perm[g].
        let (rows, cols, heads) = (12u64, 3u64, 3u64);
        let perm = llama_permute(rows, heads);
        let t = TensorEntry::contiguous("w".into(), DType::F32, vec![rows, cols], 0, [0, 144], 0);
        let v = unpermuted_view(&t, heads).unwrap();
        assert_eq!(v.elements(), rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                let g = v.element(r * cols + c);
                let (g_row, g_col) = (g / cols, g % cols);
                assert_eq!(g_col, c);
                assert_eq!(perm[g_row as usize], r, "HF row {r}");
            }
        }
        // A bias: one dimension.
        let b = TensorEntry::contiguous("b".into(), DType::F32, vec![8], 0, [0, 32], 0);
        let v = unpermuted_view(&b, 2).unwrap();
        let perm = llama_permute(8, 2);
        for r in 0..8 {
            assert_eq!(perm[v.element(r) as usize], r);
        }
    }

    #[test]
    fn rows_that_do_not_split_into_heads_are_refused() {
        let t = TensorEntry::contiguous("w".into(), DType::F32, vec![12, 2], 0, [0, 96], 0);
        assert!(unpermuted_view(&t, 5).unwrap_err().contains("12 rows"));
        assert!(unpermuted_view(&t, 4).is_err(), "3 rows per head is odd");
        assert!(unpermuted_view(&t, 0).is_err());
        let s = TensorEntry::contiguous("s".into(), DType::F32, vec![], 0, [0, 4], 0);
        assert!(unpermuted_view(&s, 1).unwrap_err().contains("scalar"));
    }
}
