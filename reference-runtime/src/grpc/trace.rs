//! W3C trace context on the gRPC API (`actors-workflows-jobs.md` §4): the caller's context is
//! read from `grpc-trace-bin` first, else `traceparent`/`tracestate` metadata (O3); a malformed
//! one counts as none and a new trace starts. Handlers see it as `traceparent` metadata (so a
//! publish stamps it into the CloudEvent). Every answer but `InvokeService`'s carries it back as
//! `grpc-trace-bin` (O4). `baggage` is validated, `InvalidArgument` when malformed, and a valid
//! one echoed (O8). With tracing off a caller's context passes through unchanged; with it on
//! each call is a span ([`crate::otel`]) and handlers see that span's context.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine;
use tonic::codegen::http::{self, HeaderMap, HeaderValue};

use crate::otel::{CallSpan, Tracer};
use crate::sidecar::trace::{new_traceparent, valid_baggage, valid_traceparent};

/// The layer that puts [`Trace`] around the gRPC services, recording spans with the tracer
/// when there is one.
#[derive(Debug, Clone, Default)]
pub struct TraceLayer(pub Option<Arc<Tracer>>);

impl<S> tower::Layer<S> for TraceLayer {
    type Service = Trace<S>;
    fn layer(&self, inner: S) -> Trace<S> {
        Trace { inner, tracer: self.0.clone() }
    }
}

/// The trace context around one gRPC service.
#[derive(Debug, Clone)]
pub struct Trace<S> {
    inner: S,
    tracer: Option<Arc<Tracer>>,
}

type Answer = http::Response<tonic::body::Body>;

impl<S, B> tower::Service<http::Request<B>> for Trace<S>
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

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let name = request.uri().path().to_owned();
        let context = match TraceContext::take(request.headers_mut(), self.tracer.as_deref(), name) {
            Ok(context) => context,
            Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
        };
        let answers = !request.uri().path().ends_with("/InvokeService");
        // The service that was polled ready serves this call; its clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            if answers {
                context.answer(response.headers_mut());
            }
            Ok(response)
        })
    }
}

struct TraceContext {
    traceparent: String,
    baggage: Option<HeaderValue>,
    /// The call's span, ended when the answer goes.
    _span: Option<CallSpan>,
}

impl TraceContext {
    /// Reads the caller's context and leaves it in the request as `traceparent` (and
    /// `tracestate`) metadata: the caller's, or the span's when `tracer` records one.
    fn take(headers: &mut HeaderMap, tracer: Option<&Tracer>, name: String) -> Result<Self, tonic::Status> {
        let baggage = match headers.get("baggage") {
            Some(b) if b.to_str().is_ok_and(valid_baggage) => Some(b.clone()),
            Some(_) => return Err(tonic::Status::invalid_argument("invalid baggage header")),
            None => None,
        };
        let binary = headers.get("grpc-trace-bin").and_then(|v| from_binary(v.as_bytes()));
        let text = headers.get("traceparent").and_then(|v| v.to_str().ok()).filter(|t| valid_traceparent(t));
        let incoming = binary.or_else(|| text.map(str::to_owned));
        if incoming.is_none() {
            headers.remove("tracestate");
        }
        let (span, traceparent) = match (tracer, incoming) {
            (Some(tracer), incoming) => {
                let state = headers.get("tracestate").and_then(|v| v.to_str().ok());
                let (span, ours) = tracer.span(name, incoming.as_deref().map(|t| (t, state)));
                (Some(span), ours)
            }
            (None, Some(t)) => (None, t),
            (None, None) => (None, new_traceparent()),
        };
        if let Ok(v) = HeaderValue::from_str(&traceparent) {
            headers.insert("traceparent", v);
        }
        Ok(Self { traceparent, baggage, _span: span })
    }

    fn answer(self, headers: &mut HeaderMap) {
        if let Some(v) = to_binary(&self.traceparent).and_then(|b| HeaderValue::from_str(&b).ok()) {
            headers.entry("grpc-trace-bin").or_insert(v);
        }
        if let Some(baggage) = self.baggage {
            headers.entry("baggage").or_insert(baggage);
        }
    }
}

/// `grpc-trace-bin` (base64 in the header): version 0, then field 0 with the 16-byte trace id,
/// field 1 with the 8-byte span id, field 2 with the flags byte.
fn from_binary(header: &[u8]) -> Option<String> {
    let engine = base64::engine::general_purpose::STANDARD_NO_PAD;
    let text = std::str::from_utf8(header).ok()?.trim_end_matches('=');
    let bytes = engine.decode(text).ok()?;
    let [0, 0, rest @ ..] = bytes.as_slice() else { return None };
    let (trace, rest) = rest.split_at_checked(16)?;
    let [1, rest @ ..] = rest else { return None };
    let (span, rest) = rest.split_at_checked(8)?;
    let flags = match rest {
        [2, flags, ..] => *flags,
        _ => 0,
    };
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let traceparent = format!("00-{}-{}-{flags:02x}", hex(trace), hex(span));
    valid_traceparent(&traceparent).then_some(traceparent)
}

/// The `grpc-trace-bin` header value (base64) of a traceparent.
pub(crate) fn to_binary(traceparent: &str) -> Option<String> {
    let parts: Vec<&str> = traceparent.split('-').collect();
    let [_, trace, span, flags, ..] = parts.as_slice() else { return None };
    let bytes = |hex: &str| -> Option<Vec<u8>> {
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
    };
    let mut out = vec![0, 0];
    out.extend(bytes(trace)?);
    out.push(1);
    out.extend(bytes(span)?);
    out.push(2);
    out.extend(bytes(flags)?);
    Some(base64::engine::general_purpose::STANDARD_NO_PAD.encode(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_form_round_trips() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let binary = to_binary(traceparent).expect("encodes");
        assert_eq!(from_binary(binary.as_bytes()).as_deref(), Some(traceparent));
        assert_eq!(base64::engine::general_purpose::STANDARD_NO_PAD.decode(&binary).expect("b64").len(), 29);
        assert_eq!(from_binary(b"not base64!"), None);
        assert_eq!(from_binary(base64::engine::general_purpose::STANDARD.encode([0u8; 29]).as_bytes()), None);
    }
}
