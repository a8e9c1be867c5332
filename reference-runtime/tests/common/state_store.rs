//! The in-memory state store on a manual clock, and reads that unwrap, for the state rule tests.

use std::sync::Arc;

use contract::state::{GetRequest, Item};
use contract::{ManualClock, StateStore};

pub async fn store() -> (Arc<dyn StateStore>, ManualClock) {
    let clock = ManualClock::new();
    (super::state(&clock).await, clock)
}

pub async fn get(s: &dyn StateStore, key: &str) -> Option<Item> {
    s.get(GetRequest::new(key)).await.expect("get")
}

pub async fn data(s: &dyn StateStore, key: &str) -> Option<Vec<u8>> {
    get(s, key).await.map(|i| i.data)
}

pub async fn etag(s: &dyn StateStore, key: &str) -> String {
    get(s, key).await.and_then(|i| i.etag).expect("item with etag")
}
