//! `netlab man`: the netlab(1) man page in roff, generated from the clap definitions, on
//! stdout (e.g. `netlab man > /usr/local/share/man/man1/netlab.1`).

use std::process::ExitCode;

use clap::CommandFactory as _;

use crate::error::{Error, Result};

pub fn run() -> Result<ExitCode> {
    clap_mangen::Man::new(super::Cli::command())
        .render(&mut std::io::stdout())
        .map_err(|err| Error::io("writing the man page", err))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_man_page_names_the_commands() {
        let mut out = Vec::new();
        clap_mangen::Man::new(crate::cli::Cli::command())
            .render(&mut out)
            .expect("rendering");
        let page = String::from_utf8(out).expect("UTF-8");
        assert!(
            page.starts_with(".ie \\n(.g .ds Aq"),
            "roff: {}",
            &page[..40]
        );
        for text in [".TH netlab 1", "publish", "conntrack"] {
            assert!(page.contains(text), "no {text:?} in the man page");
        }
    }
}
