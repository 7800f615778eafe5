//! The `netlab-cni` CNI plugin: reads the network configuration on stdin and the `CNI_*`
//! environment, prints the result (or the CNI error) on stdout.

use std::{io::Read as _, process::ExitCode};

use netlab::cni::{self, error::CniError};

fn main() -> ExitCode {
    let env = cni::Env::from_process();
    let mut stdin = Vec::new();
    let outcome = std::io::stdin()
        .read_to_end(&mut stdin)
        .map_err(|err| {
            CniError::new(
                cni::error::code::IO_FAILURE,
                format!("reading the configuration on stdin: {err}"),
            )
        })
        .and_then(|_| cni::run(&env, &stdin));
    let (output, code) = match outcome {
        Ok(None) => return ExitCode::SUCCESS,
        Ok(Some(result)) => (result.to_string(), ExitCode::SUCCESS),
        Err(err) => (
            serde_json::to_string(&err).unwrap_or_else(|_| err.msg.clone()),
            ExitCode::FAILURE,
        ),
    };
    println!("{output}");
    code
}
