//! Where the snapshot comes from: the Kubernetes API ([`kube`], watchers) or a directory of
//! Kubernetes YAML ([`manifests`]); both fill the same [`Snapshot`](crate::Snapshot).

pub mod kube;
pub(crate) mod l4;
pub mod manifests;
mod pods;

pub(crate) use pods::{lean_pod, ready as pod_ready};

/// Waits for the next burst of change signals to end: returns once `rx` has been quiet for
/// `quiet` after at least one signal; `false` when the senders are gone.
pub(crate) async fn next_burst(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<()>,
    quiet: std::time::Duration,
) -> bool {
    if rx.recv().await.is_none() {
        return false;
    }
    loop {
        match tokio::time::timeout(quiet, rx.recv()).await {
            Ok(Some(())) => continue,
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}
