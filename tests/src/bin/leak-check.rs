//! `leak-check [PREFIX]`: exits non-zero, listing them, if objects named with PREFIX (default:
//! the suites' prefix) still exist, or netlab's own leftovers (maps pinned at the root of
//! bpffs, empty shared folders). `cargo xtask test` runs it after the suites.

use std::process::ExitCode;

fn main() -> ExitCode {
    let prefix = std::env::args()
        .nth(1)
        .unwrap_or_else(|| netlab_e2e::PREFIX.to_string());
    let leaks = netlab_e2e::leaks::find(&prefix);
    if leaks.is_empty() {
        println!(
            "leak check: nothing named {prefix}*, and nothing of netlab's own, is left behind"
        );
        return ExitCode::SUCCESS;
    }
    println!(
        "leak check FAILED: {} leftover(s) named {prefix}* or of netlab's own:",
        leaks.len()
    );
    for leak in leaks {
        println!("  {leak}");
    }
    ExitCode::FAILURE
}
