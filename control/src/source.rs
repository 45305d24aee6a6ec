//! Where the snapshot comes from: a directory of Kubernetes YAML ([`manifests`]); the
//! Kubernetes API watchers join later and fill the same [`Snapshot`](crate::Snapshot).

pub mod manifests;
