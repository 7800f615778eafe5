//! netlab's error type: every variant names the operation that failed and keeps the cause
//! as its `#[source]`, so `{err:#}` prints one line like
//! `creating namespace "lab-host": File exists (os error 17)`.

use std::fmt;

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or file operation failed.
    #[error("{op}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    /// A netlink request failed.
    #[error("{op}")]
    Netlink {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
    /// Loading, attaching, pinning or reading eBPF objects failed.
    #[error("{op}")]
    Ebpf {
        op: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A lab description is invalid.
    #[error(transparent)]
    Lab(#[from] crate::lab::LabError),
    /// A port spec is invalid.
    #[error(transparent)]
    PortSpec(#[from] crate::ports::PortSpecError),
    /// The request makes no sense in the current state (unknown node, port taken, ...).
    #[error("{0}")]
    Invalid(String),
    /// JSON could not be read or written (a state file, a bench record file, `--json`).
    #[error("{op}")]
    Json {
        op: String,
        #[source]
        source: serde_json::Error,
    },
    /// The embedded eBPF object lacks a map or program netlab needs: a build mismatch.
    #[error("the eBPF object has no {kind} {name} (rebuild with `cargo xtask build-ebpf`)")]
    NotInObject { kind: &'static str, name: String },
    /// A thread netlab started panicked (a bug): what it was doing.
    #[error("a thread {0} panicked")]
    ThreadPanicked(String),
    /// A command that changes or reads the kernel's networking was run without root.
    #[error(
        "root is needed for `{0}`: it works on network namespaces and eBPF programs (try sudo)"
    )]
    NeedsRoot(&'static str),
    /// Drawing a picture (the benchmark's plots, the lab's graph) failed.
    #[error("drawing {what}: {message}")]
    Drawing { what: &'static str, message: String },
    /// A command netlab runs on purpose (iptables-restore) failed.
    #[error("{op}: {stderr}")]
    Command { op: String, stderr: String },
    /// Several independent steps failed (teardown keeps going and reports them all).
    #[error("{}", MultiDisplay(.0))]
    Multi(Vec<Error>),
}

struct MultiDisplay<'a>(&'a [Error]);

impl fmt::Display for MultiDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}", Chain(error))?;
        }
        Ok(())
    }
}

/// An error and its causes on one line, `a: b: c`.
#[derive(Debug)]
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl Error {
    pub fn io(op: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            op: op.into(),
            source,
        }
    }

    pub fn netlink(op: impl Into<String>, source: rtnetlink::Error) -> Self {
        Self::Netlink {
            op: op.into(),
            source,
        }
    }

    pub fn ebpf(
        op: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Ebpf {
            op: op.into(),
            source: Box::new(source),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    pub fn json(op: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Json {
            op: op.into(),
            source,
        }
    }

    /// The result of a joined thread, its panic turned into [`Error::ThreadPanicked`]; `what`
    /// says what the thread was doing ("creating namespace x").
    pub fn joined<T>(result: std::thread::Result<Result<T>>, what: impl Into<String>) -> Result<T> {
        result.unwrap_or_else(|_| Err(Self::ThreadPanicked(what.into())))
    }

    /// Folds a list of errors from independent steps into one result.
    pub fn collect(mut errors: Vec<Error>) -> Result<()> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Self::Multi(errors)),
        }
    }
}

/// Attaches an operation description to foreign errors.
pub trait Context<T> {
    fn op(self, op: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn op(self, op: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::io(op(), source))
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn op(self, op: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|errno| Error::io(op(), std::io::Error::from(errno)))
    }
}

impl<T> Context<T> for std::result::Result<T, rtnetlink::Error> {
    fn op(self, op: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::netlink(op(), source))
    }
}
