//! Malformed input to the gRPC API: random bytes as the message of every unary `Dapr` RPC the
//! sidecar serves, and messages over `--max-body-size`. Each must be answered with a status
//! (decoding errors `Internal`, as tonic and daprd's grpc-go answer them; too large
//! `ResourceExhausted`), never a panic or a dropped connection, and the sidecar must keep
//! answering afterwards.

mod common;

use bytes::{Buf, BufMut};
use common::sidecar_env::start;
use proptest::prelude::*;
use runtime_api::tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use runtime_api::tonic::codegen::http::uri::PathAndQuery;
use runtime_api::tonic::transport::Channel;
use runtime_api::tonic::{Code, Request, Status};

/// Messages as raw bytes, both ways.
#[derive(Default, Clone, Copy)]
struct Raw;

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

const RPCS: &[&str] = &[
    "GetState",
    "GetBulkState",
    "SaveState",
    "QueryStateAlpha1",
    "DeleteState",
    "DeleteBulkState",
    "ExecuteStateTransaction",
    "PublishEvent",
    "BulkPublishEvent",
    "InvokeBinding",
    "GetSecret",
    "GetBulkSecret",
    "GetConfiguration",
    "UnsubscribeConfiguration",
    "TryLockAlpha1",
    "UnlockAlpha1",
    "GetMetadata",
    "SetMetadata",
    "InvokeService",
];

async fn call(channel: Channel, rpc: &str, message: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = runtime_api::tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
    let path: PathAndQuery = format!("/dapr.proto.runtime.v1.Dapr/{rpc}").parse().expect("path");
    grpc.unary(Request::new(message), path, Raw).await.map(|r| r.into_inner())
}

/// The codes a malformed or unusual message may be answered with; anything else (in
/// particular `Unknown` from a panic, or `Unavailable` from a dropped connection) is a defect.
fn acceptable(code: Code) -> bool {
    matches!(
        code,
        Code::Ok
            | Code::Internal
            | Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::Aborted
            | Code::NotFound
            | Code::Unimplemented
    )
}

#[test]
fn random_messages_get_statuses_and_the_sidecar_keeps_answering() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let e = runtime.block_on(start(None, "", None));
    let channel = runtime.block_on(Channel::from_shared(e.grpc.clone()).expect("url").connect()).expect("connect");
    let config = ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(rpc in proptest::sample::select(RPCS), message in proptest::collection::vec(any::<u8>(), 0..256))| {
        let answer = runtime.block_on(call(channel.clone(), rpc, message.clone()));
        if let Err(status) = &answer {
            prop_assert!(acceptable(status.code()), "{rpc} with {message:?}: {status:?}");
        }
    });
    // Still serving.
    let metadata = runtime.block_on(call(channel, "GetMetadata", Vec::new()));
    assert!(metadata.is_ok(), "{metadata:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_body_limit_is_resource_exhausted() {
    let e = start(None, "", None).await;
    let channel = Channel::from_shared(e.grpc.clone()).expect("url").connect().await.expect("connect");
    // SaveState{store_name: "statestore", states: [{key: "k", value: 2 MiB}]} against a 1 MiB limit.
    let value = vec![b'x'; 2 << 20];
    let mut item = vec![0x0a, 1, b'k', 0x12];
    put_varint(&mut item, value.len());
    item.extend_from_slice(&value);
    let mut message = vec![0x0a, 10];
    message.extend_from_slice(b"statestore");
    message.push(0x12);
    put_varint(&mut message, item.len());
    message.extend_from_slice(&item);
    let status = call(channel.clone(), "SaveState", message).await.expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(call(channel, "GetMetadata", Vec::new()).await.is_ok(), "still serving");
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}
