//! Pluggable components over gRPC: the reference runtime's in-memory state store, broker,
//! binding and secret store served on one Unix socket pass their suites through the gRPC
//! driver; broken pluggable components are caught with the rule or convention they break; and
//! sockets that are missing, not gRPC, or without reflection are named within seconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use contract::pubsub::{Handler, Outcome, PublishRequest, SubscribeRequest, Subscription};
use contract::pubsub_delivery::DeliveryConfig;
use contract::state::{DeleteRequest, GetRequest, Item, SetRequest, TransactionRequest};
use contract::{FeatureSet, PubSub, PubSubFeature, Result, StateFeature, StateStore, system_clock};
use pluggable::Services;
use pluggable::proto::components as pb;
use pluggable::pubsub::{BrokerFactory, PubSubService};
use pluggable::state::{StateService, StoreFactory};
use reference_runtime::in_memory::bindings_memory::InMemoryBinding;
use reference_runtime::in_memory::pubsub_memory::InMemoryPubSub;
use reports::Verdict;
use tonic::{Request, Response, Status};

mod pluggable_common;

use pluggable_common::*;

#[test]
fn the_reference_pluggable_components_pass_through_the_pluggable_driver() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = socket(dir.path(), "memref");
    serve(&runtime, &path, reference_runtime::pluggable_services(Some(secrets_file())));
    let run = certify(&["run", "--pluggable", path.to_str().expect("utf8")]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.report.expect("report");
    // One component per block the socket serves, named after it.
    for (component, at_least) in
        [("memref-state", 50), ("memref-pubsub", 15), ("memref-bindings", 5), ("memref-secretstores", 4)]
    {
        let n = passed(&report, component);
        assert!(n >= at_least, "{component}: {n} passed\n{}", run.stdout);
    }
    let claims =
        |name: &str| report.components.iter().find(|c| c.name == name).map(|c| c.claims.clone()).unwrap_or_default();
    assert!(claims("memref-state").iter().any(|c| c == "transaction"), "claims from Features");
    assert!(claims("memref-pubsub").iter().any(|c| c == "bulkpublish"), "claims from Features");
    assert!(claims("memref-bindings").iter().any(|c| c == "create"), "claims from ListOperations");
    assert!(claims("memref-bindings").iter().any(|c| c == "read"), "the input side reads");
    assert!(claims("memref-secretstores").iter().any(|c| c == "multiplekeyvaluespersecret"));
    let dead_letter = report
        .cases
        .iter()
        .find(|c| c.id == "pubsub.redelivery.dead-letter-after-max-attempts")
        .expect("the dead-letter case is listed");
    assert_eq!(dead_letter.verdict, Verdict::Skipped);
    assert!(dead_letter.reason.as_deref().unwrap_or("").contains("dead-letter-topics"), "{:?}", dead_letter.reason);
}

/// The in-memory store with one quirk, for the tests that need a store that is wrong, or
/// unusual, in one way.
#[derive(Clone, Copy, PartialEq)]
enum Quirk {
    /// `Features` claim TTL, but `ttlInSeconds` is ignored.
    ClaimsTtl,
    /// Reads of `teapot` fail with a kit error: HTTP 418, `ERR_TEAPOT`.
    KitErrorOnTeapot,
    /// Transactions hold at most two operations.
    TwoPerTransaction,
}

struct Quirky(Quirk, Arc<dyn StateStore>);

fn quirky(quirk: Quirk) -> StateService {
    let factory: StoreFactory =
        Arc::new(move |_| Box::pin(async move { Ok(Arc::new(Quirky(quirk, in_memory())) as _) }));
    StateService::new(factory)
}

#[async_trait]
impl StateStore for Quirky {
    fn features(&self) -> FeatureSet<StateFeature> {
        match self.0 {
            Quirk::ClaimsTtl => [StateFeature::Etag, StateFeature::Ttl].into(),
            _ => self.1.features(),
        }
    }

    async fn get(&self, request: GetRequest) -> Result<Option<Item>> {
        if self.0 == Quirk::KitErrorOnTeapot && request.key.ends_with("teapot") {
            let message = "short and stout".into();
            return Err(contract::Error::Coded { status: 418, code: "ERR_TEAPOT".into(), message });
        }
        self.1.get(request).await
    }

    async fn set(&self, mut request: SetRequest) -> Result<()> {
        if self.0 == Quirk::ClaimsTtl {
            request.metadata.remove(contract::state::TTL_IN_SECONDS);
        }
        self.1.set(request).await
    }

    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        self.1.delete(request).await
    }

    async fn transact(&self, request: TransactionRequest) -> Result<()> {
        self.1.transact(request).await
    }

    fn multi_max_size(&self) -> Option<usize> {
        (self.0 == Quirk::TwoPerTransaction).then_some(2)
    }
}

/// A state service that reports ETag conflicts as a bare FAILED_PRECONDITION, without the
/// `BadRequest` detail Dapr's convention requires.
#[derive(Clone)]
struct BareEtagErrors(StateService);

fn bare(status: Status) -> Status {
    match status.code() {
        tonic::Code::FailedPrecondition => Status::failed_precondition(status.message().to_owned()),
        _ => status,
    }
}

type Answer<T> = std::result::Result<Response<T>, Status>;

#[async_trait]
impl pb::state_store_server::StateStore for BareEtagErrors {
    async fn init(&self, r: Request<pb::InitRequest>) -> Answer<pb::InitResponse> {
        pb::state_store_server::StateStore::init(&self.0, r).await
    }
    async fn features(&self, r: Request<pb::FeaturesRequest>) -> Answer<pb::FeaturesResponse> {
        pb::state_store_server::StateStore::features(&self.0, r).await
    }
    async fn delete(&self, r: Request<pb::DeleteRequest>) -> Answer<pb::DeleteResponse> {
        pb::state_store_server::StateStore::delete(&self.0, r).await.map_err(bare)
    }
    async fn get(&self, r: Request<pb::GetRequest>) -> Answer<pb::GetResponse> {
        pb::state_store_server::StateStore::get(&self.0, r).await
    }
    async fn set(&self, r: Request<pb::SetRequest>) -> Answer<pb::SetResponse> {
        pb::state_store_server::StateStore::set(&self.0, r).await.map_err(bare)
    }
    async fn ping(&self, r: Request<pb::PingRequest>) -> Answer<pb::PingResponse> {
        pb::state_store_server::StateStore::ping(&self.0, r).await
    }
    async fn bulk_delete(&self, r: Request<pb::BulkDeleteRequest>) -> Answer<pb::BulkDeleteResponse> {
        pb::state_store_server::StateStore::bulk_delete(&self.0, r).await.map_err(bare)
    }
    async fn bulk_get(&self, r: Request<pb::BulkGetRequest>) -> Answer<pb::BulkGetResponse> {
        pb::state_store_server::StateStore::bulk_get(&self.0, r).await
    }
    async fn bulk_set(&self, r: Request<pb::BulkSetRequest>) -> Answer<pb::BulkSetResponse> {
        pb::state_store_server::StateStore::bulk_set(&self.0, r).await.map_err(bare)
    }
}

#[test]
fn broken_pluggable_state_stores_are_caught_naming_the_rule_or_convention() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");

    // Features claim TTL, but items never expire.
    let ttl = socket(dir.path(), "claims-ttl");
    let state = quirky(Quirk::ClaimsTtl);
    serve(&runtime, &ttl, Services { state: Some(state), ..Services::default() });
    let run = certify(&["run", "--pluggable", ttl.to_str().expect("utf8"), "state.ttl"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.report.expect("report");
    let (verdict, reason) = trial(&report, "state.ttl.item-expires");
    assert_eq!(verdict, Verdict::Fail, "{reason}");

    // ETag conflicts answered without the convention's detail.
    let bare_path = socket(dir.path(), "bare-etag");
    let service = BareEtagErrors(in_memory_service());
    let path = bare_path.clone();
    runtime.spawn(async move {
        let incoming = pluggable::socket::bind(&path).expect("bind");
        tonic::transport::Server::builder()
            .add_service(pb::state_store_server::StateStoreServer::new(service))
            .add_service(pluggable::socket::reflection(&[pluggable::services::STATE]).expect("reflection"))
            .serve_with_incoming(incoming)
            .await
    });
    while !bare_path.exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let run = certify(&["run", "--pluggable", bare_path.to_str().expect("utf8"), "state.etag.stale-write-rejected"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let (verdict, reason) = trial(&run.report.expect("report"), "state.etag.stale-write-rejected");
    assert_eq!(verdict, Verdict::Fail);
    assert!(reason.contains("without one `google.rpc.BadRequest` detail naming field `etag`"), "{reason}");
}

#[test]
fn missing_non_grpc_and_reflectionless_sockets_are_named_within_seconds() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();

    let missing = socket(dir.path(), "missing");
    let run = certify(&["run", "--pluggable", missing.to_str().expect("utf8")]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no socket at"), "{}", run.stderr);

    // A Unix socket whose server speaks no HTTP/2.
    let garbage = socket(dir.path(), "garbage");
    let listener = std::os::unix::net::UnixListener::bind(&garbage).expect("bind");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            use std::io::Write;
            let mut stream = stream;
            let _ = stream.write_all(b"hello, this is not gRPC\n");
        }
    });
    let run = certify(&["run", "--pluggable", garbage.to_str().expect("utf8")]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("does not answer as a gRPC server"), "{}", run.stderr);

    // gRPC, but without reflection.
    let bare = socket(dir.path(), "no-reflection");
    let service = in_memory_service();
    let path = bare.clone();
    runtime.spawn(async move {
        let incoming = pluggable::socket::bind(&path).expect("bind");
        tonic::transport::Server::builder()
            .add_service(pb::state_store_server::StateStoreServer::new(service))
            .serve_with_incoming(incoming)
            .await
    });
    while !bare.exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let run = certify(&["run", "--pluggable", bare.to_str().expect("utf8")]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("serves no gRPC reflection"), "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(30), "each answered within seconds: {:?}", started.elapsed());
}

/// A broker that acknowledges each message as soon as it is handed to the subscriber, before
/// the handler has answered: a failed handler's message is never delivered again.
struct AcksBeforeHandling(Arc<dyn PubSub>);

#[async_trait]
impl PubSub for AcksBeforeHandling {
    fn features(&self) -> FeatureSet<PubSubFeature> {
        self.0.features()
    }

    async fn publish(&self, request: PublishRequest) -> Result<()> {
        self.0.publish(request).await
    }

    async fn subscribe(&self, request: SubscribeRequest, handler: Handler) -> Result<Subscription> {
        let eager: Handler = Arc::new(move |message| {
            let handler = Arc::clone(&handler);
            Box::pin(async move {
                tokio::spawn(handler(message));
                Outcome::Success
            })
        });
        self.0.subscribe(request, eager).await
    }
}

#[test]
fn a_pluggable_broker_that_acks_before_handling_is_caught() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = socket(dir.path(), "eager-acks");
    let make: BrokerFactory = Arc::new(|_| {
        Box::pin(async {
            let broker = InMemoryPubSub::new(DeliveryConfig::default(), system_clock());
            Ok(Arc::new(AcksBeforeHandling(Arc::new(broker))) as Arc<dyn PubSub>)
        })
    });
    serve(&runtime, &path, Services { pubsub: Some(PubSubService::new(make)), ..Services::default() });
    let run = certify(&["run", "--pluggable", path.to_str().expect("utf8"), "pubsub.redelivery"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.report.expect("report");
    for id in ["pubsub.redelivery.retry-redelivered", "pubsub.redelivery.error-redelivered"] {
        let (verdict, reason) = trial(&report, id);
        assert_eq!(verdict, Verdict::Fail, "{id}: {reason}");
        assert!(reason.contains("never delivered again"), "{id}: {reason}");
    }
}

#[test]
fn a_kit_error_reaches_the_http_caller_with_the_components_status_and_code() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sockets = tempfile::tempdir().expect("tempdir");
    let state = quirky(Quirk::KitErrorOnTeapot);
    serve(&runtime, &socket(sockets.path(), "kit"), Services { state: Some(state), ..Services::default() });
    let yaml = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: kitstate}\nspec: {type: state.kit, version: v1}\n";
    let url = start_sidecar(&runtime, sockets.path(), yaml, None);
    let (status, body) = runtime.block_on(async {
        let answer = reqwest::get(format!("{url}/v1.0/state/kitstate/teapot")).await.expect("get");
        (answer.status().as_u16(), answer.text().await.expect("body"))
    });
    assert_eq!(status, 418, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["errorCode"], "ERR_TEAPOT");
    assert_eq!(body["message"], "short and stout");
}

/// A spec certifying every block of the pluggable component on `memref.sock` beside it,
/// through the gRPC driver and through the reference sidecar.
const PLUGGABLE_SPEC: &str = "components:
  - component:
      apiVersion: dapr.io/v1alpha1
      kind: Component
      metadata: {name: plugstate}
      spec: {type: state.memref, version: v1}
    pluggable: {socket: \"${{spec.dir}}/memref.sock\"}
    claims: [etag, first-write, transaction, ttl, query, delete-with-prefix, keyslike]
  - component:
      apiVersion: dapr.io/v1alpha1
      kind: Component
      metadata: {name: plugpubsub}
      spec:
        type: pubsub.memref
        version: v1
        metadata:
          - {name: maxDeliveryAttempts, value: \"3\"}
    pluggable: {socket: memref.sock}
    claims: [bulkpublish, bulksubscribe, ordering, ttl]
    settings: {maxDeliveryAttempts: 3}
  - component:
      apiVersion: dapr.io/v1alpha1
      kind: Component
      metadata: {name: plugbinding}
      spec: {type: bindings.memref, version: v1}
    pluggable: {socket: memref.sock}
    claims: [create, read]
  - component:
      apiVersion: dapr.io/v1alpha1
      kind: Component
      metadata: {name: plugsecrets}
      spec: {type: secretstores.memref, version: v1}
    pluggable: {socket: memref.sock}
    claims: [multiplekeyvaluespersecret]
";

#[test]
fn a_spec_certifies_pluggable_components_through_grpc_and_the_sidecar() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    serve(&runtime, &socket(dir.path(), "memref"), reference_runtime::pluggable_services(Some(secrets_file())));
    let spec = dir.path().join("pluggable.yaml");
    std::fs::write(&spec, PLUGGABLE_SPEC).expect("write");
    let run = certify(&["run", "--spec", spec.to_str().expect("utf8")]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.report.expect("report");
    let passed_via = |prefix: &str| {
        report.cases.iter().filter(|c| c.trial.starts_with(prefix) && c.verdict == Verdict::Pass).count()
    };
    for (component, at_least) in [("plugstate", 45), ("plugpubsub", 14), ("plugbinding", 5), ("plugsecrets", 5)] {
        for driver in ["pluggable", "http"] {
            let n = passed_via(&format!("{component}@{driver}::"));
            assert!(n >= at_least, "{component} through {driver}: {n} passed\n{}", run.stdout);
        }
    }

    // A socket nobody serves fails its component's cases, naming the socket.
    let dead = PLUGGABLE_SPEC.replace("memref.sock", "gone.sock").replace(".memref", ".gone");
    std::fs::write(&spec, dead).expect("write");
    let run = certify(&["run", "--spec", spec.to_str().expect("utf8"), "plugstate@pluggable::state.crud"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.report.expect("report");
    let case = report.cases.first().expect("a case");
    assert_eq!(case.verdict, Verdict::Fail);
    assert!(case.reason.as_deref().unwrap_or("").contains("gone.sock"), "{:?}", case.reason);
}

#[test]
fn the_transaction_limit_travels_through_multi_max_size() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let limited = socket(dir.path(), "limited");
    serve(&runtime, &limited, Services { state: Some(quirky(Quirk::TwoPerTransaction)), ..Services::default() });
    let unlimited = socket(dir.path(), "unlimited");
    serve(&runtime, &unlimited, Services { state: Some(in_memory_service()), ..Services::default() });
    runtime.block_on(async {
        for (path, expected) in [(&limited, Some(2)), (&unlimited, None)] {
            let channel = pluggable::socket::dial(path).await.expect("dial");
            let store =
                pluggable::state::PluggableStateStore::init(channel, "s", Default::default()).await.expect("init");
            assert_eq!(store.multi_max_size(), expected, "{}", path.display());
        }
    });
}

/// An input binding that reports each event handled as soon as it hands it over, before the
/// app has answered: an event the app failed is never delivered again.
struct AcksEventsEarly(Arc<dyn contract::InputBinding>);

#[async_trait]
impl contract::InputBinding for AcksEventsEarly {
    async fn read(&self, handler: contract::bindings::BindingHandler) -> Result<Subscription> {
        let eager: contract::bindings::BindingHandler = Arc::new(move |event| {
            let handler = Arc::clone(&handler);
            Box::pin(async move {
                tokio::spawn(handler(event));
                Ok(Vec::new())
            })
        });
        self.0.read(eager).await
    }
}

#[test]
fn a_pluggable_input_binding_that_acks_before_the_app_answered_is_caught() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = socket(dir.path(), "early-acks");
    let make: pluggable::bindings::BindingFactory = Arc::new(|_| {
        Box::pin(async {
            let binding = Arc::new(InMemoryBinding::new(system_clock()));
            Ok(pluggable::bindings::BindingPair {
                input: Some(Arc::new(AcksEventsEarly(binding.clone()))),
                output: Some(binding),
            })
        })
    });
    let bindings = pluggable::bindings::BindingService::new(make, true);
    serve(&runtime, &path, Services { bindings: Some(bindings), ..Services::default() });
    let run = certify(&["run", "--pluggable", path.to_str().expect("utf8"), "bindings.read"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.report.expect("report");
    let (verdict, reason) = trial(&report, "bindings.read.failed-event-redelivered");
    assert_eq!(verdict, Verdict::Fail, "{reason}");
    // Events still arrive: only the redelivery rule is broken.
    assert_eq!(trial(&report, "bindings.read.every-event").0, Verdict::Pass);
}
