//! Deliberately broken bindings in the test tree. Output side: a `create` that never
//! overwrites, a `delete` that does nothing, an unknown operation answered with success, an
//! operations list that leaves `delete` out. Input side: events lost on the way, and failed
//! events acknowledged anyway. The harness must fail exactly the rules they break, through
//! both drivers where the driver can express the rule.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use contract::bindings::{BindingHandler, InvokeRequest, InvokeResponse};
use contract::pubsub::Subscription;
use contract::{Component, ComponentContext, Error, InputBinding, OutputBinding, Registry, Result, system_clock};
use harness::Filter;
use reference_runtime::in_memory::bindings_memory::InMemoryBinding;
use reports::Verdict;

mod common;

#[derive(Clone, Copy, PartialEq)]
enum Defect {
    NeverOverwrites,
    DeleteIgnored,
    AnyOperationSucceeds,
    ListsTooFew,
    LosesEvents,
    AcksFailedEvents,
    /// Answers ping while its backend is gone: every operation fails.
    PingLies,
}

/// A key/value output binding (`create`, `get`, `delete` on the metadata `key`) with one defect.
struct Kv {
    items: Mutex<HashMap<String, Vec<u8>>>,
    defect: Defect,
}

#[async_trait]
impl OutputBinding for Kv {
    fn operations(&self) -> Vec<String> {
        let all = ["create", "get", "delete"];
        let listed = if self.defect == Defect::ListsTooFew { &all[..2] } else { &all[..] };
        listed.iter().map(|s| (*s).to_owned()).collect()
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        if self.defect == Defect::PingLies {
            return Err(Error::Backend("connection refused".into()));
        }
        let key = request.metadata.get("key").cloned().unwrap_or_default();
        let mut items = self.items.lock().expect("lock");
        match request.operation.as_str() {
            "create" if self.defect == Defect::NeverOverwrites => {
                items.entry(key).or_insert(request.data);
            }
            "create" => {
                items.insert(key, request.data);
            }
            "get" => return Ok(InvokeResponse { data: items.get(&key).cloned(), ..InvokeResponse::default() }),
            "delete" if self.defect == Defect::DeleteIgnored => {}
            "delete" => {
                items.remove(&key);
            }
            _ if self.defect == Defect::AnyOperationSucceeds => {}
            other => return Err(Error::unsupported(format!("operation `{other}`"))),
        }
        Ok(InvokeResponse::default())
    }
}

/// The in-memory binding pair with a defect on the way in or out.
struct Lossy {
    inner: InMemoryBinding,
    defect: Defect,
    created: AtomicU64,
}

#[async_trait]
impl OutputBinding for Lossy {
    fn operations(&self) -> Vec<String> {
        self.inner.operations()
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        let n = self.created.fetch_add(1, Ordering::Relaxed);
        if self.defect == Defect::LosesEvents && n % 3 == 2 {
            return Ok(InvokeResponse::default());
        }
        self.inner.invoke(request).await
    }
}

#[async_trait]
impl InputBinding for Lossy {
    async fn read(&self, handler: BindingHandler) -> Result<Subscription> {
        let handler: BindingHandler = match self.defect {
            Defect::AcksFailedEvents => Arc::new(move |event| {
                let handled = handler(event);
                Box::pin(async move {
                    let _ = handled.await;
                    Ok(Vec::new())
                })
            }),
            _ => handler,
        };
        self.inner.read(handler).await
    }
}

fn registry() -> Registry {
    let mut registry = reference_runtime::builtin_registry();
    for (type_name, defect) in [
        ("bindings.broken-overwrite", Defect::NeverOverwrites),
        ("bindings.broken-delete", Defect::DeleteIgnored),
        ("bindings.broken-any-op", Defect::AnyOperationSucceeds),
        ("bindings.broken-listing", Defect::ListsTooFew),
        ("bindings.broken-ping", Defect::PingLies),
    ] {
        registry.register(type_name, move |_ctx: ComponentContext| async move {
            let kv = Arc::new(Kv { items: Mutex::default(), defect });
            Ok(Component::binding(None, Some(kv)))
        });
    }
    for (type_name, defect) in
        [("bindings.broken-loses", Defect::LosesEvents), ("bindings.broken-acks-failed", Defect::AcksFailedEvents)]
    {
        registry.register(type_name, move |_ctx: ComponentContext| async move {
            let inner = InMemoryBinding::new(system_clock());
            let pair = Arc::new(Lossy { inner, defect, created: AtomicU64::new(0) });
            Ok(Component::binding(Some(pair.clone()), Some(pair)))
        });
    }
    registry
}

fn entry(name: &str, type_name: &str, claims: &str) -> String {
    format!(
        "  - component: {{apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {{name: {name}}}, spec: {{type: {type_name}, version: v1}}}}\n    claims: [{claims}]\n    settings: {{deliveryTimeoutSeconds: 3}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_bindings_are_caught_through_both_drivers() {
    let spec = format!(
        "components:\n{}{}{}{}{}{}{}",
        entry("overwrite", "bindings.broken-overwrite", "create, get, delete"),
        entry("delete", "bindings.broken-delete", "create, get, delete"),
        entry("any-op", "bindings.broken-any-op", "create, get, delete"),
        entry("listing", "bindings.broken-listing", "create, get, delete"),
        entry("loses", "bindings.broken-loses", "create, read"),
        entry("acks-failed", "bindings.broken-acks-failed", "create, read"),
        entry("ping-lies", "bindings.broken-ping", "create, get, delete"),
    );
    let report = common::certify(&registry(), &spec, &Filter::default()).await;
    for prefix in ["", "@http"] {
        let http = prefix == "@http";
        let t = |component: &str, case: &str| format!("{component}{prefix}::{case}");
        for (component, case, reason) in [
            ("overwrite", "bindings.get.round-trip", "after create #2"),
            ("delete", "bindings.delete.removes", "after delete"),
            ("loses", "bindings.read.every-event", "were not delivered"),
            ("acks-failed", "bindings.read.failed-event-redelivered", "not delivered again"),
            ("ping-lies", "bindings.basic.ping", "a `create` after the ping failed"),
        ] {
            common::expect_fail(&report, &t(component, case), reason);
        }
        if http {
            // A sidecar refuses operations the binding does not list, as daprd does: the
            // binding's own defect is masked, and an unlisted operation cannot be called.
            let any_op = common::record(&report, &t("any-op", "bindings.invoke.unknown-operation-rejected"));
            assert_eq!(any_op.verdict, Verdict::Pass, "{any_op:?}");
            common::expect_fail(&report, &t("listing", "bindings.delete.removes"), "does not support operation delete");
            let listed = common::record(&report, &t("listing", "bindings.operations.listed"));
            assert_eq!(listed.verdict, Verdict::Skipped, "the HTTP API cannot list operations: {listed:?}");
        } else {
            common::expect_fail(
                &report,
                &t("any-op", "bindings.invoke.unknown-operation-rejected"),
                "instead of an error",
            );
            common::expect_fail(
                &report,
                &t("listing", "bindings.operations.listed"),
                "certified operations [\"delete\"]",
            );
        }
        // What each does not break passes.
        for (component, case) in [
            ("overwrite", "bindings.delete.removes"),
            ("overwrite", "bindings.invoke.unknown-operation-rejected"),
            ("delete", "bindings.get.round-trip"),
            ("any-op", "bindings.get.round-trip"),
            ("any-op", "bindings.delete.removes"),
            ("listing", "bindings.get.round-trip"),
            ("acks-failed", "bindings.read.every-event"),
            ("acks-failed", "bindings.read.delivers-created"),
        ] {
            let record = common::record(&report, &t(component, case));
            assert_eq!(record.verdict, Verdict::Pass, "{record:?}");
        }
    }
}
