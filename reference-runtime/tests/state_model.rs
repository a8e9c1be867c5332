//! A proptest state machine: random sequences of get, set, ETag set, first-write, delete,
//! transactions and clock advances run against `state.in-memory` and a plain model, which
//! must agree on every outcome, every value and on when ETags change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use contract::state::{
    DeleteRequest, GetRequest, SetRequest, TTL_IN_SECONDS, TransactionOperation, TransactionRequest,
};
use contract::{ManualClock, StateStore};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use reference_runtime::in_memory::state_memory::InMemoryStateStore;

const KEYS: &[&str] = &["k0", "k1", "k2"];

/// Which ETag a conditional operation carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    /// The key's current ETag (or, for an absent key, one that was never issued).
    Current,
    /// An ETag the key had before its latest write (or a bogus one if there is none).
    Stale,
}

#[derive(Debug, Clone)]
enum Op {
    Get(usize),
    Set { key: usize, value: u8, ttl: Option<i64> },
    SetIf { key: usize, value: u8, tag: Tag },
    FirstWrite { key: usize, value: u8 },
    Delete { key: usize, tag: Option<Tag> },
    Transaction(Vec<(usize, Option<u8>, Option<Tag>)>),
    Advance(u64),
}

#[derive(Debug, Clone, Default)]
struct Model {
    now: u64,
    /// key → (value, version, expiry second)
    items: BTreeMap<usize, (u8, u64, Option<u64>)>,
    version: u64,
    /// Whether the last operation should have succeeded.
    last_ok: bool,
}

impl Model {
    fn live(&self, key: usize) -> Option<(u8, u64)> {
        self.items.get(&key).filter(|(_, _, exp)| exp.is_none_or(|e| e > self.now)).map(|(v, ver, _)| (*v, *ver))
    }

    fn write(&mut self, key: usize, value: u8, ttl: Option<i64>) {
        self.version += 1;
        let expiry = ttl.filter(|t| *t >= 0).map(|t| self.now + t as u64);
        self.items.insert(key, (value, self.version, expiry));
    }

    /// Whether a conditional operation on `key` with `tag` passes its ETag check.
    fn tag_ok(&self, key: usize, tag: Option<Tag>) -> bool {
        match tag {
            None => true,
            Some(Tag::Current) => self.live(key).is_some(),
            Some(Tag::Stale) => false,
        }
    }
}

struct Reference;

fn tag() -> impl Strategy<Value = Tag> {
    prop_oneof![3 => Just(Tag::Current), 1 => Just(Tag::Stale)]
}

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(_state: &Model) -> BoxedStrategy<Op> {
        let key = 0..KEYS.len();
        prop_oneof![
            3 => key.clone().prop_map(Op::Get),
            3 => (key.clone(), any::<u8>(), prop::option::of(prop_oneof![Just(-1i64), 0i64..4])).prop_map(|(key, value, ttl)| Op::Set { key, value, ttl }),
            3 => (key.clone(), any::<u8>(), tag()).prop_map(|(key, value, tag)| Op::SetIf { key, value, tag }),
            2 => (key.clone(), any::<u8>()).prop_map(|(key, value)| Op::FirstWrite { key, value }),
            2 => (key.clone(), prop::option::of(tag())).prop_map(|(key, tag)| Op::Delete { key, tag }),
            2 => prop::collection::vec((key.clone(), prop::option::of(any::<u8>()), prop::option::of(tag())), 1..4).prop_map(Op::Transaction),
            1 => (1u64..3).prop_map(Op::Advance),
        ]
        .boxed()
    }

    fn apply(mut state: Model, op: &Op) -> Model {
        state.last_ok = true;
        match *op {
            Op::Get(_) => {}
            Op::Set { key, value, ttl } => state.write(key, value, ttl),
            Op::SetIf { key, value, tag } => {
                state.last_ok = state.tag_ok(key, Some(tag));
                if state.last_ok {
                    state.write(key, value, None);
                }
            }
            Op::FirstWrite { key, value } => {
                state.last_ok = state.live(key).is_none();
                if state.last_ok {
                    state.write(key, value, None);
                }
            }
            Op::Delete { key, tag } => {
                state.last_ok = state.tag_ok(key, tag);
                if state.last_ok {
                    state.items.remove(&key);
                }
            }
            Op::Transaction(ref ops) => {
                // Every ETag is checked against the state before the transaction.
                state.last_ok = ops.iter().all(|(key, _, tag)| state.tag_ok(*key, *tag));
                if state.last_ok {
                    for (key, value, _) in ops {
                        match value {
                            Some(v) => state.write(*key, *v, None),
                            None => {
                                state.items.remove(key);
                            }
                        }
                    }
                }
            }
            Op::Advance(secs) => state.now += secs,
        }
        state
    }
}

struct Sut {
    runtime: tokio::runtime::Runtime,
    clock: ManualClock,
    store: Arc<InMemoryStateStore>,
    /// Every ETag each key has had, newest last.
    etags: BTreeMap<usize, Vec<String>>,
}

impl Sut {
    fn current(&self, key: usize) -> Option<(Vec<u8>, String)> {
        let item = self.runtime.block_on(self.store.get(GetRequest::new(KEYS[key]))).expect("get");
        item.map(|i| (i.data, i.etag.expect("etag")))
    }

    fn etag_for(&self, key: usize, tag: Tag) -> String {
        match tag {
            Tag::Current => self.current(key).map(|(_, e)| e).unwrap_or_else(|| "never-issued".into()),
            Tag::Stale => {
                let history = self.etags.get(&key).cloned().unwrap_or_default();
                let current = self.current(key).map(|(_, e)| e);
                history.into_iter().rev().find(|e| Some(e) != current.as_ref()).unwrap_or_else(|| "bogus".into())
            }
        }
    }
}

struct StoreTest;

impl StateMachineTest for StoreTest {
    type SystemUnderTest = Sut;
    type Reference = Reference;

    fn init_test(_: &Model) -> Sut {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let clock = ManualClock::new();
        let store = runtime.block_on(async { Arc::new(InMemoryStateStore::new(clock.shared())) });
        Sut { runtime, clock, store, etags: BTreeMap::new() }
    }

    fn apply(mut sut: Sut, model: &Model, op: Op) -> Sut {
        let before: Vec<_> = (0..KEYS.len()).map(|k| sut.current(k).map(|(_, e)| e)).collect();
        let result = match op.clone() {
            Op::Get(key) => {
                sut.current(key);
                Ok(())
            }
            Op::Set { key, value, ttl } => {
                let mut request = SetRequest::new(KEYS[key], vec![value]);
                if let Some(t) = ttl {
                    request = request.with_metadata(TTL_IN_SECONDS, t.to_string());
                }
                sut.runtime.block_on(sut.store.set(request))
            }
            Op::SetIf { key, value, tag } => {
                let etag = sut.etag_for(key, tag);
                sut.runtime.block_on(sut.store.set(SetRequest::new(KEYS[key], vec![value]).with_etag(etag)))
            }
            Op::FirstWrite { key, value } => {
                sut.runtime.block_on(sut.store.set(SetRequest::new(KEYS[key], vec![value]).first_write()))
            }
            Op::Delete { key, tag } => {
                let mut request = DeleteRequest::new(KEYS[key]);
                if let Some(tag) = tag {
                    request = request.with_etag(sut.etag_for(key, tag));
                }
                sut.runtime.block_on(sut.store.delete(request))
            }
            Op::Transaction(ops) => {
                let operations = ops
                    .iter()
                    .map(|(key, value, tag)| {
                        let etag = tag.map(|t| sut.etag_for(*key, t));
                        match value {
                            Some(v) => {
                                TransactionOperation::Set(SetRequest { etag, ..SetRequest::new(KEYS[*key], vec![*v]) })
                            }
                            None => {
                                TransactionOperation::Delete(DeleteRequest { etag, ..DeleteRequest::new(KEYS[*key]) })
                            }
                        }
                    })
                    .collect();
                sut.runtime
                    .block_on(sut.store.transact(TransactionRequest { operations, metadata: Default::default() }))
            }
            Op::Advance(secs) => {
                sut.clock.advance(Duration::from_secs(secs));
                Ok(())
            }
        };
        assert_eq!(result.is_ok(), model.last_ok, "{op:?} gave {result:?}");
        if let Err(e) = &result {
            assert!(e.is_etag_error(), "a refused write is an etag error: {e:?}");
        }
        for key in 0..KEYS.len() {
            let now = sut.current(key);
            let expected = model.live(key);
            assert_eq!(now.as_ref().map(|(d, _)| d.clone()), expected.map(|(v, _)| vec![v]), "value of {}", KEYS[key]);
            let after = now.map(|(_, e)| e);
            let rewritten = match &op {
                Op::Set { key: k, .. } | Op::SetIf { key: k, .. } | Op::FirstWrite { key: k, .. } => {
                    *k == key && model.last_ok
                }
                // The key's last operation in the transaction decides.
                Op::Transaction(ops) => {
                    model.last_ok && ops.iter().rev().find(|(k, _, _)| *k == key).is_some_and(|(_, v, _)| v.is_some())
                }
                _ => false,
            };
            // A write with a zero TTL leaves nothing behind to compare.
            if rewritten && after.is_some() {
                assert_ne!(after, before[key], "a write changes the etag of {}", KEYS[key]);
            } else if after.is_some() {
                assert_eq!(after, before[key], "no write, no etag change for {}", KEYS[key]);
            }
            if let Some(e) = after {
                let history = sut.etags.entry(key).or_default();
                if history.last() != Some(&e) {
                    assert!(!history.contains(&e), "etag reused for {}", KEYS[key]);
                    history.push(e);
                }
            }
        }
        sut
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        .. ProptestConfig::default()
    })]
    #[test]
    fn in_memory_store_matches_the_model(sequential 1..40 => StoreTest);
}
