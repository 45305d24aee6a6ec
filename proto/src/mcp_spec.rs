//! The `mcp` section of an AgentgatewayBackend, as users write it (local config and CRD
//! alike), and its conversion into [`McpBackend`](crate::resource::McpBackend).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resource as pb;

/// MCP servers multiplexed behind one endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpSpec {
    #[serde(default)]
    pub targets: Vec<McpTargetSpec>,
    /// `Stateful` (default): the client's session id seals each target's session.
    /// `Stateless`: every request opens and closes its own target sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_routing: Option<SessionRouting>,
    /// `Conditional` (default: prefix names with `<target>_` when there are several targets),
    /// `Always`, `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_mode: Option<PrefixMode>,
    /// `FailClosed` (default) or `FailOpen` (an unreachable target is left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode: Option<FailureMode>,
}

/// One MCP server: a static address or a local process.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpTargetSpec {
    pub name: String,
    #[serde(default, rename = "static", skip_serializing_if = "Option::is_none")]
    pub static_: Option<McpStaticSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdio: Option<McpStdioSpec>,
    /// Services picked by label (not served yet: reported on the backend's status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(schema_with = "open_object"))]
    pub selector: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpStaticSpec {
    pub host: String,
    pub port: u16,
    /// Default `/mcp` (Streamable HTTP) or `/sse` (SSE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `StreamableHTTP` (default) or `SSE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<McpProtocol>,
    /// Speak HTTPS to the server.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpStdioSpec {
    pub cmd: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum McpProtocol {
    #[serde(rename = "StreamableHTTP")]
    StreamableHttp,
    #[serde(rename = "SSE")]
    Sse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum SessionRouting {
    Stateful,
    Stateless,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum PrefixMode {
    Always,
    Conditional,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum FailureMode {
    FailClosed,
    FailOpen,
}

#[cfg(feature = "schema")]
fn open_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

/// A spec field that does not convert, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

impl SpecError {
    fn new(field: String, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl McpSpec {
    /// Validates and converts; errors name the field under `at` (e.g. `spec.mcp`).
    pub fn to_proto(&self, at: &str) -> Result<pb::McpBackend, SpecError> {
        if self.targets.is_empty() {
            return Err(SpecError::new(
                format!("{at}.targets"),
                "an MCP backend needs at least one target",
            ));
        }
        let mut targets = Vec::with_capacity(self.targets.len());
        for (i, t) in self.targets.iter().enumerate() {
            let here = format!("{at}.targets[{i}]");
            if !valid_name(&t.name) {
                return Err(SpecError::new(
                    format!("{here}.name"),
                    format!(
                        "{:?} must be lowercase letters, digits and '-' (it prefixes tool names \
                         and resource URIs)",
                        t.name
                    ),
                ));
            }
            if self.targets[..i].iter().any(|o| o.name == t.name) {
                return Err(SpecError::new(
                    format!("{here}.name"),
                    format!("duplicate target name {:?}", t.name),
                ));
            }
            let kind = match (&t.static_, &t.stdio, &t.selector) {
                (Some(s), None, None) => {
                    if s.host.is_empty() || s.port == 0 {
                        return Err(SpecError::new(
                            format!("{here}.static"),
                            "host and port (1..=65535) are required",
                        ));
                    }
                    let protocol = s.protocol.unwrap_or(McpProtocol::StreamableHttp);
                    let path = match &s.path {
                        Some(p) if !p.starts_with('/') => {
                            return Err(SpecError::new(
                                format!("{here}.static.path"),
                                "must start with '/'",
                            ));
                        }
                        Some(p) => p.clone(),
                        None if protocol == McpProtocol::Sse => "/sse".into(),
                        None => "/mcp".into(),
                    };
                    pb::mcp_target::Kind::Static(pb::McpStaticTarget {
                        host: s.host.clone(),
                        port: s.port.into(),
                        path,
                        protocol: match protocol {
                            McpProtocol::StreamableHttp => {
                                pb::mcp_static_target::Protocol::StreamableHttp
                            }
                            McpProtocol::Sse => pb::mcp_static_target::Protocol::Sse,
                        } as i32,
                        tls: s.tls,
                    })
                }
                (None, Some(s), None) => {
                    if s.cmd.is_empty() {
                        return Err(SpecError::new(format!("{here}.stdio.cmd"), "required"));
                    }
                    pb::mcp_target::Kind::Stdio(pb::McpStdioTarget {
                        cmd: s.cmd.clone(),
                        args: s.args.clone(),
                        env: s.env.clone(),
                    })
                }
                (None, None, Some(_)) => {
                    return Err(SpecError::new(
                        format!("{here}.selector"),
                        "label-selected targets are not supported yet; use static with the \
                         Service's cluster name",
                    ));
                }
                _ => return Err(SpecError::new(here, "set exactly one of static, stdio")),
            };
            targets.push(pb::McpTarget {
                name: t.name.clone(),
                kind: Some(kind),
            });
        }
        use pb::mcp_backend::{FailureMode as F, PrefixMode as P, SessionRouting as S};
        Ok(pb::McpBackend {
            targets,
            session_routing: match self.session_routing {
                Some(SessionRouting::Stateless) => S::Stateless,
                _ => S::Stateful,
            } as i32,
            prefix_mode: match self.prefix_mode {
                Some(PrefixMode::Always) => P::Always,
                Some(PrefixMode::Never) => P::Never,
                _ => P::Conditional,
            } as i32,
            failure_mode: match self.failure_mode {
                Some(FailureMode::FailOpen) => F::FailOpen,
                _ => F::FailClosed,
            } as i32,
        })
    }
}

/// Target names prefix tool names (`name_tool`) and URI schemes (`name+scheme:`), so they
/// keep to what both allow.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 63
        && n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml_targets: Vec<McpTargetSpec>) -> McpSpec {
        McpSpec {
            targets: yaml_targets,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_errors_name_the_field() {
        let t = McpTargetSpec {
            name: "docs".into(),
            static_: Some(McpStaticSpec {
                host: "docs".into(),
                port: 8080,
                protocol: Some(McpProtocol::Sse),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pb = spec(vec![t.clone()]).to_proto("spec.mcp").expect("valid");
        let Some(pb::mcp_target::Kind::Static(s)) = &pb.targets[0].kind else {
            panic!("static target expected");
        };
        assert_eq!(s.path, "/sse");
        let e = spec(vec![t.clone(), t.clone()])
            .to_proto("spec.mcp")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("spec.mcp.targets[1].name: duplicate"), "{e}");
        let bad = McpTargetSpec {
            name: "Docs_1".into(),
            ..t.clone()
        };
        let e = spec(vec![bad])
            .to_proto("spec.mcp")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("spec.mcp.targets[0].name"), "{e}");
        let none = McpTargetSpec {
            name: "x".into(),
            ..Default::default()
        };
        let e = spec(vec![none])
            .to_proto("spec.mcp")
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly one of static, stdio"), "{e}");
        assert!(spec(vec![]).to_proto("spec.mcp").is_err());
    }
}
