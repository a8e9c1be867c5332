//! The publish routes on the wire (`dapr-http-api.md` §2.1, §2.2).

use serde_json::json;

use super::{HTTP_API, Request, segment, trying};
use crate::case;
use crate::case::{Case, CaseResult, Ctx};
use crate::pubsub::BLOCK;

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "pubsub.http-api.publish-answers",
            "HTTP 2.1",
            "A publish MUST be answered 204 with no body, with any boolean `rawPayload` as Go parses one (`true`, `1`, `t`, `false`, `0`, `f`, empty); an unknown pub/sub 404 `ERR_PUBSUB_NOT_FOUND`; a `rawPayload` that is not a boolean 400 `ERR_PUBSUB_REQUEST_METADATA`; an `application/cloudevents+json` body that is not JSON 500 `ERR_PUBSUB_CLOUD_EVENTS_SER`.",
            [HTTP_API],
            ["http-api"],
            15,
            publish_answers
        ),
        case!(
            BLOCK,
            "pubsub.http-api.bulk-publish-answers",
            "HTTP 2.2",
            "A bulk publish MUST be answered 204, under `/v1.0-alpha1` and `/v1.0`; a body that is not an array, an entry whose `entryId` is missing or repeated, or whose `event` does not fit its `contentType` (none; `text/*` or `application/xml` and not a string; `application/octet-stream` and not base64), 400 `ERR_PUBSUB_EVENTS_SER`.",
            [HTTP_API],
            ["http-api"],
            15,
            bulk_answers
        ),
    ]
}

async fn publish_answers(ctx: Ctx) -> CaseResult {
    let topics = ctx.topics()?;
    let path = |pubsub: &str, query: &str| format!("/v1.0/publish/{pubsub}/{}{query}", segment(&topics.other));
    let pubsub = ctx.component_segment();
    let message = json!({"nonce": topics.nonce});
    ctx.exchange(Request::new("POST", path(&pubsub, "")).json(&message)).await?.empty(204)?;
    let missing = segment(&format!("{}-certify-absent", ctx.component));
    let elsewhere = Request::new("POST", path(&missing, "")).json(&message);
    ctx.exchange(elsewhere).await?.error(404, "ERR_PUBSUB_NOT_FOUND")?;
    let raw = Request::new("POST", path(&pubsub, "?metadata.rawPayload=perhaps")).json(&message);
    ctx.exchange(raw).await?.error(400, "ERR_PUBSUB_REQUEST_METADATA")?;
    for value in ["true", "1", "t", "false", "0", "f", ""] {
        let query = format!("?metadata.rawPayload={value}");
        let boolean = Request::new("POST", path(&pubsub, &query)).json(&message);
        ctx.exchange(boolean).await?.empty(204).map_err(trying(&format!("rawPayload `{value}`")))?;
    }
    let event = Request::new("POST", path(&pubsub, "")).body("{\"specversion\":", "application/cloudevents+json");
    ctx.exchange(event).await?.error(500, "ERR_PUBSUB_CLOUD_EVENTS_SER")
}

async fn bulk_answers(ctx: Ctx) -> CaseResult {
    let topics = ctx.topics()?;
    let (pubsub, topic) = (ctx.component_segment(), segment(&topics.other));
    let entry = |id: Option<&str>| {
        let mut entry = json!({"event": {"nonce": topics.nonce}, "contentType": "application/json"});
        if let Some(id) = id {
            entry["entryId"] = json!(id);
        }
        entry
    };
    for version in ["v1.0-alpha1", "v1.0"] {
        let path = format!("/{version}/publish/bulk/{pubsub}/{topic}");
        let good = Request::new("POST", &path).json(&json!([entry(Some("a")), entry(Some("b"))]));
        ctx.exchange(good).await?.empty(204).map_err(trying(&format!("under /{version}")))?;
    }
    let path = format!("/v1.0-alpha1/publish/bulk/{pubsub}/{topic}");
    let typed = |content_type: &str, event: serde_json::Value| json!([{"entryId": "typed", "event": event, "contentType": content_type}]);
    for (body, what) in [
        (typed("application/octet-stream", json!("aGVsbG8=")), "a base64 application/octet-stream event"),
        (typed("application/json", json!("a string")), "a JSON string as application/json"),
    ] {
        ctx.exchange(Request::new("POST", &path).json(&body)).await?.empty(204).map_err(trying(what))?;
    }
    for (body, what) in [
        (typed("", json!({"n": 1})), "an entry without contentType"),
        (typed("text/plain", json!({"n": 1})), "an object as text/plain"),
        (typed("application/xml", json!({"n": 1})), "an object as application/xml"),
        (typed("application/octet-stream", json!("%% not base64 %%")), "application/octet-stream that is not base64"),
        (typed("application/octet-stream", json!(7)), "a number as application/octet-stream"),
        (entry(Some("a")), "an object, not an array"),
        (json!([entry(Some("a")), entry(None)]), "an entry without `entryId`"),
        (json!([entry(Some("a")), entry(Some("a"))]), "a repeated `entryId`"),
    ] {
        let exchange = ctx.exchange(Request::new("POST", &path).json(&body)).await?;
        exchange.error(400, "ERR_PUBSUB_EVENTS_SER").map_err(trying(what))?;
    }
    Ok(())
}
