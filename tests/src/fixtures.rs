//! The Python programs the lab suites run inside a lab's namespaces, one file each under
//! `tests/fixtures/`, embedded at build time. Each is run as `python3 -c PROGRAM ARGS...`.

/// The servers, `python3 -c SERVER MODE PORT...`; every port is bound before any is served.
/// - `http`: `GET` answers `peer=<client address> port=<accepting port> path=<path>`.
/// - `lines`: echoes each line prefixed with `<client address> <accepting port> `.
/// - `bulk`: `PUT n` reads n bytes and answers `<bytes read> <sha256>`; `GET n` sends
///   `<sha256>` and a newline, then n random bytes, then closes.
/// - `udp`: echoes each datagram byte for byte; `?peer` is answered with the sender's address,
///   `?peers` with the sorted, comma-separated addresses of every sender of a datagram echoed.
/// - `dns`: a datagram holding a decimal number n is answered with one datagram: the sha256
///   of n random bytes (32 bytes), then those bytes.
///
/// `http` answers `GET /whoami` with `self=<the server's own address>`.
pub const SERVER: &str = include_str!("../fixtures/server.py");

/// The clients, `python3 -c CLIENT MODE ARGS...`; each prints its findings on stdout and the
/// test compares them, or fails with a traceback.
/// - `lines HOST PORT MSG...`: one connection, each message as a line, prints each reply.
/// - `session HOST PORT`: the same with messages read from stdin as they come.
/// - `probe HOST PORT SECS`: prints `connected`, `refused`, `timeout` or the errno name.
/// - `put HOST PORT SIZE` / `get HOST PORT SIZE`: 10 MB-style transfers with the `bulk`
///   server; print `client <bytes> <sha256>` and `server <bytes> <sha256>`.
/// - `concurrent HOST PORT N`: N connections open at once, each echoing a distinct line
///   through a `lines` server; prints `ok=<good>/<N> peers=<addresses the server saw>`.
/// - `udp HOST PORT N`: N datagrams of random content and size (1 to 1472 bytes) over a
///   connected socket (so replies from any other address are not taken); prints
///   `matched=<equal echoes>/<N>`.
/// - `udp-peer HOST PORT`: prints the sender address the `udp` server saw.
pub const CLIENT: &str = include_str!("../fixtures/client.py");

/// `python3 -c UDP_PROBE IP PORT`: sends one datagram on a connected UDP socket and prints
/// how it ends: `reply`, `refused` (an ICMP port unreachable reached the socket) or `timeout`.
pub const UDP_PROBE: &str = include_str!("../fixtures/udp_probe.py");

/// `python3 -c MANY_FLOWS IP PORT N [WINDOW [SECONDS]]`: N UDP sockets, all open at once,
/// each send a distinct payload to an echo server and must each get their own payload back;
/// prints `<flows answered> <replies that reached a wrong socket> <datagrams sent again>`.
/// With WINDOW, at most that many requests are in flight, so a resend means a loss (see the
/// file's docstring); SECONDS (default 40) bounds the run.
pub const MANY_FLOWS: &str = include_str!("../fixtures/many_flows.py");

/// `python3 -c RAW_SYN IP PORT`: sends three TCP SYNs to IP:PORT out of `eth0` in a
/// broadcast frame, as a hostile neighbour on the external link could.
pub const RAW_SYN: &str = include_str!("../fixtures/raw_syn.py");

/// `python3 -c UDP_TWICE IP PORT`: one UDP socket sends `one` and prints the reply, waits for
/// a line on stdin, then sends `two` and prints the reply or `timeout`.
pub const UDP_TWICE: &str = include_str!("../fixtures/udp_twice.py");

/// A module, not a program: IPv4/UDP/TCP builders with their checksums, fragments, and an
/// `AF_PACKET` link to send frames on and read packets from. The programs that use it (those
/// documented as `PACKETS+NAME`) are run with it prepended: see [`with_packets`].
pub const PACKETS: &str = include_str!("../fixtures/packets.py");

/// [`PACKETS`] followed by `program`, ready for `python3 -c`.
pub fn with_packets(program: &str) -> String {
    [PACKETS, "\n", program].concat()
}

/// `python3 -c UDP_SIZES HOST PORT SIZE...`: one connected UDP socket sends a datagram of
/// random content of each SIZE to a `udp` echo server; prints `SIZE ok` for an echo of the
/// same bytes (`SIZE timeout`, `SIZE mismatch <bytes>` otherwise), then `peer <address the
/// server saw>`.
pub const UDP_SIZES: &str = include_str!("../fixtures/udp_sizes.py");

/// `python3 -c UDP_QUERY HOST PORT SIZE`: a DNS-like exchange with a `dns` server: a small
/// query, one SIZE-byte reply carrying its own sha256; prints `ok <bytes>` when it checks out.
pub const UDP_QUERY: &str = include_str!("../fixtures/udp_query.py");

/// `python3 -c PACKETS+CAPTURE IFACE`: records the source of every IPv4 packet IFACE
/// receives; answers each line on stdin with a JSON object `{source: packets}` so far.
pub const CAPTURE: &str = include_str!("../fixtures/capture.py");

/// `python3 -c PACKETS+CRAFT_FRAGMENTS IFACE DST_MAC SRC DST DPORT SCENARIO...`: crafted UDP
/// fragments, one datagram per scenario: `reversed` (the first fragment last), `overlap`
/// (a last fragment overlapping the first), `lone` (a later fragment without its first).
/// Prints `early <later fragments sent before their first>` last.
pub const CRAFT_FRAGMENTS: &str = include_str!("../fixtures/craft_fragments.py");

/// `python3 -c PACKETS+FRAGMENTS_ECHO IFACE DST_MAC SRC DST DPORT SIZE`: a SIZE-byte datagram
/// sent to a `udp` echo server as crafted fragments, the last first, from a bound socket that
/// waits for the echo; prints `intact`, `corrupt <bytes>` or `none`.
pub const FRAGMENTS_ECHO: &str = include_str!("../fixtures/fragments_echo.py");

/// `python3 -c PACKETS+CRAFT_UDP IFACE DST_MAC SRC DST SPORT DPORT COUNT`: COUNT crafted UDP
/// datagrams from any source address, spoofed or martian; prints `sent <COUNT>`.
pub const CRAFT_UDP: &str = include_str!("../fixtures/craft_udp.py");

/// `python3 -c PACKETS+SYN_FLOOD IFACE DST_MAC SRC DST DPORT COUNT`: COUNT TCP SYNs from SRC,
/// each from its own random source port; prints `sent <COUNT>`.
pub const SYN_FLOOD: &str = include_str!("../fixtures/syn_flood.py");

/// `python3 -c BOUND_SESSION tcp|udp BIND_IP BIND_PORT HOST PORT`: a client socket bound to
/// `BIND_IP:BIND_PORT` (`SO_REUSEADDR`) and connected to `HOST:PORT`; each line on stdin is sent
/// (a line, or a datagram) and the reply printed on one line (`timeout` after 5 s). Drive it
/// with [`Session::spawn`](crate::harness::Session::spawn).
pub const BOUND_SESSION: &str = include_str!("../fixtures/bound_session.py");

/// `python3 -c HTTP_GET_FROM BIND_PORT HOST PORT PATH`: an HTTP/1.0 `GET` from local port
/// `BIND_PORT`, read until the server closes (so the client port keeps no `TIME_WAIT`); prints
/// the body.
pub const HTTP_GET_FROM: &str = include_str!("../fixtures/http_get_from.py");

/// `python3 -c UDP_TWO_PORTS HOST PORT...`: ONE unconnected UDP socket sends a distinct
/// datagram to each port and collects echoes with recvfrom: `<address>:<port> ok` for each
/// echo of what went to that address and port, `unexpected` / `missing` otherwise.
pub const UDP_TWO_PORTS: &str = include_str!("../fixtures/udp_two_ports.py");

/// `python3 -c PACKETS+FUZZ_FRAMES IFACE DST_MAC EXT TCP_PORT UDP_PORT CLOSED_PORT CONTAINER
/// COUNT SEED [QUOTED]`: COUNT crafted frames of every malformed and hostile kind out of
/// IFACE; prints how many of each kind it sent, as JSON (see the file's docstring).
pub const FUZZ_FRAMES: &str = include_str!("../fixtures/fuzz_frames.py");

/// `python3 -c FRAME_CAPTURE IFACE SRC`: records the TTL and source MAC address of every
/// IPv4 packet from SRC that IFACE receives; each line on stdin is answered with a JSON list
/// of `[ttl, "mac"]` pairs seen so far.
pub const FRAME_CAPTURE: &str = include_str!("../fixtures/frame_capture.py");
