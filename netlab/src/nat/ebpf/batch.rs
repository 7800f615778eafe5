//! Map writes for many keys at once: batched (`BPF_MAP_UPDATE_BATCH`, `BPF_MAP_DELETE_BATCH`,
//! kernel 5.6), so that a range of 10,000 ports is a handful of system calls, and "create
//! where missing" with one value buffer for all keys, which batches cannot do (they take
//! no `BPF_NOEXIST`). aya 0.14 has neither, hence the system calls here.

use std::{
    io,
    os::fd::{AsFd as _, AsRawFd as _},
};

use aya::{Pod, maps::MapData};

const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;

/// `BPF_NOEXIST`: create, never replace.
const BPF_NOEXIST: u64 = 1;

/// `union bpf_attr` as the `BPF_MAP_*_BATCH` commands read it.
#[repr(C)]
#[derive(Debug, Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    /// In: how many entries; out: how many were processed.
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// `union bpf_attr` as `BPF_MAP_UPDATE_ELEM` reads it.
#[repr(C)]
#[derive(Debug)]
struct ElemAttr {
    map_fd: u32,
    pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// The bytes of `items`, as the kernel reads keys and values.
fn bytes<T: Pod>(items: &[T]) -> &[u8] {
    // SAFETY: `Pod` types are plain `#[repr(C)]` data without padding; the slice covers
    // exactly the items' memory and lives as long as they do.
    unsafe { std::slice::from_raw_parts(items.as_ptr().cast(), size_of_val(items)) }
}

fn fd(map: &MapData) -> io::Result<u32> {
    u32::try_from(map.fd().as_fd().as_raw_fd())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<()> {
    // SAFETY: `attr` is a `bpf_attr` prefix the command reads (and may write back), whose
    // pointers lead to buffers the caller keeps alive across the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr).cast::<libc::c_void>(),
            size_of::<T>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Writes `values[i]` at `keys[i]` for every i, created or replaced.
pub fn update<K: Pod, V: Pod>(map: &MapData, keys: &[K], values: &[V]) -> io::Result<()> {
    run(
        map,
        BPF_MAP_UPDATE_BATCH,
        bytes(keys),
        size_of::<K>(),
        Some((bytes(values), size_of::<V>())),
        None,
    )
}

/// Deletes `keys`; a key that is not there is no error.
pub fn delete<K: Pod>(map: &MapData, keys: &[K]) -> io::Result<()> {
    run(
        map,
        BPF_MAP_DELETE_BATCH,
        bytes(keys),
        size_of::<K>(),
        None,
        Some(libc::ENOENT),
    )
}

/// Creates the keys that are missing, each with `value` (the raw bytes of one value: a
/// per-CPU map's is one slot per possible CPU, each rounded up to 8 bytes); keys that exist
/// keep theirs. One system call per key, no allocation.
pub fn create_missing<K: Pod>(map: &MapData, keys: &[K], value: &[u8]) -> io::Result<()> {
    let map_fd = fd(map)?;
    for key in keys {
        let mut attr = ElemAttr {
            map_fd,
            pad: 0,
            key: std::ptr::from_ref(key) as u64,
            value: value.as_ptr() as u64,
            flags: BPF_NOEXIST,
        };
        match bpf(BPF_MAP_UPDATE_ELEM, &mut attr) {
            Err(err) if err.raw_os_error() != Some(libc::EEXIST) => return Err(err),
            _ => {}
        }
    }
    Ok(())
}

/// The kernel stops a batch at the first entry it refuses and says how many it processed
/// before it: a `tolerated` refusal skips that entry and goes on with the rest.
fn run(
    map: &MapData,
    cmd: libc::c_long,
    keys: &[u8],
    key_size: usize,
    values: Option<(&[u8], usize)>,
    tolerated: Option<i32>,
) -> io::Result<()> {
    let count = keys.len() / key_size;
    let map_fd = fd(map)?;
    let mut done = 0;
    while done < count {
        let mut attr = BatchAttr {
            keys: keys[done * key_size..].as_ptr() as u64,
            values: values.map_or(0, |(values, size)| values[done * size..].as_ptr() as u64),
            count: u32::try_from(count - done).unwrap_or(u32::MAX),
            map_fd,
            ..BatchAttr::default()
        };
        let result = bpf(cmd, &mut attr);
        let processed = attr.count as usize;
        match result {
            Ok(()) => done += processed.max(1),
            Err(err) if err.raw_os_error() == tolerated => done += processed + 1,
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
