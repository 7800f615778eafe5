//! The load generator: a server that runs inside a container, and clients that run inside
//! `wan`, as threads of this process (each thread enters its namespace). No external tool is
//! needed. Every loop is bounded by a duration.

use std::{
    io::{Read as _, Write as _},
    net::{Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket},
    os::fd::AsRawFd as _,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};

use crate::{
    error::{Error, Result},
    netns,
};

/// First byte of a TCP connection: what the client wants.
const MODE_REQUEST_RESPONSE: u8 = b'r';
const MODE_BULK: u8 = b'b';
const MODE_DOWNLOAD: u8 = b'd';
/// Size of a request and of a response in the connection-rate test.
const MESSAGE: u8 = 32;
/// What the bulk client writes, over and over.
const BULK_CHUNK: usize = 128 * 1024;
/// Server threads accepting connections (each serves the connection it accepted).
const ACCEPTORS: usize = 6;
const UDP_PAYLOAD: usize = 64;

/// TCP and UDP servers on one port inside a container, stopped on drop.
#[derive(Debug)]
pub struct Server {
    ns: String,
    stop: Arc<AtomicBool>,
    listener_fd: i32,
    udp_received: Arc<AtomicU64>,
    threads: Vec<JoinHandle<Result<()>>>,
    _listener: Arc<TcpListener>,
}

impl Server {
    /// Listens on `port` (TCP and UDP, all addresses of both families) in namespace `ns`.
    pub fn start(ns: &str, port: u16) -> Result<Self> {
        let addr = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
        let (listener, udp) = netns::run_in(ns, || {
            let listener = TcpListener::bind(addr)
                .map_err(|err| Error::io(format!("listening on {addr}"), err))?;
            let udp = UdpSocket::bind(addr)
                .map_err(|err| Error::io(format!("binding UDP {addr}"), err))?;
            Ok((listener, udp))
        })?;
        let listener = Arc::new(listener);
        let stop = Arc::new(AtomicBool::new(false));
        let udp_received = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for _ in 0..ACCEPTORS {
            let listener = Arc::clone(&listener);
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => serve(stream),
                        Err(_) if stop.load(Ordering::Relaxed) => break,
                        Err(_) => {}
                    }
                }
                Ok(())
            }));
        }
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|err| Error::io("setting a UDP timeout", err))?;
        {
            let stop = Arc::clone(&stop);
            let received = Arc::clone(&udp_received);
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if udp.recv(&mut buf).is_ok() {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            }));
        }
        Ok(Self {
            ns: ns.to_string(),
            stop,
            listener_fd: listener.as_raw_fd(),
            udp_received,
            threads,
            _listener: listener,
        })
    }

    /// UDP datagrams received so far.
    pub fn udp_received(&self) -> u64 {
        self.udp_received.load(Ordering::Relaxed)
    }

    /// UDP datagrams that reached the container's sockets so far, of both families: queued,
    /// or dropped because the socket's buffer was full (the kernel's `Udp` and `Udp6`
    /// counters of its namespace; a kernel without IPv6 has no `snmp6`, and no IPv6
    /// datagram).
    fn udp_reached(&self) -> Result<u64> {
        let (snmp, snmp6) = netns::run_in(&self.ns, || {
            let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp")
                .map_err(|err| Error::io("reading /proc/net/snmp", err))?;
            let snmp6 = match std::fs::read_to_string("/proc/thread-self/net/snmp6") {
                Ok(text) => Some(text),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
                Err(err) => return Err(Error::io("reading /proc/net/snmp6", err)),
            };
            Ok((snmp, snmp6))
        })?;
        let missing = |file: &str| {
            Error::invalid(format!(
                "no UDP counters in /proc/net/{file} of namespace {:?}",
                self.ns
            ))
        };
        let v4 = udp_reached_sockets(&snmp).ok_or_else(|| missing("snmp"))?;
        let v6 = match snmp6 {
            Some(snmp6) => udp6_reached_sockets(&snmp6).ok_or_else(|| missing("snmp6"))?,
            None => 0,
        };
        Ok(v4 + v6)
    }
}

/// `InDatagrams + RcvbufErrors` of the `Udp:` lines of `/proc/net/snmp` (a line of names,
/// then a line of values).
fn udp_reached_sockets(snmp: &str) -> Option<u64> {
    let mut udp = snmp.lines().filter_map(|line| line.strip_prefix("Udp: "));
    let (names, values) = (udp.next()?, udp.next()?);
    let counters: std::collections::HashMap<&str, u64> = names
        .split_whitespace()
        .zip(values.split_whitespace())
        .filter_map(|(name, value)| Some((name, value.parse().ok()?)))
        .collect();
    Some(counters.get("InDatagrams")? + counters.get("RcvbufErrors")?)
}

/// `Udp6InDatagrams + Udp6RcvbufErrors` of `/proc/net/snmp6` (a name and a value a line).
fn udp6_reached_sockets(snmp6: &str) -> Option<u64> {
    let counter = |wanted: &str| {
        snmp6.lines().find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next()? == wanted).then(|| fields.next()?.parse::<u64>().ok())?
        })
    };
    Some(counter("Udp6InDatagrams")? + counter("Udp6RcvbufErrors")?)
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the acceptors: accept() on a shut-down listener fails at once.
        // SAFETY: the listener is alive (we hold it) and shutdown takes no pointers.
        unsafe { libc::shutdown(self.listener_fd, libc::SHUT_RDWR) };
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The first bytes of a connection: the mode, and for request/response the size of every
/// message that follows.
fn request_header(mode: u8, message_len: u8) -> Bytes {
    let mut header = BytesMut::with_capacity(2);
    header.put_u8(mode);
    if mode == MODE_REQUEST_RESPONSE {
        header.put_u8(message_len);
    }
    header.freeze()
}

/// Serves one connection: request/response messages, a bulk sink that reports how many
/// bytes it got, or a bulk source that writes until the client goes away.
fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut mode = [0u8; 1];
    if stream.read_exact(&mut mode).is_err() {
        return;
    }
    match mode[0] {
        MODE_REQUEST_RESPONSE => {
            let mut size = [0u8; 1];
            if stream.read_exact(&mut size).is_err() {
                return;
            }
            let latency_test = size[0] == 1;
            if latency_test {
                set_affinity(Some(0));
            }
            let mut message = vec![0u8; usize::from(size[0])];
            while stream.read_exact(&mut message).is_ok() {
                if stream.write_all(&message).is_err() {
                    break;
                }
            }
            if latency_test {
                // This thread serves other tests next.
                set_affinity(None);
            }
        }
        MODE_BULK => {
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            let mut reply = BytesMut::with_capacity(8);
            reply.put_u64(total);
            let _ = stream.write_all(&reply);
        }
        MODE_DOWNLOAD => {
            let chunk = Bytes::from(vec![0xa5u8; BULK_CHUNK]);
            while stream.write_all(&chunk).is_ok() {}
        }
        _ => {}
    }
}

fn connect(target: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&target, Duration::from_secs(1))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    Ok(stream)
}

/// What a connection loop made.
#[derive(Debug, Clone, Copy, Default)]
pub struct Connections {
    /// Connections per second, summed over the clients.
    pub per_second: f64,
    pub done: u64,
    pub failed: u64,
}

impl Connections {
    /// `self`, or an error if every connection `who` tried to `target` failed.
    pub fn some_succeeded(self, who: &str, target: SocketAddr) -> Result<Self> {
        if self.failed > 0 && self.done == 0 {
            return Err(Error::invalid(format!(
                "{who}: no connection to {target} succeeded"
            )));
        }
        Ok(self)
    }
}

/// New connections per second: `threads` clients each connect, exchange one message and
/// close, for `duration`.
pub fn connection_rate(
    ns: &str,
    target: SocketAddr,
    threads: usize,
    duration: Duration,
) -> Result<Connections> {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            netns::spawn_in(ns, move || {
                let (mut done, mut failed) = (0u64, 0u64);
                let start = Instant::now();
                let header = request_header(MODE_REQUEST_RESPONSE, MESSAGE);
                let mut message = [0u8; MESSAGE as usize];
                while start.elapsed() < duration {
                    let ok = connect(target).and_then(|mut stream| {
                        stream.write_all(&header)?;
                        stream.write_all(&message)?;
                        stream.read_exact(&mut message)
                    });
                    if ok.is_ok() { done += 1 } else { failed += 1 }
                }
                (done, failed, start.elapsed())
            })
        })
        .collect::<Result<_>>()?;
    let mut made = Connections::default();
    for handle in handles {
        let (done, failed, elapsed) = join(handle)?;
        made.per_second += done as f64 / elapsed.as_secs_f64();
        made.done += done;
        made.failed += failed;
    }
    Ok(made)
}

/// Pins the calling thread to one CPU, or lets it run on all. The latency test pins both
/// its ends to CPU 0: on this kind of VM waking a thread on the other CPU costs ~70 µs,
/// which would drown the datapath's own cost in noise.
fn set_affinity(cpu: Option<usize>) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        for i in 0..cpus {
            if cpu.is_none_or(|only| only == i) {
                libc::CPU_SET(i, &mut set);
            }
        }
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set);
    }
}

/// Round-trip times of 1-byte request/response on one established connection, for
/// `duration`, client and server on the same CPU; sorted, in microseconds.
pub fn request_response(ns: &str, target: SocketAddr, duration: Duration) -> Result<Vec<f64>> {
    join(netns::spawn_in(
        ns,
        move || -> std::io::Result<Vec<f64>> {
            set_affinity(Some(0));
            let mut stream = connect(target)?;
            stream.write_all(&request_header(MODE_REQUEST_RESPONSE, 1))?;
            let mut byte = [7u8; 1];
            let mut samples = Vec::new();
            let start = Instant::now();
            while start.elapsed() < duration {
                let sent = Instant::now();
                stream.write_all(&byte)?;
                stream.read_exact(&mut byte)?;
                samples.push(sent.elapsed().as_secs_f64() * 1e6);
            }
            samples.sort_by(f64::total_cmp);
            Ok(samples)
        },
    )?)?
    .map_err(|err| Error::io(format!("request/response with {target}"), err))
}

/// Bulk TCP throughput in Gbit/s: one connection writes for `duration`; the server's count
/// of bytes received decides.
pub fn bulk(ns: &str, target: SocketAddr, duration: Duration) -> Result<f64> {
    join(netns::spawn_in(ns, move || -> std::io::Result<f64> {
        let mut stream = connect(target)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(&request_header(MODE_BULK, 0))?;
        let chunk = Bytes::from(vec![0x5au8; BULK_CHUNK]);
        let start = Instant::now();
        while start.elapsed() < duration {
            stream.write_all(&chunk)?;
        }
        stream.shutdown(Shutdown::Write)?;
        let mut total = [0u8; 8];
        stream.read_exact(&mut total)?;
        let elapsed = start.elapsed().as_secs_f64();
        Ok((&total[..]).get_u64() as f64 * 8.0 / elapsed / 1e9)
    })?)?
    .map_err(|err| Error::io(format!("bulk transfer to {target}"), err))
}

/// Bulk TCP download in Gbit/s: the container's server writes for `duration` on one
/// connection; the client's count of bytes received decides. This is the direction of a
/// container's replies, which the fast path sends out without the host's routing.
pub fn download(ns: &str, target: SocketAddr, duration: Duration) -> Result<f64> {
    join(netns::spawn_in(ns, move || -> std::io::Result<f64> {
        let mut stream = connect(target)?;
        stream.write_all(&request_header(MODE_DOWNLOAD, 0))?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        let start = Instant::now();
        while start.elapsed() < duration {
            match stream.read(&mut buf)? {
                0 => break,
                n => total += n as u64,
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        // Closing makes the server's next write fail, which ends it.
        stream.shutdown(Shutdown::Both)?;
        Ok(total as f64 * 8.0 / elapsed / 1e9)
    })?)?
    .map_err(|err| Error::io(format!("bulk download from {target}"), err))
}

/// What a small-packet UDP load achieved, in datagrams per second.
#[derive(Debug, Clone, Copy)]
pub struct UdpRate {
    /// Read by the server.
    pub received: f64,
    /// Reached the container's sockets: read, or dropped there by a full socket buffer
    /// (the NAT's own throughput, whatever CPU the receiver got).
    pub reached: f64,
}

/// Small-packet UDP: `threads` senders send 64-byte datagrams for `duration`.
pub fn udp_rate(
    ns: &str,
    target: SocketAddr,
    server: &Server,
    threads: usize,
    duration: Duration,
) -> Result<UdpRate> {
    let before = (server.udp_received(), server.udp_reached()?);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            netns::spawn_in(ns, move || -> std::io::Result<Duration> {
                let socket = UdpSocket::bind(if target.is_ipv6() {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                })?;
                socket.connect(target)?;
                let payload = Bytes::from_static(&[0x42u8; UDP_PAYLOAD]);
                let start = Instant::now();
                let mut sent = 0u32;
                while start.elapsed() < duration {
                    // A full socket buffer just means the receiver is behind: that is the measure.
                    let _ = socket.send(&payload);
                    sent = sent.wrapping_add(1);
                }
                Ok(start.elapsed())
            })
        })
        .collect::<Result<_>>()?;
    let mut elapsed = Duration::ZERO;
    for handle in handles {
        elapsed = elapsed
            .max(join(handle)?.map_err(|err| Error::io(format!("sending UDP to {target}"), err))?);
    }
    // Let the last datagrams land.
    std::thread::sleep(Duration::from_millis(100));
    let seconds = elapsed.as_secs_f64();
    Ok(UdpRate {
        received: (server.udp_received() - before.0) as f64 / seconds,
        reached: (server.udp_reached()? - before.1) as f64 / seconds,
    })
}

fn join<T>(handle: JoinHandle<Result<T>>) -> Result<T> {
    Error::joined(handle.join(), "generating load")
}

#[cfg(test)]
mod tests {
    use super::{udp_reached_sockets, udp6_reached_sockets};

    #[test]
    fn udp_reached_sockets_adds_read_and_buffer_overflows() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
            Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
            Udp: 979957 3 1054825 2 1054825 0\n\
            UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
            UdpLite: 7 0 0 0 9 0\n";
        assert_eq!(udp_reached_sockets(snmp), Some(979_957 + 1_054_825));
        assert_eq!(udp_reached_sockets("Udp: InDatagrams\nUdp: 5\n"), None);
        assert_eq!(udp_reached_sockets(""), None);
    }

    #[test]
    fn udp6_reached_sockets_adds_read_and_buffer_overflows() {
        let snmp6 = "Ip6InReceives                   \t12\n\
            Udp6InDatagrams                 \t4051\n\
            Udp6NoPorts                     \t1\n\
            Udp6RcvbufErrors                \t977\n\
            UdpLite6InDatagrams             \t5\n\
            UdpLite6RcvbufErrors            \t8\n";
        assert_eq!(udp6_reached_sockets(snmp6), Some(4051 + 977));
        assert_eq!(udp6_reached_sockets("Udp6InDatagrams 3\n"), None);
        assert_eq!(udp6_reached_sockets(""), None);
    }
}
