//! Statuses the translator computes: Kubernetes-shaped conditions for GatewayClasses,
//! Gateways (with listener statuses) and routes (per parent). `lastTransitionTime` is left
//! to the status writer, so translation stays a pure function of the snapshot.

use serde::Serialize;
use serde_json::{Value, json};

/// One object's computed `.status`.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
    pub status: Value,
}

/// A condition; `ok` maps to `"True"` / `"False"`.
pub fn condition(kind: &str, ok: bool, reason: &str, message: &str, generation: i64) -> Value {
    json!({
        "type": kind,
        "status": if ok { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    })
}
