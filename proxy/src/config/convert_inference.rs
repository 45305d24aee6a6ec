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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::backend::StateRegistry;
    use crate::config::load_str;

    const CONFIG: &str = r#"
binds:
- port: 8080
  listeners:
  - routes:
    - backendRefs: [{name: vllm}]
backends:
- name: vllm
  endpoints: [{host: 127.0.0.1, port: 8000}, {host: 127.0.0.1, port: 8001}]
  endpointPicker: {host: 127.0.0.1, port: 9002, failureMode: FailOpen, timeout: 2s}
"#;

    #[test]
    fn a_backend_with_a_picker_is_an_inference_pool() {
        let loaded = load_str(CONFIG, Path::new(".")).unwrap();
        let ir = crate::ir::build("local", loaded.resources, &StateRegistry::default()).unwrap();
        let b = &ir.backends["backend/vllm"];
        assert_eq!(b.endpoints.len(), 2);
        let p = b.inference.as_ref().expect("a picker");
        assert_eq!(p.url, "http://127.0.0.1:9002");
        assert!(p.fail_open);
        assert_eq!(p.timeout, Duration::from_secs(2));
    }

    #[test]
    fn a_bad_failure_mode_names_its_field() {
        let text = CONFIG.replace("FailOpen", "Sometimes");
        let e = load_str(&text, Path::new(".")).unwrap_err().to_string();
        assert!(e.contains("backends[0].endpointPicker.failureMode"), "{e}");
    }
}
