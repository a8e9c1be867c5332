//! Request plumbing shared by the routes: the body under the size limit, `metadata.*` query
//! parameters, and Dapr's unescaping of route parameters.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use contract::Metadata;

use super::api_error::ApiError;

/// The request body, read whole; larger than the configured limit is 413.
#[derive(Debug, Clone)]
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "ERR_BODY_READ",
                "the request body is larger than the sidecar's limit (set --max-body-size to raise it)",
            )),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "ERR_BODY_READ",
                format!("failed to read the request body: {}", rejection.body_text()),
            )),
        }
    }
}

/// Parses a JSON body, answering 400 `ERR_MALFORMED_REQUEST` with the decoder's message.
pub fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::malformed(format!("failed deserializing HTTP body: {e}")))
}

/// Every `metadata.<k>=<v>` query parameter as `k: v`; the first value of a key wins.
pub fn query_metadata(query: &[(String, String)]) -> Metadata {
    let mut metadata = Metadata::new();
    for (k, v) in query {
        if let Some(name) = k.strip_prefix("metadata.") {
            metadata.entry(name.to_owned()).or_insert_with(|| v.clone());
        }
    }
    metadata
}

/// The first value of a query parameter.
pub fn query_value<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Unescapes a raw route parameter as Go's `url.QueryUnescape` does: `%XX` escapes and `+`
/// as a space. A malformed escape is an error.
pub fn unescape(raw: &str) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| ApiError::malformed(format!("invalid URL escape in `{raw}`")))?;
                out.push(byte);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::malformed(format!("`{raw}` does not decode to UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescaping_follows_query_unescape() {
        assert_eq!(unescape("a%20b+c%2Bd").expect("ok"), "a b c+d");
        assert_eq!(unescape("%E2%8F%B1").expect("ok"), "⏱");
        assert!(unescape("bad%zz").is_err());
        assert!(unescape("cut%2").is_err());
    }

    #[test]
    fn metadata_comes_from_prefixed_parameters() {
        let q = vec![
            ("metadata.ttlInSeconds".to_owned(), "10".to_owned()),
            ("metadata.ttlInSeconds".to_owned(), "20".to_owned()),
            ("other".to_owned(), "x".to_owned()),
        ];
        assert_eq!(query_metadata(&q), Metadata::from([("ttlInSeconds".to_owned(), "10".to_owned())]));
    }
}
