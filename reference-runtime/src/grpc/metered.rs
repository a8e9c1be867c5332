//! Counts every gRPC call when it completes (its trailers, or a trailers-only answer), by
//! method and status, with its latency: `dapr_grpc_io_server_*` in [`crate::metrics`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body_util::BodyExt;
use tonic::codegen::http::{self, HeaderMap};

use crate::metrics::Metrics;

/// The layer that counts the calls of the services it wraps.
#[derive(Debug, Clone)]
pub struct MetricsLayer(pub Arc<Metrics>);

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = Metered<S>;
    fn layer(&self, inner: S) -> Metered<S> {
        Metered { inner, metrics: Arc::clone(&self.0) }
    }
}

/// One gRPC service, counted.
#[derive(Debug, Clone)]
pub struct Metered<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

type Answer = http::Response<tonic::body::Body>;

impl<S, B> tower::Service<http::Request<B>> for Metered<S>
where
    S: tower::Service<http::Request<B>, Response = Answer> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Answer;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let method = request.uri().path().to_owned();
        let metrics = Arc::clone(&self.metrics);
        // The service that was polled ready serves this call; its clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            if let Some(code) = status_of(response.headers()) {
                metrics.grpc_served(&method, code, started.elapsed());
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let body = body.map_frame(move |frame| {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = status_of(trailers).unwrap_or(tonic::Code::Ok);
                    metrics.grpc_served(&method, code, started.elapsed());
                }
                frame
            });
            Ok(http::Response::from_parts(parts, tonic::body::Body::new(body)))
        })
    }
}

fn status_of(headers: &HeaderMap) -> Option<tonic::Code> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    Some(tonic::Code::from_i32(code))
}
