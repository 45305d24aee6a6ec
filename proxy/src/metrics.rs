//! Prometheus metrics of the proxy, served on the admin listener's `/metrics`.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

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
}

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
        for c in [
            Box::new(access_log_dropped.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(requests.clone()),
            Box::new(duration.clone()),
            Box::new(upstream_connect.clone()),
            Box::new(config_reloads.clone()),
            Box::new(config_version.clone()),
            Box::new(mirrors.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        Self {
            registry,
            requests,
            duration,
            upstream_connect,
            config_reloads,
            config_version,
            mirrors,
            access_log_dropped,
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
