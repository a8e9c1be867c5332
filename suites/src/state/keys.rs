//! Delete-with-prefix (S47–S50) and keys-like (S52–S59). Patterns start with this trial's
//! namespace, so neither case needs an empty store (Dapr's deletes every key first).

use std::collections::BTreeSet;
use std::time::Duration;

use contract::Error;
use contract::state::{DeleteWithPrefixRequest, KeysLikeRequest, SetRequest, TTL_IN_SECONDS};

use super::{BLOCK, CALL_KEYS_LIKE, CALL_PREFIX, KEYS_LIKE, PREFIX, TTL, delete, get, poll, set};
use crate::case;
use crate::case::{Case, CaseResult, Ctx, Finding, Must};
use crate::{ensure, ensure_eq};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "state.delete-with-prefix.direct-children-only",
            "S47,S48,S49",
            "Delete-with-prefix MUST delete exactly the keys directly under the prefix (appending `||` when missing) and report how many.",
            [PREFIX, CALL_PREFIX],
            ["delete-with-prefix"],
            10,
            prefix_children
        ),
        case!(
            BLOCK,
            "state.delete-with-prefix.empty-prefix-rejected",
            "S50",
            "Delete-with-prefix with an empty or `||` prefix MUST fail with `prefix is required`.",
            [PREFIX, CALL_PREFIX],
            ["delete-with-prefix"],
            10,
            prefix_empty
        ),
        case!(
            BLOCK,
            "state.keyslike.empty-pattern-rejected",
            "S52",
            "Keys-like with an empty pattern MUST fail.",
            [KEYS_LIKE, CALL_KEYS_LIKE],
            ["keyslike"],
            10,
            like_empty
        ),
        case!(
            BLOCK,
            "state.keyslike.patterns",
            "S53,S54",
            "`%` MUST match any run of characters and `_` exactly one.",
            [KEYS_LIKE, CALL_KEYS_LIKE],
            ["keyslike"],
            10,
            like_patterns
        ),
        case!(
            BLOCK,
            "state.keyslike.paging",
            "S55",
            "Pages of keys MUST cover every match exactly once and end with no token.",
            [KEYS_LIKE, CALL_KEYS_LIKE],
            ["keyslike"],
            10,
            like_paging
        ),
        case!(
            BLOCK,
            "state.keyslike.no-implicit-limit",
            "S56",
            "Without a page size (or with a huge one) every match MUST come back, with no token.",
            [KEYS_LIKE, CALL_KEYS_LIKE],
            ["keyslike", "slow"],
            60,
            like_no_limit
        ),
        case!(
            BLOCK,
            "state.keyslike.escaping",
            "S57",
            "`\\` MUST escape `%` and `_`; `.` MUST be literal.",
            [KEYS_LIKE, CALL_KEYS_LIKE],
            ["keyslike"],
            10,
            like_escaping
        ),
        case!(
            BLOCK,
            "state.keyslike.paging-survives-changes",
            "S58",
            "Continuing from a token after keys were added and removed MUST work, and no token MUST mean from the start.",
            [KEYS_LIKE, CALL_KEYS_LIKE],
            ["keyslike"],
            10,
            like_changes
        ),
        case!(
            BLOCK,
            "state.keyslike.expired-not-listed",
            "S59",
            "Expired keys MUST NOT be listed.",
            [KEYS_LIKE, CALL_KEYS_LIKE, TTL],
            ["keyslike", "ttl", "slow"],
            15,
            like_expired
        ),
    ]
}

async fn prefix_children(ctx: Ctx) -> CaseResult {
    let p = ctx.key("prefix");
    let other = ctx.key("other-prefix");
    let keys = [
        format!("{p}||key1"),
        format!("{p}||key2"),
        format!("{p}||prefix2||key3"),
        format!("{other}||key1"),
        ctx.key("no-prefix"),
    ];
    ctx.state()?.bulk_set(keys.iter().map(|k| SetRequest::new(k.clone(), "1")).collect()).await.must("bulk set")?;
    let count = ctx
        .state()?
        .delete_with_prefix(DeleteWithPrefixRequest { prefix: format!("{p}||") })
        .await
        .must("delete with prefix")?;
    ensure_eq!(count, 2, "deleted count for `{p}||`");
    ensure!(get(&ctx, &keys[0]).await?.is_none() && get(&ctx, &keys[1]).await?.is_none(), "a direct child survived");
    ensure!(get(&ctx, &keys[2]).await?.is_some(), "the deeper key `{}` was deleted", keys[2]);
    ensure!(get(&ctx, &keys[4]).await?.is_some(), "an unrelated key was deleted");
    let count = ctx
        .state()?
        .delete_with_prefix(DeleteWithPrefixRequest { prefix: other.clone() })
        .await
        .must("delete with prefix")?;
    ensure_eq!(count, 1, "deleted count for `{other}` (`||` appended)");
    ensure!(get(&ctx, &keys[3]).await?.is_none(), "`{}` survived", keys[3]);
    Ok(())
}

async fn prefix_empty(ctx: Ctx) -> CaseResult {
    for prefix in ["", "||"] {
        let result = ctx.state()?.delete_with_prefix(DeleteWithPrefixRequest { prefix: prefix.into() }).await;
        ensure!(
            matches!(&result, Err(e) if e.to_string().contains("prefix is required")),
            "prefix {prefix:?} answered {result:?}"
        );
    }
    Ok(())
}

async fn like(
    ctx: &Ctx,
    pattern: &str,
    page: Option<u32>,
    token: Option<String>,
) -> Result<(Vec<String>, Option<String>), Finding> {
    let r = ctx
        .state()?
        .keys_like(KeysLikeRequest { pattern: pattern.into(), page_size: page, continuation_token: token })
        .await
        .must(&format!("keys-like `{pattern}`"))?;
    Ok((r.keys, r.continuation_token))
}

fn set_of(keys: Vec<String>) -> BTreeSet<String> {
    keys.into_iter().collect()
}

async fn like_empty(ctx: Ctx) -> CaseResult {
    let result = ctx.state()?.keys_like(KeysLikeRequest::default()).await;
    ensure!(matches!(result, Err(Error::InvalidArgument(_))), "an empty pattern answered {result:?}");
    Ok(())
}

async fn seed(ctx: &Ctx, suffixes: &[&str]) -> Result<Vec<String>, Finding> {
    let keys: Vec<String> = suffixes.iter().map(|s| ctx.key(s)).collect();
    ctx.state()?.bulk_set(keys.iter().map(|k| SetRequest::new(k.clone(), "1")).collect()).await.must("bulk set")?;
    Ok(keys)
}

const TWELVE: &[&str] = &[
    "prefix||key1",
    "prefix||key2",
    "prefix||prefix2||key3",
    "other-prefix||key1",
    "no-prefix",
    "abc1",
    "abc2",
    "abc3",
    "abc33",
    "x||y",
    "plain",
    "zz",
];

async fn like_patterns(ctx: Ctx) -> CaseResult {
    let keys = seed(&ctx, TWELVE).await?;
    let ns = &ctx.namespace;
    let (all, token) = like(&ctx, &format!("{ns}-%"), None, None).await?;
    ensure_eq!(set_of(all), set_of(keys), "all keys");
    ensure_eq!(token, None, "token after the last page");
    // Which keys, not how many: a store that matches the wrong ones in the right number fails.
    let matches = |suffix: &str, expected: &[&str]| {
        let (ctx, pattern) = (ctx.clone(), format!("{ns}-{suffix}"));
        let expected: BTreeSet<String> = expected.iter().map(|s| ctx.key(s)).collect();
        async move {
            let (got, _) = like(&ctx, &pattern, None, None).await?;
            ensure_eq!(set_of(got), expected, "the keys `{pattern}` lists");
            Ok::<_, Finding>(())
        }
    };
    matches("prefix||%", &["prefix||key1", "prefix||key2", "prefix||prefix2||key3"]).await?;
    matches("%key1", &["prefix||key1", "other-prefix||key1"]).await?;
    matches("%||%||%", &["prefix||prefix2||key3"]).await?;
    matches("abc_", &["abc1", "abc2", "abc3"]).await?;
    matches("abc__", &["abc33"]).await
}

async fn like_paging(ctx: Ctx) -> CaseResult {
    let keys = seed(&ctx, TWELVE).await?;
    let pattern = format!("{}-%", ctx.namespace);
    let (p1, t1) = like(&ctx, &pattern, Some(6), None).await?;
    ensure!(p1.len() == 6 && t1.is_some(), "first page: {} keys, token {t1:?}", p1.len());
    let (p2, t2) = like(&ctx, &pattern, Some(5), t1).await?;
    ensure!(p2.len() == 5 && t2.is_some(), "second page: {} keys, token {t2:?}", p2.len());
    let (p3, t3) = like(&ctx, &pattern, Some(100), t2).await?;
    ensure!(p3.len() == 1 && t3.is_none(), "last page: {} keys, token {t3:?}", p3.len());
    let union: Vec<String> = p1.into_iter().chain(p2).chain(p3).collect();
    ensure_eq!(union.len(), 12, "keys across pages");
    ensure_eq!(set_of(union), set_of(keys), "every key exactly once");
    Ok(())
}

async fn like_no_limit(ctx: Ctx) -> CaseResult {
    let suffixes: Vec<String> = (0..=1024).map(|i| format!("n{i}")).collect();
    let refs: Vec<&str> = suffixes.iter().map(String::as_str).collect();
    seed(&ctx, &refs).await?;
    for page in [None, Some(100_000)] {
        let (keys, token) = like(&ctx, &format!("{}-n%", ctx.namespace), page, None).await?;
        ensure!(keys.len() == 1025 && token.is_none(), "page size {page:?}: {} keys, token {token:?}", keys.len());
    }
    Ok(())
}

async fn like_escaping(ctx: Ctx) -> CaseResult {
    seed(
        &ctx,
        &[
            "%",
            "hello%%wor.kflow",
            "%%wor.kflow",
            "hello%%",
            "_",
            "hello_workflow",
            "_workflow",
            "hello_",
            "%hello_workflow%_yoyo",
        ],
    )
    .await?;
    let ns = &ctx.namespace;
    let cases: &[(&str, &[&str])] = &[
        ("hello%", &["hello%%wor.kflow", "hello%%", "hello_workflow", "hello_"]),
        ("hello_", &["hello_"]),
        ("hello_workflo_", &["hello_workflow"]),
        (r"hello\_workflow", &["hello_workflow"]),
        (r"hello\_", &["hello_"]),
        (r"hello\%\%", &["hello%%"]),
        (r"hello%\%", &["hello%%"]),
        (r"hello\%\%%wor.kflow", &["hello%%wor.kflow"]),
        (r"\%hello\_workflow\%\_yoyo", &["%hello_workflow%_yoyo"]),
        ("%wor.kflow", &["hello%%wor.kflow", "%%wor.kflow"]),
        ("%worXkflow", &[]),
    ];
    for (pattern, expected) in cases {
        let (got, _) = like(&ctx, &format!("{ns}-{pattern}"), None, None).await?;
        let expected: BTreeSet<String> = expected.iter().map(|s| ctx.key(s)).collect();
        ensure_eq!(set_of(got), expected, "pattern `{pattern}`");
    }
    Ok(())
}

async fn like_changes(ctx: Ctx) -> CaseResult {
    let keys = seed(&ctx, &["key1", "key2", "key3", "key4"]).await?;
    let pattern = format!("{}-key%", ctx.namespace);
    let (first, token) = like(&ctx, &pattern, Some(3), None).await?;
    ensure!(first.len() == 3 && token.is_some(), "first page: {} keys, token {token:?}", first.len());
    delete(&ctx, &keys[0]).await?;
    delete(&ctx, &keys[2]).await?;
    set(&ctx, &ctx.key("key5"), "1").await?;
    set(&ctx, &ctx.key("key0"), "1").await?;
    let (rest, end) = like(&ctx, &pattern, None, token).await?;
    ensure!(!rest.is_empty() && end.is_none(), "continuing after changes: {rest:?}, token {end:?}");
    let (again, t) = like(&ctx, &pattern, Some(3), None).await?;
    ensure!(again.len() == 3 && t.is_some(), "no token starts from the beginning: {again:?}, {t:?}");
    let (all, t) = like(&ctx, &pattern, None, None).await?;
    ensure_eq!(
        set_of(all),
        set_of(["key0", "key2", "key4", "key5"].iter().map(|s| ctx.key(s)).collect()),
        "keys after the changes"
    );
    ensure_eq!(t, None, "token");
    Ok(())
}

async fn like_expired(ctx: Ctx) -> CaseResult {
    for (suffix, ttl) in [("t1", Some("1")), ("t2", None), ("t3", Some("1"))] {
        let mut request = SetRequest::new(ctx.key(suffix), "1");
        if let Some(ttl) = ttl {
            request = request.with_metadata(TTL_IN_SECONDS, ttl);
        }
        ctx.state()?.set(request).await.must("write")?;
    }
    let pattern = format!("{}-t%", ctx.namespace);
    let only_live = poll(Duration::from_secs(1 + 2 * ctx.settings.ttl_slack_seconds), || async {
        Ok(like(&ctx, &pattern, None, None).await?.0 == vec![ctx.key("t2")])
    })
    .await?;
    ensure!(only_live, "expired keys are still listed: {:?}", like(&ctx, &pattern, None, None).await?.0);
    Ok(())
}
