//! The app that hosts actors, as the runtime sees it: its configuration (`GET /dapr/config`)
//! and the callbacks daprd makes (method, reminder and timer calls; deactivation).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use contract::actors::ActorId;
use serde_json::Value;

/// A callback to the actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback<'a> {
    /// A method call: `PUT /actors/{type}/{id}/method/{m}`.
    Method(&'a str),
    /// A reminder fire: `…/method/remind/{name}`.
    Reminder(&'a str),
    /// A timer fire: `…/method/timer/{name}`.
    Timer(&'a str),
}

impl Callback<'_> {
    /// The app's path for `actor`.
    pub fn path(&self, actor: &ActorId) -> String {
        let base = format!("/actors/{}/{}/method", enc(&actor.actor_type), enc(&actor.id));
        match self {
            Callback::Method(m) => format!("{base}/{}", m.split('/').map(enc).collect::<Vec<_>>().join("/")),
            Callback::Reminder(n) => format!("{base}/remind/{}", enc(n)),
            Callback::Timer(n) => format!("{base}/timer/{}", enc(n)),
        }
    }
}

/// What a path segment escapes: everything but RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `segment`, escaped for a path.
pub(crate) fn enc(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

/// What the app answered a callback.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// Its status.
    pub status: u16,
    /// Its headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The app hosting actors.
#[async_trait]
pub trait ActorApp: Send + Sync {
    /// Its `/dapr/config` document; an error means it hosts none.
    async fn config(&self) -> Result<Value, String>;

    /// Calls `callback` on `actor` with `body` and `headers`.
    async fn call(
        &self,
        actor: &ActorId,
        callback: Callback<'_>,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<Reply, String>;

    /// Tells the app `actor` is deactivated (`DELETE /actors/{type}/{id}`).
    async fn deactivate(&self, actor: &ActorId) -> Result<(), String>;
}

/// An app that hosts nothing (no app, or one daprd cannot host actors for).
pub struct NoApp;

#[async_trait]
impl ActorApp for NoApp {
    async fn config(&self) -> Result<Value, String> {
        Err("no app".into())
    }
    async fn call(&self, _: &ActorId, _: Callback<'_>, _: Vec<u8>, _: Vec<(String, String)>) -> Result<Reply, String> {
        Err("no app".into())
    }
    async fn deactivate(&self, _: &ActorId) -> Result<(), String> {
        Ok(())
    }
}

/// How one hosted type behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeConfig {
    /// Deactivated after this long without a turn (`actorIdleTimeout`, default 60m).
    pub idle_timeout: Duration,
    /// How long shutdown waits for a turn in flight (`drainOngoingCallTimeout`, default 2s).
    pub drain: Duration,
    /// The deepest reentrant chain, when reentrancy is on (`maxStackDepth`, default 32).
    pub reentrancy: Option<u32>,
}

/// The types the app hosts, each with its configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActorConfig {
    /// By type.
    pub types: HashMap<String, TypeConfig>,
}

impl ActorConfig {
    /// Reads `/dapr/config` as daprd does: unparsable durations fall back to the defaults,
    /// `entitiesConfig` entries override the top level for the types they name.
    pub fn parse(doc: &Value) -> Self {
        let base = type_config(
            doc,
            &TypeConfig { idle_timeout: Duration::from_secs(3600), drain: Duration::from_secs(2), reentrancy: None },
        );
        let mut types: HashMap<String, TypeConfig> =
            names(doc.get("entities")).into_iter().map(|t| (t, base.clone())).collect();
        for entry in doc.get("entitiesConfig").and_then(Value::as_array).into_iter().flatten() {
            let own = type_config(entry, &base);
            for t in names(entry.get("entities")) {
                types.insert(t, own.clone());
            }
        }
        Self { types }
    }
}

fn names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

fn duration(doc: &Value, field: &str) -> Option<Duration> {
    let text = doc.get(field)?.as_str()?;
    crate::jobs::schedule::go_duration(text).ok()
}

fn type_config(doc: &Value, base: &TypeConfig) -> TypeConfig {
    let reentrancy = match doc.get("reentrancy") {
        Some(r) if r.get("enabled").and_then(Value::as_bool) == Some(true) => {
            Some(r.get("maxStackDepth").and_then(Value::as_u64).and_then(|d| u32::try_from(d).ok()).unwrap_or(32))
        }
        Some(_) => None,
        None => base.reentrancy,
    };
    TypeConfig {
        idle_timeout: duration(doc, "actorIdleTimeout").unwrap_or(base.idle_timeout),
        drain: duration(doc, "drainOngoingCallTimeout").unwrap_or(base.drain),
        reentrancy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entities_config_overrides_the_top_level() {
        let config = ActorConfig::parse(&json!({
            "entities": ["a", "b"],
            "actorIdleTimeout": "1h0m0s0ms0μs",
            "reentrancy": {"enabled": true},
            "entitiesConfig": [{"entities": ["b"], "actorIdleTimeout": "2s", "reentrancy": {"enabled": true, "maxStackDepth": 3}}],
        }));
        assert_eq!(config.types["a"].idle_timeout, Duration::from_secs(3600));
        assert_eq!(config.types["a"].reentrancy, Some(32));
        assert_eq!(config.types["b"].idle_timeout, Duration::from_secs(2));
        assert_eq!(config.types["b"].reentrancy, Some(3));
        let bad = ActorConfig::parse(&json!({"entities": ["a"], "actorIdleTimeout": "soon"}));
        assert_eq!(bad.types["a"].idle_timeout, Duration::from_secs(3600), "an invalid value is the default");
    }
}
