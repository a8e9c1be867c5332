//! The sidecar's trace context over its HTTP API (a metadata read with chosen headers), and its
//! Prometheus endpoint.

use async_trait::async_trait;
use contract::{Error, Result};
use suites::observability::{Answer, Api, Form, Scrape, TraceContext, TraceProbe};

use super::SidecarClient;

/// Trace context through the HTTP API.
#[derive(Debug, Clone)]
pub struct HttpTraceProbe(pub SidecarClient);

#[async_trait]
impl TraceProbe for HttpTraceProbe {
    fn api(&self) -> Api {
        Api::Http
    }

    async fn call(&self, sent: &TraceContext, form: Form) -> Result<Answer> {
        if form != Form::Text {
            return Err(Error::unsupported("binary trace context over HTTP"));
        }
        let mut request = self.0.get("/v1.0/metadata");
        for (name, value) in
            [("traceparent", &sent.traceparent), ("tracestate", &sent.tracestate), ("baggage", &sent.baggage)]
        {
            if let Some(value) = value {
                request = request.header(name, value);
            }
        }
        let response = self.0.send(request).await?;
        let status = response.status();
        if !status.is_success() {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let code = body["errorCode"].as_str().unwrap_or_default();
            return Ok(Answer::Rejected(format!("{} {code}", status.as_u16())));
        }
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(Answer::Served(TraceContext {
            traceparent: header("traceparent"),
            tracestate: header("tracestate"),
            baggage: header("baggage"),
        }))
    }
}

/// A Prometheus endpoint, e.g. `http://127.0.0.1:9090/metrics`.
#[derive(Debug, Clone)]
pub struct MetricsEndpoint {
    client: reqwest::Client,
    url: String,
}

impl MetricsEndpoint {
    /// The endpoint at `url`; a URL without a path gets `/metrics`.
    pub fn new(url: &str) -> Self {
        let url = url.trim_end_matches('/');
        let has_path = url.split_once("://").map_or(url, |(_, rest)| rest).contains('/');
        let url = if has_path { url.to_owned() } else { format!("{url}/metrics") };
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().unwrap_or_default();
        Self { client, url }
    }
}

#[async_trait]
impl Scrape for MetricsEndpoint {
    async fn scrape(&self) -> Result<String> {
        let failed = |reason: String| Error::Backend(format!("cannot read the metrics at {}: {reason}", self.url));
        let response = self.client.get(&self.url).send().await.map_err(|e| failed(e.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("status {}", response.status())));
        }
        response.text().await.map_err(|e| failed(e.to_string()))
    }
}
