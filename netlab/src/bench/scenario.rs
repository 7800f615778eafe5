//! The configurations the benchmark compares, and the labs it builds for them: one fresh
//! hermetic lab per measurement, with N ports published and the measured port the last one
//! (the one a linear rule list reaches last).

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use crate::{
    error::{Error, Result},
    family::Family,
    ipv4net::Ipv4Net,
    lab::{Container, Lab, LabError, Publish, WAN_NODE},
    lifecycle, link,
    nat::{BackendKind, BackendOptions, FastPath, Ingress, NftShape},
    netlink::{self, Place},
    ports::{PortRange, PortSpec, Proto},
    state, sysctl, topology,
};

/// First published host port; N ports are `BASE_PORT..BASE_PORT + N`, or the last N
/// ports when they do not fit above it (see [`first_port`]).
pub const BASE_PORT: u16 = 10_000;

/// The first of `ports` published host ports: [`BASE_PORT`], or lower for more ports than
/// fit above it (65,535 ports start at 1).
pub fn first_port(ports: u16) -> u16 {
    BASE_PORT.min(u16::MAX - ports.max(1) + 1)
}

/// One datapath configuration.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub name: &'static str,
    pub backend: BackendKind,
    pub options: BackendOptions,
    /// Measured in every repetition (the fast-path-off variants run once, to show what the
    /// fast path buys).
    pub every_run: bool,
}

impl Config {
    pub fn routed(self) -> bool {
        self.backend == BackendKind::None
    }
}

pub fn configs() -> Vec<Config> {
    let ebpf = |name, ingress, fast_path, every_run| Config {
        name,
        backend: BackendKind::Ebpf,
        options: BackendOptions {
            ingress,
            fast_path,
            ..BackendOptions::default()
        },
        every_run,
    };
    let nft = |name, nft_shape| Config {
        name,
        backend: BackendKind::Nftables,
        options: BackendOptions {
            nft_shape,
            ..BackendOptions::default()
        },
        every_run: true,
    };
    vec![
        Config {
            name: "routed",
            backend: BackendKind::None,
            options: BackendOptions::default(),
            every_run: true,
        },
        Config {
            name: "iptables",
            backend: BackendKind::Iptables,
            options: BackendOptions::default(),
            every_run: true,
        },
        nft("nft-rules", NftShape::Rules),
        nft("nft-map", NftShape::Map),
        ebpf("ebpf-tc", Ingress::Tc, FastPath::On, true),
        ebpf("ebpf-xdp", Ingress::Xdp, FastPath::On, true),
        ebpf("ebpf-tc-slow", Ingress::Tc, FastPath::Off, false),
        ebpf("ebpf-xdp-slow", Ingress::Xdp, FastPath::Off, false),
    ]
}

/// The configurations measured in IPv6: those of every run.
pub fn configs6() -> Vec<Config> {
    configs()
        .into_iter()
        .filter(|config| config.every_run)
        .collect()
}

/// What a configuration's records are called in `family`: its name, and `-v6` in IPv6.
pub fn record_name(config: Config, family: Family) -> String {
    match family {
        Family::V4 => config.name.to_string(),
        Family::V6 => format!("{}-v6", config.name),
    }
}

/// The configuration called `name` (one of [`configs`]'s).
pub fn config(name: &str) -> Config {
    configs()
        .into_iter()
        .find(|config| config.name == name)
        .unwrap_or_else(|| unreachable!("no bench configuration {name}"))
}

/// The configurations whose lab up/down times are measured: one per backend (XDP and the
/// slow path attach the same programs as ebpf-tc, nft-rules the same table as nft-map).
pub const LAB_TIMING_CONFIGS: [&str; 4] = ["routed", "iptables", "nft-map", "ebpf-tc"];

/// The configurations whose publish/unpublish times are measured: one per way of writing
/// published ports.
pub const PUBLISH_TIMING_CONFIGS: [&str; 4] = ["iptables", "nft-rules", "nft-map", "ebpf-tc"];

/// What the publish records of `config` are called: how it writes the ports.
pub fn publish_record_name(config: Config) -> &'static str {
    match config.name {
        "iptables" => "iptables-restore",
        "ebpf-tc" => "ebpf",
        other => other,
    }
}

/// A unique lab name for this process.
pub fn lab_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "nlb{:x}{}",
        std::process::id() % 0xfffff,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The default lab with `ports` TCP and UDP ports published to netns0 (none for `routed`,
/// which also does no masquerade: `wan` routes straight to the containers); dual-stack for
/// an IPv6 measurement.
pub fn lab_for(config: Config, ports: u16, family: Family) -> Lab {
    let mut lab = Lab::default_lab();
    lab.publish.clear();
    if family == Family::V6 {
        lab.enable_default_ipv6();
    }
    if config.routed() {
        lab.masquerade = false;
        return lab;
    }
    let start = first_port(ports);
    let range = PortRange {
        start,
        end: start + (ports - 1),
    };
    for proto in [Proto::Tcp, Proto::Udp] {
        lab.publish.push(Publish {
            node: "netns0".into(),
            spec: PortSpec {
                host_ip: None,
                host: range,
                container: range,
                proto,
            },
        });
    }
    lab
}

/// A lab that is taken down on drop.
#[derive(Debug)]
pub struct BenchLab {
    pub name: String,
    pub lab: Lab,
}

impl BenchLab {
    pub fn up(config: Config, lab: Lab) -> Result<Self> {
        let name = lab_name();
        // Taken down on drop even if `up` fails half-way.
        let bench_lab = Self { name, lab };
        lifecycle::up(&bench_lab.name, &bench_lab.lab, |_| {
            (config.backend, config.options)
        })?;
        if config.routed() {
            let wan = topology::place(&bench_lab.name, &bench_lab.lab, WAN_NODE);
            let (subnet, via) = (bench_lab.lab.subnet, bench_lab.lab.external.address.addr());
            let ipv6 = bench_lab.lab.ipv6;
            netlink::runtime()?.block_on(async {
                let handle = netlink::connect(&wan)?;
                link::add_route(&handle, subnet, via).await?;
                match ipv6 {
                    Some(ipv6) => {
                        link::add_route6(&handle, ipv6.subnet, ipv6.external.addr()).await
                    }
                    None => Ok(()),
                }
            })?;
        }
        // Many short connections: give the client the whole port range and reuse TIME_WAIT.
        let wan = Place::Netns(bench_lab.ns(WAN_NODE));
        sysctl::write(&wan, "net.ipv4.ip_local_port_range", "1024 65000")?;
        sysctl::write(&wan, "net.ipv4.tcp_tw_reuse", "1")?;
        Ok(bench_lab)
    }

    pub fn ns(&self, node: &str) -> String {
        topology::netns_name(&self.name, node)
    }

    /// Where `wan` sends traffic for container port `port`, in `family`.
    pub fn target(&self, config: Config, port: u16, family: Family) -> SocketAddr {
        let container = &self.lab.containers[0];
        let ip = match (family, self.lab.ipv6, container.address6) {
            (Family::V6, Some(_), Some(address6)) if config.routed() => IpAddr::V6(address6),
            (Family::V6, Some(ipv6), _) => IpAddr::V6(ipv6.external.addr()),
            _ if config.routed() => IpAddr::V4(container.address),
            _ => IpAddr::V4(self.lab.external.address.addr()),
        };
        SocketAddr::new(ip, port)
    }
}

impl Drop for BenchLab {
    fn drop(&mut self) {
        let _ = lifecycle::down(&self.name);
    }
}

/// Time to publish `ports` ports as one range spec, then to unpublish them, through the
/// backend (what `netlab publish` does, without the process start).
pub fn publish_times(config: Config, ports: u16) -> Result<(Duration, Duration)> {
    let lab = lab_for(config, 1, Family::V4);
    let lab = Lab {
        publish: Vec::new(),
        ..lab
    };
    let bench_lab = BenchLab::up(config, lab)?;
    // Host ports mapped to other container ports (each one lower), as `-p 8080:80` does:
    // every backend writes one entry per port (nftables' maps would hold a range that keeps
    // its port numbers as one interval element).
    let spec = PortSpec {
        host_ip: None,
        host: PortRange {
            start: BASE_PORT,
            end: BASE_PORT + ports - 1,
        },
        container: PortRange {
            start: BASE_PORT - 1,
            end: BASE_PORT + ports - 2,
        },
        proto: Proto::Tcp,
    };
    let start = Instant::now();
    lifecycle::publish(&bench_lab.name, "netns0", std::slice::from_ref(&spec))?;
    let published = start.elapsed();
    let start = Instant::now();
    lifecycle::unpublish(&bench_lab.name, "netns0", &[spec])?;
    Ok((published, start.elapsed()))
}

/// The way people script iptables: one `iptables -A` per port, then one `iptables -D` per
/// port, in the host node's own chain.
pub fn iptables_per_call_times(ports: u16) -> Result<(Duration, Duration)> {
    let config = config("iptables");
    let lab = Lab {
        publish: Vec::new(),
        ..lab_for(config, 1, Family::V4)
    };
    let target = lab
        .container("netns0")
        .map(|container| container.address)
        .ok_or_else(|| Error::invalid("the bench lab has no netns0"))?;
    let bench_lab = BenchLab::up(config, lab)?;
    let chain = crate::nat::iptables::chain(&bench_lab.name, "DNAT");
    let rule = |port: u16| {
        vec![
            "-w".to_string(),
            "-t".into(),
            "nat".into(),
            "-A".into(),
            chain.clone(),
            "-p".into(),
            "tcp".into(),
            "--dport".into(),
            port.to_string(),
            "-j".into(),
            "DNAT".into(),
            "--to-destination".into(),
            format!("{target}:{port}"),
        ]
    };
    let run = |delete: bool| -> Result<Duration> {
        Place::Netns(bench_lab.ns("host")).run(|| {
            let start = Instant::now();
            for port in BASE_PORT..BASE_PORT + ports {
                let mut args = rule(port);
                if delete {
                    args[3] = "-D".into();
                }
                let status = std::process::Command::new("iptables")
                    .args(&args)
                    .status()
                    .map_err(|err| Error::io("running iptables", err))?;
                if !status.success() {
                    return Err(Error::invalid(format!("iptables {args:?} failed")));
                }
            }
            Ok(start.elapsed())
        })
    };
    Ok((run(false)?, run(true)?))
}

/// Time to bring a lab of `containers` containers up, then down.
pub fn lab_times(config: Config, containers: usize) -> Result<(Duration, Duration)> {
    let mut lab = Lab::default_lab();
    lab.publish.clear();
    lab.subnet = "10.90.0.0/16".parse::<Ipv4Net>().map_err(LabError::from)?;
    lab.gateway = Ipv4Addr::new(10, 90, 0, 1);
    lab.containers = (0..containers)
        .map(|i| Container {
            name: format!("c{i}"),
            address: Ipv4Addr::new(
                10,
                90,
                u8::try_from((i + 2) / 250).unwrap_or(0),
                u8::try_from((i + 2) % 250 + 2).unwrap_or(2),
            ),
            address6: None,
            device: "eth0".into(),
            host_device: format!("veth{i}"),
        })
        .collect();
    let name = lab_name();
    let start = Instant::now();
    let result = lifecycle::up(&name, &lab, |_| (config.backend, config.options));
    let up = start.elapsed();
    let start = Instant::now();
    lifecycle::down(&name)?;
    let down = start.elapsed();
    result?;
    debug_assert!(state::load(&name).ok().flatten().is_none());
    Ok((up, down))
}
