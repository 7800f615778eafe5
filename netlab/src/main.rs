//! The `netlab` command.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // Like other command-line tools, end quietly when the reader of our output goes away
    // (`netlab ports | head`), instead of panicking on a broken pipe.
    // SAFETY: called before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    env_logger::Builder::from_env(env_logger::Env::default().filter_or("NETLAB_LOG", "warn"))
        .init();
    let cli = match netlab::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version: printed on stdout, exit 0.
        Err(err) if !err.use_stderr() => err.exit(),
        Err(err) => {
            #[expect(
                clippy::print_stderr,
                reason = "the one place usage errors reach the user"
            )]
            {
                eprintln!(
                    "netlab: {}",
                    netlab::cli::usage_error_line(&err.render().to_string())
                );
            }
            return ExitCode::from(netlab::cli::USAGE_EXIT);
        }
    };
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
