//! The soak's traffic: echo servers inside a lab's namespaces and clients that check every
//! byte comes back, each on a thread that entered its namespace.

use std::{
    io::{Read as _, Write as _},
    net::{Shutdown, SocketAddrV4, TcpListener, TcpStream, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use crate::{
    error::{Error, Result},
    netns,
};

/// Bytes of each request; every one carries a distinct sequence number.
const REQUEST: usize = 64;
/// A client waits this long for an answer before counting a failure.
const TIMEOUT: Duration = Duration::from_secs(3);
/// Sent again this many times before a UDP request counts as failed: a datagram may be lost
/// on a busy machine without the NAT being wrong.
const UDP_TRIES: u32 = 3;

/// TCP and UDP echo servers on `port` in namespace `ns`, until `stop`.
pub fn echo_servers(ns: &str, port: u16, stop: &Arc<AtomicBool>) -> Result<Vec<JoinHandle<()>>> {
    let address = SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, port);
    let (listener, udp) = netns::run_in(ns, || {
        let listener = TcpListener::bind(address)
            .map_err(|err| Error::io(format!("listening on {address} in {ns}"), err))?;
        let udp = UdpSocket::bind(address)
            .map_err(|err| Error::io(format!("binding UDP {address} in {ns}"), err))?;
        Ok((listener, udp))
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|err| Error::io("a non-blocking listener", err))?;
    udp.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|err| Error::io("a UDP timeout", err))?;
    let tcp_stop = Arc::clone(stop);
    let tcp = std::thread::spawn(move || {
        while !tcp_stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(TIMEOUT));
                    let mut buf = [0u8; REQUEST];
                    if stream.read_exact(&mut buf).is_ok() {
                        let _ = stream.write_all(&buf);
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    });
    let udp_stop = Arc::clone(stop);
    let udp = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !udp_stop.load(Ordering::Relaxed) {
            if let Ok((n, peer)) = udp.recv_from(&mut buf) {
                let _ = udp.send_to(&buf[..n], peer);
            }
        }
    });
    Ok(vec![tcp, udp])
}

/// Requests and failures of one client.
#[derive(Debug, Default)]
pub struct Tally {
    pub requests: AtomicU64,
    pub failures: AtomicU64,
}

/// A request payload: the path's tag and a sequence number, padded.
fn payload(tag: u8, seq: u64) -> [u8; REQUEST] {
    let mut buf = [tag; REQUEST];
    buf[..8].copy_from_slice(&seq.to_be_bytes());
    buf
}

/// Sends numbered requests through `ask` (which says whether the echo came back intact),
/// counting them and the failures, with `pause` between them, until `stop`.
fn requests(
    tag: u8,
    pause: Duration,
    stop: &AtomicBool,
    tally: &Tally,
    mut ask: impl FnMut(&[u8; REQUEST]) -> bool,
) {
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let answered = ask(&payload(tag, seq));
        tally.requests.fetch_add(1, Ordering::Relaxed);
        if !answered {
            tally.failures.fetch_add(1, Ordering::Relaxed);
        }
        std::thread::sleep(pause);
    }
}

/// One TCP connection per request from namespace `ns` to `target`, until `stop`, with
/// `pause` between requests.
pub fn tcp_client(
    ns: &str,
    target: SocketAddrV4,
    tag: u8,
    pause: Duration,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Result<JoinHandle<Result<()>>> {
    netns::spawn_in(ns, move || {
        requests(tag, pause, &stop, &tally, |request| {
            let answered = (|| -> std::io::Result<bool> {
                let mut stream = TcpStream::connect_timeout(&target.into(), TIMEOUT)?;
                stream.set_read_timeout(Some(TIMEOUT))?;
                stream.write_all(request)?;
                let mut reply = [0u8; REQUEST];
                stream.read_exact(&mut reply)?;
                let _ = stream.shutdown(Shutdown::Both);
                Ok(reply == *request)
            })();
            matches!(answered, Ok(true))
        });
    })
}

/// UDP requests from one socket in namespace `ns` to `target`, until `stop`.
pub fn udp_client(
    ns: &str,
    target: SocketAddrV4,
    tag: u8,
    pause: Duration,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Result<JoinHandle<Result<()>>> {
    netns::spawn_in(ns, move || {
        let socket = UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| s.connect(target).map(|()| s))
            .and_then(|s| s.set_read_timeout(Some(TIMEOUT / UDP_TRIES)).map(|()| s));
        let Ok(socket) = socket else {
            // Counted, not raised: the report says which path failed.
            tally.failures.fetch_add(1, Ordering::Relaxed);
            return;
        };
        requests(tag, pause, &stop, &tally, |request| {
            for _ in 0..UDP_TRIES {
                let _ = socket.send(request);
                let mut reply = [0u8; 2048];
                // Echoes of earlier tries may come late: read until ours or the timeout.
                while let Ok(n) = socket.recv(&mut reply) {
                    if reply[..n] == *request {
                        return true;
                    }
                }
            }
            false
        });
    })
}
