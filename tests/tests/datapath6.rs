//! The datapath's IPv6 packet rewriting (NAT66), tested with `BPF_PROG_TEST_RUN` on crafted
//! frames as `datapath.rs` does for IPv4: every rewritten field is checked, and every
//! upper-layer checksum against one computed from scratch over IPv6's pseudo header.

use std::net::Ipv6Addr;

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData},
};
use netlab_common::{
    nat::{CounterRef, NatConfig, Stat, ct_flags, flags, programs},
    nat6::{self, CtEntry6, FlowKey6, NatConfig6, PublishKey6, PublishValue6, words_of},
};
use netlab_e2e::{
    frames6::{
        FRAGMENT, Frame6, HOP_BY_HOP, ICMPV6, Parsed6, TCP, UDP, ethernet, fragment_header,
        l4_checksum, parse6,
    },
    prog_test::{self, PinDir, TC_ACT_SHOT, TC_ACT_UNSPEC},
};

const WAN: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
const EXT: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
const GATEWAY: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x172, 0x18, 0, 0, 0, 0, 1);
const C0: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x172, 0x18, 0, 0, 0, 0, 0x10);
const C1: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x172, 0x18, 0, 0, 0, 0, 0x20);
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const DESTINATION_OPTIONS: u8 = 60;
const ECHO_REQUEST: u8 = 128;
const ECHO_REPLY: u8 = 129;
const PACKET_TOO_BIG: u8 = 2;

/// One loaded copy of the datapath, dual-stack: the default lab's IPv6 addresses, 5000/tcp
/// published to netns0 and 6000/udp to netns1 (every address), masquerade on, fast path
/// off (test runs do not redirect).
struct Datapath6 {
    bpf: Ebpf,
    _dir: PinDir,
}

impl Datapath6 {
    fn new() -> Self {
        // The IPv6 maps are declared with one entry; a dual-stack lab's loader sizes them.
        let (mut bpf, dir) = prog_test::load(&[
            (nat6::maps::PUBLISH6, 64),
            (nat6::maps::CONNTRACK6, 1024),
            (nat6::maps::CONTAINERS6, 16),
            (nat6::maps::FRAGMENTS6, 64),
            (nat6::maps::SOCK_ORIG6, 16),
        ]);
        let config = NatConfig {
            flags: flags::READY | flags::MASQUERADE,
            ..NatConfig::default()
        };
        prog_test::set_config(&mut bpf, config);
        let config6 = NatConfig6 {
            external_ip: words_of(EXT),
            gateway_ip: words_of(GATEWAY),
            subnet: words_of(Ipv6Addr::new(0xfd00, 0x172, 0x18, 0, 0, 0, 0, 0)),
            subnet_mask: words_of(Ipv6Addr::new(0xffff, 0xffff, 0xffff, 0xffff, 0, 0, 0, 0)),
            ready: 1,
            pad: 0,
        };
        let mut array: Array<&mut MapData, NatConfig6> =
            Array::try_from(bpf.map_mut(nat6::maps::CONFIG6).expect("config map")).expect("array");
        array.set(0, config6, 0).expect("writing the IPv6 config");
        let mut datapath = Self { bpf, _dir: dir };
        datapath.publish(5000, TCP, C0);
        datapath.publish(6000, UDP, C1);
        datapath
    }

    /// Publishes `port`/`proto` on every host address to the same port of `target`.
    fn publish(&mut self, port: u16, proto: u8, target: Ipv6Addr) {
        let mut publish: HashMap<&mut MapData, PublishKey6, PublishValue6> =
            HashMap::try_from(self.bpf.map_mut(nat6::maps::PUBLISH6).expect("publish map"))
                .expect("hash map");
        let key = PublishKey6 {
            ip: [0; 4],
            port: port.to_be(),
            proto,
            pad: 0,
        };
        let value = PublishValue6 {
            owner: 0,
            counter: CounterRef::default(),
            ip: words_of(target),
            port: port.to_be(),
            pad: [0; 6],
        };
        publish.insert(key, value, 0).expect("publishing");
    }

    /// Adds `flags` to the (IPv4) config's, which holds the flags of both families.
    fn add_flags(&mut self, flags: u32) {
        prog_test::edit_config(&mut self.bpf, |config| config.flags |= flags);
    }

    fn tc(&self, name: &str, frame: &[u8]) -> (i32, Vec<u8>) {
        prog_test::tc(&self.bpf, name, frame)
    }

    /// Runs `name` on `frame`, which it must pass on; returns what it left.
    #[track_caller]
    fn passes(&self, name: &str, frame: &[u8]) -> Vec<u8> {
        let (verdict, out) = self.tc(name, frame);
        assert_eq!(verdict, TC_ACT_UNSPEC, "{name} passes the packet on");
        out
    }

    #[track_caller]
    fn ingress(&self, frame: &Frame6) -> Parsed6 {
        parse6(&self.passes(programs::TC_EXTERNAL_INGRESS, &frame.bytes()))
    }

    #[track_caller]
    fn egress(&self, frame: &Frame6) -> Parsed6 {
        parse6(&self.passes(programs::TC_EXTERNAL_EGRESS, &frame.bytes()))
    }

    fn stat(&self, stat: Stat) -> u64 {
        prog_test::stat(&self.bpf, stat)
    }
}

#[track_caller]
fn assert_checksum(p: &Parsed6) {
    assert!(p.l4_checksum_ok, "upper-layer checksum: {p:?}");
}

#[test]
fn tcp_to_a_published_port_is_dnatted_and_the_reply_reverse_translated() {
    let dp = Datapath6::new();
    let p = dp.ingress(&Frame6::tcp((WAN, 40000), (EXT, 5000), SYN, b""));
    assert_eq!((p.src, p.dst, p.ports), (WAN, C0, (40000, 5000)));
    assert_eq!(
        p.hop_limit, 64,
        "no fast path: the stack decrements the hop limit"
    );
    assert_checksum(&p);

    let p = dp.egress(&Frame6::tcp((C0, 5000), (WAN, 40000), SYN | ACK, b""));
    assert_eq!((p.src, p.dst, p.ports), (EXT, WAN, (5000, 40000)));
    assert_checksum(&p);

    let data = Frame6::tcp((WAN, 40000), (EXT, 5000), ACK, b"GET / HTTP/1.1\r\n\r\n");
    let p = dp.ingress(&data);
    assert_eq!((p.dst, p.ports.1), (C0, 5000));
    assert_checksum(&p);
    assert!(
        p.l4.ends_with(b"GET / HTTP/1.1\r\n\r\n"),
        "payload untouched"
    );
    assert_eq!(dp.stat(Stat::Translated), 3);
}

/// A SYN on a closed flow's tuple takes its entries over in place while the published ports
/// would translate it as before, and is created anew once the port leads elsewhere, as in
/// IPv4.
#[test]
fn a_syn_on_a_closed_flows_tuple_restarts_it_in_place_until_the_port_moves() {
    const FIN: u8 = 0x01;
    let mut dp = Datapath6::new();
    let client = (WAN, 40200);
    let open_and_close = |dp: &Datapath6, container: Ipv6Addr| {
        let p = dp.ingress(&Frame6::tcp(client, (EXT, 5000), SYN, b""));
        assert_eq!((p.dst, p.ports), (container, (client.1, 5000)));
        assert_checksum(&p);
        let p = dp.egress(&Frame6::tcp((container, 5000), client, SYN | ACK, b""));
        assert_eq!((p.src, p.ports), (EXT, (5000, client.1)));
        assert_checksum(&p);
        dp.ingress(&Frame6::tcp(client, (EXT, 5000), ACK, b""));
        dp.egress(&Frame6::tcp((container, 5000), client, FIN | ACK, b""));
    };
    open_and_close(&dp, C0);
    open_and_close(&dp, C0);
    assert_eq!(
        dp.stat(Stat::CtRestarted),
        1,
        "the second SYN restarted the flow"
    );
    dp.publish(5000, TCP, C1);
    open_and_close(&dp, C1);
    assert_eq!(
        dp.stat(Stat::CtRestarted),
        1,
        "a port that leads elsewhere now starts a new flow"
    );
}

/// A container's reply that is a GSO segment (a download) goes to the stack untouched, where
/// the external device's egress program translates it, and so does every later reply of its
/// flow, as in IPv4. (Where a small reply goes through the fast path depends on the test's
/// own routes: the mark in the flow's entry is what is checked.)
#[test]
fn a_flow_whose_container_sent_a_gso_segment_leaves_through_the_stack_from_then_on() {
    let mut dp = Datapath6::new();
    dp.add_flags(flags::FAST_PATH);
    let client: (Ipv6Addr, u16) = (WAN, 41310);
    let marked = || {
        let map: HashMap<&MapData, FlowKey6, CtEntry6> =
            HashMap::try_from(dp.bpf.map(nat6::maps::CONNTRACK6).expect("conntrack map"))
                .expect("hash");
        let key = FlowKey6 {
            src_ip: words_of(C0),
            dst_ip: words_of(client.0),
            src_port: 5000u16.to_be(),
            dst_port: client.1.to_be(),
            proto: TCP,
            pad: [0; 3],
        };
        map.get(&key, 0).expect("the reply's entry").flags & ct_flags::VIA_STACK != 0
    };
    let reply = |flags, payload: &[u8]| Frame6::tcp((C0, 5000), client, flags, payload).bytes();
    dp.ingress(&Frame6::tcp(client, (EXT, 5000), SYN, b""));
    dp.tc(programs::TC_CONTAINER_INGRESS, &reply(SYN | ACK, b""));
    assert!(!marked(), "a small reply leaves its flow on the fast path");
    let gso = reply(ACK, &[7; 2000]);
    assert_eq!(
        prog_test::tc_gso(&dp.bpf, programs::TC_CONTAINER_INGRESS, &gso, 2, 1000),
        (TC_ACT_UNSPEC, gso.clone()),
        "a GSO reply goes to the stack untouched"
    );
    assert!(marked(), "its flow is marked");
    let tail = reply(ACK, b"the tail");
    assert_eq!(
        dp.tc(programs::TC_CONTAINER_INGRESS, &tail),
        (TC_ACT_UNSPEC, tail.clone()),
        "the flow's small replies follow it"
    );
    let out = dp.egress(&Frame6::tcp((C0, 5000), client, ACK, &[7; 2000]));
    assert_eq!(
        (out.src, out.ports.0),
        (EXT, 5000),
        "the external device's egress translates it"
    );
    assert_checksum(&out);
}

#[test]
fn an_unpublished_port_and_the_bridge_address_pass_untouched() {
    let dp = Datapath6::new();
    for frame in [
        Frame6::tcp((WAN, 40000), (EXT, 5001), SYN, b"").bytes(),
        Frame6::tcp((WAN, 40000), (GATEWAY, 22), SYN, b"").bytes(),
    ] {
        assert_eq!(
            dp.tc(programs::TC_EXTERNAL_INGRESS, &frame),
            (TC_ACT_UNSPEC, frame)
        );
    }
}

#[test]
fn udp_and_echo_are_masqueraded_and_translated_back() {
    let dp = Datapath6::new();
    let p = dp.egress(&Frame6::udp((C0, 3333), (WAN, 53), b"query"));
    assert_eq!((p.src, p.dst, p.ports), (EXT, WAN, (3333, 53)));
    assert_checksum(&p);
    let p = dp.ingress(&Frame6::udp((WAN, 53), (EXT, 3333), b"answer"));
    assert_eq!((p.src, p.dst, p.ports), (WAN, C0, (53, 3333)));
    assert_checksum(&p);

    let echo = |src, dst, kind| {
        Frame6::icmp(
            src,
            dst,
            kind,
            0,
            &[0x42, 0x42, 0, 1, b'p', b'i', b'n', b'g'],
        )
    };
    let p = dp.egress(&echo(C1, WAN, ECHO_REQUEST));
    assert_eq!(
        (p.src, p.dst, p.proto, p.ports.0),
        (EXT, WAN, ICMPV6, 0x4242)
    );
    assert_checksum(&p);
    let p = dp.ingress(&echo(WAN, EXT, ECHO_REPLY));
    assert_eq!((p.src, p.dst, p.ports.0), (WAN, C1, 0x4242));
    assert_checksum(&p);
}

#[test]
fn a_taken_source_port_moves_to_a_free_one() {
    let dp = Datapath6::new();
    let first = dp.egress(&Frame6::udp((C0, 7777), (WAN, 80), b"A"));
    let second = dp.egress(&Frame6::udp((C1, 7777), (WAN, 80), b"B"));
    assert_eq!(first.ports.0, 7777, "the first keeps its port");
    assert_ne!(second.ports.0, 7777, "the second moves off it");
    assert_checksum(&second);
    let back = dp.ingress(&Frame6::udp((WAN, 80), (EXT, second.ports.0), b"B"));
    assert_eq!((back.dst, back.ports.1), (C1, 7777));
    let back = dp.ingress(&Frame6::udp((WAN, 80), (EXT, 7777), b"A"));
    assert_eq!((back.dst, back.ports.1), (C0, 7777));
}

/// An ICMPv6 error of `kind` from `src` to `dst` quoting `quoted`'s IPv6 packet whole
/// (after the 4 bytes of the error's own field: the MTU of Packet Too Big).
fn icmp_error(src: Ipv6Addr, dst: Ipv6Addr, kind: u8, quoted: &Frame6) -> Frame6 {
    let mut body = 1280u32.to_be_bytes().to_vec();
    body.extend(quoted.packet_with(&quoted.l4_bytes()));
    Frame6::icmp(src, dst, kind, 0, &body)
}

#[test]
fn packet_too_big_has_its_quoted_header_translated() {
    let dp = Datapath6::new();
    let sent = dp.egress(&Frame6::udp((C1, 4444), (WAN, 9), b"hello"));
    assert_eq!(sent.src, EXT);
    // A router on the way answers "packet too big", quoting the datagram as it saw it.
    let quoted = Frame6::udp((EXT, sent.ports.0), (WAN, 9), b"hello");
    let p = dp.ingress(&icmp_error(WAN, EXT, PACKET_TOO_BIG, &quoted));
    assert_eq!((p.src, p.dst, p.proto), (WAN, C1, ICMPV6));
    assert_checksum(&p);
    let inner = parse6(&ethernet(&p.l4[8..]));
    assert_eq!(
        (inner.src, inner.dst, inner.ports),
        (C1, WAN, (4444, 9)),
        "quoted header"
    );
    assert!(inner.l4_checksum_ok, "quoted UDP checksum: {inner:?}");

    // An error about a flow published to a container, raised by the client itself.
    let client = (WAN, 40500);
    assert_eq!(
        dp.ingress(&Frame6::tcp(client, (EXT, 5000), SYN, b"")).dst,
        C0
    );
    let reply = Frame6::tcp((C0, 5000), client, SYN | ACK, b"");
    assert_eq!(dp.egress(&reply).src, EXT);
    let on_the_wire = Frame6::tcp((EXT, 5000), client, SYN | ACK, b"");
    let p = dp.ingress(&icmp_error(WAN, EXT, 1, &on_the_wire));
    assert_eq!((p.src, p.dst), (WAN, C0));
    assert_checksum(&p);
    let inner = parse6(&ethernet(&p.l4[8..]));
    assert_eq!(
        (inner.src, inner.dst, inner.ports),
        (C0, WAN, (5000, 40500))
    );
    assert!(inner.l4_checksum_ok, "quoted TCP checksum: {inner:?}");
    assert_eq!(dp.stat(Stat::IcmpErrors), 2);
}

/// An 8-byte option header of the family (hop-by-hop, destination options): length 0 and a
/// `PadN` option filling it.
fn pad_header() -> Vec<u8> {
    vec![0, 1, 4, 0, 0, 0, 0]
}

#[test]
fn extension_headers_are_walked_to_the_ports_within_a_bound() {
    let dp = Datapath6::new();
    let mut frame = Frame6::tcp((WAN, 40001), (EXT, 5000), SYN, b"");
    frame.ext = vec![
        (HOP_BY_HOP, pad_header()),
        (DESTINATION_OPTIONS, pad_header()),
    ];
    let (verdict, out) = dp.tc(programs::TC_EXTERNAL_INGRESS, &frame.bytes());
    assert_eq!(verdict, TC_ACT_UNSPEC);
    assert_eq!(out.len(), frame.bytes().len(), "the headers are kept");
    let p = parse6(&out);
    assert_eq!((p.dst, p.ports), (C0, (40001, 5000)));
    assert_checksum(&p);

    // Past the bound (4), the packet passes untouched and is counted.
    let mut frame = Frame6::tcp((WAN, 40002), (EXT, 5000), SYN, b"");
    frame.ext = vec![(DESTINATION_OPTIONS, pad_header()); 5];
    let bytes = frame.bytes();
    assert_eq!(
        dp.tc(programs::TC_EXTERNAL_INGRESS, &bytes),
        (TC_ACT_UNSPEC, bytes)
    );
    assert_eq!(dp.stat(Stat::ExtHeaders), 1);
}

/// `frame`'s datagram in two fragments (identification `id`), the first carrying
/// `first_len` bytes of the upper layer (a multiple of 8).
fn split(frame: &Frame6, first_len: usize, id: u32) -> (Vec<u8>, Vec<u8>) {
    let l4 = frame.l4_bytes();
    let fragment = |offset: usize, more: bool, part: &[u8]| {
        let mut f = frame.clone();
        let offset = u16::try_from(offset / 8).expect("a small offset");
        f.ext = vec![(FRAGMENT, fragment_header(offset, more, id))];
        ethernet(&f.packet_with(part))
    };
    (
        fragment(0, true, &l4[..first_len]),
        fragment(first_len, false, &l4[first_len..]),
    )
}

/// Checks that two translated fragments carry the same addresses and reassemble into a
/// datagram whose checksum is right for them; returns the datagram's ports and addresses.
#[track_caller]
fn reassembled(first: &[u8], later: &[u8]) -> ((Ipv6Addr, Ipv6Addr), (u16, u16)) {
    let (first, later) = (parse6(first), parse6(later));
    assert_eq!(
        (first.src, first.dst),
        (later.src, later.dst),
        "same addresses"
    );
    let datagram = [first.l4.as_slice(), later.l4.as_slice()].concat();
    assert_eq!(
        l4_checksum(first.src, first.dst, UDP, &datagram),
        0,
        "the reassembled datagram's checksum"
    );
    ((first.src, first.dst), first.ports)
}

#[test]
fn fragments_follow_their_first_both_ways() {
    let dp = Datapath6::new();
    let payload: Vec<u8> = (0..200u8).collect();
    let (first, later) = split(&Frame6::udp((WAN, 1111), (EXT, 6000), &payload), 64, 7);
    let first = dp.passes(programs::TC_EXTERNAL_INGRESS, &first);
    let later = dp.passes(programs::TC_EXTERNAL_INGRESS, &later);
    assert_eq!(reassembled(&first, &later), ((WAN, C1), (1111, 6000)));

    let (first, later) = split(&Frame6::udp((C0, 3333), (WAN, 53), &payload), 96, 8);
    let first = dp.passes(programs::TC_EXTERNAL_EGRESS, &first);
    let later = dp.passes(programs::TC_EXTERNAL_EGRESS, &later);
    assert_eq!(reassembled(&first, &later), ((EXT, WAN), (3333, 53)));
    assert_eq!(
        dp.stat(Stat::Fragments),
        2,
        "two later fragments translated"
    );
}

#[test]
fn a_later_fragment_without_its_first_is_dropped_never_leaked() {
    let dp = Datapath6::new();
    let payload = vec![7u8; 100];
    let (_, later) = split(&Frame6::udp((C0, 3334), (WAN, 53), &payload), 48, 9);
    assert_eq!(
        dp.tc(programs::TC_EXTERNAL_EGRESS, &later).0,
        TC_ACT_SHOT,
        "a container's lone later fragment is not sent out"
    );
    let (_, later) = split(&Frame6::udp((WAN, 1112), (EXT, 6000), &payload), 48, 10);
    assert_eq!(dp.tc(programs::TC_EXTERNAL_INGRESS, &later).0, TC_ACT_SHOT);
    assert_eq!(dp.stat(Stat::FragmentsDropped), 2);
    // The host's own fragmented datagrams pass whole.
    let (first, later) = split(&Frame6::udp((WAN, 1113), (EXT, 7777), &payload), 48, 11);
    for frame in [first, later] {
        assert_eq!(
            dp.tc(programs::TC_EXTERNAL_INGRESS, &frame),
            (TC_ACT_UNSPEC, frame),
            "for the host: untouched"
        );
    }
}

#[test]
fn martians_and_direct_access_from_outside_are_dropped() {
    let dp = Datapath6::new();
    for src in [C1, Ipv6Addr::LOCALHOST] {
        let frame = Frame6::tcp((src, 40000), (EXT, 5000), SYN, b"").bytes();
        assert_eq!(
            dp.tc(programs::TC_EXTERNAL_INGRESS, &frame).0,
            TC_ACT_SHOT,
            "{src}"
        );
    }
    assert_eq!(dp.stat(Stat::Martians), 2);
    let frame = Frame6::tcp((WAN, 40000), (C0, 5000), SYN, b"").bytes();
    assert_eq!(dp.tc(programs::TC_EXTERNAL_INGRESS, &frame).0, TC_ACT_SHOT);
    assert_eq!(dp.stat(Stat::DirectAccess), 1);
}

/// XDP's action that hands a frame on to the stack.
const XDP_PASS: u32 = 2;

#[test]
fn xdp_leaves_ipv6_to_the_tc_programs() {
    let dp = Datapath6::new();
    let frame = Frame6::tcp((WAN, 40003), (EXT, 5000), SYN, b"").bytes();
    assert_eq!(
        prog_test::xdp(&dp.bpf, &frame),
        (XDP_PASS, frame.clone()),
        "XDP passes IPv6 on untouched"
    );
    let p = parse6(&dp.passes(programs::TC_EXTERNAL_INGRESS, &frame));
    assert_eq!(
        (p.dst, p.ports),
        (C0, (40003, 5000)),
        "tc translates it after XDP"
    );
}
