//! Prometheus metrics, rendered as text at `/metrics`.

use std::time::Duration;

use std::sync::Mutex;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
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
    read_lanes: IntGauge,
    reads_waiting: IntGauge,
    deliveries: IntCounterVec,
    action_attempts: IntCounterVec,
    attempt_latency: prometheus::Histogram,
    queue_depth: IntGauge,
    oldest_due: prometheus::Gauge,
    in_flight: IntGauge,
    loop_up: IntGaugeVec,
    loop_failures: IntCounterVec,
    /// The worker loops this process runs; `/readyz` fails while one of them is down.
    expected_loops: Mutex<Vec<&'static str>>,
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
        let action_attempts = IntCounterVec::new(
            Opts::new(
                "host_action_attempts_total",
                "Host action requests sent, by result (delivered, retry, gone)",
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
            read_lanes: gauge("db_read_lanes", "Reads that may run at once"),
            reads_waiting: gauge("db_reads_waiting", "Reads waiting for a read lane"),
            deliveries,
            action_attempts,
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
            in_flight: gauge(
                "webhook_attempts_in_flight",
                "Webhook attempts being sent by this replica",
            ),
            loop_up: IntGaugeVec::new(
                Opts::new(
                    "worker_loop_up",
                    "1 while a worker loop runs, 0 while it is down or waiting to restart",
                ),
                &["loop"],
            )
            .expect("static metric definition"),
            loop_failures: IntCounterVec::new(
                Opts::new(
                    "worker_loop_failures_total",
                    "Worker loop failures by loop and kind (error, panic, ended); each is restarted",
                ),
                &["loop", "kind"],
            )
            .expect("static metric definition"),
            expected_loops: Mutex::new(Vec::new()),
        };
        for c in [
            Box::new(m.http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.http_latency.clone()),
            Box::new(m.pool_connections.clone()),
            Box::new(m.pool_idle.clone()),
            Box::new(m.pool_max.clone()),
            Box::new(m.pool_waiters.clone()),
            Box::new(m.read_lanes.clone()),
            Box::new(m.reads_waiting.clone()),
            Box::new(m.deliveries.clone()),
            Box::new(m.action_attempts.clone()),
            Box::new(m.attempt_latency.clone()),
            Box::new(m.queue_depth.clone()),
            Box::new(m.oldest_due.clone()),
            Box::new(m.in_flight.clone()),
            Box::new(m.loop_up.clone()),
            Box::new(m.loop_failures.clone()),
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

    /// Counts one webhook attempt by its result (`delivered`, `retry`, `gone`).
    pub fn observe_attempt(&self, result: &str, latency_ms: i32) {
        self.deliveries.with_label_values(&[result]).inc();
        self.attempt_latency.observe(latency_ms as f64 / 1000.0);
    }

    /// Counts one host action request by its result.
    pub fn observe_action_attempt(&self, result: &str, latency_ms: i32) {
        self.action_attempts.with_label_values(&[result]).inc();
        self.attempt_latency.observe(latency_ms as f64 / 1000.0);
    }

    /// Notes the worker loops this process runs, each down until it starts.
    pub fn expect_loops(&self, names: &[&'static str]) {
        let mut expected = self
            .expected_loops
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for n in names {
            if !expected.contains(n) {
                expected.push(n);
                self.loop_up.with_label_values(&[n]).set(0);
            }
        }
    }

    /// Marks a worker loop as running or not.
    pub fn loop_up(&self, name: &str, up: bool) {
        self.loop_up.with_label_values(&[name]).set(i64::from(up));
    }

    /// Counts a worker loop failure: `error`, `panic` or `ended`.
    pub fn loop_failed(&self, name: &str, kind: &str) {
        self.loop_failures.with_label_values(&[name, kind]).inc();
    }

    /// The expected worker loops that are not running now.
    pub fn loops_down(&self) -> Vec<&'static str> {
        let expected = self
            .expected_loops
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        expected
            .iter()
            .filter(|n| self.loop_up.with_label_values(&[n]).get() == 0)
            .copied()
            .collect()
    }

    /// Sets how many attempts are in flight.
    pub fn set_in_flight(&self, n: usize) {
        self.in_flight.set(n as i64);
    }

    /// Sets the webhook queue gauges.
    pub fn set_queue(&self, depth: i64, oldest_due_secs: f64) {
        self.queue_depth.set(depth);
        self.oldest_due.set(oldest_due_secs);
    }

    /// Renders the Prometheus text exposition, refreshing the pool gauges first.
    pub fn render(&self, db: &Db) -> String {
        let stats = db.stats();
        self.pool_connections.set(stats.open as i64);
        self.pool_idle.set(stats.idle as i64);
        self.pool_max.set(db.max_size() as i64);
        self.pool_waiters.set(stats.waiting);
        self.read_lanes.set(db.read_lanes() as i64);
        self.reads_waiting.set(stats.reads_waiting);
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
