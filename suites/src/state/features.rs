//! Claims are checked both ways (S12, S19, S24, S38, S40, S46, S51): a claimed feature is
//! advertised; an unclaimed one is not advertised and, where the driver can tell, not
//! implemented either.

use contract::Error;
use contract::state::{DeleteWithPrefixRequest, KeysLikeRequest, QueryRequest, TransactionRequest};

use super::BLOCK;
use crate::case;
use crate::case::{Case, CaseResult, Claim, Ctx, DriverCapability, Finding, Requirement};
use crate::ensure;

macro_rules! both_ways {
    ($claim:ident, $adv_fn:ident, $not_fn:ident) => {
        async fn $adv_fn(ctx: Ctx) -> CaseResult {
            advertised(ctx, Claim::$claim).await
        }
        async fn $not_fn(ctx: Ctx) -> CaseResult {
            not_advertised(ctx, Claim::$claim).await
        }
    };
}

both_ways!(Etag, etag_advertised, etag_not_advertised);
both_ways!(Transaction, transaction_advertised, transaction_not_advertised);
both_ways!(Ttl, ttl_advertised, ttl_not_advertised);
both_ways!(Query, query_advertised, query_not_advertised);
both_ways!(DeleteWithPrefix, prefix_advertised, prefix_not_advertised);
both_ways!(KeysLike, keys_like_advertised, keys_like_not_advertised);

const C_ETAG: Requirement = Requirement::Claimed(Claim::Etag);
const N_ETAG: Requirement = Requirement::NotClaimed(Claim::Etag);
const C_TX: Requirement = Requirement::Claimed(Claim::Transaction);
const N_TX: Requirement = Requirement::NotClaimed(Claim::Transaction);
const C_TTL: Requirement = Requirement::Claimed(Claim::Ttl);
const N_TTL: Requirement = Requirement::NotClaimed(Claim::Ttl);
const C_QUERY: Requirement = Requirement::Claimed(Claim::Query);
const N_QUERY: Requirement = Requirement::NotClaimed(Claim::Query);
const C_PREFIX: Requirement = Requirement::Claimed(Claim::DeleteWithPrefix);
const N_PREFIX: Requirement = Requirement::NotClaimed(Claim::DeleteWithPrefix);
const C_LIKE: Requirement = Requirement::Claimed(Claim::KeysLike);
const N_LIKE: Requirement = Requirement::NotClaimed(Claim::KeysLike);

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "state.features.etag-advertised",
            "S24",
            "A store that claims `etag` MUST advertise ETAG.",
            [C_ETAG],
            ["features"],
            10,
            etag_advertised
        ),
        case!(
            BLOCK,
            "state.features.etag-not-advertised",
            "S24",
            "A store that does not claim `etag` MUST NOT advertise ETAG.",
            [N_ETAG],
            ["features"],
            10,
            etag_not_advertised
        ),
        case!(
            BLOCK,
            "state.features.transaction-advertised",
            "S19",
            "A store that claims `transaction` MUST advertise TRANSACTIONAL.",
            [C_TX],
            ["features"],
            10,
            transaction_advertised
        ),
        case!(
            BLOCK,
            "state.features.transaction-not-advertised",
            "S19",
            "A store that does not claim `transaction` MUST NOT advertise TRANSACTIONAL nor run transactions.",
            [N_TX],
            ["features"],
            10,
            transaction_not_advertised
        ),
        case!(
            BLOCK,
            "state.features.ttl-advertised",
            "S38",
            "A store that claims `ttl` MUST advertise TTL.",
            [C_TTL],
            ["features"],
            10,
            ttl_advertised
        ),
        case!(
            BLOCK,
            "state.features.ttl-not-advertised",
            "S40",
            "A store that does not claim `ttl` MUST NOT advertise TTL.",
            [N_TTL],
            ["features"],
            10,
            ttl_not_advertised
        ),
        case!(
            BLOCK,
            "state.features.query-advertised",
            "S12",
            "A store that claims `query` MUST advertise QUERY_API.",
            [C_QUERY],
            ["features"],
            10,
            query_advertised
        ),
        case!(
            BLOCK,
            "state.features.query-not-advertised",
            "S12",
            "A store that does not claim `query` MUST NOT advertise QUERY_API nor answer queries.",
            [N_QUERY],
            ["features"],
            10,
            query_not_advertised
        ),
        case!(
            BLOCK,
            "state.features.delete-with-prefix-advertised",
            "S46",
            "A store that claims `delete-with-prefix` MUST advertise DELETE_WITH_PREFIX.",
            [C_PREFIX],
            ["features"],
            10,
            prefix_advertised
        ),
        case!(
            BLOCK,
            "state.features.delete-with-prefix-not-advertised",
            "S46",
            "A store that does not claim `delete-with-prefix` MUST NOT advertise DELETE_WITH_PREFIX nor implement it.",
            [N_PREFIX],
            ["features"],
            10,
            prefix_not_advertised
        ),
        case!(
            BLOCK,
            "state.features.keyslike-advertised",
            "S51",
            "A store that claims `keyslike` MUST advertise KEYS_LIKE.",
            [C_LIKE],
            ["features"],
            10,
            keys_like_advertised
        ),
        case!(
            BLOCK,
            "state.features.keyslike-not-advertised",
            "S51",
            "A store that does not claim `keyslike` MUST NOT advertise KEYS_LIKE nor implement it.",
            [N_LIKE],
            ["features"],
            10,
            keys_like_not_advertised
        ),
    ]
}

async fn advertised(ctx: Ctx, claim: Claim) -> CaseResult {
    let Some(feature) = claim.feature() else { return Ok(()) };
    let features = ctx.state()?.features();
    ensure!(
        features.contains(&feature),
        "claims `{claim}` but advertises {:?}, without {feature}",
        features.iter().map(|f| f.as_str()).collect::<Vec<_>>()
    );
    Ok(())
}

async fn not_advertised(ctx: Ctx, claim: Claim) -> CaseResult {
    let Some(feature) = claim.feature() else { return Ok(()) };
    ensure!(
        !ctx.state()?.features().contains(&feature),
        "does not claim `{claim}` but advertises {feature}: claim it and pass its cases, or stop advertising it"
    );
    if !ctx.driver.can(DriverCapability::TypedUnsupported) {
        return Ok(());
    }
    let probe = match claim {
        Claim::Transaction => ctx.state()?.transact(TransactionRequest::default()).await.map(|_| ()),
        Claim::Query => ctx.state()?.query(QueryRequest::default()).await.map(|_| ()),
        Claim::DeleteWithPrefix => {
            ctx.state()?.delete_with_prefix(DeleteWithPrefixRequest { prefix: ctx.key("probe") }).await.map(|_| ())
        }
        Claim::KeysLike => ctx
            .state()?
            .keys_like(KeysLikeRequest { pattern: ctx.key("probe"), ..Default::default() })
            .await
            .map(|_| ()),
        _ => return Ok(()),
    };
    match probe {
        Err(Error::Unsupported { .. }) => Ok(()),
        other => Err(Finding::Fail(format!(
            "does not claim `{claim}` but implements it (the call answered {other:?}, not `unsupported`)"
        ))),
    }
}
