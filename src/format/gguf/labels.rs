//! What GGUF metadata means to a reader: labels for the `general.*`, tokenizer and
//! architecture keys, the file-type names, how entries are rendered, and what the scan and the
//! converter say about a GGUF file (a chat template that reaches Python internals is flagged).
//!
//! Owns: presentation and judgement of metadata. Must not import: `value` (its
//! types come through `super`).

use super::*;

/// What `scan` says of a GGUF file: the header is validated first (a file that only starts like
/// GGUF is not vouched for), then one note on what was checked, and a suspicious finding per
/// chat template that reaches Python internals.
pub fn scan_findings(
    bytes: &[u8],
    limits: &Limits,
) -> Result<Vec<crate::verdict::Finding>, GgufProblem> {
    use crate::verdict::{Finding, Risk};
    let h = parse(bytes, limits)?;
    let mut findings = vec![Finding::new(
        Risk::Info,
        None,
        format!(
            "no pickle: data-only format (GGUF v{}: {} metadata entries and {} tensors read; value types, tensor types, shapes, alignment and offsets checked); loading it runs no code",
            h.version,
            h.metadata.len(),
            h.tensors.len()
        ),
    )];
    for (key, value) in &h.metadata {
        if let (true, Value::Str(template)) = (is_chat_template(key), value)
            && let Some(reason) = template_risk(template)
        {
            let mut f = Finding::new(Risk::Suspicious, None, reason);
            f.member = Some(key.clone());
            findings.push(f);
        }
    }
    Ok(findings)
}

/// Why `convert` does not write a GGUF file as safetensors, for its error message: it
/// converts pickles, and quantized blocks would have to be dequantized (not copied) to be
/// written, which would be a different model file, not the same weights.
pub fn convert_refusal(ckpt: &Checkpoint) -> String {
    let mut types: Vec<GgmlType> = ckpt.tensors.iter().filter_map(|t| t.quant).collect();
    let quantized = types.len();
    types.sort();
    types.dedup();
    let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
    if quantized == 0 {
        " (it is a GGUF model: `convert` turns pickles into safetensors; GGUF loading runs no code and its tensors are shown as they are)".into()
    } else {
        format!(
            " (it is a GGUF model: `convert` turns pickles into safetensors, and {quantized} of its {} tensors are ggml block-quantized ({}), which safetensors cannot hold without dequantizing them; nothing was written)",
            ckpt.tensors.len(),
            names.join(", ")
        )
    }
}

/// True for `tokenizer.chat_template` and its named variants (`tokenizer.chat_template.tool_use`).
pub fn is_chat_template(key: &str) -> bool {
    key == "tokenizer.chat_template" || key.starts_with("tokenizer.chat_template.")
}

/// Why a chat template is worth a warning, if it is: Jinja that reaches Python internals runs
/// code in a renderer that is not sandboxed (llama-cpp-python before 0.2.72, CVE-2024-34359).
pub fn template_risk(template: &str) -> Option<String> {
    const MARKERS: [&str; 12] = [
        "__class__",
        "__globals__",
        "__subclasses__",
        "__builtins__",
        "__import__",
        "__init__",
        "__mro__",
        "__base__",
        "__getattribute__",
        "_TemplateReference__context",
        "popen",
        "os.system",
    ];
    let found: Vec<&str> = MARKERS
        .iter()
        .copied()
        .filter(|m| template.contains(m))
        .collect();
    (!found.is_empty()).then(|| {
        format!(
            "the chat template reaches Python internals ({}); a Jinja renderer that is not sandboxed runs code from it (CVE-2024-34359)",
            found.join(", ")
        )
    })
}

/// The text shown for a metadata entry: [`Value::render`], with the name of
/// `general.file_type` added.
pub fn render_entry(key: &str, value: &Value) -> String {
    let text = value.render();
    match (key, value.as_u64().and_then(file_type_name)) {
        ("general.file_type", Some(name)) => format!("{text} ({name})"),
        _ => text,
    }
}

/// llama.cpp's `llama_ftype` names (`general.file_type`).
pub fn file_type_name(v: u64) -> Option<&'static str> {
    Some(match v {
        0 => "all F32",
        1 => "mostly F16",
        2 => "mostly Q4_0",
        3 => "mostly Q4_1",
        7 => "mostly Q8_0",
        8 => "mostly Q5_0",
        9 => "mostly Q5_1",
        10 => "mostly Q2_K",
        11 => "mostly Q3_K_S",
        12 => "mostly Q3_K_M",
        13 => "mostly Q3_K_L",
        14 => "mostly Q4_K_S",
        15 => "mostly Q4_K_M",
        16 => "mostly Q5_K_S",
        17 => "mostly Q5_K_M",
        18 => "mostly Q6_K",
        19 => "mostly IQ2_XXS",
        20 => "mostly IQ2_XS",
        21 => "mostly Q2_K_S",
        22 => "mostly IQ3_XS",
        23 => "mostly IQ3_XXS",
        24 => "mostly IQ1_S",
        25 => "mostly IQ4_NL",
        26 => "mostly IQ3_S",
        27 => "mostly IQ3_M",
        28 => "mostly IQ2_S",
        29 => "mostly IQ2_M",
        30 => "mostly IQ4_XS",
        31 => "mostly IQ1_M",
        32 => "mostly BF16",
        36 => "mostly TQ1_0",
        37 => "mostly TQ2_0",
        38 => "mostly MXFP4 (MoE)",
        39 => "mostly NVFP4",
        40 => "mostly Q1_0",
        1024 => "guessed",
        _ => return None,
    })
}

/// A readable label for a GGUF metadata key (`general.*`, `tokenizer.*` and the per-architecture
/// keys such as `llama.context_length`), if it is a known one.
pub fn key_label(key: &str) -> Option<String> {
    let fixed = match key {
        "general.architecture" => "Architecture",
        "general.name" => "Model name",
        "general.basename" => "Base name",
        "general.type" => "Type of file",
        "general.finetune" => "Fine-tune",
        "general.version" => "Version",
        "general.size_label" => "Size",
        "general.author" => "Author",
        "general.organization" => "Organization",
        "general.description" => "Description",
        "general.license" => "License",
        "general.license.name" => "License name",
        "general.license.link" => "License link",
        "general.url" => "URL",
        "general.repo_url" => "Repository",
        "general.source.url" => "Source URL",
        "general.source.repo_url" => "Source repository",
        "general.file_type" => "File type (quantization)",
        "general.quantization_version" => "Quantization format version",
        "general.quantized_by" => "Quantized by",
        "general.alignment" => "Data alignment (bytes)",
        "general.tags" => "Tags",
        "general.languages" => "Languages",
        "general.datasets" => "Datasets",
        "general.base_model.count" => "Base models",
        "tokenizer.ggml.model" => "Tokenizer model",
        "tokenizer.ggml.pre" => "Tokenizer pre-tokenizer",
        "tokenizer.ggml.tokens" => "Tokenizer: tokens",
        "tokenizer.ggml.scores" => "Tokenizer: token scores",
        "tokenizer.ggml.token_type" => "Tokenizer: token types",
        "tokenizer.ggml.merges" => "Tokenizer: BPE merges",
        "tokenizer.ggml.bos_token_id" => "Beginning-of-sequence token id",
        "tokenizer.ggml.eos_token_id" => "End-of-sequence token id",
        "tokenizer.ggml.unknown_token_id" => "Unknown token id",
        "tokenizer.ggml.padding_token_id" => "Padding token id",
        "tokenizer.ggml.separator_token_id" => "Separator token id",
        "tokenizer.ggml.add_bos_token" => "Adds a BOS token",
        "tokenizer.ggml.add_eos_token" => "Adds an EOS token",
        "tokenizer.chat_template" => "Chat template",
        "tokenizer.huggingface.json" => "Hugging Face tokenizer.json",
        _ => "",
    };
    if !fixed.is_empty() {
        return Some(fixed.to_string());
    }
    if let Some(name) = key.strip_prefix("tokenizer.chat_template.") {
        return Some(format!("Chat template `{name}`"));
    }
    if let Some(rest) = key.strip_prefix("general.") {
        return Some(format!("General: {}", rest.replace(['_', '.'], " ")));
    }
    let (arch, rest) = key.split_once('.')?;
    if arch == "tokenizer" {
        return None;
    }
    let label = match rest {
        "context_length" => "context length",
        "embedding_length" => "embedding width",
        "block_count" => "layers (blocks)",
        "feed_forward_length" => "feed-forward width",
        "expert_feed_forward_length" => "expert feed-forward width",
        "use_parallel_residual" => "parallel residual",
        "tensor_data_layout" => "tensor data layout",
        "expert_count" => "experts",
        "expert_used_count" => "experts used per token",
        "vocab_size" => "vocabulary size",
        "attention.head_count" => "attention heads",
        "attention.head_count_kv" => "key/value heads",
        "attention.max_alibi_bias" => "maximum ALiBi bias",
        "attention.clamp_kqv" => "KQV clamp",
        "attention.key_length" => "key length per head",
        "attention.value_length" => "value length per head",
        "attention.layer_norm_epsilon" => "layer norm epsilon",
        "attention.layer_norm_rms_epsilon" => "RMS norm epsilon",
        "attention.sliding_window" => "sliding window",
        "rope.dimension_count" => "RoPE dimensions",
        "rope.freq_base" => "RoPE base frequency",
        "rope.scale_linear" => "RoPE linear scale",
        "rope.scaling.type" => "RoPE scaling type",
        "rope.scaling.factor" => "RoPE scaling factor",
        "rope.scaling.original_context_length" => "RoPE original context length",
        "rope.scaling.finetuned" => "RoPE scaling fine-tuned",
        _ => return None,
    };
    Some(format!("{arch}: {label}"))
}
