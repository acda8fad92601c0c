//! What can go wrong with leader election: its config, joining the
//! election, and writing the delivered watermark.

/// An `ha:` field that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ConfigError {
    /// `leaseDuration` under 2s.
    #[error("leaseDuration: at least 2s")]
    LeaseDuration,
    /// `grace` under 1s, or not under `leaseDuration`.
    #[error("grace: at least 1s and less than leaseDuration")]
    Grace,
    /// `replayWindow: 0`.
    #[error("replayWindow: at least 1")]
    ReplayWindow,
    /// `replayBytes` under 1MiB.
    #[error("replayBytes: at least 1MiB")]
    ReplayBytes,
}

/// Leader election failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum Error {
    /// The lease manager could not be built (the Lease cannot be read or
    /// created).
    #[error("ha: joining the election on Lease {lease}")]
    Join {
        /// `namespace/name`.
        lease: String,
        /// Why.
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },
    /// The watermark annotation could not be written.
    #[error("writing the delivered watermark on Lease {lease}")]
    WriteWatermark {
        /// The Lease's name.
        lease: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
}

/// Leader election's results.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
