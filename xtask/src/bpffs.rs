//! bpffs at `/sys/fs/bpf`: netlab mounts it when it is missing (a fresh machine has none).
//! A test or demo run that caused the mount takes it away again at the end, once nothing but
//! the kernel's own `maps.debug`/`progs.debug` is in it, so the machine is left as it was.

use std::process::Command;

const BPFFS: &str = "/sys/fs/bpf";

fn mounted() -> bool {
    Command::new("stat")
        .args(["-f", "-c", "%T", BPFFS])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "bpf_fs")
}

/// Whether bpffs was mounted before this run.
#[derive(Debug)]
pub struct Mount {
    was_mounted: bool,
}

impl Mount {
    pub fn note() -> Self {
        Self {
            was_mounted: mounted(),
        }
    }

    /// Unmounts bpffs if this run mounted it and nothing of anyone's is pinned in it.
    pub fn restore(&self) {
        if self.was_mounted || !mounted() {
            return;
        }
        let in_use = std::fs::read_dir(BPFFS).map_or(true, |entries| {
            entries.filter_map(Result::ok).any(|entry| {
                !matches!(
                    entry.file_name().to_str(),
                    Some("maps.debug" | "progs.debug")
                )
            })
        });
        if !in_use {
            let _ = Command::new("umount").arg(BPFFS).status();
        }
    }
}
