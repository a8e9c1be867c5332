//! The CloudEvent envelope, built as daprd builds it (dapr-http-api.md §2.1).

use std::time::SystemTime;

use base64::Engine;
use contract::Metadata;
use contract::clock::rfc3339;
use serde_json::{Map, Value};

/// The default content type of a published body.
pub const DEFAULT_CONTENT_TYPE: &str = "text/plain";
/// The content type of an envelope.
pub const CLOUDEVENT_CONTENT_TYPE: &str = "application/cloudevents+json";
/// The default event type.
pub const DEFAULT_TYPE: &str = "com.dapr.event.sent";

/// Everything the envelope is built from.
#[derive(Debug, Clone)]
pub struct Publication<'a> {
    /// The publishing app's id (the default `source`).
    pub app_id: &'a str,
    /// The pub/sub component's name.
    pub pubsub: &'a str,
    /// The topic.
    pub topic: &'a str,
    /// The request's content type, if any.
    pub content_type: Option<&'a str>,
    /// The request body.
    pub body: &'a [u8],
    /// The request's metadata (`cloudevent.*` overrides).
    pub metadata: &'a Metadata,
    /// The W3C trace context of the request, if any.
    pub traceparent: Option<&'a str>,
    /// The `tracestate` of the request, if any.
    pub tracestate: Option<&'a str>,
    /// When the event expires, for components that do not expire messages themselves.
    pub expiration: Option<SystemTime>,
    /// Now, for `time`.
    pub now: SystemTime,
}

/// Why an envelope could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot create cloudevent: {0}")]
pub struct EnvelopeError(pub String);

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json") && essence != CLOUDEVENT_CONTENT_TYPE)
}

fn is_binary(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/octet-stream" | "application/cloudevents+protobuf" | "application/x-protobuf"
    )
}

fn is_cloudevent(content_type: &str) -> bool {
    content_type.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case(CLOUDEVENT_CONTENT_TYPE)
}

/// Builds the envelope's JSON bytes.
pub fn envelope(p: &Publication<'_>) -> Result<Vec<u8>, EnvelopeError> {
    let content_type = p.content_type.filter(|c| !c.is_empty()).unwrap_or(DEFAULT_CONTENT_TYPE);
    let overrides = |name: &str| p.metadata.get(&format!("cloudevent.{name}")).filter(|v| !v.is_empty()).cloned();
    let traceparent = overrides("traceparent").or_else(|| p.traceparent.map(str::to_owned)).unwrap_or_default();
    let tracestate = overrides("tracestate").or_else(|| p.tracestate.map(str::to_owned)).unwrap_or_default();
    let mut event = if is_cloudevent(content_type) {
        // The app sent its own CloudEvent: keep it, fill what is missing.
        let mut event: Map<String, Value> = match serde_json::from_slice(p.body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(EnvelopeError("the body is not a JSON object".into())),
            Err(e) => return Err(EnvelopeError(e.to_string())),
        };
        event.entry("id").or_insert_with(|| Value::String(uuid::Uuid::new_v4().to_string()));
        event.entry("time").or_insert_with(|| Value::String(rfc3339(p.now)));
        if !event.contains_key("traceid") {
            event.insert("traceid".into(), Value::String(traceparent.clone()));
            event.insert("traceparent".into(), Value::String(traceparent));
        }
        event.entry("tracestate").or_insert(Value::String(tracestate));
        event.entry("source").or_insert_with(|| Value::String("Dapr".into()));
        event.entry("type").or_insert_with(|| Value::String(DEFAULT_TYPE.into()));
        event.entry("specversion").or_insert_with(|| Value::String("1.0".into()));
        event
    } else {
        let mut event = Map::new();
        event.insert("id".into(), Value::String(overrides("id").unwrap_or_else(|| uuid::Uuid::new_v4().to_string())));
        event.insert("specversion".into(), Value::String("1.0".into()));
        event.insert("datacontenttype".into(), Value::String(content_type.to_owned()));
        event.insert("source".into(), Value::String(overrides("source").unwrap_or_else(|| p.app_id.to_owned())));
        event.insert("type".into(), Value::String(overrides("type").unwrap_or_else(|| DEFAULT_TYPE.to_owned())));
        event.insert("traceid".into(), Value::String(traceparent.clone()));
        event.insert("traceparent".into(), Value::String(traceparent));
        event.insert("tracestate".into(), Value::String(tracestate));
        event.insert("time".into(), Value::String(rfc3339(p.now)));
        if let Some(subject) = overrides("subject") {
            event.insert("subject".into(), Value::String(subject));
        }
        if is_json(content_type) {
            let data = serde_json::from_slice(p.body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(p.body).into_owned()));
            event.insert("data".into(), data);
        } else if is_binary(content_type) {
            event.insert("data_base64".into(), Value::String(base64::engine::general_purpose::STANDARD.encode(p.body)));
        } else {
            event.insert("data".into(), Value::String(String::from_utf8_lossy(p.body).into_owned()));
        }
        event
    };
    event.insert("topic".into(), Value::String(p.topic.to_owned()));
    event.insert("pubsubname".into(), Value::String(p.pubsub.to_owned()));
    if let Some(at) = p.expiration {
        event.insert("expiration".into(), Value::String(rfc3339(at)));
    }
    serde_json::to_vec(&Value::Object(event)).map_err(|e| EnvelopeError(e.to_string()))
}

/// Wraps a raw payload for a `rawPayload` subscription, as daprd does on delivery.
pub fn wrap_raw(pubsub: &str, topic: &str, data: &[u8], metadata: &Metadata) -> Value {
    let mut event = Map::new();
    event.insert("id".into(), Value::String(uuid::Uuid::new_v4().to_string()));
    event.insert("specversion".into(), Value::String("1.0".into()));
    event.insert("datacontenttype".into(), Value::String("application/octet-stream".into()));
    event.insert("source".into(), Value::String("Dapr".into()));
    event.insert("type".into(), Value::String(DEFAULT_TYPE.into()));
    event.insert("topic".into(), Value::String(topic.into()));
    event.insert("pubsubname".into(), Value::String(pubsub.into()));
    event.insert("data_base64".into(), Value::String(base64::engine::general_purpose::STANDARD.encode(data)));
    for key in ["traceid", "traceparent", "tracestate"] {
        if let Some(v) = metadata.get(key) {
            event.insert(key.into(), Value::String(v.clone()));
        }
    }
    Value::Object(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn build(content_type: Option<&str>, body: &[u8], metadata: &Metadata) -> Value {
        let p = Publication {
            app_id: "publisher",
            pubsub: "pubsub",
            topic: "orders",
            content_type,
            body,
            metadata,
            traceparent: None,
            tracestate: None,
            expiration: None,
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000),
        };
        serde_json::from_slice(&envelope(&p).expect("envelope")).expect("json")
    }

    #[test]
    fn data_follows_the_content_type() {
        let none = Metadata::new();
        let text = build(None, b"hello", &none);
        assert_eq!((text["datacontenttype"].clone(), text["data"].clone()), (json!("text/plain"), json!("hello")));
        let obj = build(Some("application/json; charset=utf-8"), br#"{"a":1}"#, &none);
        assert_eq!(obj["data"], json!({"a": 1}));
        let not_json = build(Some("application/json"), b"{oops", &none);
        assert_eq!(not_json["data"], json!("{oops"));
        let bin = build(Some("application/octet-stream"), &[0, 255], &none);
        assert_eq!(bin["data_base64"], json!("AP8="));
        assert!(bin.get("data").is_none());
        for field in [
            "id",
            "specversion",
            "source",
            "type",
            "topic",
            "pubsubname",
            "traceid",
            "traceparent",
            "tracestate",
            "time",
        ] {
            assert!(text.get(field).is_some(), "missing {field}");
        }
        assert_eq!(
            (text["source"].clone(), text["type"].clone(), text["time"].clone()),
            (json!("publisher"), json!(DEFAULT_TYPE), json!("2030-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn overrides_and_app_cloudevents() {
        let md: Metadata =
            [("cloudevent.id".to_owned(), "my-id".to_owned()), ("cloudevent.subject".to_owned(), "s".to_owned())]
                .into();
        let e = build(None, b"x", &md);
        assert_eq!((e["id"].clone(), e["subject"].clone()), (json!("my-id"), json!("s")));
        let own = build(
            Some(CLOUDEVENT_CONTENT_TYPE),
            br#"{"id":"1","type":"custom","data":{"k":"v"},"topic":"wrong"}"#,
            &Metadata::new(),
        );
        assert_eq!(
            (own["id"].clone(), own["type"].clone(), own["topic"].clone()),
            (json!("1"), json!("custom"), json!("orders"))
        );
        assert_eq!((own["source"].clone(), own["specversion"].clone()), (json!("Dapr"), json!("1.0")));
        let p = Publication {
            app_id: "a",
            pubsub: "p",
            topic: "t",
            content_type: Some(CLOUDEVENT_CONTENT_TYPE),
            body: b"[1]",
            metadata: &Metadata::new(),
            traceparent: None,
            tracestate: None,
            expiration: None,
            now: SystemTime::now(),
        };
        assert!(envelope(&p).is_err());
    }
}
