//! Dapr's semantic error conventions for pluggable components, both ways: an ETag mismatch is
//! `FAILED_PRECONDITION` with exactly one `google.rpc.BadRequest` detail holding exactly one
//! violation of field `etag`; an invalid ETag is `INVALID_ARGUMENT` the same way; anything
//! else is a generic failure.

use contract::Error;
use prost::Message;
use tonic::{Code, Status};

use crate::proto::rpc;

const BAD_REQUEST: &str = "type.googleapis.com/google.rpc.BadRequest";

fn etag_status(code: Code, description: &str) -> Status {
    let violation = rpc::bad_request::FieldViolation { field: "etag".into(), description: description.into() };
    let detail = rpc::BadRequest { field_violations: vec![violation] };
    let status = rpc::Status {
        code: code as i32,
        message: description.into(),
        details: vec![prost_types::Any { type_url: BAD_REQUEST.into(), value: detail.encode_to_vec() }],
    };
    Status::with_details(code, description, status.encode_to_vec().into())
}

/// The status a server answers a contract error with.
pub fn to_status(error: &Error) -> Status {
    match error {
        Error::EtagMismatch { .. } => etag_status(Code::FailedPrecondition, &error.to_string()),
        Error::EtagInvalid { .. } => etag_status(Code::InvalidArgument, &error.to_string()),
        Error::NotFound { .. } => Status::not_found(error.to_string()),
        Error::Unsupported { .. } => Status::unimplemented(error.to_string()),
        Error::InvalidArgument(_) => Status::invalid_argument(error.to_string()),
        Error::Bulk(_) | Error::Backend(_) => Status::internal(error.to_string()),
    }
}

/// True when the status carries exactly one `BadRequest` with exactly one `etag` violation.
fn is_etag_detail(status: &Status) -> bool {
    let Ok(decoded) = rpc::Status::decode(status.details()) else { return false };
    let [detail] = decoded.details.as_slice() else { return false };
    if detail.type_url != BAD_REQUEST {
        return false;
    }
    let Ok(bad) = rpc::BadRequest::decode(detail.value.as_slice()) else { return false };
    matches!(bad.field_violations.as_slice(), [v] if v.field == "etag")
}

/// The contract error a client reads from a status, for the write of `key`. A component that
/// reports an ETag conflict without the convention's detail gets a generic error, as daprd
/// gives it, and the message says what was missing.
pub fn from_status(key: &str, status: Status) -> Error {
    let message = status.message().to_owned();
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
}
