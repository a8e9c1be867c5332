//! daprd's tables between HTTP statuses and gRPC codes (dapr-grpc-api.md §3.1), where an
//! invocation crosses from one protocol to the other: the one convention both sides of the
//! API share, so the reference runtime and certify's app translate alike.

use tonic::Code;

/// The gRPC code daprd gives an HTTP app's answer for a gRPC caller.
pub fn grpc_code_of(http_status: u16) -> Code {
    match http_status {
        200..=299 => Code::Ok,
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        408 => Code::Cancelled,
        409 => Code::AlreadyExists,
        429 => Code::ResourceExhausted,
        501 => Code::Unimplemented,
        503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        _ => Code::Unknown,
    }
}

/// The HTTP status daprd gives a gRPC app's answer for an HTTP caller.
pub fn http_status_of(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::Cancelled => 408,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::DeadlineExceeded => 504,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::PermissionDenied => 403,
        Code::Unauthenticated => 401,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        _ => 500,
    }
}
