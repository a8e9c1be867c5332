//! The workflow HTTP facade on the wire (actors-workflows-jobs.md §2.2, W14): start answers 202
//! with the instance id, get answers daprd's body on every prefix, and bad requests get daprd's
//! codes. The cases need no worker of their own: an instance started here may stay PENDING.
//! daprd takes a start only while some worker is connected (§2.1): certify's is, through the
//! gRPC port, when a run certifies the sidecar over both; over HTTP alone, against daprd, the
//! starts fail with daprd's `ERR_START_WORKFLOW`.

use contract::Block;

use super::{HTTP_API, Request, segment, trying};
use crate::case;
use crate::case::{Case, CaseResult, Ctx};
use crate::workflows::catalogue::FOREVER;

const PREFIXES: [&str; 3] = ["v1.0-alpha1", "v1.0-beta1", "v1.0"];

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case!(
            Block::WORKFLOWS,
            "workflows.http-api.start-and-get",
            "W14",
            "`POST …/workflows/dapr/{name}/start?instanceID=…` MUST answer 202 `{\"instanceID\"}`; `GET …/workflows/dapr/{id}` MUST answer daprd's body (name, status, times, the input among `properties`) on `/v1.0-alpha1`, `/v1.0-beta1` and `/v1.0`.",
            [HTTP_API],
            ["http-api"],
            10,
            start_and_get
        ),
        case!(
            Block::WORKFLOWS,
            "workflows.http-api.errors",
            "W14",
            "A missing instance MUST be 404 `ERR_INSTANCE_ID_NOT_FOUND`; a bad id 400 `ERR_INSTANCE_ID_INVALID` or `ERR_INSTANCE_ID_TOO_LONG`; a running id started again 500 `ERR_START_WORKFLOW`; an event for a missing instance 500 `ERR_RAISE_EVENT_WORKFLOW`; purging a running instance 500 `ERR_PURGE_WORKFLOW`.",
            [HTTP_API],
            ["http-api"],
            10,
            errors
        ),
    ]
}

fn base(prefix: &str) -> String {
    format!("/{prefix}/workflows/dapr")
}

fn start(prefix: &str, name: &str, id: &str) -> Request {
    let path = format!("{}/{}/start?instanceID={}", base(prefix), segment(name), segment(id));
    Request::new("POST", path).body("\"hello\"", "application/json")
}

async fn start_and_get(ctx: Ctx) -> CaseResult {
    let id = ctx.key("facade");
    let started = ctx.exchange(start("v1.0-beta1", FOREVER, &id)).await?;
    started.status(202)?;
    started.check(started.json()?["instanceID"] == id.as_str(), "the body names the instance id")?;
    for prefix in PREFIXES {
        let got = ctx.exchange(Request::new("GET", format!("{}/{}", base(prefix), segment(&id)))).await?;
        got.status(200).map_err(trying(prefix))?;
        let body = got.json()?;
        got.check(body["instanceID"] == id.as_str(), &format!("{prefix}: `instanceID`"))?;
        got.check(body["workflowName"] == FOREVER, &format!("{prefix}: `workflowName`"))?;
        let status = body["runtimeStatus"].as_str().unwrap_or_default();
        got.check(["PENDING", "RUNNING"].contains(&status), &format!("{prefix}: `runtimeStatus` PENDING or RUNNING"))?;
        for time in ["createdAt", "lastUpdatedAt"] {
            let stamp = body[time].as_str().unwrap_or_default();
            got.check(humantime::parse_rfc3339(stamp).is_ok(), &format!("{prefix}: `{time}` in RFC 3339"))?;
        }
        let input = &body["properties"]["dapr.workflow.input"];
        got.check(*input == "\"hello\"", &format!("{prefix}: the input under `properties`"))?;
    }
    ctx.exchange(Request::new("POST", format!("{}/{}/terminate", base("v1.0"), segment(&id)))).await?.status(202)
}

async fn errors(ctx: Ctx) -> CaseResult {
    let (id, missing) = (ctx.key("facade-errors"), ctx.key("nobody"));
    let at = |what: &str| format!("{}/{}/{what}", base("v1.0-beta1"), segment(&id));
    ctx.exchange(start("v1.0-beta1", FOREVER, &id)).await?.status(202).map_err(trying("the first start"))?;
    let again = ctx.exchange(start("v1.0-beta1", FOREVER, &id)).await?;
    again.error(500, "ERR_START_WORKFLOW").map_err(trying("starting a running id again"))?;
    let purge = ctx.exchange(Request::new("POST", at("purge"))).await?;
    purge.error(500, "ERR_PURGE_WORKFLOW").map_err(trying("purging a running instance"))?;
    let get = ctx.exchange(Request::new("GET", format!("{}/{}", base("v1.0"), segment(&missing)))).await?;
    get.error(404, "ERR_INSTANCE_ID_NOT_FOUND").map_err(trying("getting a missing instance"))?;
    let raise = format!("{}/{}/raiseEvent/go", base("v1.0"), segment(&missing));
    let raised = ctx.exchange(Request::new("POST", raise).body("1", "application/json")).await?;
    raised.error(500, "ERR_RAISE_EVENT_WORKFLOW").map_err(trying("raising an event on a missing instance"))?;
    let dotted = ctx.exchange(start("v1.0", FOREVER, &format!("{id}.x"))).await?;
    dotted.error(400, "ERR_INSTANCE_ID_INVALID").map_err(trying("an id with a dot"))?;
    let long = ctx.exchange(start("v1.0", FOREVER, &format!("{id}-{}", "x".repeat(64)))).await?;
    long.error(400, "ERR_INSTANCE_ID_TOO_LONG").map_err(trying("an id over 64 characters"))?;
    ctx.exchange(Request::new("POST", at("terminate"))).await?.status(202).map_err(trying("terminating"))
}
