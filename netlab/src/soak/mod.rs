//! `netlab soak`: a lab under mixed traffic on every path for minutes, with ports published
//! and unpublished all along, run by `netlab up --foreground` as a user would leave it
//! running. It reports the requests that failed on ports that stayed published (which must
//! be none), the conntrack table's occupancy over time (which must stay bounded), and the
//! foreground loader's memory and file descriptors (which must stay flat).

mod traffic;

use std::{
    net::SocketAddrV4,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{
    error::{Error, Result},
    lab::{Lab, WAN_NODE},
    lifecycle,
    nat::BackendKind,
    ports::PortSpec,
    state, topology,
};

use traffic::Tally;

/// Echo servers' port in `netns0` (published by the default lab as 5000/tcp; 5000/udp is
/// published by the soak) and in `wan` (reached by masquerade).
const PORT: u16 = 5000;
/// Ports published and unpublished over and over, on `netns1`.
const CHURN: [&str; 2] = ["9000-9009:9000-9009", "9100:9100/udp"];
/// Between two requests of one client: the soak is about time, not load.
const PAUSE: Duration = Duration::from_millis(5);

/// What a soak found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub backend: BackendKind,
    pub seconds: f64,
    /// Per traffic path: requests and failures.
    pub paths: Vec<PathReport>,
    /// Publish/unpublish cycles of the churned ports, and the commands that failed.
    pub churn_cycles: u64,
    pub churn_errors: u64,
    /// One sample a second.
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathReport {
    pub path: &'static str,
    pub requests: u64,
    pub failures: u64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// Seconds since the traffic started.
    pub second: u64,
    /// Conntrack entries of the lab's NAT.
    pub conntrack: usize,
    /// The `up --foreground` process: resident memory (KiB) and open file descriptors.
    pub loader_rss_kib: u64,
    pub loader_fds: usize,
}

impl Report {
    /// Failed requests on every path (all of them use ports that stay published).
    pub fn failures(&self) -> u64 {
        self.paths.iter().map(|p| p.failures).sum()
    }
}

/// Runs a soak of `duration` on a fresh default lab named `lab_name` with `backend`.
pub fn run(lab_name: &str, backend: BackendKind, duration: Duration) -> Result<Report> {
    state::validate_name(lab_name)?;
    if state::load(lab_name)?.is_some() {
        return Err(Error::invalid(format!(
            "lab {lab_name:?} is up; the soak builds its own lab: pick another --lab"
        )));
    }
    let mut loader = Loader::start(lab_name, backend)?;
    let result = soak(lab_name, backend, duration, &loader);
    let stopped = loader.stop(lab_name);
    let report = result?;
    stopped?;
    Ok(report)
}

fn soak(
    lab_name: &str,
    backend: BackendKind,
    duration: Duration,
    loader: &Loader,
) -> Result<Report> {
    let udp_spec: PortSpec = format!("{PORT}:{PORT}/udp").parse()?;
    lifecycle::publish(lab_name, "netns0", &[udp_spec])?;
    // Clients stop first and servers after them: a server gone under a client's last
    // request would count as a failure of the NAT.
    let stop = Arc::new(AtomicBool::new(false));
    let stop_servers = Arc::new(AtomicBool::new(false));
    let ns = |node: &str| topology::netns_name(lab_name, node);
    let mut servers = traffic::echo_servers(&ns("netns0"), PORT, &stop_servers)?;
    servers.extend(traffic::echo_servers(&ns(WAN_NODE), PORT, &stop_servers)?);
    let (clients, tallies) = start_clients(lab_name, &stop)?;
    let churn = Churn::start(lab_name, &stop)?;
    let start = Instant::now();
    let mut samples = Vec::new();
    while start.elapsed() < duration {
        std::thread::sleep(Duration::from_secs(1));
        samples.push(sample(lab_name, start, loader)?);
    }
    stop.store(true, Ordering::Relaxed);
    let seconds = start.elapsed().as_secs_f64();
    for client in clients {
        Error::joined(client.join(), "a soak client")?;
    }
    let (churn_cycles, churn_errors) = churn.join()?;
    stop_servers.store(true, Ordering::Relaxed);
    for server in servers {
        Error::joined(server.join().map(Ok), "a soak server")?;
    }
    Ok(Report {
        backend,
        seconds,
        paths: tallies
            .into_iter()
            .map(|(path, tally)| PathReport {
                path,
                requests: tally.requests.load(Ordering::Relaxed),
                failures: tally.failures.load(Ordering::Relaxed),
            })
            .collect(),
        churn_cycles,
        churn_errors,
        samples,
    })
}

/// A client of [`traffic`]: namespace, target, tag, pause, stop, tally.
type Client = fn(
    &str,
    SocketAddrV4,
    u8,
    Duration,
    Arc<AtomicBool>,
    Arc<Tally>,
) -> Result<std::thread::JoinHandle<Result<()>>>;

/// Every path's client, with its tally.
#[expect(
    clippy::type_complexity,
    reason = "a list of threads and what they count"
)]
fn start_clients(
    lab_name: &str,
    stop: &Arc<AtomicBool>,
) -> Result<(
    Vec<std::thread::JoinHandle<Result<()>>>,
    Vec<(&'static str, Arc<Tally>)>,
)> {
    let lab = Lab::default_lab();
    let host_ext = SocketAddrV4::new(lab.external.address.addr(), PORT);
    let wan = SocketAddrV4::new(lab.external.peer_address, PORT);
    let paths: [(&'static str, &str, SocketAddrV4, Client); 6] = [
        (
            "wan -> published tcp",
            WAN_NODE,
            host_ext,
            traffic::tcp_client,
        ),
        (
            "wan -> published udp",
            WAN_NODE,
            host_ext,
            traffic::udp_client,
        ),
        (
            "host -> published tcp",
            "host",
            host_ext,
            traffic::tcp_client,
        ),
        (
            "netns1 -> published tcp (hairpin)",
            "netns1",
            host_ext,
            traffic::tcp_client,
        ),
        (
            "netns0 -> wan tcp (masquerade)",
            "netns0",
            wan,
            traffic::tcp_client,
        ),
        (
            "netns1 -> wan udp (masquerade)",
            "netns1",
            wan,
            traffic::udp_client,
        ),
    ];
    let mut tallies = Vec::new();
    let mut clients = Vec::new();
    for (tag, (path, node, target, client)) in (b'a'..).zip(paths) {
        let tally = Arc::new(Tally::default());
        let ns = topology::netns_name(lab_name, node);
        clients.push(client(
            &ns,
            target,
            tag,
            PAUSE,
            Arc::clone(stop),
            Arc::clone(&tally),
        )?);
        tallies.push((path, tally));
    }
    Ok((clients, tallies))
}

/// Publishes and unpublishes [`CHURN`] on `netns1` until stopped.
struct Churn {
    thread: std::thread::JoinHandle<()>,
    cycles: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
}

impl Churn {
    fn start(lab_name: &str, stop: &Arc<AtomicBool>) -> Result<Self> {
        let specs: Vec<PortSpec> = CHURN
            .iter()
            .map(|s| s.parse())
            .collect::<std::result::Result<_, _>>()?;
        let (cycles, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (stop, counted, failed) = (Arc::clone(stop), Arc::clone(&cycles), Arc::clone(&errors));
        let lab_name = lab_name.to_owned();
        let thread = std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for result in [
                    lifecycle::publish(&lab_name, "netns1", &specs),
                    lifecycle::unpublish(&lab_name, "netns1", &specs),
                ] {
                    if result.is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                counted.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(Churn {
            thread,
            cycles,
            errors,
        })
    }

    /// Cycles done and commands failed.
    fn join(self) -> Result<(u64, u64)> {
        Error::joined(self.thread.join().map(Ok), "the soak's churn")?;
        Ok((
            self.cycles.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        ))
    }
}

fn sample(lab_name: &str, start: Instant, loader: &Loader) -> Result<Sample> {
    let saved = state::require(lab_name)?;
    let conntrack = saved
        .backend
        .backend()?
        .conntrack(saved.nat_context())?
        .len();
    let (loader_rss_kib, loader_fds) = loader.usage();
    Ok(Sample {
        second: start.elapsed().as_secs(),
        conntrack,
        loader_rss_kib,
        loader_fds,
    })
}

/// `netlab up --foreground` of the soak's lab, as a child process.
struct Loader {
    child: Child,
}

impl Loader {
    fn start(lab_name: &str, backend: BackendKind) -> Result<Self> {
        let exe = std::env::current_exe().map_err(|err| Error::io("finding netlab itself", err))?;
        let child = Command::new(exe)
            .args([
                "--lab",
                lab_name,
                "up",
                "--foreground",
                "--backend",
                &backend.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| Error::io("starting `netlab up --foreground`", err))?;
        let loader = Loader { child };
        // Up when its state file lists the lab and no command holds it.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if state::load(lab_name)?.is_some()
                && crate::netns::exists(&topology::netns_name(lab_name, "netns1"))
                && lifecycle::settled(lab_name).is_ok()
            {
                std::thread::sleep(Duration::from_millis(500));
                return Ok(loader);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::invalid(format!(
            "lab {lab_name:?} did not come up within 30 s"
        )))
    }

    /// Resident memory (KiB) and open file descriptors of the loader.
    fn usage(&self) -> (u64, usize) {
        let pid = self.child.id();
        let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
        (rss, fds)
    }

    /// Ctrl-C, as a user would: the loader takes the lab down. `down` after it, whatever
    /// happened.
    fn stop(&mut self, lab_name: &str) -> Result<()> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(0));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        lifecycle::down(lab_name)
    }
}

impl Drop for Loader {
    /// A soak that failed half way still leaves no process behind (the lab goes with `stop`).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
