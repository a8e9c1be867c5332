//! The Dapr HTTP API on the wire: what a sidecar answers beyond what the contract's traits can
//! see (status codes, `errorCode`s, headers, fields left out of bodies). Only the http driver
//! expresses these ([`DriverCapability::HttpApi`]): it gives every component a [`SidecarHttp`]
//! to send requests with as written. One module per block holds its cases (`state.http-api.*`,
//! …), which that block's suite lists; this one holds what they share. The answers come from
//! `dapr-http-api.md`, which follows daprd's code where its docs disagree.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::case::{CaseResult, Ctx, DriverCapability, Finding, Reach, Requirement};
use crate::ensure;

pub(crate) mod bindings;
pub(crate) mod configuration;
pub(crate) mod jobs;
pub(crate) mod lock;
pub(crate) mod pubsub;
pub(crate) mod secrets;
pub(crate) mod state;
pub(crate) mod workflows;

/// The requirement of every case here: the driver speaks the HTTP API.
pub const HTTP_API: Requirement = Requirement::Driver(DriverCapability::HttpApi);
/// The handle those cases send with.
pub const SIDECAR: Reach = Reach::of::<dyn SidecarHttp>("way to send the sidecar requests as written");

/// A sidecar's HTTP API, taking requests as written (the API token, when the run has one, is
/// added).
#[async_trait]
pub trait SidecarHttp: Send + Sync {
    /// Sends `request`; an error only when no answer came.
    async fn send(&self, request: Request) -> contract::Result<Answer>;
}

/// One request, its path relative to the sidecar (`/v1.0/state/store`).
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: &'static str,
    /// The path and query, already escaped.
    pub path: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body and its content type.
    pub body: Option<(Vec<u8>, String)>,
}

impl Request {
    /// A request with no body.
    pub fn new(method: &'static str, path: impl Into<String>) -> Self {
        Self { method, path: path.into(), headers: Vec::new(), body: None }
    }

    /// The same with a JSON body.
    pub fn json(self, body: &Value) -> Self {
        self.body(body.to_string(), "application/json")
    }

    /// The same with `body` of `content_type`.
    pub fn body(mut self, body: impl Into<Vec<u8>>, content_type: &str) -> Self {
        self.body = Some((body.into(), content_type.to_owned()));
        self
    }

    /// The same with a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn shown(&self) -> String {
        let body = self.body.as_ref().map(|(b, _)| format!(" {}", excerpt(b))).unwrap_or_default();
        format!("{} {}{body}", self.method, self.path)
    }
}

/// What the sidecar answered.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers, names lower-cased (the last value of a repeated one).
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The `errorCode` of an error body.
    pub fn error_code(&self) -> Option<String> {
        self.json()?.get("errorCode")?.as_str().map(str::to_owned)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    fn shown(&self) -> String {
        format!("{} {}", self.status, excerpt(&self.body))
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

impl Ctx {
    /// Sends `request` to the sidecar; no answer at all is a failure naming the request.
    pub async fn exchange(&self, request: Request) -> Result<Exchange, Finding> {
        let sidecar: &Arc<dyn SidecarHttp> = self.reach(SIDECAR)?;
        let shown = request.shown();
        let answer = sidecar
            .send(request)
            .await
            .map_err(|e| Finding::Fail(format!("{shown}: no answer from the sidecar: {e}")))?;
        Ok(Exchange { request: shown, answer })
    }

    /// The component's name as a path segment.
    pub fn component_segment(&self) -> String {
        segment(&self.component)
    }
}

/// A request with the answer it got, checked by the methods below, whose failures show both.
#[derive(Debug, Clone)]
pub struct Exchange {
    request: String,
    /// The answer.
    pub answer: Answer,
}

impl Exchange {
    /// Fails unless the status is `status`.
    pub fn status(&self, status: u16) -> CaseResult {
        ensure!(
            self.answer.status == status,
            "{}: expected status {status}, got {}",
            self.request,
            self.answer.shown()
        );
        Ok(())
    }

    /// Fails unless the answer is the error `status` with `errorCode` `code`, in daprd's error
    /// body: JSON (`Content-Type: application/json`) with a non-empty `message` (§0.2).
    pub fn error(&self, status: u16, code: &str) -> CaseResult {
        self.status(status)?;
        let seen = self.answer.error_code();
        ensure!(
            seen.as_deref() == Some(code),
            "{}: expected `errorCode` {code}, got {}",
            self.request,
            self.answer.shown()
        );
        let message = self.answer.json().and_then(|b| b.get("message")?.as_str().map(str::to_owned));
        self.check(message.is_some_and(|m| !m.is_empty()), "an error body without a `message`")?;
        let json = self.answer.header("content-type").is_some_and(|t| t.starts_with("application/json"));
        self.check(json, "an error body whose `Content-Type` is not application/json")
    }

    /// Fails unless the answer is `status` with no body.
    pub fn empty(&self, status: u16) -> CaseResult {
        self.status(status)?;
        ensure!(self.answer.body.is_empty(), "{}: expected no body, got {}", self.request, self.answer.shown());
        Ok(())
    }

    /// The body as JSON, or a failure showing what it was.
    pub fn json(&self) -> Result<Value, Finding> {
        self.answer
            .json()
            .ok_or_else(|| Finding::Fail(format!("{}: the body is not JSON: {}", self.request, self.answer.shown())))
    }

    /// Fails with `what` about this exchange.
    pub fn fail(&self, what: &str) -> Finding {
        Finding::Fail(format!("{}: {what}; the answer: {}", self.request, self.answer.shown()))
    }

    /// Fails with `what` unless `holds`.
    pub fn check(&self, holds: bool, what: &str) -> CaseResult {
        if holds { Ok(()) } else { Err(self.fail(what)) }
    }
}

/// Prefixes a failure with what was tried: `a zero expiry: POST … expected …`.
pub(crate) fn trying(what: &str) -> impl FnOnce(Finding) -> Finding + '_ {
    move |finding| match finding {
        Finding::Fail(m) => Finding::Fail(format!("{what}: {m}")),
        other => other,
    }
}

/// Percent-escapes a path segment (everything but RFC 3986's unreserved characters).
pub fn segment(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_escape_what_a_path_would_split_on() {
        assert_eq!(segment("a||b/c d"), "a%7C%7Cb%2Fc%20d");
    }

    #[test]
    fn a_long_body_is_cut_in_failures() {
        let shown = excerpt("é".repeat(300).as_bytes());
        assert_eq!(shown.chars().count(), 201);
    }
}
