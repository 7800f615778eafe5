//! The containers' hook: `ctr_ingress` runs as one direct-action filter on a shared tc
//! block, and every container's host-side veth binds that block at ingress. That is one
//! program attach for the whole lab, where a tcx attach per veth waits for an RCU grace
//! period under the RTNL lock (~13 ms each, 1.3 s for 100 containers). Binding a clsact
//! qdisc to a block that has no filter yet waits for nothing, so `up` binds every veth
//! before it loads the program and adds the filter once, at the end.
//!
//! The kernel keeps the filter, and the program, as long as one qdisc binds the block: the
//! veths die with their namespaces, so `down` needs no step of its own here.

use std::collections::HashMap;

use futures::StreamExt as _;
use netlink_packet_route::{
    RouteNetlinkMessage,
    tc::{TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcHeader, TcMessage, TcOption},
};
use rtnetlink::{
    Handle,
    packet_core::{
        DefaultNla, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkMessage,
        NetlinkPayload, Nla as _,
    },
};

use crate::error::{Error, Result};

/// The attach point of the containers' hook, as `hooks` and `graph` name it.
pub(crate) const HOOK_POINT: &str = "tc block ingress";

/// `TCA_INGRESS_BLOCK`, which netlink-packet-route leaves to `Other`.
const TCA_INGRESS_BLOCK: u16 = 13;
/// The filter's preference (`pref 1`) and handle: the block holds only netlab's filter.
const PRIORITY: u16 = 1;
const FILTER_HANDLE: u32 = 1;
/// Every protocol (`protocol all`).
const ETH_P_ALL: u16 = 0x0003;

/// The block of lab `lab_name`. Block numbers are per network namespace; a lab's host node
/// is its own namespace, except with `host = "root"`, where labs share the root one, so
/// each lab gets its own number.
pub(crate) fn index(lab_name: &str) -> u32 {
    // Folded from the lab's 64-bit FNV-1a; 0 means "no block" to the kernel.
    let hash = netlab_common::nat::owner_id(lab_name.as_bytes());
    let folded = (hash ^ (hash >> 32)) & u64::from(u32::MAX);
    u32::try_from(folded).unwrap_or(1).max(1)
}

/// The ingress block each device of the namespace binds, by interface index (devices
/// without a clsact qdisc, or whose clsact binds no block, are absent).
/// `tc qdisc show` (the `ingress_block` column).
pub(crate) async fn ingress_blocks(handle: &Handle) -> Result<HashMap<u32, u32>> {
    let mut message = TcMessage::default();
    message.header.index = 0;
    let replies = request(
        handle,
        RouteNetlinkMessage::GetQueueDiscipline(message),
        NLM_F_DUMP,
    )
    .await
    .map_err(|err| Error::netlink("listing qdiscs (tc qdisc show)", err))?;
    Ok(replies
        .into_iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewQueueDiscipline(qdisc) => {
                let ifindex = u32::try_from(qdisc.header.index).ok()?;
                let block = qdisc.attributes.iter().find_map(|attr| match attr {
                    TcAttribute::Other(nla)
                        if nla.kind() == TCA_INGRESS_BLOCK && nla.value_len() == 4 =>
                    {
                        let mut value = [0; 4];
                        nla.emit_value(&mut value);
                        Some(u32::from_ne_bytes(value))
                    }
                    _ => None,
                })?;
                Some((ifindex, block))
            }
            _ => None,
        })
        .collect())
}

/// Binds `device` (index `ifindex`) to `block` at ingress:
/// `tc qdisc add dev DEVICE ingress_block BLOCK clsact`.
pub(crate) async fn bind(handle: &Handle, device: &str, ifindex: u32, block: u32) -> Result<()> {
    let mut message = TcMessage::with_index(ifindex_i32(ifindex));
    message.header.parent = TcHandle::INGRESS;
    message.header.handle = TcHandle::from(0xffff_0000);
    message
        .attributes
        .push(TcAttribute::Kind("clsact".to_owned()));
    message.attributes.push(TcAttribute::Other(DefaultNla::new(
        TCA_INGRESS_BLOCK,
        block.to_ne_bytes().to_vec(),
    )));
    request(
        handle,
        RouteNetlinkMessage::NewQueueDiscipline(message),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .await
    .map(drop)
    .map_err(|err| {
        Error::netlink(
            format!("binding {device} to tc block {block} (tc qdisc add dev {device} ingress_block {block} clsact)"),
            err,
        )
    })
}

/// The programs of the bpf filters on `block`: name (`TCA_BPF_NAME`) and id.
/// `tc filter show block BLOCK`.
pub(crate) async fn filters(handle: &Handle, block: u32) -> Result<Vec<(String, u32)>> {
    let mut message = TcMessage::with_index(block_ifindex());
    message.header.parent = TcHandle::from(block);
    let replies = request(
        handle,
        RouteNetlinkMessage::GetTrafficFilter(message),
        NLM_F_DUMP,
    )
    .await
    .map_err(|err| Error::netlink(format!("listing the filters of tc block {block}"), err))?;
    Ok(replies
        .into_iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewTrafficFilter(filter) => Some(filter),
            _ => None,
        })
        .filter_map(|filter| {
            let options = filter.attributes.into_iter().find_map(|attr| match attr {
                TcAttribute::Options(options) => Some(options),
                _ => None,
            })?;
            let name = options.iter().find_map(|option| match option {
                TcOption::Bpf(TcFilterBpfOption::ProgName(name)) => Some(name.clone()),
                _ => None,
            })?;
            let id = options.iter().find_map(|option| match option {
                TcOption::Bpf(TcFilterBpfOption::ProgId(id)) => Some(*id),
                _ => None,
            })?;
            Some((name, id))
        })
        .collect())
}

/// Adds the direct-action filter running program `fd` (called `name`) to `block`:
/// `tc filter add block BLOCK pref 1 handle 1 bpf direct-action fd FD name NAME`.
pub(crate) async fn add_filter(handle: &Handle, block: u32, fd: u32, name: &str) -> Result<()> {
    let mut message = TcMessage::with_index(block_ifindex());
    message.header.parent = TcHandle::from(block);
    message.header.handle = TcHandle::from(FILTER_HANDLE);
    // Preference in the high half, protocol (ETH_P_ALL, network order) in the low half.
    message.header.info = (u32::from(PRIORITY) << 16) | u32::from(ETH_P_ALL.to_be());
    message.attributes.push(TcAttribute::Kind("bpf".to_owned()));
    message.attributes.push(TcAttribute::Options(vec![
        TcOption::Bpf(TcFilterBpfOption::ProgFd(fd)),
        TcOption::Bpf(TcFilterBpfOption::ProgName(name.to_owned())),
        TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
    ]));
    request(
        handle,
        RouteNetlinkMessage::NewTrafficFilter(message),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .await
    .map(drop)
    .map_err(|err| Error::netlink(format!("adding {name} to tc block {block}"), err))
}

/// Removes netlab's filter from `block`, which detaches the program; a block that is gone, or
/// has no such filter, is success. `tc filter del block BLOCK pref 1`.
pub(crate) async fn del_filter(handle: &Handle, block: u32) -> Result<()> {
    let mut message = TcMessage::with_index(block_ifindex());
    message.header.parent = TcHandle::from(block);
    message.header.info = u32::from(PRIORITY) << 16;
    match request(handle, RouteNetlinkMessage::DelTrafficFilter(message), 0).await {
        // ENOENT: no such filter; EINVAL: no such block (the kernel's "Block of given index
        // was not found").
        Err(rtnetlink::Error::NetlinkError(err))
            if err
                .code
                .is_some_and(|code| matches!(-code.get(), libc::ENOENT | libc::EINVAL)) =>
        {
            Ok(())
        }
        other => other.map(drop).map_err(|err| {
            Error::netlink(
                format!("removing netlab's filter from tc block {block}"),
                err,
            )
        }),
    }
}

/// `TCM_IFINDEX_MAGIC_BLOCK`: the header's "interface" of a request about a block.
fn block_ifindex() -> i32 {
    TcHeader::TCM_IFINDEX_MAGIC_BLOCK.cast_signed()
}

fn ifindex_i32(ifindex: u32) -> i32 {
    i32::try_from(ifindex).unwrap_or(i32::MAX)
}

/// Sends one request and collects its replies (a dump's messages, or nothing but the ack).
async fn request(
    handle: &Handle,
    message: RouteNetlinkMessage,
    flags: u16,
) -> std::result::Result<Vec<RouteNetlinkMessage>, rtnetlink::Error> {
    let mut request = NetlinkMessage::from(message);
    request.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    let mut responses = handle.clone().request(request)?;
    let mut replies = Vec::new();
    while let Some(response) = responses.next().await {
        match response.payload {
            NetlinkPayload::InnerMessage(message) => replies.push(message),
            NetlinkPayload::Error(err) if err.code.is_some() => {
                return Err(rtnetlink::Error::NetlinkError(err));
            }
            _ => {}
        }
    }
    Ok(replies)
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_lab_has_its_own_nonzero_block() {
        assert_ne!(super::index("a"), super::index("b"));
        assert_ne!(super::index(""), 0);
        assert_eq!(super::index("demo"), super::index("demo"));
    }
}
