//! The sidecar's gRPC API (`dapr.proto.runtime.v1.Dapr`) driven with the generated client:
//! the same components as the HTTP tests, checked in gRPC's own forms (statuses and
//! `ErrorInfo` reasons, dapr-grpc-api.md §2–3).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::sidecar_env::{Env, start};
use runtime_api::common::{Etag, StateItem, StateOptions, state_options::StateConcurrency};
use runtime_api::runtime::dapr_client::DaprClient;
use runtime_api::runtime::*;
use runtime_api::tonic::transport::Channel;
use runtime_api::tonic::{Code, Request, Status};
use serde_json::json;
use tonic_types::StatusExt;

async fn client(e: &Env) -> DaprClient<Channel> {
    DaprClient::connect(e.grpc.clone()).await.expect("connect to the gRPC API")
}

fn item(key: &str, value: &[u8]) -> StateItem {
    StateItem { key: key.into(), value: value.to_vec(), ..Default::default() }
}

fn save(store: &str, states: Vec<StateItem>) -> SaveStateRequest {
    SaveStateRequest { store_name: store.into(), states }
}

fn get(key: &str) -> GetStateRequest {
    GetStateRequest { store_name: "statestore".into(), key: key.into(), ..Default::default() }
}

/// The status's code and its `ErrorInfo` reason, if any.
fn code_and_reason(status: &Status) -> (Code, Option<String>) {
    (status.code(), status.get_details_error_info().map(|i| i.reason))
}

fn rich(code: Code, reason: &str) -> (Code, Option<String>) {
    (code, Some(reason.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_round_trips_bytes_and_answers_etag_errors_in_grpc_form() {
    let e = start(None, "", None).await;
    let mut c = client(&e).await;
    c.save_state(save("statestore", vec![item("k1", b"\x00raw bytes"), item("k2", b"two")])).await.expect("save");
    let got = c.get_state(get("k1")).await.expect("get").into_inner();
    assert_eq!(got.data, b"\x00raw bytes", "bytes as given, not JSON-encoded");
    assert!(!got.etag.is_empty(), "an ETag");
    let missing = c.get_state(get("missing")).await.expect("a missing key is OK").into_inner();
    assert_eq!((missing.data.as_slice(), missing.etag.as_str()), (&b""[..], ""));

    // Stale ETag: Aborted on save and delete, reason the legacy code.
    let stale = StateItem { etag: Some(Etag { value: "stale".into() }), ..item("k1", b"x") };
    let err = c.save_state(save("statestore", vec![stale])).await.expect_err("stale etag");
    assert_eq!(code_and_reason(&err), rich(Code::Aborted, "ERR_STATE_SAVE"), "{err:?}");
    let delete = DeleteStateRequest {
        store_name: "statestore".into(),
        key: "k1".into(),
        etag: Some(Etag { value: "stale".into() }),
        ..Default::default()
    };
    let err = c.delete_state(delete.clone()).await.expect_err("stale etag on delete");
    assert_eq!(code_and_reason(&err), rich(Code::Aborted, "ERR_STATE_DELETE"));
    let current = DeleteStateRequest { etag: Some(Etag { value: got.etag.clone() }), ..delete };
    c.delete_state(current).await.expect("the current etag deletes");
    assert!(c.get_state(get("k1")).await.expect("get").into_inner().data.is_empty());

    // First-write: a save without an ETag of an existing key fails.
    let first_write = StateItem {
        options: Some(StateOptions { concurrency: StateConcurrency::ConcurrencyFirstWrite as i32, consistency: 0 }),
        ..item("k2", b"again")
    };
    let err = c.save_state(save("statestore", vec![first_write])).await.expect_err("first-write");
    assert_eq!(err.code(), Code::Aborted, "{err:?}");

    // Keys with `||`, unknown stores, empty keys.
    let err = c.get_state(get("a||b")).await.expect_err("illegal key");
    assert_eq!(code_and_reason(&err), rich(Code::InvalidArgument, "DAPR_STATE_ILLEGAL_KEY"));
    let err = c.save_state(save("nope", vec![item("k", b"v")])).await.expect_err("unknown store");
    assert_eq!(code_and_reason(&err), rich(Code::InvalidArgument, "DAPR_STATE_NOT_FOUND"));
    let err = c.save_state(save("statestore", vec![item("", b"v")])).await.expect_err("empty key");
    assert_eq!(code_and_reason(&err), rich(Code::InvalidArgument, "ERR_STATE_SAVE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_transactions_and_queries_share_the_http_apis_keys() {
    let e = start(None, "", None).await;
    let mut c = client(&e).await;
    let json_item = |k: &str, v: serde_json::Value| item(k, v.to_string().as_bytes());
    c.save_state(save("statestore", vec![json_item("a", json!({"n": 1})), json_item("b", json!({"n": 2}))]))
        .await
        .expect("save");
    let bulk = GetBulkStateRequest {
        store_name: "statestore".into(),
        keys: vec!["a".into(), "b".into(), "c".into()],
        ..Default::default()
    };
    let items = c.get_bulk_state(bulk).await.expect("bulk get").into_inner().items;
    let by_key: HashMap<_, _> = items.iter().map(|i| (i.key.as_str(), i.data.as_slice())).collect();
    assert_eq!(by_key.len(), 3, "{items:?}");
    assert_eq!(by_key["c"], b"", "a missing key has no data");

    // What gRPC wrote, HTTP reads, under the same app-id prefix.
    let http = e.http.get(e.url("/v1.0/state/statestore/a")).send().await.expect("http get");
    assert_eq!(http.json::<serde_json::Value>().await.expect("json"), json!({"n": 1}));

    let op = |kind: &str, key: &str| TransactionalStateOperation {
        operation_type: kind.into(),
        request: Some(json_item(key, json!({"n": 3}))),
    };
    let tx = ExecuteStateTransactionRequest {
        store_name: "statestore".into(),
        operations: vec![op("upsert", "c"), op("delete", "a")],
        metadata: HashMap::new(),
    };
    c.execute_state_transaction(tx.clone()).await.expect("transaction");
    assert!(c.get_state(get("a")).await.expect("get").into_inner().data.is_empty());
    let bad = ExecuteStateTransactionRequest { operations: vec![op("merge", "a")], ..tx };
    let err = c.execute_state_transaction(bad).await.expect_err("unknown operation");
    assert_eq!(code_and_reason(&err), rich(Code::Unimplemented, "ERR_NOT_SUPPORTED_STATE_OPERATION"));

    let query = QueryStateRequest {
        store_name: "statestore".into(),
        query: json!({"filter": {"EQ": {"n": 3}}}).to_string(),
        metadata: HashMap::new(),
    };
    let results = c.query_state_alpha1(query).await.expect("query").into_inner().results;
    assert_eq!(results.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_reach_the_app_as_cloudevents_with_the_callers_trace() {
    let subs = json!([{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}]);
    let e = start(Some(subs), "", None).await;
    let mut c = client(&e).await;
    let mut publish = Request::new(PublishEventRequest {
        pubsub_name: "pubsub".into(),
        topic: "orders".into(),
        data: br#"{"id":7}"#.to_vec(),
        data_content_type: "application/json".into(),
        metadata: HashMap::new(),
    });
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    publish.metadata_mut().insert("traceparent", traceparent.parse().expect("ascii"));
    c.publish_event(publish).await.expect("publish");
    let app = e.app.as_ref().expect("app");
    let seen = app.wait_for("/orders", 1).await;
    let event = seen[0].json();
    assert_eq!(event["data"], json!({"id": 7}));
    assert_eq!(event["topic"], "orders");
    assert_eq!(event["traceparent"], traceparent);

    let bulk = BulkPublishRequest {
        pubsub_name: "pubsub".into(),
        topic: "orders".into(),
        entries: (1..=2)
            .map(|i| BulkPublishRequestEntry {
                entry_id: i.to_string(),
                event: format!(r#"{{"id":{i}}}"#).into_bytes(),
                content_type: "application/json".into(),
                metadata: HashMap::new(),
            })
            .collect(),
        metadata: HashMap::new(),
    };
    let answer = c.bulk_publish_event(bulk).await.expect("bulk publish").into_inner();
    assert!(answer.failed_entries.is_empty(), "{answer:?}");
    app.wait_for("/orders", 3).await;

    let unknown = PublishEventRequest { pubsub_name: "nope".into(), topic: "t".into(), ..Default::default() };
    let err = c.publish_event(unknown).await.expect_err("unknown pubsub");
    assert_eq!(code_and_reason(&err), rich(Code::InvalidArgument, "DAPR_PUBSUB_NOT_FOUND"));
    let no_topic = PublishEventRequest { pubsub_name: "pubsub".into(), ..Default::default() };
    let err = c.publish_event(no_topic).await.expect_err("no topic");
    assert_eq!(code_and_reason(&err), rich(Code::InvalidArgument, "DAPR_PUBSUB_TOPIC_NAME_EMPTY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_lock_configuration_bindings_and_metadata() {
    let e = start(None, "", None).await;
    let mut c = client(&e).await;
    let secret = GetSecretRequest { store_name: "secretstore".into(), key: "NAME".into(), metadata: HashMap::new() };
    let data = c.get_secret(secret).await.expect("secret").into_inner().data;
    assert_eq!(data.get("NAME").map(String::as_str), Some("reference-runtime"));
    let unknown = GetSecretRequest { store_name: "nope".into(), key: "NAME".into(), metadata: HashMap::new() };
    let err = c.get_secret(unknown).await.expect_err("unknown store");
    assert_eq!(code_and_reason(&err), (Code::InvalidArgument, None), "legacy: no details");

    let lock = |owner: &str| TryLockRequest {
        store_name: "lockstore".into(),
        resource_id: "r".into(),
        lock_owner: owner.into(),
        expiry_in_seconds: 30,
    };
    assert!(c.try_lock_alpha1(lock("a")).await.expect("lock").into_inner().success);
    assert!(!c.try_lock_alpha1(lock("b")).await.expect("lock").into_inner().success);
    let unlock = |owner: &str| UnlockRequest {
        store_name: "lockstore".into(),
        resource_id: "r".into(),
        lock_owner: owner.into(),
    };
    let status = c.unlock_alpha1(unlock("b")).await.expect("unlock").into_inner().status;
    assert_eq!(status, unlock_response::Status::LockBelongsToOthers as i32);
    let status = c.unlock_alpha1(unlock("a")).await.expect("unlock").into_inner().status;
    assert_eq!(status, unlock_response::Status::Success as i32);
    let err = c.try_lock_alpha1(TryLockRequest { expiry_in_seconds: 0, ..lock("a") }).await.expect_err("expiry");
    assert_eq!(err.code(), Code::InvalidArgument);

    let config = GetConfigurationRequest {
        store_name: "configstore".into(),
        keys: vec!["absent".into()],
        metadata: HashMap::new(),
    };
    assert!(c.get_configuration(config).await.expect("get").into_inner().items.is_empty());
    let subscribe =
        SubscribeConfigurationRequest { store_name: "configstore".into(), keys: vec![], metadata: HashMap::new() };
    let mut stream = c.subscribe_configuration(subscribe).await.expect("subscribe").into_inner();
    let first = stream.message().await.expect("first message").expect("open");
    assert!(!first.id.is_empty() && first.items.is_empty(), "the first message carries only the id: {first:?}");
    let bye = UnsubscribeConfigurationRequest { store_name: "configstore".into(), id: first.id };
    assert!(c.unsubscribe_configuration(bye).await.expect("unsubscribe").into_inner().ok);
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.message()).await.expect("the stream ends");
    assert!(matches!(ended, Ok(None)), "{ended:?}");

    let binding = InvokeBindingRequest {
        name: "events".into(),
        operation: "create".into(),
        data: b"hi".to_vec(),
        metadata: HashMap::new(),
    };
    c.invoke_binding(binding).await.expect("output binding");
    let bad = InvokeBindingRequest { name: "nope".into(), operation: "create".into(), ..Default::default() };
    let err = c.invoke_binding(bad).await.expect_err("unknown binding");
    assert_eq!(code_and_reason(&err), rich(Code::Internal, "ERR_INVOKE_OUTPUT_BINDING"));

    c.set_metadata(SetMetadataRequest { key: "color".into(), value: "blue".into() }).await.expect("set");
    let meta = c.get_metadata(GetMetadataRequest {}).await.expect("metadata").into_inner();
    assert_eq!(meta.id, "testapp");
    assert_eq!(meta.extended_metadata.get("color").map(String::as_str), Some("blue"));
    assert!(meta.registered_components.iter().any(|c| c.name == "statestore" && c.r#type == "state.in-memory"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_service_reaches_the_http_app_and_maps_its_status() {
    let e = start(Some(json!([])), "", None).await;
    let app = e.app.as_ref().expect("app");
    app.script("/fails", &[(404, "no such thing")]);
    let mut c = client(&e).await;
    let call = |method: &str| InvokeServiceRequest {
        id: "testapp".into(),
        message: Some(runtime_api::common::InvokeRequest {
            method: method.into(),
            data: Some(prost_types::Any { type_url: String::new(), value: b"ping".to_vec() }),
            content_type: "text/plain".into(),
            http_extension: None,
        }),
    };
    let answer = c.invoke_service(call("echo")).await.expect("invoke");
    assert_eq!(answer.metadata().get("dapr-http-status").map(|v| v.to_str().expect("ascii")), Some("200"));
    let seen = app.wait_for("/echo", 1).await;
    assert_eq!((seen[0].method.as_str(), &seen[0].body[..]), ("POST", &b"ping"[..]));
    let err = c.invoke_service(call("fails")).await.expect_err("404 from the app");
    assert_eq!((err.code(), err.message()), (Code::NotFound, "no such thing"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_token_is_required_on_every_call() {
    let e = start(None, "", Some("secret")).await;
    let mut c = client(&e).await;
    let err = c.get_metadata(GetMetadataRequest {}).await.expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut wrong = Request::new(GetMetadataRequest {});
    wrong.metadata_mut().insert("dapr-api-token", "guess".parse().expect("ascii"));
    let err = c.get_metadata(wrong).await.expect_err("wrong token");
    assert_eq!((err.code(), err.message()), (Code::Unauthenticated, "authentication error: api token mismatch"));
    let mut right = Request::new(GetMetadataRequest {});
    right.metadata_mut().insert("dapr-api-token", "secret".parse().expect("ascii"));
    c.get_metadata(right).await.expect("the token opens the API");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_over_grpc_stops_the_server_and_unimplemented_rpcs_say_so() {
    let e = start(None, "", None).await;
    let mut c = client(&e).await;
    let err = c.get_actor_state(GetActorStateRequest::default()).await.expect_err("actors are not served yet");
    assert_eq!(err.code(), Code::Unimplemented);
    // Open streams do not hold shutdown up: they end with it.
    let subscribe =
        SubscribeConfigurationRequest { store_name: "configstore".into(), keys: vec![], metadata: HashMap::new() };
    let mut config_stream = c.subscribe_configuration(subscribe).await.expect("subscribe").into_inner();
    config_stream.message().await.expect("the id").expect("open");
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(streaming::initial("pubsub", "open")).await.expect("send");
    let topic_stream = c.subscribe_topic_events_alpha1(tokio_stream::wrappers::ReceiverStream::new(rx)).await;
    let _topic_stream = topic_stream.expect("subscribe");
    c.shutdown(ShutdownRequest {}).await.expect("shutdown");
    let stopped = tokio::time::timeout(Duration::from_secs(10), e.server).await.expect("the server stops");
    assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
}

mod streaming {
    use runtime_api::runtime::subscribe_topic_events_request_alpha1::SubscribeTopicEventsRequestType as In;
    use runtime_api::runtime::subscribe_topic_events_response_alpha1::SubscribeTopicEventsResponseType as Out;
    use runtime_api::runtime::topic_event_response::TopicEventResponseStatus;
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;

    use super::*;

    pub(super) fn initial(pubsub: &str, topic: &str) -> SubscribeTopicEventsRequestAlpha1 {
        let initial = SubscribeTopicEventsRequestInitialAlpha1 {
            pubsub_name: pubsub.into(),
            topic: topic.into(),
            metadata: HashMap::new(),
            dead_letter_topic: None,
        };
        SubscribeTopicEventsRequestAlpha1 { subscribe_topic_events_request_type: Some(In::InitialRequest(initial)) }
    }

    fn processed(id: &str, status: TopicEventResponseStatus) -> SubscribeTopicEventsRequestAlpha1 {
        let done = SubscribeTopicEventsRequestProcessedAlpha1 {
            id: id.into(),
            status: Some(TopicEventResponse { status: status as i32 }),
        };
        SubscribeTopicEventsRequestAlpha1 { subscribe_topic_events_request_type: Some(In::EventProcessed(done)) }
    }

    async fn next_event(
        stream: &mut runtime_api::tonic::Streaming<SubscribeTopicEventsResponseAlpha1>,
    ) -> TopicEventRequest {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.message()).await.expect("an event in time");
        match message.expect("stream ok").and_then(|m| m.subscribe_topic_events_response_type) {
            Some(Out::EventMessage(event)) => event,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    async fn publish(c: &mut DaprClient<Channel>, data: &str) {
        let request = PublishEventRequest {
            pubsub_name: "pubsub".into(),
            topic: "streamed".into(),
            data: data.as_bytes().to_vec(),
            data_content_type: "application/json".into(),
            metadata: HashMap::new(),
        };
        c.publish_event(request).await.expect("publish");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_stream_to_the_client_and_its_verdicts_settle_them() {
        let e = start(None, "", None).await;
        let mut c = client(&e).await;
        let (tx, rx) = mpsc::channel(8);
        tx.send(initial("pubsub", "streamed")).await.expect("send");
        let mut stream =
            c.subscribe_topic_events_alpha1(ReceiverStream::new(rx)).await.expect("subscribe").into_inner();
        let first = stream.message().await.expect("ok").and_then(|m| m.subscribe_topic_events_response_type);
        assert!(matches!(first, Some(Out::InitialResponse(_))), "{first:?}");
        let listed = c.get_metadata(GetMetadataRequest {}).await.expect("metadata").into_inner().subscriptions;
        assert!(
            listed.iter().any(|s| s.topic == "streamed" && s.r#type == PubsubSubscriptionType::Streaming as i32),
            "{listed:?}"
        );

        publish(&mut c, r#"{"n":1}"#).await;
        let event = next_event(&mut stream).await;
        assert_eq!((event.data.as_slice(), event.topic.as_str()), (&br#"{"n":1}"#[..], "streamed"));
        assert_eq!(event.data_content_type, "application/json");
        // RETRY: the same event comes again; SUCCESS settles it.
        tx.send(processed(&event.id, TopicEventResponseStatus::Retry)).await.expect("send");
        let again = next_event(&mut stream).await;
        assert_eq!(again.id, event.id);
        tx.send(processed(&again.id, TopicEventResponseStatus::Success)).await.expect("send");

        // A second initial request ends the stream with daprd's error.
        tx.send(initial("pubsub", "streamed")).await.expect("send");
        let end = tokio::time::timeout(Duration::from_secs(10), stream.message()).await.expect("in time");
        let status = end.expect_err("the stream ends with an error");
        assert_eq!(status.message(), "duplicate initial request received");
        let mut gone = false;
        for _ in 0..100 {
            let listed = c.get_metadata(GetMetadataRequest {}).await.expect("metadata").into_inner().subscriptions;
            if listed.iter().all(|s| s.topic != "streamed") {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(gone, "a closed stream's subscription leaves the metadata");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_without_an_initial_request_is_refused_with_daprds_text() {
        let e = start(None, "", None).await;
        let mut c = client(&e).await;
        for (first, expected) in [
            (processed("x", TopicEventResponseStatus::Success), "initial request is required"),
            (initial("", "t"), "pubsubName is required"),
            (initial("pubsub", ""), "topic is required"),
        ] {
            let (tx, rx) = mpsc::channel(1);
            tx.send(first).await.expect("send");
            let answer = c.subscribe_topic_events_alpha1(ReceiverStream::new(rx)).await;
            let status = match answer {
                Err(status) => status,
                Ok(stream) => stream.into_inner().message().await.expect_err("an error"),
            };
            assert_eq!((status.code(), status.message()), (Code::Unknown, expected));
        }
    }
}

/// The trace id inside a `grpc-trace-bin` answer header.
fn trace_id_of(metadata: &runtime_api::tonic::metadata::MetadataMap) -> Option<String> {
    let bin = metadata.get_bin("grpc-trace-bin")?.to_bytes().ok()?;
    (bin.len() == 29 && bin[0] == 0 && bin[1] == 0).then(|| bin[2..18].iter().map(|b| format!("{b:02x}")).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_context_is_read_answered_and_validated_over_grpc() {
    let subs = json!([{"pubsubname": "pubsub", "topic": "traced", "route": "/traced"}]);
    let e = start(Some(subs), "", None).await;
    let mut c = client(&e).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut call = Request::new(GetMetadataRequest {});
    call.metadata_mut().insert("traceparent", format!("00-{trace}-00f067aa0ba902b7-01").parse().expect("ascii"));
    let answer = c.get_metadata(call).await.expect("metadata");
    assert_eq!(trace_id_of(answer.metadata()).as_deref(), Some(trace), "O4: the caller's trace comes back");
    let answer = c.get_metadata(GetMetadataRequest {}).await.expect("metadata");
    let fresh = trace_id_of(answer.metadata()).expect("O4: a new trace when the call had none");
    assert!(fresh.bytes().any(|b| b != b'0'), "{fresh}");

    // O3: grpc-trace-bin wins, and a publish stamps it into the CloudEvent.
    let other = "0af7651916cd43dd8448eb211c80319c";
    let mut bin = vec![0u8, 0];
    bin.extend((0..16).map(|i| u8::from_str_radix(&other[i * 2..i * 2 + 2], 16).expect("hex")));
    bin.extend([1, 0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31, 2, 1]);
    let mut publish = Request::new(PublishEventRequest {
        pubsub_name: "pubsub".into(),
        topic: "traced".into(),
        data: b"{}".to_vec(),
        data_content_type: "application/json".into(),
        metadata: HashMap::new(),
    });
    publish.metadata_mut().insert_bin("grpc-trace-bin", runtime_api::tonic::metadata::MetadataValue::from_bytes(&bin));
    publish.metadata_mut().insert("traceparent", format!("00-{trace}-00f067aa0ba902b7-01").parse().expect("ascii"));
    c.publish_event(publish).await.expect("publish");
    let seen = e.app.as_ref().expect("app").wait_for("/traced", 1).await;
    assert_eq!(seen[0].json()["traceparent"], format!("00-{other}-b7ad6b7169203331-01"));

    // O8: a malformed baggage is InvalidArgument, a valid one echoed.
    let mut bad = Request::new(GetMetadataRequest {});
    bad.metadata_mut().insert("baggage", "no equals".parse().expect("ascii"));
    let err = c.get_metadata(bad).await.expect_err("bad baggage");
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut good = Request::new(GetMetadataRequest {});
    good.metadata_mut().insert("baggage", "user=alice".parse().expect("ascii"));
    let answer = c.get_metadata(good).await.expect("good baggage");
    assert_eq!(answer.metadata().get("baggage").map(|v| v.to_str().expect("ascii")), Some("user=alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_opens_with_its_initial_response_even_when_messages_wait() {
    use runtime_api::runtime::subscribe_topic_events_response_alpha1::SubscribeTopicEventsResponseType as Out;
    let e = start(None, "", None).await;
    let mut c = client(&e).await;
    // Published before anyone subscribes: the broker keeps it for the first subscriber.
    let request = PublishEventRequest {
        pubsub_name: "pubsub".into(),
        topic: "waiting".into(),
        data: b"{}".to_vec(),
        data_content_type: "application/json".into(),
        metadata: HashMap::new(),
    };
    c.publish_event(request).await.expect("publish");
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(streaming::initial("pubsub", "waiting")).await.expect("send");
    let mut stream = c
        .subscribe_topic_events_alpha1(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("open")
        .into_inner();
    let first = stream.message().await.expect("ok").and_then(|m| m.subscribe_topic_events_response_type);
    assert!(matches!(first, Some(Out::InitialResponse(_))), "the initial response comes first: {first:?}");
}
