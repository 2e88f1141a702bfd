//! Prometheus metrics, rendered as text at `/metrics`.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use crate::db::Db;

/// All metrics of one process.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    pool_waiters: IntGauge,
    deliveries: IntCounterVec,
    attempt_latency: prometheus::Histogram,
    queue_depth: IntGauge,
    oldest_due: prometheus::Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("signoff".into()), None).expect("a static prefix is valid");
        let labels = &["route", "method", "status"];
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            labels,
        )
        .expect("static metric definition");
        let http_latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer an HTTP request",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            labels,
        )
        .expect("static metric definition");
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("static metric");
        let deliveries = IntCounterVec::new(
            Opts::new(
                "webhook_attempts_total",
                "Webhook delivery attempts by result (delivered, retry, gone)",
            ),
            &["result"],
        )
        .expect("static metric definition");
        let attempt_latency = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "webhook_attempt_duration_seconds",
                "Time from sending a webhook to its answer",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0,
            ]),
        )
        .expect("static metric definition");
        let m = Self {
            registry,
            http_requests,
            http_latency,
            pool_connections: gauge("db_pool_connections", "Open database connections"),
            pool_idle: gauge("db_pool_idle_connections", "Idle database connections"),
            pool_max: gauge("db_pool_max_connections", "Configured pool size"),
            pool_waiters: gauge("db_pool_waiters", "Callers waiting for a connection"),
            deliveries,
            attempt_latency,
            queue_depth: gauge(
                "webhook_queue_depth",
                "Webhook deliveries waiting to be sent",
            ),
            oldest_due: prometheus::Gauge::new(
                "webhook_oldest_due_seconds",
                "Age of the oldest webhook delivery that is due",
            )
            .expect("static metric"),
        };
        for c in [
            Box::new(m.http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.http_latency.clone()),
            Box::new(m.pool_connections.clone()),
            Box::new(m.pool_idle.clone()),
            Box::new(m.pool_max.clone()),
            Box::new(m.pool_waiters.clone()),
            Box::new(m.deliveries.clone()),
            Box::new(m.attempt_latency.clone()),
            Box::new(m.queue_depth.clone()),
            Box::new(m.oldest_due.clone()),
        ] {
            m.registry.register(c).expect("metric registered once");
        }
        m
    }

    /// The registry, for other components (the worker) to add their own metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn observe_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        let labels = [route, method, status.as_str()];
        self.http_requests.with_label_values(&labels).inc();
        self.http_latency
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one webhook attempt.
    pub fn observe_attempt(&self, verdict: &crate::webhooks::delivery::Verdict, latency_ms: i32) {
        use crate::webhooks::delivery::Verdict;
        let result = match verdict {
            Verdict::Delivered => "delivered",
            Verdict::Retry { .. } => "retry",
            Verdict::Gone => "gone",
        };
        self.deliveries.with_label_values(&[result]).inc();
        self.attempt_latency.observe(latency_ms as f64 / 1000.0);
    }

    /// Sets the webhook queue gauges.
    pub fn set_queue(&self, depth: i64, oldest_due_secs: f64) {
        self.queue_depth.set(depth);
        self.oldest_due.set(oldest_due_secs);
    }

    /// Renders the Prometheus text exposition, refreshing the pool gauges first.
    pub fn render(&self, db: &Db) -> String {
        let (open, idle, waiters) = db.stats();
        self.pool_connections.set(open as i64);
        self.pool_idle.set(idle as i64);
        self.pool_max.set(db.max_size() as i64);
        self.pool_waiters.set(waiters);
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
