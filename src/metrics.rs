//! Prometheus counters kept in process memory and rendered as text on `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the request-latency histogram.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

/// What is counted per route.
#[derive(Default)]
struct RouteStats {
    /// Requests by method, then status.
    requests: BTreeMap<String, BTreeMap<u16, u64>>,
    latency: Histogram,
}

/// Process metrics.
#[derive(Default)]
pub struct Metrics {
    /// By route pattern; names are allocated only the first time they are seen.
    routes: Mutex<BTreeMap<String, RouteStats>>,
    login_failures: AtomicU64,
    /// Named counters other modules add to (probes, BMC errors, ...), with one label set each.
    counters: Mutex<BTreeMap<(String, String), u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Records one finished request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        if !routes.contains_key(route) {
            routes.insert(route.to_string(), RouteStats::default());
        }
        let Some(stats) = routes.get_mut(route) else {
            return;
        };
        if !stats.requests.contains_key(method) {
            stats.requests.insert(method.to_string(), BTreeMap::new());
        }
        if let Some(by_status) = stats.requests.get_mut(method) {
            *by_status.entry(status).or_default() += 1;
        }
        let secs = took.as_secs_f64();
        let h = &mut stats.latency;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.total += 1;
    }

    /// Counts a failed login.
    pub fn login_failed(&self) {
        self.login_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to counter `name` with the label set `labels` (already formatted, e.g.
    /// `kind="scan"`).
    pub fn add(&self, name: &str, labels: &str, n: u64) {
        *self
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((name.to_string(), labels.to_string()))
            .or_default() += n;
    }

    /// The Prometheus text exposition of every metric, plus `extra` lines (gauges read at
    /// scrape time, e.g. jobs by status).
    pub fn render(&self, extra: &str) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP mojo_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE mojo_http_requests_total counter\n");
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        for (route, stats) in routes.iter() {
            for (method, by_status) in &stats.requests {
                for (status, n) in by_status {
                    let _ = writeln!(
                        out,
                        "mojo_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        out.push_str("# HELP mojo_http_request_duration_seconds HTTP request latency by route.\n");
        out.push_str("# TYPE mojo_http_request_duration_seconds histogram\n");
        for (route, stats) in routes.iter() {
            let h = &stats.latency;
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "mojo_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "mojo_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.total
            );
            let _ = writeln!(
                out,
                "mojo_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "mojo_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.total
            );
        }
        drop(routes);
        out.push_str("# HELP mojo_login_failures_total Failed logins.\n");
        out.push_str("# TYPE mojo_login_failures_total counter\n");
        let _ = writeln!(
            out,
            "mojo_login_failures_total {}",
            self.login_failures.load(Ordering::Relaxed)
        );
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = "";
        for ((name, labels), n) in counters.iter() {
            if name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {n}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {n}");
            }
        }
        out.push_str(extra);
        out
    }
}
