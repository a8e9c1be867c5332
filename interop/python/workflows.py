"""The official Dapr Python SDK's workflow runtime (`dapr.ext.workflow`, shipped in the `dapr`
1.19.0 wheel, unchanged) against the certify reference runtime: `WorkflowRuntime` is the worker
(GetWorkItems, CompleteOrchestratorTask, CompleteActivityTask) and `DaprWorkflowClient` the
client (StartInstance, GetInstance, the long polls, RaiseEvent, Terminate, Suspend, Resume,
Purge), both on the sidecar's gRPC port. Workflows with activities, a retry policy, a durable
timer, external events and a child workflow run to the status and output the SDK expects.

Usage: python workflows.py PATH_TO_REFERENCE_RUNTIME_BINARY
Prints one `PASS  name` or `FAIL  name: why` line per check and exits 0 when every check
passed, 1 otherwise.
"""

import logging
import os
import sys
import threading
import time
import warnings
from datetime import timedelta

from interop import Sidecar, equal

OVERALL_TIMEOUT_S = 120
WAIT_S = 20

RESOURCES = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec:
  type: state.in-memory
  version: v1
  metadata:
  - {name: actorStateStore, value: "true"}
"""


def build_runtime(wf):
    """The workflows and activities the checks run, registered on a WorkflowRuntime."""
    rt = wf.WorkflowRuntime()
    attempts = {"flaky": 0}

    @rt.activity(name="double")
    def double(ctx, x):
        return x * 2

    @rt.activity(name="flaky")
    def flaky(ctx, _):
        attempts["flaky"] += 1
        if attempts["flaky"] < 3:
            raise RuntimeError(f"attempt {attempts['flaky']} fails")
        return attempts["flaky"]

    @rt.workflow(name="chain")
    def chain(ctx, x):
        x = yield ctx.call_activity(double, input=x)
        x = yield ctx.call_activity(double, input=x)
        x = yield ctx.call_activity(double, input=x)
        return x

    @rt.workflow(name="retried")
    def retried(ctx, _):
        policy = wf.RetryPolicy(first_retry_interval=timedelta(milliseconds=200), max_number_of_attempts=3)
        return (yield ctx.call_activity(flaky, input=None, retry_policy=policy))

    @rt.workflow(name="sleeper")
    def sleeper(ctx, seconds):
        start = ctx.current_utc_datetime
        yield ctx.create_timer(timedelta(seconds=seconds))
        return (ctx.current_utc_datetime - start).total_seconds()

    @rt.workflow(name="approval")
    def approval(ctx, delay):
        if delay:
            yield ctx.create_timer(timedelta(seconds=delay))
        answer = yield ctx.wait_for_external_event("approved")
        return {"approved": answer}

    @rt.workflow(name="child")
    def child(ctx, x):
        return (yield ctx.call_activity(double, input=x)) + 1

    @rt.workflow(name="parent")
    def parent(ctx, x):
        return (yield ctx.call_child_workflow(child, input=x, instance_id=f"{ctx.instance_id}-child"))

    return rt, attempts


def main(binary):
    sidecar = Sidecar(binary, RESOURCES)

    def give_up():  # no wait may hang the run: past the deadline, kill everything and fail
        print(f"workflows: timed out after {OVERALL_TIMEOUT_S} s", flush=True)
        sidecar.proc.kill()
        os._exit(1)

    watchdog = threading.Timer(OVERALL_TIMEOUT_S, give_up)
    watchdog.daemon = True
    watchdog.start()
    try:
        sidecar.wait_ready()
        os.environ.update(sidecar.endpoints())
        return run_checks()
    except AssertionError as e:
        print(f"workflows: the sidecar did not start: {e}", flush=True)
        return 1
    finally:
        sidecar.stop()


def run_checks():
    import grpc
    import dapr.ext.workflow as wf

    warnings.simplefilter("ignore")
    logging.getLogger("durabletask-worker").setLevel(logging.CRITICAL)
    passed, failed = [], []

    def check(name, body):
        try:
            body()
            print(f"PASS  {name}", flush=True)
            passed.append(name)
        except Exception as e:  # noqa: BLE001 - a failed check is reported, not raised
            why = e.details() if isinstance(e, grpc.RpcError) else e
            print(f"FAIL  {name}: {type(e).__name__} {why}", flush=True)
            failed.append(name)

    rt, attempts = build_runtime(wf)
    rt.start()
    client = wf.DaprWorkflowClient()

    def run(name, input=None, instance_id=None):
        iid = client.schedule_new_workflow(workflow=name, input=input, instance_id=instance_id)
        state = client.wait_for_workflow_completion(iid, timeout_in_seconds=WAIT_S)
        if state is None:
            raise AssertionError(f"{name} ({iid}) is gone")
        return iid, state

    def completed(state, what):
        equal(state.runtime_status, wf.WorkflowStatus.COMPLETED, f"{what} status ({state.failure_details})")

    def chain_of_activities():
        _, state = run("chain", 3)
        completed(state, "chain")
        equal(state.serialized_output, "24", "output of three doublings of 3")
    check("a chain of three activities completes with their result", chain_of_activities)

    def retry_policy():
        _, state = run("retried")
        completed(state, "retried")
        equal((state.serialized_output, attempts["flaky"]), ("3", 3), "(output, attempts)")
    check("an activity failing twice succeeds on the third attempt of its retry policy", retry_policy)

    def durable_timer():
        began = time.monotonic()
        _, state = run("sleeper", 2)
        completed(state, "sleeper")
        waited = time.monotonic() - began
        if waited < 2 or float(state.serialized_output) < 2:
            raise AssertionError(f"a 2 s timer fired early: {waited:.2f} s wall, {state.serialized_output} s workflow")
    check("a 2 s durable timer fires no earlier than due", durable_timer)

    def external_event():
        iid = client.schedule_new_workflow(workflow="approval", input=0)
        client.wait_for_workflow_start(iid, timeout_in_seconds=WAIT_S)
        client.raise_workflow_event(iid, "approved", data=True)
        state = client.wait_for_workflow_completion(iid, timeout_in_seconds=WAIT_S)
        completed(state, "approval")
        equal(state.serialized_output, '{"approved": true}', "output")
    check("an external event reaches the workflow waiting for it", external_event)

    def buffered_event():
        iid = client.schedule_new_workflow(workflow="approval", input=1)
        client.raise_workflow_event(iid, "approved", data="early")
        state = client.wait_for_workflow_completion(iid, timeout_in_seconds=WAIT_S)
        completed(state, "approval")
        equal(state.serialized_output, '{"approved": "early"}', "output")
    check("an event raised before the wait is buffered and delivered", buffered_event)

    def child_workflow():
        iid, state = run("parent", 5)
        completed(state, "parent")
        equal(state.serialized_output, "11", "the child's result through the parent")
        child = client.get_workflow_state(f"{iid}-child")
        equal(child.runtime_status if child else None, wf.WorkflowStatus.COMPLETED, "the child's status")
    check("a child workflow's result reaches its parent", child_workflow)

    def pause_resume_terminate():
        iid = client.schedule_new_workflow(workflow="approval", input=0)
        client.wait_for_workflow_start(iid, timeout_in_seconds=WAIT_S)
        client.pause_workflow(iid)
        equal(client.get_workflow_state(iid).runtime_status, wf.WorkflowStatus.SUSPENDED, "status after pause")
        client.resume_workflow(iid)
        equal(client.get_workflow_state(iid).runtime_status, wf.WorkflowStatus.RUNNING, "status after resume")
        client.terminate_workflow(iid, output="stopped")
        state = client.wait_for_workflow_completion(iid, timeout_in_seconds=WAIT_S)
        equal(state.runtime_status, wf.WorkflowStatus.TERMINATED, "status after terminate")
    check("pause, resume and terminate move the status as the SDK expects", pause_resume_terminate)

    def purge():
        iid, state = run("chain", 1)
        completed(state, "chain")
        client.purge_workflow(iid)
        equal(client.get_workflow_state(iid), None, "the state after purge")
    check("a purged instance is gone", purge)

    def unknown_name():
        _, state = run("no-such-workflow")
        equal(state.runtime_status, wf.WorkflowStatus.FAILED, "status of an unregistered workflow")
    check("an unregistered workflow name ends FAILED", unknown_name)

    def duplicate_id():
        client.schedule_new_workflow(workflow="approval", input=0, instance_id="py-dup")
        try:
            client.schedule_new_workflow(workflow="approval", input=0, instance_id="py-dup")
        except grpc.RpcError as e:
            equal(e.code(), grpc.StatusCode.ALREADY_EXISTS, f"status ({e.details()})")
            client.terminate_workflow("py-dup")
            return
        raise AssertionError("a second start with a running instance's id succeeded")
    check("a start with a running instance's id is refused", duplicate_id)

    client.close()
    rt.shutdown()
    summary = "all checks passed" if not failed else f"{len(failed)} check(s) failed: {', '.join(failed)}"
    print(f"workflows: {summary}")
    print(f"workflows: {len(passed)} passed, {len(failed)} failed")
    return 0 if not failed else 1


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isfile(sys.argv[1]):
        print(f"usage: python workflows.py PATH_TO_REFERENCE_RUNTIME_BINARY (got {sys.argv[1:]})", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(os.path.abspath(sys.argv[1])))
