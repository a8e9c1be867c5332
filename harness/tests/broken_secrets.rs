//! Deliberately broken secret stores in the test tree: one answers a missing secret with an
//! empty one, one leaves a secret out of bulk reads, one cuts a multi-key secret down to one
//! key. The harness must fail exactly the rules they break, through both drivers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use contract::secrets::{GetSecretRequest, SecretData};
use contract::{
    Component, ComponentContext, Error, FeatureSet, Metadata, Registry, Result, SecretFeature, SecretStore,
};
use harness::Filter;
use reference_runtime::in_memory::secrets_local::LocalFileSecretStore;
use reports::Verdict;

mod common;

#[derive(Clone, Copy)]
enum Defect {
    EmptyForMissing,
    PartialBulk,
    OneKeyOnly,
}

struct Broken {
    inner: LocalFileSecretStore,
    defect: Defect,
}

#[async_trait]
impl SecretStore for Broken {
    fn features(&self) -> FeatureSet<SecretFeature> {
        self.inner.features()
    }

    async fn get(&self, request: GetSecretRequest) -> Result<SecretData> {
        match (self.defect, self.inner.get(request).await) {
            (Defect::EmptyForMissing, Err(Error::NotFound { .. })) => Ok(SecretData::new()),
            (Defect::OneKeyOnly, Ok(data)) => Ok(data.into_iter().take(1).collect()),
            (_, other) => other,
        }
    }

    async fn bulk_get(&self, metadata: Metadata) -> Result<BTreeMap<String, SecretData>> {
        let mut all = self.inner.bulk_get(metadata).await?;
        if let Defect::PartialBulk = self.defect {
            all.remove("secondsecret");
        }
        Ok(all)
    }
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/fixtures/secrets.json")
}

fn registry() -> Registry {
    let mut registry = reference_runtime::builtin_registry();
    for (type_name, defect) in [
        ("secretstores.broken-missing", Defect::EmptyForMissing),
        ("secretstores.broken-bulk", Defect::PartialBulk),
        ("secretstores.broken-multikey", Defect::OneKeyOnly),
    ] {
        registry.register(type_name, move |_ctx: ComponentContext| async move {
            let inner = LocalFileSecretStore::load(&fixture(), ":", true)?;
            Ok(Component::secrets(Arc::new(Broken { inner, defect })))
        });
    }
    registry
}

const SPEC: &str = r#"
components:
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: empty-missing}, spec: {type: secretstores.broken-missing, version: v1}}
    claims: [multiplekeyvaluespersecret]
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: partial-bulk}, spec: {type: secretstores.broken-bulk, version: v1}}
    claims: [multiplekeyvaluespersecret]
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: one-key}, spec: {type: secretstores.broken-multikey, version: v1}}
    claims: [multiplekeyvaluespersecret]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_secret_stores_are_caught_through_both_drivers() {
    let report = common::certify(&registry(), SPEC, &Filter::default()).await;
    for prefix in ["", "@http"] {
        let t = |component: &str, case: &str| format!("{component}{prefix}::{case}");
        for (component, broken, reason) in [
            ("empty-missing", "secrets.get.missing-is-an-error", "instead of an error"),
            ("partial-bulk", "secrets.get.bulk", "lacks `secondsecret`"),
            ("one-key", "secrets.get.multi-key", "multi-key secret `multisecret`"),
        ] {
            common::expect_fail(&report, &t(component, broken), reason);
            // Everything else it does not break passes.
            for other in ["secrets.get.single-value", "secrets.get.bulk", "secrets.get.missing-is-an-error"] {
                if other != broken {
                    let verdict = common::record(&report, &t(component, other)).verdict;
                    assert_eq!(verdict, Verdict::Pass, "{component} {other}");
                }
            }
        }
    }
}
