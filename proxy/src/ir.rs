//! The runtime IR: everything a request needs, compiled from proto resources (regexes,
//! route tables, certificates, endpoint sets). Built off the request path by [`build`], then
//! swapped in whole by the [`crate::store::Store`].

mod build;

pub use build::{PortMap, build, build_with};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use agora_proto::resource::Resource;
use bytes::Bytes;

use crate::backend::BackendIr;
use crate::filters::{HeaderModifier, PathRewrite, Redirect};
use crate::routing::RouteTable;
use crate::routing::hostname;

/// A complete, validated configuration.
#[derive(Debug, Default)]
pub struct Ir {
    pub gateway: Arc<str>,
    pub binds: HashMap<u16, Arc<BindIr>>,
    pub backends: HashMap<String, Arc<BackendIr>>,
    /// The resources this IR was built from (for `/config_dump`).
    pub resources: Vec<Arc<Resource>>,
}

/// One listening port and the listeners on it.
#[derive(Debug)]
pub struct BindIr {
    pub key: String,
    pub address: String,
    /// The port the proxy listens on (the Gateway listener's port, or what `--port-map`
    /// maps it to).
    pub port: u16,
    /// The Gateway listener's port, as redirects must name it.
    pub listener_port: u16,
    /// Whether the port terminates TLS (any HTTPS listener on it).
    pub tls: bool,
    pub listeners: ListenerSet,
    /// TCP and TLS listeners (then `listeners` is empty): the port runs the L4 accept loop.
    pub l4: Option<Arc<crate::l4::L4Bind>>,
}

/// The listeners of a bind, found by request host (exact, then longest wildcard, then the
/// listener without hostname).
#[derive(Debug, Default)]
pub struct ListenerSet {
    pub exact: HashMap<String, Arc<ListenerIr>>,
    pub wildcard: Vec<(String, Arc<ListenerIr>)>,
    pub any: Option<Arc<ListenerIr>>,
}

impl ListenerSet {
    pub fn find(&self, host: &str) -> Option<&Arc<ListenerIr>> {
        self.exact
            .get(host)
            .or_else(|| {
                self.wildcard
                    .iter()
                    .find(|(suffix, _)| hostname::wildcard_matches(suffix, host))
                    .map(|(_, l)| l)
            })
            .or(self.any.as_ref())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<ListenerIr>> {
        self.exact
            .values()
            .chain(self.wildcard.iter().map(|(_, l)| l))
            .chain(self.any.iter())
    }
}

/// A Gateway listener with its route table.
#[derive(Debug)]
pub struct ListenerIr {
    pub key: String,
    pub name: String,
    pub gateway: String,
    pub hostname: String,
    pub https: bool,
    pub port: u16,
    pub cert: Option<Arc<rustls::sign::CertifiedKey>>,
    pub routes: RouteTable,
}

/// One route rule: what to do with a request once it matched.
#[derive(Debug)]
pub struct RuleIr {
    pub key: String,
    /// `namespace/name` of the route, and the rule's name (or index).
    pub route_name: String,
    pub rule_name: String,
    pub rule_index: u32,
    pub creation_timestamp: i64,
    pub filters: Vec<FilterIr>,
    pub backends: Vec<BackendChoice>,
    pub total_weight: u32,
    pub request_timeout: Option<Duration>,
    pub backend_timeout: Option<Duration>,
    pub retry: Option<RetryIr>,
    /// Effective request body limit in bytes.
    pub max_body: u64,
    pub buffer_body: bool,
    /// Policies of the gateway, listener and route (for answers the rule gives itself).
    pub policies: Arc<agora_policies::Effective>,
}

/// A compiled route filter.
#[derive(Debug, Clone)]
pub enum FilterIr {
    RequestHeaders(HeaderModifier),
    ResponseHeaders(HeaderModifier),
    Rewrite {
        hostname: Option<String>,
        path: Option<PathRewrite>,
    },
    Redirect(Redirect),
    Mirror {
        backend: Arc<BackendIr>,
        /// 0.0..=1.0
        fraction: f64,
    },
    Direct {
        status: u16,
        body: Bytes,
        content_type: Option<String>,
    },
}

/// One weighted backend reference of a rule.
#[derive(Debug)]
pub struct BackendChoice {
    /// `Err` holds why the reference is invalid; choosing it answers 500.
    pub backend: Result<Arc<BackendIr>, String>,
    pub weight: u32,
    pub filters: Vec<FilterIr>,
    /// The rule's policies merged with the backend's.
    pub policies: Arc<agora_policies::Effective>,
}

#[derive(Debug, Clone)]
pub struct RetryIr {
    pub attempts: u32,
    pub codes: Vec<u16>,
    pub backoff: Duration,
}

/// Default request body limit when neither route nor proxy sets one: 32 MiB (agents send
/// large contexts).
pub const DEFAULT_MAX_BODY: u64 = 32 * 1024 * 1024;
