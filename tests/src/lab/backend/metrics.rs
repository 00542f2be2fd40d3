//! Request counters and durations in the Prometheus text format (`GET /metrics`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// (method, route, status).
type Key = (String, String, u16);

#[derive(Default)]
pub struct Metrics {
    /// key -> (count, seconds).
    requests: Mutex<BTreeMap<Key, (u64, f64)>>,
}

/// The route label of a path: its first two segments (`/v1/products/prod_001` ->
/// `/v1/products`), so labels stay few.
pub fn route_of(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).take(2).collect();
    format!("/{}", parts.join("/"))
}

impl Metrics {
    pub fn observe(&self, method: &str, path: &str, status: u16, took: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            let e = m
                .entry((method.to_owned(), route_of(path), status))
                .or_default();
            e.0 += 1;
            e.1 += took.as_secs_f64();
        }
    }

    /// The exposition text, with the role's gauges appended.
    pub fn render(&self, service: &str, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::from(
            "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n",
        );
        let snapshot = self.requests.lock().map(|m| m.clone()).unwrap_or_default();
        for ((method, route, status), (count, _)) in &snapshot {
            let _ = writeln!(
                out,
                "http_requests_total{{service=\"{service}\",method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# HELP http_request_duration_seconds_sum Time spent serving requests.\n# TYPE http_request_duration_seconds_sum counter\n");
        for ((method, route, status), (_, secs)) in &snapshot {
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{service=\"{service}\",method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {secs:.6}"
            );
        }
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{service=\"{service}\"}} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_route_and_status() {
        let m = Metrics::default();
        m.observe(
            "GET",
            "/v1/products/prod_001",
            200,
            Duration::from_millis(10),
        );
        m.observe("GET", "/v1/products", 200, Duration::from_millis(30));
        let text = m.render(
            "product-service",
            &[("db_pool_in_use", "Connections in use.", 1.0)],
        );
        assert!(text.contains(
            "http_requests_total{service=\"product-service\",method=\"GET\",route=\"/v1/products\",status=\"200\"} 2"
        ), "{text}");
        assert!(text.contains("db_pool_in_use{service=\"product-service\"} 1"));
    }
}
