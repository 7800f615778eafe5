//! Loading netlab's eBPF object for every user of it (the NAT backend, the counters tool,
//! the tests): the embedded object, its programs, bpffs and pinned links.

pub mod bpffs;

use aya::{
    Ebpf, EbpfLoader,
    programs::{Program, ProgramError},
};

use crate::error::{Error, Result};

/// The eBPF object built by `cargo xtask build-ebpf`; build.rs refuses to build netlab with a
/// stale one.
static OBJECT: &[u8] = aya::include_bytes_aligned!(env!("NETLAB_EBPF_OBJECT"));

/// Loads (parses and creates maps for) the embedded object, in the calling thread's
/// namespace, with the maps declared `pinned` pinned in `dir`, or reused from there when a
/// previous load pinned them (so a running datapath keeps its state). Every load names its
/// folder: without one, aya pins those maps at the root of bpffs, where nothing removes them.
/// `sizes` overrides the declared size of maps, by name.
pub fn load(dir: &std::path::Path, sizes: &[(&str, u32)]) -> Result<Ebpf> {
    let mut loader = EbpfLoader::new();
    loader.default_map_pin_directory(dir);
    for (name, size) in sizes {
        loader.map_max_entries(name, *size);
    }
    loader
        .load(OBJECT)
        .map_err(|err| Error::ebpf("loading the eBPF object", err))
}

/// Program `name` of a loaded object, as the program type `P`.
pub fn program<'a, P>(bpf: &'a mut Ebpf, name: &str) -> Result<&'a mut P>
where
    &'a mut P: TryFrom<&'a mut Program, Error = ProgramError>,
{
    bpf.program_mut(name)
        .ok_or_else(|| Error::NotInObject {
            kind: "program",
            name: name.to_string(),
        })?
        .try_into()
        .map_err(|err| Error::ebpf(format!("program {name} has an unexpected type"), err))
}

/// Loads programs `names` of `bpf`, on as many threads as there are CPUs (at most one per
/// program): the verifier runs in the loading thread (~80 ms for the costliest program
/// here, a third of a first `up`). `names` come most expensive first, so that the
/// longest starts at once. Programs loaded already are left as they are.
pub fn load_programs(bpf: &mut Ebpf, names: &[&str]) -> Result<()> {
    let mut queue: Vec<(&str, &mut Program)> = bpf
        .programs_mut()
        .filter(|(name, _)| names.contains(name))
        .collect();
    // Popped from the end.
    queue.sort_by_key(|(name, _)| std::cmp::Reverse(names.iter().position(|n| n == name)));
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(queue.len());
    let queue = std::sync::Mutex::new(queue);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let next = queue.lock().map_or(None, |mut queue| queue.pop());
                        let Some((name, program)) = next else {
                            return Ok(());
                        };
                        load_program(name, program)?;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| Err(Error::invalid("a thread loading programs panicked")))
            })
            .collect::<Result<Vec<()>>>()
            .map(drop)
    })
}

/// Loads `program` (called `name`), unless it is loaded already.
fn load_program(name: &str, program: &mut Program) -> Result<()> {
    let loaded = match program {
        Program::SchedClassifier(program) => program.load(),
        Program::Xdp(program) => program.load(),
        Program::CgroupSockAddr(program) => program.load(),
        _ => {
            return Err(Error::invalid(format!(
                "program {name} is of a type netlab does not load"
            )));
        }
    };
    verified(loaded, name)
}

/// The result of loading program `name`, where "loaded already" is success.
pub fn verified(result: std::result::Result<(), ProgramError>, name: &str) -> Result<()> {
    match result {
        Ok(()) | Err(ProgramError::AlreadyLoaded) => Ok(()),
        Err(err) => Err(Error::ebpf(format!("loading {name} (verifier)"), err)),
    }
}

/// Bytes of kernel memory `map` takes: `memlock` in its descriptor's fdinfo.
pub fn map_memory(map: &aya::maps::MapData) -> std::io::Result<u64> {
    use std::os::fd::{AsFd as _, AsRawFd as _};
    let fd = map.fd().as_fd().as_raw_fd();
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))?;
    info.lines()
        .find_map(|line| line.strip_prefix("memlock:"))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no memlock in the fdinfo of map fd {fd}")))
}

/// The id of the program behind the link pinned at `path`.
pub fn pinned_link_program(path: &std::path::Path) -> Result<u32> {
    use aya::programs::links::{FdLink, PinnedLink};
    let op = || format!("reading the link pinned at {}", path.display());
    let link = FdLink::from(PinnedLink::from_pin(path).map_err(|err| Error::ebpf(op(), err))?);
    Ok(link
        .info()
        .map_err(|err| Error::ebpf(op(), err))?
        .program_id())
}

/// Pins a link (taken from its program) at `path`, so it stays attached after we exit.
pub fn pin_link<E>(
    link: std::result::Result<aya::programs::links::FdLink, E>,
    path: &std::path::Path,
) -> Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let link = link.map_err(|err| Error::ebpf("converting a link to an fd link", err))?;
    link.pin(path)
        .map(drop)
        .map_err(|err| Error::ebpf(format!("pinning {}", path.display()), err))
}

#[cfg(test)]
mod tests {
    use netlab_common::nat::{maps, programs};

    /// The eBPF side spells map and program names as literals (its macros want them); the
    /// object built from it must have exactly the NAT maps and programs `netlab-common` names.
    #[test]
    fn the_object_has_the_maps_and_programs_netlab_common_names() {
        let object = aya_obj::Object::parse(super::OBJECT).expect("parsing the eBPF object");
        let mut in_object: Vec<&str> = object
            .maps
            .keys()
            .map(String::as_str)
            .filter(|name| name.starts_with("NETLAB_NAT_") || name.starts_with("NETLAB_NAT6_"))
            .collect();
        in_object.sort_unstable();
        let mut named = maps::ALL.to_vec();
        named.extend(netlab_common::nat6::maps::ALL);
        named.sort_unstable();
        assert_eq!(
            in_object, named,
            "NAT maps in the object vs netlab_common::nat::maps"
        );
        let mut in_object: Vec<&str> = object
            .programs
            .keys()
            .map(String::as_str)
            .filter(|name| {
                name.starts_with("netlab_nat_")
                    || name.starts_with("netlab_sock_")
                    || *name == programs::XDP_PASS
            })
            .collect();
        in_object.sort_unstable();
        let mut named = programs::ALL.to_vec();
        named.extend(netlab_common::nat6::programs::ALL);
        named.sort_unstable();
        assert_eq!(
            in_object, named,
            "NAT programs in the object vs netlab_common::nat::programs"
        );
    }
}
