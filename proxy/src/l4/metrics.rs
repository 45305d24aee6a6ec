//! Metrics of TCP and TLS connections, registered beside the HTTP ones.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Labels of a finished connection (`listener`, `route` and `backend` are empty when the
/// connection was closed before they were chosen).
pub const CONNECTION_LABELS: [&str; 5] = ["gateway", "listener", "route", "backend", "result"];

pub struct L4Metrics {
    /// Connections by outcome, counted when they close.
    pub connections: IntCounterVec,
    /// Bytes read from (`received`) and written to (`sent`) clients, counted when the
    /// connection closes.
    pub bytes: IntCounterVec,
    /// Connections being proxied.
    pub active: IntGaugeVec,
    /// How long proxied connections lasted.
    pub duration: HistogramVec,
}

impl L4Metrics {
    pub fn new(registry: &Registry) -> Self {
        let connections = IntCounterVec::new(
            Opts::new(
                "agora_l4_connections_total",
                "TCP and TLS connections on TCP/TLS listeners, by outcome",
            ),
            &CONNECTION_LABELS,
        )
        .expect("valid metric");
        let bytes = IntCounterVec::new(
            Opts::new(
                "agora_l4_bytes_total",
                "Bytes received from and sent to clients of TCP/TLS listeners",
            ),
            &["gateway", "listener", "route", "backend", "direction"],
        )
        .expect("valid metric");
        let active = IntGaugeVec::new(
            Opts::new(
                "agora_l4_active_connections",
                "Connections being proxied by TCP/TLS listeners",
            ),
            &["gateway", "listener"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "agora_l4_connection_duration_seconds",
                "Lifetime of proxied TCP/TLS connections",
            )
            .buckets(vec![
                0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
            ]),
            &CONNECTION_LABELS[..4],
        )
        .expect("valid metric");
        for c in [
            Box::new(connections.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(bytes.clone()),
            Box::new(active.clone()),
            Box::new(duration.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        Self {
            connections,
            bytes,
            active,
            duration,
        }
    }
}
