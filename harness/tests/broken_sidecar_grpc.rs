//! Sidecars that answer the Dapr gRPC API wrongly, in the test tree: a proxy in front of the
//! reference sidecar's gRPC API forwards every call and tells one lie. certify's `grpc` driver
//! (`--sidecar grpc://…`) must fail the cases whose rule the lie breaks, and pass everything
//! through a proxy that tells none.

mod common;

use contract::Block;
use harness::Filter;
use reports::{Report, Verdict};
use runtime_api::common::InvokeResponse;
use runtime_api::runtime::dapr_client::DaprClient;
use runtime_api::runtime::dapr_server::{Dapr, DaprServer};
use runtime_api::runtime::subscribe_topic_events_request_alpha1::SubscribeTopicEventsRequestType as Ack;
use runtime_api::runtime::*;
use runtime_api::tonic::transport::Channel;
use runtime_api::tonic::{self, Code, Request, Response, Status};

/// The one thing a proxy gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lie {
    None,
    /// An ETag mismatch on save or delete comes back `Internal`, not `Aborted`.
    MismatchAsInternal,
    /// `GetState` answers without the ETag.
    NoEtag,
    /// A missing key is `NotFound` instead of an empty answer.
    MissingIsNotFound,
    /// Every unlock answers SUCCESS.
    UnlockAlwaysSucceeds,
    /// The caller's `traceparent` is dropped on publish.
    PublishDropsTrace,
    /// The streaming subscription never passes the client's `event_processed` on.
    LosesAcks,
    /// A caller's binary context (`grpc-trace-bin`) is not read: a new trace starts.
    IgnoresBinaryTrace,
    /// Answers carry no trace context.
    AnswersUntraced,
}

#[derive(Clone)]
struct Liar {
    up: DaprClient<Channel>,
    lie: Lie,
}

type Answer<T> = Result<Response<T>, Status>;
type Events = std::pin::Pin<Box<dyn futures::Stream<Item = Result<SubscribeTopicEventsResponseAlpha1, Status>> + Send>>;

/// The call as the proxy forwards it: message and metadata.
fn pass<T>(r: Request<T>) -> Request<T> {
    let (metadata, _, message) = r.into_parts();
    Request::from_parts(metadata, Default::default(), message)
}

impl Liar {
    fn lying(&self, lie: Lie) -> bool {
        self.lie == lie
    }

    /// A write's answer, with an ETag mismatch turned `Internal` when that is the lie.
    fn write(&self, answer: Answer<()>) -> Answer<()> {
        match answer {
            Err(s) if s.code() == Code::Aborted && self.lying(Lie::MismatchAsInternal) => {
                Err(Status::internal(s.message().to_owned()))
            }
            other => other,
        }
    }
}

#[tonic::async_trait]
impl Dapr for Liar {
    async fn get_state(&self, r: Request<GetStateRequest>) -> Answer<GetStateResponse> {
        let mut answer = self.up.clone().get_state(pass(r)).await?.into_inner();
        if self.lying(Lie::NoEtag) {
            answer.etag.clear();
        }
        if self.lying(Lie::MissingIsNotFound) && answer.data.is_empty() && answer.etag.is_empty() {
            return Err(Status::not_found("no such key"));
        }
        Ok(Response::new(answer))
    }
    async fn get_bulk_state(&self, r: Request<GetBulkStateRequest>) -> Answer<GetBulkStateResponse> {
        self.up.clone().get_bulk_state(pass(r)).await
    }
    async fn save_state(&self, r: Request<SaveStateRequest>) -> Answer<()> {
        self.write(self.up.clone().save_state(pass(r)).await)
    }
    async fn query_state_alpha1(&self, r: Request<QueryStateRequest>) -> Answer<QueryStateResponse> {
        self.up.clone().query_state_alpha1(pass(r)).await
    }
    async fn delete_state(&self, r: Request<DeleteStateRequest>) -> Answer<()> {
        self.write(self.up.clone().delete_state(pass(r)).await)
    }
    async fn delete_bulk_state(&self, r: Request<DeleteBulkStateRequest>) -> Answer<()> {
        self.write(self.up.clone().delete_bulk_state(pass(r)).await)
    }
    async fn execute_state_transaction(&self, r: Request<ExecuteStateTransactionRequest>) -> Answer<()> {
        self.up.clone().execute_state_transaction(pass(r)).await
    }
    async fn publish_event(&self, r: Request<PublishEventRequest>) -> Answer<()> {
        let mut r = pass(r);
        if self.lying(Lie::PublishDropsTrace) {
            r.metadata_mut().remove("traceparent");
        }
        self.up.clone().publish_event(r).await
    }
    async fn subscribe_topic_events_alpha1(
        &self,
        r: Request<tonic::Streaming<SubscribeTopicEventsRequestAlpha1>>,
    ) -> Answer<Events> {
        let lose = self.lying(Lie::LosesAcks);
        let inbound = futures::StreamExt::filter_map(r.into_inner(), move |m| {
            std::future::ready(match m {
                Ok(m) if lose && matches!(m.subscribe_topic_events_request_type, Some(Ack::EventProcessed(_))) => None,
                Ok(m) => Some(m),
                Err(_) => None,
            })
        });
        let events = self.up.clone().subscribe_topic_events_alpha1(Request::new(inbound)).await?.into_inner();
        Ok(Response::new(Box::pin(events)))
    }
    async fn bulk_publish_event(&self, r: Request<BulkPublishRequest>) -> Answer<BulkPublishResponse> {
        self.up.clone().bulk_publish_event(pass(r)).await
    }
    async fn invoke_binding(&self, r: Request<InvokeBindingRequest>) -> Answer<InvokeBindingResponse> {
        self.up.clone().invoke_binding(pass(r)).await
    }
    async fn get_secret(&self, r: Request<GetSecretRequest>) -> Answer<GetSecretResponse> {
        self.up.clone().get_secret(pass(r)).await
    }
    async fn get_bulk_secret(&self, r: Request<GetBulkSecretRequest>) -> Answer<GetBulkSecretResponse> {
        self.up.clone().get_bulk_secret(pass(r)).await
    }
    async fn try_lock_alpha1(&self, r: Request<TryLockRequest>) -> Answer<TryLockResponse> {
        self.up.clone().try_lock_alpha1(pass(r)).await
    }
    async fn unlock_alpha1(&self, r: Request<UnlockRequest>) -> Answer<UnlockResponse> {
        let mut answer = self.up.clone().unlock_alpha1(pass(r)).await?.into_inner();
        if self.lying(Lie::UnlockAlwaysSucceeds) {
            answer.status = unlock_response::Status::Success as i32;
        }
        Ok(Response::new(answer))
    }
    async fn get_metadata(&self, r: Request<GetMetadataRequest>) -> Answer<GetMetadataResponse> {
        let mut r = pass(r);
        if self.lying(Lie::IgnoresBinaryTrace) {
            r.metadata_mut().remove_bin("grpc-trace-bin");
        }
        let answer = self.up.clone().get_metadata(r).await?;
        let (mut metadata, message, _) = answer.into_parts();
        if self.lying(Lie::AnswersUntraced) {
            metadata.remove_bin("grpc-trace-bin");
        }
        Ok(Response::from_parts(metadata, message, Default::default()))
    }
    async fn invoke_service(&self, r: Request<InvokeServiceRequest>) -> Answer<InvokeResponse> {
        self.up.clone().invoke_service(pass(r)).await
    }
}

/// Starts the reference sidecar, delivering to the app on `app_port`, and a gRPC proxy in
/// front of it that tells `lie`; answers the proxy's `grpc://` address.
async fn lying_sidecar(lie: Lie, app_port: u16) -> String {
    let sidecar = common::liar_sidecar(app_port).await;
    let (_, upstream, _) = sidecar.serve_both_on_loopback().await.expect("serve the sidecar");
    let up = DaprClient::connect(upstream).await.expect("connect upstream");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("grpc://{}", listener.local_addr().expect("addr"));
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let server = tonic::transport::Server::builder().add_service(DaprServer::new(Liar { up, lie }));
    tokio::spawn(server.serve_with_incoming(incoming));
    url
}

async fn certify(lie: Lie) -> Report {
    // A free port for the app certify serves: the sidecar must know it before certify listens.
    let app_port = common::free_port();
    let url = lying_sidecar(lie, app_port).await;
    let components = [
        (Block::STATE, "store"),
        (Block::LOCK, "locks"),
        (Block::PUBSUB, "broker"),
        (Block::BINDINGS, "queue"),
        (Block::SECRET_STORES, "vault"),
        (Block::OBSERVABILITY, "sidecar"),
    ];
    // The quick rules a lie breaks; the slow ones (expiry, redelivery) add nothing here.
    let patterns = [
        "state.crud",
        "state.etag",
        "lock.basic",
        "pubsub.cloudevent",
        "pubsub.delivery",
        "pubsub.redelivery.retry-redelivered",
        "secrets.get",
        "bindings.basic",
        "observability.trace",
    ];
    let filter = Filter { patterns: patterns.map(String::from).to_vec(), ..Filter::default() };
    common::certify_sidecar(url, &components, app_port, &filter).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_proxy_passes_every_case() {
    let report = certify(Lie::None).await;
    let ran: Vec<_> = report.cases.iter().filter(|c| c.verdict != Verdict::Skipped).collect();
    assert!(ran.len() >= 25, "{ran:?}");
    for block in ["store@grpc::", "locks@grpc::", "broker@grpc::", "queue@grpc::", "vault@grpc::", "sidecar@grpc::"] {
        assert!(ran.iter().any(|c| c.trial.starts_with(block)), "nothing of {block} ran");
    }
    for case in ran {
        assert_eq!(case.verdict, Verdict::Pass, "{case:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_lie_fails_the_rule_it_breaks() {
    let cases = [
        (Lie::MismatchAsInternal, "store@grpc::state.etag.stale-write-rejected", "etag"),
        (Lie::MismatchAsInternal, "store@grpc::state.etag.delete-stale-rejected", "etag"),
        (Lie::NoEtag, "store@grpc::state.etag.every-item-has-etag", "etag"),
        (Lie::MissingIsNotFound, "store@grpc::state.crud.missing-key-reads-empty", "not found"),
        (Lie::UnlockAlwaysSucceeds, "locks@grpc::lock.basic.unlock-by-other-owner", "Success"),
        (Lie::PublishDropsTrace, "broker@grpc::pubsub.cloudevent.envelope", "trace"),
        (Lie::LosesAcks, "broker@grpc::pubsub.redelivery.retry-redelivered", ""),
        (Lie::IgnoresBinaryTrace, "sidecar@grpc::observability.trace.answered", "to a Binary context"),
        (Lie::AnswersUntraced, "sidecar@grpc::observability.trace.answered", "the trace id answered"),
    ];
    for (lie, trial, reason) in cases {
        let report = certify(lie).await;
        common::expect_fail(&report, trial, reason);
    }
}
