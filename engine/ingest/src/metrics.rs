//! Prometheus metrics and the `/metrics`, `/healthz`, `/readyz` endpoints.
//!
//! Labels stay low-cardinality: `tenant` only ever holds a configured
//! tenant id (dead letters without a known tenant count under `_unknown`,
//! since unknown ids come from untrusted input), `reason` a fixed class.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::segment::Counts;

/// The pipeline's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub events: IntCounterVec,
    pub event_bytes: IntCounterVec,
    pub alerts: IntCounterVec,
    pub deadletters: IntCounterVec,
    pub deadletter_reasons: IntCounterVec,
    pub mismatches: IntCounterVec,
    pub files: IntCounterVec,
    pub object_bytes: IntCounter,
    pub flush_seconds: HistogramVec,
    pub flush_errors: IntCounter,
    pub commits: IntCounter,
    pub lag: IntGaugeVec,
    pub inflight_bytes: IntGauge,
    pub paused: IntGauge,
    pub assigned: IntGauge,
    pub control_version: IntGauge,
    pub control_errors: IntCounter,
    pub redelivered: IntCounter,
    pub ready: Arc<AtomicBool>,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    #[allow(clippy::expect_used)] // metric definitions are constants
    pub fn new() -> Metrics {
        let r = Registry::new();
        let object_bytes = IntCounter::new(
            "warden_object_bytes_total",
            "Bytes of Parquet objects written",
        )
        .expect("valid metric");
        r.register(Box::new(object_bytes.clone()))
            .expect("unique metric");
        let flush_errors = IntCounter::new(
            "warden_flush_errors_total",
            "Failed segment writes (retried)",
        )
        .expect("valid metric");
        r.register(Box::new(flush_errors.clone()))
            .expect("unique metric");
        let commits = IntCounter::new("warden_commits_total", "Offset commits to Kafka")
            .expect("valid metric");
        r.register(Box::new(commits.clone()))
            .expect("unique metric");
        let flush_seconds = HistogramVec::new(
            HistogramOpts::new(
                "warden_flush_seconds",
                "Seconds from a segment's first record to its objects being durable (latency), and to write them (write)",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]),
            &["phase"],
        )
        .expect("valid metric");
        r.register(Box::new(flush_seconds.clone()))
            .expect("unique metric");
        let lag = IntGaugeVec::new(
            Opts::new(
                "warden_consumer_lag",
                "Records between the last archived offset and the partition's end",
            ),
            &["topic", "partition"],
        )
        .expect("valid metric");
        r.register(Box::new(lag.clone())).expect("unique metric");
        let redelivered = IntCounter::new(
            "warden_redelivered_records_total",
            "Records a broker delivered again at an offset already read in the same assignment (skipped)",
        )
        .expect("valid metric");
        r.register(Box::new(redelivered.clone()))
            .expect("unique metric");
        let control_errors = IntCounter::new(
            "warden_control_errors_total",
            "Failed reads of the control plane (retried)",
        )
        .expect("valid metric");
        r.register(Box::new(control_errors.clone()))
            .expect("unique metric");
        Metrics {
            events: counter(&r, "warden_events_total", "Events archived", &["tenant"]),
            event_bytes: counter(
                &r,
                "warden_event_bytes_total",
                "Raw event bytes archived",
                &["tenant"],
            ),
            alerts: counter(&r, "warden_alerts_total", "Alerts archived", &["tenant"]),
            deadletters: counter(
                &r,
                "warden_deadletters_total",
                "Records sent to the dead letters",
                &["tenant"],
            ),
            deadletter_reasons: counter(
                &r,
                "warden_deadletter_reasons_total",
                "Dead letters by reason",
                &["reason"],
            ),
            mismatches: counter(
                &r,
                "warden_org_id_mismatch_total",
                "Events whose own org_id differed from their resolved tenant",
                &["tenant"],
            ),
            files: counter(
                &r,
                "warden_files_written_total",
                "Parquet objects written",
                &["table"],
            ),
            object_bytes,
            flush_seconds,
            flush_errors,
            commits,
            control_version: gauge(
                &r,
                "warden_control_version",
                "Control-plane version of the tenants and policies in use (0: a static config)",
            ),
            control_errors,
            redelivered,
            lag,
            inflight_bytes: gauge(
                &r,
                "warden_inflight_bytes",
                "Event bytes buffered or being written",
            ),
            paused: gauge(
                &r,
                "warden_paused",
                "1 while partitions are paused for memory",
            ),
            assigned: gauge(&r, "warden_partitions_assigned", "Assigned partitions"),
            registry: r,
            ready: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Adds a durable segment's counts.
    pub fn add_counts(&self, tenant: Option<&str>, c: &Counts) {
        let t = tenant.unwrap_or("_unknown");
        if c.events > 0 {
            self.events.with_label_values(&[t]).inc_by(c.events);
            self.event_bytes.with_label_values(&[t]).inc_by(c.bytes);
        }
        if c.alerts > 0 {
            self.alerts.with_label_values(&[t]).inc_by(c.alerts);
        }
        if c.deadletters > 0 {
            self.deadletters
                .with_label_values(&[t])
                .inc_by(c.deadletters);
        }
        if c.mismatches > 0 {
            self.mismatches.with_label_values(&[t]).inc_by(c.mismatches);
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
}

/// `/metrics`, `/healthz` (the process runs) and `/readyz` (the store was
/// reachable and the consumer joined its group).
pub fn router(m: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Arc<Metrics>>| async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    m.render(),
                )
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(m): State<Arc<Metrics>>| async move {
                if m.ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ready\n").into_response()
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
                }
            }),
        )
        .with_state(m)
}
