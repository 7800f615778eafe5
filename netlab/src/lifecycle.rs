//! The life of a lab: `up` (create, or converge an existing lab), `down` (remove everything
//! the lab created, also after a crash), `publish` and `unpublish`.

use crate::{
    crash_point,
    error::{Error, Result},
    ipv4net::Ipv4Net,
    lab::{HostMode, Lab, Publish},
    lab_lock::LabLock,
    link,
    nat::{BackendKind, BackendOptions, NatContext},
    netlink::{self, Place},
    netns,
    state::{self, LabState, Pending},
    sysctl,
    topology::{self, Plan},
};

/// Creates lab `name` from `lab`, or converges it when it is already up with the same
/// definition; `choose` picks the backend and its options, given the running lab's state
/// (read once, under the lab's lock). A failure while creating a new lab removes what this
/// run created. Returns the backend chosen.
pub fn up(
    name: &str,
    lab: &Lab,
    choose: impl FnOnce(Option<&LabState>) -> (BackendKind, BackendOptions),
) -> Result<BackendKind> {
    state::validate_name(name)?;
    lab.validate()?;
    let _lock = LabLock::acquire(name)?;
    let mut existing = state::load(name)?;
    if let Some(existing) = &mut existing {
        finish_pending(existing)?;
    }
    let (backend, options) = choose(existing.as_ref());
    let nat = backend.backend()?;
    if lab.host == HostMode::Root {
        validate_root_host(lab)?;
    }
    if let Some(existing) = &existing {
        if existing.backend != backend {
            return Err(Error::invalid(format!(
                "lab {name:?} is up with the {} backend; run `netlab down` first to switch to {backend}",
                existing.backend
            )));
        }
        if let Some(change) = existing.options.first_difference(&options) {
            return Err(Error::invalid(format!(
                "lab {name:?} is up with other options; run `netlab down` first to bring it up with {change}"
            )));
        }
        let mut declared = existing.lab.clone();
        declared.publish.clone_from(&lab.publish);
        if declared != *lab {
            return Err(Error::invalid(format!(
                "lab {name:?} is already up with a different definition; run `netlab down` first"
            )));
        }
    }
    // Ports published live since the last `up` stay published.
    let mut desired = lab.clone();
    if let Some(existing) = &existing {
        for publish in &existing.lab.publish {
            if !desired.publish.contains(publish) {
                desired.publish.push(publish.clone());
            }
        }
        desired.validate()?;
    }
    // A lab on the real host changes host-wide settings: remember them to put them back.
    let host_sysctls = match (&existing, lab.host) {
        (Some(existing), _) => existing.host_sysctls.clone(),
        (None, HostMode::Root) => ROOT_SYSCTLS
            .iter()
            .filter_map(|key| {
                sysctl::read(&Place::Root, key)
                    .ok()
                    .map(|value| ((*key).to_string(), value))
            })
            .collect(),
        (None, HostMode::Namespace) => Vec::new(),
    };
    let new_state = LabState {
        name: name.to_string(),
        backend,
        options,
        lab: desired,
        host_sysctls,
        pending: None,
    };
    nat.check(new_state.nat_context())?;
    // Written before anything is created, so `down` finds every object even after a crash.
    state::save(&new_state)?;
    let result = (|| {
        netlink::runtime()?.block_on(Plan::new(name, &new_state.lab).apply())?;
        let ctx = new_state.nat_context();
        nat.setup(ctx)?;
        nat.publish(ctx, &new_state.lab.publish)
    })();
    if let Err(err) = result {
        if existing.is_none()
            && let Err(rollback) = down_locked(name)
        {
            return Err(Error::Multi(vec![err, rollback]));
        }
        return Err(err);
    }
    Ok(backend)
}

/// Host-wide settings a lab on the real host changes (`ip_forward` for the topology,
/// `bridge-nf-call-iptables` for the iptables backend's hairpin), restored by `down`.
const ROOT_SYSCTLS: [&str; 2] = ["net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"];

/// Refuses a root-namespace lab that would clash with the real host's routes or links.
fn validate_root_host(lab: &Lab) -> Result<()> {
    let (routes, links) = netlink::runtime()?.block_on(async {
        let handle = netlink::connect(&Place::Root)?;
        let routes = link::dump_routes(&handle).await?;
        let links = link::dump_links(&handle).await?;
        Ok::<_, Error>((routes, links))
    })?;
    let routes: Vec<Ipv4Net> = routes
        .iter()
        .filter_map(crate::inspect::route_destination)
        .collect();
    let links: Vec<String> = links
        .iter()
        .filter_map(link::link_name)
        .map(str::to_string)
        .collect();
    lab.validate_against_host(&routes, &links)?;
    Ok(())
}

/// Removes lab `name`: NAT state, namespaces (which takes their links along), pins, state
/// file. Keeps going past failures and reports them all; a lab that is not there is success.
pub fn down(name: &str) -> Result<()> {
    state::validate_name(name)?;
    let _lock = LabLock::acquire(name)?;
    down_locked(name)
}

/// `down`, with the lab's lock held by the caller.
fn down_locked(name: &str) -> Result<()> {
    let mut errors = Vec::new();
    let saved = state::load(name).unwrap_or_else(|err| {
        errors.push(err);
        None
    });
    if let Some(saved) = &saved {
        let ctx = saved.nat_context();
        let host_alive = match ctx.host() {
            Place::Root => true,
            Place::Netns(ns) => netns::exists(&ns),
        };
        if host_alive {
            match saved.backend.backend() {
                Ok(nat) => errors.extend(nat.teardown(ctx).err()),
                Err(err) => errors.push(err),
            }
        }
        if saved.lab.host == HostMode::Root {
            errors.extend(remove_root_links(&saved.lab).err());
            for (key, value) in &saved.host_sysctls {
                errors.extend(sysctl::write(&Place::Root, key, value).err());
            }
        }
    }
    // Namespaces by name, too: `<lab>-` is a prefix no other lab can have.
    let prefix = format!("{name}-");
    match netns::list() {
        Ok(all) => {
            for ns in all.iter().filter(|ns| ns.starts_with(&prefix)) {
                crash_point::reached(name, &format!("ip netns del {ns}"));
                errors.extend(netns::delete(ns).err());
            }
        }
        Err(err) => errors.push(err),
    }
    for kind in BackendKind::ALL {
        match kind.backend() {
            Ok(nat) => errors.extend(nat.remove_leftovers(name).err()),
            Err(err) => errors.push(err),
        }
    }
    errors.extend(crate::iface_counters::detach_all_with_prefix(&prefix).err());
    crate::bpf_loader::bpffs::remove_unused_roots();
    errors.extend(state::remove(name).err());
    Error::collect(errors)
}

/// In a root-namespace lab the bridge and the host ends of the veths live in the real host;
/// delete them (deleting a veth end deletes its peer).
fn remove_root_links(lab: &Lab) -> Result<()> {
    netlink::runtime()?.block_on(async {
        let handle = netlink::connect(&Place::Root)?;
        let mut errors = Vec::new();
        let names = std::iter::once(&lab.bridge)
            .chain(std::iter::once(&lab.external.device))
            .chain(lab.containers.iter().map(|c| &c.host_device));
        for device in names {
            match link::index(&handle, device).await {
                Ok(Some(index)) => errors.extend(link::delete(&handle, device, index).await.err()),
                Ok(None) => {}
                Err(err) => errors.push(err),
            }
        }
        Error::collect(errors)
    })
}

/// The state of lab `name`, which must be up, with a `publish` or `unpublish` that a crash
/// interrupted finished first: what forwards is then exactly what the state says.
pub fn settled(name: &str) -> Result<LabState> {
    state::validate_name(name)?;
    let saved = state::require(name)?;
    if saved.pending.is_none() {
        return Ok(saved);
    }
    let _lock = LabLock::acquire(name)?;
    let mut saved = state::require(name)?;
    finish_pending(&mut saved)?;
    Ok(saved)
}

/// Makes the datapath forward exactly `saved.lab.publish` when a crash stopped a `publish`
/// or `unpublish` half way (`saved.pending` set), then clears the record. The caller holds
/// the lab's lock.
fn finish_pending(saved: &mut LabState) -> Result<()> {
    let Some(pending) = saved.pending.take() else {
        return Ok(());
    };
    let nat = saved.backend.backend()?;
    let ctx = saved.nat_context();
    // `setup` converges and drops whatever forwards but is not in the set; `publish` of the
    // whole set adds what is missing.
    nat.setup(ctx)?;
    nat.publish(ctx, &saved.lab.publish)?;
    if let Pending::Unpublish(removed) = &pending {
        // Again, for what unpublishing does besides (forgetting the ports' UDP flows).
        nat.unpublish(ctx, removed)?;
    }
    state::save(saved)
}

/// Publishes `specs` on container `node`; all or nothing, also across a crash: the new set
/// is recorded before the datapath changes, and a crash half way is finished by the next
/// command.
pub fn publish(name: &str, node: &str, specs: &[crate::ports::PortSpec]) -> Result<()> {
    state::validate_name(name)?;
    let _lock = LabLock::acquire(name)?;
    let mut saved = state::require(name)?;
    finish_pending(&mut saved)?;
    saved.lab.require_container(node)?;
    let added: Vec<Publish> = specs
        .iter()
        .map(|spec| Publish {
            node: node.to_string(),
            spec: spec.clone(),
        })
        .collect();
    for publish in &added {
        if let Some(taken) = saved
            .lab
            .publish
            .iter()
            .find(|p| p.spec.conflicts_with(&publish.spec))
        {
            return Err(Error::invalid(format!(
                "port {} is already allocated (published as {} on {})",
                publish.spec, taken.spec, taken.node
            )));
        }
    }
    let before = saved.clone();
    saved.lab.publish.extend(added.iter().cloned());
    saved.lab.validate()?;
    let nat = saved.backend.backend()?;
    nat.check(saved.nat_context())?;
    saved.pending = Some(Pending::Publish(added.clone()));
    state::save(&saved)?;
    if let Err(err) = nat.publish(saved.nat_context(), &added) {
        // Put the datapath and the record back the way they were.
        let rollback: Vec<Error> = [
            nat.unpublish(before.nat_context(), &added).err(),
            state::save(&before).err(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if rollback.is_empty() {
            return Err(err);
        }
        return Err(Error::Multi(std::iter::once(err).chain(rollback).collect()));
    }
    saved.pending = None;
    state::save(&saved)
}

/// Unpublishes `specs` from container `node`; each must be published exactly so.
pub fn unpublish(name: &str, node: &str, specs: &[crate::ports::PortSpec]) -> Result<()> {
    state::validate_name(name)?;
    let _lock = LabLock::acquire(name)?;
    let mut saved = state::require(name)?;
    finish_pending(&mut saved)?;
    saved.lab.require_container(node)?;
    let mut removed = Vec::new();
    for spec in specs {
        let wanted = Publish {
            node: node.to_string(),
            spec: spec.clone(),
        };
        let Some(index) = saved.lab.publish.iter().position(|p| *p == wanted) else {
            return Err(Error::invalid(format!("{spec} is not published on {node}")));
        };
        removed.push(saved.lab.publish.remove(index));
    }
    let nat = saved.backend.backend()?;
    // Recorded first: a crash half way leaves ports the next command removes, never ports
    // that forward but that no state file lists.
    saved.pending = Some(Pending::Unpublish(removed.clone()));
    state::save(&saved)?;
    nat.unpublish(saved.nat_context(), &removed)?;
    saved.pending = None;
    state::save(&saved)
}

/// The commands `up` is equivalent to: iproute2 for the topology, then the backend's.
pub fn explain(
    name: &str,
    lab: &Lab,
    backend: BackendKind,
    options: BackendOptions,
) -> Result<Vec<String>> {
    let mut lines: Vec<String> = Plan::new(name, lab)
        .steps()
        .map(topology::Step::explain)
        .collect();
    lines.extend(backend.backend()?.explain(NatContext {
        lab_name: name,
        lab,
        options,
    }));
    Ok(lines)
}
