//! `ckptscope diff`: two checkpoints compared tensor by tensor, or one pair in detail.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::options::{JsonArg, ReadArgs};
use super::stdio::{with_progress_line, write_either};

/// Compare two checkpoints tensor by tensor (any formats ckptscope opens)
///
/// Pairs the tensors of A and B (by name, or by llama.cpp's names with `--map`), and for each
/// pair says whether it is identical, changed in values, type or shape, or only on one side,
/// with the largest and mean absolute difference, the relative L2 distance and the cosine;
/// metadata changes are listed too. `--tensor NAME` shows one pair in detail with a histogram
/// of a-b. Pickles are read under the same rules as `info` (`--allow-*`).
///
/// Examples:
///   ckptscope diff v1.safetensors v2.safetensors
///   ckptscope diff model-Q8_0.gguf ./llama-hf/ --tensor blk.0.attn_q.weight
///
/// JSON (`--json`): {"a", "b", "summary", "tensors": [{"name", "status", "dtype_a", "dtype_b",
/// "shape_a", "shape_b", "max_abs_diff", "mean_abs_diff", "rel_l2", "cosine", "differing",
/// "count", "name_b"?, "unpermuted_heads"?}], "renames", "metadata", "mapping"}; with
/// `--tensor`, {"tensor", "histogram"}.
///
/// Exit status: 0 when identical (with `--tensor`: that pair), 1 when different, 2 on an error
/// (unreadable file, no such tensor, bad arguments).
#[derive(Args)]
#[command(verbatim_doc_comment)]
#[command(mut_arg("json", |a| a.help("Print one JSON object")))]
pub struct DiffArgs {
    /// The first checkpoint (A).
    a: PathBuf,
    /// The second checkpoint (B).
    b: PathBuf,
    #[command(flatten)]
    json: JsonArg,
    /// Show one tensor in detail, with a histogram of a-b.
    #[arg(long, value_name = "NAME")]
    tensor: Option<String>,
    /// Bins of the a-b histogram (with --tensor).
    #[arg(long, default_value_t = 20)]
    bins: usize,
    /// How tensors are paired: `llama` by the names llama.cpp gives a Hugging Face Llama model
    /// in GGUF (undoing its Q/K row permutation), `none` by equal names, `auto` llama when one
    /// side is a Llama GGUF file holding the other's tensors.
    #[arg(long, value_enum, default_value = "auto")]
    map: MapArg,
    #[command(flatten)]
    read: ReadArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MapArg {
    /// `llama` when one side is a Llama GGUF file holding the other's tensors, else `none`.
    Auto,
    /// By the names llama.cpp gives a Hugging Face Llama model, undoing its Q/K permutation.
    Llama,
    /// By equal names.
    None,
}

pub fn run(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    use ckptscope::analysis::diff;
    use ckptscope::analysis::namemap::Mapping;
    let options = args.read.open_options()?;
    let a = ckptscope::format::open_with(&args.a, &options)?;
    let b = ckptscope::format::open_with(&args.b, &options)?;
    let mapping = match args.map {
        MapArg::Auto => Mapping::offered(&a, &b),
        MapArg::Llama => Some(Mapping::llama(&a, &b)?),
        MapArg::None => None,
    };
    let json = args.json.json;
    let progress = ckptscope::progress::Progress::new();
    if let Some(name) = &args.tensor {
        let pairs = diff::pairs(&a, &b, mapping.as_ref());
        let Some(pair) = pairs
            .iter()
            .find(|p| [p.a, p.b].into_iter().flatten().any(|t| t.name == *name))
        else {
            anyhow::bail!("no tensor named `{name}` in either checkpoint");
        };
        let one = diff::compare_pair(&a, &b, pair, &progress);
        let hist = match &one.measures {
            Some(m) => Some(
                diff::pair_histogram(&a, &b, pair, m, args.bins, &progress)
                    .map_err(anyhow::Error::msg)?,
            ),
            None => None,
        };
        write_either(
            json,
            |o| ckptscope::output::diff::write_tensor_json(o, &one, hist.as_ref()),
            |o| ckptscope::output::diff::write_tensor(o, &one, hist.as_ref()),
        )?;
        return Ok(ExitCode::from(u8::from(
            one.status != diff::Status::Identical,
        )));
    }
    let d = with_progress_line(&progress, "comparing", || {
        diff::diff_mapped(&a, &b, mapping.as_ref(), &progress)
    });
    write_either(
        json,
        |o| ckptscope::output::diff::write_json(o, &a, &b, &d),
        |o| ckptscope::output::diff::write_human(o, &a, &b, &d),
    )?;
    Ok(ExitCode::from(u8::from(!d.is_identical())))
}
