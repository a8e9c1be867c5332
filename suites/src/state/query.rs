//! The query API (S13–S17), with sort and pagination, which Dapr's suite never checks.
//! Every document carries this trial's namespace, so other data in the store never matches.

use contract::state::{QueryRequest, QueryResponse};
use contract::state_query::Query;
use serde_json::{Value, json};

use super::{BLOCK, QUERY, set};
use crate::case;
use crate::case::{Case, CaseResult, Ctx, Finding, Must};
use crate::{ensure, ensure_eq};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "state.query.or-eq-in",
            "S14",
            "A query `OR[EQ, IN]` MUST return exactly the matching item.",
            [QUERY],
            ["query"],
            10,
            or_eq_in
        ),
        case!(
            BLOCK,
            "state.query.and-range-neq",
            "S15",
            "A query `AND[EQ, GTE, LT, NEQ]` on dotted paths MUST return exactly the matching item.",
            [QUERY],
            ["query"],
            10,
            and_range
        ),
        case!(
            BLOCK,
            "state.query.nested-or-and",
            "S16",
            "A query `OR[AND[..GT..], AND[..LTE..]]` comparing floats with integers MUST return exactly the matching item.",
            [QUERY],
            ["query"],
            10,
            nested
        ),
        case!(
            BLOCK,
            "state.query.two-results",
            "S17",
            "A query matching two items MUST return both.",
            [QUERY],
            ["query"],
            10,
            two_results
        ),
        case!(
            BLOCK,
            "state.query.sort",
            "certify",
            "Query results MUST follow the sort keys, in order, ascending or descending.",
            [QUERY],
            ["query"],
            10,
            sort
        ),
        case!(
            BLOCK,
            "state.query.pagination",
            "certify",
            "Pages of `limit` items, followed by their tokens, MUST return every match exactly once and end without a token.",
            [QUERY],
            ["query"],
            20,
            pagination
        ),
    ]
}

async fn seed(ctx: &Ctx) -> Result<String, Finding> {
    let ns = ctx.namespace.clone();
    let docs = [
        ("struct", json!({"message": format!("test{ns}"), "run": ns})),
        ("struct-2", json!({"message": format!("{ns}test"), "run": ns})),
        (
            "struct-operations",
            json!({"product": {"value": 15}, "status": "ACTIVE", "message": format!("{ns}message"), "run": ns}),
        ),
        (
            "struct-operations-inactive",
            json!({"product": {"value": 12}, "status": "INACTIVE", "message": format!("{ns}message"), "run": ns}),
        ),
    ];
    for (suffix, doc) in docs {
        set(ctx, &ctx.key(suffix), &doc.to_string()).await?;
    }
    Ok(ns)
}

async fn run(ctx: &Ctx, query: Value) -> Result<QueryResponse, Finding> {
    let parsed =
        Query::from_json(&query).map_err(|e| Finding::Fail(format!("the case's own query is invalid: {e}")))?;
    ctx.state()?
        .query(QueryRequest {
            query: parsed,
            metadata: [("contentType".to_owned(), "application/json".to_owned())].into(),
        })
        .await
        .must("query")
}

async fn keys_of(ctx: &Ctx, query: Value) -> Result<Vec<String>, Finding> {
    Ok(run(ctx, query).await?.results.into_iter().map(|r| r.key).collect())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn or_eq_in(ctx: Ctx) -> CaseResult {
    let ns = seed(&ctx).await?;
    let got = keys_of(
        &ctx,
        json!({"filter": {"OR": [{"EQ": {"message": "dummy"}}, {"IN": {"message": [format!("test{ns}"), "dummy"]}}]}}),
    )
    .await?;
    ensure_eq!(got, vec![ctx.key("struct")], "matches");
    Ok(())
}

async fn and_range(ctx: Ctx) -> CaseResult {
    let ns = seed(&ctx).await?;
    let got = keys_of(
        &ctx,
        json!({"filter": {"AND": [{"EQ": {"message": format!("{ns}message")}}, {"GTE": {"product.value": 10}}, {"LT": {"product.value": 20}}, {"NEQ": {"status": "INACTIVE"}}]}}),
    )
    .await?;
    ensure_eq!(got, vec![ctx.key("struct-operations")], "matches");
    Ok(())
}

async fn nested(ctx: Ctx) -> CaseResult {
    let ns = seed(&ctx).await?;
    let msg = format!("{ns}message");
    let got = keys_of(
        &ctx,
        json!({"filter": {"OR": [
            {"AND": [{"EQ": {"message": msg}}, {"GT": {"product.value": 11.1}}, {"EQ": {"status": "INACTIVE"}}]},
            {"AND": [{"EQ": {"message": msg}}, {"LTE": {"product.value": 0.5}}, {"EQ": {"status": "ACTIVE"}}]}]}}),
    )
    .await?;
    ensure_eq!(got, vec![ctx.key("struct-operations-inactive")], "matches");
    Ok(())
}

async fn two_results(ctx: Ctx) -> CaseResult {
    let ns = seed(&ctx).await?;
    let got = keys_of(&ctx, json!({"filter": {"OR": [{"EQ": {"message": format!("{ns}test")}}, {"IN": {"message": [format!("test{ns}"), "dummy"]}}]}})).await?;
    ensure_eq!(sorted(got), sorted(vec![ctx.key("struct"), ctx.key("struct-2")]), "matches");
    Ok(())
}

async fn seed_numbers(ctx: &Ctx) -> Result<(), Finding> {
    for (suffix, n, group) in [("a", 3, "x"), ("b", 1, "y"), ("c", 2, "x"), ("d", 5, "y"), ("e", 4, "x")] {
        set(ctx, &ctx.key(suffix), &json!({"g": group, "n": n, "run": ctx.namespace}).to_string()).await?;
    }
    Ok(())
}

async fn sort(ctx: Ctx) -> CaseResult {
    seed_numbers(&ctx).await?;
    let mine = json!({"EQ": {"run": ctx.namespace}});
    let expect = |s: &[&str]| s.iter().map(|x| ctx.key(x)).collect::<Vec<_>>();
    let desc = keys_of(&ctx, json!({"filter": mine, "sort": [{"key": "n", "order": "DESC"}]})).await?;
    ensure_eq!(desc, expect(&["d", "e", "a", "c", "b"]), "sorted by n descending");
    let two = keys_of(&ctx, json!({"filter": mine, "sort": [{"key": "g"}, {"key": "n", "order": "DESC"}]})).await?;
    ensure_eq!(two, expect(&["e", "a", "c", "d", "b"]), "sorted by g, then n descending");
    Ok(())
}

async fn pagination(ctx: Ctx) -> CaseResult {
    seed_numbers(&ctx).await?;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for page in 0..10 {
        let mut q = json!({"filter": {"EQ": {"run": ctx.namespace}}, "sort": [{"key": "n"}], "page": {"limit": 2}});
        if let Some(t) = &token {
            q["page"]["token"] = json!(t);
        }
        let response = run(&ctx, q).await?;
        ensure!(response.results.len() <= 2, "page {page} has {} results for a limit of 2", response.results.len());
        seen.extend(response.results.into_iter().map(|r| r.key));
        token = response.token;
        if token.is_none() {
            let expected: Vec<String> = ["b", "c", "a", "e", "d"].iter().map(|x| ctx.key(x)).collect();
            ensure_eq!(seen, expected, "every match once, in sort order, across pages");
            return Ok(());
        }
    }
    Err(Finding::Fail(format!("still no last page after 10 pages of 2 for 5 matches (saw {seen:?})")))
}
