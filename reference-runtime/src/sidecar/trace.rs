//! W3C trace context at the API's edge (`actors-workflows-jobs.md` §4): a malformed
//! `traceparent` counts as none (O1); every answer carries a `traceparent`, the caller's or a
//! new trace's, and `tracestate` up to 512 characters (O2); an invocation always reaches the app
//! with one (O5); `baggage` is validated, and a valid one echoed (O8). Health checks are not
//! traced. With tracing off (the default) no span is recorded and a caller's trace context
//! passes through unchanged; with it on ([`crate::otel`]) each call is a span, and what leaves
//! carries that span's context.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api_error::ApiError;
use crate::otel::Tracer;

/// The trace context middleware.
pub(super) async fn trace_context(
    State(tracer): State<Option<Arc<Tracer>>>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/v1.0/healthz") {
        return next.run(request).await;
    }
    let baggage = match request.headers().get("baggage").map(|b| b.to_str().ok().filter(|b| valid_baggage(b))) {
        Some(None) => return ApiError::malformed("invalid baggage header").into_response(),
        Some(Some(b)) => Some(b.to_owned()),
        None => None,
    };
    // The span's name, only when there is a span to name: this runs on every call.
    let name = tracer.as_ref().map(|_| span_name(request.method().as_str(), request.uri().path()));
    let headers = request.headers_mut();
    let incoming =
        headers.get("traceparent").and_then(|v| v.to_str().ok()).filter(|t| valid_traceparent(t)).map(str::to_owned);
    if incoming.is_none() {
        headers.remove("traceparent");
        headers.remove("tracestate");
    }
    let tracestate = headers.get("tracestate").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (_span, traceparent) = match (&tracer, incoming) {
        (Some(tracer), incoming) => {
            let (span, ours) =
                tracer.span(name.unwrap_or_default(), incoming.as_deref().map(|t| (t, tracestate.as_deref())));
            // What leaves (the app's call, a CloudEvent) carries this span.
            if let Ok(value) = HeaderValue::from_str(&ours) {
                headers.insert("traceparent", value);
            }
            (Some(span), ours)
        }
        (None, Some(t)) => (None, t),
        (None, None) => (None, new_traceparent()),
    };
    // O5: the app always gets one, the caller's or this new trace's.
    let invocation = request.uri().path().starts_with("/v1.0/invoke/") || request.headers().contains_key("dapr-app-id");
    if invocation && let Ok(value) = HeaderValue::from_str(&traceparent) {
        request.headers_mut().entry("traceparent").or_insert(value);
    }
    let mut response = next.run(request).await;
    answer_with(response.headers_mut(), &traceparent, tracestate.as_deref(), baggage.as_deref());
    response
}

/// A span's name: the verb and the route's first segments (the version, the API, and the
/// component or app where the API names one), never keys, job names or the app's own paths.
pub(crate) fn span_name(method: &str, path: &str) -> String {
    let route: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let named = |api: &str| {
        ["state", "publish", "bulkpublish", "bindings", "secrets", "configuration", "lock", "unlock", "invoke"]
            .contains(&api)
    };
    match route.as_slice() {
        [version, api, component, ..] if version.starts_with("v1") && named(api) => {
            format!("{method} /{version}/{api}/{component}")
        }
        [version, api, ..] if version.starts_with("v1") => format!("{method} /{version}/{api}"),
        // A call of the app's own path, routed by `dapr-app-id`.
        _ => format!("{method} invoke"),
    }
}

fn answer_with(headers: &mut HeaderMap, traceparent: &str, tracestate: Option<&str>, baggage: Option<&str>) {
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.entry(name).or_insert(v);
        }
    };
    set("traceparent", traceparent);
    if let Some(state) = tracestate.filter(|s| s.len() <= 512) {
        set("tracestate", state);
    }
    if let Some(baggage) = baggage {
        set("baggage", baggage);
    }
}

/// `00-<32 hex>-<16 hex>-<2 hex>`: version `ff` and all-zero ids are invalid, and a version
/// above `00` may carry more fields after the flags.
pub(crate) fn valid_traceparent(text: &str) -> bool {
    let parts: Vec<&str> = text.trim().split('-').collect();
    let hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let [version, trace, span, flags, rest @ ..] = parts.as_slice() else { return false };
    hex(version, 2)
        && *version != "ff"
        && (rest.is_empty() || *version != "00")
        && hex(trace, 32)
        && hex(span, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && span.bytes().any(|b| b != b'0')
}

/// A new trace: random ids (never all zeros, which W3C reserves), not sampled. From a
/// thread-local generator: trace ids need to be unique, not secret, and this runs on every
/// untraced call (two `getrandom` calls each, with UUIDs).
pub(crate) fn new_traceparent() -> String {
    let trace = fastrand::u128(1..);
    let span = fastrand::u64(1..);
    format!("00-{trace:032x}-{span:016x}-00")
}

/// W3C baggage: comma-separated `key=value` members (optional `;property` parts), keys are
/// tokens, values printable ASCII without `"`, `,`, `;`, `\` or spaces; at most 8192 bytes.
pub(crate) fn valid_baggage(text: &str) -> bool {
    let token =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    let value = |s: &str| s.bytes().all(|b| (0x21..=0x7e).contains(&b) && !b"\",;\\".contains(&b));
    text.len() <= 8192
        && text.split(',').all(|member| {
            let mut parts = member.split(';');
            let pair = parts.next().unwrap_or_default().trim();
            let well_formed = pair.split_once('=').is_some_and(|(k, v)| token(k.trim()) && value(v.trim()));
            well_formed && parts.all(|p| p.split('=').next().is_some_and(|k| token(k.trim())))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_judged_as_w3c_says() {
        assert!(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert!(valid_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"));
        for bad in [
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert!(!valid_traceparent(bad), "{bad}");
        }
        assert!(valid_traceparent(&new_traceparent()));
    }

    #[test]
    fn baggage_is_validated() {
        assert!(valid_baggage("userId=alice,serverNode=DF%2028;ttl=60"));
        for bad in ["no-equals", "=value", "key=va lue", "key=\"quoted\"", "a=1,,b=2"] {
            assert!(!valid_baggage(bad), "{bad}");
        }
    }
}
