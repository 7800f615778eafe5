//! Map reads and writes for many keys at once (`BPF_MAP_LOOKUP_BATCH`,
//! `BPF_MAP_UPDATE_BATCH`, `BPF_MAP_DELETE_BATCH`, kernel 5.6), so that a range of 10,000
//! ports is a handful of system calls. aya 0.14 has no batches, hence the system calls here.

use std::{
    io,
    os::fd::{AsFd as _, AsRawFd as _},
};

use aya::{Pod, maps::MapData};

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;

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
    update_per_cpu(map, keys, values, 1)
}

/// [`update`] for a per-CPU map: `values` holds `cpus` values per key, one per possible CPU
/// (`V`'s size must be a multiple of 8, as the kernel lays per-CPU values out).
pub fn update_per_cpu<K: Pod, V: Pod>(
    map: &MapData,
    keys: &[K],
    values: &[V],
    cpus: usize,
) -> io::Result<()> {
    run(
        map,
        BPF_MAP_UPDATE_BATCH,
        bytes(keys),
        size_of::<K>(),
        Some((bytes(values), size_of::<V>() * cpus)),
        None,
    )
}

/// Every entry of a hash map, read in batches of up to 4,096 (`BPF_MAP_LOOKUP_BATCH`): a
/// few system calls where iterating takes two per entry.
pub fn entries<K: Pod + Default, V: Pod + Default>(map: &MapData) -> io::Result<Vec<(K, V)>> {
    const CHUNK: usize = 4096;
    let map_fd = fd(map)?;
    let mut keys = vec![K::default(); CHUNK];
    let mut values = vec![V::default(); CHUNK];
    let mut entries = Vec::new();
    // The kernel's cursor (a bucket number for hash maps), fed back in for the next batch.
    let mut cursor = 0u64;
    let mut first = true;
    loop {
        let mut next = 0u64;
        let mut attr = BatchAttr {
            in_batch: if first {
                0
            } else {
                std::ptr::from_mut(&mut cursor) as u64
            },
            out_batch: std::ptr::from_mut(&mut next) as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: u32::try_from(CHUNK).unwrap_or(u32::MAX),
            map_fd,
            ..BatchAttr::default()
        };
        let result = bpf(BPF_MAP_LOOKUP_BATCH, &mut attr);
        let got = (attr.count as usize).min(CHUNK);
        entries.extend(
            keys[..got]
                .iter()
                .copied()
                .zip(values[..got].iter().copied()),
        );
        match result {
            Ok(()) => {}
            // The end of the map.
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => return Ok(entries),
            Err(err) => return Err(err),
        }
        cursor = next;
        first = false;
    }
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
