//! Requests as written, for the cases about the HTTP API itself (`suites::http_api`).

use async_trait::async_trait;
use contract::{Error, Result};
use suites::http_api::{Answer, Request, SidecarHttp};

use super::SidecarClient;

#[async_trait]
impl SidecarHttp for SidecarClient {
    async fn send(&self, request: Request) -> Result<Answer> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| Error::InvalidArgument(format!("`{}` is not an HTTP method", request.method)))?;
        let mut builder = self.request(method, &request.path);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some((body, content_type)) = request.body {
            builder = builder.header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        }
        let response = SidecarClient::send(self, builder).await?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::Backend(format!("the sidecar's answer broke off: {}", super::root_cause(&e))))?;
        Ok(Answer { status, headers, body: body.to_vec() })
    }
}
