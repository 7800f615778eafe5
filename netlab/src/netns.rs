//! Network namespaces, named the iproute2 way: a bind mount at `/run/netns/NAME`, so
//! `ip netns list` shows them and `ip netns exec NAME ...` works.

use std::{
    fs::{File, OpenOptions},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use nix::{
    mount::{MntFlags, MsFlags, mount, umount2},
    sched::{CloneFlags, setns, unshare},
};

use crate::error::{Context as _, Error, Result};

/// Where named namespaces live, as for iproute2.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Path of the bind mount that keeps namespace `name` alive.
pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

/// Whether a namespace `name` exists (is mounted).
pub fn exists(name: &str) -> bool {
    File::open(path(name)).is_ok_and(|file| is_netns(&file))
}

fn is_netns(file: &File) -> bool {
    // NSFS_MAGIC: the file is a namespace, not the empty placeholder left by a crash.
    nix::sys::statfs::fstatfs(file).is_ok_and(|fs| fs.filesystem_type().0 == 0x6e73_6673)
}

/// Names of all namespaces under `/run/netns`.
pub fn list() -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(NETNS_RUN_DIR) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(Error::io(format!("listing {NETNS_RUN_DIR}"), err)),
    };
    Ok(entries
        .filter_map(std::result::Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect())
}

/// Creates namespace `name`. Equivalent: `ip netns add NAME`.
pub fn create(name: &str) -> Result<()> {
    prepare_run_dir()?;
    let target = path(name);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(&target)
        .op(|| format!("creating namespace {name:?}"))?;
    // unshare() changes the calling thread's namespace, so do it on a throwaway thread.
    let result = std::thread::scope(|scope| {
        let joined = scope
            .spawn(|| -> Result<()> {
                unshare(CloneFlags::CLONE_NEWNET).op(|| format!("creating namespace {name:?}"))?;
                mount(
                    Some("/proc/thread-self/ns/net"),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .op(|| format!("mounting namespace {name:?} at {}", target.display()))
            })
            .join();
        Error::joined(joined, format!("creating namespace {name:?}"))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&target);
    }
    result
}

/// Deletes namespace `name`; a missing namespace is not an error. Equivalent:
/// `ip netns delete NAME`.
pub fn delete(name: &str) -> Result<()> {
    let target = path(name);
    match umount2(&target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL | nix::Error::ENOENT) => {}
        Err(errno) => {
            return Err(Error::io(
                format!("unmounting namespace {name:?}"),
                std::io::Error::from(errno),
            ));
        }
    }
    match std::fs::remove_file(&target) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::io(format!("removing {}", target.display()), err)),
    }
}

/// Opens namespace `name` for `setns`.
pub fn open(name: &str) -> Result<File> {
    let file = File::open(path(name)).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            Error::invalid(format!("unknown namespace {name:?}"))
        } else {
            Error::io(format!("opening namespace {name:?}"), err)
        }
    })?;
    if !is_netns(&file) {
        return Err(Error::invalid(format!(
            "{} is not a network namespace (left over from a crash? `netlab down` removes it)",
            path(name).display()
        )));
    }
    Ok(file)
}

/// Runs `f` on a thread inside namespace `name`, so sockets, interface-name lookups and
/// `/proc/sys/net` all refer to that namespace; the calling thread is never moved.
pub fn run_in<T: Send>(name: &str, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    run_in_file(&open(name)?, &format!("{name:?}"), f)
}

/// Like [`run_in`], for the namespace whose file is at `path` (a bind mount, or
/// `/proc/PID/ns/net`), as container runtimes name them.
pub fn run_in_path<T: Send>(path: &Path, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let file = File::open(path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            Error::invalid(format!("namespace {} does not exist", path.display()))
        } else {
            Error::io(format!("opening namespace {}", path.display()), err)
        }
    })?;
    if !is_netns(&file) {
        return Err(Error::invalid(format!(
            "{} is not a network namespace",
            path.display()
        )));
    }
    run_in_file(&file, &path.display().to_string(), f)
}

fn run_in_file<T: Send>(
    file: &File,
    name: &str,
    f: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    std::thread::scope(|scope| {
        let joined = scope
            .spawn(|| {
                setns(file, CloneFlags::CLONE_NEWNET)
                    .op(|| format!("entering namespace {name}"))?;
                f()
            })
            .join();
        Error::joined(joined, format!("in namespace {name}"))
    })
}

/// Makes `/run/netns` a shared mount point, as iproute2 does, so namespace mounts made here
/// are seen from other mount namespaces too.
fn prepare_run_dir() -> Result<()> {
    std::fs::create_dir_all(NETNS_RUN_DIR).op(|| format!("creating {NETNS_RUN_DIR}"))?;
    let make_shared = || {
        mount(
            None::<&str>,
            NETNS_RUN_DIR,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    if make_shared().is_ok() {
        return Ok(());
    }
    mount(
        Some(NETNS_RUN_DIR),
        NETNS_RUN_DIR,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .op(|| format!("bind-mounting {NETNS_RUN_DIR} onto itself"))?;
    make_shared().op(|| format!("making {NETNS_RUN_DIR} a shared mount"))
}

/// Starts a thread inside namespace `name` that runs `f` (for long-lived work such as the
/// benchmark's servers and clients); the calling thread is never moved.
pub fn spawn_in<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<Result<T>>> {
    let file = open(name)?;
    let name = name.to_string();
    Ok(std::thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).op(|| format!("entering namespace {name:?}"))?;
        Ok(f())
    }))
}
