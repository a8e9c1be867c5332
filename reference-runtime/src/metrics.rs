//! Prometheus metrics under daprd's names (`--metrics-port`, `GET /metrics`): requests served
//! by the HTTP and gRPC APIs with their latencies, and pub/sub messages published and delivered.
//! Only daprd's default (low-cardinality) labels: no paths, no keys, no ids.

use std::sync::Arc;
use std::time::Duration;

use contract::pubsub::Outcome;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

/// Latency buckets in milliseconds, daprd's distribution cut at 10 s.
const LATENCY_MS: &[f64] = &[
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 30.0, 40.0, 50.0, 65.0, 80.0, 100.0, 130.0, 160.0,
    200.0, 250.0, 300.0, 400.0, 500.0, 650.0, 800.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

/// The sidecar's metrics.
pub struct Metrics {
    registry: Registry,
    app_id: String,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    grpc_completed: IntCounterVec,
    grpc_latency: HistogramVec,
    pubsub_egress: IntCounterVec,
    pubsub_ingress: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("app_id", &self.app_id).finish_non_exhaustive()
    }
}

impl Metrics {
    /// Empty metrics of the app `app_id`.
    pub fn new(app_id: &str) -> Arc<Self> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter");
            registry.register(Box::new(c.clone())).expect("one registration per name");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(LATENCY_MS.to_vec());
            let h = HistogramVec::new(opts, labels).expect("a valid histogram");
            registry.register(Box::new(h.clone())).expect("one registration per name");
            h
        };
        Arc::new(Self {
            http_requests: counter(
                "dapr_http_server_request_count",
                "Requests the HTTP API served.",
                &["app_id", "method", "status"],
            ),
            http_latency: histogram(
                "dapr_http_server_latency",
                "Time the HTTP API took to answer, in milliseconds.",
                &["app_id", "method", "status"],
            ),
            grpc_completed: counter(
                "dapr_grpc_io_server_completed_rpcs",
                "Calls the gRPC API completed.",
                &["app_id", "grpc_server_method", "grpc_server_status"],
            ),
            grpc_latency: histogram(
                "dapr_grpc_io_server_server_latency",
                "Time the gRPC API took to complete a call, in milliseconds.",
                &["app_id", "grpc_server_method", "grpc_server_status"],
            ),
            pubsub_egress: counter(
                "dapr_component_pubsub_egress_count",
                "Messages published.",
                &["app_id", "component", "namespace", "success", "topic"],
            ),
            pubsub_ingress: counter(
                "dapr_component_pubsub_ingress_count",
                "Messages delivered to the app, by its answer.",
                &["app_id", "component", "namespace", "process_status", "topic"],
            ),
            registry,
            app_id: app_id.to_owned(),
        })
    }

    /// One HTTP API request answered with `status` after `elapsed`.
    pub fn http_served(&self, method: &str, status: axum::http::StatusCode, elapsed: Duration) {
        // A label per verb a caller invents would grow without bound.
        const VERBS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
        let method = VERBS.iter().find(|v| **v == method).copied().unwrap_or("OTHER");
        let labels = [self.app_id.as_str(), method, status.as_str()];
        self.http_requests.with_label_values(&labels).inc();
        self.http_latency.with_label_values(&labels).observe(elapsed.as_secs_f64() * 1e3);
    }

    /// One gRPC call of `method` (`/package.Service/Method`) completed with `code`; calls
    /// proxied to the app's own services count under one label, whatever their names.
    pub fn grpc_served(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        let ours = method.starts_with("/dapr.proto.") || method.starts_with("/grpc.reflection.");
        let method = if ours { method.trim_start_matches('/') } else { "proxied" };
        let labels = [self.app_id.as_str(), method, code_name(code)];
        self.grpc_completed.with_label_values(&labels).inc();
        self.grpc_latency.with_label_values(&labels).observe(elapsed.as_secs_f64() * 1e3);
    }

    /// `count` messages published to `topic` of `component`.
    pub fn published(&self, component: &str, topic: &str, success: bool, count: usize) {
        let success = if success { "true" } else { "false" };
        let labels = [self.app_id.as_str(), component, "", success, topic];
        self.pubsub_egress.with_label_values(&labels).inc_by(count as u64);
    }

    /// A message of `topic` delivered to the app, which settled it with `outcome`.
    pub fn delivered(&self, component: &str, topic: &str, outcome: &Outcome) {
        let status = match outcome {
            Outcome::Success => "success",
            Outcome::Retry(_) => "retry",
            Outcome::Drop(_) => "drop",
        };
        let labels = [self.app_id.as_str(), component, "", status, topic];
        self.pubsub_ingress.with_label_values(&labels).inc();
    }

    /// The Prometheus text exposition of everything counted so far.
    pub fn text(&self) -> String {
        let mut out = Vec::new();
        // Encoding text into a Vec cannot fail but on a malformed metric, which we never build.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The metrics server's routes: `GET /metrics`.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        let metrics = Arc::clone(self);
        axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let text = metrics.text();
                async move { ([(axum::http::header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text) }
            }),
        )
    }

    /// Serves [`Metrics::router`] on `listener` until `stopped`.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        stopped: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router()).with_graceful_shutdown(stopped).await
    }
}

/// A gRPC code as OpenCensus names it in `grpc_server_status`.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_under_daprds_names() {
        let metrics = Metrics::new("app");
        metrics.http_served("GET", axum::http::StatusCode::OK, Duration::from_micros(300));
        metrics.grpc_served("/dapr.proto.runtime.v1.Dapr/GetState", tonic::Code::NotFound, Duration::ZERO);
        metrics.published("pubsub", "orders", true, 2);
        metrics.delivered("pubsub", "orders", &Outcome::Retry("busy".into()));
        let text = metrics.text();
        for line in [
            r#"dapr_http_server_request_count{app_id="app",method="GET",status="200"} 1"#,
            r#"dapr_grpc_io_server_completed_rpcs{app_id="app",grpc_server_method="dapr.proto.runtime.v1.Dapr/GetState",grpc_server_status="NOT_FOUND"} 1"#,
            r#"dapr_component_pubsub_egress_count{app_id="app",component="pubsub",namespace="",success="true",topic="orders"} 2"#,
            r#"dapr_component_pubsub_ingress_count{app_id="app",component="pubsub",namespace="",process_status="retry",topic="orders"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} is not in\n{text}");
        }
        assert!(text.contains("dapr_http_server_latency_bucket"));
    }
}
