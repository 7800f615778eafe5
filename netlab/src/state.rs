//! What netlab remembers about a lab between commands: `/run/netlab/<lab>.json`. It is written
//! before `up` creates anything, so `down` can clean up after a crash at any point; `down`
//! also finds the lab's namespaces by name, in case the state file itself is gone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{
    crash_point,
    error::{Context as _, Error, Result},
    lab::{Lab, Publish},
    nat::{BackendKind, BackendOptions, NatContext},
    shared_dirs,
};

/// Folder of the state files (tmpfs: a reboot forgets labs, as it forgets their namespaces).
pub const STATE_DIR: &str = "/run/netlab";

/// A lab as netlab created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    pub name: String,
    pub backend: BackendKind,
    #[serde(default)]
    pub options: BackendOptions,
    /// Host-wide sysctls as they were before a `host = "root"` lab changed them, restored by
    /// `down` (empty for labs whose host is a namespace).
    #[serde(default)]
    pub host_sysctls: Vec<(String, String)>,
    /// The lab as declared, with `publish` being the ports published now (`publish` and
    /// `unpublish` update it).
    pub lab: Lab,
    /// A `publish` or `unpublish` being applied: recorded, with `lab.publish` already the
    /// set it makes, before the datapath is changed. Found set, it means a crash stopped the
    /// command half way; the next command finishes it (`lifecycle::settled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
}

/// A change of the published set under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pending {
    /// These ports are being added.
    Publish(Vec<Publish>),
    /// These ports are being removed.
    Unpublish(Vec<Publish>),
}

impl LabState {
    /// What the lab's NAT backend is called with.
    pub fn nat_context(&self) -> NatContext<'_> {
        NatContext {
            lab_name: &self.name,
            lab: &self.lab,
            options: self.options,
        }
    }
}

pub fn path(lab: &str) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{lab}.json"))
}

/// Checks a lab name: it becomes the prefix of namespace names (`<lab>-<node>`), chain names
/// and pin folders, so it is short and has no `-`.
pub fn validate_name(name: &str) -> Result<()> {
    // `counters` is the pin folder of `netlab counters`, beside the labs' own.
    let ok = !name.is_empty()
        && name.len() <= 16
        && name != "counters"
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid lab name {name:?}: use 1-16 letters, digits or '_' (not \"counters\")"
        )))
    }
}

pub fn load(lab: &str) -> Result<Option<LabState>> {
    let file = path(lab);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::io(format!("reading {}", file.display()), err)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|err| Error::json(format!("corrupt state file {}", file.display()), err))
}

/// Loads the state of a lab that must be up.
pub fn require(lab: &str) -> Result<LabState> {
    load(lab)?.ok_or_else(|| Error::invalid(format!("lab {lab:?} is not up (run `netlab up`)")))
}

/// Writes the state atomically (write a temporary file, then rename).
pub fn save(state: &LabState) -> Result<()> {
    crash_point::reached(&state.name, "state save");
    let file = path(&state.name);
    let tmp = file.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(state)
        .map_err(|err| Error::json("serializing the lab state", err))?;
    shared_dirs::write_in(Path::new(STATE_DIR), 0o755, || {
        std::fs::write(&tmp, &text)?;
        std::fs::rename(&tmp, &file)
    })
    .op(|| format!("writing {}", file.display()))
}

/// Removes the lab's state file, and the state folder once no lab is left in it.
pub fn remove(lab: &str) -> Result<()> {
    crash_point::reached(lab, "state remove");
    let removed = std::fs::remove_file(path(lab));
    shared_dirs::remove_if_empty(&[Path::new(STATE_DIR)]);
    match removed {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::io(format!("removing {}", path(lab).display()), err)),
    }
}

#[cfg(test)]
mod tests {
    use super::validate_name;

    #[test]
    fn lab_names() {
        for ok in ["netlab", "a", "lab_1", "ABCDEFGHIJKLMNOP"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a-b",
            "with space",
            "ABCDEFGHIJKLMNOPQ",
            "ü",
            "counters",
        ] {
            let err = validate_name(bad).expect_err(bad).to_string();
            assert!(err.contains("invalid lab name"), "{err}");
        }
    }
}
