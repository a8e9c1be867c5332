//! gRPC errors as daprd sends them (dapr-grpc-api.md §2): a legacy status with no details, or
//! a rich one whose `google.rpc.ErrorInfo` (domain `dapr.io`) names the reason, which is what
//! SDKs compare (Python's `DaprGrpcError.reason()`).

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// A status with no details: the legacy `APIError` family (secrets, lock, invocation).
pub(super) fn legacy(code: Code, message: impl Into<String>) -> Status {
    Status::new(code, message)
}

/// A status with `ErrorInfo{reason, domain: "dapr.io", metadata}`.
pub(super) fn rich(code: Code, reason: &str, message: impl Into<String>, metadata: &[(&str, &str)]) -> Status {
    let metadata: HashMap<String, String> = metadata.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Status::with_error_details(code, message, ErrorDetails::with_error_info(reason, "dapr.io", metadata))
}

/// [`rich`] plus the `ResourceInfo` naming the component the error is about.
pub(super) fn about(code: Code, reason: &str, message: impl Into<String>, kind: &str, name: &str) -> Status {
    let mut details = ErrorDetails::with_error_info(reason, "dapr.io", HashMap::new());
    details.set_resource_info(kind, name, "", "");
    Status::with_error_details(code, message, details)
}
