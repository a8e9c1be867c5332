//! The service-invocation suite: a sidecar must pass a call to the app unchanged (verb,
//! cleaned method path, query string, headers, body) and the app's answer back unchanged
//! (status, headers, body), whether the target is named in the URL or by the `dapr-app-id`
//! header. Dapr's conformance suite does not cover service invocation at all.
//!
//! The app is certify: it serves [`ECHO_PREFIX`], which answers a [`MethodCall`] with what it
//! received, and lets the call choose the status, a reply header and whether the body is
//! echoed raw (see the `ECHO_*` header names).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use contract::Block;

use crate::case::{Case, CaseResult, Ctx, DriverCapability, Finding, Must, Reach, Requirement};
use crate::suite::Suite;
use crate::{case, ensure, ensure_eq};

const BLOCK: Block = Block::INVOCATION;
/// What every invocation case calls through.
pub const INVOKER: Reach = Reach::of::<dyn Invoker>("invoker");

/// The service-invocation suite.
pub const SUITE: Suite = Suite { block: BLOCK, needs: &[INVOKER], cases, prepare: None };

/// The app's echo route: every method under it answers with what it received.
pub const ECHO_PREFIX: &str = "/certify-echo";
/// Request header: the status the echo answers with.
pub const ECHO_STATUS: &str = "x-certify-status";
/// Request header: a value the echo sends back in the [`ECHO_REPLY`] response header.
pub const ECHO_REPLY_WITH: &str = "x-certify-reply-with";
/// Response header carrying [`ECHO_REPLY_WITH`]'s value.
pub const ECHO_REPLY: &str = "x-certify-reply";
/// Request header: `body` makes the echo answer with the request body itself.
pub const ECHO_MODE: &str = "x-certify-echo";

/// The app answers over HTTP, so whatever status it picks can reach the caller.
#[derive(Debug)]
pub struct HttpApp;
/// An app that answers with any HTTP status: a gRPC app's answer is OK or an error code, and
/// 201 or 202 have no gRPC form.
pub const HTTP_STATUSES: Reach = Reach::of::<HttpApp>("app answering with HTTP statuses")
    .hinted("the app speaks gRPC (--app-protocol grpc), where 201 and 202 have no form");

/// How the call names its target app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// `/v1.0/invoke/{app}/method/{method}`.
    Path,
    /// The `dapr-app-id` header on the method's own path.
    Header,
    /// Neither: a path no route matches, without the header.
    None,
}

/// One call of an app method through a sidecar.
#[derive(Debug, Clone)]
pub struct MethodCall {
    /// The HTTP verb.
    pub verb: String,
    /// The method path, without a leading `/` (e.g. `certify-echo/api/v1/add`).
    pub method: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// How the target is named.
    pub addressing: Addressing,
}

impl MethodCall {
    /// A call of `method` under the echo route with `verb`.
    pub fn echo(verb: &str, method: &str) -> Self {
        Self {
            verb: verb.to_owned(),
            method: format!("{}/{method}", ECHO_PREFIX.trim_start_matches('/')),
            query: None,
            headers: Vec::new(),
            body: Vec::new(),
            addressing: Addressing::Path,
        }
    }

    /// The same call with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// The answer, as the caller sees it.
#[derive(Debug, Clone, Default)]
pub struct MethodReply {
    /// The status code.
    pub status: u16,
    /// Response headers, names lower-case.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

/// What the echo received, as it answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echoed {
    /// The verb.
    pub verb: String,
    /// The path.
    pub path: String,
    /// The raw query string.
    pub query: Option<String>,
    /// The headers, names lower-case (repeated ones joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// The body's length.
    pub body_len: usize,
}

/// Calls app methods through a sidecar.
#[async_trait]
pub trait Invoker: Send + Sync {
    /// Makes one call.
    async fn call(&self, call: MethodCall) -> contract::Result<MethodReply>;
}

/// Every service-invocation case.
fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "invocation.trace-context.propagated",
            "O5",
            "A call's trace id MUST reach the app unchanged, with its `tracestate`; a call without a `traceparent` MUST reach the app with a valid one.",
            [],
            ["observability"],
            20,
            trace_propagated
        ),
        case!(
            BLOCK,
            "invocation.verbs.passed-through",
            "certify",
            "Every HTTP verb MUST reach the app as sent.",
            [],
            [],
            20,
            verbs
        ),
        case!(
            BLOCK,
            "invocation.method.path-cleaned",
            "certify",
            "The method path MUST reach the app cleaned of empty, `.` and `..` segments, and otherwise unchanged.",
            [],
            [],
            20,
            paths
        ),
        case!(
            BLOCK,
            "invocation.query.verbatim",
            "certify",
            "The query string MUST reach the app verbatim.",
            [],
            [],
            20,
            query
        ),
        case!(
            BLOCK,
            "invocation.headers.forwarded",
            "certify",
            "Request headers MUST reach the app, `dapr-caller-app-id` MUST be added, and values a caller forges for it MUST be replaced.",
            [],
            [],
            20,
            headers
        ),
        case!(
            BLOCK,
            "invocation.body.byte-exact",
            "certify",
            "A binary request body MUST reach the app byte for byte, and the app's body MUST come back byte for byte.",
            [],
            [],
            20,
            body
        ),
        case!(
            BLOCK,
            "invocation.status.passed-through",
            "certify",
            "The app's status code and body MUST reach the caller unchanged, errors included.",
            [Requirement::Reach(HTTP_STATUSES)],
            [],
            20,
            statuses
        ),
        case!(
            BLOCK,
            "invocation.reply-headers.passed-through",
            "certify",
            "The app's response headers MUST reach the caller.",
            [],
            [],
            20,
            reply_headers
        ),
        case!(
            BLOCK,
            "invocation.header-addressing",
            "certify",
            "A call naming its app by the `dapr-app-id` header MUST reach the app at its own path, without that header.",
            // A rule of the HTTP API's addressing; gRPC names the app in `InvokeService`.
            [Requirement::Driver(DriverCapability::HttpApi)],
            [],
            20,
            header_addressing
        ),
        case!(
            BLOCK,
            "invocation.no-app-id-rejected",
            "certify",
            "A call that names no app MUST be answered 404 with `ERR_DIRECT_INVOKE`.",
            [Requirement::Driver(DriverCapability::HttpApi)],
            [],
            20,
            no_app_id
        ),
    ]
}

fn invoker(ctx: &Ctx) -> Result<&Arc<dyn Invoker>, Finding> {
    ctx.reach(INVOKER)
}

/// Makes `call` and reads what the echo received.
async fn echoed(ctx: &Ctx, call: MethodCall) -> Result<(MethodReply, Echoed), Finding> {
    let what = format!("{} {}", call.verb, call.method);
    let reply = invoker(ctx)?.call(call).await.must(&what)?;
    ensure!(reply.status == 200, "{what} answered {}: {}", reply.status, String::from_utf8_lossy(&reply.body));
    let seen = serde_json::from_slice(&reply.body).map_err(|e| {
        Finding::Fail(format!(
            "{what}: the app's echo came back altered ({e}): {:?}",
            String::from_utf8_lossy(&reply.body)
        ))
    })?;
    Ok((reply, seen))
}

async fn verbs(ctx: Ctx) -> CaseResult {
    for verb in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let (_, seen) = echoed(&ctx, MethodCall::echo(verb, "verbs")).await?;
        ensure_eq!(seen.verb, verb, "the verb the app received");
    }
    Ok(())
}

async fn paths(ctx: Ctx) -> CaseResult {
    for (method, expected) in [
        ("api/v1/add", "/certify-echo/api/v1/add"),
        ("a//b/./c/../d", "/certify-echo/a/b/d"),
        ("with-dash_and.dot~tilde", "/certify-echo/with-dash_and.dot~tilde"),
    ] {
        let (_, seen) = echoed(&ctx, MethodCall::echo("GET", method)).await?;
        ensure_eq!(seen.path, expected, "the path the app received for method `{method}`");
    }
    Ok(())
}

async fn query(ctx: Ctx) -> CaseResult {
    let raw = "a=1&b=two%20words&a=3&empty=&flag";
    let mut call = MethodCall::echo("GET", "query");
    call.query = Some(raw.to_owned());
    let (_, seen) = echoed(&ctx, call).await?;
    ensure_eq!(seen.query.as_deref(), Some(raw), "the query string the app received");
    Ok(())
}

async fn headers(ctx: Ctx) -> CaseResult {
    let probe = format!("{}-probe", ctx.namespace);
    let call = MethodCall::echo("POST", "headers")
        .header("x-certify-probe", &probe)
        .header("content-type", "application/x-certify")
        .header("dapr-caller-app-id", "forged");
    let (_, seen) = echoed(&ctx, call).await?;
    ensure_eq!(seen.headers.get("x-certify-probe"), Some(&probe), "header `x-certify-probe` at the app");
    ensure_eq!(
        seen.headers.get("content-type").map(String::as_str),
        Some("application/x-certify"),
        "header `content-type` at the app"
    );
    let caller = seen.headers.get("dapr-caller-app-id");
    ensure!(caller.is_some(), "the app received no `dapr-caller-app-id` (headers: {:?})", seen.headers);
    ensure!(caller.is_some_and(|c| c != "forged"), "the caller's forged `dapr-caller-app-id` reached the app");
    Ok(())
}

async fn body(ctx: Ctx) -> CaseResult {
    let mut sent: Vec<u8> = (0..=255u8).collect();
    sent.extend(ctx.namespace.bytes());
    sent.extend((0..64 * 1024).map(|i| (i * 31 % 251) as u8));
    let mut call =
        MethodCall::echo("POST", "body").header(ECHO_MODE, "body").header("content-type", "application/octet-stream");
    call.body = sent.clone();
    let reply = invoker(&ctx)?.call(call).await.must("POST with a binary body")?;
    ensure_eq!(reply.status, 200, "the status");
    ensure!(
        reply.body == sent,
        "the body came back altered: {} bytes sent, {} received{}",
        sent.len(),
        reply.body.len(),
        sent.iter()
            .zip(&reply.body)
            .position(|(a, b)| a != b)
            .map(|i| format!(", first difference at byte {i}"))
            .unwrap_or_default()
    );
    Ok(())
}

async fn statuses(ctx: Ctx) -> CaseResult {
    for status in [201u16, 202, 400, 404, 409, 500, 503] {
        let call = MethodCall::echo("POST", "status").header(ECHO_STATUS, &status.to_string());
        let reply = invoker(&ctx)?.call(call).await.must(&format!("a call answered {status}"))?;
        ensure_eq!(reply.status, status, "the status the caller saw");
        let seen: Result<Echoed, _> = serde_json::from_slice(&reply.body);
        ensure!(
            seen.is_ok_and(|e| e.path == "/certify-echo/status"),
            "the app's body for status {status} did not come back: {:?}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    Ok(())
}

async fn reply_headers(ctx: Ctx) -> CaseResult {
    let value = format!("{}-reply", ctx.namespace);
    let (reply, _) = echoed(&ctx, MethodCall::echo("GET", "reply").header(ECHO_REPLY_WITH, &value)).await?;
    ensure_eq!(reply.headers.get(ECHO_REPLY), Some(&value), "the app's `{ECHO_REPLY}` header at the caller");
    Ok(())
}

async fn header_addressing(ctx: Ctx) -> CaseResult {
    let mut call = MethodCall::echo("PUT", "by-header");
    call.addressing = Addressing::Header;
    call.query = Some("q=1".into());
    let (_, seen) = echoed(&ctx, call).await?;
    ensure_eq!(seen.path, "/certify-echo/by-header", "the path the app received");
    ensure_eq!(seen.query.as_deref(), Some("q=1"), "the query the app received");
    ensure_eq!(seen.verb, "PUT", "the verb the app received");
    ensure!(!seen.headers.contains_key("dapr-app-id"), "the `dapr-app-id` header reached the app");
    Ok(())
}

async fn no_app_id(ctx: Ctx) -> CaseResult {
    let mut call = MethodCall::echo("GET", "nobody");
    call.addressing = Addressing::None;
    let reply = invoker(&ctx)?.call(call).await.must("a call without an app id")?;
    ensure_eq!(reply.status, 404, "the status");
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    ensure_eq!(body["errorCode"].as_str(), Some("ERR_DIRECT_INVOKE"), "the error code");
    Ok(())
}

async fn trace_propagated(ctx: Ctx) -> CaseResult {
    use crate::observability::{TRACE_ID, trace_id};
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let call =
        MethodCall::echo("GET", "traced").header("traceparent", &traceparent).header("tracestate", "congo=t61rcWkgMzE");
    let (_, seen) = echoed(&ctx, call).await?;
    let received = seen.headers.get("traceparent").cloned().unwrap_or_default();
    ensure_eq!(
        trace_id(&received),
        Some(TRACE_ID.to_owned()),
        "the trace id of the traceparent `{received}` the app received"
    );
    ensure_eq!(
        seen.headers.get("tracestate").map(String::as_str),
        Some("congo=t61rcWkgMzE"),
        "the tracestate the app received"
    );
    let (_, seen) = echoed(&ctx, MethodCall::echo("GET", "untraced")).await?;
    let received = seen.headers.get("traceparent").cloned().unwrap_or_default();
    ensure!(
        trace_id(&received).is_some(),
        "a call without a traceparent reached the app with `{received}`, not a valid one"
    );
    Ok(())
}
