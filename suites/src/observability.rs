//! The observability suite (actors-workflows-jobs.md §4): what a sidecar does with a caller's
//! W3C trace context on its own API (O1–O4), `baggage` (O8), and whether its Prometheus
//! metrics count the calls it serves. The component is the sidecar itself; every case runs
//! through each sidecar API in that API's own form (HTTP headers; gRPC metadata, text or
//! `grpc-trace-bin`). Trace context through invocation, pub/sub, bindings and jobs is checked
//! by those blocks' cases, tagged `observability` too.

use std::sync::Arc;

use async_trait::async_trait;
use contract::Block;

use crate::case::{Case, CaseResult, Ctx, Finding, Must, Reach, Requirement};
use crate::suite::Suite;
use crate::{case, ensure, ensure_eq};

const BLOCK: Block = Block::OBSERVABILITY;
/// What every case calls through.
pub const PROBE: Reach = Reach::of::<dyn TraceProbe>("trace probe");
/// The sidecar's Prometheus endpoint.
pub const METRICS: Reach = Reach::of::<dyn Scrape>("metrics endpoint")
    .hinted("certify does not know the sidecar's metrics endpoint: give --metrics URL");

/// The observability suite.
pub const SUITE: Suite = Suite { block: BLOCK, needs: &[PROBE], cases, prepare: None };

/// A caller's trace id, as the W3C example writes one.
pub const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// A caller's `tracestate`.
pub const TRACESTATE: &str = "congo=t61rcWkgMzE";

/// The trace id of a valid `traceparent`, or `None`.
pub fn trace_id(traceparent: &str) -> Option<String> {
    let parts: Vec<&str> = traceparent.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    match parts.as_slice() {
        [v, t, s, f, ..] if hex(v, 2) && *v != "ff" && hex(t, 32) && hex(s, 16) && hex(f, 2) => {
            (t.bytes().any(|b| b != b'0') && s.bytes().any(|b| b != b'0')).then(|| (*t).to_owned())
        }
        _ => None,
    }
}

/// The sidecar API a probe calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The HTTP API: context in headers.
    Http,
    /// The gRPC API: context in metadata, text or binary.
    Grpc,
}

impl Api {
    /// The forms a caller of this API may write its context in.
    fn forms(self) -> &'static [Form] {
        match self {
            Api::Http => &[Form::Text],
            Api::Grpc => &[Form::Text, Form::Binary],
        }
    }

    /// The counter of calls the API served, and its latency histogram's count.
    fn counters(self) -> [&'static str; 2] {
        match self {
            Api::Http => ["dapr_http_server_request_count", "dapr_http_server_latency_count"],
            Api::Grpc => ["dapr_grpc_io_server_completed_rpcs", "dapr_grpc_io_server_server_latency_count"],
        }
    }

    /// How the API rejects a malformed `baggage`, as [`Answer::Rejected`] writes it.
    fn rejects_baggage(self) -> &'static str {
        match self {
            Api::Http => "400 ERR_MALFORMED_REQUEST",
            Api::Grpc => "InvalidArgument",
        }
    }
}

/// How a caller writes its trace context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `traceparent` and `tracestate`, as text.
    Text,
    /// gRPC's `grpc-trace-bin` (the traceparent's fields as 29 bytes; no tracestate).
    Binary,
}

/// Trace context as a call carries it, in text form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    /// `traceparent`.
    pub traceparent: Option<String>,
    /// `tracestate`.
    pub tracestate: Option<String>,
    /// `baggage`.
    pub baggage: Option<String>,
}

impl TraceContext {
    /// The context of a caller with `traceparent` and nothing else.
    pub fn parent(traceparent: impl Into<String>) -> Self {
        Self { traceparent: Some(traceparent.into()), ..Self::default() }
    }

    /// The caller's context certify sends: [`TRACE_ID`] and [`TRACESTATE`].
    pub fn certify() -> Self {
        Self { tracestate: Some(TRACESTATE.to_owned()), ..Self::parent(format!("00-{TRACE_ID}-00f067aa0ba902b7-01")) }
    }

    /// The context in the headers `header` looks up by lower-case name.
    pub fn read(header: impl Fn(&str) -> Option<String>) -> Self {
        Self { traceparent: header("traceparent"), tracestate: header("tracestate"), baggage: header("baggage") }
    }

    /// Its entries as headers (or gRPC text metadata).
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("traceparent", &self.traceparent), ("tracestate", &self.tracestate), ("baggage", &self.baggage)]
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_deref()?)))
    }
}

tokio::task_local! {
    static CALLER: TraceContext;
}

/// Runs `call` as a caller with trace context `context`: the calls a sidecar driver makes
/// meanwhile carry it (HTTP headers, gRPC metadata), as an instrumented app's would. Drivers
/// without a wire ignore it; cases that need it ask for [`DriverCapability::TraceContext`].
///
/// [`DriverCapability::TraceContext`]: crate::case::DriverCapability::TraceContext
pub async fn traced<F: std::future::Future>(context: TraceContext, call: F) -> F::Output {
    CALLER.scope(context, call).await
}

/// The trace context of the caller running now (see [`traced`]), if any.
pub fn caller_context() -> Option<TraceContext> {
    CALLER.try_with(Clone::clone).ok()
}

/// How the sidecar answered a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Served; the answer's trace context (a binary one decoded to text).
    Served(TraceContext),
    /// Rejected: `400 ERR_MALFORMED_REQUEST` over HTTP, the status code's name over gRPC.
    Rejected(String),
}

/// A call every sidecar serves (reading its metadata), with a chosen trace context.
#[async_trait]
pub trait TraceProbe: Send + Sync {
    /// The API it calls.
    fn api(&self) -> Api;
    /// Reads the sidecar's metadata with `sent` written in `form`.
    async fn call(&self, sent: &TraceContext, form: Form) -> contract::Result<Answer>;
}

/// The sidecar's Prometheus metrics.
#[async_trait]
pub trait Scrape: Send + Sync {
    /// The text exposition.
    async fn scrape(&self) -> contract::Result<String>;
}

fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "observability.trace.answered",
            "O1, O2, O3, O4",
            "Every answer MUST carry trace context (HTTP `traceparent`, gRPC `grpc-trace-bin`): the caller's trace id when it sent a valid one, in any form its API takes (and its `tracestate` over HTTP), a new valid trace when it sent none or a malformed one (version `ff`, a missing field, an all-zero id).",
            [],
            ["observability"],
            10,
            answered
        ),
        case!(
            BLOCK,
            "observability.trace.baggage",
            "O8",
            "A malformed `baggage` MUST be rejected (HTTP 400 `ERR_MALFORMED_REQUEST`, gRPC `InvalidArgument`); a valid one MUST be echoed in the answer.",
            [],
            ["observability"],
            10,
            baggage
        ),
        case!(
            BLOCK,
            "observability.metrics.counted",
            "metrics",
            "The sidecar's Prometheus metrics MUST count the API calls it serves under daprd's names (`dapr_http_server_request_count` and `dapr_http_server_latency`, `dapr_grpc_io_server_completed_rpcs` and `dapr_grpc_io_server_server_latency`).",
            [Requirement::Reach(METRICS)],
            ["observability"],
            10,
            metrics_counted
        ),
    ]
}

fn probe(ctx: &Ctx) -> Result<&Arc<dyn TraceProbe>, Finding> {
    ctx.reach(PROBE)
}

/// The answer's context, or a failure saying the call was rejected.
async fn served(ctx: &Ctx, sent: &TraceContext, form: Form, what: &str) -> Result<TraceContext, Finding> {
    match probe(ctx)?.call(sent, form).await.must(what)? {
        Answer::Served(context) => Ok(context),
        Answer::Rejected(how) => Err(Finding::Fail(format!("{what} was rejected: {how}"))),
    }
}

async fn answered(ctx: Ctx) -> CaseResult {
    let api = probe(&ctx)?.api();
    for &form in api.forms() {
        let sent = TraceContext {
            tracestate: (form == Form::Text).then(|| TRACESTATE.to_owned()),
            ..TraceContext::parent(format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        };
        let got = served(&ctx, &sent, form, &format!("a call with a valid {form:?} context")).await?;
        let seen = got.traceparent.unwrap_or_default();
        ensure_eq!(
            trace_id(&seen),
            Some(TRACE_ID.to_owned()),
            "the trace id answered (`{seen}`) to a {form:?} context"
        );
        if api == Api::Http {
            ensure_eq!(got.tracestate.as_deref(), Some(TRACESTATE), "the answer's tracestate");
        }
        for (sent, what) in [
            (TraceContext::default(), "no context"),
            (TraceContext::parent(format!("ff-{TRACE_ID}-00f067aa0ba902b7-01")), "version ff"),
            (TraceContext::parent(format!("00-{TRACE_ID}-00f067aa0ba902b7")), "a missing flags field"),
            (TraceContext::parent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), "an all-zero trace id"),
        ] {
            let got = served(&ctx, &sent, form, &format!("a call with {what} ({form:?})")).await?;
            let seen = got.traceparent.unwrap_or_default();
            let id = trace_id(&seen).ok_or_else(|| {
                Finding::Fail(format!("after {what} ({form:?}), no valid trace context on the answer (`{seen}`)"))
            })?;
            ensure!(
                id != TRACE_ID || sent.traceparent.is_none(),
                "after {what} ({form:?}), the answer kept the malformed trace id: `{seen}`"
            );
        }
    }
    Ok(())
}

async fn baggage(ctx: Ctx) -> CaseResult {
    let probe = probe(&ctx)?;
    let bad = TraceContext { baggage: Some("user id=alice".into()), ..TraceContext::default() };
    match probe.call(&bad, Form::Text).await.must("a call with a malformed baggage")? {
        Answer::Rejected(how) => {
            ensure_eq!(how.as_str(), probe.api().rejects_baggage(), "the rejection of a malformed baggage")
        }
        Answer::Served(_) => return Err(Finding::Fail("a malformed baggage `user id=alice` was served".into())),
    }
    let good = TraceContext { baggage: Some("userId=alice,isProduction=false".into()), ..TraceContext::default() };
    let got = served(&ctx, &good, Form::Text, "a call with a valid baggage").await?;
    ensure_eq!(got.baggage, good.baggage, "the answer's baggage");
    Ok(())
}

/// The sum of every sample of the counter `name` in a Prometheus text exposition (any labels).
pub fn total(exposition: &str, name: &str) -> Option<u64> {
    let samples: Vec<u64> = exposition
        .lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' ')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .collect();
    (!samples.is_empty()).then(|| samples.iter().sum())
}

async fn metrics_counted(ctx: Ctx) -> CaseResult {
    const CALLS: u64 = 3;
    let probe = probe(&ctx)?;
    let metrics: &Arc<dyn Scrape> = ctx.reach(METRICS)?;
    let counters = probe.api().counters();
    let before = metrics.scrape().await.must("scraping the metrics")?;
    for _ in 0..CALLS {
        probe.call(&TraceContext::default(), Form::Text).await.must("a metadata call")?;
    }
    let after = metrics.scrape().await.must("scraping the metrics")?;
    for counter in counters {
        let (was, is) = (total(&before, counter).unwrap_or(0), total(&after, counter));
        let is = is.ok_or_else(|| Finding::Fail(format!("the metrics have no `{counter}`")))?;
        ensure!(is >= was + CALLS, "`{counter}` went from {was} to {is} over {CALLS} calls");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_every_labelled_sample_of_one_name_only() {
        let text = "# TYPE a counter\na{x=\"1\"} 2\na{x=\"2\"} 3\na_bucket{le=\"1\"} 9\nab 4\na 1\n";
        assert_eq!(total(text, "a"), Some(6));
        assert_eq!(total(text, "b"), None);
    }

    #[test]
    fn a_trace_id_is_read_from_valid_traceparents_only() {
        assert_eq!(trace_id(&format!("00-{TRACE_ID}-00f067aa0ba902b7-01")).as_deref(), Some(TRACE_ID));
        assert_eq!(trace_id(&format!("ff-{TRACE_ID}-00f067aa0ba902b7-01")), None);
        assert_eq!(trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), None);
    }
}
