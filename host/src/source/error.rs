//! The source's errors: one variant per step that can fail.

use std::path::PathBuf;

use kube::config::{InferConfigError, KubeconfigError};

use crate::change::Gvk;

/// What went wrong in the source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig file could not be read or parsed.
    #[error("reading kubeconfig {}", path.display())]
    ReadKubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: KubeconfigError,
    },

    /// The kubeconfig was read but does not make a usable client config.
    #[error("loading kubeconfig {}", path.display())]
    LoadKubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: KubeconfigError,
    },

    /// Neither `KUBECONFIG`, `~/.kube/config` nor the in-cluster service account
    /// gave a config.
    #[error("finding cluster config (KUBECONFIG, ~/.kube/config or in-cluster)")]
    InferConfig(#[source] InferConfigError),

    /// The client could not be built from the config (TLS, certificates, proxy).
    #[error("building the kube client")]
    BuildClient(#[source] kube::Error),

    /// Discovery (`/api`, `/apis`) failed.
    #[error("discovering the server's resource types")]
    Discovery(#[source] kube::Error),

    /// Discovery did not answer in time.
    #[error("discovery did not answer within {0:?}")]
    DiscoveryTimeout(std::time::Duration),

    /// A watch spec is invalid.
    #[error("watch {id}: {reason}")]
    InvalidSpec {
        /// The watch id.
        id: String,
        /// What is wrong, naming the field.
        reason: String,
    },

    /// A watch with this id already exists.
    #[error("watch {id} already exists; give the new one another `name`")]
    Duplicate {
        /// The watch id.
        id: String,
    },

    /// No watch has this id.
    #[error("no watch {id}")]
    UnknownWatch {
        /// The watch id.
        id: String,
    },

    /// The type exists but the server does not offer list and watch on it.
    #[error("{gvk} cannot be watched: the server does not allow list and watch on it")]
    NotWatchable {
        /// The resolved type.
        gvk: Gvk,
    },

    /// Namespaces were given for a cluster-scoped type.
    #[error("{gvk} is cluster-scoped: `namespaces` does not apply to it")]
    ClusterScoped {
        /// The resolved type.
        gvk: Gvk,
    },
}

/// `Result` with the source's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
