//! The `none` backend: no NAT at all. Containers are reachable only by routing to the
//! container subnet; nothing is published or masqueraded. It is the floor the benchmark
//! measures NAT backends against, and a way to see the bare topology.

use crate::{
    error::{Error, Result},
    lab::Publish,
};

use super::{ConntrackRow, Hook, NatBackend, NatContext, PortCounters};

#[derive(Debug, Clone, Copy)]
pub struct NoNat;

impl NatBackend for NoNat {
    fn setup(&self, _ctx: NatContext<'_>) -> Result<()> {
        Ok(())
    }

    fn teardown(&self, _ctx: NatContext<'_>) -> Result<()> {
        Ok(())
    }

    fn publish(&self, _ctx: NatContext<'_>, added: &[Publish]) -> Result<()> {
        match added.first() {
            None => Ok(()),
            Some(publish) => Err(Error::invalid(format!(
                "the none backend does no NAT and cannot publish {} (use --backend ebpf or iptables)",
                publish.spec
            ))),
        }
    }

    fn unpublish(&self, _ctx: NatContext<'_>, _removed: &[Publish]) -> Result<()> {
        Ok(())
    }

    fn counters(&self, _ctx: NatContext<'_>) -> Result<Vec<PortCounters>> {
        Ok(Vec::new())
    }

    fn conntrack(&self, _ctx: NatContext<'_>) -> Result<Vec<ConntrackRow>> {
        Ok(Vec::new())
    }

    fn explain(&self, _ctx: NatContext<'_>) -> Vec<String> {
        vec!["# no NAT: reach containers by routing to the container subnet".to_string()]
    }

    fn describe(&self, _ctx: NatContext<'_>) -> Result<String> {
        Ok("no NAT\n".to_string())
    }

    fn hooks(&self, _ctx: NatContext<'_>) -> Vec<Hook> {
        Vec::new()
    }
}
