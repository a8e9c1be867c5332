//! Dapr's error responses: `{"errorCode": "ERR_…", "message": "…"}` with the status code of
//! the runtime's table (dapr-http-api.md §13), and the rich "kit" form that adds `details`
//! with a `google.rpc.ErrorInfo` (dapr-http-api.md §2).

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Dapr's error code, e.g. `ERR_STATE_SAVE`.
    pub code: Cow<'static, str>,
    /// The message.
    pub message: String,
    /// `details` of the rich form (none in the legacy one).
    pub details: Vec<serde_json::Value>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into(), details: Vec::new() }
    }

    /// A rich error: `reason` is both the error code and the `ErrorInfo`'s reason (domain
    /// `dapr.io`), with `metadata`.
    pub fn rich(
        status: StatusCode,
        reason: &'static str,
        message: impl Into<String>,
        metadata: &[(&str, &str)],
    ) -> Self {
        let metadata: serde_json::Map<String, serde_json::Value> =
            metadata.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v))).collect();
        let info = serde_json::json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "domain": "dapr.io",
            "metadata": metadata,
            "reason": reason,
        });
        Self { details: vec![info], ..Self::new(status, reason, message) }
    }

    /// This error, unless the component chose its own status and code for `cause`
    /// ([`contract::Error::Coded`], a pluggable component's kit error): then those, as daprd
    /// answers.
    pub fn unless_coded(self, cause: &contract::Error) -> Self {
        match cause {
            contract::Error::Coded { status, code, message } => match StatusCode::from_u16(*status) {
                Ok(status) => Self::new(status, code.clone(), message.clone()),
                Err(_) => self,
            },
            _ => self,
        }
    }

    /// 400 `ERR_MALFORMED_REQUEST`.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ERR_MALFORMED_REQUEST", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "errorCode": self.code, "message": self.message });
        if !self.details.is_empty() {
            body["details"] = serde_json::Value::Array(self.details);
        }
        (self.status, [(axum::http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
    }
}

/// The result of a route handler.
pub type ApiResult<T = Response> = Result<T, ApiError>;
