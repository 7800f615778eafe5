//! The BPF filesystem where netlab pins maps, programs and links so they outlive the CLI.

use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};

use crate::{
    error::{Context as _, Error, Result},
    shared_dirs,
};

/// bpffs mount point.
pub const BPFFS: &str = "/sys/fs/bpf";
/// Everything netlab pins lives below this folder.
pub const PIN_ROOT: &str = "/sys/fs/bpf/netlab";

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Mounts bpffs at `/sys/fs/bpf` unless it is there already. Equivalent:
/// `mount -t bpf bpf /sys/fs/bpf`.
pub fn ensure_mounted() -> Result<()> {
    if is_bpffs(Path::new(BPFFS)) {
        return Ok(());
    }
    mount(
        Some("bpf"),
        BPFFS,
        Some("bpf"),
        MsFlags::empty(),
        Some("mode=0700"),
    )
    .op(|| format!("mounting bpffs at {BPFFS}"))
}

fn is_bpffs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|fs| fs.filesystem_type().0 == BPF_FS_MAGIC)
}

/// Creates `dir` (and parents) on bpffs, readable by root only.
pub fn create_dir(dir: &Path) -> Result<PathBuf> {
    ensure_mounted()?;
    shared_dirs::write_in(dir, 0o700, || Ok(())).op(|| format!("creating {}", dir.display()))?;
    Ok(dir.to_path_buf())
}

/// Removes netlab's shared pin folders that no lab and no counters use any more.
pub fn remove_unused_roots() {
    let root = Path::new(PIN_ROOT);
    shared_dirs::remove_if_empty(&[&root.join("counters"), root]);
}

/// Removes a pin folder and everything in it; unpinning a link detaches its program. A
/// missing folder is not an error.
pub fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::io(
            format!("removing pins in {}", dir.display()),
            err,
        )),
    }
}
