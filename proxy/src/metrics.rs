//! Prometheus metrics of the proxy, served on the admin listener's `/metrics`.

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Label values of one request, in the order of [`REQUEST_LABELS`].
pub const REQUEST_LABELS: [&str; 6] = [
    "gateway", "listener", "route", "backend", "method", "status",
];

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub upstream_connect: HistogramVec,
    pub config_reloads: IntCounterVec,
    pub config_version: IntGauge,
    pub mirrors: IntCounterVec,
    access_log_dropped: IntGauge,
    pub gen_ai_tokens: HistogramVec,
    pub gen_ai_duration: HistogramVec,
    pub gen_ai_ttft: HistogramVec,
    pub gen_ai_tpot: HistogramVec,
    /// Requests a policy refused, by reason.
    pub policy_denials: IntCounterVec,
    /// Prompt guard outcomes (masked, rejected), by direction.
    pub prompt_guard: IntCounterVec,
    /// Latest spend seen per budget subject.
    pub budget_tokens: IntGaugeVec,
    pub budget_cost: GaugeVec,
    /// A2A calls by method.
    pub a2a_requests: IntCounterVec,
    /// MCP messages by method, resource type, target (server) and resource name.
    pub mcp_requests: IntCounterVec,
    /// Time to answer an MCP request, by method and target.
    pub mcp_duration: HistogramVec,
    /// InferencePool endpoint picker calls, by outcome.
    pub inference_picks: IntCounterVec,
    /// TCP and TLS connections (TCP/TLS listeners).
    pub l4: crate::l4::L4Metrics,
}

/// Labels of the GenAI metrics (OpenTelemetry GenAI semantic conventions, plus ours).
pub const GEN_AI_LABELS: [&str; 7] = [
    "gen_ai_system",
    "gen_ai_operation_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
    "gateway",
    "route",
    "backend",
];

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("agora_requests_total", "HTTP requests served, by outcome"),
            &REQUEST_LABELS,
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "agora_request_duration_seconds",
                "Time from request start to the end of the response",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0,
            ]),
            &REQUEST_LABELS[..5],
        )
        .expect("valid metric");
        let upstream_connect = HistogramVec::new(
            HistogramOpts::new(
                "agora_upstream_connect_duration_seconds",
                "Time to establish a new upstream connection (pooled reuse excluded)",
            )
            .buckets(vec![
                0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
            ]),
            &["backend"],
        )
        .expect("valid metric");
        let config_reloads = IntCounterVec::new(
            Opts::new("agora_config_updates_total", "Config updates, by result"),
            &["result"],
        )
        .expect("valid metric");
        let config_version = IntGauge::new("agora_config_version", "Version of the active config")
            .expect("valid metric");
        let mirrors = IntCounterVec::new(
            Opts::new(
                "agora_mirror_requests_total",
                "Mirrored requests, by result",
            ),
            &["backend", "result"],
        )
        .expect("valid metric");
        let access_log_dropped = IntGauge::new(
            "agora_access_log_dropped_lines",
            "Access log lines dropped because stdout could not keep up",
        )
        .expect("valid metric");
        let mut token_labels = vec!["gen_ai_token_type"];
        token_labels.extend_from_slice(&GEN_AI_LABELS);
        let gen_ai_tokens = HistogramVec::new(
            HistogramOpts::new(
                "agora_gen_ai_client_token_usage",
                "Tokens used per LLM request, by token type",
            )
            .buckets(prometheus::exponential_buckets(1.0, 4.0, 14).expect("buckets")),
            &token_labels,
        )
        .expect("valid metric");
        let seconds = |name: &str, help: &str, buckets: Vec<f64>| {
            HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets),
                &GEN_AI_LABELS,
            )
            .expect("valid metric")
        };
        let gen_ai_duration = seconds(
            "agora_gen_ai_server_request_duration",
            "LLM request duration in seconds",
            vec![
                0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96,
                81.92,
            ],
        );
        let gen_ai_ttft = seconds(
            "agora_gen_ai_server_time_to_first_token",
            "Time to the first output token in seconds",
            vec![
                0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                7.5, 10.0,
            ],
        );
        let gen_ai_tpot = seconds(
            "agora_gen_ai_server_time_per_output_token",
            "Time per output token after the first, in seconds",
            vec![
                0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
            ],
        );
        let policy_denials = IntCounterVec::new(
            Opts::new(
                "agora_policy_denials_total",
                "Requests refused by a policy, by reason",
            ),
            &["gateway", "route", "reason"],
        )
        .expect("valid metric");
        let prompt_guard = IntCounterVec::new(
            Opts::new("agora_prompt_guard_total", "Prompt guard outcomes"),
            &["gateway", "route", "direction", "outcome"],
        )
        .expect("valid metric");
        let budget_tokens = IntGaugeVec::new(
            Opts::new(
                "agora_budget_spend_tokens",
                "Tokens spent in the current budget window",
            ),
            &["policy", "subject"],
        )
        .expect("valid metric");
        let budget_cost = GaugeVec::new(
            Opts::new(
                "agora_budget_spend_usd",
                "USD spent in the current budget window",
            ),
            &["policy", "subject"],
        )
        .expect("valid metric");
        let a2a_requests = IntCounterVec::new(
            Opts::new(
                "agora_a2a_requests_total",
                "A2A requests, by JSON-RPC method",
            ),
            &["gateway", "route", "backend", "method", "status"],
        )
        .expect("valid metric");
        let mcp_requests = IntCounterVec::new(
            Opts::new(
                "agora_mcp_requests_total",
                "MCP messages, by method, resource type, server (target) and resource name",
            ),
            &[
                "gateway",
                "route",
                "method",
                "resource_type",
                "server",
                "resource",
            ],
        )
        .expect("valid metric");
        let mcp_duration = HistogramVec::new(
            HistogramOpts::new(
                "agora_mcp_request_duration_seconds",
                "Time to answer an MCP request (a streamed answer: until its end)",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0, 300.0,
            ]),
            &["gateway", "route", "method", "server"],
        )
        .expect("valid metric");
        for c in [
            Box::new(a2a_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(mcp_requests.clone()),
            Box::new(mcp_duration.clone()),
            Box::new(policy_denials.clone()),
            Box::new(prompt_guard.clone()),
            Box::new(budget_tokens.clone()),
            Box::new(budget_cost.clone()),
            Box::new(gen_ai_tokens.clone()),
            Box::new(gen_ai_duration.clone()),
            Box::new(gen_ai_ttft.clone()),
            Box::new(gen_ai_tpot.clone()),
            Box::new(access_log_dropped.clone()),
            Box::new(requests.clone()),
            Box::new(duration.clone()),
            Box::new(upstream_connect.clone()),
            Box::new(config_reloads.clone()),
            Box::new(config_version.clone()),
            Box::new(mirrors.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        let inference_picks = crate::inference::picks_metric(&registry);
        let l4 = crate::l4::L4Metrics::new(&registry);
        Self {
            inference_picks,
            registry,
            requests,
            duration,
            upstream_connect,
            config_reloads,
            config_version,
            mirrors,
            access_log_dropped,
            gen_ai_tokens,
            gen_ai_duration,
            gen_ai_ttft,
            gen_ai_tpot,
            policy_denials,
            prompt_guard,
            budget_tokens,
            budget_cost,
            a2a_requests,
            mcp_requests,
            mcp_duration,
            l4,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        self.access_log_dropped
            .set(i64::try_from(crate::access_log::dropped()).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
