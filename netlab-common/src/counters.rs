//! Per-interface packet counters: the first datapath, proving the build-load-attach pipeline.

/// Name of the per-CPU hash map `CounterKey -> CounterValue` in the eBPF object.
pub const COUNTERS_MAP: &str = "NETLAB_COUNTERS";
/// Maximum number of (interface, hook) pairs the counters map holds.
pub const COUNTERS_MAX_ENTRIES: u32 = 1024;

/// Name of the XDP counter program in the eBPF object.
pub const XDP_COUNT_PROGRAM: &str = "netlab_xdp_count";
/// Name of the tcx ingress counter program in the eBPF object.
pub const TC_INGRESS_COUNT_PROGRAM: &str = "netlab_tc_ingress_count";
/// Name of the tcx egress counter program in the eBPF object.
pub const TC_EGRESS_COUNT_PROGRAM: &str = "netlab_tc_egress_count";

/// Where in the datapath a packet was counted.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// XDP, on receive, before the stack allocates an skb.
    Xdp = 0,
    /// tcx ingress.
    TcIngress = 1,
    /// tcx egress.
    TcEgress = 2,
}

impl Hook {
    /// The hook for a raw `CounterKey::hook` value, if it names one.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::Xdp),
            1 => Some(Self::TcIngress),
            2 => Some(Self::TcEgress),
            _ => None,
        }
    }

    /// A short lower-case name, as printed by the CLI.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Xdp => "xdp",
            Self::TcIngress => "tc-ingress",
            Self::TcEgress => "tc-egress",
        }
    }
}

/// Key of the counters map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterKey {
    /// Interface index in the namespace the program runs in (host byte order).
    pub ifindex: u32,
    /// A [`Hook`] as `u32` (host byte order).
    pub hook: u32,
}

/// Value of the counters map (one per CPU; the loader sums them).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterValue {
    /// Packets seen (host byte order).
    pub packets: u64,
    /// Bytes seen, counting from the Ethernet header (host byte order).
    pub bytes: u64,
}

const _: () = assert!(size_of::<CounterKey>() == 8);
const _: () = assert!(size_of::<CounterValue>() == 16);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C), only integer fields, no padding (size asserted above).
    unsafe impl aya::Pod for super::CounterKey {}
    // SAFETY: repr(C), only integer fields, no padding (size asserted above).
    unsafe impl aya::Pod for super::CounterValue {}
}
