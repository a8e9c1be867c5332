//! The app over gRPC (`--app-protocol grpc`, dapr-grpc-api.md §4): the sidecar is the client of
//! the app's `AppCallback` services. Subscriptions come from `ListTopicSubscriptions`, events go
//! to `OnTopicEvent` (bulk ones to `OnBulkTopicEvent`, falling back to the Alpha service on
//! `UNIMPLEMENTED`), input binding events to `OnBindingEvent` for the bindings
//! `ListInputBindings` names, and invocations to `OnInvoke`.

use std::time::Duration;

use contract::pubsub::{Message, Outcome};
use runtime_api::common::{self, http_extension::Verb};
use runtime_api::runtime::app_callback_alpha_client::AppCallbackAlphaClient;
use runtime_api::runtime::app_callback_client::AppCallbackClient;
use runtime_api::runtime::topic_event_response::TopicEventResponseStatus;
use runtime_api::runtime::*;
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::sidecar::match_expr::Expr;
use crate::sidecar::subscriptions::{Origin, Rule, SubscriptionSpec};
use crate::sidecar::trace::valid_traceparent;

/// The channel to an app serving `AppCallback` on a loopback port.
#[derive(Clone)]
pub struct GrpcApp {
    port: u16,
    channel: Channel,
    token: Option<String>,
}

impl std::fmt::Debug for GrpcApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcApp").field("port", &self.port).finish_non_exhaustive()
    }
}

/// A call's outcome as an HTTP caller sees it: status, headers, body.
pub struct Reply {
    /// The HTTP status the gRPC status stands for.
    pub status: u16,
    /// The content type the app gave.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

impl GrpcApp {
    /// The app on `127.0.0.1:port`; connects lazily, so the app may start later.
    pub fn new(port: u16, token: Option<String>) -> Self {
        let endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap_or_else(|_| Endpoint::from_static("http://127.0.0.1:1"))
            .connect_timeout(Duration::from_secs(3));
        Self { port, channel: endpoint.connect_lazy(), token }
    }

    /// The app's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The channel to the app, for calls made without the generated clients (the proxy).
    pub(crate) fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The token the app expects (`APP_API_TOKEN`), if any.
    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(token) = self.token.as_deref().and_then(|t| t.parse().ok()) {
            request.metadata_mut().insert("dapr-api-token", token);
        }
        request
    }

    /// [`Self::request`] starting a trace of its own, in the form a gRPC app takes (O7: a job
    /// trigger has no caller whose trace it could continue).
    fn traced_request<T>(&self, message: T) -> Request<T> {
        let mut request = self.request(message);
        let binary = super::trace::to_binary(&crate::sidecar::trace::new_traceparent());
        if let Some(value) = binary.and_then(|b| tonic::codegen::http::HeaderValue::from_str(&b).ok()) {
            request.metadata_mut().as_mut().insert("grpc-trace-bin", value);
        }
        request
    }

    fn client(&self) -> AppCallbackClient<Channel> {
        AppCallbackClient::new(self.channel.clone())
    }

    /// The app's subscriptions; routes keep the paths exactly as the app gave them, since a
    /// gRPC app matches its handlers on them.
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionSpec>, Status> {
        let answer = self.client().list_topic_subscriptions(self.request(())).await;
        let listed = match answer {
            Ok(r) => r.into_inner().subscriptions,
            Err(s) if s.code() == Code::Unimplemented => return Ok(Vec::new()),
            Err(s) => return Err(s),
        };
        Ok(listed
            .into_iter()
            .filter_map(|s| spec_of(s).map_err(|e| tracing::warn!(error = %e, "skipping subscription")).ok())
            .collect())
    }

    /// Delivers one event to `OnTopicEvent`: SUCCESS (or an empty answer) acknowledges, RETRY
    /// and any error but `UNIMPLEMENTED` redeliver, DROP and `UNIMPLEMENTED` drop.
    pub async fn deliver(&self, event: TopicEventRequest, message: &Message) -> Outcome {
        let context = trace_context_of(&event);
        let mut request = self.request(event);
        for (key, value) in &message.metadata {
            if let (Ok(k), Ok(v)) = (key.to_ascii_lowercase().parse::<tonic::metadata::MetadataKey<_>>(), value.parse())
            {
                request.metadata_mut().insert(k, v);
            }
        }
        // O6: the event's trace context, as a gRPC app takes it.
        for (key, value) in context {
            if let Ok(value) = tonic::codegen::http::HeaderValue::from_str(&value) {
                request.metadata_mut().as_mut().insert(key, value);
            }
        }
        match self.client().on_topic_event(request).await {
            Ok(answer) => match TopicEventResponseStatus::try_from(answer.into_inner().status) {
                Ok(TopicEventResponseStatus::Success) => Outcome::Success,
                Ok(TopicEventResponseStatus::Drop) => Outcome::Drop("the app answered DROP".into()),
                Ok(TopicEventResponseStatus::Retry) => Outcome::Retry("the app answered RETRY".into()),
                Err(_) => Outcome::Retry("the app answered an unknown status".into()),
            },
            Err(s) if s.code() == Code::Unimplemented => {
                Outcome::Drop(format!("the app answered UNIMPLEMENTED: {}", s.message()))
            }
            Err(s) => Outcome::Retry(format!("the app answered {:?}: {}", s.code(), s.message())),
        }
    }

    /// Delivers a batch to `OnBulkTopicEvent` (or the Alpha service's); an entry without
    /// SUCCESS or DROP is retried.
    pub async fn deliver_bulk(&self, batch: TopicEventBulkRequest) -> Result<Vec<(String, Outcome)>, String> {
        let ids: Vec<String> = batch.entries.iter().map(|e| e.entry_id.clone()).collect();
        let answer = match self.client().on_bulk_topic_event(self.request(batch.clone())).await {
            // Apps built on the older protocol serve only the Alpha name (JS 3.18 does).
            #[allow(deprecated)]
            Err(s) if s.code() == Code::Unimplemented => {
                AppCallbackAlphaClient::new(self.channel.clone()).on_bulk_topic_event_alpha1(self.request(batch)).await
            }
            other => other,
        };
        let statuses =
            answer.map_err(|s| format!("the app answered {:?}: {}", s.code(), s.message()))?.into_inner().statuses;
        Ok(ids
            .into_iter()
            .map(|id| {
                let status = statuses.iter().find(|s| s.entry_id == id).map(|s| s.status);
                let outcome = match status.map(TopicEventResponseStatus::try_from) {
                    Some(Ok(TopicEventResponseStatus::Success)) => Outcome::Success,
                    Some(Ok(TopicEventResponseStatus::Drop)) => Outcome::Drop("the app answered DROP".into()),
                    _ => Outcome::Retry("the app gave this entry no SUCCESS or DROP status".into()),
                };
                (id, outcome)
            })
            .collect())
    }

    /// The input bindings the app wants events of.
    pub async fn input_bindings(&self) -> Vec<String> {
        match self.client().list_input_bindings(self.request(())).await {
            Ok(r) => r.into_inner().bindings,
            Err(s) => {
                if s.code() != Code::Unimplemented {
                    tracing::warn!(status = %s, "cannot ask the app for its input bindings");
                }
                Vec::new()
            }
        }
    }

    /// Hands an input binding event to `OnBindingEvent`; the app's data is the answer.
    pub async fn binding_event(
        &self,
        name: &str,
        data: Vec<u8>,
        metadata: contract::Metadata,
    ) -> Result<Vec<u8>, String> {
        let request = BindingEventRequest { name: name.to_owned(), data, metadata: metadata.into_iter().collect() };
        match self.client().on_binding_event(self.request(request)).await {
            Ok(answer) => Ok(answer.into_inner().data),
            Err(s) => Err(format!("the app answered {:?}: {}", s.code(), s.message())),
        }
    }

    /// Hands a job's trigger to `OnJobEvent` (falling back to the Alpha service on
    /// `UNIMPLEMENTED`); OK and `NotFound` are done, anything else a failed trigger.
    pub async fn job_event(&self, name: &str, data: Option<prost_types::Any>) -> Result<(), String> {
        let event = JobEventRequest {
            name: name.to_owned(),
            content_type: data.as_ref().map(|d| d.type_url.clone()).unwrap_or_default(),
            data,
            method: format!("job/{name}"),
            http_extension: Some(common::HttpExtension { verb: Verb::Post as i32, querystring: String::new() }),
        };
        let answer = match self.client().on_job_event(self.traced_request(event.clone())).await {
            #[allow(deprecated)]
            Err(s) if s.code() == Code::Unimplemented => {
                AppCallbackAlphaClient::new(self.channel.clone()).on_job_event_alpha1(self.traced_request(event)).await
            }
            other => other,
        };
        match answer {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(format!("the app answered {:?}: {}", s.code(), s.message())),
        }
    }

    /// Calls `OnInvoke` as given: a gRPC caller gets the app's own answer.
    pub async fn on_invoke(
        &self,
        request: Request<common::InvokeRequest>,
    ) -> Result<tonic::Response<common::InvokeResponse>, Status> {
        let (mut metadata, _, message) = request.into_parts();
        metadata.remove("dapr-api-token");
        let mut request = self.request(message);
        for (key, value) in metadata.into_headers() {
            if let Some(key) = key {
                request.metadata_mut().as_mut().append(key, value);
            }
        }
        self.client().on_invoke(request).await
    }

    /// Calls `OnInvoke`; the answer as an HTTP caller sees it (a gRPC error becomes the HTTP
    /// status it stands for, its message the body).
    pub async fn invoke(
        &self,
        verb: &str,
        method: &str,
        query: Option<&str>,
        content_type: &str,
        headers: tonic::metadata::MetadataMap,
        body: Vec<u8>,
    ) -> Reply {
        let message = common::InvokeRequest {
            method: method.trim_start_matches('/').to_owned(),
            data: Some(prost_types::Any { type_url: String::new(), value: body }),
            content_type: content_type.to_owned(),
            http_extension: Some(common::HttpExtension {
                verb: Verb::from_str_name(&verb.to_ascii_uppercase()).unwrap_or(Verb::Post) as i32,
                querystring: query.unwrap_or_default().to_owned(),
            }),
        };
        let mut request = self.request(message);
        for (key, value) in headers.into_headers() {
            if let Some(key) = key {
                request.metadata_mut().as_mut().append(key, value);
            }
        }
        match self.client().on_invoke(request).await {
            Ok(answer) => {
                let answer = answer.into_inner();
                Reply {
                    status: 200,
                    content_type: answer.content_type,
                    body: answer.data.map(|d| d.value).unwrap_or_default(),
                }
            }
            // The status as JSON, as daprd answers an HTTP caller (`ProtobufToJSON`).
            Err(s) => {
                let body = serde_json::json!({"code": s.code() as i32, "message": s.message()});
                Reply {
                    status: runtime_api::codes::http_status_of(s.code()),
                    content_type: "application/json".into(),
                    body: body.to_string().into_bytes(),
                }
            }
        }
    }
}

fn spec_of(s: TopicSubscription) -> Result<SubscriptionSpec, String> {
    if s.pubsub_name.is_empty() || s.topic.is_empty() {
        return Err("a subscription needs a pubsub name and a topic".into());
    }
    let routes = s.routes.unwrap_or_default();
    let mut rules = Vec::new();
    for rule in routes.rules {
        let expr = Expr::parse(&rule.r#match).map_err(|e| format!("rule `{}`: {e}", rule.r#match))?;
        rules.push(Rule { text: rule.r#match, expr: Some(expr), path: rule.path });
    }
    rules.push(Rule { text: String::new(), expr: None, path: routes.default });
    let bulk = s.bulk_subscribe.filter(|b| b.enabled).map(|b| {
        let d = contract::pubsub::BulkSubscribeConfig::default();
        contract::pubsub::BulkSubscribeConfig {
            max_messages_count: usize::try_from(b.max_messages_count)
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or(d.max_messages_count),
            max_await_duration: u64::try_from(b.max_await_duration_ms)
                .ok()
                .filter(|n| *n > 0)
                .map(Duration::from_millis)
                .unwrap_or(d.max_await_duration),
        }
    });
    Ok(SubscriptionSpec {
        pubsub: s.pubsub_name,
        topic: s.topic,
        rules,
        dead_letter_topic: Some(s.dead_letter_topic).filter(|d| !d.is_empty()),
        metadata: s.metadata.into_iter().collect(),
        bulk,
        origin: Origin::Programmatic,
        scopes: Vec::new(),
    })
}

/// A bulk entry's CloudEvent as the protocol carries it.
pub(crate) fn cloud_event_entry(
    entry_id: &str,
    event: &Value,
    metadata: &contract::Metadata,
) -> TopicEventBulkRequestEntry {
    let e = super::subscribe::topic_event_fields(event);
    TopicEventBulkRequestEntry {
        entry_id: entry_id.to_owned(),
        content_type: e.data_content_type.clone(),
        metadata: metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        event: Some(topic_event_bulk_request_entry::Event::CloudEvent(TopicEventCeRequest {
            id: e.id,
            source: e.source,
            r#type: e.r#type,
            spec_version: e.spec_version,
            data_content_type: e.data_content_type,
            data: e.data,
            extensions: e.extensions,
        })),
    }
}

/// The CloudEvent's trace context as delivery metadata: `grpc-trace-bin` and `tracestate`.
fn trace_context_of(event: &TopicEventRequest) -> Vec<(&'static str, String)> {
    let field = |name: &str| match event.extensions.as_ref()?.fields.get(name)?.kind.as_ref()? {
        prost_types::value::Kind::StringValue(text) if !text.is_empty() => Some(text.clone()),
        _ => None,
    };
    // `traceparent`, else `traceid` (O6); only a valid one travels.
    let parent = field("traceparent").or_else(|| field("traceid"));
    let binary = parent.filter(|t| valid_traceparent(t)).and_then(|t| super::trace::to_binary(&t));
    [binary.map(|b| ("grpc-trace-bin", b)), field("tracestate").map(|t| ("tracestate", t))]
        .into_iter()
        .flatten()
        .collect()
}
