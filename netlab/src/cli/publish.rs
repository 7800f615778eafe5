//! `netlab publish|unpublish NODE SPEC...`.

use std::process::ExitCode;

use crate::{error::Result, lifecycle, ports::PortSpec};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container.
    pub node: String,
    /// Port specs: `[HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/tcp|/udp]`.
    #[arg(required = true)]
    pub specs: Vec<String>,
}

pub fn run(lab_name: &str, args: &Args, publish: bool) -> Result<ExitCode> {
    let specs = args
        .specs
        .iter()
        .map(|spec| spec.parse::<PortSpec>())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if publish {
        lifecycle::publish(lab_name, &args.node, &specs)?;
    } else {
        lifecycle::unpublish(lab_name, &args.node, &specs)?;
    }
    for spec in &specs {
        println!(
            "{} {spec} on {}",
            if publish { "published" } else { "unpublished" },
            args.node
        );
    }
    Ok(ExitCode::SUCCESS)
}
