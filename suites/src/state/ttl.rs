//! TTL (S37–S44), with the checks Dapr's suite files under the wrong branch run where they
//! belong: `ttlExpireTime`, `-1`, and an overwrite clearing the TTL.

use std::time::{Duration, SystemTime};

use contract::state::{GetRequest, SetRequest, TTL_EXPIRE_TIME, TTL_IN_SECONDS};

use super::{BLOCK, TTL, get, poll, set};
use crate::case;
use crate::case::{Case, CaseResult, Ctx, Finding, Must};
use crate::ensure;

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "state.ttl.non-numeric-rejected",
            "S37",
            "A write with a non-numeric `ttlInSeconds` MUST fail.",
            [TTL],
            ["ttl"],
            10,
            non_numeric
        ),
        case!(
            BLOCK,
            "state.ttl.item-expires",
            "S39",
            "An item written with `ttlInSeconds: 2` MUST be readable at once and gone within the TTL plus the allowed slack.",
            [TTL],
            ["ttl", "slow"],
            15,
            expires
        ),
        case!(
            BLOCK,
            "state.ttl.no-ttl-no-expire-time",
            "S41",
            "An item written without a TTL MUST NOT report `ttlExpireTime`.",
            [],
            ["ttl"],
            10,
            no_ttl
        ),
        case!(
            BLOCK,
            "state.ttl.expire-time-reported",
            "S42",
            "An item with a TTL MUST report `ttlExpireTime` as an RFC 3339 time within 10 minutes of now + TTL.",
            [TTL],
            ["ttl"],
            10,
            expire_time
        ),
        case!(
            BLOCK,
            "state.ttl.minus-one-never-expires",
            "S43",
            "`ttlInSeconds: -1` MUST remove an earlier TTL: no `ttlExpireTime`, and the item outlives the old TTL.",
            [TTL],
            ["ttl", "slow"],
            15,
            minus_one
        ),
        case!(
            BLOCK,
            "state.ttl.overwrite-clears-ttl",
            "S43",
            "A write without a TTL MUST clear an earlier TTL.",
            [TTL],
            ["ttl", "slow"],
            15,
            overwrite_clears
        ),
        case!(
            BLOCK,
            "state.ttl.bulk-get-expire-time",
            "S44",
            "Bulk get MUST report `ttlExpireTime` for items with a TTL.",
            [TTL],
            ["ttl", "bulk"],
            10,
            bulk_expire_time
        ),
    ]
}

fn with_ttl(key: &str, value: &str, ttl: &str) -> SetRequest {
    SetRequest::new(key, value).with_metadata(TTL_IN_SECONDS, ttl)
}

async fn non_numeric(ctx: Ctx) -> CaseResult {
    let key = ctx.key("ttl-foo");
    let result = ctx.state()?.set(with_ttl(&key, "1", "foo")).await;
    ensure!(result.is_err(), "a write with `ttlInSeconds: foo` succeeded");
    Ok(())
}

async fn expires(ctx: Ctx) -> CaseResult {
    let key = ctx.key("ttl-2s");
    let written = tokio::time::Instant::now();
    ctx.state()?.set(with_ttl(&key, r#""⏱️""#, "2")).await.must("write with a 2 s TTL")?;
    ensure!(get(&ctx, &key).await?.is_some(), "the item is not readable right after the write");
    let within = Duration::from_secs(2 + ctx.settings.ttl_slack_seconds);
    let gone = poll(within, || async { Ok(get(&ctx, &key).await?.is_none()) }).await?;
    ensure!(
        gone,
        "the item was still readable {:.1} s after a 2 s TTL (slack {} s)",
        written.elapsed().as_secs_f64(),
        ctx.settings.ttl_slack_seconds
    );
    // Gone far too early is as wrong as never: a TTL of seconds is not milliseconds.
    ensure!(
        written.elapsed() >= Duration::from_millis(1500),
        "the item vanished after {:?}, well before its 2 s TTL",
        written.elapsed()
    );
    Ok(())
}

async fn no_ttl(ctx: Ctx) -> CaseResult {
    let key = ctx.key("no-ttl");
    set(&ctx, &key, "1").await?;
    let item = get(&ctx, &key).await?.ok_or_else(|| Finding::Fail("the item is missing".into()))?;
    ensure!(
        !item.metadata.contains_key(TTL_EXPIRE_TIME),
        "an item without a TTL reports `ttlExpireTime: {}`",
        item.metadata[TTL_EXPIRE_TIME]
    );
    Ok(())
}

fn check_expire_time(key: &str, metadata: &contract::Metadata, ttl: Duration) -> CaseResult {
    let Some(raw) = metadata.get(TTL_EXPIRE_TIME) else {
        return Err(Finding::Fail(format!("`{key}` has a TTL but no `ttlExpireTime` in {metadata:?}")));
    };
    let at = humantime::parse_rfc3339_weak(raw)
        .map_err(|e| Finding::Fail(format!("`ttlExpireTime` `{raw}` is not RFC 3339: {e}")))?;
    let expected = SystemTime::now() + ttl;
    let off = at.duration_since(expected).or_else(|e| Ok::<_, Finding>(e.duration()))?;
    ensure!(
        off <= Duration::from_secs(600),
        "`ttlExpireTime` {raw} is {} s away from now + {} s",
        off.as_secs(),
        ttl.as_secs()
    );
    Ok(())
}

async fn expire_time(ctx: Ctx) -> CaseResult {
    let key = ctx.key("ttl-1h");
    ctx.state()?.set(with_ttl(&key, "1", "3600")).await.must("write with a 1 h TTL")?;
    let item = get(&ctx, &key).await?.ok_or_else(|| Finding::Fail("the item is missing".into()))?;
    check_expire_time(&key, &item.metadata, Duration::from_secs(3600))
}

async fn outlives(ctx: &Ctx, key: &str, why: &str) -> CaseResult {
    let item = get(ctx, key).await?.ok_or_else(|| Finding::Fail(format!("`{key}` is missing")))?;
    ensure!(!item.metadata.contains_key(TTL_EXPIRE_TIME), "{why}, yet `ttlExpireTime` is still reported");
    tokio::time::sleep(Duration::from_millis(2000 + 1000 * ctx.settings.ttl_slack_seconds)).await;
    ensure!(get(ctx, key).await?.is_some(), "{why}, yet the item expired with the old 2 s TTL");
    Ok(())
}

async fn minus_one(ctx: Ctx) -> CaseResult {
    let key = ctx.key("ttl-minus-one");
    ctx.state()?.set(with_ttl(&key, "1", "2")).await.must("write with a 2 s TTL")?;
    ctx.state()?.set(with_ttl(&key, "1", "-1")).await.must("write with TTL -1")?;
    outlives(&ctx, &key, "`ttlInSeconds: -1` was written").await
}

async fn overwrite_clears(ctx: Ctx) -> CaseResult {
    let key = ctx.key("ttl-overwrite");
    ctx.state()?.set(with_ttl(&key, "1", "2")).await.must("write with a 2 s TTL")?;
    set(&ctx, &key, "2").await?;
    outlives(&ctx, &key, "the item was overwritten without a TTL").await
}

async fn bulk_expire_time(ctx: Ctx) -> CaseResult {
    let (a, b) = (ctx.key("bulk-ttl-a"), ctx.key("bulk-ttl-b"));
    ctx.state()?.set(with_ttl(&a, r#""123""#, "3600")).await.must("write")?;
    ctx.state()?.set(with_ttl(&b, r#""234""#, "3600")).await.must("write")?;
    let answers =
        ctx.state()?.bulk_get(vec![GetRequest::new(a.clone()), GetRequest::new(b.clone())]).await.must("bulk get")?;
    ensure!(answers.len() == 2, "bulk get gave {} answers for 2 keys", answers.len());
    for answer in answers {
        let item = answer.item.ok_or_else(|| Finding::Fail(format!("bulk get lost `{}`", answer.key)))?;
        check_expire_time(&answer.key, &item.metadata, Duration::from_secs(3600))?;
    }
    Ok(())
}
