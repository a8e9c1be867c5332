//! ETags (S25–S33) and first-write concurrency (S34–S36), plus the holes: ETags change on
//! every write and never name two values; an ETag on a missing key is rejected.

use std::collections::HashMap;

use contract::Error;
use contract::state::{DeleteRequest, GetRequest, SetRequest};

use super::{BLOCK, ETAG, FIRST_WRITE, KEYED_BULK, data, ensure_data, etag, get, set};
use crate::case;
use crate::case::{Case, CaseResult, Ctx, Finding, Must};
use crate::{ensure, ensure_eq};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "state.etag.every-item-has-etag",
            "S25",
            "Every item MUST carry a non-empty ETag, in get and in bulk get.",
            [ETAG],
            ["etag"],
            10,
            every_item
        ),
        case!(
            BLOCK,
            "state.etag.stale-write-rejected",
            "S26",
            "A write with a stale ETag MUST fail as an ETag mismatch and leave the item unchanged.",
            [ETAG],
            ["etag"],
            10,
            stale_write
        ),
        case!(
            BLOCK,
            "state.etag.current-etag-accepted",
            "S27",
            "A write with the current ETag MUST succeed and give the item a new ETag.",
            [ETAG],
            ["etag"],
            10,
            current_etag
        ),
        case!(
            BLOCK,
            "state.etag.changes-on-every-write",
            "certify",
            "Every write MUST change the ETag, and one ETag MUST never name two different values.",
            [ETAG],
            ["etag"],
            20,
            changes_every_write
        ),
        case!(
            BLOCK,
            "state.etag.missing-key-rejected",
            "certify",
            "A write or delete with an ETag on a missing key MUST fail as an ETag mismatch.",
            [ETAG],
            ["etag"],
            10,
            missing_key
        ),
        case!(
            BLOCK,
            "state.etag.bulk-set-partial-success",
            "S28",
            "A bulk set with one stale ETag MUST fail for that key alone: the others are written, the stale one keeps its value and ETag.",
            [ETAG],
            ["etag", "bulk"],
            10,
            bulk_set_partial
        ),
        case!(
            BLOCK,
            "state.etag.bulk-set-keyed-error",
            "S28",
            "A bulk set's ETag failure MUST be reported per key, naming exactly the failing key.",
            [ETAG, KEYED_BULK],
            ["etag", "bulk"],
            10,
            bulk_set_keyed
        ),
        case!(
            BLOCK,
            "state.etag.bulk-set-valid-etags",
            "S29",
            "A bulk set with current ETags MUST write every item.",
            [ETAG],
            ["etag", "bulk"],
            10,
            bulk_set_valid
        ),
        case!(
            BLOCK,
            "state.etag.delete-stale-rejected",
            "S30",
            "A delete with a stale ETag MUST fail with an ETag error and keep the item.",
            [ETAG],
            ["etag"],
            10,
            delete_stale
        ),
        case!(
            BLOCK,
            "state.etag.delete-current-accepted",
            "S31",
            "A delete with the current ETag MUST remove the item.",
            [ETAG],
            ["etag"],
            10,
            delete_current
        ),
        case!(
            BLOCK,
            "state.etag.bulk-delete-partial-success",
            "S32",
            "A bulk delete with one stale ETag MUST delete the others and keep the stale one unchanged.",
            [ETAG],
            ["etag", "bulk"],
            10,
            bulk_delete_partial
        ),
        case!(
            BLOCK,
            "state.first-write.creates-only",
            "S34",
            "A first-write without an ETag MUST create a missing key and fail on an existing one.",
            [FIRST_WRITE],
            ["first-write"],
            10,
            first_write_creates
        ),
        case!(
            BLOCK,
            "state.first-write.empty-etag-is-none",
            "S35",
            "A first-write with an empty ETag MUST behave as one without an ETag.",
            [FIRST_WRITE],
            ["first-write"],
            10,
            first_write_empty
        ),
        case!(
            BLOCK,
            "state.first-write.with-etag",
            "S36",
            "A first-write with the current ETag MUST succeed and one with an old ETag MUST fail.",
            [FIRST_WRITE, ETAG],
            ["first-write", "etag"],
            10,
            first_write_etag
        ),
    ]
}

/// An ETag mismatch: Dapr's 409 (`ERR_STATE_SAVE`/`ERR_STATE_DELETE`) over HTTP, the contract's
/// `Error::EtagMismatch` in-process. A bulk call's may come per key, every one a mismatch.
pub(super) fn is_mismatch(result: &contract::Result<()>) -> bool {
    match result {
        Err(Error::EtagMismatch { .. }) => true,
        Err(Error::Bulk(failures)) => {
            !failures.is_empty() && failures.iter().all(|f| matches!(f.error, Error::EtagMismatch { .. }))
        }
        _ => false,
    }
}

/// Fails unless `result` is an ETag mismatch; `what` names the call.
fn ensure_mismatch(result: &contract::Result<()>, what: &str) -> CaseResult {
    match result {
        Ok(()) => Err(Finding::Fail(format!("{what} succeeded"))),
        Err(_) if is_mismatch(result) => Ok(()),
        Err(e) => Err(Finding::Fail(format!("{what} failed with `{e}`, not an ETag mismatch"))),
    }
}

async fn every_item(ctx: Ctx) -> CaseResult {
    let keys: Vec<String> = (1..=4).map(|i| ctx.key(&format!("etag{i}"))).collect();
    ctx.state()?
        .bulk_set(keys.iter().map(|k| SetRequest::new(k.clone(), r#""first-value""#)).collect())
        .await
        .must("bulk set")?;
    for key in &keys {
        etag(&ctx, key).await?;
    }
    let answers =
        ctx.state()?.bulk_get(keys.iter().map(|k| GetRequest::new(k.clone())).collect()).await.must("bulk get")?;
    for answer in answers {
        let e = answer.item.and_then(|i| i.etag).unwrap_or_default();
        ensure!(!e.is_empty(), "bulk get gave `{}` no ETag", answer.key);
    }
    Ok(())
}

async fn stale_write(ctx: Ctx) -> CaseResult {
    let key = ctx.key("stale");
    set(&ctx, &key, r#""first-value""#).await?;
    let before = etag(&ctx, &key).await?;
    let result = ctx
        .state()?
        .set(SetRequest::new(key.clone(), r#""second-value""#).with_etag(ctx.settings.bad_etag.clone()))
        .await;
    ensure!(
        is_mismatch(&result),
        "a write with ETag `{}` answered {result:?}, not an ETag mismatch",
        ctx.settings.bad_etag
    );
    ensure_data(&key, data(&ctx, &key).await?, Some(br#""first-value""#))?;
    ensure_eq!(etag(&ctx, &key).await?, before, "ETag after the refused write");
    Ok(())
}

async fn current_etag(ctx: Ctx) -> CaseResult {
    let key = ctx.key("current");
    set(&ctx, &key, r#""first-value""#).await?;
    let first = etag(&ctx, &key).await?;
    ctx.state()?
        .set(SetRequest::new(key.clone(), r#""second-value""#).with_etag(first.clone()))
        .await
        .must("write with the current ETag")?;
    ensure_data(&key, data(&ctx, &key).await?, Some(br#""second-value""#))?;
    ensure!(etag(&ctx, &key).await? != first, "the ETag did not change on a write");
    Ok(())
}

async fn changes_every_write(ctx: Ctx) -> CaseResult {
    let key = ctx.key("churn");
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut previous = String::new();
    for i in 0..30 {
        // Values repeat and the key is re-created: neither may bring an old ETag back.
        let value = format!("\"v{}\"", i % 3);
        set(&ctx, &key, &value).await?;
        let e = etag(&ctx, &key).await?;
        ensure!(e != previous, "write {i} kept the ETag `{e}`");
        if let Some(old) = seen.insert(e.clone(), value.clone()) {
            return Err(Finding::Fail(format!(
                "ETag `{e}` was issued again at write {i} (first for {old}, now for {value})"
            )));
        }
        previous = e;
        if i % 10 == 9 {
            super::delete(&ctx, &key).await?;
        }
    }
    Ok(())
}

async fn missing_key(ctx: Ctx) -> CaseResult {
    let key = ctx.key("absent");
    let write = ctx.state()?.set(SetRequest::new(key.clone(), "1").with_etag(ctx.settings.bad_etag.clone())).await;
    ensure!(is_mismatch(&write), "a write with an ETag on a missing key answered {write:?}");
    ensure!(get(&ctx, &key).await?.is_none(), "the refused write created `{key}`");
    let delete = ctx.state()?.delete(DeleteRequest::new(key.clone()).with_etag(ctx.settings.bad_etag.clone())).await;
    ensure!(
        delete.as_ref().is_err_and(Error::is_etag_error),
        "a delete with an ETag on a missing key answered {delete:?}"
    );
    Ok(())
}

async fn two_items(ctx: &Ctx, a: &str, b: &str) -> Result<(String, String, String, String), Finding> {
    let (ka, kb) = (ctx.key(a), ctx.key(b));
    set(ctx, &ka, r#""v1""#).await?;
    set(ctx, &kb, r#""v1""#).await?;
    Ok((etag(ctx, &ka).await?, etag(ctx, &kb).await?, ka, kb))
}

async fn bulk_set_partial(ctx: Ctx) -> CaseResult {
    let (good_etag, bad_etag, good, bad) = two_items(&ctx, "good", "bad").await?;
    let result = ctx
        .state()?
        .bulk_set(vec![
            SetRequest::new(good.clone(), r#""v2""#).with_etag(good_etag.clone()),
            SetRequest::new(bad.clone(), r#""v2""#).with_etag(ctx.settings.bad_etag.clone()),
        ])
        .await;
    ensure_mismatch(&result, "a bulk set with a stale ETag")?;
    ensure_data(&good, data(&ctx, &good).await?, Some(br#""v2""#))?;
    ensure!(etag(&ctx, &good).await? != good_etag, "the good key's ETag did not change");
    ensure_data(&bad, data(&ctx, &bad).await?, Some(br#""v1""#))?;
    ensure_eq!(etag(&ctx, &bad).await?, bad_etag, "the stale key's ETag");
    Ok(())
}

async fn bulk_set_keyed(ctx: Ctx) -> CaseResult {
    let (good_etag, _, good, bad) = two_items(&ctx, "good", "bad").await?;
    let result = ctx
        .state()?
        .bulk_set(vec![
            SetRequest::new(good.clone(), r#""v2""#).with_etag(good_etag),
            SetRequest::new(bad.clone(), r#""v2""#).with_etag(ctx.settings.bad_etag.clone()),
        ])
        .await;
    match result {
        Err(Error::Bulk(failures)) => {
            ensure_eq!(failures.len(), 1, "number of keyed failures");
            ensure_eq!(failures[0].key, bad, "the failing key");
            ensure!(
                matches!(failures[0].error, Error::EtagMismatch { .. }),
                "the failure is not an ETag mismatch: {}",
                failures[0].error
            );
            Ok(())
        }
        other => Err(Finding::Fail(format!("expected one keyed ETag failure, saw {other:?}"))),
    }
}

async fn bulk_set_valid(ctx: Ctx) -> CaseResult {
    let (ea, eb, a, b) = two_items(&ctx, "a", "b").await?;
    ctx.state()?
        .bulk_set(vec![
            SetRequest::new(a.clone(), r#""v2""#).with_etag(ea.clone()),
            SetRequest::new(b.clone(), r#""v2""#).with_etag(eb.clone()),
        ])
        .await
        .must("bulk set with current ETags")?;
    ensure_data(&a, data(&ctx, &a).await?, Some(br#""v2""#))?;
    ensure_data(&b, data(&ctx, &b).await?, Some(br#""v2""#))?;
    ensure!(etag(&ctx, &a).await? != ea && etag(&ctx, &b).await? != eb, "an ETag did not change");
    Ok(())
}

async fn delete_stale(ctx: Ctx) -> CaseResult {
    let key = ctx.key("keep");
    set(&ctx, &key, r#""v""#).await?;
    let result = ctx.state()?.delete(DeleteRequest::new(key.clone()).with_etag(ctx.settings.bad_etag.clone())).await;
    ensure!(result.as_ref().is_err_and(Error::is_etag_error), "a delete with a stale ETag answered {result:?}");
    ensure!(get(&ctx, &key).await?.is_some(), "the item was deleted anyway");
    Ok(())
}

async fn delete_current(ctx: Ctx) -> CaseResult {
    let key = ctx.key("remove");
    set(&ctx, &key, r#""v""#).await?;
    let e = etag(&ctx, &key).await?;
    ctx.state()?.delete(DeleteRequest::new(key.clone()).with_etag(e)).await.must("delete with the current ETag")?;
    ensure!(get(&ctx, &key).await?.is_none(), "the item (or its ETag) is still there");
    Ok(())
}

async fn bulk_delete_partial(ctx: Ctx) -> CaseResult {
    let (good_etag, bad_etag, good, bad) = two_items(&ctx, "good", "bad").await?;
    let result = ctx
        .state()?
        .bulk_delete(vec![
            DeleteRequest::new(good.clone()).with_etag(good_etag),
            DeleteRequest::new(bad.clone()).with_etag(ctx.settings.bad_etag.clone()),
        ])
        .await;
    ensure_mismatch(&result, "a bulk delete with a stale ETag")?;
    ensure!(get(&ctx, &good).await?.is_none(), "the good key was not deleted");
    ensure_data(&bad, data(&ctx, &bad).await?, Some(br#""v1""#))?;
    ensure_eq!(etag(&ctx, &bad).await?, bad_etag, "the stale key's ETag");
    Ok(())
}

async fn first_write_with(ctx: &Ctx, key: &str, empty_etag: bool) -> CaseResult {
    let mut request = SetRequest::new(key, r#""v1""#).first_write();
    if empty_etag {
        request.etag = Some(String::new());
    }
    ctx.state()?.set(request.clone()).await.must("the first first-write")?;
    ensure_data(key, data(ctx, key).await?, Some(br#""v1""#))?;
    request.value = br#""v2""#.to_vec();
    let again = ctx.state()?.set(request).await;
    ensure_mismatch(&again, "a second first-write without an ETag")?;
    ensure_data(key, data(ctx, key).await?, Some(br#""v1""#))
}

async fn first_write_creates(ctx: Ctx) -> CaseResult {
    let key = ctx.key("fw");
    first_write_with(&ctx, &key, false).await
}

async fn first_write_empty(ctx: Ctx) -> CaseResult {
    let key = ctx.key("fw-empty");
    first_write_with(&ctx, &key, true).await
}

async fn first_write_etag(ctx: Ctx) -> CaseResult {
    let key = ctx.key("fw-etag");
    set(&ctx, &key, r#""v1""#).await?;
    let old = etag(&ctx, &key).await?;
    ctx.state()?
        .set(SetRequest::new(key.clone(), r#""v2""#).first_write().with_etag(old.clone()))
        .await
        .must("first-write with the current ETag")?;
    ensure!(etag(&ctx, &key).await? != old, "the ETag did not change");
    let stale = ctx.state()?.set(SetRequest::new(key.clone(), r#""v3""#).first_write().with_etag(old)).await;
    ensure_mismatch(&stale, "a first-write with an old ETag")?;
    ensure_data(&key, data(&ctx, &key).await?, Some(br#""v2""#))
}
