//! The Dapr gRPC API (`dapr.proto.runtime.v1.Dapr`, dapr-grpc-api.md §3) over the same
//! [`Sidecar`] as the HTTP API: the same components, key schemes, app channel and shutdown.
//! One module per block turns the protocol's messages into contract calls and the contract's
//! errors into daprd's statuses; this file holds the service, the `dapr-api-token` check and
//! serving.

pub mod app_callback;
mod bindings;
mod configuration;
mod jobs;
mod lock;
mod metadata;
mod metered;
mod proxy;
mod pubsub;
mod secrets;
mod state;
mod status;
pub(crate) mod subscribe;
mod trace;
mod workflows;
pub use metered::MetricsLayer;
pub use trace::TraceLayer;

use std::sync::Arc;

use runtime_api::runtime::dapr_server::{Dapr, DaprServer};
use runtime_api::runtime::*;
use tonic::codegen::http;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use crate::sidecar::Sidecar;

type Answer<T> = Result<Response<T>, Status>;
type Stream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>>;

/// The `Dapr` service over a sidecar.
#[derive(Clone)]
pub struct DaprApi {
    sc: Arc<Sidecar>,
}

/// With `DAPR_API_TOKEN` set, every call must carry `dapr-api-token`; the key is removed before
/// the handler runs (dapr-grpc-api.md §1, daprd's messages).
#[derive(Clone)]
pub struct TokenCheck(Option<Arc<str>>);

impl tonic::service::Interceptor for TokenCheck {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        check_token(self.0.as_deref(), request.metadata_mut())?;
        Ok(request)
    }
}

/// The `dapr-api-token` check of every call, the Dapr service's and the proxy's: with a token
/// expected, the call must carry it, and the key is removed.
pub(crate) fn check_token(expected: Option<&str>, metadata: &mut tonic::metadata::MetadataMap) -> Result<(), Status> {
    let Some(expected) = expected else { return Ok(()) };
    if metadata.is_empty() {
        return Err(Status::unauthenticated("missing metadata in request"));
    }
    match metadata.remove("dapr-api-token") {
        None => Err(Status::unauthenticated("missing api token in request metadata")),
        Some(given) if given.as_bytes() == expected.as_bytes() => Ok(()),
        Some(_) => Err(Status::unauthenticated("authentication error: api token mismatch")),
    }
}

/// The `Dapr` service of `sc`, behind its token check and message limits.
pub fn service(sc: &Arc<Sidecar>) -> InterceptedService<DaprServer<DaprApi>, TokenCheck> {
    let limit = sc.config.max_body_size;
    let server = DaprServer::new(DaprApi { sc: Arc::clone(sc) })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    InterceptedService::new(server, TokenCheck(sc.config.api_token.as_deref().map(Arc::from)))
}

/// tonic answers a message over the size limit `OutOfRange`; grpc-go, and so daprd and the
/// SDKs' expectations, `ResourceExhausted` (dapr-grpc-api.md §6.6). Rewrites that one status,
/// wherever it travels (headers of a trailers-only answer, or trailers).
pub fn daprd_codes(response: http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body> {
    use http_body_util::BodyExt;
    let (mut parts, body) = response.into_parts();
    rewrite_too_large(&mut parts.headers);
    let body = body.map_frame(|frame| match frame.into_trailers() {
        Ok(mut trailers) => {
            rewrite_too_large(&mut trailers);
            http_body::Frame::trailers(trailers)
        }
        Err(frame) => frame,
    });
    http::Response::from_parts(parts, tonic::body::Body::new(body))
}

fn rewrite_too_large(headers: &mut http::HeaderMap) {
    // `grpc-message` is percent-encoded.
    let too_large = headers.get("grpc-status").is_some_and(|s| s == "11")
        && headers.get("grpc-message").is_some_and(|m| m.as_bytes().windows(11).any(|w| w == b"too%20large"));
    if too_large {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
}

/// The gRPC routes: the `Dapr` service, the workflows' `TaskHubSidecarService`, reflection
/// listing them, and the proxy for any other service.
pub fn routes(sc: &Arc<Sidecar>) -> tonic::service::Routes {
    let mut routes = tonic::service::Routes::new(service(sc)).add_service(workflows::service(sc));
    if let Ok(reflection) = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(runtime_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(runtime_api::DURABLETASK_DESCRIPTOR_SET)
        .build_v1()
    {
        routes = routes.add_service(reflection);
    }
    proxy::with_proxy(routes, sc)
}

#[tonic::async_trait]
impl Dapr for DaprApi {
    async fn invoke_service(&self, r: Request<InvokeServiceRequest>) -> Answer<runtime_api::common::InvokeResponse> {
        metadata::invoke_service(&self.sc, r).await
    }

    async fn get_state(&self, r: Request<GetStateRequest>) -> Answer<GetStateResponse> {
        state::get(&self.sc, r.into_inner()).await
    }

    async fn get_bulk_state(&self, r: Request<GetBulkStateRequest>) -> Answer<GetBulkStateResponse> {
        state::bulk_get(&self.sc, r.into_inner()).await
    }

    async fn save_state(&self, r: Request<SaveStateRequest>) -> Answer<()> {
        state::save(&self.sc, r.into_inner()).await
    }

    async fn query_state_alpha1(&self, r: Request<QueryStateRequest>) -> Answer<QueryStateResponse> {
        state::query(&self.sc, r.into_inner()).await
    }

    async fn delete_state(&self, r: Request<DeleteStateRequest>) -> Answer<()> {
        state::delete(&self.sc, r.into_inner()).await
    }

    async fn delete_bulk_state(&self, r: Request<DeleteBulkStateRequest>) -> Answer<()> {
        state::bulk_delete(&self.sc, r.into_inner()).await
    }

    async fn execute_state_transaction(&self, r: Request<ExecuteStateTransactionRequest>) -> Answer<()> {
        state::transaction(&self.sc, r.into_inner()).await
    }

    async fn publish_event(&self, r: Request<PublishEventRequest>) -> Answer<()> {
        pubsub::publish(&self.sc, r).await
    }

    async fn bulk_publish_event_alpha1(&self, r: Request<BulkPublishRequest>) -> Answer<BulkPublishResponse> {
        pubsub::bulk_publish(&self.sc, r).await
    }

    async fn bulk_publish_event(&self, r: Request<BulkPublishRequest>) -> Answer<BulkPublishResponse> {
        pubsub::bulk_publish(&self.sc, r).await
    }

    async fn subscribe_topic_events_alpha1(
        &self,
        r: Request<tonic::Streaming<SubscribeTopicEventsRequestAlpha1>>,
    ) -> Answer<Stream<SubscribeTopicEventsResponseAlpha1>> {
        subscribe::subscribe(&self.sc, r).await
    }

    async fn invoke_binding(&self, r: Request<InvokeBindingRequest>) -> Answer<InvokeBindingResponse> {
        bindings::invoke(&self.sc, r).await
    }

    async fn get_secret(&self, r: Request<GetSecretRequest>) -> Answer<GetSecretResponse> {
        secrets::get(&self.sc, r.into_inner()).await
    }

    async fn get_bulk_secret(&self, r: Request<GetBulkSecretRequest>) -> Answer<GetBulkSecretResponse> {
        secrets::bulk(&self.sc, r.into_inner()).await
    }

    async fn get_configuration_alpha1(&self, r: Request<GetConfigurationRequest>) -> Answer<GetConfigurationResponse> {
        configuration::get(&self.sc, r.into_inner()).await
    }

    async fn get_configuration(&self, r: Request<GetConfigurationRequest>) -> Answer<GetConfigurationResponse> {
        configuration::get(&self.sc, r.into_inner()).await
    }

    async fn subscribe_configuration_alpha1(
        &self,
        r: Request<SubscribeConfigurationRequest>,
    ) -> Answer<Stream<SubscribeConfigurationResponse>> {
        configuration::subscribe(&self.sc, r.into_inner()).await
    }

    async fn subscribe_configuration(
        &self,
        r: Request<SubscribeConfigurationRequest>,
    ) -> Answer<Stream<SubscribeConfigurationResponse>> {
        configuration::subscribe(&self.sc, r.into_inner()).await
    }

    async fn unsubscribe_configuration_alpha1(
        &self,
        r: Request<UnsubscribeConfigurationRequest>,
    ) -> Answer<UnsubscribeConfigurationResponse> {
        configuration::unsubscribe(&self.sc, r.into_inner()).await
    }

    async fn unsubscribe_configuration(
        &self,
        r: Request<UnsubscribeConfigurationRequest>,
    ) -> Answer<UnsubscribeConfigurationResponse> {
        configuration::unsubscribe(&self.sc, r.into_inner()).await
    }

    async fn try_lock_alpha1(&self, r: Request<TryLockRequest>) -> Answer<TryLockResponse> {
        lock::try_lock(&self.sc, r.into_inner()).await
    }

    async fn unlock_alpha1(&self, r: Request<UnlockRequest>) -> Answer<UnlockResponse> {
        lock::unlock(&self.sc, r.into_inner()).await
    }

    async fn get_metadata(&self, _: Request<GetMetadataRequest>) -> Answer<GetMetadataResponse> {
        Ok(Response::new(metadata::get(&self.sc)))
    }

    async fn set_metadata(&self, r: Request<SetMetadataRequest>) -> Answer<()> {
        metadata::set(&self.sc, r.into_inner());
        Ok(Response::new(()))
    }

    async fn schedule_job_alpha1(&self, r: Request<ScheduleJobRequest>) -> Answer<ScheduleJobResponse> {
        jobs::schedule(&self.sc, r.into_inner()).await
    }

    async fn schedule_job(&self, r: Request<ScheduleJobRequest>) -> Answer<ScheduleJobResponse> {
        jobs::schedule(&self.sc, r.into_inner()).await
    }

    async fn get_job_alpha1(&self, r: Request<GetJobRequest>) -> Answer<GetJobResponse> {
        jobs::get(&self.sc, r.into_inner())
    }

    async fn get_job(&self, r: Request<GetJobRequest>) -> Answer<GetJobResponse> {
        jobs::get(&self.sc, r.into_inner())
    }

    async fn delete_job_alpha1(&self, r: Request<DeleteJobRequest>) -> Answer<DeleteJobResponse> {
        jobs::delete(&self.sc, r.into_inner()).await
    }

    async fn delete_job(&self, r: Request<DeleteJobRequest>) -> Answer<DeleteJobResponse> {
        jobs::delete(&self.sc, r.into_inner()).await
    }

    async fn delete_jobs_by_prefix_alpha1(
        &self,
        r: Request<DeleteJobsByPrefixRequestAlpha1>,
    ) -> Answer<DeleteJobsByPrefixResponseAlpha1> {
        jobs::delete_prefix(&self.sc, r.into_inner().name_prefix).await;
        Ok(Response::new(DeleteJobsByPrefixResponseAlpha1 {}))
    }

    async fn delete_jobs_by_prefix(&self, r: Request<DeleteJobsByPrefixRequest>) -> Answer<DeleteJobsByPrefixResponse> {
        jobs::delete_prefix(&self.sc, r.into_inner().name_prefix).await;
        Ok(Response::new(DeleteJobsByPrefixResponse {}))
    }

    async fn list_jobs_alpha1(&self, _: Request<ListJobsRequestAlpha1>) -> Answer<ListJobsResponseAlpha1> {
        Ok(Response::new(ListJobsResponseAlpha1 { jobs: jobs::list(&self.sc) }))
    }

    async fn list_jobs(&self, _: Request<ListJobsRequest>) -> Answer<ListJobsResponse> {
        Ok(Response::new(ListJobsResponse { jobs: jobs::list(&self.sc) }))
    }

    async fn shutdown(&self, _: Request<ShutdownRequest>) -> Answer<()> {
        self.sc.shutdown();
        Ok(Response::new(()))
    }
}
