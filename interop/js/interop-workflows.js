// The official Dapr JavaScript SDK (@dapr/dapr 3.18.0), unchanged, running workflows on the
// certify reference runtime: WorkflowRuntime is the worker and DaprWorkflowClient the client,
// both on the sidecar's gRPC port (TaskHubSidecarService, with the SDK's pre-2026 message
// names and its empty GetWorkItemsRequest). Activities, a durable timer, an external event
// and a child workflow run to the status and output the SDK expects.
//
// Usage: node interop-workflows.js PATH_TO_REFERENCE_RUNTIME_BINARY
// Exits 0 when every check passed, 1 otherwise; prints one line per check.

"use strict";

const { DaprWorkflowClient, LogLevel, WorkflowRuntime, WorkflowRuntimeStatus } = require("@dapr/dapr");
const { assertEqual, binaryArg, checker, freePort, sleep, startSidecar, until, watchdog } = require("./common");

const binary = binaryArg("interop-workflows.js");

const RESOURCES = `
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec:
  type: state.in-memory
  version: v1
  metadata:
  - {name: actorStateStore, value: "true"}
`;

const WAIT_S = 20;

const double = async (_ctx, x) => x * 2;

const chain = async function* (ctx, x) {
  x = yield ctx.callActivity(double, x);
  x = yield ctx.callActivity(double, x);
  x = yield ctx.callActivity(double, x);
  return x;
};

const sleeper = async function* (ctx, seconds) {
  const start = ctx.getCurrentUtcDateTime();
  yield ctx.createTimer(seconds);
  return (ctx.getCurrentUtcDateTime() - start) / 1000;
};

const approval = async function* (ctx, delay) {
  if (delay) yield ctx.createTimer(delay);
  const answer = yield ctx.waitForExternalEvent("approved");
  return { approved: answer };
};

const child = async function* (ctx, x) {
  return (yield ctx.callActivity(double, x)) + 1;
};

const parent = async function* (ctx, x) {
  return yield ctx.callChildWorkflow(child, x, `${ctx.getWorkflowInstanceId()}-child`);
};

async function main() {
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const sidecar = startSidecar(binary, { httpPort, grpcPort, resources: RESOURCES });
  await until(
    "the sidecar to be healthy",
    async () => {
      try {
        return (await fetch(`http://127.0.0.1:${httpPort}/v1.0/healthz`)).status === 204;
      } catch {
        return false;
      }
    },
    20000,
  );

  const options = { daprHost: "127.0.0.1", daprPort: String(grpcPort), logger: { level: LogLevel.Error } };
  const runtime = new WorkflowRuntime(options)
    .registerWorkflow(chain)
    .registerWorkflow(sleeper)
    .registerWorkflow(approval)
    .registerWorkflow(child)
    .registerWorkflow(parent)
    .registerActivity(double);
  await runtime.start();
  const client = new DaprWorkflowClient(options);
  const { check, failures } = checker();

  const run = async (workflow, input) => {
    const id = await client.scheduleNewWorkflow(workflow, input);
    const state = await client.waitForWorkflowCompletion(id, true, WAIT_S);
    if (!state) throw new Error(`instance ${id} is gone`);
    return [id, state];
  };
  const completed = (state, what) =>
    assertEqual(WorkflowRuntimeStatus[state.runtimeStatus], "COMPLETED", `${what} status (${JSON.stringify(state.workflowFailureDetails)})`);

  await check("a chain of three activities completes with their result", async () => {
    const [, state] = await run(chain, 3);
    completed(state, "chain");
    assertEqual(state.serializedOutput, "24", "output of three doublings of 3");
  });

  await check("a 2 s durable timer fires no earlier than due", async () => {
    const began = Date.now();
    const [, state] = await run(sleeper, 2);
    completed(state, "sleeper");
    const waited = (Date.now() - began) / 1000;
    if (waited < 2 || Number(state.serializedOutput) < 2) {
      throw new Error(`a 2 s timer fired early: ${waited} s wall, ${state.serializedOutput} s workflow`);
    }
  });

  await check("an external event reaches the workflow waiting for it", async () => {
    const id = await client.scheduleNewWorkflow(approval, 0);
    await client.waitForWorkflowStart(id, false, WAIT_S);
    await client.raiseEvent(id, "approved", true);
    const state = await client.waitForWorkflowCompletion(id, true, WAIT_S);
    completed(state, "approval");
    assertEqual(state.serializedOutput, '{"approved":true}', "output");
  });

  await check("an event raised before the wait is buffered and delivered", async () => {
    const id = await client.scheduleNewWorkflow(approval, 1);
    await client.raiseEvent(id, "approved", "early");
    const state = await client.waitForWorkflowCompletion(id, true, WAIT_S);
    completed(state, "approval");
    assertEqual(state.serializedOutput, '{"approved":"early"}', "output");
  });

  await check("a child workflow's result reaches its parent", async () => {
    const [id, state] = await run(parent, 5);
    completed(state, "parent");
    assertEqual(state.serializedOutput, "11", "the child's result through the parent");
    const kid = await client.getWorkflowState(`${id}-child`, false);
    assertEqual(kid && WorkflowRuntimeStatus[kid.runtimeStatus], "COMPLETED", "the child's status");
  });

  await check("suspend, resume, terminate and purge move the instance as the SDK expects", async () => {
    const id = await client.scheduleNewWorkflow(approval, 0);
    await client.waitForWorkflowStart(id, false, WAIT_S);
    await client.suspendWorkflow(id);
    await until("SUSPENDED", async () => (await client.getWorkflowState(id, false)).runtimeStatus === WorkflowRuntimeStatus.SUSPENDED);
    await client.resumeWorkflow(id);
    await until("RUNNING", async () => (await client.getWorkflowState(id, false)).runtimeStatus === WorkflowRuntimeStatus.RUNNING);
    await client.terminateWorkflow(id, "stopped");
    const state = await client.waitForWorkflowCompletion(id, false, WAIT_S);
    assertEqual(WorkflowRuntimeStatus[state.runtimeStatus], "TERMINATED", "status after terminate");
    await client.purgeWorkflow(id);
    assertEqual(await client.getWorkflowState(id, false), undefined, "the state after purge");
  });

  await client.stop();
  await runtime.stop();
  sidecar.stop();
  await sleep(100);
  console.log(
    failures.length === 0
      ? "interop-workflows: all checks passed"
      : `interop-workflows: ${failures.length} check(s) failed: ${failures.join(", ")}`,
  );
  process.exit(failures.length === 0 ? 0 : 1);
}

watchdog("interop-workflows", 120000);

main().catch((e) => {
  console.error(`interop-workflows: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
