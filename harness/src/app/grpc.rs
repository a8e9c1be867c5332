//! The app over gRPC (`--app-protocol grpc`): the sidecar calls certify's `AppCallback`, and
//! each call lands where the HTTP app's would: the same topic slots and trials, the same
//! binding inboxes, the same invocation echo (reached through the HTTP routes, so both
//! protocols answer alike). The app contract's answers take their gRPC form: a handler error
//! is an error status (redelivered), "no such route" is `UNIMPLEMENTED` (dropped).

use std::net::SocketAddr;

use axum::body::Body;
use axum::http;
use contract::pubsub::{Message, Outcome};
use runtime_api::codes::grpc_code_of;
use runtime_api::common::{InvokeRequest, InvokeResponse, http_extension::Verb};
use runtime_api::runtime::app_callback_server::{AppCallback, AppCallbackServer};
use runtime_api::runtime::topic_event_bulk_request_entry::Event;
use runtime_api::runtime::topic_event_response::TopicEventResponseStatus;
use runtime_api::runtime::*;
use runtime_api::tonic::{self, Request, Response, Status};
use serde_json::Value;
use suites::pubsub::{HANDLER_ERROR, NOT_FOUND};
use tower::ServiceExt;

use super::App;
use crate::grpc::streaming::event_message;

type Answer<T> = Result<Response<T>, Status>;

impl App {
    /// Serves the app's `AppCallback` on `listener`.
    pub fn serve_grpc_on(&self, listener: tokio::net::TcpListener) -> std::io::Result<SocketAddr> {
        let addr = listener.local_addr()?;
        self.over_grpc.store(true, std::sync::atomic::Ordering::Relaxed);
        let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let server = tonic::transport::Server::builder()
            .add_service(AppCallbackServer::new(self.clone()))
            .serve_with_incoming(incoming);
        tokio::spawn(server);
        Ok(addr)
    }
}

/// The declared subscriptions (the HTTP app's `/dapr/subscribe`) as `TopicSubscription`s.
fn subscriptions(declared: &Value) -> Vec<TopicSubscription> {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let number = |v: Option<&Value>, key: &str| {
        v.and_then(|b| b.get(key)).and_then(Value::as_i64).and_then(|n| i32::try_from(n).ok()).unwrap_or_default()
    };
    declared
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|d| {
            let bulk = d.get("bulkSubscribe");
            TopicSubscription {
                pubsub_name: text(d, "pubsubname"),
                topic: text(d, "topic"),
                dead_letter_topic: text(d, "deadLetterTopic"),
                metadata: d
                    .get("metadata")
                    .and_then(Value::as_object)
                    .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
                    .unwrap_or_default(),
                routes: Some(TopicRoutes { rules: Vec::new(), default: text(d, "route") }),
                bulk_subscribe: bulk.map(|_| BulkSubscribeConfig {
                    enabled: true,
                    max_messages_count: number(bulk, "maxMessagesCount"),
                    max_await_duration_ms: number(bulk, "maxAwaitDurationMs"),
                }),
            }
        })
        .collect()
}

/// One outcome in the gRPC app contract.
fn topic_answer(outcome: &Outcome) -> Answer<TopicEventResponse> {
    let status = match outcome {
        Outcome::Success => TopicEventResponseStatus::Success,
        Outcome::Retry(reason) if reason == HANDLER_ERROR => return Err(Status::internal(reason.clone())),
        Outcome::Retry(_) => TopicEventResponseStatus::Retry,
        Outcome::Drop(reason) if reason == NOT_FOUND => return Err(Status::unimplemented(reason.clone())),
        Outcome::Drop(_) => TopicEventResponseStatus::Drop,
    };
    Ok(Response::new(TopicEventResponse { status: status as i32 }))
}

fn bulk_status(outcome: &Outcome) -> TopicEventResponseStatus {
    match outcome {
        Outcome::Success => TopicEventResponseStatus::Success,
        Outcome::Retry(_) => TopicEventResponseStatus::Retry,
        Outcome::Drop(_) => TopicEventResponseStatus::Drop,
    }
}

/// A bulk entry as a message keyed by its entry id.
fn entry_message(batch: &TopicEventBulkRequest, entry: TopicEventBulkRequestEntry) -> Message {
    let base = TopicEventRequest {
        topic: batch.topic.clone(),
        pubsub_name: batch.pubsub_name.clone(),
        data_content_type: entry.content_type.clone(),
        ..TopicEventRequest::default()
    };
    let event = match entry.event {
        Some(Event::CloudEvent(ce)) => TopicEventRequest {
            id: ce.id,
            source: ce.source,
            r#type: ce.r#type,
            spec_version: ce.spec_version,
            data_content_type: ce.data_content_type,
            data: ce.data,
            extensions: ce.extensions,
            ..base
        },
        Some(Event::Bytes(data)) => TopicEventRequest { data, ..base },
        None => base,
    };
    let mut message = event_message(event);
    message.id = entry.entry_id;
    message.metadata.extend(entry.metadata);
    message
}

/// An `OnInvoke` call as the HTTP request the echo route takes: verb and query from
/// `http_extension` (POST without one), metadata as headers.
fn invoke_request(
    metadata: tonic::metadata::MetadataMap,
    message: InvokeRequest,
) -> Result<http::Request<Body>, Status> {
    let extension = message.http_extension.unwrap_or_default();
    let verb = Verb::try_from(extension.verb).ok().filter(|v| *v != Verb::None).unwrap_or(Verb::Post);
    let mut uri = format!("/{}", message.method.trim_start_matches('/'));
    if !extension.querystring.is_empty() {
        uri = format!("{uri}?{}", extension.querystring);
    }
    let mut request = http::Request::builder()
        .method(verb.as_str_name())
        .uri(&uri)
        .body(Body::from(message.data.map(|d| d.value).unwrap_or_default()))
        .map_err(|e| Status::invalid_argument(format!("`{uri}` is not a method path: {e}")))?;
    *request.headers_mut() = metadata.into_headers();
    if let Ok(v) = http::HeaderValue::from_str(&message.content_type) {
        request.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    Ok(request)
}

#[tonic::async_trait]
impl AppCallback for App {
    async fn on_invoke(&self, r: Request<InvokeRequest>) -> Answer<InvokeResponse> {
        let (metadata, _, message) = r.into_parts();
        let request = invoke_request(metadata, message)?;
        let answer = self.router().oneshot(request).await.map_err(|e| Status::internal(e.to_string()))?;
        let (parts, body) = answer.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.map_err(|e| Status::internal(e.to_string()))?;
        let mut headers = parts.headers;
        let content_type = headers.remove(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok().map(str::to_owned));
        // The echo's own headers, not its HTTP framing: a `content-length` among a gRPC
        // answer's metadata would contradict the answer's frames.
        for framing in [http::header::CONTENT_LENGTH, http::header::TRANSFER_ENCODING, http::header::CONNECTION] {
            headers.remove(framing);
        }
        let reply = tonic::metadata::MetadataMap::from_headers(headers);
        if !parts.status.is_success() {
            let message = String::from_utf8_lossy(&body).into_owned();
            return Err(Status::with_metadata(grpc_code_of(parts.status.as_u16()), message, reply));
        }
        let data = runtime_api::prost_types::Any { type_url: String::new(), value: body.to_vec() };
        let mut response =
            Response::new(InvokeResponse { data: Some(data), content_type: content_type.unwrap_or_default() });
        *response.metadata_mut() = reply;
        Ok(response)
    }

    async fn list_topic_subscriptions(&self, _: Request<()>) -> Answer<ListTopicSubscriptionsResponse> {
        Ok(Response::new(ListTopicSubscriptionsResponse { subscriptions: subscriptions(&self.declarations()) }))
    }

    async fn on_topic_event(&self, r: Request<TopicEventRequest>) -> Answer<TopicEventResponse> {
        let context = crate::grpc::trace_metadata(r.metadata());
        let event = r.into_inner();
        let (pubsub, topic) = (event.pubsub_name.clone(), event.topic.clone());
        let mut message = event_message(event);
        message.metadata.extend(context);
        topic_answer(&self.deliver_message(&pubsub, &topic, message).await)
    }

    async fn on_bulk_topic_event(&self, r: Request<TopicEventBulkRequest>) -> Answer<TopicEventBulkResponse> {
        let mut batch = r.into_inner();
        let entries = std::mem::take(&mut batch.entries);
        let messages = entries.into_iter().map(|e| entry_message(&batch, e)).collect();
        let outcomes = self.deliver_batch(&batch.pubsub_name, &batch.topic, messages).await;
        let statuses = outcomes
            .iter()
            .map(|(id, o)| TopicEventBulkResponseEntry { entry_id: id.clone(), status: bulk_status(o) as i32 })
            .collect();
        Ok(Response::new(TopicEventBulkResponse { statuses }))
    }

    async fn on_job_event(&self, r: Request<JobEventRequest>) -> Answer<JobEventResponse> {
        let traceparent =
            crate::grpc::trace_metadata(r.metadata()).into_iter().find_map(|(k, v)| (k == "traceparent").then_some(v));
        let e = r.into_inner();
        // JSON data as an HTTP app would get it; any other `Any` as its bytes.
        let body = reference_runtime::jobs::data::app_body(e.data.as_ref());
        match self.job_inbox().deliver(&e.name, body, traceparent) {
            Ok(()) => Ok(Response::new(JobEventResponse::default())),
            Err(why) => Err(Status::internal(why)),
        }
    }

    async fn list_input_bindings(&self, _: Request<()>) -> Answer<ListInputBindingsResponse> {
        Ok(Response::new(ListInputBindingsResponse { bindings: self.binding_names() }))
    }

    async fn on_binding_event(&self, r: Request<BindingEventRequest>) -> Answer<BindingEventResponse> {
        let e = r.into_inner();
        let Some(inbox) = self.binding(&e.name) else {
            return Err(Status::not_found(format!("certify takes no events of binding `{}`", e.name)));
        };
        let event = contract::bindings::BindingEvent { data: e.data, metadata: e.metadata.into_iter().collect() };
        match inbox.deliver(event) {
            Ok(()) => Ok(Response::new(BindingEventResponse::default())),
            Err(e) => Err(Status::internal(e.to_string())),
        }
    }
}
