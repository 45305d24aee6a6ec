//! InferencePool backends (Gateway API Inference Extension): before a request goes upstream,
//! the pool's endpoint picker (EPP) is asked over Envoy's ext_proc API which model server
//! takes it ([`ext_proc`]); the answer is checked against the pool and turned into a
//! [`Verdict`]. Nothing here knows Pingora: the gateway glue (`gateway/inference.rs`) reads the
//! body, calls [`PickerIr::pick`] and applies the verdict.

pub mod ext_proc;

use std::net::SocketAddr;
use std::time::Duration;

use agora_proto::resource as pb;
use tonic::transport::{Channel, Endpoint};

pub use ext_proc::{Answer, HeaderSet, Immediate, Mutation, PickRequest, Picked, SetAction};

/// Bound on one picker call when the resource sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool's endpoint picker, ready to call.
#[derive(Debug, Clone)]
pub struct PickerIr {
    /// `http://host:port` (plaintext HTTP/2).
    pub url: String,
    pub fail_open: bool,
    pub timeout: Duration,
}

impl PickerIr {
    /// From the resource; `Err` names what is wrong (for the config rejection).
    pub fn new(p: &pb::EndpointPicker) -> Result<Self, String> {
        if p.host.is_empty() {
            return Err("picker.host is required".into());
        }
        let port = u16::try_from(p.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or("picker.port must be 1..=65535")?;
        let host = if p.host.contains(':') && !p.host.starts_with('[') {
            format!("[{}]", p.host)
        } else {
            p.host.clone()
        };
        let url = format!("http://{host}:{port}");
        Endpoint::from_shared(url.clone()).map_err(|e| format!("picker address {url}: {e}"))?;
        Ok(Self {
            url,
            fail_open: p.fail_open,
            timeout: p
                .timeout
                .map(Into::into)
                .filter(|t: &Duration| !t.is_zero())
                .unwrap_or(DEFAULT_TIMEOUT),
        })
    }

    /// Asks the picker about one request (on a channel shared by every request to it).
    pub async fn pick(&self, req: PickRequest<'_>) -> Result<Answer, String> {
        let channel = channel(&self.url)?;
        ext_proc::call(channel, self.timeout, req).await
    }
}

/// One lazily connected channel per picker address, shared by every request and config
/// (in the same cache as the policies' gRPC callouts).
fn channel(url: &str) -> Result<Channel, String> {
    crate::policy::callout::grpc::shared_channel(url, || {
        Ok(Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("{url}: {e}"))?
            .connect_timeout(Duration::from_secs(2))
            .http2_keep_alive_interval(Duration::from_secs(30)))
    })
}

/// What to do with a request after asking the picker.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Send it to these pool endpoints, in order (the first; the next ones on retries), with
    /// the picker's changes.
    Route {
        endpoints: Vec<SocketAddr>,
        mutation: Mutation,
    },
    /// Answer the client with the picker's response.
    Respond(Immediate),
    /// The picker failed and the pool fails open: any pool endpoint serves.
    AnyEndpoint(String),
    /// The picker failed and the pool fails closed: 503.
    Refuse(String),
}

impl Verdict {
    /// The metric label of the outcome.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Route { .. } => "picked",
            Verdict::Respond(_) => "immediate_response",
            Verdict::AnyEndpoint(_) => "failed_open",
            Verdict::Refuse(_) => "failed_closed",
        }
    }
}

/// Turns the picker's answer into a verdict: the destinations it names are kept when they
/// belong to the pool (`in_pool`), in order; an answer with none of them, or no answer, is a
/// failure, which `fail_open` decides.
pub fn verdict(
    answer: Result<Answer, String>,
    in_pool: impl Fn(&SocketAddr) -> bool,
    fail_open: bool,
) -> Verdict {
    let failed = |why: String| {
        if fail_open {
            Verdict::AnyEndpoint(why)
        } else {
            Verdict::Refuse(why)
        }
    };
    let picked = match answer {
        Ok(Answer::Immediate(i)) => return Verdict::Respond(i),
        Ok(Answer::Picked(p)) => p,
        Err(e) => return failed(format!("endpoint picker unavailable: {e}")),
    };
    let Some(dest) = picked.destination.as_deref() else {
        return failed("endpoint picker named no endpoint".into());
    };
    let endpoints: Vec<SocketAddr> = parse_endpoints(dest)
        .into_iter()
        .filter(|a| in_pool(a))
        .collect();
    if endpoints.is_empty() {
        return failed(format!(
            "endpoint picker chose {dest:?}, which is not an endpoint of the pool"
        ));
    }
    Verdict::Route {
        endpoints,
        mutation: picked.mutation,
    }
}

/// `agora_inference_picker_requests_total{gateway, backend, result}`: endpoint picker calls
/// by outcome (`picked`, `immediate_response`, `failed_open`, `failed_closed`), registered in
/// `registry`.
pub fn picks_metric(registry: &prometheus::Registry) -> prometheus::IntCounterVec {
    let c = prometheus::IntCounterVec::new(
        prometheus::Opts::new(
            "agora_inference_picker_requests_total",
            "InferencePool endpoint picker calls, by outcome",
        ),
        &["gateway", "backend", "result"],
    )
    .expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

/// The endpoints of a destination value: `ip:port` (IPv6 as `[ip]:port`), comma-separated,
/// in order, without duplicates; entries that are not an address are skipped.
pub fn parse_endpoints(v: &str) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in v.split(',').map(str::trim).filter_map(|s| s.parse().ok()) {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests;
