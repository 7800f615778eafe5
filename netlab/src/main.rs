//! The `netlab` command.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().filter_or("NETLAB_LOG", "warn"))
        .init();
    let cli = netlab::cli::Cli::parse();
    match netlab::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            #[expect(clippy::print_stderr, reason = "the one place errors reach the user")]
            {
                eprintln!("netlab: {}", netlab::error::Chain(&err));
            }
            ExitCode::FAILURE
        }
    }
}
