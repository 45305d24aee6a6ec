//! Agora's data plane: a Pingora-based gateway for HTTP (and later LLM, MCP and A2A)
//! traffic. `main.rs` wires the pieces; everything testable lives here.

pub mod a2a;
pub mod access_log;
pub mod admin;
pub mod backend;
pub mod body;
pub mod cloud_auth;
pub mod config;
pub mod error;
pub mod filters;
pub mod gateway;
pub mod health;
pub mod inference;
pub mod ir;
pub mod l4;
pub mod llm;
pub mod mcp;
pub mod metrics;
pub mod mirror;
pub mod policy;
pub mod routing;
pub mod server;
pub mod store;
pub mod watch;
pub mod xds;
