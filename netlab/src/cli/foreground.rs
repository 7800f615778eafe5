//! `netlab up --foreground`: stay attached to the lab, print its per-port counters every
//! second, and take the lab down on Ctrl-C (SIGINT or SIGTERM). A `kill -9` leaves the pinned
//! datapath running; `netlab up` or `netlab down` then pick it up or remove it.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use crate::{
    error::Result,
    lifecycle,
    nat::{BackendKind, ebpf::events::Events},
    state,
};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub fn run(lab_name: &str) -> Result<()> {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    println!("running in the foreground; Ctrl-C takes lab {lab_name} down");
    let mut saved = state::require(lab_name)?;
    // Read again only when a command (publish, unpublish) has changed it.
    let modified = || {
        std::fs::metadata(state::path(lab_name))
            .and_then(|m| m.modified())
            .ok()
    };
    let mut seen = modified();
    let mut events = match saved.backend {
        BackendKind::Ebpf => Some(Events::open(lab_name, &saved.lab.external.device)?),
        BackendKind::Iptables | BackendKind::Nftables | BackendKind::None => None,
    };
    let mut last = Vec::new();
    let mut tick = 0u32;
    while !STOP.load(Ordering::SeqCst) {
        if let Some(events) = &mut events {
            events.flush();
        }
        std::thread::sleep(Duration::from_millis(200));
        tick += 1;
        if !tick.is_multiple_of(5) {
            continue;
        }
        if modified() != seen {
            seen = modified();
            saved = state::require(lab_name)?;
        }
        let rows = saved.backend.backend()?.counters(saved.nat_context())?;
        for row in &rows {
            let before = last
                .iter()
                .find(|(spec, _): &&(String, u64)| *spec == row.spec)
                .map_or(0, |(_, packets)| *packets);
            println!(
                "{:<28} {:>10} {} (+{}/s)",
                row.spec,
                row.packets,
                row.unit,
                row.packets.saturating_sub(before)
            );
        }
        last = rows
            .into_iter()
            .map(|row| (row.spec, row.packets))
            .collect();
        std::thread::sleep(Duration::from_secs(1));
    }
    println!("stopping: taking lab {lab_name} down");
    lifecycle::down(lab_name)
}
