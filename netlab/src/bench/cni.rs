//! `netlab bench --cni`: netlab-cni against the reference `portmap` plugin, driven as a
//! container runtime drives them (the `bridge` plugin with `host-local`, then the port
//! plugin with `prevResult`), in a fresh host per measurement: a lab's host node with a
//! default route to `wan`. Measured: the port plugin's ADD and DEL for a container that
//! publishes N ports, the ADD of a second container once the first is there, and new
//! connections/s and latency from `wan` to the last of the N ports, the DEL of the first
//! container (the second one stays) and of the last one. The plugins alternate.
//! Debian 12's plugins (1.1.1) predate `portmap`'s nftables mode, so `portmap` is iptables.

use std::{
    io::Write as _,
    net::{SocketAddr, SocketAddrV4},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{
    Progress, Record, Samples, load,
    scenario::{BASE_PORT, BenchLab, config, lab_for},
};
use crate::{
    error::{Error, Result},
    family::Family,
    lab::{HOST_NODE, WAN_NODE},
    link, netlink,
    netlink::Place,
    netns,
};

/// Where Debian's containernetworking-plugins are.
const PLUGINS: &str = "/usr/lib/cni";
/// The container port every published port leads to (one server serves them all).
const SERVER_PORT: u16 = 5000;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub ports: Vec<u16>,
    pub runs: usize,
    pub duration: Duration,
}

impl Plan {
    pub fn full() -> Self {
        Self {
            ports: vec![1, 100, 1000],
            runs: 3,
            duration: Duration::from_secs(2),
        }
    }

    pub fn quick() -> Self {
        Self {
            ports: vec![1, 10],
            runs: 3,
            duration: Duration::from_millis(250),
        }
    }
}

/// The port plugins compared: record name and binary.
fn plugins() -> Result<[(&'static str, PathBuf); 2]> {
    let netlab_cni = std::env::current_exe()
        .map_err(|err| Error::io("finding the netlab binary", err))?
        .with_file_name("netlab-cni");
    if !netlab_cni.exists() {
        return Err(Error::invalid(format!(
            "{} is missing: build it next to netlab (cargo build -p netlab --bins)",
            netlab_cni.display()
        )));
    }
    let portmap = Path::new(PLUGINS).join("portmap");
    if !portmap.exists() {
        return Err(Error::invalid(format!(
            "{} is missing (apt install containernetworking-plugins)",
            portmap.display()
        )));
    }
    Ok([("netlab-cni", netlab_cni), ("portmap", portmap)])
}

/// A host for one measurement: the lab, the CNI network's IPAM folder, the containers.
/// Dropping it runs the port plugin's DEL for every container (so netlab-cni unpins),
/// then removes the containers' namespaces, the IPAM folder and the lab.
#[derive(Debug)]
struct CniBed {
    plugin: PathBuf,
    ipam: PathBuf,
    containers: Vec<String>,
    lab: BenchLab,
}

impl CniBed {
    fn new(plugin: &Path) -> Result<Self> {
        let routed = config("routed");
        let lab = BenchLab::up(routed, lab_for(routed, 1, Family::V4))?;
        let host = Place::Netns(lab.ns(HOST_NODE));
        let wan = lab.lab.external.peer_address;
        netlink::runtime()?
            .block_on(async { link::add_default_route(&netlink::connect(&host)?, wan).await })?;
        Ok(Self {
            plugin: plugin.to_path_buf(),
            ipam: std::env::temp_dir().join(format!("{}-ipam", lab.name)),
            containers: Vec::new(),
            lab,
        })
    }

    fn bridge_conf(&self) -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": "bench",
            "type": "bridge",
            "bridge": "cnibench0",
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "10.89.0.0/16"}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": self.ipam,
            }
        })
    }

    fn port_conf(&self, mappings: &[Value], prev: Option<&Value>) -> Value {
        let mut conf = json!({
            "cniVersion": "1.0.0",
            "name": "bench",
            "type": self.plugin.file_name().map(|n| n.to_string_lossy().into_owned()),
            "runtimeConfig": {"portMappings": mappings},
        });
        if let Some(prev) = prev {
            conf["prevResult"] = prev.clone();
        }
        conf
    }

    /// Runs `plugin` with `command` for container `id` in the host node; its result.
    fn exec(&self, plugin: &Path, command: &str, id: &str, conf: &Value) -> Result<Value> {
        let netns = netns::path(&self.lab.ns(id));
        let op = || format!("{} {command} of {id}", plugin.display());
        let output = Place::Netns(self.lab.ns(HOST_NODE)).run(|| {
            // Started from a thread inside the host node, the plugin runs in it.
            let mut child = Command::new(plugin)
                .env("CNI_COMMAND", command)
                .env("CNI_CONTAINERID", id)
                .env("CNI_NETNS", &netns)
                .env("CNI_IFNAME", "eth0")
                .env("CNI_PATH", PLUGINS)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|err| Error::io(op(), err))?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin
                    .write_all(conf.to_string().as_bytes())
                    .map_err(|err| Error::io(op(), err))?;
            }
            child.wait_with_output().map_err(|err| Error::io(op(), err))
        })?;
        if !output.status.success() {
            return Err(Error::Command {
                op: op(),
                stderr: String::from_utf8_lossy(&output.stdout).into_owned(),
            });
        }
        if output.stdout.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&output.stdout).map_err(|err| Error::json(op(), err))
    }

    /// Creates container `id` and runs the bridge plugin's ADD; its result.
    fn bridge_add(&mut self, id: &str) -> Result<Value> {
        netns::create(&self.lab.ns(id))?;
        self.containers.push(id.to_owned());
        let bridge = Path::new(PLUGINS).join("bridge");
        self.exec(&bridge, "ADD", id, &self.bridge_conf())
    }

    /// The port plugin's ADD for `id` with `mappings`, timed.
    fn port_add(&self, id: &str, mappings: &[Value], prev: &Value) -> Result<Duration> {
        let start = Instant::now();
        self.exec(
            &self.plugin,
            "ADD",
            id,
            &self.port_conf(mappings, Some(prev)),
        )?;
        Ok(start.elapsed())
    }

    /// The port plugin's DEL for `id`, timed.
    fn port_del(&self, id: &str, prev: &Value) -> Result<Duration> {
        let start = Instant::now();
        self.exec(&self.plugin, "DEL", id, &self.port_conf(&[], Some(prev)))?;
        Ok(start.elapsed())
    }
}

impl Drop for CniBed {
    fn drop(&mut self) {
        for id in self.containers.clone() {
            let _ = self.exec(&self.plugin, "DEL", &id, &self.port_conf(&[], None));
            let _ = self.exec(
                &Path::new(PLUGINS).join("bridge"),
                "DEL",
                &id,
                &self.bridge_conf(),
            );
            let _ = netns::delete(&self.lab.ns(&id));
        }
        let _ = std::fs::remove_dir_all(&self.ipam);
    }
}

/// Host ports `BASE_PORT..BASE_PORT + n`, all to the server's port.
fn mappings(n: u16) -> Vec<Value> {
    (BASE_PORT..BASE_PORT + n)
        .map(|port| json!({"hostPort": port, "containerPort": SERVER_PORT, "protocol": "tcp"}))
        .collect()
}

/// One measurement of `plugin` with `ports` published.
fn measure(
    name: &str,
    plugin: &Path,
    ports: u16,
    duration: Duration,
    samples: &mut Samples,
) -> Result<()> {
    let n = u64::from(ports);
    let mut bed = CniBed::new(plugin)?;
    let prev = bed.bridge_add("c0")?;
    let added = bed.port_add("c0", &mappings(ports), &prev)?;
    samples.push(name, "cni_add", n, "ms", added.as_secs_f64() * 1e3);
    let next = bed.bridge_add("c1")?;
    let port = BASE_PORT + ports;
    let next_added = bed.port_add(
        "c1",
        &[json!({"hostPort": port, "containerPort": SERVER_PORT, "protocol": "tcp"})],
        &next,
    )?;
    samples.push(
        name,
        "cni_add_next",
        n,
        "ms",
        next_added.as_secs_f64() * 1e3,
    );

    let _server = load::Server::start(&bed.lab.ns("c0"), SERVER_PORT)?;
    let wan = bed.lab.ns(WAN_NODE);
    let target = SocketAddr::V4(SocketAddrV4::new(
        bed.lab.lab.external.address.addr(),
        BASE_PORT + ports - 1,
    ));
    load::connection_rate(&wan, target, 2, duration / 4)?;
    let made = load::connection_rate(&wan, target, 2, duration)?.some_succeeded(name, target)?;
    samples.push(name, "connections", n, "conn/s", made.per_second);
    let rtts = load::request_response(&wan, target, duration)?;
    let p50 = rtts
        .get(rtts.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(f64::NAN);
    samples.push(name, "rr_p50", n, "us", p50);

    let deleted = bed.port_del("c0", &prev)?;
    samples.push(name, "cni_del", n, "ms", deleted.as_secs_f64() * 1e3);
    // The last container out: netlab-cni detaches and unpins the datapath.
    let last = bed.port_del("c1", &next)?;
    samples.push(name, "cni_del_last", n, "ms", last.as_secs_f64() * 1e3);
    Ok(())
}

/// Runs the plan; the records of both plugins.
pub fn run(plan: &Plan) -> Result<Vec<Record>> {
    let plugins = plugins()?;
    let mut samples = Samples::default();
    let mut progress = Progress {
        done: 0,
        total: plan.runs * plan.ports.len() * plugins.len(),
    };
    for run in 0..plan.runs {
        for &ports in &plan.ports {
            // Which plugin goes first alternates, so neither always runs on a machine the
            // other just warmed.
            let order: Vec<&(&str, PathBuf)> = if run % 2 == 0 {
                plugins.iter().collect()
            } else {
                plugins.iter().rev().collect()
            };
            for (name, plugin) in order {
                progress.step(&format!("run {} {name} N={ports}", run + 1));
                measure(name, plugin, ports, plan.duration, &mut samples)?;
            }
        }
    }
    Ok(samples.records())
}
