//! `ckptscope diff`: two checkpoints compared tensor by tensor, or one pair in detail.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::options::{JsonArg, ReadArgs};
use super::stdio::{with_progress_line, write_out};

/// Compare two checkpoints tensor by tensor (any formats ckptscope opens). Exit 0 when
/// identical, 1 when different, 2 on error.
#[derive(Args)]
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
    Auto,
    Llama,
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
        write_out(|out| {
            if json {
                ckptscope::output::diff::write_tensor_json(out, &one, hist.as_ref())
            } else {
                ckptscope::output::diff::write_tensor(out, &one, hist.as_ref())
            }
        })?;
        return Ok(ExitCode::from(u8::from(
            one.status != diff::Status::Identical,
        )));
    }
    let d = with_progress_line(&progress, "comparing", || {
        diff::diff_mapped(&a, &b, mapping.as_ref(), &progress)
    });
    write_out(|out| {
        if json {
            ckptscope::output::diff::write_json(out, &a, &b, &d)
        } else {
            ckptscope::output::diff::write_human(out, &a, &b, &d)
        }
    })?;
    Ok(ExitCode::from(u8::from(!d.is_identical())))
}
