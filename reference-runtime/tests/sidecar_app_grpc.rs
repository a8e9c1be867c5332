//! The sidecar with a gRPC app (`--app-protocol grpc`): a small `AppCallback` server here
//! records what the sidecar calls it with. Subscriptions come from `ListTopicSubscriptions`,
//! events go to `OnTopicEvent` on the route's path (and `OnBulkTopicEvent` for bulk ones),
//! input bindings to `OnBindingEvent`, invocations from HTTP and gRPC callers to `OnInvoke`.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::sidecar_env::RESOURCES;
use contract::{Resources, SystemClock};
use reference_runtime::sidecar::{AppProtocol, Sidecar, SidecarConfig};
use runtime_api::common::{InvokeRequest, InvokeResponse};
use runtime_api::runtime::app_callback_client::AppCallbackClient;
use runtime_api::runtime::app_callback_server::{AppCallback, AppCallbackServer};
use runtime_api::runtime::dapr_client::DaprClient;
use runtime_api::runtime::topic_event_response::TopicEventResponseStatus;
use runtime_api::runtime::*;
use runtime_api::tonic::{self, Code, Request, Response, Status};

/// What the app saw: (call, detail) in order.
#[derive(Default, Clone)]
struct Seen(Arc<Mutex<Vec<(String, String)>>>);

impl Seen {
    fn push(&self, call: &str, detail: String) {
        self.0.lock().expect("lock").push((call.to_owned(), detail));
    }
    fn of(&self, call: &str) -> Vec<String> {
        self.0.lock().expect("lock").iter().filter(|(c, _)| c == call).map(|(_, d)| d.clone()).collect()
    }
    async fn wait(&self, call: &str, n: usize) -> Vec<String> {
        common::eventually(Duration::from_secs(10), || self.of(call).len() >= n).await;
        self.of(call)
    }
}

struct TestApp {
    seen: Seen,
    /// RETRYs left per topic.
    retries: Mutex<HashMap<String, u32>>,
}

#[tonic::async_trait]
impl AppCallback for TestApp {
    async fn on_invoke(&self, r: Request<InvokeRequest>) -> Result<Response<InvokeResponse>, Status> {
        let caller =
            r.metadata().get("dapr-caller-app-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let addressed = if r.metadata().contains_key("dapr-app-id") { " dapr-app-id" } else { "" };
        let message = r.into_inner();
        let verb = message.http_extension.as_ref().map(|e| e.verb).unwrap_or_default();
        self.seen.push("invoke", format!("{} verb={verb} caller={caller}{addressed}", message.method));
        if message.method == "missing" {
            return Err(Status::not_found("no such method"));
        }
        Ok(Response::new(InvokeResponse { data: message.data, content_type: "text/plain".into() }))
    }

    async fn list_topic_subscriptions(
        &self,
        _: Request<()>,
    ) -> Result<Response<ListTopicSubscriptionsResponse>, Status> {
        let topic = |topic: &str, default: &str, bulk: bool| TopicSubscription {
            pubsub_name: "pubsub".into(),
            topic: topic.into(),
            routes: Some(TopicRoutes { rules: vec![], default: default.into() }),
            bulk_subscribe: bulk.then_some(BulkSubscribeConfig {
                enabled: true,
                max_messages_count: 10,
                max_await_duration_ms: 50,
            }),
            ..Default::default()
        };
        let subscriptions =
            vec![topic("orders", "orders-path", false), topic("flaky", "", false), topic("batch", "", true)];
        Ok(Response::new(ListTopicSubscriptionsResponse { subscriptions }))
    }

    async fn on_topic_event(&self, r: Request<TopicEventRequest>) -> Result<Response<TopicEventResponse>, Status> {
        let e = r.into_inner();
        self.seen.push("event", format!("{} {} {}", e.topic, e.path, String::from_utf8_lossy(&e.data)));
        let mut retries = self.retries.lock().expect("lock");
        let left = retries.entry(e.topic.clone()).or_default();
        let status = match *left {
            0 => TopicEventResponseStatus::Success,
            _ => {
                *left -= 1;
                TopicEventResponseStatus::Retry
            }
        };
        Ok(Response::new(TopicEventResponse { status: status as i32 }))
    }

    async fn on_bulk_topic_event(
        &self,
        r: Request<TopicEventBulkRequest>,
    ) -> Result<Response<TopicEventBulkResponse>, Status> {
        let batch = r.into_inner();
        self.seen.push("bulk", format!("{} {}", batch.topic, batch.entries.len()));
        let statuses = batch
            .entries
            .iter()
            .map(|e| TopicEventBulkResponseEntry {
                entry_id: e.entry_id.clone(),
                status: TopicEventResponseStatus::Success as i32,
            })
            .collect();
        Ok(Response::new(TopicEventBulkResponse { statuses }))
    }

    async fn on_job_event(&self, r: Request<JobEventRequest>) -> Result<Response<JobEventResponse>, Status> {
        let e = r.into_inner();
        let data = e.data.map(|d| String::from_utf8_lossy(&d.value).into_owned()).unwrap_or_default();
        self.seen.push("job", format!("{} {} {data}", e.name, e.method));
        Ok(Response::new(JobEventResponse::default()))
    }

    async fn list_input_bindings(&self, _: Request<()>) -> Result<Response<ListInputBindingsResponse>, Status> {
        Ok(Response::new(ListInputBindingsResponse { bindings: vec!["events".into()] }))
    }

    async fn on_binding_event(
        &self,
        r: Request<BindingEventRequest>,
    ) -> Result<Response<BindingEventResponse>, Status> {
        let e = r.into_inner();
        self.seen.push("binding", format!("{} {}", e.name, String::from_utf8_lossy(&e.data)));
        Ok(Response::new(BindingEventResponse::default()))
    }
}

struct Env {
    http: String,
    grpc: String,
    seen: Seen,
    client: reqwest::Client,
}

async fn start() -> Env {
    let seen = Seen::default();
    let app = TestApp { seen: seen.clone(), retries: Mutex::new(HashMap::from([("flaky".to_owned(), 1)])) };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind app");
    let app_port = listener.local_addr().expect("addr").port();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        tonic::transport::Server::builder().add_service(AppCallbackServer::new(app)).serve_with_incoming(incoming),
    );
    let resources = Resources::parse(Path::new("test-resources.yaml"), RESOURCES).expect("resources");
    let components = reference_runtime::builtin_registry()
        .build_all(&resources.components, Arc::new(SystemClock))
        .await
        .expect("build");
    let config = SidecarConfig {
        app_id: "grpcapp".into(),
        app_port: Some(app_port),
        app_protocol: AppProtocol::Grpc,
        ..SidecarConfig::default()
    };
    let sidecar = Sidecar::new(config, components, Vec::new());
    let (http, grpc, _) = sidecar.serve_both_on_loopback().await.expect("serve");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(format!("{http}/v1.0/healthz")).send().await.is_ok_and(|r| r.status() == 204) {
            return Env { http, grpc, seen, client };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the sidecar did not connect to the gRPC app");
}

impl Env {
    async fn publish(&self, topic: &str, body: &str) {
        let r = self
            .client
            .post(format!("{}/v1.0/publish/pubsub/{topic}", self.http))
            .header("content-type", "text/plain")
            .body(body.to_owned())
            .send()
            .await
            .expect("publish");
        assert_eq!(r.status(), 204);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_on_topic_event_on_their_routes_and_retry_redelivers() {
    let e = start().await;
    e.publish("orders", "one").await;
    assert_eq!(e.seen.wait("event", 1).await, ["orders orders-path one"]);
    e.publish("flaky", "again").await;
    let seen = e.seen.wait("event", 3).await;
    assert_eq!(seen.iter().filter(|s| s.starts_with("flaky")).count(), 2, "RETRY redelivers: {seen:?}");
    for n in 0..3 {
        e.publish("batch", &format!("b{n}")).await;
    }
    common::eventually(Duration::from_secs(10), || {
        e.seen
            .of("bulk")
            .iter()
            .map(|b| b.rsplit(' ').next().and_then(|n| n.parse::<usize>().ok()).unwrap_or(0))
            .sum::<usize>()
            >= 3
    })
    .await;
    let batches = e.seen.of("bulk");
    assert!(batches.iter().all(|b| b.starts_with("batch ")), "{batches:?}");
    assert_eq!(
        batches.iter().filter_map(|b| b.rsplit(' ').next()?.parse::<usize>().ok()).sum::<usize>(),
        3,
        "{batches:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_from_http_and_grpc_callers_reach_on_invoke() {
    let e = start().await;
    let r =
        e.client.put(format!("{}/v1.0/invoke/grpcapp/method/echo", e.http)).body("ping").send().await.expect("invoke");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "ping");
    let r = e.client.get(format!("{}/v1.0/invoke/grpcapp/method/missing", e.http)).send().await.expect("invoke");
    assert_eq!(r.status(), 404, "NotFound is 404 for an HTTP caller");
    let seen = e.seen.of("invoke");
    assert_eq!(seen[0], "echo verb=4 caller=grpcapp", "PUT is verb 4: {seen:?}");

    let mut dapr = DaprClient::connect(e.grpc.clone()).await.expect("connect");
    let call = |method: &str| InvokeServiceRequest {
        id: "grpcapp".into(),
        message: Some(InvokeRequest {
            method: method.into(),
            data: Some(prost_types::Any { type_url: String::new(), value: b"pong".to_vec() }),
            ..Default::default()
        }),
    };
    let answer = dapr.invoke_service(call("echo")).await.expect("InvokeService").into_inner();
    assert_eq!(answer.data.map(|d| d.value), Some(b"pong".to_vec()));
    let err = dapr.invoke_service(call("missing")).await.expect_err("the app's status");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_binding_events_reach_on_binding_event() {
    let e = start().await;
    let body = serde_json::json!({"operation": "create", "data": "hello"});
    let r = e.client.post(format!("{}/v1.0/bindings/events", e.http)).json(&body).send().await.expect("binding");
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(e.seen.wait("binding", 1).await, ["events \"hello\""]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_mode_calls_reach_the_apps_own_service_unchanged() {
    let e = start().await;
    // Any service the sidecar does not serve, here the app's own AppCallback, called on the
    // sidecar's port with the app's id as metadata.
    let mut app = AppCallbackClient::connect(e.grpc.clone()).await.expect("connect");
    let call = |method: &str, app_id: Option<&str>| {
        let mut call = Request::new(InvokeRequest {
            method: method.into(),
            data: Some(prost_types::Any { type_url: String::new(), value: b"through".to_vec() }),
            ..Default::default()
        });
        if let Some(id) = app_id {
            call.metadata_mut().insert("dapr-app-id", id.parse().expect("ascii"));
        }
        call
    };
    let answer = app.on_invoke(call("proxied", Some("grpcapp"))).await.expect("proxied").into_inner();
    assert_eq!(answer.data.map(|d| d.value), Some(b"through".to_vec()));
    assert_eq!(e.seen.of("invoke"), ["proxied verb=0 caller="], "dapr-app-id is removed on the way");
    let err = app.on_invoke(call("missing", Some("grpcapp"))).await.expect_err("the app's own status");
    assert_eq!((err.code(), err.message()), (Code::NotFound, "no such method"));
    let err = app.on_invoke(call("proxied", None)).await.expect_err("no app named");
    assert_eq!(err.code(), Code::Unknown);
    assert!(err.message().contains("required metadata dapr-callee-app-id or dapr-app-id not found"), "{err:?}");
    let err = app.on_invoke(call("proxied", Some("elsewhere"))).await.expect_err("another app");
    assert_eq!(err.code(), Code::Unknown);
    assert!(err.message().contains("`elsewhere`"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_triggers_reach_on_job_event() {
    let e = start().await;
    let mut dapr = DaprClient::connect(e.grpc.clone()).await.expect("connect");
    let data = prost_types::Any { type_url: "type.googleapis.com/x".into(), value: b"payload".to_vec() };
    let job = Job { name: "nightly".into(), due_time: Some("0s".into()), data: Some(data), ..Default::default() };
    dapr.schedule_job(ScheduleJobRequest { job: Some(job), overwrite: false }).await.expect("ScheduleJob");
    assert_eq!(e.seen.wait("job", 1).await, ["nightly job/nightly payload"]);
}
