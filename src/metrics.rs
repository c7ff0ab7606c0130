//! Prometheus metrics: requests by route and status with latency histograms, login outcomes,
//! refresh-token reuse, access-token rejections by reason, alerts raised, messages parked in the
//! database queue, and the database pool's state (read at scrape time). Labels use the matched route template, never the raw path, so cardinality stays
//! bounded.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    logins: Family<OutcomeLabels, Counter>,
    refresh_reuse: Counter,
    token_rejections: Family<ReasonLabels, Counter>,
    pool_size: Gauge,
    pool_idle: Gauge,
    requests_running: Gauge,
    alerts: Family<ReasonLabels, Counter>,
    dead_messages: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ims");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let logins = Family::<OutcomeLabels, Counter>::default();
        let refresh_reuse = Counter::default();
        let token_rejections = Family::<ReasonLabels, Counter>::default();
        let pool_size = Gauge::default();
        let pool_idle = Gauge::default();
        let requests_running = Gauge::default();
        let alerts = Family::<ReasonLabels, Counter>::default();
        let dead_messages = Gauge::default();
        registry.register(
            "alerts_raised",
            "Alerts raised, by rule kind",
            alerts.clone(),
        );
        registry.register(
            "queue_dead_messages",
            "Messages parked in the database queue after too many failed deliveries",
            dead_messages.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "logins",
            "Login attempts by outcome (ok, failed, locked, throttled)",
            logins.clone(),
        );
        registry.register(
            "refresh_token_reuse",
            "Rotated refresh tokens presented again (family revoked)",
            refresh_reuse.clone(),
        );
        registry.register(
            "token_verification_failures",
            "Access tokens refused, by reason",
            token_rejections.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open database connections",
            pool_size.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections",
            pool_idle.clone(),
        );
        registry.register(
            "http_requests_running",
            "Requests being handled, including those whose client has gone away",
            requests_running.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            logins,
            refresh_reuse,
            token_rejections,
            pool_size,
            pool_idle,
            requests_running,
            alerts,
            dead_messages,
        }
    }

    /// Counts a request; `route` is a route template, so the label set stays bounded.
    pub fn request(&self, method: &'static str, route: &'static str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { method, route })
            .observe(seconds);
    }

    pub fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn refresh_reuse(&self) {
        self.refresh_reuse.inc();
    }

    pub fn token_rejected(&self, reason: &'static str) {
        self.token_rejections
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn alert_raised(&self, kind: &'static str) {
        self.alerts
            .get_or_create(&ReasonLabels { reason: kind })
            .inc();
    }

    pub fn dead_messages(&self, n: i64) {
        self.dead_messages.set(n);
    }

    /// Renders the text exposition format, after reading the pool's state and how many requests
    /// are running.
    pub fn render(&self, pool_size: u32, pool_idle: usize, requests_running: usize) -> String {
        self.pool_size.set(i64::from(pool_size));
        self.pool_idle.set(pool_idle as i64);
        self.requests_running.set(requests_running as i64);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
