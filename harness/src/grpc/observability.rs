//! The sidecar's trace context over its gRPC API: `GetMetadata` with chosen metadata, text
//! (`traceparent`, `tracestate`) or binary (`grpc-trace-bin`), the answer's `grpc-trace-bin`
//! read back as a traceparent. The binary codec is certify's own, not the runtime's.

use async_trait::async_trait;
use contract::Result;
use runtime_api::runtime::GetMetadataRequest;
use runtime_api::tonic;
use suites::observability::{Answer, Api, Form, TraceContext, TraceProbe};
use tonic::metadata::{BinaryMetadataValue, MetadataMap};

use super::GrpcSidecar;

/// Trace context through the gRPC API.
#[derive(Debug, Clone)]
pub struct GrpcTraceProbe(pub GrpcSidecar);

#[async_trait]
impl TraceProbe for GrpcTraceProbe {
    fn api(&self) -> Api {
        Api::Grpc
    }

    async fn call(&self, sent: &TraceContext, form: Form) -> Result<Answer> {
        let mut request = self.0.request(GetMetadataRequest {});
        write(request.metadata_mut(), sent, form);
        match self.0.client().get_metadata(request).await {
            Ok(answer) => Ok(Answer::Served(read(answer.metadata()))),
            Err(status) if status.code() == tonic::Code::InvalidArgument => {
                Ok(Answer::Rejected(format!("{:?}", status.code())))
            }
            Err(status) => Err(self.0.error("metadata", status)),
        }
    }
}

fn write(metadata: &mut MetadataMap, sent: &TraceContext, form: Form) {
    if let Some(parent) = &sent.traceparent {
        match form {
            Form::Binary => {
                metadata.insert_bin("grpc-trace-bin", BinaryMetadataValue::from_bytes(&to_binary(parent)));
            }
            Form::Text => insert(metadata, "traceparent", parent),
        }
    }
    for (name, value) in [("tracestate", &sent.tracestate), ("baggage", &sent.baggage)] {
        if let Some(value) = value {
            insert(metadata, name, value);
        }
    }
}

fn insert(metadata: &mut MetadataMap, name: &'static str, value: &str) {
    if let Ok(value) = value.parse() {
        metadata.insert(name, value);
    }
}

/// The trace context a call's metadata carries, as `traceparent` (from `grpc-trace-bin`, the
/// form a gRPC peer owes: O4, O5) and `tracestate` entries.
pub(crate) fn trace_metadata(metadata: &MetadataMap) -> Vec<(String, String)> {
    let context = read(metadata);
    [("traceparent", context.traceparent), ("tracestate", context.tracestate)]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v?)))
        .collect()
}

fn read(metadata: &MetadataMap) -> TraceContext {
    let text = |name: &str| metadata.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let binary =
        metadata.get_bin("grpc-trace-bin").and_then(|v| v.to_bytes().ok()).and_then(|b| from_binary(b.as_ref()));
    // Only the binary form counts: a text `traceparent` alone is not what O4 and O5 ask of gRPC.
    TraceContext { traceparent: binary, tracestate: text("tracestate"), baggage: text("baggage") }
}

/// `grpc-trace-bin` for a traceparent: version, then fields 0 (trace id), 1 (span id) and 2
/// (flags), each after its id. A traceparent that is not four hex fields goes as its raw bytes,
/// which no reader can take for a context.
fn to_binary(traceparent: &str) -> Vec<u8> {
    let fields: Option<Vec<Vec<u8>>> = traceparent.split('-').map(hex).collect();
    match fields.as_deref() {
        Some([version, trace, span, flags]) if version.len() == 1 && flags.len() == 1 => {
            let mut out = vec![version[0], 0];
            out.extend(trace);
            out.push(1);
            out.extend(span);
            out.push(2);
            out.push(flags[0]);
            out
        }
        _ => traceparent.as_bytes().to_vec(),
    }
}

/// The traceparent a 29-byte `grpc-trace-bin` carries.
fn from_binary(bytes: &[u8]) -> Option<String> {
    match bytes {
        [0, 0, rest @ ..] if rest.len() == 27 && rest[16] == 1 && rest[25] == 2 => {
            let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
            Some(format!("00-{}-{}-{:02x}", hex(&rest[..16]), hex(&rest[17..25]), rest[26]))
        }
        _ => None,
    }
}

fn hex(field: &str) -> Option<Vec<u8>> {
    if !field.len().is_multiple_of(2) {
        return None;
    }
    (0..field.len()).step_by(2).map(|i| u8::from_str_radix(field.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_context_round_trips() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let bytes = to_binary(parent);
        assert_eq!(bytes.len(), 29);
        assert_eq!(from_binary(&bytes).as_deref(), Some(parent));
        assert_eq!(from_binary(&to_binary("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7")), None);
    }
}
