//! Dapr's error responses: `{"errorCode": "ERR_…", "message": "…"}` with the status code of
//! the runtime's table (dapr-http-api.md §13).

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
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into() }
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
        let body = serde_json::json!({ "errorCode": self.code, "message": self.message });
        (self.status, [(axum::http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
    }
}

/// The result of a route handler.
pub type ApiResult<T = Response> = Result<T, ApiError>;
