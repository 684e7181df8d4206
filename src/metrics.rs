//! Process metrics in one Prometheus registry per process, rendered in the text exposition
//! format on `/metrics`. Families are typed (counters, gauges, a latency histogram), so names,
//! labels and escaping follow the format by construction.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Upper bounds (seconds) of the request-latency histogram.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Process metrics.
pub struct Metrics {
    registry: Registry,
    requests: Option<IntCounterVec>,
    latency: Option<HistogramVec>,
    login_failures: Option<IntCounter>,
    /// Families other modules add to (probes, BMC errors, job gauges), registered on first use.
    counters: Mutex<HashMap<&'static str, IntCounterVec>>,
    gauges: Mutex<HashMap<&'static str, IntGaugeVec>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Registers a collector, logging (never failing) when the registry refuses it.
fn registered<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    made: prometheus::Result<C>,
) -> Option<C> {
    let made = made
        .map_err(|e| tracing::warn!(error = %e, "cannot create a metric"))
        .ok()?;
    match registry.register(Box::new(made.clone())) {
        Ok(()) => Some(made),
        Err(e) => {
            tracing::warn!(error = %e, "cannot register a metric");
            None
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let requests = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "mojo_http_requests_total",
                    "HTTP requests by route, method and status.",
                ),
                &["route", "method", "status"],
            ),
        );
        let latency = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "mojo_http_request_duration_seconds",
                    "HTTP request latency by route.",
                )
                .buckets(BUCKETS.to_vec()),
                &["route"],
            ),
        );
        let login_failures = registered(
            &registry,
            IntCounter::new("mojo_login_failures_total", "Failed logins."),
        );
        Metrics {
            registry,
            requests,
            latency,
            login_failures,
            counters: Mutex::default(),
            gauges: Mutex::default(),
        }
    }
}

/// The methods that get a label of their own; any other method string counts as `other`, so
/// clients cannot create series at will.
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

/// The `method` label of a request method.
pub fn method_label(method: &str) -> &str {
    if KNOWN_METHODS.contains(&method) {
        method
    } else {
        "other"
    }
}

impl Metrics {
    /// Records one finished request (`route` must come from a bounded set: a route pattern or
    /// `unmatched`; unknown methods count as `other`).
    pub fn observe_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let method = method_label(method);
        if let Some(c) = &self.requests {
            let status = status.to_string();
            c.with_label_values(&[route, method, status.as_str()]).inc();
        }
        if let Some(h) = &self.latency {
            h.with_label_values(&[route]).observe(took.as_secs_f64());
        }
    }

    /// Counts a failed login.
    pub fn login_failed(&self) {
        if let Some(c) = &self.login_failures {
            c.inc();
        }
    }

    /// Adds `n` to the counter family `name` (registered with `help` and the label names of
    /// `labels` on first use) at the label values of `labels`.
    pub fn add(&self, name: &'static str, help: &str, labels: &[(&str, &str)], n: u64) {
        let mut families = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if !families.contains_key(name) {
            let names: Vec<&str> = labels.iter().map(|(k, _)| *k).collect();
            let made = IntCounterVec::new(Opts::new(name, help), &names);
            match registered(&self.registry, made) {
                Some(f) => families.insert(name, f),
                None => return,
            };
        }
        let values: Vec<&str> = labels.iter().map(|(_, v)| *v).collect();
        if let Some(c) = families
            .get(name)
            .and_then(|f| f.get_metric_with_label_values(&values).ok())
        {
            c.inc_by(n);
        }
    }

    /// Replaces every value of the gauge family `name` (registered with `help` and
    /// `label_names` on first use) with `rows` of (label values, value): gauges read at
    /// scrape time.
    pub fn set_gauges(
        &self,
        name: &'static str,
        help: &str,
        label_names: &[&str],
        rows: &[(Vec<String>, i64)],
    ) {
        let mut families = self.gauges.lock().unwrap_or_else(|p| p.into_inner());
        if !families.contains_key(name) {
            let made = IntGaugeVec::new(Opts::new(name, help), label_names);
            match registered(&self.registry, made) {
                Some(f) => families.insert(name, f),
                None => return,
            };
        }
        let Some(family) = families.get(name) else {
            return;
        };
        family.reset();
        for (values, n) in rows {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            if let Ok(g) = family.get_metric_with_label_values(&values) {
                g.set(*n);
            }
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot render metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_exposition_format() {
        let m = Metrics::default();
        m.observe_request("/api/x/", "GET", 200, Duration::from_millis(3));
        m.login_failed();
        m.add("mojo_t_total", "Test.", &[("op", "a\"b")], 2);
        m.set_gauges(
            "mojo_t_jobs",
            "Jobs.",
            &["kind", "status"],
            &[(vec!["scan".into(), "queued".into()], 3)],
        );
        let text = m.render();
        assert!(text.contains("# TYPE mojo_http_request_duration_seconds histogram"));
        assert!(text.contains("mojo_login_failures_total 1"));
        assert!(text.contains("mojo_t_total{op=\"a\\\"b\"} 2"), "{text}");
        assert!(text.contains("mojo_t_jobs{kind=\"scan\",status=\"queued\"} 3"));
        m.set_gauges("mojo_t_jobs", "Jobs.", &["kind", "status"], &[]);
        assert!(!m.render().contains("mojo_t_jobs{"));
    }
}
