//! `netlab down`.

use std::process::ExitCode;

use crate::{error::Result, lifecycle};

pub fn run(lab_name: &str) -> Result<ExitCode> {
    lifecycle::down(lab_name)?;
    println!("lab {lab_name} is down");
    Ok(ExitCode::SUCCESS)
}
