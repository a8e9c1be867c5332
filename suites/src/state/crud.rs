//! Get, set, delete and bulk operations (S2–S11), values of every kind and unusual keys.

use contract::state::{DeleteRequest, GetRequest, SetRequest};

use super::{BINARY, BLOCK, data, delete, ensure_data, get, set};
use crate::case;
use crate::case::{Case, CaseResult, Ctx, Finding, Must};
use crate::{ensure, ensure_eq};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(BLOCK, "state.crud.ping", "S2", "A store MUST answer ping.", [], [], 10, ping),
        case!(
            BLOCK,
            "state.crud.json-values-round-trip",
            "S3,S4",
            "A value of every JSON kind MUST read back byte-for-byte as it was written.",
            [],
            [],
            30,
            json_values
        ),
        case!(
            BLOCK,
            "state.crud.binary-values-round-trip",
            "S5",
            "Raw byte values, including empty and non-UTF-8 ones, MUST read back byte-identical.",
            [BINARY],
            [],
            30,
            binary_values
        ),
        case!(
            BLOCK,
            "state.crud.large-value-round-trips",
            "certify",
            "A 1 MiB value MUST read back intact.",
            [],
            [],
            60,
            large_value
        ),
        case!(
            BLOCK,
            "state.crud.unusual-keys-round-trip",
            "certify",
            "Keys with spaces, slashes, unicode, `%`, `_` and 1 KiB length MUST be stored, read and deleted as given.",
            [],
            [],
            30,
            unusual_keys
        ),
        case!(
            BLOCK,
            "state.crud.missing-key-reads-empty",
            "S6",
            "Reading a never-written key MUST return no item and no error.",
            [],
            [],
            10,
            missing_key
        ),
        case!(
            BLOCK,
            "state.crud.overwrite-replaces",
            "certify",
            "A write without an ETag MUST replace the value (last write wins).",
            [],
            [],
            10,
            overwrite
        ),
        case!(
            BLOCK,
            "state.crud.delete-removes",
            "S6",
            "After a delete, a read MUST return no item and no error.",
            [],
            [],
            10,
            delete_removes
        ),
        case!(
            BLOCK,
            "state.crud.delete-missing-succeeds",
            "S7",
            "Deleting a never-written key without an ETag MUST succeed.",
            [],
            [],
            10,
            delete_missing
        ),
        case!(
            BLOCK,
            "state.bulk.set-then-get",
            "S8,S9",
            "Every item of a bulk set MUST be readable, singly and by bulk get, with one answer per key.",
            [],
            [],
            30,
            bulk_set_get
        ),
        case!(
            BLOCK,
            "state.bulk.get-includes-missing-keys",
            "S10",
            "Bulk get MUST answer a missing key as present with no data and no error.",
            [],
            [],
            10,
            bulk_get_missing
        ),
        case!(
            BLOCK,
            "state.bulk.delete",
            "S11",
            "Every key of a bulk delete MUST read as absent afterwards.",
            [],
            [],
            10,
            bulk_delete
        ),
    ]
}

async fn ping(ctx: Ctx) -> CaseResult {
    ctx.state()?.ping().await.must("ping")
}

const JSON_VALUES: &[(&str, &str)] = &[
    ("int", "123"),
    ("negative", "-42"),
    ("float", "1.5"),
    ("bool", "true"),
    ("string", r#""hello world""#),
    ("string-with-json", r#""{\"a\":\"b\"}""#),
    ("empty-string", r#""""#),
    ("unicode", r#""⏱️ ü 漢字""#),
    ("object", r#"{"message":"test"}"#),
    ("nested", r#"{"product":{"value":15},"status":"ACTIVE"}"#),
    ("array", r#"[1,"two",{"three":3}]"#),
];

async fn json_values(ctx: Ctx) -> CaseResult {
    for (suffix, value) in JSON_VALUES {
        set(&ctx, &ctx.key(suffix), value).await?;
    }
    for (suffix, value) in JSON_VALUES {
        let key = ctx.key(suffix);
        ensure_data(&key, data(&ctx, &key).await?, Some(value.as_bytes()))?;
    }
    Ok(())
}

async fn binary_values(ctx: Ctx) -> CaseResult {
    let cases: [(&str, Vec<u8>); 3] =
        [("one-byte", vec![0x01]), ("not-utf8", vec![0x00, 0xff, 0xfe, 0x80, 0x0a]), ("empty", Vec::new())];
    for (suffix, value) in &cases {
        let key = ctx.key(suffix);
        ctx.state()?.set(SetRequest::new(key.clone(), value.clone())).await.must(&format!("set `{key}`"))?;
        let seen = data(&ctx, &key).await?;
        // An empty value may legitimately read as an empty item; it must not read as absent.
        ensure!(seen.is_some(), "`{key}`: a written value read back as absent");
        ensure_data(&key, seen, Some(value))?;
    }
    Ok(())
}

async fn large_value(ctx: Ctx) -> CaseResult {
    let body: String = (0..(1 << 20) - 2).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let value = format!("\"{body}\"");
    let key = ctx.key("mebibyte");
    set(&ctx, &key, &value).await?;
    ensure_data(&key, data(&ctx, &key).await?, Some(value.as_bytes()))
}

async fn unusual_keys(ctx: Ctx) -> CaseResult {
    let long = "k".repeat(1024 - ctx.namespace.len() - 1);
    for suffix in ["with space", "a/b/c", "ключ-🔑", "100%", "snake_case", "plus+sign", long.as_str()] {
        let key = ctx.key(suffix);
        let value = format!("\"{}\"", suffix.len());
        set(&ctx, &key, &value).await?;
        ensure_data(&key, data(&ctx, &key).await?, Some(value.as_bytes()))?;
        delete(&ctx, &key).await?;
        ensure_data(&key, data(&ctx, &key).await?, None)?;
    }
    Ok(())
}

async fn missing_key(ctx: Ctx) -> CaseResult {
    let key = ctx.key("never-written");
    ensure_data(&key, data(&ctx, &key).await?, None)
}

async fn overwrite(ctx: Ctx) -> CaseResult {
    let key = ctx.key("overwrite");
    set(&ctx, &key, r#""first""#).await?;
    set(&ctx, &key, r#""second""#).await?;
    ensure_data(&key, data(&ctx, &key).await?, Some(br#""second""#))
}

async fn delete_removes(ctx: Ctx) -> CaseResult {
    let key = ctx.key("to-be-deleted");
    set(&ctx, &key, r#""bye""#).await?;
    delete(&ctx, &key).await?;
    ensure!(get(&ctx, &key).await?.is_none(), "`{key}` still reads after delete");
    Ok(())
}

async fn delete_missing(ctx: Ctx) -> CaseResult {
    let key = ctx.key("never-inserted");
    delete(&ctx, &key).await?;
    ensure_data(&key, data(&ctx, &key).await?, None)
}

fn bulk_keys(ctx: &Ctx) -> Vec<(String, String)> {
    (0..7).map(|i| (ctx.key(&format!("bulk-{i}")), format!("{{\"n\":{i}}}"))).collect()
}

async fn bulk_set_get(ctx: Ctx) -> CaseResult {
    let items = bulk_keys(&ctx);
    ctx.state()?
        .bulk_set(items.iter().map(|(k, v)| SetRequest::new(k.clone(), v.clone())).collect())
        .await
        .must("bulk set")?;
    for (key, value) in &items {
        ensure_data(key, data(&ctx, key).await?, Some(value.as_bytes()))?;
    }
    let answers = ctx
        .state()?
        .bulk_get(items.iter().map(|(k, _)| GetRequest::new(k.clone())).collect())
        .await
        .must("bulk get")?;
    ensure_eq!(answers.len(), items.len(), "bulk get answers");
    for answer in &answers {
        let Some((_, value)) = items.iter().find(|(k, _)| *k == answer.key) else {
            return Err(Finding::Fail(format!("bulk get answered the unrequested key `{}`", answer.key)));
        };
        ensure!(answer.error.is_none(), "bulk get reported an error for `{}`: {:?}", answer.key, answer.error);
        ensure_data(&answer.key, answer.item.as_ref().map(|i| i.data.clone()), Some(value.as_bytes()))?;
    }
    Ok(())
}

async fn bulk_get_missing(ctx: Ctx) -> CaseResult {
    let (present, missing) = (ctx.key("present"), ctx.key("doesnotexist"));
    set(&ctx, &present, "1").await?;
    let answers = ctx
        .state()?
        .bulk_get(vec![GetRequest::new(present.clone()), GetRequest::new(missing.clone())])
        .await
        .must("bulk get")?;
    ensure_eq!(answers.len(), 2, "bulk get of one present and one missing key");
    let answer = answers
        .iter()
        .find(|a| a.key == missing)
        .ok_or_else(|| Finding::Fail(format!("bulk get left out the missing key `{missing}`")))?;
    ensure!(answer.item.is_none() && answer.error.is_none(), "the missing key came back as {:?}", answer);
    Ok(())
}

async fn bulk_delete(ctx: Ctx) -> CaseResult {
    let (a, b) = (ctx.key("bulk-del-a"), ctx.key("bulk-del-b"));
    set(&ctx, &a, "1").await?;
    set(&ctx, &b, "2").await?;
    ctx.state()?
        .bulk_delete(vec![DeleteRequest::new(a.clone()), DeleteRequest::new(b.clone())])
        .await
        .must("bulk delete")?;
    ensure_data(&a, data(&ctx, &a).await?, None)?;
    ensure_data(&b, data(&ctx, &b).await?, None)
}
