//! The secret-store suite: every SS-rule of Dapr's suite and what it leaves out (a missing
//! secret is an error, not an empty answer; multi-key secrets for stores that claim them).
//!
//! Like Dapr's suite, it reads secrets the store was seeded with: [`SEEDED`], and for stores
//! that claim `multiplekeyvaluespersecret`, [`MULTI_KEY`] (`specs/fixtures/secrets.json` holds
//! all of them for `secretstores.local.file`).

use std::sync::Arc;

use contract::secrets::{GetSecretRequest, SecretData};
use contract::{Block, Metadata, SecretStore};

use crate::case::{Case, CaseResult, Claim, Ctx, Finding, Must, Reach, Requirement};
use crate::suite::Suite;
use crate::{case, ensure, ensure_eq};

const BLOCK: Block = Block::SECRET_STORES;
/// The store every secret-store case reads.
pub const STORE: Reach = Reach::of::<dyn SecretStore>("secret store");

/// The secret-store suite.
pub const SUITE: Suite = Suite { block: BLOCK, needs: &[STORE], cases, prepare: None };

impl Ctx {
    /// The secret store, through the driver.
    pub fn secrets(&self) -> Result<&Arc<dyn SecretStore>, Finding> {
        self.reach(STORE)
    }
}

/// Single-value secrets every certified store must hold: name and value (Dapr's
/// `conftestsecret` and `secondsecret`).
pub const SEEDED: [(&str, &str); 2] = [("conftestsecret", "abcd"), ("secondsecret", "efgh")];

/// A secret with several keys, for stores that claim `multiplekeyvaluespersecret`.
pub const MULTI_KEY: (&str, [(&str, &str); 2]) = ("multisecret", [("password", "s3cr3t"), ("user", "certify")]);

/// Every secret-store case.
fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "secrets.basic.ping",
            "SS3",
            "Ping, and a read after it, MUST succeed against a reachable store.",
            [],
            [],
            15,
            ping
        ),
        case!(
            BLOCK,
            "secrets.get.single-value",
            "SS4",
            "Reading a single-value secret MUST answer exactly one pair, keyed by the secret's name.",
            [],
            [],
            15,
            single_value
        ),
        case!(
            BLOCK,
            "secrets.get.bulk",
            "SS5",
            "A bulk read MUST hold every seeded secret with its exact data (other secrets may be there too).",
            [],
            [],
            15,
            bulk
        ),
        case!(
            BLOCK,
            "secrets.get.missing-is-an-error",
            "certify",
            "Reading a secret that does not exist MUST fail, not answer an empty secret.",
            [],
            [],
            15,
            missing
        ),
        case!(
            BLOCK,
            "secrets.get.multi-key",
            "certify",
            "A multi-key secret MUST be read whole: every key with its value, and nothing else.",
            [Requirement::Claimed(Claim::MultiKeySecrets)],
            [],
            15,
            multi_key
        ),
    ]
    .into_iter()
    .chain(crate::http_api::secrets::cases())
    .collect()
}

fn seeded(name: &str, value: &str) -> SecretData {
    SecretData::from([(name.to_owned(), value.to_owned())])
}

/// Ping, then a read: through a sidecar, ping only finds the store listed (the Dapr API has no
/// ping), so the read is what reaches the backend.
async fn ping(ctx: Ctx) -> CaseResult {
    ctx.secrets()?.ping().await.must("ping")?;
    let (name, _) = SEEDED[0];
    ctx.secrets()?.get(GetSecretRequest::new(name)).await.must(&format!("reading `{name}` after the ping")).map(drop)
}

async fn single_value(ctx: Ctx) -> CaseResult {
    for (name, value) in SEEDED {
        let data = ctx.secrets()?.get(GetSecretRequest::new(name)).await.must(&format!("reading `{name}`"))?;
        ensure_eq!(data, seeded(name, value), "secret `{name}`");
    }
    Ok(())
}

async fn bulk(ctx: Ctx) -> CaseResult {
    let all = ctx.secrets()?.bulk_get(Metadata::new()).await.must("bulk read")?;
    for (name, value) in SEEDED {
        let Some(data) = all.get(name) else {
            return Err(Finding::Fail(format!(
                "the bulk read lacks `{name}` (it holds {} secrets: {:?})",
                all.len(),
                all.keys().take(10).collect::<Vec<_>>()
            )));
        };
        ensure_eq!(*data, seeded(name, value), "secret `{name}` in the bulk read");
    }
    Ok(())
}

async fn missing(ctx: Ctx) -> CaseResult {
    let name = format!("{}-no-such-secret", ctx.namespace);
    let answer = ctx.secrets()?.get(GetSecretRequest::new(&name)).await;
    ensure!(answer.is_err(), "reading the missing secret `{name}` answered {answer:?} instead of an error");
    Ok(())
}

async fn multi_key(ctx: Ctx) -> CaseResult {
    let (name, pairs) = MULTI_KEY;
    let data = ctx.secrets()?.get(GetSecretRequest::new(name)).await.must(&format!("reading `{name}`"))?;
    let expected: SecretData = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    ensure_eq!(data, expected, "multi-key secret `{name}`");
    Ok(())
}
