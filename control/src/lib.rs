//! The Agora control plane: sources (a manifest directory; Kubernetes watchers later) feed one
//! [`Snapshot`]; the pure [`translate`] turns it into proto resources and object statuses;
//! the delta-xDS server ([`xds`]) streams each proxy the resources of its Gateway.

pub mod crd;
pub mod deploy;
pub mod error;
pub mod leader;
pub mod snapshot;
pub mod source;
pub mod status;
pub mod translate;
pub mod xds;

pub use error::{Error, Result};
pub use snapshot::{ObjKey, Snapshot};
pub use translate::{Output, translate};

/// The `spec.controllerName` of GatewayClasses this controller owns.
pub const CONTROLLER_NAME: &str = "agora.dev/gateway-controller";
