//! Metadata, extended metadata and `InvokeService` over gRPC (dapr-grpc-api.md §3.1, §3.6).

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use runtime_api::common::{self, http_extension::Verb};
use runtime_api::runtime::*;
use tonic::{Code, Request, Response, Status};

use super::Answer;
use super::status::legacy;
use crate::sidecar::invoke_routes::{HOP_BY_HOP, clean, normalize_method};
use crate::sidecar::subscriptions::Origin;
use crate::sidecar::trace::{new_traceparent, valid_traceparent};
use crate::sidecar::{RUNTIME_VERSION, Sidecar, locked};

pub(super) fn get(sc: &Sidecar) -> GetMetadataResponse {
    let registered_components = sc
        .components
        .by_name
        .values()
        .map(|c| RegisteredComponents {
            name: c.manifest.name.clone(),
            r#type: c.manifest.type_name.clone(),
            version: c.manifest.version.clone(),
            capabilities: c.component.capabilities(),
        })
        .collect();
    let subscriptions = sc
        .subscription_specs()
        .iter()
        .map(|spec| PubsubSubscription {
            pubsub_name: spec.pubsub.clone(),
            topic: spec.topic.clone(),
            metadata: spec.metadata.clone().into_iter().collect(),
            rules: Some(PubsubSubscriptionRules {
                rules: spec
                    .rules
                    .iter()
                    .map(|r| PubsubSubscriptionRule { r#match: r.text.clone(), path: r.path.clone() })
                    .collect(),
            }),
            dead_letter_topic: spec.dead_letter_topic.clone().unwrap_or_default(),
            r#type: match spec.origin {
                Origin::Programmatic => PubsubSubscriptionType::Programmatic as i32,
                Origin::Declarative => PubsubSubscriptionType::Declarative as i32,
                Origin::Streaming => PubsubSubscriptionType::Streaming as i32,
            },
        })
        .collect();
    let mut extended_metadata: std::collections::HashMap<_, _> = locked(&sc.extended).clone().into_iter().collect();
    extended_metadata.insert("daprRuntimeVersion".into(), RUNTIME_VERSION.into());
    GetMetadataResponse {
        id: sc.config.app_id.clone(),
        registered_components,
        extended_metadata,
        subscriptions,
        runtime_version: RUNTIME_VERSION.into(),
        app_connection_properties: sc.config.app_port.map(|port| AppConnectionProperties {
            port: i32::from(port),
            protocol: sc.config.app_protocol.as_str().into(),
            channel_address: "127.0.0.1".into(),
            ..Default::default()
        }),
        actor_runtime: Some(actor_runtime_of(&sc.actors.status())),
        ..Default::default()
    }
}

pub(super) fn set(sc: &Sidecar, r: SetMetadataRequest) {
    locked(&sc.extended).insert(r.key, r.value);
}

fn verb(extension: Option<&common::HttpExtension>) -> Method {
    match extension.map(|e| Verb::try_from(e.verb).unwrap_or(Verb::None)) {
        Some(Verb::Get) => Method::GET,
        Some(Verb::Head) => Method::HEAD,
        Some(Verb::Put) => Method::PUT,
        Some(Verb::Delete) => Method::DELETE,
        Some(Verb::Connect) => Method::CONNECT,
        Some(Verb::Options) => Method::OPTIONS,
        Some(Verb::Trace) => Method::TRACE,
        Some(Verb::Patch) => Method::PATCH,
        Some(Verb::Post | Verb::None) | None => Method::POST,
    }
}

/// The call's metadata as the app's request headers, without what belongs to gRPC or Dapr.
fn forwarded(call: &tonic::metadata::MetadataMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in call.clone().into_headers() {
        let Some(name) = name else { continue };
        let n = name.as_str();
        if n.starts_with("grpc-") || n == "te" || n == "content-type" || n == "user-agent" || n == "dapr-api-token" {
            continue;
        }
        headers.append(name, value);
    }
    headers
}

/// An HTTP app's response headers as gRPC metadata, without what belongs to one HTTP hop.
fn reply_metadata(headers: &HeaderMap) -> tonic::metadata::MetadataMap {
    let mut kept = HeaderMap::new();
    for (name, value) in headers {
        let n = name.as_str();
        if !HOP_BY_HOP.contains(&n) && n != "content-type" && n != "date" {
            kept.append(name.clone(), value.clone());
        }
    }
    tonic::metadata::MetadataMap::from_headers(kept)
}

pub(super) async fn invoke_service(sc: &Sidecar, r: Request<InvokeServiceRequest>) -> Answer<common::InvokeResponse> {
    let (call, _, r) = r.into_parts();
    let failed = |why: String| legacy(Code::Internal, format!("failed to invoke, id: {}, err: {why}", r.id));
    if r.id.split('.').next() != Some(sc.config.app_id.as_str()) {
        return Err(failed(format!("the reference runtime only reaches its own app `{}`", sc.config.app_id)));
    }
    let mut message = r.message.clone().unwrap_or_default();
    message.method =
        normalize_method(&message.method).map_err(|e| legacy(Code::InvalidArgument, format!("invalid method: {e}")))?;
    if let Some(app) = sc.grpc_app() {
        // gRPC to gRPC: the app's own answer, status and all.
        let mut request = Request::new(message);
        *request.metadata_mut() = call;
        for (name, value) in [("dapr-caller-app-id", sc.config.app_id.as_str()), ("dapr-callee-app-id", r.id.as_str())]
        {
            if let Ok(v) = value.parse() {
                request.metadata_mut().insert(name, v);
            }
        }
        return app.on_invoke(request).await;
    }
    let Some(app) = sc.app() else { return Err(failed("no app port was given (--app-port)".into())) };
    let mut headers = forwarded(&call);
    if let Ok(v) = HeaderValue::from_str(&message.content_type)
        && !message.content_type.is_empty()
    {
        headers.insert(axum::http::header::CONTENT_TYPE, v);
    }
    for (name, value) in [("dapr-caller-app-id", sc.config.app_id.as_str()), ("dapr-callee-app-id", r.id.as_str())] {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    // A call without a valid trace context starts one, as over HTTP (O1, O5).
    let traced = headers.get("traceparent").and_then(|v| v.to_str().ok()).is_some_and(valid_traceparent);
    if !traced && let Ok(v) = HeaderValue::from_str(&new_traceparent()) {
        headers.insert(HeaderName::from_static("traceparent"), v);
    }
    let method = clean(&message.method);
    let query = message.http_extension.as_ref().map(|e| e.querystring.as_str()).filter(|q| !q.is_empty());
    let path = match query {
        Some(q) => format!("{method}?{q}"),
        None => method,
    };
    let body = message.data.map(|any| any.value).unwrap_or_default();
    let answer = app.call(verb(message.http_extension.as_ref()), &path, headers, body.into()).await.map_err(failed)?;
    // The app's headers come back as response metadata, its status in `dapr-http-status`.
    let mut metadata = reply_metadata(&answer.headers);
    if let Ok(v) = answer.status.as_u16().to_string().parse() {
        metadata.insert("dapr-http-status", v);
    }
    let code = runtime_api::codes::grpc_code_of(answer.status.as_u16());
    if code != Code::Ok {
        let message = String::from_utf8_lossy(&answer.body).into_owned();
        return Err(Status::with_metadata(code, message, metadata));
    }
    let content_type = answer
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut response = Response::new(common::InvokeResponse {
        data: Some(prost_types::Any { type_url: String::new(), value: answer.body.to_vec() }),
        content_type,
    });
    *response.metadata_mut() = metadata;
    Ok(response)
}

/// `actor_runtime` as daprd fills it.
fn actor_runtime_of(status: &crate::actors::ActorStatus) -> ActorRuntime {
    if !status.running {
        return ActorRuntime {
            runtime_status: actor_runtime::ActorRuntimeStatus::Disabled as i32,
            ..Default::default()
        };
    }
    ActorRuntime {
        runtime_status: actor_runtime::ActorRuntimeStatus::Running as i32,
        active_actors: status
            .active
            .iter()
            .map(|(t, n)| runtime_api::runtime::ActiveActorsCount {
                r#type: t.clone(),
                count: i32::try_from(*n).unwrap_or(i32::MAX),
            })
            .collect(),
        host_ready: status.host_ready,
        placement: String::new(),
    }
}
