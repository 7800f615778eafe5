//! The CNI suite's harness: a host namespace for the plugins (the host node of a lab with
//! no NAT, `wan` outside it), containers as namespaces of the same lab (`<lab>-<name>`, so
//! the lab helpers reach them), and a driver that runs a conflist's chain the way libcni
//! does: `bridge` (with `host-local`) then `netlab-cni`, each given the previous result, DEL
//! in reverse order. Plugins run with `nsenter --net`, never `ip netns exec`, which would
//! hide `/sys/fs/bpf` behind a fresh `/sys`.

use std::{
    io::Write as _,
    path::PathBuf,
    process::{Command, Output, Stdio},
};

use serde_json::{Value, json};

use crate::{Lab, cmd_ok, netlab_bin, unique};

/// The reference plugins of Debian's containernetworking-plugins.
pub const PLUGINS: &str = "/usr/lib/cni";
/// The container subnet of the suite's networks, and its gateway (the bridge).
pub const SUBNET: &str = "10.88.0.0/16";
pub const CNI_GATEWAY: &str = "10.88.0.1";
/// The IPv6 subnet of a dual-stack network, and its gateway.
pub const SUBNET6: &str = "fd00:88::/64";
pub const CNI_GATEWAY6: &str = "fd00:88::1";

/// The `netlab-cni` binary next to the netlab binary under test.
pub fn plugin_bin() -> PathBuf {
    PathBuf::from(netlab_bin()).with_file_name("netlab-cni")
}

/// A CNI host: a lab's host node with a default route to `wan`, one network on a bridge of
/// its own, and the containers added to it. Dropping it deletes the containers' namespaces,
/// the IPAM's files and whatever pins a failed test left, then the lab.
#[derive(Debug)]
pub struct CniHost {
    pub network: String,
    pub version: String,
    /// netlab-cni's own options, merged into its configuration.
    pub options: Value,
    ipam_dir: PathBuf,
    containers: std::sync::Mutex<Vec<String>>,
    /// Whether the network is dual-stack (an IPv6 range beside the IPv4 one).
    ipv6: bool,
    pub lab: Lab,
}

/// Env and stdin of one plugin call.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub command: &'a str,
    pub container: &'a str,
    pub netns: Option<String>,
    pub conf: Value,
    /// More environment (`NETLAB_CRASH_AT`, say).
    pub env: &'a [(&'a str, &'a str)],
}

impl CniHost {
    /// A host for network configurations of `version`.
    pub fn new(version: &str) -> Self {
        Self::with_families(version, false)
    }

    /// A host whose external link and network are dual-stack (`2001:2::1` to `wan` at
    /// `2001:2::2`; the network's IPv6 range [`SUBNET6`]).
    pub fn dual_stack(version: &str) -> Self {
        Self::with_families(version, true)
    }

    fn with_families(version: &str, ipv6: bool) -> Self {
        let lab_file = std::env::temp_dir().join(format!("{}.toml", unique("cnilab")));
        // No containers of the lab's own: the CNI network is the one under test.
        std::fs::write(&lab_file, "").expect("writing the lab file");
        let file = lab_file.to_str().expect("path");
        let mut args = vec!["-f", file, "--backend", "none"];
        if ipv6 {
            args.push("--ipv6");
        }
        let lab = Lab::up(&args);
        let _ = std::fs::remove_file(&lab_file);
        lab.sh_ok("host", "ip route add default via 198.18.0.2");
        if ipv6 {
            lab.sh_ok("host", "ip -6 route add default via 2001:2::2");
        }
        let network = format!("{}net", lab.name);
        Self {
            ipam_dir: std::env::temp_dir().join(format!("{network}-ipam")),
            network,
            version: version.to_owned(),
            options: json!({}),
            containers: std::sync::Mutex::default(),
            ipv6,
            lab,
        }
    }

    /// The bridge plugin's configuration (host-local IPAM, a default route in containers).
    pub fn bridge_conf(&self) -> Value {
        let (ranges, routes) = if self.ipv6 {
            (
                json!([[{"subnet": SUBNET}], [{"subnet": SUBNET6}]]),
                json!([{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]),
            )
        } else {
            (json!([[{"subnet": SUBNET}]]), json!([{"dst": "0.0.0.0/0"}]))
        };
        json!({
            "cniVersion": self.version,
            "name": self.network,
            "type": "bridge",
            // Bridge names are at most 15 bytes.
            "bridge": format!("cni{}", &self.lab.name[self.lab.name.len().saturating_sub(10)..]),
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": ranges,
                "routes": routes,
                "dataDir": self.ipam_dir,
            }
        })
    }

    /// netlab-cni's configuration with `mappings`, chained after `prev`.
    pub fn plugin_conf(&self, mappings: &Value, prev: Option<&Value>) -> Value {
        let mut conf = json!({
            "cniVersion": self.version,
            "name": self.network,
            "type": "netlab-cni",
            "capabilities": {"portMappings": true},
            "runtimeConfig": {"portMappings": mappings},
        });
        if let Some(prev) = prev {
            conf["prevResult"] = prev.clone();
        }
        for (key, value) in self.options.as_object().into_iter().flatten() {
            conf[key] = value.clone();
        }
        conf
    }

    /// The namespace of container `name`, as `CNI_NETNS` names it.
    pub fn netns_path(&self, name: &str) -> String {
        format!("/run/netns/{}", self.lab.ns(name))
    }

    /// Runs `program` (a plugin) in the host namespace.
    pub fn call(&self, program: &str, call: &Call<'_>) -> Output {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/run/netns/{}", self.lab.ns("host")))
            .arg(program)
            .env("CNI_COMMAND", call.command)
            .env("CNI_CONTAINERID", call.container)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", PLUGINS)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command.envs(call.env.iter().copied());
        if let Some(netns) = &call.netns {
            command.env("CNI_NETNS", netns);
        }
        let mut child = command.spawn().expect("running a plugin");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(call.conf.to_string().as_bytes())
            .expect("writing the configuration");
        child.wait_with_output().expect("waiting for a plugin")
    }

    /// Runs netlab-cni; its stdout as JSON (null when empty) and whether it succeeded.
    pub fn netlab_cni(&self, call: &Call<'_>) -> (bool, Value) {
        let out = self.call(plugin_bin().to_str().expect("path"), call);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let value = if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout)
                .unwrap_or_else(|err| panic!("netlab-cni printed no JSON ({err}): {stdout}"))
        };
        (out.status.success(), value)
    }

    /// GC (spec 1.1) with the attachments `valid` (container ids, each on `eth0`).
    pub fn gc(&self, valid: &[&str]) -> (bool, Value) {
        let valid: Vec<Value> = valid
            .iter()
            .map(|id| json!({"containerID": id, "ifname": "eth0"}))
            .collect();
        self.netlab_cni(&Call {
            command: "GC",
            container: "",
            netns: None,
            conf: json!({
                "cniVersion": "1.1.0",
                "name": self.network,
                "type": "netlab-cni",
                "cni.dev/valid-attachments": valid,
            }),
            env: &[],
        })
    }

    /// Creates container `name` (a namespace) and runs the chain's ADD with `mappings`;
    /// returns netlab-cni's result, or its error when it refused.
    pub fn add(&self, name: &str, mappings: &Value) -> Result<Value, Value> {
        self.add_with(name, mappings, &[])
    }

    /// [`Self::add`] with more environment for both plugins (`NETLAB_CRASH_AT` for
    /// netlab-cni, `CNI_ARGS` for the IPAM).
    pub fn add_with(
        &self,
        name: &str,
        mappings: &Value,
        env: &[(&str, &str)],
    ) -> Result<Value, Value> {
        let ns = self.lab.ns(name);
        cmd_ok("ip", &["netns", "add", &ns]);
        self.containers.lock().expect("lock").push(name.to_owned());
        cmd_ok("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        if self.ipv6 {
            // The container's address usable at once, as the lab's are (no DAD).
            cmd_ok(
                "ip",
                &[
                    "netns",
                    "exec",
                    &ns,
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.default.accept_dad=0",
                ],
            );
        }
        let netns = self.netns_path(name);
        let bridge = self.call(
            &format!("{PLUGINS}/bridge"),
            &Call {
                command: "ADD",
                container: name,
                netns: Some(netns.clone()),
                conf: self.bridge_conf(),
                env,
            },
        );
        assert!(
            bridge.status.success(),
            "bridge ADD of {name}: {}",
            String::from_utf8_lossy(&bridge.stdout)
        );
        let prev: Value = serde_json::from_slice(&bridge.stdout).expect("bridge result");
        let (ok, result) = self.netlab_cni(&Call {
            command: "ADD",
            container: name,
            netns: Some(netns),
            conf: self.plugin_conf(mappings, Some(&prev)),
            env,
        });
        if ok {
            assert_eq!(
                result,
                with_version(&prev, &self.version),
                "ADD must print prevResult unchanged"
            );
            Ok(result)
        } else {
            Err(result)
        }
    }

    /// The chain's DEL for container `name` (netlab-cni without `prevResult`, then the
    /// bridge), then its namespace goes; the DEL's success.
    pub fn del(&self, name: &str) -> bool {
        let netns = self.netns_path(name);
        let (ok, out) = self.netlab_cni(&Call {
            command: "DEL",
            container: name,
            netns: Some(netns.clone()),
            conf: self.plugin_conf(&json!([]), None),
            env: &[],
        });
        assert!(ok, "netlab-cni DEL of {name}: {out}");
        self.bridge_del(name)
    }

    /// The chain's DEL for each of `names`, which must all succeed, the last one unpinning
    /// the datapath.
    #[track_caller]
    pub fn del_all(&self, names: &[&str]) {
        for name in names {
            assert!(self.del(name), "DEL of {name}");
        }
        assert_eq!(self.pins(), None, "the last DEL unpins the datapath");
    }

    /// Only the bridge plugin's DEL (which gives the address back to the IPAM), then the
    /// namespace goes: what a runtime leaves when netlab-cni's DEL never ran.
    pub fn bridge_del(&self, name: &str) -> bool {
        let bridge = self.call(
            &format!("{PLUGINS}/bridge"),
            &Call {
                command: "DEL",
                container: name,
                netns: Some(self.netns_path(name)),
                conf: self.bridge_conf(),
                env: &[],
            },
        );
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.lab.ns(name)])
            .output();
        self.containers.lock().expect("lock").retain(|c| c != name);
        bridge.status.success()
    }

    /// The container links netlab-cni has pinned (one per container).
    pub fn container_links(&self) -> usize {
        let Some(pins) = self.pins() else {
            return 0;
        };
        std::fs::read_dir(pins.join("links")).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("netlab_nat_ctr_ingress@")
                })
                .count()
        })
    }

    /// The container's address given by the IPAM, from a chain result.
    pub fn address_of(result: &Value) -> String {
        let address = result["ips"][0]["address"].as_str().expect("an address");
        address.split('/').next().expect("address").to_owned()
    }

    /// The IPv6 address an ADD's result gives the container.
    pub fn address6_of(result: &Value) -> String {
        result["ips"]
            .as_array()
            .expect("ips")
            .iter()
            .filter_map(|ip| ip["address"].as_str())
            .find(|address| address.contains(':'))
            .and_then(|address| address.split('/').next())
            .expect("an IPv6 address")
            .to_owned()
    }

    /// The folder of this network's pinned datapath, if there is one.
    pub fn pins(&self) -> Option<PathBuf> {
        let root = std::path::Path::new("/sys/fs/bpf/netlab/cni");
        std::fs::read_dir(root)
            .ok()?
            .filter_map(Result::ok)
            .find_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                name.starts_with(&format!("{}@", self.network))
                    .then(|| entry.path())
            })
    }
}

/// `prev` as netlab-cni prints it: the same result in the configuration's version.
fn with_version(prev: &Value, version: &str) -> Value {
    let mut out = prev.clone();
    out["cniVersion"] = json!(version);
    out
}

impl Drop for CniHost {
    fn drop(&mut self) {
        for name in self
            .containers
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
        {
            let _ = Command::new("ip")
                .args(["netns", "delete", &self.lab.ns(&name)])
                .output();
        }
        if let Some(pins) = self.pins() {
            let _ = std::fs::remove_dir_all(pins);
            for dir in ["/sys/fs/bpf/netlab/cni", "/sys/fs/bpf/netlab"] {
                let _ = std::fs::remove_dir(dir);
            }
        }
        let _ = std::fs::remove_dir_all(&self.ipam_dir);
    }
}
