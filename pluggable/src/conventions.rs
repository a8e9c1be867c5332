//! Dapr's semantic error conventions for pluggable components, both ways:
//! - an ETag mismatch is `FAILED_PRECONDITION` with exactly one `google.rpc.BadRequest`
//!   detail holding exactly one violation of field `etag`; an invalid ETag is
//!   `INVALID_ARGUMENT` the same way;
//! - a "kit error" is any status with exactly one `google.rpc.ErrorInfo` detail whose metadata
//!   holds `kit_error: "true"`, `http_code` and `tag`: the HTTP status and Dapr error code the
//!   sidecar must answer with;
//! - a bulk delete that affected fewer rows than asked is `INTERNAL` with exactly one
//!   `ErrorInfo` holding `expected` and `affected`;
//! - anything else is a generic failure, and when a status looks like a convention but breaks
//!   its shape, the error says which rule it broke.

use std::collections::HashMap;

use contract::Error;
use prost::Message;
use tonic::{Code, Status};

use crate::proto::rpc;

const BAD_REQUEST: &str = "type.googleapis.com/google.rpc.BadRequest";
const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";

fn with_detail(code: Code, message: &str, type_url: &str, detail: Vec<u8>) -> Status {
    let status = rpc::Status {
        code: code as i32,
        message: message.into(),
        details: vec![prost_types::Any { type_url: type_url.into(), value: detail }],
    };
    Status::with_details(code, message, status.encode_to_vec().into())
}

fn etag_status(code: Code, description: &str) -> Status {
    let violation = rpc::bad_request::FieldViolation { field: "etag".into(), description: description.into() };
    let detail = rpc::BadRequest { field_violations: vec![violation] };
    with_detail(code, description, BAD_REQUEST, detail.encode_to_vec())
}

fn kit_status(http_status: u16, tag: &str, message: &str) -> Status {
    let metadata = HashMap::from([
        ("kit_error".to_owned(), "true".to_owned()),
        ("http_code".to_owned(), http_status.to_string()),
        ("tag".to_owned(), tag.to_owned()),
    ]);
    let detail = rpc::ErrorInfo { reason: tag.into(), domain: "dapr.io".into(), metadata };
    with_detail(Code::Unknown, message, ERROR_INFO, detail.encode_to_vec())
}

/// The status a server answers a contract error with.
pub fn to_status(error: &Error) -> Status {
    match error {
        Error::EtagMismatch { .. } => etag_status(Code::FailedPrecondition, &error.to_string()),
        Error::EtagInvalid { .. } => etag_status(Code::InvalidArgument, &error.to_string()),
        Error::Coded { status, code, message } => kit_status(*status, code, message),
        Error::NotFound { .. } => Status::not_found(error.to_string()),
        Error::Unsupported { .. } => Status::unimplemented(error.to_string()),
        Error::InvalidArgument(_) => Status::invalid_argument(error.to_string()),
        // One status answers a whole bulk write: an ETag failure stays one, invalid first.
        Error::Bulk(failures) if !failures.is_empty() && failures.iter().all(|f| f.error.is_etag_error()) => {
            let first = failures.iter().find(|f| matches!(f.error, Error::EtagInvalid { .. })).unwrap_or(&failures[0]);
            to_status(&first.error)
        }
        Error::Bulk(_) | Error::Backend(_) => Status::internal(error.to_string()),
    }
}

/// The one detail of `status`, if it has exactly one.
fn sole_detail(status: &Status) -> Option<prost_types::Any> {
    let decoded = rpc::Status::decode(status.details()).ok()?;
    let [detail] = <[prost_types::Any; 1]>::try_from(decoded.details).ok()?;
    Some(detail)
}

/// True when the status carries exactly one `BadRequest` with exactly one `etag` violation.
fn is_etag_detail(status: &Status) -> bool {
    let Some(detail) = sole_detail(status).filter(|d| d.type_url == BAD_REQUEST) else { return false };
    let Ok(bad) = rpc::BadRequest::decode(detail.value.as_slice()) else { return false };
    matches!(bad.field_violations.as_slice(), [v] if v.field == "etag")
}

/// The sole `ErrorInfo` detail of `status`, if that is what it has.
fn error_info(status: &Status) -> Option<rpc::ErrorInfo> {
    let detail = sole_detail(status).filter(|d| d.type_url == ERROR_INFO)?;
    rpc::ErrorInfo::decode(detail.value.as_slice()).ok()
}

/// A kit error's status and code, or what is wrong with it.
fn kit_error(info: &rpc::ErrorInfo, message: &str) -> Result<Error, String> {
    let http = info.metadata.get("http_code").ok_or("it has no `http_code`")?;
    let status = http
        .parse::<u16>()
        .ok()
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| format!("its `http_code` `{http}` is not an HTTP status"))?;
    let tag = info.metadata.get("tag").filter(|t| !t.is_empty()).ok_or("it has no `tag` (the Dapr error code)")?;
    Ok(Error::Coded { status, code: tag.clone(), message: message.to_owned() })
}

/// The contract error a client reads from a status, for the write of `key`. A component that
/// reports an ETag conflict without the convention's detail gets a generic error, as daprd
/// gives it, and the message says what was missing.
pub fn from_status(key: &str, status: Status) -> Error {
    let message = status.message().to_owned();
    if let Some(info) = error_info(&status) {
        if info.metadata.get("kit_error").is_some_and(|v| v == "true") {
            return kit_error(&info, &message).unwrap_or_else(|broken| {
                Error::Backend(format!(
                    "a kit error (ErrorInfo with kit_error) that breaks Dapr's convention: {broken}; so a generic failure: {message}"
                ))
            });
        }
        if status.code() == Code::Internal
            && let (Some(expected), Some(affected)) = (info.metadata.get("expected"), info.metadata.get("affected"))
        {
            return match (expected.parse::<u64>(), affected.parse::<u64>()) {
                (Ok(expected), Ok(affected)) => Error::Backend(format!(
                    "the bulk delete affected {affected} row(s), {expected} expected: {message}"
                )),
                _ => Error::Backend(format!(
                    "a bulk-delete row mismatch whose `expected`/`affected` are not integers (Dapr's convention): {message}"
                )),
            };
        }
    }
    match status.code() {
        Code::FailedPrecondition if is_etag_detail(&status) => Error::etag_mismatch(key, message),
        Code::InvalidArgument if is_etag_detail(&status) => Error::EtagInvalid { key: key.to_owned(), reason: message },
        Code::Unimplemented => Error::unsupported(message),
        Code::NotFound => Error::NotFound { what: message },
        Code::InvalidArgument => Error::InvalidArgument(message),
        Code::FailedPrecondition => Error::Backend(format!(
            "FAILED_PRECONDITION without one `google.rpc.BadRequest` detail naming field `etag` (so not an ETag mismatch, by Dapr's convention): {message}"
        )),
        code => Error::Backend(format!("{code:?}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_status(code: Code, metadata: &[(&str, &str)]) -> Status {
        let metadata = metadata.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let detail = rpc::ErrorInfo { reason: "R".into(), domain: "d".into(), metadata };
        with_detail(code, "boom", ERROR_INFO, detail.encode_to_vec())
    }

    #[test]
    fn etag_errors_round_trip_and_plain_statuses_do_not_pass_for_them() {
        let mismatch = Error::etag_mismatch("k", "stale");
        assert!(matches!(from_status("k", to_status(&mismatch)), Error::EtagMismatch { .. }));
        let invalid = Error::EtagInvalid { key: "k".into(), reason: "bad".into() };
        assert!(matches!(from_status("k", to_status(&invalid)), Error::EtagInvalid { .. }));
        let plain = from_status("k", Status::failed_precondition("etag mismatch"));
        assert!(matches!(&plain, Error::Backend(m) if m.contains("without one `google.rpc.BadRequest`")), "{plain:?}");
        assert!(matches!(from_status("k", Status::unimplemented("no")), Error::Unsupported { .. }));
    }

    #[test]
    fn kit_errors_carry_their_status_and_code_and_broken_ones_say_why() {
        let kit = Error::Coded { status: 418, code: "ERR_TEAPOT".into(), message: "short and stout".into() };
        assert_eq!(from_status("k", to_status(&kit)), kit);
        let no_tag = from_status("k", info_status(Code::Unknown, &[("kit_error", "true"), ("http_code", "404")]));
        assert!(matches!(&no_tag, Error::Backend(m) if m.contains("no `tag`")), "{no_tag:?}");
        let bad_code =
            from_status("k", info_status(Code::Unknown, &[("kit_error", "true"), ("http_code", "x"), ("tag", "T")]));
        assert!(matches!(&bad_code, Error::Backend(m) if m.contains("`x` is not an HTTP status")), "{bad_code:?}");
        // Without kit_error, an ErrorInfo is just a detail.
        let plain = from_status("k", info_status(Code::NotFound, &[("http_code", "404"), ("tag", "T")]));
        assert!(matches!(plain, Error::NotFound { .. }));
    }

    #[test]
    fn bulk_delete_row_mismatches_are_decoded() {
        let mismatch = from_status("", info_status(Code::Internal, &[("expected", "3"), ("affected", "1")]));
        assert!(matches!(&mismatch, Error::Backend(m) if m.contains("affected 1 row(s), 3 expected")), "{mismatch:?}");
        let broken = from_status("", info_status(Code::Internal, &[("expected", "three"), ("affected", "1")]));
        assert!(matches!(&broken, Error::Backend(m) if m.contains("not integers")), "{broken:?}");
    }
}
