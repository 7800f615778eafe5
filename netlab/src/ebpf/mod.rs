//! The kernel side, from userspace: the embedded eBPF object, bpffs, pinning.

pub mod bpffs;
pub mod counters;

use aya::{Ebpf, EbpfLoader};

use crate::error::{Error, Result};

/// The eBPF object built by `cargo xtask build-ebpf`; build.rs refuses to build netlab with a
/// stale one.
static OBJECT: &[u8] = aya::include_bytes_aligned!(env!("NETLAB_EBPF_OBJECT"));

/// Loads (parses and creates maps for) the embedded object, in the calling thread's namespace.
pub fn load() -> Result<Ebpf> {
    EbpfLoader::new()
        .load(OBJECT)
        .map_err(|err| Error::ebpf("loading the eBPF object", err))
}

/// Like [`load`], with the maps declared `pinned` pinned in `dir`, or reused from there when
/// a previous load pinned them (so a running datapath keeps its state).
pub fn load_with_pins(dir: &std::path::Path) -> Result<Ebpf> {
    EbpfLoader::new()
        .default_map_pin_directory(dir)
        .load(OBJECT)
        .map_err(|err| Error::ebpf("loading the eBPF object", err))
}
