//! Running the datapath's programs on crafted frames with `BPF_PROG_TEST_RUN`, for the
//! packet-rewriting suites of both families: each test loads its own copy of the object,
//! with its maps pinned in a folder of its own that goes when the test ends.

use std::path::PathBuf;

use aya::{
    Ebpf,
    maps::{Array, MapData, PerCpuArray},
    programs::{SchedClassifier, TestRun, TestRunOptions, Xdp},
};
use netlab_common::nat::{NatConfig, Stat, maps, programs};

use crate::unique;

/// tc's "carry on" verdict.
pub const TC_ACT_UNSPEC: i32 = -1;
/// tc's "drop" verdict.
pub const TC_ACT_SHOT: i32 = 2;
/// tc's verdict after `bpf_redirect*`.
pub const TC_ACT_REDIRECT: i32 = 7;

/// A pin folder of a test's own, removed when the test ends, whether its programs loaded or
/// not.
#[derive(Debug)]
pub struct PinDir(PathBuf);

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = netlab::bpf_loader::bpffs::remove_dir(&self.0);
        netlab::bpf_loader::bpffs::remove_unused_roots();
    }
}

/// The object loaded in a pin folder of its own (maps sized by `sizes`, by name), its tc
/// and XDP programs through the verifier.
pub fn load(sizes: &[(&str, u32)]) -> (Ebpf, PinDir) {
    let dir = PinDir(PathBuf::from(format!(
        "/sys/fs/bpf/netlab/{}",
        unique("dp")
    )));
    netlab::bpf_loader::bpffs::create_dir(&dir.0).expect("pin folder");
    let mut bpf = netlab::bpf_loader::load(&dir.0, sizes).expect("loading the eBPF object");
    for name in [
        programs::TC_EXTERNAL_INGRESS,
        programs::TC_EXTERNAL_EGRESS,
        programs::TC_CONTAINER_INGRESS,
    ] {
        let program: &mut SchedClassifier = bpf
            .program_mut(name)
            .expect("program")
            .try_into()
            .expect("classifier");
        program
            .load()
            .unwrap_or_else(|err| panic!("the verifier refuses {name}: {err:?}"));
    }
    let xdp: &mut Xdp = bpf
        .program_mut(programs::XDP_EXTERNAL_INGRESS)
        .expect("program")
        .try_into()
        .expect("xdp");
    xdp.load().expect("verifier accepts the XDP program");
    (bpf, dir)
}

/// Writes the datapath's (IPv4) config, which also holds the flags of both families.
pub fn set_config(bpf: &mut Ebpf, config: NatConfig) {
    config_map(bpf)
        .set(0, config, 0)
        .expect("writing the config");
}

/// Changes the datapath's config through `change`.
pub fn edit_config(bpf: &mut Ebpf, change: impl FnOnce(&mut NatConfig)) {
    let mut array = config_map(bpf);
    let mut config = array.get(&0, 0).expect("config");
    change(&mut config);
    array.set(0, config, 0).expect("writing the config");
}

fn config_map(bpf: &mut Ebpf) -> Array<&mut MapData, NatConfig> {
    Array::try_from(bpf.map_mut(maps::CONFIG).expect("config map")).expect("array")
}

/// Runs tc program `name` on `frame`; returns its verdict and the frame it leaves.
pub fn tc(bpf: &Ebpf, name: &str, frame: &[u8]) -> (i32, Vec<u8>) {
    tc_with_context(bpf, name, frame, None)
}

/// [`tc`] on a GSO segment of `segs` segments of `size` bytes, as a bulk sender's TCP makes:
/// the kernel takes both from the context given to `BPF_PROG_TEST_RUN`.
pub fn tc_gso(bpf: &Ebpf, name: &str, frame: &[u8], segs: u32, size: u32) -> (i32, Vec<u8>) {
    // `struct __sk_buff` (uapi/linux/bpf.h): 192 bytes, `gso_segs` at 164, `gso_size` at
    // 176; the test run refuses a context with any other field it does not take set.
    let mut context = [0u8; 192];
    context[164..168].copy_from_slice(&segs.to_ne_bytes());
    context[176..180].copy_from_slice(&size.to_ne_bytes());
    tc_with_context(bpf, name, frame, Some(&context))
}

fn tc_with_context(bpf: &Ebpf, name: &str, frame: &[u8], context: Option<&[u8]>) -> (i32, Vec<u8>) {
    let program: &SchedClassifier = bpf
        .program(name)
        .expect("program")
        .try_into()
        .expect("classifier");
    let (verdict, out) = test_run(program, frame, context);
    (verdict.cast_signed(), out)
}

/// Runs the XDP program on `frame`; returns its action and the frame it leaves.
pub fn xdp(bpf: &Ebpf, frame: &[u8]) -> (u32, Vec<u8>) {
    let program: &Xdp = bpf
        .program(programs::XDP_EXTERNAL_INGRESS)
        .expect("program")
        .try_into()
        .expect("xdp");
    test_run(program, frame, None)
}

/// How many packets the datapath counted under `stat`.
pub fn stat(bpf: &Ebpf, stat: Stat) -> u64 {
    let map: PerCpuArray<&MapData, u64> =
        PerCpuArray::try_from(bpf.map(maps::STATS).expect("stats map")).expect("per-CPU array");
    map.get(&(stat as u32), 0).expect("stat").iter().sum()
}

/// `BPF_PROG_TEST_RUN` (with `context`, a `struct __sk_buff`, if given): the program's
/// return value and the frame it leaves.
pub fn test_run<P>(program: &P, frame: &[u8], context: Option<&[u8]>) -> (u32, Vec<u8>)
where
    P: for<'a> TestRun<Opts<'a> = TestRunOptions<'a>, Result = aya::programs::TestRunResult>,
{
    let mut out = vec![0u8; frame.len() + 256];
    let result = program
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: context,
            ..Default::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    out.truncate(result.data_size_out as usize);
    (result.return_value, out)
}
