//! `endpointPicker` on a local-config backend: its endpoints become an inference pool whose
//! picker (an ext_proc gRPC service, as an InferencePool's) chooses one per request.

use agora_proto::resource as pb;

use super::convert::opt_duration;
use super::schema::EndpointPickerConfig;
use crate::error::{Error, Result};

/// The pool backend kind of `endpoints` with the picker `p` (`at` names the picker field).
pub(super) fn pool(
    p: &EndpointPickerConfig,
    endpoints: Vec<pb::Endpoint>,
    at: &str,
) -> Result<pb::backend::Kind> {
    let fail_open = match p.failure_mode.as_deref() {
        None | Some("FailClose") => false,
        Some("FailOpen") => true,
        Some(other) => {
            return Err(Error::invalid(
                format!("{at}.failureMode"),
                format!("{other:?} is not FailOpen or FailClose"),
            ));
        }
    };
    if p.host.is_empty() || p.port == 0 {
        return Err(Error::invalid(at, "host and port (1..=65535) are required"));
    }
    Ok(pb::backend::Kind::InferencePool(pb::InferencePoolBackend {
        endpoints,
        picker: Some(pb::EndpointPicker {
            host: p.host.clone(),
            port: p.port.into(),
            fail_open,
            timeout: opt_duration(&p.timeout, &format!("{at}.timeout"))?,
        }),
    }))
}
