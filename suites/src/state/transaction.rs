//! Transactions (S20–S23) and the hole upstream leaves: atomicity when one operation fails.

use contract::state::{DeleteRequest, SetRequest, TransactionOperation, TransactionRequest};

use super::{BLOCK, ETAG, TRANSACTION, context, data, ensure_data, etag, get, set};
use crate::case;
use crate::case::{Case, CaseResult, Ctx, Must};
use crate::{ensure, ensure_eq};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "state.transaction.groups-apply",
            "S20",
            "Each transaction MUST apply its upserts and deletes, visible right after it returns.",
            [TRANSACTION],
            ["transaction"],
            20,
            groups
        ),
        case!(
            BLOCK,
            "state.transaction.delete-missing-key",
            "S21",
            "Deleting a missing key inside a transaction MUST succeed.",
            [TRANSACTION],
            ["transaction"],
            10,
            delete_missing
        ),
        case!(
            BLOCK,
            "state.transaction.operation-order",
            "S22",
            "Operations inside a transaction MUST apply in the order given.",
            [TRANSACTION],
            ["transaction"],
            10,
            order
        ),
        case!(
            BLOCK,
            "state.transaction.json-values",
            "S23",
            "JSON values written in a transaction, with or without a content type, MUST read back as the same JSON.",
            [TRANSACTION],
            ["transaction"],
            10,
            json_values
        ),
        case!(
            BLOCK,
            "state.transaction.atomic-on-etag-failure",
            "certify",
            "A transaction with one stale ETag MUST fail and leave every key it touches unchanged.",
            [TRANSACTION, ETAG],
            ["transaction", "etag"],
            10,
            atomic
        ),
    ]
}

fn upsert(key: &str, value: &str) -> TransactionOperation {
    TransactionOperation::Set(SetRequest::new(key, value))
}

fn remove(key: &str) -> TransactionOperation {
    TransactionOperation::Delete(DeleteRequest::new(key))
}

async fn transact(ctx: &Ctx, operations: Vec<TransactionOperation>, what: &str) -> CaseResult {
    ctx.state()?.transact(TransactionRequest { operations, metadata: Default::default() }).await.must(what)
}

async fn groups(ctx: Ctx) -> CaseResult {
    let k = |s: &str| ctx.key(s);
    transact(
        &ctx,
        vec![
            upsert(&k("trx-int"), "123"),
            upsert(&k("trx-bool"), "true"),
            upsert(&k("trx-string"), r#""hello""#),
            upsert(&k("trx-to-be-deleted"), r#""x""#),
        ],
        "group 1",
    )
    .await?;
    ensure_data(&k("trx-int"), data(&ctx, &k("trx-int")).await?, Some(b"123"))?;
    ensure_data(&k("trx-to-be-deleted"), data(&ctx, &k("trx-to-be-deleted")).await?, Some(br#""x""#))?;
    transact(&ctx, vec![upsert(&k("trx-struct"), r#"{"a":1}"#), remove(&k("trx-to-be-deleted"))], "group 2").await?;
    ensure_data(&k("trx-struct"), data(&ctx, &k("trx-struct")).await?, Some(br#"{"a":1}"#))?;
    ensure_data(&k("trx-to-be-deleted"), data(&ctx, &k("trx-to-be-deleted")).await?, None)?;
    transact(&ctx, vec![upsert(&k("trx-to-be-deleted-too"), r#""y""#)], "group 3").await?;
    transact(&ctx, vec![remove(&k("trx-to-be-deleted-too"))], "group 4").await?;
    ensure_data(&k("trx-to-be-deleted-too"), data(&ctx, &k("trx-to-be-deleted-too")).await?, None)
}

async fn delete_missing(ctx: Ctx) -> CaseResult {
    transact(&ctx, vec![remove(&ctx.key("non-existent-key"))], "a transaction deleting a missing key").await
}

async fn order(ctx: Ctx) -> CaseResult {
    let (k1, k2, k3) = (ctx.key("key1"), ctx.key("key2"), ctx.key("key3"));
    set(&ctx, &k1, r#""value1""#).await?;
    transact(
        &ctx,
        vec![remove(&k1), upsert(&k2, r#""value2""#), remove(&k2), upsert(&k3, r#""value3""#)],
        "the transaction",
    )
    .await?;
    ensure_data(&k1, data(&ctx, &k1).await?, None)?;
    ensure_data(&k2, data(&ctx, &k2).await?, None)?;
    ensure_data(&k3, data(&ctx, &k3).await?, Some(br#""value3""#))
}

async fn json_values(ctx: Ctx) -> CaseResult {
    let (with, without) = (ctx.key("json-with"), ctx.key("json-without"));
    let doc = r#"{"id":1223,"name":"test"}"#;
    let mut typed = SetRequest::new(with.clone(), doc);
    typed.content_type = Some("application/json".into());
    transact(&ctx, vec![TransactionOperation::Set(typed), upsert(&without, doc)], "the transaction").await?;
    for key in [&with, &without] {
        let bytes = data(&ctx, key).await?.unwrap_or_default();
        let seen: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| crate::case::Finding::Fail(format!("`{key}` is not JSON any more: {e}")))?;
        ensure_eq!(seen, serde_json::json!({"id": 1223, "name": "test"}), "`{key}`");
    }
    Ok(())
}

async fn atomic(ctx: Ctx) -> CaseResult {
    let (a, b, c) = (ctx.key("atomic-a"), ctx.key("atomic-b"), ctx.key("atomic-c"));
    set(&ctx, &a, r#""a0""#).await?;
    set(&ctx, &b, r#""b0""#).await?;
    let (ea, eb) = (etag(&ctx, &a).await?, etag(&ctx, &b).await?);
    let result = ctx
        .state()?
        .transact(TransactionRequest {
            operations: vec![
                TransactionOperation::Set(SetRequest::new(a.clone(), r#""a1""#).with_etag(ea.clone())),
                upsert(&c, r#""c1""#),
                remove(&b),
                TransactionOperation::Set(
                    SetRequest::new(b.clone(), r#""b1""#).with_etag(ctx.settings.bad_etag.clone()),
                ),
            ],
            metadata: Default::default(),
        })
        .await;
    ensure!(result.is_err(), "a transaction with a stale ETag succeeded");
    let partial = "after the failed transaction: it was applied in part, not all or nothing";
    ensure_data(&a, data(&ctx, &a).await?, Some(br#""a0""#)).map_err(context(partial))?;
    ensure_eq!(etag(&ctx, &a).await?, ea, "ETag of `{a}` after the failed transaction");
    ensure_data(&b, data(&ctx, &b).await?, Some(br#""b0""#)).map_err(context(partial))?;
    ensure_eq!(etag(&ctx, &b).await?, eb, "ETag of `{b}` after the failed transaction");
    ensure!(get(&ctx, &c).await?.is_none(), "`{c}` was created by the failed transaction");
    Ok(())
}
