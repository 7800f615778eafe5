//! Folders that labs share (`/run/netlab`, `/sys/fs/bpf/netlab` and its `counters`):
//! created when a lab needs them and removed when the last lab leaves them empty, so nothing
//! of netlab's stays on the machine after the last `down`. Two netlab processes may do both
//! at once; a folder that vanishes between being created and being written to is created
//! again.

use std::{io, os::unix::fs::DirBuilderExt as _, path::Path};

/// How often a write is retried when its folder was removed under it.
const ATTEMPTS: u32 = 5;

/// Creates `dir` (and its parents) with `mode`, then runs `write` in it.
pub fn write_in<T>(
    dir: &Path,
    mode: u32,
    mut write: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    let mut attempt = 1;
    loop {
        let result = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .and_then(|()| write());
        match result {
            Err(err) if err.kind() == io::ErrorKind::NotFound && attempt < ATTEMPTS => attempt += 1,
            other => return other,
        }
    }
}

/// Removes each of `dirs`, in order, that is empty; a folder still in use stays.
pub fn remove_if_empty(dirs: &[&Path]) {
    for dir in dirs {
        let _ = std::fs::remove_dir(dir);
    }
}
