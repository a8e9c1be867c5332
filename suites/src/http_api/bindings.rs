//! The output-binding route on the wire (`dapr-http-api.md` §3.1).

use contract::Block;

use super::{HTTP_API, Request, segment};
use crate::case;
use crate::case::{Case, CaseResult, Ctx};

pub(crate) fn cases() -> Vec<Case> {
    vec![case!(
        Block::BINDINGS,
        "bindings.http-api.errors",
        "HTTP 3.1",
        "A malformed body MUST be answered 400 `ERR_MALFORMED_REQUEST`; an unknown binding, and an operation the binding does not support, 500 `ERR_INVOKE_OUTPUT_BINDING`.",
        [HTTP_API],
        ["http-api"],
        10,
        errors
    )]
}

async fn errors(ctx: Ctx) -> CaseResult {
    let binding = format!("/v1.0/bindings/{}", ctx.component_segment());
    let malformed = Request::new("POST", &binding).body("{\"operation\":", "application/json");
    ctx.exchange(malformed).await?.error(400, "ERR_MALFORMED_REQUEST")?;
    let call = serde_json::json!({"operation": "certify-no-such-operation", "data": {}, "metadata": {}});
    ctx.exchange(Request::new("POST", &binding).json(&call)).await?.error(500, "ERR_INVOKE_OUTPUT_BINDING")?;
    let missing = segment(&format!("{}-certify-absent", ctx.component));
    let call = serde_json::json!({"operation": "create", "data": {}, "metadata": {}});
    let elsewhere = Request::new("POST", format!("/v1.0/bindings/{missing}")).json(&call);
    ctx.exchange(elsewhere).await?.error(500, "ERR_INVOKE_OUTPUT_BINDING")
}
