//! Subscriptions: programmatic (`GET /dapr/subscribe` on the app) and declarative
//! (`Subscription` resources), with routing rules.

use std::time::Duration;

use axum::http::{HeaderMap, Method};
use contract::pubsub::BulkSubscribeConfig;
use contract::{Metadata, manifest::OtherDocument};
use serde::Deserialize;
use serde_json::Value;

use super::app_channel::AppChannel;
use super::match_expr::Expr;

/// Where a subscription came from, as `/v1.0/metadata` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Asked for by the app at `/dapr/subscribe`.
    Programmatic,
    /// A `Subscription` resource.
    Declarative,
    /// A `SubscribeTopicEventsAlpha1` stream of the gRPC API, while it is open.
    Streaming,
}

impl Origin {
    /// Its name in metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Programmatic => "PROGRAMMATIC",
            Origin::Declarative => "DECLARATIVE",
            Origin::Streaming => "STREAMING",
        }
    }
}

/// One routing rule: the first whose `match` holds picks the path.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The expression as written (empty for the default rule).
    pub text: String,
    /// The parsed expression; `None` matches everything.
    pub expr: Option<Expr>,
    /// The app path events go to.
    pub path: String,
}

/// A subscription the sidecar serves.
#[derive(Debug, Clone)]
pub struct SubscriptionSpec {
    /// The pub/sub component.
    pub pubsub: String,
    /// The topic.
    pub topic: String,
    /// Routing rules, the default last.
    pub rules: Vec<Rule>,
    /// Where dropped and exhausted messages go.
    pub dead_letter_topic: Option<String>,
    /// Subscription metadata (`rawPayload`, component keys).
    pub metadata: Metadata,
    /// Batch delivery, when enabled.
    pub bulk: Option<BulkSubscribeConfig>,
    /// Where it came from.
    pub origin: Origin,
    /// App ids it applies to; empty means all.
    pub scopes: Vec<String>,
}

impl SubscriptionSpec {
    /// True when the subscription applies to `app_id`.
    pub fn applies_to(&self, app_id: &str) -> bool {
        self.scopes.is_empty() || self.scopes.iter().any(|s| s == app_id)
    }

    /// True for `rawPayload` subscriptions.
    pub fn raw_payload(&self) -> bool {
        self.metadata.get("rawPayload").is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The path for an event, or `None` when no rule matches.
    pub fn route(&self, event: &Value) -> Option<&str> {
        self.rules.iter().find(|r| r.expr.as_ref().is_none_or(|e| e.matches(event))).map(|r| r.path.as_str())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleJson {
    #[serde(rename = "match", default)]
    match_: String,
    path: String,
}

#[derive(Debug, Deserialize, Default)]
struct RoutesJson {
    #[serde(default)]
    rules: Vec<RuleJson>,
    #[serde(default)]
    default: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct BulkJson {
    #[serde(default)]
    enabled: bool,
    max_messages_count: Option<usize>,
    max_await_duration_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionJson {
    pubsubname: String,
    topic: String,
    #[serde(default)]
    route: String,
    #[serde(default)]
    routes: Option<RoutesJson>,
    #[serde(default)]
    dead_letter_topic: String,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    bulk_subscribe: Option<BulkJson>,
}

fn normalise_path(path: &str) -> String {
    if path.starts_with('/') { path.to_owned() } else { format!("/{path}") }
}

fn build(json: SubscriptionJson, origin: Origin, scopes: Vec<String>) -> Result<SubscriptionSpec, String> {
    if json.pubsubname.is_empty() || json.topic.is_empty() {
        return Err("a subscription needs `pubsubname` and `topic`".into());
    }
    let routes = json.routes.unwrap_or_default();
    let mut rules = Vec::new();
    for rule in routes.rules {
        let expr = Expr::parse(&rule.match_).map_err(|e| format!("rule `{}`: {e}", rule.match_))?;
        rules.push(Rule { text: rule.match_, expr: Some(expr), path: normalise_path(&rule.path) });
    }
    // `routes.default` takes precedence over the v1 `route`.
    let default = if routes.default.is_empty() { json.route } else { routes.default };
    if !default.is_empty() {
        rules.push(Rule { text: String::new(), expr: None, path: normalise_path(&default) });
    }
    if rules.is_empty() {
        return Err(format!("subscription to `{}` has no route", json.topic));
    }
    let bulk = json.bulk_subscribe.filter(|b| b.enabled).map(|b| {
        let d = BulkSubscribeConfig::default();
        BulkSubscribeConfig {
            max_messages_count: b.max_messages_count.filter(|n| *n > 0).unwrap_or(d.max_messages_count),
            max_await_duration: b.max_await_duration_ms.map(Duration::from_millis).unwrap_or(d.max_await_duration),
        }
    });
    Ok(SubscriptionSpec {
        pubsub: json.pubsubname,
        topic: json.topic,
        rules,
        dead_letter_topic: Some(json.dead_letter_topic).filter(|d| !d.is_empty()),
        metadata: json.metadata,
        bulk,
        origin,
        scopes,
    })
}

/// Parses the app's answer to `GET /dapr/subscribe`; bad entries are skipped with a warning.
pub fn parse_programmatic(body: &[u8]) -> Vec<SubscriptionSpec> {
    let entries: Vec<Value> = match serde_json::from_slice(body) {
        Ok(Value::Array(entries)) => entries,
        Ok(_) | Err(_) => {
            tracing::warn!("the app's /dapr/subscribe answer is not a JSON array; no subscriptions");
            return Vec::new();
        }
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let parsed = serde_json::from_value::<SubscriptionJson>(entry.clone())
                .map_err(|e| e.to_string())
                .and_then(|json| build(json, Origin::Programmatic, Vec::new()));
            parsed.map_err(|e| tracing::warn!(%entry, error = %e, "skipping subscription")).ok()
        })
        .collect()
}

/// Asks the app for its subscriptions, retrying as daprd does (500 ms, 3 retries).
pub async fn load_programmatic(app: &AppChannel, app_id: &str) -> Vec<SubscriptionSpec> {
    let mut headers = HeaderMap::new();
    headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    if let Ok(v) = axum::http::HeaderValue::from_str(app_id) {
        headers.insert("dapr-app-id", v);
    }
    let mut delay = Duration::from_millis(500);
    for attempt in 0..4 {
        match app.call(Method::GET, "/dapr/subscribe", headers.clone(), Default::default()).await {
            Ok(r) if r.status.is_success() => return parse_programmatic(&r.body),
            Ok(r) if r.status == axum::http::StatusCode::NOT_FOUND => return Vec::new(),
            Ok(r) => tracing::warn!(status = %r.status, "the app answered /dapr/subscribe with an error"),
            Err(e) if attempt < 3 => tracing::debug!(error = %e, "retrying /dapr/subscribe"),
            Err(e) => tracing::warn!(error = %e, "cannot read the app's subscriptions"),
        }
        if attempt < 3 {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }
    Vec::new()
}

/// Reads declarative `Subscription` resources (`dapr.io/v2alpha1`, and the deprecated
/// `v1alpha1` with `spec.route`).
pub fn parse_declarative(documents: &[OtherDocument]) -> Result<Vec<SubscriptionSpec>, String> {
    let mut specs = Vec::new();
    for doc in documents.iter().filter(|d| d.kind == "Subscription") {
        let name =
            doc.value.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str()).unwrap_or("<unnamed>");
        let context = |e: String| format!("`{}`: subscription `{name}`: {e}", doc.source.display());
        let spec: Value = doc
            .value
            .get("spec")
            .map(|s| serde_json::to_value(s).map_err(|e| e.to_string()))
            .transpose()
            .map_err(context)?
            .ok_or_else(|| context("field `spec` is required".into()))?;
        let scopes: Vec<String> = doc
            .value
            .get("scopes")
            .and_then(|s| s.as_sequence())
            .map(|seq| seq.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let json: SubscriptionJson = serde_json::from_value(spec).map_err(|e| context(e.to_string()))?;
        specs.push(build(json, Origin::Declarative, scopes).map_err(context)?);
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn programmatic_rules_default_and_bulk() {
        let body = json!([
            {"pubsubname": "pubsub", "topic": "orders", "route": "/old",
             "routes": {"rules": [{"match": "event.type == \"widget\"", "path": "widgets"}], "default": "/orders"},
             "deadLetterTopic": "poison", "metadata": {"rawPayload": "true"},
             "bulkSubscribe": {"enabled": true, "maxMessagesCount": 10, "maxAwaitDurationMs": 40}},
            {"pubsubname": "pubsub", "topic": "bad", "routes": {"rules": [{"match": "size(event) > 1", "path": "/x"}]}},
            {"pubsubname": "pubsub", "topic": "noroute"}
        ]);
        let specs = parse_programmatic(body.to_string().as_bytes());
        assert_eq!(specs.len(), 1, "unsupported rules and routeless entries are skipped");
        let s = &specs[0];
        assert_eq!(s.route(&json!({"type": "widget"})), Some("/widgets"));
        assert_eq!(s.route(&json!({"type": "other"})), Some("/orders"), "default wins over route");
        assert_eq!(s.dead_letter_topic.as_deref(), Some("poison"));
        assert!(s.raw_payload());
        assert_eq!(s.bulk.map(|b| (b.max_messages_count, b.max_await_duration)), Some((10, Duration::from_millis(40))));
    }

    #[test]
    fn declarative_v2_and_v1() {
        let text = "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata:\n  name: order\nspec:\n  topic: orders\n  pubsubname: pubsub\n  routes:\n    rules:\n    - match: event.type == \"widget\"\n      path: /widgets\n    default: /checkout\nscopes: [checkout]\n---\napiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata:\n  name: old\nspec:\n  topic: t\n  pubsubname: pubsub\n  route: /t\n";
        let resources = contract::Resources::parse(std::path::Path::new("subs.yaml"), text).expect("yaml");
        let specs = parse_declarative(&resources.others).expect("valid");
        assert_eq!(specs.len(), 2);
        assert!(specs[0].applies_to("checkout") && !specs[0].applies_to("other"));
        assert_eq!(specs[1].route(&json!({})), Some("/t"));
        let bad = contract::Resources::parse(
            std::path::Path::new("subs.yaml"),
            "kind: Subscription\nmetadata:\n  name: s\nspec:\n  pubsubname: p\n",
        )
        .expect("yaml");
        let err = parse_declarative(&bad.others).expect_err("no topic");
        assert!(err.starts_with("`subs.yaml`: subscription `s`: "), "{err}");
    }
}
