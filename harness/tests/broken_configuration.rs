//! Deliberately broken configuration stores in the test tree: one never sends updates, one
//! keeps sending after an unsubscribe. The configuration suite must fail exactly those rules,
//! in-process and, where the sidecar lets the defect through, over HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use contract::configuration::{
    ConfigurationItem, ConfigurationSubscription, GetConfigurationRequest, SubscribeConfigurationRequest,
};
use contract::{Component, ComponentContext, ConfigurationStore, Registry, Result};
use harness::Filter;
use reference_runtime::components::configuration_memory::InMemoryConfigurationStore;
use reports::Verdict;

mod common;

#[derive(Clone, Copy)]
enum Defect {
    NeverSendsUpdates,
    IgnoresUnsubscribe,
}

struct Broken {
    inner: Arc<InMemoryConfigurationStore>,
    defect: Defect,
}

#[async_trait]
impl ConfigurationStore for Broken {
    async fn get(&self, request: GetConfigurationRequest) -> Result<BTreeMap<String, ConfigurationItem>> {
        self.inner.get(request).await
    }

    async fn subscribe(&self, request: SubscribeConfigurationRequest) -> Result<ConfigurationSubscription> {
        let subscription = self.inner.subscribe(request).await?;
        match self.defect {
            Defect::NeverSendsUpdates => {
                // A live channel that nothing ever writes to.
                let (tx, updates) = tokio::sync::mpsc::unbounded_channel();
                std::mem::forget(tx);
                Ok(ConfigurationSubscription { id: subscription.id, updates })
            }
            Defect::IgnoresUnsubscribe => Ok(subscription),
        }
    }

    async fn unsubscribe(&self, id: &str) -> Result<()> {
        match self.defect {
            Defect::IgnoresUnsubscribe => Ok(()),
            Defect::NeverSendsUpdates => self.inner.unsubscribe(id).await,
        }
    }
}

fn registry() -> Registry {
    let mut registry = reference_runtime::builtin_registry();
    for (type_name, defect) in [
        ("configuration.broken-silent", Defect::NeverSendsUpdates),
        ("configuration.broken-unsubscribe", Defect::IgnoresUnsubscribe),
    ] {
        registry.register(type_name, move |_ctx: ComponentContext| async move {
            let inner = Arc::new(InMemoryConfigurationStore::new());
            let updater: Arc<dyn contract::ConfigurationUpdater> = inner.clone();
            Ok(Component::Configuration { store: Arc::new(Broken { inner, defect }), updater: Some(updater) })
        });
    }
    registry
}

const SPEC: &str = r#"
components:
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: silent}, spec: {type: configuration.broken-silent, version: v1}}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: sticky}, spec: {type: configuration.broken-unsubscribe, version: v1}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_configuration_stores_are_caught() {
    let report = common::certify(&registry(), SPEC, &Filter::default()).await;
    let verdict = |trial: &str| common::record(&report, trial).verdict;
    for driver in ["", "@http"] {
        for case in ["configuration.subscribe.updates", "configuration.subscribe.all-keys-sees-new-keys"] {
            common::expect_fail(&report, &format!("silent{driver}::{case}"), "expected Some");
        }
        let sticky = format!("sticky{driver}::configuration.subscribe.unsubscribe-stops-updates");
        if driver.is_empty() {
            common::expect_fail(&report, &sticky, "unsubscribed subscriber still received");
        } else {
            // The reference sidecar stops forwarding a subscription it was told to end, so the
            // store's defect does not reach the app; only a sidecar that goes on would fail here.
            assert_eq!(verdict(&sticky), Verdict::Pass);
        }
        for case in ["configuration.get.listed-keys", "configuration.get.all-keys", "configuration.get.missing-keys"] {
            assert_eq!(verdict(&format!("silent{driver}::{case}")), Verdict::Pass, "{case}");
            assert_eq!(verdict(&format!("sticky{driver}::{case}")), Verdict::Pass, "{case}");
        }
        let updates = common::record(&report, &format!("sticky{driver}::configuration.subscribe.updates"));
        assert_eq!(updates.verdict, Verdict::Pass, "{updates:?}");
    }
}
