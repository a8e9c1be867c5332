//! W3C trace context on the API (`actors-workflows-jobs.md` §4): what a sidecar answers with,
//! checked on a state read, a call every sidecar serves. Tag `observability`.

use super::{HTTP_API, Request, segment};
use crate::case::{Case, CaseResult, Ctx, Finding};
use crate::state::BLOCK;
use crate::{case, ensure, ensure_eq};

/// A caller's trace context, as the W3C example writes one.
pub(crate) const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "state.trace-context.answered",
            "O1, O2",
            "Every answer MUST carry a `traceparent`: the caller's trace id when it sent a valid one (and its `tracestate`), a new valid trace when it sent none or a malformed one (version `ff`, wrong length, all-zero id).",
            [HTTP_API],
            ["http-api", "observability"],
            10,
            answered
        ),
        case!(
            BLOCK,
            "state.trace-context.baggage",
            "O8",
            "A malformed `baggage` header MUST be answered 400 `ERR_MALFORMED_REQUEST`; a valid one MUST be echoed in the answer.",
            [HTTP_API],
            ["http-api", "observability"],
            10,
            baggage
        ),
    ]
}

/// The trace id of a valid `traceparent`, or `None`.
pub(crate) fn trace_id(traceparent: &str) -> Option<String> {
    let parts: Vec<&str> = traceparent.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    match parts.as_slice() {
        [v, t, s, f, ..] if hex(v, 2) && *v != "ff" && hex(t, 32) && hex(s, 16) && hex(f, 2) => {
            (t.bytes().any(|b| b != b'0') && s.bytes().any(|b| b != b'0')).then(|| (*t).to_owned())
        }
        _ => None,
    }
}

fn read(ctx: &Ctx) -> Request {
    Request::new("GET", format!("/v1.0/state/{}/{}", ctx.component_segment(), segment(&ctx.key("traced"))))
}

async fn answered(ctx: Ctx) -> CaseResult {
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let caller = read(&ctx).header("traceparent", &traceparent).header("tracestate", "congo=t61rcWkgMzE");
    let answer = ctx.exchange(caller).await?;
    let seen = answer.answer.header("traceparent").unwrap_or_default().to_owned();
    ensure_eq!(trace_id(&seen), Some(TRACE_ID.to_owned()), "the trace id of the answer's traceparent `{seen}`");
    ensure_eq!(answer.answer.header("tracestate"), Some("congo=t61rcWkgMzE"), "the answer's tracestate");
    for (sent, what) in [
        (None, "no traceparent"),
        (Some(format!("ff-{TRACE_ID}-00f067aa0ba902b7-01")), "version ff"),
        (Some(format!("00-{TRACE_ID}-00f067aa0ba902b7")), "a missing flags field"),
        (Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_owned()), "an all-zero trace id"),
    ] {
        let request = match &sent {
            Some(t) => read(&ctx).header("traceparent", t),
            None => read(&ctx),
        };
        let answer = ctx.exchange(request).await?;
        let seen = answer.answer.header("traceparent").unwrap_or_default();
        let id =
            trace_id(seen).ok_or_else(|| answer.fail(&format!("after {what}, no valid traceparent (`{seen}`)")))?;
        ensure!(id != TRACE_ID || sent.is_none(), "after {what}, the answer kept the malformed trace id: `{seen}`");
    }
    Ok(())
}

async fn baggage(ctx: Ctx) -> CaseResult {
    let bad = ctx.exchange(read(&ctx).header("baggage", "user id=alice")).await?;
    bad.error(400, "ERR_MALFORMED_REQUEST").map_err(|f| match f {
        Finding::Fail(m) => Finding::Fail(format!("a malformed baggage: {m}")),
        other => other,
    })?;
    let good = ctx.exchange(read(&ctx).header("baggage", "userId=alice,isProduction=false")).await?;
    good.status(204)?;
    ensure_eq!(good.answer.header("baggage"), Some("userId=alice,isProduction=false"), "the answer's baggage");
    Ok(())
}
