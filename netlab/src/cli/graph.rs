//! `netlab graph [-f FILE] [--format dot|mermaid|svg] [-o OUT]`: the lab as a picture.

use std::{path::PathBuf, process::ExitCode};

use super::up::{BackendArgs, choose, load_lab};
use crate::{
    error::{Context as _, Result},
    graph::{self, Format},
    lifecycle, state,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Lab file (TOML) to draw without deploying it; without it, the running lab, else the
    /// built-in walkthrough lab.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "dot")]
    pub format: Format,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

pub fn run(lab_name: &str, args: &Args) -> Result<ExitCode> {
    state::validate_name(lab_name)?;
    let running = match state::load(lab_name)? {
        // A crashed publish is finished first: the drawing shows what forwards.
        Some(saved) if saved.pending.is_some() => Some(lifecycle::settled(lab_name)?),
        other => other,
    };
    let lab = match (&args.file, &running) {
        (None, Some(running)) => running.lab.clone(),
        (file, _) => load_lab(file.as_ref())?,
    };
    lab.validate()?;
    let (backend, options) = choose(&args.backend, running.as_ref());
    let ctx = crate::nat::NatContext {
        lab_name,
        lab: &lab,
        options,
    };
    let hooks = backend.backend()?.hooks(ctx);
    let text = graph::render(
        &graph::picture(lab_name, &lab, backend, &hooks),
        args.format,
    )?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).op(|| format!("writing {}", path.display()))?;
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
