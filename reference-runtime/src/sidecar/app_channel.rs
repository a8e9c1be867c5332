//! The channel to the app: HTTP on loopback, with `dapr-api-token` when `APP_API_TOKEN` is set.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

/// What the app answered.
#[derive(Debug, Clone)]
pub struct AppResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// Calls the app.
#[derive(Debug, Clone)]
pub struct AppChannel {
    client: reqwest::Client,
    port: u16,
    token: Option<String>,
}

/// How long one call to the app may take before it counts as failed.
const APP_TIMEOUT: Duration = Duration::from_secs(30);

impl AppChannel {
    /// A channel to the app on `127.0.0.1:port`.
    pub fn new(port: u16, token: Option<String>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(APP_TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        Self { client, port, token }
    }

    /// The app's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends a request; `path` starts with `/` and may carry a query string.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<AppResponse, String> {
        let url = format!("http://127.0.0.1:{}{}", self.port, path);
        let mut request = self.client.request(method, &url).headers(headers).body(body);
        if let Some(token) = &self.token {
            request = request.header("dapr-api-token", token);
        }
        let response = request.send().await.map_err(|e| format!("calling the app at {url}: {e}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| format!("reading the app's answer from {url}: {e}"))?;
        Ok(AppResponse { status, headers, body })
    }

    /// POSTs `body` with `content_type` and extra headers.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        extra: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<AppResponse, String> {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(content_type) {
            headers.insert(axum::http::header::CONTENT_TYPE, v);
        }
        for (k, v) in extra {
            // Metadata that is not a valid header is left out rather than failing delivery.
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                headers.insert(name, value);
            }
        }
        self.call(Method::POST, path, headers, Bytes::from(body)).await
    }
}
