//! The secrets routes on the wire (`dapr-http-api.md` §4).

use contract::Block;
use serde_json::json;

use super::{HTTP_API, Request, segment};
use crate::case::{Case, CaseResult, Ctx};
use crate::secrets::SEEDED;
use crate::{case, ensure_eq};

pub(crate) fn cases() -> Vec<Case> {
    vec![case!(
        Block::SECRET_STORES,
        "secrets.http-api.answers",
        "HTTP 4",
        "A secret MUST be answered 200 with a JSON object of its keys; a missing secret 500 `ERR_SECRET_GET`; an unknown store 401 `ERR_SECRET_STORE_NOT_FOUND` (daprd's code; its docs say 400).",
        [HTTP_API],
        ["http-api"],
        10,
        answers
    )]
}

async fn answers(ctx: Ctx) -> CaseResult {
    let store = ctx.component_segment();
    let (name, value) = SEEDED[0];
    let found = ctx.exchange(Request::new("GET", format!("/v1.0/secrets/{store}/{name}"))).await?;
    found.status(200)?;
    ensure_eq!(found.json()?, json!({name: value}), "the secret `{name}`");
    let absent = segment(&ctx.key("absent"));
    ctx.exchange(Request::new("GET", format!("/v1.0/secrets/{store}/{absent}"))).await?.error(500, "ERR_SECRET_GET")?;
    let missing = segment(&format!("{}-certify-absent", ctx.component));
    let elsewhere = Request::new("GET", format!("/v1.0/secrets/{missing}/{name}"));
    ctx.exchange(elsewhere).await?.error(401, "ERR_SECRET_STORE_NOT_FOUND")
}
