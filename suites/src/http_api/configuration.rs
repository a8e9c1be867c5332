//! The configuration routes on the wire (`dapr-http-api.md` §5).

use std::collections::BTreeMap;

use contract::Block;
use contract::configuration::ConfigurationItem;
use serde_json::json;

use super::{HTTP_API, Request, segment};
use crate::case::{Case, CaseResult, Ctx, Must};
use crate::configuration::WRITES;
use crate::{case, ensure_eq};

pub(crate) fn cases() -> Vec<Case> {
    vec![case!(
        Block::CONFIGURATION,
        "configuration.http-api.answers",
        "HTTP 5",
        "A get MUST answer 200 with a map of key → `{value, version}` (empty `metadata` left out) under `/v1.0` and `/v1.0-alpha1`, 204 when no key matches, and 400 `ERR_CONFIGURATION_STORE_NOT_FOUND` for an unknown store.",
        [HTTP_API, WRITES],
        ["http-api"],
        15,
        answers
    )]
}

async fn answers(ctx: Ctx) -> CaseResult {
    let key = ctx.key("k");
    let item = ConfigurationItem { value: "v1".into(), version: "1".into(), metadata: Default::default() };
    ctx.configuration_writer()?.set(BTreeMap::from([(key.clone(), item)])).await.must("writing through the updater")?;
    let store = ctx.component_segment();
    for version in ["v1.0", "v1.0-alpha1"] {
        let read = ctx.exchange(Request::new("GET", format!("/{version}/configuration/{store}?key={}", segment(&key))));
        let read = read.await?;
        read.status(200)?;
        ensure_eq!(read.json()?, json!({&key: {"value": "v1", "version": "1"}}), "the answer under /{version}");
    }
    let absent = segment(&ctx.key("absent"));
    ctx.exchange(Request::new("GET", format!("/v1.0/configuration/{store}?key={absent}"))).await?.empty(204)?;
    let missing = segment(&format!("{}-certify-absent", ctx.component));
    let elsewhere = Request::new("GET", format!("/v1.0/configuration/{missing}?key={absent}"));
    ctx.exchange(elsewhere).await?.error(400, "ERR_CONFIGURATION_STORE_NOT_FOUND")
}
