//! MCP: a virtual server in front of several MCP servers (targets), and passthrough with
//! session affinity for a single replicated one. Nothing here knows Pingora; the glue is
//! `gateway/mcp.rs`.
//!
//! - [`jsonrpc`]: messages as JSON values; [`names`]: prefixed names and cursors;
//! - [`session`]: sealed session ids (any replica with the key resumes a session);
//! - [`target`]: the client side, over Streamable HTTP, legacy SSE or stdio;
//! - [`server`]: the server side: fan-out, merging, routing, relaying.

pub mod jsonrpc;
pub mod names;
pub mod server;
pub mod session;
pub mod target;

use std::net::ToSocketAddrs;

use agora_proto::resource as pb;

use self::names::Naming;
use self::target::{TargetIr, TargetKind};
use crate::error::{Error, Result};

/// Locks a mutex of the MCP tables; a panic elsewhere does not poison them for good.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A virtual MCP server, compiled.
#[derive(Debug)]
pub struct McpIr {
    pub targets: Vec<TargetIr>,
    pub naming: Naming,
    pub stateless: bool,
    pub fail_open: bool,
}

impl McpIr {
    /// Builds from the proto, resolving static hosts (off the request path). A host that
    /// does not resolve yet is tried by name at request time.
    pub fn build(key: &str, m: &pb::McpBackend) -> Result<McpIr> {
        use pb::mcp_backend::{FailureMode, PrefixMode, SessionRouting};
        if m.targets.is_empty() {
            return Err(Error::invalid(
                format!("{key}.mcp.targets"),
                "an MCP backend needs at least one target",
            ));
        }
        let mut targets = Vec::with_capacity(m.targets.len());
        for (i, t) in m.targets.iter().enumerate() {
            let at = format!("{key}.mcp.targets[{i}]");
            let kind = match &t.kind {
                Some(pb::mcp_target::Kind::Static(s)) => {
                    let port = u16::try_from(s.port)
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| Error::invalid(format!("{at}.port"), "1..=65535"))?;
                    let host = s.host.trim_matches(['[', ']']);
                    let addrs = if s.tls {
                        Vec::new()
                    } else {
                        match (host, port).to_socket_addrs() {
                            Ok(a) => {
                                let mut a: Vec<_> = a.collect();
                                if a.iter().any(std::net::SocketAddr::is_ipv4) {
                                    a.retain(std::net::SocketAddr::is_ipv4);
                                }
                                a.sort();
                                a.dedup();
                                a
                            }
                            Err(e) => {
                                tracing::warn!(field = %at, error = %e, "MCP target host does not resolve now");
                                Vec::new()
                            }
                        }
                    };
                    let authority = if host.contains(':') {
                        format!("[{host}]:{port}")
                    } else {
                        format!("{host}:{port}")
                    };
                    TargetKind::Http {
                        addrs,
                        authority,
                        path: if s.path.is_empty() {
                            "/mcp".into()
                        } else {
                            s.path.clone()
                        },
                        tls: s.tls,
                        sse: s.protocol == pb::mcp_static_target::Protocol::Sse as i32,
                    }
                }
                Some(pb::mcp_target::Kind::Stdio(s)) => TargetKind::Stdio {
                    cmd: s.cmd.clone(),
                    args: s.args.clone(),
                    env: s.env.clone(),
                },
                None => return Err(Error::invalid(at, "a target needs static or stdio")),
            };
            targets.push(TargetIr {
                name: t.name.clone(),
                kind,
            });
        }
        let prefix = match PrefixMode::try_from(m.prefix_mode).unwrap_or(PrefixMode::Conditional) {
            PrefixMode::Always => true,
            PrefixMode::Never => false,
            PrefixMode::Conditional => targets.len() > 1,
        };
        let names = targets.iter().map(|t| t.name.clone()).collect();
        Ok(McpIr {
            targets,
            naming: Naming::new(prefix, names),
            stateless: m.session_routing == SessionRouting::Stateless as i32,
            fail_open: m.failure_mode == FailureMode::FailOpen as i32,
        })
    }
}
