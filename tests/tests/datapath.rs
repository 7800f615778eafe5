//! The datapath's packet rewriting, tested with `BPF_PROG_TEST_RUN` on crafted frames: every
//! rewritten field and checksum is checked against a checksum computed from scratch. Each
//! test loads its own copy of the programs with its own maps (pinned under a unique name,
//! removed at the end).

use std::net::Ipv4Addr;

use aya::{
    Ebpf,
    maps::{
        DevMapHash, HashMap, MapData,
        lpm_trie::{Key, LpmTrie},
    },
    programs::{TestRun, TestRunOptions, Xdp},
};
use netlab_common::nat::{
    ContainerInfo, CounterRef, CtEntry, FlowKey, NatConfig, PORT_PREFIX_FIXED_BITS, PortPrefix,
    PublishKey, PublishRange, PublishValue, Stat, XDP_META_TRANSLATED, ct_flags, ct_state, flags,
    maps, programs,
};
use netlab_e2e::{
    frames::{Frame, ICMP, TCP, UDP, parse},
    prog_test::{self, PinDir, TC_ACT_REDIRECT, TC_ACT_SHOT, TC_ACT_UNSPEC},
};

const WAN: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const EXT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 1);
const C0: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 10);
const C1: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 20);
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;

/// One loaded copy of the datapath: config for the default lab, 5000/tcp published to
/// netns0 and 6000/udp to netns1, masquerade on, fast path off (test runs do not redirect).
struct Datapath {
    bpf: Ebpf,
    _dir: PinDir,
}

impl Datapath {
    fn new() -> Self {
        Self::with_sizes(&[])
    }

    /// [`Self::new`], with maps sized by `sizes` (by name).
    fn with_sizes(sizes: &[(&str, u32)]) -> Self {
        let (mut bpf, dir) = prog_test::load(sizes);
        let be = |ip: Ipv4Addr| u32::from(ip).to_be();
        let config = NatConfig {
            external_ip: be(EXT),
            gateway_ip: be(GATEWAY),
            subnet: be(Ipv4Addr::new(172, 18, 0, 0)),
            subnet_mask: be(Ipv4Addr::new(255, 255, 0, 0)),
            flags: flags::READY | flags::MASQUERADE,
            ..NatConfig::default()
        };
        prog_test::set_config(&mut bpf, config);
        let mut datapath = Self { bpf, _dir: dir };
        datapath.publish(5000, TCP, C0, 5000);
        datapath.publish(6000, UDP, C1, 6000);
        datapath
    }

    /// Changes the config through `change`.
    fn edit_config(&mut self, change: impl FnOnce(&mut NatConfig)) {
        prog_test::edit_config(&mut self.bpf, change);
    }

    /// Adds `flags` to the config's.
    fn add_flags(&mut self, flags: u32) {
        self.edit_config(|config| config.flags |= flags);
    }

    /// Sets the lifetime of UDP flows, in seconds.
    fn set_udp_lifetime(&mut self, seconds: u32) {
        self.edit_config(|config| config.timeouts.udp = seconds);
    }

    /// Removes the conntrack entry at `key`, as the LRU evicts one from a full table.
    fn evict(&mut self, key: &FlowKey) {
        let mut map: HashMap<&mut MapData, FlowKey, CtEntry> =
            HashMap::try_from(self.bpf.map_mut(maps::CONNTRACK).expect("conntrack map"))
                .expect("hash");
        map.remove(key).expect("the entry was there");
    }

    /// Tells the datapath where container `ip` is (its host-side veth's index).
    fn add_container(&mut self, ip: Ipv4Addr, host_ifindex: u32) {
        self.set_container(ip, host_ifindex, [2, 0, 0, 0, 0, 0x10]);
    }

    /// Writes container `ip`'s entry, as the loader does (the config is not touched).
    fn set_container(&mut self, ip: Ipv4Addr, host_ifindex: u32, mac: [u8; 6]) {
        let mut containers: HashMap<&mut MapData, u32, ContainerInfo> =
            HashMap::try_from(self.bpf.map_mut(maps::CONTAINERS).expect("containers map"))
                .expect("hash map");
        let info = ContainerInfo {
            host_ifindex,
            mac,
            pad: [0; 6],
            owner: 0,
        };
        containers
            .insert(u32::from(ip).to_be(), info, 0)
            .expect("adding a container");
    }

    /// Publishes `port`/`proto` on every host address to `target:target_port` (or moves it).
    fn publish(&mut self, port: u16, proto: u8, target: Ipv4Addr, target_port: u16) {
        let mut publish: HashMap<&mut MapData, PublishKey, PublishValue> =
            HashMap::try_from(self.bpf.map_mut(maps::PUBLISH).expect("publish map"))
                .expect("hash map");
        let key = PublishKey {
            ip: 0,
            port: port.to_be(),
            proto,
            pad: 0,
        };
        let value = PublishValue {
            ip: u32::from(target).to_be(),
            port: target_port.to_be(),
            pad: 0,
            owner: 0,
            // Slot 0: not counted (the counters are the end-to-end suites' concern).
            counter: CounterRef::default(),
        };
        publish.insert(key, value, 0).expect("publishing");
    }

    /// Publishes a range on `ip` (0: every address) as the loader writes one: each of
    /// `blocks` (first port, bits of the port it fixes) leads to the range that starts at
    /// host port `host_start` and at `target:target_start` (not counted: slot 0).
    fn publish_range(
        &mut self,
        ip: Ipv4Addr,
        blocks: &[(u16, u32)],
        (host_start, target, target_start): (u16, Ipv4Addr, u16),
    ) {
        let range = PublishRange {
            ip: u32::from(target).to_be(),
            host_start,
            container_start: target_start,
            owner: 0,
            counter: CounterRef::default(),
        };
        let mut trie: LpmTrie<&mut MapData, PortPrefix, PublishRange> =
            LpmTrie::try_from(self.bpf.map_mut(maps::PUBLISH_RANGES).expect("ranges map"))
                .expect("trie");
        for &(first, bits) in blocks {
            let prefix = PortPrefix {
                ip: u32::from(ip).to_be(),
                proto: TCP,
                pad: 0,
                port: first.to_be(),
            };
            let key = Key::new(PORT_PREFIX_FIXED_BITS + bits, prefix);
            trie.insert(&key, range, 0).expect("publishing a block");
        }
    }

    /// Runs a tc program on `frame`; returns its verdict and the frame it leaves.
    fn tc(&self, name: &str, frame: &[u8]) -> (i32, Vec<u8>) {
        prog_test::tc(&self.bpf, name, frame)
    }

    /// Runs the XDP program on `frame`; returns its action and the frame it leaves (without
    /// the metadata it may have put before it).
    fn xdp(&self, frame: &[u8]) -> (u32, Vec<u8>) {
        let (action, _, out) = self.xdp_with_metadata(frame);
        (action, out)
    }

    /// Runs the XDP program on `frame`; returns its action, the metadata it left and the
    /// frame.
    fn xdp_with_metadata(&self, frame: &[u8]) -> (u32, Vec<u8>, Vec<u8>) {
        let program: &Xdp = self
            .bpf
            .program(programs::XDP_EXTERNAL_INGRESS)
            .expect("program")
            .try_into()
            .expect("xdp");
        // struct xdp_md: data, data_end, data_meta, then three fields left 0 (offsets).
        let len = u32::try_from(frame.len()).expect("a small frame");
        let ctx_in: Vec<u8> = [0, len, 0, 0, 0, 0]
            .iter()
            .flat_map(|word: &u32| word.to_ne_bytes())
            .collect();
        let mut ctx_out = vec![0u8; ctx_in.len()];
        let mut out = vec![0u8; frame.len() + 256];
        let result = program
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx_in),
                ctx_out: Some(&mut ctx_out),
                ..Default::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        out.truncate(result.data_size_out as usize);
        // The output starts at the metadata; `data` is the frame's offset from it.
        let meta_len = u32::from_ne_bytes(ctx_out[..4].try_into().expect("4 bytes")) as usize;
        let frame = out.split_off(meta_len);
        (result.return_value, out, frame)
    }

    fn stat(&self, stat: Stat) -> u64 {
        prog_test::stat(&self.bpf, stat)
    }
}

fn ingress(dp: &Datapath, frame: &Frame) -> netlab_e2e::frames::Parsed {
    let (verdict, out) = dp.tc(programs::TC_EXTERNAL_INGRESS, &frame.bytes());
    assert_eq!(
        verdict, TC_ACT_UNSPEC,
        "ingress passes translated packets on"
    );
    parse(&out)
}

fn egress(dp: &Datapath, frame: &Frame) -> netlab_e2e::frames::Parsed {
    let (verdict, out) = dp.tc(programs::TC_EXTERNAL_EGRESS, &frame.bytes());
    assert_eq!(
        verdict, TC_ACT_UNSPEC,
        "egress passes translated packets on"
    );
    parse(&out)
}

#[track_caller]
fn assert_checksums(p: &netlab_e2e::frames::Parsed) {
    assert!(p.ip_checksum_ok, "IP header checksum: {p:?}");
    assert!(p.l4_checksum_ok, "L4 checksum: {p:?}");
}

#[test]
fn tcp_to_a_published_port_is_dnatted_and_the_reply_reverse_translated() {
    let dp = Datapath::new();
    let syn = Frame::tcp((WAN, 40000), (EXT, 5000), SYN, b"");
    let p = ingress(&dp, &syn);
    assert_eq!((p.src, p.dst, p.ports), (WAN, C0, (40000, 5000)));
    assert_eq!(p.ttl, 64, "no fast path: the stack decrements the TTL");
    assert_checksums(&p);

    let reply = Frame::tcp((C0, 5000), (WAN, 40000), SYN | ACK, b"");
    let p = egress(&dp, &reply);
    assert_eq!((p.src, p.dst, p.ports), (EXT, WAN, (5000, 40000)));
    assert_checksums(&p);

    // Later packets of the flow, with payload, keep the same translation.
    let data = Frame::tcp((WAN, 40000), (EXT, 5000), ACK, b"GET / HTTP/1.1\r\n\r\n");
    let p = ingress(&dp, &data);
    assert_eq!((p.dst, p.ports.1), (C0, 5000));
    assert_checksums(&p);
    assert!(
        p.l4.ends_with(b"GET / HTTP/1.1\r\n\r\n"),
        "payload untouched"
    );
}

#[test]
fn an_unpublished_port_passes_untouched() {
    let dp = Datapath::new();
    let frame = Frame::tcp((WAN, 40000), (EXT, 5001), SYN, b"").bytes();
    let (verdict, out) = dp.tc(programs::TC_EXTERNAL_INGRESS, &frame);
    assert_eq!((verdict, out), (TC_ACT_UNSPEC, frame.to_vec()));
}

/// A range leads each of its ports to the container port at the same offset, in whichever
/// of its blocks the port falls; the ports around it, and a single port, stay as they were.
#[test]
fn a_published_range_translates_each_port_by_its_offset() {
    let mut dp = Datapath::new();
    // 8000-8100:80-180, as the loader splits it (the unit tests of netlab check the split).
    let blocks = [(8000, 10), (8064, 11), (8096, 14), (8100, 16)];
    dp.publish_range(Ipv4Addr::UNSPECIFIED, &blocks, (8000, C1, 80));
    for (host_port, container_port) in [
        (8000, 80),
        (8063, 143),
        (8070, 150),
        (8099, 179),
        (8100, 180),
    ] {
        let syn = Frame::tcp((WAN, 40000 + host_port), (EXT, host_port), SYN, b"");
        let p = ingress(&dp, &syn);
        assert_eq!((p.dst, p.ports.1), (C1, container_port), "port {host_port}");
        assert_checksums(&p);
        let reply = Frame::tcp(
            (C1, container_port),
            (WAN, 40000 + host_port),
            SYN | ACK,
            b"",
        );
        let p = egress(&dp, &reply);
        assert_eq!(
            (p.src, p.ports.0),
            (EXT, host_port),
            "reply of port {host_port}"
        );
        assert_checksums(&p);
    }
    for outside in [7999, 8101] {
        let frame = Frame::tcp((WAN, 40000), (EXT, outside), SYN, b"").bytes();
        let (verdict, out) = dp.tc(programs::TC_EXTERNAL_INGRESS, &frame);
        assert_eq!(
            (verdict, out),
            (TC_ACT_UNSPEC, frame.to_vec()),
            "port {outside}"
        );
    }
    let p = ingress(&dp, &Frame::tcp((WAN, 41000), (EXT, 5000), SYN, b""));
    assert_eq!(
        (p.dst, p.ports.1),
        (C0, 5000),
        "the single port still leads to netns0"
    );
}

/// A range published on one host address is not reached on another.
#[test]
fn a_range_on_one_address_is_only_reached_there() {
    let mut dp = Datapath::new();
    dp.publish_range(EXT, &[(7000, 15)], (7000, C1, 7000));
    let p = ingress(&dp, &Frame::tcp((WAN, 40000), (EXT, 7001), SYN, b""));
    assert_eq!((p.dst, p.ports.1), (C1, 7001));
    let elsewhere =
        Frame::tcp((WAN, 40000), (Ipv4Addr::new(198, 18, 0, 9), 7001), SYN, b"").bytes();
    let (verdict, out) = dp.tc(programs::TC_EXTERNAL_INGRESS, &elsewhere);
    assert_eq!((verdict, out), (TC_ACT_UNSPEC, elsewhere.to_vec()));
}

#[test]
fn udp_is_masqueraded_keeping_the_source_port_and_translated_back() {
    let dp = Datapath::new();
    let out = Frame::udp((C1, 4444), (WAN, 53), b"query");
    let p = egress(&dp, &out);
    assert_eq!((p.src, p.dst, p.ports), (EXT, WAN, (4444, 53)));
    assert_checksums(&p);
    let back = Frame::udp((WAN, 53), (EXT, 4444), b"answer");
    let p = ingress(&dp, &back);
    assert_eq!((p.src, p.dst, p.ports), (WAN, C1, (53, 4444)));
    assert_checksums(&p);
}

#[test]
fn a_udp_checksum_of_zero_stays_zero() {
    let dp = Datapath::new();
    let mut frame = Frame::udp((WAN, 1234), (EXT, 6000), b"no checksum");
    frame.raw_l4 = true; // checksum field left at 0: "none"
    let p = ingress(&dp, &frame);
    assert_eq!((p.dst, p.ports.1), (C1, 6000));
    assert_eq!(
        p.l4[6..8],
        [0, 0],
        "a zero UDP checksum means none and must stay so"
    );
    assert!(p.ip_checksum_ok);
}

/// A payload for a UDP datagram from `src` to `dst` whose checksum computes to 0, which
/// UDP must send as 0xffff (0 means "no checksum").
fn payload_with_zero_checksum(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> Vec<u8> {
    (0..=u16::MAX)
        .map(|word| [b'm', b'a', word.to_be_bytes()[0], word.to_be_bytes()[1]].to_vec())
        .find(|payload| {
            let mut l4 = Frame::udp(src, dst, payload).l4;
            l4[6..8].copy_from_slice(&[0, 0]);
            netlab_e2e::frames::l4_checksum(src.0, dst.0, UDP, &l4) == 0
        })
        .expect("some two bytes make the sum come out so")
}

#[test]
fn a_udp_checksum_that_comes_out_zero_is_sent_as_ffff() {
    // Masquerade (tc egress): what leaves is EXT:3456 -> WAN:53.
    let dp = Datapath::new();
    let payload = payload_with_zero_checksum((EXT, 3456), (WAN, 53));
    let p = egress(&dp, &Frame::udp((C0, 3456), (WAN, 53), &payload));
    assert_eq!((p.src, p.ports), (EXT, (3456, 53)));
    assert_eq!(
        p.l4[6..8],
        [0xff, 0xff],
        "tc: a checksum of 0 goes out as 0xffff"
    );
    assert_checksums(&p);
    // DNAT through XDP: what arrives is WAN:1111 -> C1:6000.
    let payload = payload_with_zero_checksum((WAN, 1111), (C1, 6000));
    let (action, out) = dp.xdp(&Frame::udp((WAN, 1111), (EXT, 6000), &payload).bytes());
    assert_eq!(action, XDP_PASS);
    let p = parse(&out);
    assert_eq!((p.dst, p.ports), (C1, (1111, 6000)));
    assert_eq!(
        p.l4[6..8],
        [0xff, 0xff],
        "XDP: a checksum of 0 goes out as 0xffff"
    );
    assert_checksums(&p);
}

#[test]
fn a_taken_source_port_moves_to_a_free_one() {
    let dp = Datapath::new();
    let first = egress(&dp, &Frame::udp((C0, 7777), (WAN, 80), b"a"));
    let second = egress(&dp, &Frame::udp((C1, 7777), (WAN, 80), b"b"));
    assert_eq!(first.ports.0, 7777, "the first flow keeps its port");
    assert_ne!(
        second.ports.0, 7777,
        "the second cannot have the same mapping"
    );
    assert!(
        second.ports.0 >= 32768,
        "fallback ports come from the masquerade range"
    );
    assert_checksums(&second);
    assert_eq!(dp.stat(Stat::SnatCollisions), 1);
    // Replies reach the right container.
    let back = ingress(&dp, &Frame::udp((WAN, 80), (EXT, second.ports.0), b"B"));
    assert_eq!((back.dst, back.ports.1), (C1, 7777));
    let back = ingress(&dp, &Frame::udp((WAN, 80), (EXT, 7777), b"A"));
    assert_eq!((back.dst, back.ports.1), (C0, 7777));
}

#[test]
fn icmp_echo_is_masqueraded_by_identifier() {
    let dp = Datapath::new();
    let p = egress(&dp, &Frame::icmp_echo(C0, WAN, 8, 0x4242, 1));
    assert_eq!((p.src, p.dst, p.ports.0), (EXT, WAN, 0x4242));
    assert_checksums(&p);
    let p = ingress(&dp, &Frame::icmp_echo(WAN, EXT, 0, 0x4242, 1));
    assert_eq!((p.src, p.dst, p.ports.0), (WAN, C0, 0x4242));
    assert_checksums(&p);
}

#[test]
fn icmp_errors_have_their_quoted_header_translated() {
    let dp = Datapath::new();
    // A container's datagram goes out masqueraded...
    let sent = egress(&dp, &Frame::udp((C1, 4444), (WAN, 9), b"hello"));
    assert_eq!(sent.src, EXT);
    // ...and wan answers "port unreachable" quoting it as it saw it.
    let quoted = Frame::udp((EXT, sent.ports.0), (WAN, 9), b"hello");
    for (kind, code) in [(3, 3), (3, 4)] {
        let error = Frame::icmp_error(WAN, EXT, kind, code, &quoted);
        let p = ingress(&dp, &error);
        assert_eq!(
            (p.src, p.dst, p.proto),
            (WAN, C1, ICMP),
            "type {kind} code {code}"
        );
        assert_checksums(&p);
        let inner = parse(&[&[0u8; 14][..], &p.l4[8..]].concat());
        assert_eq!(
            (inner.src, inner.dst, inner.ports),
            (C1, WAN, (4444, 9)),
            "quoted header"
        );
        assert!(inner.ip_checksum_ok, "quoted IP header checksum");
        // The quoted UDP checksum is the one the container's datagram had (it covers the
        // payload, not quoted: compare with the datagram itself).
        let original = parse(&Frame::udp((C1, 4444), (WAN, 9), b"hello").bytes());
        assert_eq!(
            inner.l4[6..8],
            original.l4[6..8],
            "quoted UDP checksum translated"
        );
    }
    assert_eq!(dp.stat(Stat::IcmpErrors), 2);
}

#[test]
fn icmp_errors_about_tcp_flows_translate_the_quoted_tcp_checksum() {
    let dp = Datapath::new();
    let client = (WAN, 40500);
    assert_eq!(
        ingress(&dp, &Frame::tcp(client, (EXT, 5000), SYN, b"")).dst,
        C0
    );
    let reply = Frame::tcp((C0, 5000), client, SYN | ACK, b"");
    let sent = egress(&dp, &reply);
    assert_eq!((sent.src, sent.ports), (EXT, (5000, 40500)));
    // A router on the way back answers "host unreachable", quoting the whole segment.
    let on_the_wire = Frame::tcp((EXT, 5000), client, SYN | ACK, b"");
    let error = Frame::icmp_error_quoting(WAN, EXT, 3, 1, &on_the_wire, 576);
    let p = ingress(&dp, &error);
    assert_eq!((p.dst, p.proto), (C0, ICMP));
    assert_checksums(&p);
    let inner = parse(&[&[0u8; 14][..], &p.l4[8..]].concat());
    assert_eq!(
        (inner.src, inner.dst, inner.ports),
        (C0, WAN, (5000, 40500))
    );
    assert!(inner.ip_checksum_ok, "quoted IP header checksum");
    assert!(inner.l4_checksum_ok, "quoted TCP checksum: {inner:?}");
    // With only the 8 bytes RFC 792 guarantees, the TCP checksum is not there to translate.
    let error = Frame::icmp_error(WAN, EXT, 3, 1, &on_the_wire);
    let p = ingress(&dp, &error);
    assert_eq!(p.dst, C0);
    assert_checksums(&p);
}

#[test]
fn ip_options_are_kept_and_ports_found_behind_them() {
    let dp = Datapath::new();
    let mut frame = Frame::tcp((WAN, 40001), (EXT, 5000), SYN, b"");
    frame.options = vec![1, 1, 1, 0]; // NOP NOP NOP EOL
    let p = ingress(&dp, &frame);
    assert_eq!(p.ihl, 24);
    assert_eq!((p.dst, p.ports), (C0, (40001, 5000)));
    assert_checksums(&p);
}

#[test]
fn truncated_and_non_ipv4_packets_pass_untouched() {
    let dp = Datapath::new();
    let full = Frame::tcp((WAN, 40002), (EXT, 5000), SYN, b"");
    let truncated: Vec<u8> = full.bytes()[..14 + 20 + 10].to_vec();
    let mut ipv6 = full.bytes().to_vec();
    ipv6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let runt = vec![0u8; 14];
    for (what, frame) in [
        ("truncated TCP header", truncated),
        ("IPv6 ethertype", ipv6),
        ("bare Ethernet header", runt),
    ] {
        let (verdict, out) = dp.tc(programs::TC_EXTERNAL_INGRESS, &frame);
        assert_eq!(verdict, TC_ACT_UNSPEC, "{what}: passed on");
        assert_eq!(out, frame, "{what}: untouched");
        let (action, out) = dp.xdp(&frame);
        assert_eq!(action, XDP_PASS, "{what}: XDP passes it");
        assert_eq!(out, frame, "{what}: untouched by XDP");
    }
    assert_eq!(
        dp.stat(Stat::Truncated),
        2,
        "the truncated header, tc and XDP"
    );
    assert_eq!(
        dp.stat(Stat::Skipped),
        3,
        "the IPv6 frame in tc (XDP leaves IPv6 to tc), the bare header in tc and XDP"
    );
    // Nothing was tracked for any of them.
    let good = ingress(&dp, &Frame::tcp((WAN, 40003), (EXT, 5000), SYN, b""));
    assert_eq!(good.dst, C0, "the datapath still works after them");
}

/// Splits a UDP datagram's frame into a first fragment carrying `first_len` bytes of the
/// IP payload (a multiple of 8) and a later fragment with the rest.
fn split(frame: &Frame, first_len: usize) -> (Vec<u8>, Vec<u8>) {
    let whole = frame.bytes();
    let (head, payload) = whole.split_at(14 + 20);
    let piece = |data: &[u8], frag: u16| {
        let mut out = head.to_vec();
        let ip = &mut out[14..];
        ip[2..4].copy_from_slice(&u16::try_from(20 + data.len()).expect("small").to_be_bytes());
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip[10..12].copy_from_slice(&[0, 0]);
        let csum = netlab_e2e::frames::checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&csum.to_be_bytes());
        out.extend_from_slice(data);
        out
    };
    let offset = u16::try_from(first_len / 8).expect("small");
    (
        piece(&payload[..first_len], 0x2000),
        piece(&payload[first_len..], offset),
    )
}

/// The IPv4 header fields of a frame: (source, destination, IP checksum valid).
fn addresses(frame: &[u8]) -> (Ipv4Addr, Ipv4Addr, bool) {
    let ip = &frame[14..34];
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    (src, dst, netlab_e2e::frames::checksum(ip) == 0)
}

/// Reassembles two translated fragments and checks the UDP checksum of the whole datagram
/// against its (translated) addresses; returns the UDP ports.
#[track_caller]
fn assert_reassembled_udp(first: &[u8], later: &[u8]) -> (u16, u16) {
    let (src, dst, first_ok) = addresses(first);
    let (later_src, later_dst, later_ok) = addresses(later);
    assert!(first_ok && later_ok, "IP header checksums");
    assert_eq!(
        (src, dst),
        (later_src, later_dst),
        "both fragments translated alike"
    );
    let mut datagram = first[34..].to_vec();
    datagram.extend_from_slice(&later[34..]);
    assert_eq!(
        netlab_e2e::frames::l4_checksum(src, dst, UDP, &datagram),
        0,
        "UDP checksum over the reassembled datagram"
    );
    (
        u16::from_be_bytes([datagram[0], datagram[1]]),
        u16::from_be_bytes([datagram[2], datagram[3]]),
    )
}

#[test]
fn fragments_to_a_published_port_follow_their_first() {
    let payload: Vec<u8> = (0..200u8).collect();
    let datagram = Frame::udp((WAN, 1111), (EXT, 6000), &payload);
    for xdp in [false, true] {
        let dp = Datapath::new();
        let (first, later) = split(&datagram, 64);
        let run = |frame: &[u8]| {
            if xdp {
                let (action, out) = dp.xdp(frame);
                assert_eq!(action, XDP_PASS, "XDP passes translated fragments on");
                out
            } else {
                let (verdict, out) = dp.tc(programs::TC_EXTERNAL_INGRESS, frame);
                assert_eq!(verdict, TC_ACT_UNSPEC, "tc passes translated fragments on");
                out
            }
        };
        let (first, later) = (run(&first), run(&later));
        assert_eq!(addresses(&first).1, C1, "first fragment DNATted");
        assert_eq!(assert_reassembled_udp(&first, &later), (1111, 6000));
        assert_eq!(dp.stat(Stat::Fragments), 1, "one later fragment translated");
        if xdp {
            // tc, after XDP, lets the translated later fragment through to the container.
            let (verdict, out) = dp.tc(programs::TC_EXTERNAL_INGRESS, &later);
            assert_eq!(verdict, TC_ACT_UNSPEC, "tc after XDP");
            assert_eq!(out, later, "untouched by tc after XDP");
        }
    }
}

#[test]
fn masqueraded_fragments_leave_with_the_host_address() {
    let dp = Datapath::new();
    let payload = vec![0x5a; 3000 - 28];
    let (first, later) = split(&Frame::udp((C0, 3333), (WAN, 53), &payload), 1480);
    let first = dp.tc(programs::TC_EXTERNAL_EGRESS, &first).1;
    let later = dp.tc(programs::TC_EXTERNAL_EGRESS, &later).1;
    assert_eq!(addresses(&first).0, EXT, "first fragment masqueraded");
    assert_eq!(assert_reassembled_udp(&first, &later), (3333, 53));
    // The fragmented reply comes back to the container.
    let (first, later) = split(&Frame::udp((WAN, 53), (EXT, 3333), &payload), 1480);
    let (first, later) = (
        dp.tc(programs::TC_EXTERNAL_INGRESS, &first).1,
        dp.tc(programs::TC_EXTERNAL_INGRESS, &later).1,
    );
    assert_eq!(addresses(&first).1, C0, "reply's first fragment");
    assert_eq!(assert_reassembled_udp(&first, &later), (53, 3333));
}

#[test]
fn a_later_fragment_without_its_first_is_dropped_never_leaked() {
    let dp = Datapath::new();
    let payload = vec![7u8; 100];
    let (_, later) = split(&Frame::udp((C0, 3334), (WAN, 53), &payload), 48);
    let (verdict, _) = dp.tc(programs::TC_EXTERNAL_EGRESS, &later);
    assert_eq!(
        verdict, TC_ACT_SHOT,
        "a container's lone later fragment is not sent out"
    );
    let (_, later) = split(&Frame::udp((WAN, 1112), (EXT, 6000), &payload), 48);
    let (verdict, _) = dp.tc(programs::TC_EXTERNAL_INGRESS, &later);
    assert_eq!(
        verdict, TC_ACT_SHOT,
        "tc: a later fragment before its first"
    );
    let (action, _) = dp.xdp(&later);
    assert_eq!(action, XDP_DROP, "XDP: a later fragment before its first");
    assert_eq!(dp.stat(Stat::FragmentsDropped), 3);
    // The host's own fragmented datagrams still pass whole.
    let (first, later) = split(&Frame::udp((WAN, 1113), (EXT, 7777), &payload), 48);
    for frame in [first, later] {
        let (verdict, out) = dp.tc(programs::TC_EXTERNAL_INGRESS, &frame);
        assert_eq!(
            (verdict, out),
            (TC_ACT_UNSPEC, frame),
            "for the host: untouched"
        );
    }
}

#[test]
fn martians_and_direct_access_from_outside_are_dropped() {
    let dp = Datapath::new();
    for src in [C1, Ipv4Addr::LOCALHOST] {
        let frame = Frame::tcp((src, 40000), (EXT, 5000), SYN, b"").bytes();
        assert_eq!(
            dp.tc(programs::TC_EXTERNAL_INGRESS, &frame).0,
            TC_ACT_SHOT,
            "{src}"
        );
        assert_eq!(dp.xdp(&frame).0, XDP_DROP, "{src} through XDP");
    }
    assert_eq!(dp.stat(Stat::Martians), 4);
    for port in [5000, 22] {
        let frame = Frame::tcp((WAN, 40000), (C0, port), SYN, b"").bytes();
        assert_eq!(
            dp.tc(programs::TC_EXTERNAL_INGRESS, &frame).0,
            TC_ACT_SHOT,
            "port {port}"
        );
    }
    assert_eq!(dp.stat(Stat::DirectAccess), 2);
    // The bridge's own address is the host's, not a container's.
    let frame = Frame::tcp((WAN, 40000), (GATEWAY, 22), SYN, b"").bytes();
    assert_eq!(
        dp.tc(programs::TC_EXTERNAL_INGRESS, &frame).0,
        TC_ACT_UNSPEC
    );
}

/// Both entries of the flow between `src` and `dst` (either end as a packet of the flow
/// shows it, before or after the rewrite), with their keys.
fn halves(dp: &Datapath, src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> Vec<(FlowKey, CtEntry)> {
    let map: HashMap<&MapData, FlowKey, CtEntry> =
        HashMap::try_from(dp.bpf.map(maps::CONNTRACK).expect("conntrack map")).expect("hash");
    let be = |ip: Ipv4Addr| u32::from(ip).to_be();
    map.iter()
        .filter_map(Result::ok)
        .filter(|(key, entry)| {
            let ends = [
                (key.src_ip, key.src_port),
                (key.dst_ip, key.dst_port),
                (entry.src_ip, entry.src_port),
                (entry.dst_ip, entry.dst_port),
            ];
            ends.contains(&(be(src.0), src.1.to_be())) && ends.contains(&(be(dst.0), dst.1.to_be()))
        })
        .collect()
}

/// The TCP state of both entries of the flow between `src` and `dst`.
fn states(dp: &Datapath, src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> Vec<u8> {
    halves(dp, src, dst)
        .into_iter()
        .map(|(_, entry)| entry.state)
        .collect()
}

/// Opens a connection from `client` to 5000/tcp (published to netns0), establishes it, and
/// closes it from the container's side.
fn open_and_close(dp: &Datapath, client: (Ipv4Addr, u16)) {
    assert_eq!(
        ingress(dp, &Frame::tcp(client, (EXT, 5000), SYN, b"")).dst,
        C0
    );
    egress(dp, &Frame::tcp((C0, 5000), client, SYN | ACK, b""));
    ingress(dp, &Frame::tcp(client, (EXT, 5000), ACK, b""));
    egress(dp, &Frame::tcp((C0, 5000), client, FIN | ACK, b""));
    assert_eq!(states(dp, client, (EXT, 5000)), [ct_state::CLOSING; 2]);
}

#[test]
fn tcp_state_belongs_to_the_flow_and_a_new_syn_reads_the_published_ports_again() {
    let mut dp = Datapath::new();
    let client = (WAN, 40100);
    assert_eq!(
        ingress(&dp, &Frame::tcp(client, (EXT, 5000), SYN, b"")).dst,
        C0
    );
    egress(&dp, &Frame::tcp((C0, 5000), client, SYN | ACK, b""));
    assert_eq!(
        states(&dp, client, (EXT, 5000)),
        [ct_state::NEW; 2],
        "a SYN-ACK does not establish"
    );
    ingress(&dp, &Frame::tcp(client, (EXT, 5000), ACK, b""));
    assert_eq!(states(&dp, client, (EXT, 5000)), [ct_state::ESTABLISHED; 2]);
    egress(&dp, &Frame::tcp((C0, 5000), client, FIN | ACK, b""));
    assert_eq!(
        states(&dp, client, (EXT, 5000)),
        [ct_state::CLOSING; 2],
        "FIN closes both halves"
    );
    dp.publish(5000, TCP, C1, 5000);
    let again = ingress(&dp, &Frame::tcp(client, (EXT, 5000), SYN, b""));
    assert_eq!(
        again.dst, C1,
        "the reused tuple reaches the port's new container"
    );
    assert_eq!(dp.stat(Stat::CtRestarted), 0, "a new flow, not a restart");
    let reply = egress(&dp, &Frame::tcp((C1, 5000), client, SYN | ACK, b""));
    assert_eq!((reply.src, reply.ports), (EXT, (5000, client.1)));
    assert_checksums(&reply);
}

/// A SYN on a closed flow's tuple that the published ports, read again, would translate as
/// before starts the flow anew in place: both halves new, nothing of the old flow's kept
/// (the GSO mark), and the flow works as a new one. Its entries are not removed and
/// inserted again (`ct_restarted` counts it).
#[test]
fn a_syn_on_a_closed_flows_tuple_restarts_it_in_place_when_its_translation_stands() {
    let mut dp = Datapath::new();
    let client = (WAN, 40200);
    open_and_close(&dp, client);
    let old = halves(&dp, client, (EXT, 5000));
    let mut map: HashMap<&mut MapData, FlowKey, CtEntry> =
        HashMap::try_from(dp.bpf.map_mut(maps::CONNTRACK).expect("conntrack map")).expect("hash");
    for (key, mut entry) in old {
        entry.flags |= ct_flags::VIA_STACK;
        map.insert(key, entry, 0).expect("marking the old flow");
    }
    let again = ingress(&dp, &Frame::tcp(client, (EXT, 5000), SYN, b""));
    assert_eq!((again.dst, again.ports), (C0, (client.1, 5000)));
    assert_checksums(&again);
    assert_eq!(dp.stat(Stat::CtRestarted), 1, "restarted in place");
    let mut flags: Vec<_> = halves(&dp, client, (EXT, 5000))
        .iter()
        .map(|(_, entry)| (entry.state, entry.flags))
        .collect();
    flags.sort_unstable();
    assert_eq!(
        flags,
        [
            (ct_state::NEW, ct_flags::DNAT),
            (ct_state::NEW, ct_flags::DNAT | ct_flags::REPLY)
        ],
        "a new flow's halves, the old one's GSO mark gone"
    );
    let reply = egress(&dp, &Frame::tcp((C0, 5000), client, SYN | ACK, b""));
    assert_eq!((reply.src, reply.ports), (EXT, (5000, client.1)));
    assert_checksums(&reply);
    ingress(&dp, &Frame::tcp(client, (EXT, 5000), ACK, b""));
    assert_eq!(states(&dp, client, (EXT, 5000)), [ct_state::ESTABLISHED; 2]);
}

/// A closed flow whose source port had to move (its reply tuple was another flow's) is not
/// restarted in place: the new flow tries the client's own port first, as any new flow does.
#[test]
fn a_closed_flow_whose_source_port_moved_is_created_anew() {
    let mut dp = Datapath::new();
    dp.publish(5001, TCP, C0, 5000);
    let client = (WAN, 40300);
    // The same client port to another published port of the same container port takes the
    // reply tuple first.
    let first = ingress(&dp, &Frame::tcp(client, (EXT, 5001), SYN, b""));
    assert_eq!(first.ports, (client.1, 5000));
    let moved = ingress(&dp, &Frame::tcp(client, (EXT, 5000), SYN, b""));
    assert_ne!(
        moved.ports.0, client.1,
        "the second flow moved its source port"
    );
    // The first flow ends and is forgotten; the second closes.
    dp.evict(&flow_key(TCP, client, (EXT, 5001)));
    dp.evict(&flow_key(TCP, (C0, 5000), client));
    egress(
        &dp,
        &Frame::tcp((C0, 5000), (WAN, moved.ports.0), SYN | ACK, b""),
    );
    ingress(&dp, &Frame::tcp(client, (EXT, 5000), ACK, b""));
    egress(
        &dp,
        &Frame::tcp((C0, 5000), (WAN, moved.ports.0), FIN | ACK, b""),
    );
    let again = ingress(&dp, &Frame::tcp(client, (EXT, 5000), SYN, b""));
    assert_eq!(
        again.ports,
        (client.1, 5000),
        "the new flow has the client's own port, free now"
    );
    assert_eq!(dp.stat(Stat::CtRestarted), 0);
}

/// The conntrack key of a UDP packet from `src` to `dst`.
fn udp_key(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> FlowKey {
    flow_key(UDP, src, dst)
}

/// The conntrack key of a `proto` packet from `src` to `dst`.
fn flow_key(proto: u8, src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> FlowKey {
    FlowKey {
        src_ip: u32::from(src.0).to_be(),
        dst_ip: u32::from(dst.0).to_be(),
        src_port: src.1.to_be(),
        dst_port: dst.1.to_be(),
        proto,
        pad: [0; 3],
    }
}

#[test]
fn an_evicted_half_is_restored_when_the_flow_is_used_again() {
    let mut dp = Datapath::new();
    let sent = egress(&dp, &Frame::udp((C0, 5555), (WAN, 53), b"query"));
    assert_eq!((sent.src, sent.ports), (EXT, (5555, 53)));
    dp.evict(&udp_key((WAN, 53), (EXT, 5555)));
    // Used again after a second (restores are rate-limited to one a second per flow).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    egress(&dp, &Frame::udp((C0, 5555), (WAN, 53), b"again"));
    assert_eq!(dp.stat(Stat::CtRestored), 1, "the reply half was put back");
    let back = ingress(&dp, &Frame::udp((WAN, 53), (EXT, 5555), b"answer"));
    assert_eq!(
        (back.dst, back.ports.1),
        (C0, 5555),
        "and the reply reaches the container"
    );
}

/// A TCP connection that lost its reply half puts it back with its next segment, however
/// soon: the peer's answer is on its way, and without the mapping it would reach the host,
/// whose reset would end the connection.
#[test]
fn a_tcp_flow_restores_an_evicted_reply_half_at_once() {
    let mut dp = Datapath::new();
    let (container, server) = ((C0, 40200), (WAN, 80));
    let syn = egress(&dp, &Frame::tcp(container, server, SYN, b""));
    assert_eq!((syn.src, syn.ports), (EXT, (40200, 80)));
    ingress(&dp, &Frame::tcp(server, (EXT, 40200), SYN | ACK, b""));
    egress(&dp, &Frame::tcp(container, server, ACK, b""));
    dp.evict(&flow_key(TCP, server, (EXT, 40200)));
    // Past the refresh's millisecond, well within the second UDP waits.
    std::thread::sleep(std::time::Duration::from_millis(5));
    egress(&dp, &Frame::tcp(container, server, ACK, b"request"));
    assert_eq!(dp.stat(Stat::CtRestored), 1, "the reply half was put back");
    let answer = ingress(&dp, &Frame::tcp(server, (EXT, 40200), ACK, b"answer"));
    assert_eq!(
        (answer.dst, answer.ports.1),
        (C0, 40200),
        "the answer reaches the container, not the host"
    );
}

/// A CPU that had to put an evicted half back looks at the other half of every TCP packet's
/// flow for a second after: in a table that evicts live flows, a busy connection's reply
/// half comes back with its next segment, not at its entry's next refresh (a tick of the
/// coarse clock), when an answer in between would have reached the host and been reset.
#[test]
fn a_cpu_that_put_a_half_back_checks_every_tcp_segments_other_half() {
    // One CPU: the mark is per CPU.
    pin_to_cpu(0);
    let mut dp = Datapath::new();
    let server = (WAN, 80);
    let open = |dp: &Datapath, port| {
        let container = (C0, port);
        egress(dp, &Frame::tcp(container, server, SYN, b""));
        ingress(dp, &Frame::tcp(server, (EXT, port), SYN | ACK, b""));
        egress(dp, &Frame::tcp(container, server, ACK, b""));
    };
    // No half put back yet: a segment within its entry's refresh does not look.
    open(&dp, 40300);
    dp.evict(&flow_key(TCP, server, (EXT, 40300)));
    egress(&dp, &Frame::tcp((C0, 40300), server, ACK, b"request"));
    let quiet = dp.stat(Stat::CtRestored);
    assert!(quiet <= 1, "restored at a refresh at most");
    // A half put back (past the refresh's millisecond): from now on, every segment looks.
    std::thread::sleep(std::time::Duration::from_millis(5));
    egress(&dp, &Frame::tcp((C0, 40300), server, ACK, b"request"));
    assert_eq!(dp.stat(Stat::CtRestored), 1, "the reply half was put back");
    // Three fresh connections lose their reply halves and send at once, each within its
    // entry's millisecond (unless a tick of the clock falls in between, which three in a
    // row will not all see).
    for (round, port) in (40301..40304).enumerate() {
        open(&dp, port);
        dp.evict(&flow_key(TCP, server, (EXT, port)));
        egress(&dp, &Frame::tcp((C0, port), server, ACK, b"request"));
        assert_eq!(
            dp.stat(Stat::CtRestored),
            2 + round as u64,
            "flow {port}'s reply half was put back with its next segment"
        );
        let answer = ingress(&dp, &Frame::tcp(server, (EXT, port), ACK, b"answer"));
        assert_eq!(
            (answer.dst, answer.ports.1),
            (C0, port),
            "the answer reaches the container, not the host"
        );
    }
}

/// In a full table, a new flow's two entries go in one after the other, and the second
/// insert may make the LRU evict the first, never looked up yet: the answer to the packet
/// that created the flow would then reach the host, whose reset ends the connection. Here
/// the table is full of live connections, each used both ways between new flows, so that
/// the LRU finds few idle entries to evict instead; the new flows and the live ones take
/// turns on the two CPUs, whose free lists the LRU keeps apart. (With this table and these
/// 25 live flows, a run here put back a new flow's evicted reply entry 67 times.)
#[test]
fn in_a_full_table_a_new_flow_keeps_both_halves() {
    const LIVE: usize = 25;
    let dp = Datapath::with_sizes(&[(maps::CONNTRACK, 64)]);
    let server = (WAN, 80);
    let mut live = std::collections::VecDeque::new();
    for port in 20000..20300 {
        let container = (C0, port);
        let cpu = usize::from(port % 2);
        pin_to_cpu(cpu);
        let syn = egress(&dp, &Frame::tcp(container, server, SYN, b""));
        let answer = ingress(&dp, &Frame::tcp(server, (EXT, syn.ports.0), SYN | ACK, b""));
        assert_eq!(
            (answer.dst, answer.ports.1),
            (C0, port),
            "the answer to flow {port}'s SYN reaches its container"
        );
        egress(&dp, &Frame::tcp(container, server, ACK, b""));
        live.push_back((container, syn.ports.0));
        if live.len() > LIVE {
            live.pop_front();
        }
        // Past a tick of the coarse clock (4 ms here) and the refresh's millisecond: a live
        // flow that lost a half puts it back with its next packet.
        std::thread::sleep(std::time::Duration::from_millis(5));
        pin_to_cpu(cpu ^ 1);
        for &(container, external_port) in &live {
            let sent = egress(&dp, &Frame::tcp(container, server, ACK, b"request"));
            let answer = ingress(
                &dp,
                &Frame::tcp(server, (EXT, sent.ports.0), ACK, b"answer"),
            );
            assert_eq!(
                (sent.ports.0, answer.dst, answer.ports.1),
                (external_port, container.0, container.1),
                "live flow {container:?} keeps its mapping"
            );
        }
    }
}

/// Moves this thread to CPU `cpu`: a test run runs the program on the caller's CPU.
fn pin_to_cpu(cpu: usize) {
    // SAFETY: an all-zero set is valid, `CPU_SET` writes within it, and the call reads it.
    let pinned = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set)
    };
    assert_eq!(pinned, 0, "pinning the test to CPU {cpu}");
}

/// Flow A (C0:5555) loses its reply tuple, EXT:5555, to flow B (C1:5555): A's forward half
/// must not go on sending as EXT:5555, whose replies now reach B's socket.
fn a_flow_whose_reply_tuple_another_took(dp: &mut Datapath, lose: impl FnOnce(&mut Datapath)) {
    let sent = egress(dp, &Frame::udp((C0, 5555), (WAN, 53), b"query"));
    assert_eq!((sent.src, sent.ports), (EXT, (5555, 53)));
    lose(dp);
    let other = egress(dp, &Frame::udp((C1, 5555), (WAN, 53), b"other"));
    assert_eq!(other.ports.0, 5555, "the free tuple goes to the new flow");
    // Orphans are looked for when an entry's time is refreshed (once a millisecond).
    std::thread::sleep(std::time::Duration::from_millis(5));
    let again = egress(dp, &Frame::udp((C0, 5555), (WAN, 53), b"again"));
    assert_eq!(again.src, EXT);
    assert_ne!(
        again.ports.0, 5555,
        "the first flow moves to a port of its own"
    );
    let to_other = ingress(dp, &Frame::udp((WAN, 53), (EXT, 5555), b"to B"));
    assert_eq!((to_other.dst, to_other.ports.1), (C1, 5555));
    let back = ingress(dp, &Frame::udp((WAN, 53), (EXT, again.ports.0), b"to A"));
    assert_eq!((back.dst, back.ports.1), (C0, 5555));
}

#[test]
fn a_flow_that_lost_its_reply_tuple_to_the_lru_and_a_new_flow_moves() {
    let mut dp = Datapath::new();
    a_flow_whose_reply_tuple_another_took(&mut dp, |dp| {
        dp.evict(&udp_key((WAN, 53), (EXT, 5555)));
    });
    assert_eq!(
        dp.stat(Stat::CtOrphaned),
        1,
        "the orphaned half was counted"
    );
}

#[test]
fn an_expired_flow_whose_reply_tuple_a_new_flow_took_is_not_revived_by_it() {
    let mut dp = Datapath::new();
    dp.set_udp_lifetime(1);
    a_flow_whose_reply_tuple_another_took(&mut dp, |_| {
        std::thread::sleep(std::time::Duration::from_millis(1100));
    });
}

#[test]
fn spoofed_syns_never_establish() {
    let dp = Datapath::new();
    for port in 0..50u16 {
        let client = (Ipv4Addr::new(198, 18, 0, 99), 20000 + port);
        ingress(&dp, &Frame::tcp(client, (EXT, 5000), SYN, b""));
        egress(&dp, &Frame::tcp((C0, 5000), client, SYN | ACK, b""));
        assert_eq!(states(&dp, client, (EXT, 5000)), [ct_state::NEW; 2]);
    }
}

#[test]
fn a_dnat_flow_whose_reply_tuple_is_taken_moves_its_source_port() {
    let mut dp = Datapath::new();
    dp.publish(53, UDP, C0, 53);
    dp.publish(5353, UDP, C0, 53);
    let client = (WAN, 1111);
    let first = ingress(&dp, &Frame::udp(client, (EXT, 53), b"query one"));
    let second = ingress(&dp, &Frame::udp(client, (EXT, 5353), b"query two"));
    assert_eq!((first.dst, first.ports), (C0, (1111, 53)));
    assert_eq!(second.dst, C0);
    assert_ne!(
        second.ports.0, 1111,
        "the second flow's reply tuple clashed: new source port"
    );
    for (port, published) in [(first.ports.0, 53), (second.ports.0, 5353)] {
        let reply = egress(&dp, &Frame::udp((C0, 53), (WAN, port), b"answer"));
        assert_eq!((reply.src, reply.ports), (EXT, (published, 1111)));
        assert_checksums(&reply);
    }
}

#[test]
fn host_flows_and_masquerade_never_share_a_tuple() {
    let dp = Datapath::new();
    // The host first: the container's flow moves off its port.
    let host = egress(&dp, &Frame::udp((EXT, 40000), (WAN, 80), b"host"));
    assert_eq!(host.ports, (40000, 80), "the host keeps its own tuple");
    let container = egress(&dp, &Frame::udp((C0, 40000), (WAN, 80), b"container"));
    assert_eq!(container.src, EXT);
    assert_ne!(
        container.ports.0, 40000,
        "masquerade avoids the host's tuple"
    );
    // A container first: the host's new flow moves off it, as the kernel's NAT does.
    let container = egress(&dp, &Frame::udp((C0, 40001), (WAN, 80), b"container"));
    assert_eq!(container.ports, (40001, 80));
    let host = egress(&dp, &Frame::udp((EXT, 40001), (WAN, 80), b"host"));
    assert_ne!(
        host.ports.0, 40001,
        "the host's flow moves off the container's tuple"
    );
    // Each reply reaches its own.
    let to_host = ingress(&dp, &Frame::udp((WAN, 80), (EXT, host.ports.0), b"r"));
    assert_eq!((to_host.dst, to_host.ports.1), (EXT, 40001));
    let to_container = ingress(&dp, &Frame::udp((WAN, 80), (EXT, 40001), b"r"));
    assert_eq!((to_container.dst, to_container.ports.1), (C0, 40001));
}

#[test]
fn a_reply_to_a_host_process_is_never_hairpinned() {
    let dp = Datapath::new();
    // A host process on EXT:5000 (a published port) talked to C1:80 straight; its reply.
    let reply = Frame::tcp((C1, 80), (EXT, 5000), SYN | ACK, b"").bytes();
    let (verdict, out) = dp.tc(programs::TC_CONTAINER_INGRESS, &reply);
    assert_eq!(
        (verdict, out),
        (TC_ACT_UNSPEC, reply.to_vec()),
        "passed to the host untouched"
    );
    // A new connection to the same port is hairpinned.
    let syn = Frame::tcp((C1, 40000), (EXT, 5000), SYN, b"").bytes();
    let (_, out) = dp.tc(programs::TC_CONTAINER_INGRESS, &syn);
    assert_eq!(parse(&out).dst, C0, "a SYN from a container is hairpinned");
}

/// The fast path finds a container in a per-CPU cache; a container re-created under the same
/// address (a new veth, a new MAC) is reached through its new one once the loader has written
/// a new containers generation, as it does after every change of the containers.
#[test]
fn a_recreated_container_is_reached_through_its_new_device() {
    // One CPU, so that both packets meet the same CPU's cache.
    pin_to_cpu(0);
    let mut dp = Datapath::new();
    dp.add_flags(flags::FAST_PATH);
    let (old_mac, new_mac) = ([2, 0, 0, 0, 0, 0x10], [2, 0, 0, 0, 0, 0x11]);
    dp.set_container(C0, 4242, old_mac);
    let syn = |port| Frame::tcp((WAN, port), (EXT, 5000), SYN, b"").bytes();
    let (verdict, out) = dp.tc(programs::TC_EXTERNAL_INGRESS, &syn(41200));
    assert_eq!(
        (verdict, &out[..6]),
        (TC_ACT_REDIRECT, &old_mac[..]),
        "to the container"
    );

    dp.set_container(C0, 4343, new_mac);
    dp.edit_config(|config| config.containers_generation ^= 1);
    let (verdict, out) = dp.tc(programs::TC_EXTERNAL_INGRESS, &syn(41201));
    assert_eq!(
        (verdict, &out[..6]),
        (TC_ACT_REDIRECT, &new_mac[..]),
        "to the re-created container, not through the cached copy of the old one"
    );
}

/// A flow that brought a GSO segment into a container takes the stack's way from then on,
/// its small segments too (straight in, they would overtake the GSO ones still in the
/// stack's backlog); another flow keeps the fast path.
#[test]
fn a_flow_that_brought_a_gso_segment_takes_the_stack_from_then_on() {
    let mut dp = Datapath::new();
    dp.add_flags(flags::FAST_PATH);
    dp.add_container(C0, 4242);
    let (bulk, other) = ((WAN, 41300), (WAN, 41301));
    let segment =
        |client, flags, payload: &[u8]| Frame::tcp(client, (EXT, 5000), flags, payload).bytes();
    let syn = segment(bulk, SYN, b"");
    assert_eq!(
        dp.tc(programs::TC_EXTERNAL_INGRESS, &syn).0,
        TC_ACT_REDIRECT,
        "a SYN takes the fast path"
    );
    let gso = segment(bulk, ACK, &[7; 2000]);
    let (verdict, out) = prog_test::tc_gso(&dp.bpf, programs::TC_EXTERNAL_INGRESS, &gso, 2, 1000);
    assert_eq!(
        verdict, TC_ACT_UNSPEC,
        "a GSO segment takes the stack's way"
    );
    assert_eq!(parse(&out).dst, C0, "translated");
    for payload in [&b"the tail"[..], b"and a request"] {
        let (verdict, out) = dp.tc(programs::TC_EXTERNAL_INGRESS, &segment(bulk, ACK, payload));
        assert_eq!(
            (verdict, parse(&out).dst),
            (TC_ACT_UNSPEC, C0),
            "the flow's small segments follow it"
        );
    }
    assert_eq!(
        dp.tc(programs::TC_EXTERNAL_INGRESS, &segment(other, SYN, b""))
            .0,
        TC_ACT_REDIRECT,
        "another flow keeps the fast path"
    );
}

/// The same on the way out: a container's reply that is a GSO segment (a download) goes to
/// the stack untouched, where the external device's egress program translates it, and so
/// does every later reply of its flow. (Where a small reply goes through the fast path
/// depends on the test's own routes: the mark in the flow's entry is what is checked.)
#[test]
fn a_flow_whose_container_sent_a_gso_segment_leaves_through_the_stack_from_then_on() {
    let mut dp = Datapath::new();
    dp.add_flags(flags::FAST_PATH);
    dp.add_container(C0, 4242);
    let client = (WAN, 41310);
    let marked = |dp: &Datapath| {
        let map: HashMap<&MapData, FlowKey, CtEntry> =
            HashMap::try_from(dp.bpf.map(maps::CONNTRACK).expect("conntrack map")).expect("hash");
        let reply = map
            .get(&flow_key(TCP, (C0, 5000), client), 0)
            .expect("the reply's entry");
        reply.flags & ct_flags::VIA_STACK != 0
    };
    let reply = |flags, payload: &[u8]| Frame::tcp((C0, 5000), client, flags, payload).bytes();
    dp.tc(
        programs::TC_EXTERNAL_INGRESS,
        &Frame::tcp(client, (EXT, 5000), SYN, b"").bytes(),
    );
    dp.tc(programs::TC_CONTAINER_INGRESS, &reply(SYN | ACK, b""));
    assert!(
        !marked(&dp),
        "a small reply leaves its flow on the fast path"
    );
    let gso = reply(ACK, &[7; 2000]);
    assert_eq!(
        prog_test::tc_gso(&dp.bpf, programs::TC_CONTAINER_INGRESS, &gso, 2, 1000),
        (TC_ACT_UNSPEC, gso.to_vec()),
        "a GSO reply goes to the stack untouched"
    );
    assert!(marked(&dp), "its flow is marked");
    let tail = reply(ACK, b"the tail");
    assert_eq!(
        dp.tc(programs::TC_CONTAINER_INGRESS, &tail),
        (TC_ACT_UNSPEC, tail.to_vec()),
        "the flow's small replies follow it"
    );
    let out = egress(&dp, &Frame::tcp((C0, 5000), client, ACK, &[7; 2000]));
    assert_eq!(
        (out.src, out.ports.0),
        (EXT, 5000),
        "the external device's egress translates it"
    );
    assert_checksums(&out);
}

#[test]
fn a_failed_xdp_redirect_leaves_the_ttl_to_the_stack() {
    let mut dp = Datapath::new();
    dp.add_flags(flags::XDP_REDIRECT);
    // Known to the datapath, but with no devmap entry: the redirect fails.
    dp.add_container(C0, 4242);
    let frame = Frame::tcp((WAN, 41100), (EXT, 5000), SYN, b"");
    let (action, out) = dp.xdp(&frame.bytes());
    assert_eq!(action, XDP_PASS, "falls back to the stack");
    let p = parse(&out);
    assert_eq!(p.dst, C0, "translated all the same");
    assert_eq!(
        p.ttl, frame.ttl,
        "the stack's forwarding decrements the TTL, not XDP"
    );
    assert_checksums(&p);
    assert_eq!(dp.stat(Stat::FastPath), 0);
}

/// With `--fast-path xdp-redirect`, a frame goes from XDP straight to the container, whose
/// stack then verifies its checksum: XDP writes it in full, even over a sender's partial one
/// (checksum offload), for TCP and UDP of every length up to a page; UDP's "no checksum"
/// stays 0.
#[test]
fn xdp_redirect_writes_full_checksums_over_partial_ones() {
    let mut dp = Datapath::new();
    dp.add_flags(flags::FAST_PATH | flags::XDP_REDIRECT);
    // Both containers on the loopback device's index, which the devmap can hold here.
    dp.add_container(C0, 1);
    dp.add_container(C1, 1);
    {
        let mut devmap: DevMapHash<&mut MapData> =
            DevMapHash::try_from(dp.bpf.map_mut(maps::DEVMAP).expect("devmap")).expect("devmap");
        devmap.insert(1, 1, None, 0).expect("a devmap entry");
    }
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    for (n, len) in [0usize, 1, 2, 3, 5, 31, 63, 64, 65, 127, 1000, 1448, 3000]
        .into_iter()
        .enumerate()
    {
        let port = 42000 + u16::try_from(n).expect("few");
        for (frame, target) in [
            (
                Frame::tcp((WAN, port), (EXT, 5000), ACK, &payload[..len]),
                C0,
            ),
            (Frame::udp((WAN, port), (EXT, 6000), &payload[..len]), C1),
        ] {
            let mut bytes = frame.bytes().to_vec();
            // What a sender with checksum offload leaves in the field: not the sum.
            let field = 34 + if frame.proto == TCP { 16 } else { 6 };
            bytes[field..field + 2].copy_from_slice(&[0x12, 0x34]);
            let (action, out) = dp.xdp(&bytes);
            assert_eq!(action, XDP_REDIRECT, "{len} bytes");
            let p = parse(&out);
            assert_eq!(p.dst, target);
            assert_checksums(&p);
            assert!(p.l4.ends_with(&payload[..len]), "payload untouched");
        }
    }
    let mut none = Frame::udp((WAN, 42999), (EXT, 6000), b"no checksum")
        .bytes()
        .to_vec();
    none[40..42].copy_from_slice(&[0, 0]);
    let (action, out) = dp.xdp(&none);
    assert_eq!(
        (action, &out[40..42]),
        (XDP_REDIRECT, &[0u8, 0][..]),
        "UDP without checksum"
    );
}

#[test]
fn xdp_rewrites_with_correct_checksums_by_hand() {
    let dp = Datapath::new();
    for (frame, target) in [
        (Frame::tcp((WAN, 41000), (EXT, 5000), SYN, b""), (C0, 5000)),
        (
            Frame::tcp((WAN, 41000), (EXT, 5000), ACK, b"payload over xdp"),
            (C0, 5000),
        ),
        (
            Frame::udp((WAN, 41001), (EXT, 6000), b"udp over xdp"),
            (C1, 6000),
        ),
    ] {
        let (action, meta, out) = dp.xdp_with_metadata(&frame.bytes());
        assert_eq!(action, XDP_PASS);
        let p = parse(&out);
        assert_eq!((p.dst, p.ports.1), target);
        assert_eq!(p.src, WAN);
        assert_checksums(&p);
        assert_eq!(
            meta,
            XDP_META_TRANSLATED.to_ne_bytes(),
            "tc is told the frame is translated"
        );
    }
    let (action, meta, _) =
        dp.xdp_with_metadata(&Frame::tcp((WAN, 41002), (EXT, 22), SYN, b"").bytes());
    assert_eq!(
        (action, meta),
        (XDP_PASS, vec![]),
        "a frame for the host passes untold"
    );
    // The tc egress program translates the reply of a flow XDP created.
    let p = egress(&dp, &Frame::tcp((C0, 5000), (WAN, 41000), SYN | ACK, b""));
    assert_eq!((p.src, p.ports.0), (EXT, 5000));
    assert_checksums(&p);
}

#[test]
fn a_container_reaching_its_own_published_port_is_hairpinned_from_the_gateway() {
    let dp = Datapath::new();
    let (verdict, out) = dp.tc(
        programs::TC_CONTAINER_INGRESS,
        &Frame::tcp((C0, 50000), (EXT, 5000), SYN, b"").bytes(),
    );
    // No container table in a test run: delivery falls back to the stack.
    assert_eq!(verdict, TC_ACT_UNSPEC);
    let p = parse(&out);
    assert_eq!(
        (p.src, p.dst, p.ports.1),
        (GATEWAY, C0, 5000),
        "own port: source becomes the gateway"
    );
    assert_checksums(&p);
    let (_, out) = dp.tc(
        programs::TC_CONTAINER_INGRESS,
        &Frame::tcp((C1, 50001), (EXT, 5000), SYN, b"").bytes(),
    );
    let p = parse(&out);
    assert_eq!(
        (p.src, p.dst),
        (C1, C0),
        "another container keeps its address"
    );
    assert_checksums(&p);
}

#[test]
fn icmp_errors_about_a_ping_restore_its_identifier() {
    let dp = Datapath::new();
    // Two containers ping with the same identifier: the second is moved to another one.
    egress(&dp, &Frame::icmp_echo(C0, WAN, 8, 0x7777, 1));
    let sent = egress(&dp, &Frame::icmp_echo(C1, WAN, 8, 0x7777, 1));
    assert_ne!(
        sent.ports.0, 0x7777,
        "the second ping got another identifier"
    );
    // A router on the way answers "time exceeded", quoting the ping as it saw it.
    let router = Ipv4Addr::new(198, 18, 0, 99);
    let mut quoted = Frame::icmp_echo(EXT, WAN, 8, sent.ports.0, 1);
    quoted.ttl = 1;
    let p = ingress(&dp, &Frame::icmp_error(router, EXT, 11, 0, &quoted));
    assert_eq!(
        (p.src, p.dst),
        (router, C1),
        "the error goes to the second container"
    );
    assert_checksums(&p);
    let inner = &p.l4[8..];
    let inner_ip = parse(&[&[0u8; 14][..], inner].concat());
    assert_eq!((inner_ip.src, inner_ip.dst), (C1, WAN), "quoted addresses");
    assert!(inner_ip.ip_checksum_ok, "quoted IP header checksum");
    let quoted_icmp = &inner[20..28];
    assert_eq!(
        u16::from_be_bytes([quoted_icmp[4], quoted_icmp[5]]),
        0x7777,
        "quoted identifier restored"
    );
    // The quoted ICMP header's checksum still matches the (whole, original) echo it quotes.
    let original = Frame::icmp_echo(C1, WAN, 8, 0x7777, 1).bytes();
    assert_eq!(
        quoted_icmp[2..4],
        original[14 + 20 + 2..14 + 20 + 4],
        "quoted ICMP checksum"
    );
}
