//! Per-interface packet counters: XDP on receive, tcx on ingress and egress. The programs,
//! links and map are pinned under `/sys/fs/bpf/netlab/counters/<netns>/<device>/`, so the
//! counters keep counting after the CLI exits, until `detach`.

use std::path::{Path, PathBuf};

use aya::{
    maps::{Map, MapData, PerCpuHashMap},
    programs::{SchedClassifier, TcAttachType, Xdp, XdpMode, links::FdLink},
};
use netlab_common::counters::{
    COUNTERS_MAP, CounterKey, CounterValue, Hook, TC_EGRESS_COUNT_PROGRAM,
    TC_INGRESS_COUNT_PROGRAM, XDP_COUNT_PROGRAM,
};
use serde::Serialize;

use crate::{
    bpf_loader::{self, bpffs, pin_link, program},
    error::{Error, Result},
    netns, shared_dirs,
};

const MAP_PIN: &str = "counters";

/// One row of `netlab counters show`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CounterRow {
    pub ifindex: u32,
    pub hook: &'static str,
    pub packets: u64,
    pub bytes: u64,
}

fn pin_dir(netns_name: &str, device: &str) -> PathBuf {
    Path::new(bpffs::PIN_ROOT)
        .join("counters")
        .join(netns_name)
        .join(device)
}

/// Loads the counter programs and attaches them to `device` in namespace `netns_name`:
/// XDP (native mode where the driver has it), tcx ingress and tcx egress.
pub fn attach(netns_name: &str, device: &str) -> Result<()> {
    let dir = pin_dir(netns_name, device);
    if dir.exists() {
        return Err(Error::invalid(format!(
            "counters are already attached to {device} in namespace {netns_name:?}"
        )));
    }
    netns::run_in(netns_name, || {
        bpffs::create_dir(&dir)?;
        let result = attach_and_pin(device, &dir);
        if result.is_err() {
            // Roll back: unpinning detaches whatever was attached already.
            let _ = detach(netns_name, device);
        }
        result
    })
}

fn attach_and_pin(device: &str, dir: &Path) -> Result<()> {
    // The object's NAT maps are pinned beside the counters and go with them on `detach`.
    let mut bpf = bpf_loader::load(dir, &[])?;
    let on = |what: &str| format!("{what} on {device}");

    let xdp: &mut Xdp = program(&mut bpf, XDP_COUNT_PROGRAM)?;
    xdp.load()
        .map_err(|err| Error::ebpf(on("loading the XDP counter"), err))?;
    let id = xdp
        .attach(device, XdpMode::Driver)
        .or_else(|_| xdp.attach(device, XdpMode::Skb))
        .map_err(|err| Error::ebpf(on("attaching the XDP counter"), err))?;
    let link = xdp
        .take_link(id)
        .map_err(|err| Error::ebpf(on("taking the XDP link"), err))?;
    pin_link(FdLink::try_from(link), &dir.join("link_xdp"))?;

    for (name, attach_type, pin) in [
        (
            TC_INGRESS_COUNT_PROGRAM,
            TcAttachType::Ingress,
            "link_tc_ingress",
        ),
        (
            TC_EGRESS_COUNT_PROGRAM,
            TcAttachType::Egress,
            "link_tc_egress",
        ),
    ] {
        let tc: &mut SchedClassifier = program(&mut bpf, name)?;
        tc.load()
            .map_err(|err| Error::ebpf(on(&format!("loading {name}")), err))?;
        let id = tc
            .attach(device, attach_type)
            .map_err(|err| Error::ebpf(on(&format!("attaching {name} (tcx)")), err))?;
        let link = tc
            .take_link(id)
            .map_err(|err| Error::ebpf(on("taking the tcx link"), err))?;
        pin_link(FdLink::try_from(link), &dir.join(pin))?;
    }

    let map = bpf.map(COUNTERS_MAP).ok_or_else(|| Error::NotInObject {
        kind: "map",
        name: COUNTERS_MAP.to_string(),
    })?;
    map.pin(dir.join(MAP_PIN))
        .map_err(|err| Error::ebpf(format!("pinning {COUNTERS_MAP}"), err))
}

/// Reads the pinned counters, summed over CPUs, sorted by interface and hook.
pub fn read(netns_name: &str, device: &str) -> Result<Vec<CounterRow>> {
    let dir = pin_dir(netns_name, device);
    let map_path = dir.join(MAP_PIN);
    if !map_path.exists() {
        return Err(Error::invalid(format!(
            "no counters attached to {device} in namespace {netns_name:?} (run `netlab counters attach` first)"
        )));
    }
    let data = MapData::from_pin(&map_path)
        .map_err(|err| Error::ebpf(format!("opening {}", map_path.display()), err))?;
    let map: PerCpuHashMap<MapData, CounterKey, CounterValue> =
        PerCpuHashMap::try_from(Map::PerCpuHashMap(data))
            .map_err(|err| Error::ebpf("opening the counters map", err))?;
    let mut rows = Vec::new();
    for entry in &map {
        let (key, values) = entry.map_err(|err| Error::ebpf("reading the counters map", err))?;
        let hook = Hook::from_raw(key.hook).map_or("unknown", Hook::name);
        rows.push(CounterRow {
            ifindex: key.ifindex,
            hook,
            packets: values.iter().map(|v| v.packets).sum(),
            bytes: values.iter().map(|v| v.bytes).sum(),
        });
    }
    rows.sort_by_key(|row| (row.ifindex, row.hook));
    Ok(rows)
}

/// Detaches the counters (removes the pins). Idempotent.
pub fn detach(netns_name: &str, device: &str) -> Result<()> {
    let dir = pin_dir(netns_name, device);
    bpffs::remove_dir(&dir)?;
    if let Some(parent) = dir.parent() {
        shared_dirs::remove_if_empty(&[parent]);
    }
    bpffs::remove_unused_roots();
    Ok(())
}

/// Detaches counters left on any namespace whose name starts with `prefix` (a lab's
/// namespaces, when the lab goes down).
pub fn detach_all_with_prefix(prefix: &str) -> Result<()> {
    let root = Path::new(bpffs::PIN_ROOT).join("counters");
    let mut errors = Vec::new();
    for entry in std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .filter_map(std::result::Result::ok)
    {
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            errors.extend(bpffs::remove_dir(&entry.path()).err());
        }
    }
    Error::collect(errors)
}
