//! Builds in-memory components from Component YAML, the way users do, on a manual clock.

#![allow(dead_code, missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use contract::{Component, ManualClock, Resources};

pub fn yaml(name: &str, type_name: &str, metadata: &[(&str, &str)]) -> String {
    let mut text = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {type_name}\n  version: v1\n"
    );
    if !metadata.is_empty() {
        text.push_str("  metadata:\n");
        for (k, v) in metadata {
            text.push_str(&format!("  - name: {k}\n    value: \"{v}\"\n"));
        }
    }
    text
}

pub async fn build(type_name: &str, metadata: &[(&str, &str)], clock: &ManualClock) -> Component {
    let text = yaml("under-test", type_name, metadata);
    let resources = Resources::parse(Path::new("test.yaml"), &text).expect("valid yaml");
    let components = reference_runtime::builtin_registry()
        .build_all(&resources.components, clock.shared())
        .await
        .expect("component builds");
    components.by_name.get("under-test").expect("built").component.clone()
}

pub async fn state(clock: &ManualClock) -> Arc<dyn contract::StateStore> {
    build("state.in-memory", &[], clock).await.as_state().cloned().expect("a state store")
}

/// Polls `check` until it holds or `deadline` passes; real time, for asynchronous delivery.
pub async fn eventually<F: FnMut() -> bool>(deadline: Duration, mut check: F) -> bool {
    let until = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < until {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    check()
}
pub mod sidecar_env;
pub mod state_store;
