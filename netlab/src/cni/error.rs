//! The CNI error result: `{cniVersion, code, msg, details}` on stdout and a non-zero exit,
//! with the codes the CNI spec reserves (SPEC.md, "Error") and netlab-cni's own from 100.

use serde::Serialize;

use crate::error::Chain;

/// Error codes of the CNI spec, and netlab-cni's own (100 and up).
pub mod code {
    /// The runtime's `cniVersion` is not one the plugin speaks.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// A field of the network configuration is not supported.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// An environment variable is missing or invalid.
    pub const INVALID_ENVIRONMENT: u32 = 4;
    /// A system call, netlink or eBPF operation failed.
    pub const IO_FAILURE: u32 = 5;
    /// The configuration on stdin is not JSON of the expected shape.
    pub const DECODING_FAILURE: u32 = 6;
    /// The network configuration is invalid.
    pub const INVALID_CONFIG: u32 = 7;
    /// STATUS: the plugin cannot serve ADDs now.
    pub const NOT_AVAILABLE: u32 = 50;
    /// A host port is published by another container already.
    pub const PORT_TAKEN: u32 = 100;
    /// CHECK found the container's state missing or different.
    pub const CHECK_FAILED: u32 = 101;
    /// The host namespace serves another network already.
    pub const NAMESPACE_TAKEN: u32 = 102;
}

/// A failed CNI command, as the runtime reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{msg}{}", if details.is_empty() { String::new() } else { format!(": {details}") })]
pub struct CniError {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    pub code: u32,
    pub msg: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    /// An error with `code` and the one-line message `msg`.
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        Self {
            cni_version: String::new(),
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// A netlab error (its whole chain in `msg`), as an I/O failure unless it is a refusal
    /// (`Error::Invalid`), which is
    /// `refusal`.
    pub fn from_netlab(refusal: u32, err: &crate::Error) -> Self {
        let code = if matches!(err, crate::Error::Invalid(_)) {
            refusal
        } else {
            code::IO_FAILURE
        };
        Self::new(code, Chain(err).to_string())
    }

    /// Answers in `version`, the configuration's (the spec wants the error in the version
    /// the runtime asked for).
    #[must_use]
    pub fn in_version(mut self, version: &str) -> Self {
        version.clone_into(&mut self.cni_version);
        self
    }
}
