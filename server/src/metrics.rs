//! Prometheus metrics, served at `/metrics`: request counts and latencies by route
//! template (never by raw path, so ids do not explode the label set).

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    /// Global controller: each region's health (2 healthy, 1 degraded, 0 unreachable).
    pub region_health: IntGaugeVec,
    /// Global controller: seconds since each region last answered a health check.
    pub region_last_seen: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("basalt".into()), None).expect("static prefix");
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route template and status"),
            &["method", "route", "status"],
        )
        .expect("static metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route template"),
            &["method", "route"],
        )
        .expect("static metric");
        registry.register(Box::new(requests.clone())).expect("registered once");
        let region_health = IntGaugeVec::new(
            Opts::new("region_health", "Region health at the global controller: 2 healthy, 1 degraded, 0 unreachable"),
            &["region"],
        )
        .expect("static metric");
        let region_last_seen = IntGaugeVec::new(
            Opts::new("region_last_seen_timestamp_seconds", "When each region last answered a health check"),
            &["region"],
        )
        .expect("static metric");
        registry.register(Box::new(latency.clone())).expect("registered once");
        registry.register(Box::new(region_health.clone())).expect("registered once");
        registry.register(Box::new(region_last_seen.clone())).expect("registered once");
        Metrics { registry, requests, latency, region_health, region_last_seen }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
