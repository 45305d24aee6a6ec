//! Where the snapshot comes from: the Kubernetes API ([`kube`], watchers) or a directory of
//! Kubernetes YAML ([`manifests`]); both fill the same [`Snapshot`](crate::Snapshot).

pub mod kube;
pub mod manifests;
