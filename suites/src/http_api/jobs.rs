//! The Jobs API on the wire (actors-workflows-jobs.md §3.1–3.2, J7): a bad job is refused with
//! daprd's status and rich error (an `ErrorInfo` detail whose reason is the `errorCode`), and
//! nothing is scheduled; a missing job is daprd's failed get (500, not 404); deleting one is 204.

use contract::Block;
use serde_json::{Value, json};

use super::{HTTP_API, Request, segment, trying};
use crate::case;
use crate::case::{Case, CaseResult, Ctx};

pub(crate) fn cases() -> Vec<Case> {
    vec![case!(
        Block::JOBS,
        "jobs.http-api.errors",
        "J7",
        "A job without a schedule or due time, with `name` in its body, with a schedule or due time that does not parse, with `repeats` over 1 and no schedule, or with negative `repeats` MUST be refused 400 with daprd's `errorCode` and an `ErrorInfo` detail of that reason, and MUST NOT be scheduled; getting a missing job MUST answer 500 `DAPR_SCHEDULER_GET_JOB`; deleting one 204.",
        [HTTP_API],
        ["http-api"],
        10,
        errors
    )]
}

fn job(name: &str) -> String {
    format!("/v1.0-alpha1/jobs/{}", segment(name))
}

async fn errors(ctx: Ctx) -> CaseResult {
    let name = ctx.key("refused");
    for (what, body, code) in [
        ("no schedule or due time", json!({"data": 1}), "DAPR_SCHEDULER_SCHEDULE_EMPTY"),
        ("a name in the body", json!({"name": "other", "dueTime": "1s"}), "DAPR_SCHEDULER_JOB_NAME"),
        ("a schedule that does not parse", json!({"schedule": "every day"}), "DAPR_SCHEDULER_SCHEDULE_JOB"),
        ("repeats over 1 without a schedule", json!({"dueTime": "1s", "repeats": 3}), "DAPR_SCHEDULER_SCHEDULE_JOB"),
        ("a repeating ISO due time", json!({"dueTime": "R2/PT1S"}), "DAPR_SCHEDULER_SCHEDULE_JOB"),
        ("negative repeats", json!({"schedule": "@every 1s", "repeats": -1}), "ERR_MALFORMED_REQUEST"),
    ] {
        let refused = ctx.exchange(Request::new("POST", job(&name)).json(&body)).await?;
        refused.error(400, code).map_err(trying(what))?;
        if code.starts_with("DAPR_SCHEDULER") {
            let detail = refused.json()?.pointer("/details/0").cloned().unwrap_or(Value::Null);
            let info = detail["@type"].as_str().is_some_and(|t| t.ends_with("google.rpc.ErrorInfo"));
            refused.check(
                info && detail["reason"] == code,
                &format!("{what}: no `ErrorInfo` detail with reason {code}"),
            )?;
        }
    }
    let missing = ctx.exchange(Request::new("GET", job(&name))).await?;
    missing.error(500, "DAPR_SCHEDULER_GET_JOB").map_err(trying("getting a job no refused request scheduled"))?;
    ctx.exchange(Request::new("DELETE", job(&name))).await?.status(204).map_err(trying("deleting a missing job"))
}
