//! `netlab completions bash|zsh|fish|elvish|powershell`: a shell completion script, generated
//! from the same clap definitions the CLI parses with, on stdout
//! (e.g. `netlab completions bash > /etc/bash_completion.d/netlab`).

use std::process::ExitCode;

use clap::CommandFactory as _;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(args: &Args) -> ExitCode {
    clap_complete::generate(
        args.shell,
        &mut super::Cli::command(),
        "netlab",
        &mut std::io::stdout(),
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn bash_completion_knows_every_subcommand() {
        let mut out = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut crate::cli::Cli::command(),
            "netlab",
            &mut out,
        );
        let script = String::from_utf8(out).expect("UTF-8");
        for subcommand in [
            "up",
            "down",
            "publish",
            "unpublish",
            "conntrack",
            "completions",
            "man",
        ] {
            assert!(
                script.contains(subcommand),
                "no {subcommand} in the completion script"
            );
        }
    }
}
