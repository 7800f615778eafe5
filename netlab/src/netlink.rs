//! Netlink connections bound to a namespace. A netlink socket belongs to the namespace of the
//! thread that opened it, so we open it from a thread inside the namespace and then use it from
//! the runtime like any other; nothing forks, and the main thread never changes namespace.

use rtnetlink::Handle;

use crate::{
    error::{Context as _, Result},
    netns,
};

/// Where a node lives: a named namespace, or the root namespace (`host = "root"` labs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Place {
    Root,
    Netns(String),
}

impl Place {
    /// Prefix for iproute2 commands in `--explain` output.
    pub fn ip(&self) -> String {
        match self {
            Self::Root => "ip".to_string(),
            Self::Netns(name) => format!("ip -n {name}"),
        }
    }

    /// Prefix that runs a command here in `--explain` output: `ip netns exec NS ` in a
    /// namespace, nothing in the root namespace.
    pub fn exec(&self) -> String {
        match self {
            Self::Root => String::new(),
            Self::Netns(name) => format!("ip netns exec {name} "),
        }
    }

    /// Runs `f` in this place (on a thread inside the namespace, or right here for root).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        match self {
            Self::Root => f(),
            Self::Netns(name) => netns::run_in(name, f),
        }
    }
}

/// A one-thread runtime for a command's netlink work: the bridge from netlab's synchronous
/// commands to rtnetlink's async API (`runtime()?.block_on(...)`).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .op(|| "starting the async runtime".to_string())
}

/// Opens an rtnetlink connection in `place` and drives it on the current tokio runtime.
/// Must be called from within the runtime.
pub fn connect(place: &Place) -> Result<Handle> {
    let runtime = tokio::runtime::Handle::current();
    let (connection, handle, _) = place.run(|| {
        let _entered = runtime.enter();
        rtnetlink::new_connection().op(|| format!("opening a netlink socket in {place:?}"))
    })?;
    tokio::spawn(connection);
    Ok(handle)
}
