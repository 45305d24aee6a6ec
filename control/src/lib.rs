//! The Agora control plane.
//!
//! This crate will hold the Kubernetes and manifest-directory sources feeding one snapshot,
//! the pure `translate(&Snapshot) -> (resources, statuses)` function, the delta-xDS server,
//! the status writer and the deployer, plus the `agora-controller` binary. Its contents
//! arrive with the control-plane issue.
