//! One command at a time per lab: `up`, `down`, `publish` and `unpublish` hold an exclusive
//! `flock` on `/run/netlab/<lab>.lock` while they read, change and save the lab, so commands
//! run concurrently (scripts, container runtimes) apply in some serial order and no update is
//! lost. The lock file goes when the lab does (a lock released with no state file left
//! removes it, still holding it); a command that was waiting on a removed file notices (its
//! file is no longer the one at the path) and locks the new one.

use std::{
    fs::File,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use nix::fcntl::{Flock, FlockArg};

use crate::{
    error::{Error, Result},
    shared_dirs,
    state::{self, STATE_DIR},
};

/// The lab's lock, held until dropped.
#[derive(Debug)]
pub struct LabLock {
    lab: String,
    path: PathBuf,
    _file: Flock<File>,
}

fn path(lab: &str) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{lab}.lock"))
}

impl LabLock {
    /// Waits for lab `lab`'s lock (`flock /run/netlab/<lab>.lock`).
    pub fn acquire(lab: &str) -> Result<Self> {
        let path = path(lab);
        loop {
            let file = shared_dirs::write_in(Path::new(STATE_DIR), 0o755, || {
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
            })
            .map_err(|err| Error::io(format!("opening {}", path.display()), err))?;
            let locked = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| {
                Error::io(format!("locking {}", path.display()), errno.into())
            })?;
            // A `down` that held it may have removed the file while we waited.
            let same = std::fs::metadata(&path)
                .is_ok_and(|now| locked.metadata().is_ok_and(|ours| ours.ino() == now.ino()));
            if same {
                return Ok(Self {
                    lab: lab.to_string(),
                    path,
                    _file: locked,
                });
            }
        }
    }
}

impl Drop for LabLock {
    /// Releases the lock; when the lab is not up (any more), removes the lock file first,
    /// so nothing of netlab's stays in `/run` after the last `down`.
    fn drop(&mut self) {
        if !state::path(&self.lab).exists() {
            let _ = std::fs::remove_file(&self.path);
            shared_dirs::remove_if_empty(&[Path::new(STATE_DIR)]);
        }
    }
}
