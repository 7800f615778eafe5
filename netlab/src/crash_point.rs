//! Named points at which a test can make netlab die, to prove that every state a crash can
//! leave is one `down` removes and `up` converges from.
//!
//! Every operation that changes the kernel or the state file passes a crash point first,
//! named by what it is about to do (`ip -n <lab>-host link add br0 type bridge`, `attach
//! netlab_nat_ext_ingress@eth0`, `state save`). With `NETLAB_CRASH_AT` set to one of those
//! names netlab aborts there, as a `kill -9` would stop it (`NAME#K` for the K-th time a
//! command passes a point of that name); with `NETLAB_CRASH_LOG` set to a file it appends the
//! name of every point it passes, so a test can list them. They cost nothing unless set, and
//! are meant for nothing but tests.

use std::{collections::HashMap, io::Write as _, sync::Mutex};

/// Environment variable: the crash point at which to abort.
pub const CRASH_AT: &str = "NETLAB_CRASH_AT";
/// Environment variable: a file to which every crash point passed is appended, one a line.
pub const CRASH_LOG: &str = "NETLAB_CRASH_LOG";

/// How many times this process passed each crash point.
static PASSED: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

/// The crash point `name`: logged when `NETLAB_CRASH_LOG` is set, fatal when `NETLAB_CRASH_AT`
/// names it. Lab names in `name` are written `<lab>` so names are the same for every lab.
pub fn reached(lab_name: &str, name: &str) {
    let log = std::env::var_os(CRASH_LOG);
    let at = std::env::var_os(CRASH_AT);
    if log.is_none() && at.is_none() {
        return;
    }
    let name = generic(lab_name, name);
    let times = {
        let mut passed = PASSED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = passed
            .get_or_insert_with(HashMap::new)
            .entry(name.clone())
            .or_insert(0);
        *count += 1;
        *count
    };
    if let Some(path) = log
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        // One write per line: points passed on several threads do not interleave.
        let _ = file.write_all(format!("{name}\n").as_bytes());
    }
    let here = |at: &str| at == format!("{name}#{times}") || (times == 1 && at == name);
    if at.is_some_and(|at| at.to_str().is_some_and(here)) {
        std::process::abort();
    }
}

/// `name` with lab `lab_name`'s own names (`<lab>-host`, `NL-<lab>-`, `/netlab/<lab>/`)
/// written with `<lab>`.
fn generic(lab_name: &str, name: &str) -> String {
    if lab_name.is_empty() {
        return name.to_owned();
    }
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    // Each piece is a word and the one character that ends it.
    name.split_inclusive(|c: char| !is_word(c))
        .map(|piece| {
            let word = piece.strip_suffix(|c: char| !is_word(c)).unwrap_or(piece);
            if word == lab_name {
                format!("<lab>{}", &piece[word.len()..])
            } else {
                piece.to_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_names_are_made_generic_and_only_whole_words() {
        assert_eq!(
            generic("demo", "ip -n demo-host link add br0 type bridge"),
            "ip -n <lab>-host link add br0 type bridge"
        );
        assert_eq!(
            generic("demo", "iptables-restore NL-demo-DNAT"),
            "iptables-restore NL-<lab>-DNAT"
        );
        assert_eq!(
            generic("demo", "/sys/fs/bpf/netlab/demo/links"),
            "/sys/fs/bpf/netlab/<lab>/links"
        );
        assert_eq!(generic("demo", "attach x@demox"), "attach x@demox");
        assert_eq!(generic("", "state save"), "state save");
    }
}
