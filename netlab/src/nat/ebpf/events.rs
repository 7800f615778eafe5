//! The datapath's aya-log events, streamed by `netlab up --foreground`: new flows (only while
//! streaming: the loader switches them on in the config map) and drops.

use aya::{
    maps::{Array, Map, MapData},
    programs::links::{FdLink, PinnedLink},
};
use aya_log::EbpfLogger;
use netlab_common::nat::{NatConfig, flags, maps as map_names, programs};

use crate::error::{Error, Result};

use super::pin_dir;

/// Prints each datapath event on stdout.
#[derive(Debug, Clone, Copy)]
struct Stdout;

impl log::Log for Stdout {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        println!(
            "[datapath {}] {}",
            record.level().as_str().to_lowercase(),
            record.args()
        );
    }

    fn flush(&self) {}
}

/// A reader of the datapath's log ring, attached through the pinned ingress link; turns
/// per-flow events off again when dropped.
pub struct Events {
    logger: EbpfLogger<Stdout>,
    lab_name: String,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("lab_name", &self.lab_name)
            .finish_non_exhaustive()
    }
}

impl Events {
    pub fn open(lab_name: &str, external_device: &str) -> Result<Self> {
        let pin = pin_dir(lab_name).join("links").join(format!(
            "{}@{external_device}",
            programs::TC_EXTERNAL_INGRESS
        ));
        let link = PinnedLink::from_pin(&pin)
            .map_err(|err| Error::ebpf(format!("opening {}", pin.display()), err))?;
        let info = FdLink::from(link)
            .info()
            .map_err(|err| Error::ebpf("reading the ingress link", err))?;
        let logger = EbpfLogger::init_from_id_with_logger(info.program_id(), Stdout)
            .map_err(|err| Error::ebpf("attaching to the datapath's log", err))?;
        set_flow_events(lab_name, true)?;
        Ok(Self {
            logger,
            lab_name: lab_name.to_string(),
        })
    }

    /// Prints the events logged since the last call.
    pub fn flush(&mut self) {
        self.logger.flush();
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = set_flow_events(&self.lab_name, false);
    }
}

/// Switches per-flow events on or off in the pinned config map.
fn set_flow_events(lab_name: &str, on: bool) -> Result<()> {
    let path = pin_dir(lab_name).join(map_names::CONFIG);
    let data = MapData::from_pin(&path)
        .map_err(|err| Error::ebpf(format!("opening {}", path.display()), err))?;
    let mut config: Array<MapData, NatConfig> = Array::try_from(Map::Array(data))
        .map_err(|err| Error::ebpf("opening the config map", err))?;
    let mut value = config
        .get(&0, 0)
        .map_err(|err| Error::ebpf("reading the config", err))?;
    if on {
        value.flags |= flags::LOG_FLOWS;
    } else {
        value.flags &= !flags::LOG_FLOWS;
    }
    config
        .set(0, value, 0)
        .map_err(|err| Error::ebpf("writing the config", err))
}
