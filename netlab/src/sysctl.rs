//! Kernel settings (`/proc/sys`) of one place: the files under `/proc/sys/net` belong to the
//! network namespace of the thread that opens them, so they are read and written from a
//! thread inside the place's namespace.

use std::path::PathBuf;

use crate::{
    error::{Context as _, Result},
    netlink::Place,
};

fn path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key.replace('.', "/"))
}

/// `sysctl -n KEY` in `place`.
pub fn read(place: &Place, key: &str) -> Result<String> {
    place.run(|| {
        std::fs::read_to_string(path(key))
            .map(|value| value.trim().to_string())
            .op(|| format!("reading {key} in {place:?}"))
    })
}

/// `sysctl -w KEY=VALUE` in `place` (`ip netns exec NS sysctl -w ...` for a namespace).
pub fn write(place: &Place, key: &str, value: &str) -> Result<()> {
    place.run(|| {
        std::fs::write(path(key), value).op(|| format!("setting {key}={value} in {place:?}"))
    })
}
