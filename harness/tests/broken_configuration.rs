//! Deliberately broken configuration stores in the test tree: one never sends updates, one
//! keeps sending after an unsubscribe, one tells every subscriber of every key. The configuration suite must fail exactly those rules,
//! in-process and, where the sidecar lets the defect through, over HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use contract::configuration::{
    ConfigurationItem, ConfigurationSubscription, GetConfigurationRequest, SubscribeConfigurationRequest,
};
use contract::{Component, ComponentContext, ConfigurationStore, Registry, Result};
use harness::Filter;
use reference_runtime::in_memory::configuration_memory::InMemoryConfigurationStore;
use reports::Verdict;

mod common;

#[derive(Clone, Copy)]
enum Defect {
    NeverSendsUpdates,
    IgnoresUnsubscribe,
    TellsEveryKey,
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

    async fn subscribe(&self, mut request: SubscribeConfigurationRequest) -> Result<ConfigurationSubscription> {
        if let Defect::TellsEveryKey = self.defect {
            request.keys.clear();
        }
        let subscription = self.inner.subscribe(request).await?;
        match self.defect {
            Defect::NeverSendsUpdates => {
                // A live channel that nothing ever writes to.
                let (tx, updates) = tokio::sync::mpsc::unbounded_channel();
                std::mem::forget(tx);
                Ok(ConfigurationSubscription { id: subscription.id, updates })
            }
            Defect::IgnoresUnsubscribe | Defect::TellsEveryKey => Ok(subscription),
        }
    }

    async fn unsubscribe(&self, id: &str) -> Result<()> {
        match self.defect {
            Defect::IgnoresUnsubscribe => Ok(()),
            Defect::NeverSendsUpdates | Defect::TellsEveryKey => self.inner.unsubscribe(id).await,
        }
    }
}

fn registry() -> Registry {
    let mut registry = reference_runtime::builtin_registry();
    for (type_name, defect) in [
        ("configuration.broken-silent", Defect::NeverSendsUpdates),
        ("configuration.broken-unsubscribe", Defect::IgnoresUnsubscribe),
        ("configuration.broken-every-key", Defect::TellsEveryKey),
    ] {
        registry.register(type_name, move |_ctx: ComponentContext| async move {
            let inner = Arc::new(InMemoryConfigurationStore::new());
            let updater: Arc<dyn contract::ConfigurationUpdater> = inner.clone();
            Ok(Component::configuration(Arc::new(Broken { inner, defect }), Some(updater)))
        });
    }
    registry
}

const SPEC: &str = r#"
components:
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: silent}, spec: {type: configuration.broken-silent, version: v1}}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: sticky}, spec: {type: configuration.broken-unsubscribe, version: v1}}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: chatty}, spec: {type: configuration.broken-every-key, version: v1}}
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
        // The other keys change before the watched ones: the old case stopped listening first.
        let chatty = format!("chatty{driver}::configuration.subscribe.updates");
        common::expect_fail(&report, &chatty, "did not subscribe to");
        assert_eq!(verdict(&format!("chatty{driver}::configuration.subscribe.deletes")), Verdict::Pass);
    }
}

/// Subscription ids are only unique within a store: a sidecar serving two stores must not end
/// one store's subscription when the other's with the same id is unsubscribed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribing_in_one_store_leaves_another_stores_same_id_alone() {
    use contract::configuration::ConfigurationUpdater;
    use harness::http::HttpConfigurationStore;
    let (a, b) = (Arc::new(InMemoryConfigurationStore::new()), Arc::new(InMemoryConfigurationStore::new()));
    let mut components = contract::Components::default();
    for (name, store) in [("a", &a), ("b", &b)] {
        let updater: Arc<dyn ConfigurationUpdater> = store.clone();
        let component = Component::configuration(store.clone(), Some(updater));
        let manifest = contract::Resources::parse(
            std::path::Path::new("x.yaml"),
            &format!("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: {name}}}\nspec: {{type: configuration.in-memory, version: v1}}\n"),
        )
        .expect("yaml")
        .components
        .remove(0);
        components.by_name.insert(name.into(), contract::registry::LoadedComponent { manifest, component });
    }
    let app = harness::app::App::new();
    let app_port = app.serve().await.expect("app").port();
    let config = reference_runtime::sidecar::SidecarConfig { app_port: Some(app_port), ..Default::default() };
    let sidecar = reference_runtime::sidecar::Sidecar::new(config, components, Vec::new());
    let (url, _) = sidecar.serve_on_loopback().await.expect("serve");
    let over_http = |name: &'static str| HttpConfigurationStore::connect(&url, name, None, app.clone());
    let (in_a, in_b) = (over_http("a").await.expect("a"), over_http("b").await.expect("b"));
    let watch = SubscribeConfigurationRequest { keys: vec!["k".into()], metadata: Default::default() };
    let sub_a = in_a.subscribe(watch.clone()).await.expect("subscribe a");
    let mut sub_b = in_b.subscribe(watch).await.expect("subscribe b");
    assert_eq!(sub_a.id, sub_b.id, "the same id in two stores is the point of this test");
    in_a.unsubscribe(&sub_a.id).await.expect("unsubscribe a");
    let item = ConfigurationItem { value: "v".into(), version: "1".into(), metadata: Default::default() };
    b.set(BTreeMap::from([("k".to_owned(), item.clone())])).await.expect("write b");
    let update = tokio::time::timeout(std::time::Duration::from_secs(5), sub_b.updates.recv()).await;
    let update = update.expect("b's subscriber still hears of b's changes").expect("open");
    assert_eq!(update.items.get("k"), Some(&item));
}
