//! Deliberately broken state stores in the test tree: one ignores ETags, one's transactions
//! are not atomic, one forgets TTLs, one compares-and-sets in two steps, one answers
//! conflicts with a generic error, one fails a tenth of its writes, one refuses every write
//! that holds an ETag. The harness must report the cases of those rules failed,
//! through both drivers, with reasons that name what went wrong.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use contract::state::{
    DeleteRequest, GetRequest, Item, SetRequest, TTL_IN_SECONDS, TransactionOperation, TransactionRequest,
};
use contract::{Component, ComponentContext, FeatureSet, Registry, Result, StateFeature, StateStore};
use harness::{Filter, Session, Source, Spec};
use reference_runtime::in_memory::state_memory::InMemoryStateStore;
use reports::Verdict;

#[derive(Clone, Copy)]
enum Defect {
    IgnoresEtags,
    NonAtomicTransactions,
    ForgetsTtl,
    /// Compare-and-set as read, pause, write: correct alone, wrong under contention.
    ReadPauseWrite,
    /// Refuses what it should refuse, but with a generic error instead of an ETag mismatch.
    ConflictsAsErrors,
    /// Every tenth write fails (and does nothing).
    FailsATenth,
    /// Refuses every write that holds an ETag, current or not.
    RefusesEtagWrites,
    /// Takes an empty ETag for a real one (that is never current).
    EmptyEtagIsEtag,
    /// Keys-like lists as many keys as match, but the first ones under the pattern's literal
    /// prefix rather than the matching ones.
    WrongKeysLike,
}

struct Broken {
    inner: InMemoryStateStore,
    defect: Defect,
    writes: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl StateStore for Broken {
    fn features(&self) -> FeatureSet<StateFeature> {
        self.inner.features()
    }

    async fn get(&self, request: GetRequest) -> Result<Option<Item>> {
        self.inner.get(request).await
    }

    async fn set(&self, mut request: SetRequest) -> Result<()> {
        if let Defect::ReadPauseWrite = self.defect {
            let conditional =
                request.etag().is_some() || request.options.concurrency == contract::state::Concurrency::FirstWrite;
            if conditional {
                let current = self.inner.get(GetRequest::new(request.key.clone())).await?;
                let ok = match (request.etag(), &current) {
                    (Some(e), Some(item)) => item.etag.as_deref() == Some(e),
                    (Some(_), None) => false,
                    (None, existing) => existing.is_none(),
                };
                if !ok {
                    return Err(contract::Error::etag_mismatch(request.key, "stale"));
                }
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                request.etag = None;
                request.options = Default::default();
            }
            return self.inner.set(request).await;
        }
        match self.defect {
            Defect::IgnoresEtags => {
                request.etag = None;
                request.options = Default::default();
            }
            Defect::ForgetsTtl => {
                request.metadata.remove(TTL_IN_SECONDS);
            }
            Defect::ConflictsAsErrors => {
                return self.inner.set(request).await.map_err(|e| match e {
                    contract::Error::EtagMismatch { .. } => contract::Error::Backend("conflict".into()),
                    other => other,
                });
            }
            Defect::FailsATenth => {
                if self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 10 == 9 {
                    return Err(contract::Error::Backend("busy".into()));
                }
            }
            Defect::EmptyEtagIsEtag if request.etag.as_deref() == Some("") => {
                return Err(contract::Error::etag_mismatch(request.key, "no item has the ETag \"\""));
            }
            Defect::RefusesEtagWrites if request.etag().is_some() => {
                return Err(contract::Error::etag_mismatch(request.key, "refused"));
            }
            Defect::NonAtomicTransactions
            | Defect::ReadPauseWrite
            | Defect::RefusesEtagWrites
            | Defect::EmptyEtagIsEtag
            | Defect::WrongKeysLike => {}
        }
        self.inner.set(request).await
    }

    async fn delete(&self, mut request: DeleteRequest) -> Result<()> {
        if let Defect::IgnoresEtags = self.defect {
            request.etag = None;
        }
        self.inner.delete(request).await
    }

    async fn transact(&self, request: TransactionRequest) -> Result<()> {
        match self.defect {
            // Applies operations one by one and stops at the first failure: not atomic.
            Defect::NonAtomicTransactions => {
                for op in request.operations {
                    // Each operation a separate round trip, as a real store's would be.
                    tokio::task::yield_now().await;
                    match op {
                        TransactionOperation::Set(s) => self.inner.set(s).await?,
                        TransactionOperation::Delete(d) => self.inner.delete(d).await?,
                    }
                }
                Ok(())
            }
            _ => self.inner.transact(request).await,
        }
    }

    async fn query(&self, request: contract::state::QueryRequest) -> Result<contract::state::QueryResponse> {
        self.inner.query(request).await
    }

    async fn delete_with_prefix(&self, request: contract::state::DeleteWithPrefixRequest) -> Result<u64> {
        self.inner.delete_with_prefix(request).await
    }

    async fn keys_like(&self, request: contract::state::KeysLikeRequest) -> Result<contract::state::KeysLikeResponse> {
        if !matches!(self.defect, Defect::WrongKeysLike) {
            return self.inner.keys_like(request).await;
        }
        let wanted = self.inner.keys_like(request.clone()).await?.keys.len();
        let literal: String = request.pattern.chars().take_while(|c| *c != '%' && *c != '_').collect();
        let under = contract::state::KeysLikeRequest { pattern: format!("{literal}%"), ..request };
        let mut keys = self.inner.keys_like(under).await?.keys;
        keys.sort();
        keys.truncate(wanted);
        Ok(contract::state::KeysLikeResponse { keys, continuation_token: None })
    }
}

fn registry() -> Registry {
    let mut registry = reference_runtime::builtin_registry();
    for (type_name, defect) in [
        ("state.broken-etag", Defect::IgnoresEtags),
        ("state.broken-transaction", Defect::NonAtomicTransactions),
        ("state.broken-ttl", Defect::ForgetsTtl),
        ("state.broken-cas", Defect::ReadPauseWrite),
        ("state.broken-conflicts", Defect::ConflictsAsErrors),
        ("state.broken-busy", Defect::FailsATenth),
        ("state.broken-no-winner", Defect::RefusesEtagWrites),
        ("state.broken-keys-like", Defect::WrongKeysLike),
        ("state.broken-empty-etag", Defect::EmptyEtagIsEtag),
    ] {
        registry.register(type_name, move |ctx: ComponentContext| async move {
            let inner = InMemoryStateStore::new(ctx.clock);
            Ok(Component::state(Arc::new(Broken { inner, defect, writes: Default::default() })))
        });
    }
    registry
}

const SPEC: &str = r#"
components:
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: ignores-etags}, spec: {type: state.broken-etag, version: v1}}
    claims: [etag, first-write, transaction, ttl, query, delete-with-prefix, keyslike]
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: partial-transactions}, spec: {type: state.broken-transaction, version: v1}}
    claims: [etag, first-write, transaction, ttl, query, delete-with-prefix, keyslike]
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: forgets-ttl}, spec: {type: state.broken-ttl, version: v1}}
    claims: [etag, first-write, transaction, ttl, query, delete-with-prefix, keyslike]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_stores_are_caught_through_both_drivers() {
    let spec = Spec::parse("broken.yaml", Path::new("."), SPEC).expect("spec");
    let session =
        Session::open(Source::Spec(spec), &registry(), &harness::SessionOptions::default()).await.expect("session");
    let filter = Filter {
        patterns: vec!["etag".into(), "transaction".into(), "ttl".into(), "first-write".into()],
        ..Filter::default()
    };
    let report = harness::certify(&session, &filter, 16, "certify run", &mut |_| {}, &|_| {}).await;
    let verdict = |trial: &str| {
        report.cases.iter().find(|c| c.trial == trial).unwrap_or_else(|| panic!("no trial {trial}")).clone()
    };
    let expect_fail = |trial: &str, reason_part: &str| {
        let record = verdict(trial);
        assert_eq!(record.verdict, Verdict::Fail, "{trial}: {record:?}");
        let reason = record.reason.clone().unwrap_or_default();
        assert!(reason.contains(reason_part), "{trial}: reason `{reason}` lacks `{reason_part}`");
        assert!(record.rule.contains("MUST"), "{trial}: the record quotes the rule");
        assert!(record.rerun.as_deref().is_some_and(|r| r.contains(trial)), "{trial}: a rerun command");
    };
    for prefix in ["", "@http"] {
        let t = |component: &str, case: &str| format!("{component}{prefix}::{case}");
        expect_fail(&t("ignores-etags", "state.etag.stale-write-rejected"), "not an ETag mismatch");
        expect_fail(
            &t("ignores-etags", "state.first-write.creates-only"),
            "second first-write without an ETag succeeded",
        );
        expect_fail(
            &t("partial-transactions", "state.transaction.atomic-on-etag-failure"),
            "after the failed transaction",
        );
        expect_fail(&t("forgets-ttl", "state.ttl.item-expires"), "still readable");
        expect_fail(&t("forgets-ttl", "state.ttl.expire-time-reported"), "no `ttlExpireTime`");
        // The defects are specific: each store passes what it does not break.
        assert_eq!(verdict(&t("forgets-ttl", "state.etag.stale-write-rejected")).verdict, Verdict::Pass);
        assert_eq!(verdict(&t("ignores-etags", "state.transaction.operation-order")).verdict, Verdict::Pass);
        assert_eq!(verdict(&t("partial-transactions", "state.ttl.expire-time-reported")).verdict, Verdict::Pass);
    }
    assert!(!report.summary.ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_pause_write_compare_and_set_fails_linearizability_every_time() {
    let spec = Spec::parse(
        "cas.yaml",
        Path::new("."),
        "components:\n  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: racy}, spec: {type: state.broken-cas, version: v1}}\n    claims: [etag, first-write, transaction, ttl, query, delete-with-prefix, keyslike]\n    drivers: [in-process]\n",
    )
    .expect("spec");
    let session =
        Session::open(Source::Spec(spec), &registry(), &harness::SessionOptions::default()).await.expect("session");
    let filter = Filter { patterns: vec!["racy::state.concurrency.".into()], ..Filter::default() };
    for run in 0..20 {
        let report = harness::certify(&session, &filter, 1, "certify run", &mut |_| {}, &|_| {}).await;
        for case in [
            "state.concurrency.linearizable",
            "state.concurrency.same-etag-one-winner",
            "state.concurrency.first-write-one-winner",
        ] {
            let record = report.cases.iter().find(|c| c.id == case).expect("ran");
            assert_eq!(record.verdict, Verdict::Fail, "run {run}: {case} passed: {record:?}");
        }
        let lin = report.cases.iter().find(|c| c.id == "state.concurrency.linearizable").expect("ran");
        assert!(lin.reason.as_deref().is_some_and(|r| r.contains("not linearizable")), "{lin:?}");
        let minimal =
            lin.evidence.as_ref().and_then(|e| e["minimal"].as_array()).expect("the minimal history is in the record");
        assert!(!minimal.is_empty() && minimal.len() < 20, "a small sub-history: {} operations", minimal.len());
    }
}

/// Each of these passed before: a generic error for a conflict was accepted (or left the race
/// inconclusive), errors under contention were "may have happened", and zero winners of an
/// ETag race were "at most one".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_must_be_etag_mismatches_and_races_must_have_a_winner() {
    let spec = Spec::parse(
        "conflicts.yaml",
        Path::new("."),
        "components:
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: generic-conflicts}, spec: {type: state.broken-conflicts, version: v1}}
    claims: [etag, first-write]
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: busy}, spec: {type: state.broken-busy, version: v1}}
    claims: [etag, first-write]
    drivers: [in-process]
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: no-winner}, spec: {type: state.broken-no-winner, version: v1}}
    claims: [etag]
    drivers: [in-process]
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: empty-etag}, spec: {type: state.broken-empty-etag, version: v1}}
    claims: [etag, first-write]
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: wrong-keys}, spec: {type: state.broken-keys-like, version: v1}}
    claims: [keyslike]
    drivers: [in-process]
",
    )
    .expect("spec");
    let session =
        Session::open(Source::Spec(spec), &registry(), &harness::SessionOptions::default()).await.expect("session");
    let filter = Filter {
        patterns: vec!["etag".into(), "first-write".into(), "concurrency".into(), "keyslike.patterns".into()],
        ..Filter::default()
    };
    let report = harness::certify(&session, &filter, 4, "certify run", &mut |_| {}, &|_| {}).await;
    let expect_fail = |trial: &str, reason_part: &str| {
        let record = report.cases.iter().find(|c| c.trial == trial).unwrap_or_else(|| panic!("no trial {trial}"));
        assert_eq!(record.verdict, Verdict::Fail, "{trial}: {record:?}");
        let reason = record.reason.clone().unwrap_or_default();
        assert!(reason.contains(reason_part), "{trial}: reason `{reason}` lacks `{reason_part}`");
    };
    for prefix in ["", "@http"] {
        let t = |case: &str| format!("generic-conflicts{prefix}::{case}");
        expect_fail(&t("state.first-write.creates-only"), "not an ETag mismatch");
        expect_fail(&t("state.first-write.with-etag"), "not an ETag mismatch");
        expect_fail(&t("state.etag.bulk-set-partial-success"), "not an ETag mismatch");
        expect_fail(&t("state.concurrency.first-write-one-winner"), "not an ETag mismatch");
        // The HTTP driver used to drop the empty ETag, so it never reached the sidecar.
        expect_fail(&format!("empty-etag{prefix}::state.first-write.empty-etag-is-none"), "the first first-write");
    }
    expect_fail("busy::state.concurrency.linearizable", "failed with errors other than an ETag mismatch");
    expect_fail("no-winner::state.concurrency.same-etag-one-winner", "0 of 8");
    // The right number of keys, not the matching ones: the old count-only check passed it.
    expect_fail("wrong-keys::state.keyslike.patterns", "the keys");
}
