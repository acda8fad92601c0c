//! Cluster access: a `kube::Client` from a kubeconfig, `KUBECONFIG` or the in-cluster
//! service account, with whatever credentials kube supports (bearer token, token file,
//! client certificate, exec plugins).

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::error::{Error, Result};

/// A client for the cluster.
///
/// With `kubeconfig`, that file's current context. Without, kube's inference:
/// `KUBECONFIG` (a list of files is merged), then `~/.kube/config`, then the in-cluster
/// service account (token and CA under `/var/run/secrets/kubernetes.io/serviceaccount`).
///
/// # Errors
/// [`Error::ReadKubeconfig`], [`Error::LoadKubeconfig`], [`Error::InferConfig`] or
/// [`Error::BuildClient`].
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client> {
    client_with_context(kubeconfig, None).await
}

/// Like [`client`], with a kubeconfig context other than the current one.
///
/// # Errors
/// As [`client`].
pub(super) async fn client_with_context(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Client> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|source| Error::ReadKubeconfig {
                path: path.to_path_buf(),
                source,
            })?;
            Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|source| Error::LoadKubeconfig {
                    path: path.to_path_buf(),
                    source,
                })?
        }
        None if context.is_some() => {
            Config::from_kubeconfig(&options)
                .await
                .map_err(|source| Error::LoadKubeconfig {
                    path: "$KUBECONFIG".into(),
                    source,
                })?
        }
        None => Config::infer().await.map_err(Error::InferConfig)?,
    };
    Client::try_from(config).map_err(Error::BuildClient)
}
