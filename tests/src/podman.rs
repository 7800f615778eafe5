//! Podman (CNI network backend) inside a CNI suite host: every store, config and runtime
//! folder in a temporary directory, commands run with `nsenter --net` into the host node
//! (the options this VM kind needs are in `../shared/notes/cni.md`), root filesystems built
//! from busybox-static and, for Python servers, the machine's `/usr` mounted read-only. No
//! image is pulled. Dropping it removes every container (which runs the chain's DEL) and
//! the folder.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use crate::cni::{CniHost, PLUGINS, plugin_bin};

/// A Podman installation of the test's own, using `host`'s network namespace as the host.
#[derive(Debug)]
pub struct Podman<'a> {
    host: &'a CniHost,
    dir: PathBuf,
}

/// Applets the busybox root filesystem links.
const APPLETS: [&str; 5] = ["sh", "httpd", "wget", "cat", "sleep"];

impl<'a> Podman<'a> {
    /// Writes the conflist (`bridge` + `host-local` + `netlab-cni`, the network named as
    /// `host`'s) and the root filesystems.
    pub fn new(host: &'a CniHost) -> Self {
        let dir = std::env::temp_dir().join(format!("{}-podman", host.network));
        let _ = std::fs::remove_dir_all(&dir);
        let busybox = dir.join("busybox");
        for sub in ["bin", "etc", "proc", "sys", "dev", "tmp", "www"] {
            std::fs::create_dir_all(busybox.join(sub)).expect("creating the busybox rootfs");
        }
        std::fs::copy("/bin/busybox", busybox.join("bin/busybox"))
            .expect("copying /bin/busybox (apt install busybox-static)");
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", busybox.join("bin").join(applet))
                .expect("linking an applet");
        }
        let python = dir.join("python");
        for sub in ["etc", "proc", "sys", "dev", "tmp", "usr"] {
            std::fs::create_dir_all(python.join(sub)).expect("creating the python rootfs");
        }
        // Debian's merged /usr: /bin, /lib... are links into it.
        for link in ["bin", "lib", "lib64", "sbin"] {
            std::os::unix::fs::symlink(format!("usr/{link}"), python.join(link))
                .expect("linking into /usr");
        }
        let plugins = dir.join("plugins");
        std::fs::create_dir_all(&plugins).expect("creating the plugin folder");
        std::os::unix::fs::symlink(plugin_bin(), plugins.join("netlab-cni"))
            .expect("linking netlab-cni");
        std::fs::write(
            dir.join("containers.conf"),
            format!(
                "[network]\ncni_plugin_dirs = [{:?}, {PLUGINS:?}]\n",
                plugins.display().to_string()
            ),
        )
        .expect("writing containers.conf");
        let bridge = host.bridge_conf();
        let mut netlab_cni = host.plugin_conf(&serde_json::json!([]), None);
        let netlab_cni = netlab_cni.as_object_mut().expect("an object");
        netlab_cni.remove("runtimeConfig");
        netlab_cni.remove("cniVersion");
        netlab_cni.remove("name");
        let mut bridge = bridge.as_object().expect("an object").clone();
        bridge.remove("cniVersion");
        bridge.remove("name");
        let conflist = serde_json::json!({
            "cniVersion": host.version,
            "name": host.network,
            "plugins": [bridge, netlab_cni],
        });
        std::fs::create_dir_all(dir.join("net.d")).expect("creating net.d");
        std::fs::write(
            dir.join("net.d").join(format!("{}.conflist", host.network)),
            conflist.to_string(),
        )
        .expect("writing the conflist");
        Self { host, dir }
    }

    /// The busybox root filesystem (for `--rootfs`).
    pub fn busybox(&self) -> PathBuf {
        self.dir.join("busybox")
    }

    /// The root filesystem that runs the machine's Python (with `-v /usr:/usr:ro`).
    pub fn python(&self) -> PathBuf {
        self.dir.join("python")
    }

    /// Runs `podman ARGS` with the test's own stores, in the host node.
    pub fn run(&self, args: &[&str]) -> Output {
        let dir = |sub: &str| self.dir.join(sub).display().to_string();
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.host.lab.ns("host")))
            .arg("podman")
            .args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"])
            .args([
                "--network-backend",
                "cni",
                "--cni-config-dir",
                &dir("net.d"),
            ])
            .args(["--root", &dir("root"), "--runroot", &dir("runroot")])
            .args(["--tmpdir", &dir("tmp"), "--events-backend", "none"])
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .output()
            .expect("running podman (apt install podman runc)")
    }

    /// `podman run -d --name NAME` on the test's network with `ports` (`-p` values),
    /// `rootfs` and `command`; the output, for a run that may be refused.
    pub fn try_start(&self, name: &str, ports: &[&str], rootfs: &Path, command: &[&str]) -> Output {
        let mut args = vec!["run", "-d", "--name", name, "--network", &self.host.network];
        // This VM's hard limits are below Podman's defaults.
        args.extend([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
        ]);
        for port in ports {
            args.extend(["-p", port]);
        }
        if rootfs == self.python() {
            args.extend(["-v", "/usr:/usr:ro"]);
        }
        let rootfs = rootfs.display().to_string();
        args.extend(["--rootfs", &rootfs]);
        args.extend_from_slice(command);
        self.run(&args)
    }

    /// [`Self::try_start`] that must succeed.
    #[track_caller]
    pub fn start(&self, name: &str, ports: &[&str], rootfs: &Path, command: &[&str]) {
        let out = self.try_start(name, ports, rootfs, command);
        assert!(
            out.status.success(),
            "podman run {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `podman rm -f NAME` (the chain's DEL), which must succeed.
    #[track_caller]
    pub fn remove(&self, name: &str) {
        let out = self.run(&["rm", "-f", name]);
        assert!(
            out.status.success(),
            "podman rm {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-af"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
