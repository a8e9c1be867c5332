//! The lock routes on the wire (`dapr-http-api.md` §6): the bodies of both answers, and bad
//! requests refused one fault at a time (not the order daprd checks them in).

use contract::Block;
use serde_json::{Value, json};

use super::{HTTP_API, Request, segment, trying};
use crate::case::{Case, CaseResult, Ctx};
use crate::{case, ensure_eq};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case!(
            Block::LOCK,
            "lock.http-api.answers",
            "HTTP 6",
            "Lock MUST answer 200 `{\"success\":true|false}` and unlock 200 `{\"status\":n}` with the numeric status (0 SUCCESS, 1 LOCK_DOES_NOT_EXIST, 2 LOCK_BELONGS_TO_OTHERS); snake_case field names MUST be accepted.",
            [HTTP_API],
            ["http-api"],
            10,
            answers
        ),
        case!(
            Block::LOCK,
            "lock.http-api.bad-requests",
            "HTTP 6",
            "A lock with `expiryInSeconds` ≤ 0, an empty `resourceId` or an empty `lockOwner` MUST be answered 400 `ERR_MALFORMED_REQUEST`; an unknown store 400 `ERR_LOCK_STORE_NOT_FOUND`.",
            [HTTP_API],
            ["http-api"],
            10,
            bad_requests
        ),
    ]
}

fn call(ctx: &Ctx, route: &str, body: &Value) -> Request {
    Request::new("POST", format!("/v1.0-alpha1/{route}/{}", ctx.component_segment())).json(body)
}

async fn answer(ctx: &Ctx, route: &str, body: Value) -> Result<Value, crate::Finding> {
    let exchange = ctx.exchange(call(ctx, route, &body)).await?;
    exchange.status(200)?;
    exchange.json()
}

async fn answers(ctx: Ctx) -> CaseResult {
    let resource = ctx.key("resource");
    let mine = json!({"resourceId": resource, "lockOwner": "certify-a", "expiryInSeconds": 30});
    ensure_eq!(answer(&ctx, "lock", mine).await?, json!({"success": true}), "the answer to a free lock");
    let theirs = json!({"resource_id": resource, "lock_owner": "certify-b", "expiry_in_seconds": 30});
    ensure_eq!(answer(&ctx, "lock", theirs).await?, json!({"success": false}), "the answer to a held lock");
    let unlock = |owner: &str| json!({"resourceId": resource, "lockOwner": owner});
    ensure_eq!(answer(&ctx, "unlock", unlock("certify-b")).await?, json!({"status": 2}), "another owner's unlock");
    ensure_eq!(answer(&ctx, "unlock", unlock("certify-a")).await?, json!({"status": 0}), "the owner's unlock");
    ensure_eq!(answer(&ctx, "unlock", unlock("certify-a")).await?, json!({"status": 1}), "a second unlock");
    Ok(())
}

async fn bad_requests(ctx: Ctx) -> CaseResult {
    let resource = ctx.key("resource");
    let lock = |resource: &str, owner: &str, expiry: i64| json!({"resourceId": resource, "lockOwner": owner, "expiryInSeconds": expiry});
    for (body, what) in [
        (lock(&resource, "certify", 0), "a zero expiry"),
        (lock(&resource, "certify", -5), "a negative expiry"),
        (lock("", "certify", 30), "an empty resourceId"),
        (lock(&resource, "", 30), "an empty lockOwner"),
    ] {
        let exchange = ctx.exchange(call(&ctx, "lock", &body)).await?;
        exchange.error(400, "ERR_MALFORMED_REQUEST").map_err(trying(what))?;
    }
    let missing = segment(&format!("{}-certify-absent", ctx.component));
    let elsewhere = Request::new("POST", format!("/v1.0-alpha1/lock/{missing}")).json(&lock(&resource, "certify", 30));
    ctx.exchange(elsewhere).await?.error(400, "ERR_LOCK_STORE_NOT_FOUND")
}
