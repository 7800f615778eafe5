//! `netlab up [-f FILE] [--backend ebpf|iptables|nftables|none] [--explain]`.

use std::{path::PathBuf, process::ExitCode};

use crate::{
    error::{Context as _, Result},
    lab::Lab,
    lifecycle,
    nat::{
        BackendKind, BackendOptions, FastPath, Ingress, NftShape, ct_timeouts::CtTimeoutChanges,
    },
    state::LabState,
};

#[derive(Debug, clap::Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "clap's flags: each bool is a switch of its own on the command line"
)]
pub struct Args {
    /// Lab file (TOML); without it, the built-in walkthrough lab.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Make a lab file's lab dual-stack: IPv6 subnet `fd00:172:18::/64` (bridge `::1`,
    /// containers their IPv4 host number in the same digits, external link `2001:2::1/64`),
    /// unless the file gives subnet6. The built-in lab is dual-stack already.
    #[arg(long)]
    pub ipv6: bool,
    /// Keep the built-in lab IPv4-only (without it, the built-in lab keeps the family of the
    /// running one, else is dual-stack).
    #[arg(long, conflicts_with_all = ["file", "ipv6"])]
    pub ipv4_only: bool,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Stay in the foreground, printing per-port counters every second; Ctrl-C takes the lab
    /// down.
    #[arg(long)]
    pub foreground: bool,
    /// Print the equivalent iproute2/iptables/nft/bpftool commands instead of doing anything.
    #[arg(long, visible_alias = "dry-run")]
    pub explain: bool,
}

/// The backend and its options, as `up` takes them (and `graph`, to draw them).
#[derive(Debug, clap::Args)]
pub struct BackendArgs {
    /// NAT backend [default: the running lab's, else ebpf].
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// eBPF backend: the external device's ingress hook [default: the running lab's, else tc].
    #[arg(long, value_enum)]
    pub ingress: Option<Ingress>,
    /// eBPF backend: hand translated packets straight to their veth (`on`), or through the
    /// host's routing and bridge (`off`); `xdp-redirect` also redirects from XDP through a
    /// devmap, writing full checksums (slower than `on` on veth) [default: the running
    /// lab's, else on].
    #[arg(long, value_enum)]
    pub fast_path: Option<FastPath>,
    /// eBPF backend: size of the conntrack table, in entries (a flow takes two; when it is
    /// full the least recently used flows are evicted) [default: the running lab's, else
    /// 262144].
    #[arg(long, value_parser = clap::value_parser!(u32).range(16..=16_777_216))]
    pub ct_entries: Option<u32>,
    /// eBPF backend: conntrack lifetimes in seconds, e.g. `udp=30,tcp-syn=20` (names:
    /// tcp-syn, tcp-established, tcp-closing, udp, icmp) [default: the running lab's, else
    /// 60, 21600, 10, 60, 30].
    #[arg(long, value_name = "NAME=SECONDS,...")]
    pub ct_timeouts: Option<CtTimeoutChanges>,
    /// nftables backend: one DNAT rule per port as the container engines write them
    /// (`rules`), or DNAT through maps keyed by address, protocol and port (`map`)
    /// [default: the running lab's, else map].
    #[arg(long, value_enum)]
    pub nft_shape: Option<NftShape>,
}

/// The largest lab file read (1 MiB, far more than a lab of thousands of containers takes):
/// a larger one is a mistake, and reading it whole would only be slow.
const MAX_LAB_FILE: u64 = 1 << 20;

/// The lab a command describes: the file's, or the built-in default.
pub fn load_lab(file: Option<&PathBuf>) -> Result<Lab> {
    match file {
        // Docker's and Podman's default networks are IPv4-only, but a lab is for seeing both
        // families at work.
        None => Ok(Lab::default_dual_stack()),
        Some(path) => {
            let size = std::fs::metadata(path)
                .op(|| format!("reading {}", path.display()))?
                .len();
            if size > MAX_LAB_FILE {
                return Err(crate::Error::invalid(format!(
                    "lab file {} is {size} bytes; a lab file is at most {MAX_LAB_FILE}",
                    path.display()
                )));
            }
            let text =
                std::fs::read_to_string(path).op(|| format!("reading {}", path.display()))?;
            Ok(Lab::from_toml(&text)?)
        }
    }
}

/// The backend and options `args` ask for: a running lab keeps what it was brought up with
/// unless told otherwise; a new one gets the defaults.
pub fn choose(args: &BackendArgs, running: Option<&LabState>) -> (BackendKind, BackendOptions) {
    let backend = args
        .backend
        .or(running.map(|s| s.backend))
        .unwrap_or(BackendKind::Ebpf);
    let defaults = running.map(|s| s.options).unwrap_or_default();
    let options = BackendOptions {
        ingress: args.ingress.unwrap_or(defaults.ingress),
        fast_path: args.fast_path.unwrap_or(defaults.fast_path),
        ct_entries: args.ct_entries.unwrap_or(defaults.ct_entries),
        ct_timeouts: args
            .ct_timeouts
            .as_ref()
            .map_or(defaults.ct_timeouts, |changes| {
                changes.apply(defaults.ct_timeouts)
            }),
        nft_shape: args.nft_shape.unwrap_or(defaults.nft_shape),
    };
    (backend, options)
}

pub fn run(lab_name: &str, args: &Args) -> Result<ExitCode> {
    crate::state::validate_name(lab_name)?;
    let running = crate::state::load(lab_name).ok().flatten();
    let mut lab = load_lab(args.file.as_ref())?;
    // The built-in lab is dual-stack, unless asked otherwise or running IPv4-only.
    if args.file.is_none()
        && (args.ipv4_only
            || running
                .as_ref()
                .is_some_and(|state| state.lab.ipv6.is_none()))
    {
        lab = Lab::default_lab();
    }
    if args.ipv6 && lab.ipv6.is_none() {
        lab.enable_default_ipv6();
    }
    if args.explain {
        lab.validate()?;
        let (backend, options) = choose(&args.backend, running.as_ref());
        for line in lifecycle::explain(lab_name, &lab, backend, options)? {
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let backend = lifecycle::up(lab_name, &lab, |running| choose(&args.backend, running))?;
    let subnets = match &lab.ipv6 {
        Some(ipv6) => format!("{} and {}", lab.subnet, ipv6.subnet),
        None => lab.subnet.to_string(),
    };
    println!(
        "lab {lab_name} is up: {} containers on {subnets} ({backend} backend)",
        lab.containers.len(),
    );
    if args.foreground {
        super::foreground::run(lab_name)?;
    }
    Ok(ExitCode::SUCCESS)
}
