"""The official Dapr Python SDK's gRPC app server (`dapr.ext.grpc.App`, shipped in the `dapr`
1.19.0 wheel, unchanged) behind the certify reference runtime run with `--app-protocol grpc`:
the sidecar reads the app's subscriptions and input bindings (ListTopicSubscriptions,
ListInputBindings), delivers events (OnTopicEvent, RETRY redelivers), input binding events
(OnBindingEvent), invocations from HTTP and gRPC callers (OnInvoke), and the triggers of jobs
the SDK's client schedules (ScheduleJob, OnJobEvent).

Usage: python app_grpc.py PATH_TO_REFERENCE_RUNTIME_BINARY
Prints one `PASS  name` or `FAIL  name: why` line per check and exits 0 when every check
passed, 1 otherwise.
"""

import json
import logging
import os
import socket
import sys
import threading
import warnings

from interop import Sidecar, env, equal, free_port, until  # what interop.py has

APP_ID = "pyapp"
OVERALL_TIMEOUT_S = 120

RESOURCES = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec: {type: state.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub}
spec: {type: pubsub.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: events}
spec: {type: bindings.in-memory, version: v1}
"""


class NotImplementedNoise(logging.Filter):
    """The SDK answers a method, topic or binding it lacks by raising NotImplementedError after
    setting UNIMPLEMENTED; grpcio logs each such raise with a traceback. Expected here: hidden."""

    def filter(self, record):
        return not (record.exc_info and isinstance(record.exc_info[1], NotImplementedError))


# --- the app: the SDK's gRPC server ----------------------------------------------------------

class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.seen = {"orders": [], "flaky": [], "binding": [], "job": []}

    def add(self, kind, item):
        with self.lock:
            self.seen[kind].append(item)
            return len(self.seen[kind])

    def get(self, kind):
        with self.lock:
            return list(self.seen[kind])


def build_app(recorder):
    from dapr.ext.grpc import App, BindingRequest, InvokeMethodRequest, JobEvent, SubscriptionMessage
    from dapr.clients.grpc._response import InvokeMethodResponse, TopicEventResponse

    app = App()

    @app.subscribe(pubsub_name="pubsub", topic="orders")
    def orders(event: SubscriptionMessage):
        recorder.add("orders", event)

    @app.subscribe(pubsub_name="pubsub", topic="flaky")
    def flaky(event: SubscriptionMessage):
        # The first delivery this handler ever sees is answered RETRY, every later one SUCCESS.
        if recorder.add("flaky", event) == 1:
            return TopicEventResponse("retry")
        return TopicEventResponse("success")

    @app.method(name="echo")
    def echo(request: InvokeMethodRequest):
        return InvokeMethodResponse(request.data, request.content_type)

    @app.binding("events")
    def events(request: BindingRequest):
        recorder.add("binding", request)

    @app.job_event("py-job")
    def job(event: JobEvent):
        recorder.add("job", event)

    return app


class AppServer:
    """App.run() blocks until App.stop(): it runs on a thread; started() waits for the port."""

    def __init__(self, app, port):
        self.app, self.port, self.error = app, port, None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.app.run(self.port, listen_address="127.0.0.1")
        except BaseException as e:  # noqa: BLE001 - reported by started()
            self.error = e

    def started(self):
        def listening():
            if self.error is not None:
                raise AssertionError(f"the app server failed: {self.error!r}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        until("the Python app server to listen", listening, 10)

    def stop(self):
        self.app.stop()
        self.thread.join(timeout=10)


# --- the checks -----------------------------------------------------------------------------

def main(binary):
    os.environ.update(DAPR_API_TIMEOUT_SECONDS="15", DAPR_HEALTH_TIMEOUT="20")
    warnings.simplefilter("ignore")  # the SDK warns on every alpha or deprecated API it calls
    logging.getLogger("grpc._server").addFilter(NotImplementedNoise())
    recorder = Recorder()
    server = AppServer(build_app(recorder), free_port())
    sidecars = []

    def give_up():  # no wait may hang the run: past the deadline, kill everything and fail
        print(f"app_grpc: timed out after {OVERALL_TIMEOUT_S} s", flush=True)
        for s in sidecars:
            s.proc.kill()
        os._exit(1)

    watchdog = threading.Timer(OVERALL_TIMEOUT_S, give_up)
    watchdog.daemon = True
    watchdog.start()
    try:
        try:
            server.started()
            sidecars.append(Sidecar(binary, RESOURCES, server.port, app_id=APP_ID, extra_args=["--app-protocol", "grpc"]))
            sidecars[0].wait_ready()
        except AssertionError as e:
            print(f"FAIL  the sidecar starts with --app-protocol grpc and reads the app: {e}", flush=True)
            return 1
        # Set before the SDK reads its settings: DaprClient() first polls HTTP /healthz/outbound.
        os.environ.update(sidecars[0].endpoints())
        return run_checks(recorder)
    finally:
        for s in sidecars:
            s.stop()
        server.stop()
        watchdog.cancel()


def run_checks(recorder):
    import grpc
    from dapr.clients import DaprClient
    from dapr.clients.exceptions import DaprGrpcError, DaprHttpError

    passed, failed = [], []

    def check(name, body):
        try:
            body()
            print(f"PASS  {name}", flush=True)
            passed.append(name)
        except Exception as e:  # noqa: BLE001 - a failed check is reported, not raised
            why = e.details() if isinstance(e, grpc.RpcError) else e
            code = f"{e.code().name} " if isinstance(e, grpc.RpcError) else ""
            print(f"FAIL  {name}: {type(e).__name__} {code}{why}", flush=True)
            failed.append(name)

    d = DaprClient()
    with env(DAPR_API_METHOD_INVOCATION_PROTOCOL="grpc"):
        g = DaprClient()  # invoke_method over the gRPC API's InvokeService

    def publish(topic, data):
        d.publish_event("pubsub", topic, json.dumps(data), data_content_type="application/json")

    def publish_reaches_handler():
        publish("orders", {"orderId": 42})
        until("the event at the app's handler", lambda: recorder.get("orders"))
        m = recorder.get("orders")[0]
        got = (m.topic(), m.pubsub_name(), m.data_content_type(), m.data(), m.type(), m.source(), m.spec_version())
        equal(got, ("orders", "pubsub", "application/json", {"orderId": 42}, "com.dapr.event.sent", APP_ID, "1.0"),
              "(topic, pubsub, content type, data, type, source, specversion)")
        if not m.id():
            raise AssertionError("event without an id")
    check("publish_event reaches the @app.subscribe handler (OnTopicEvent) with its data", publish_reaches_handler)

    def retry_redelivers():
        publish("flaky", {"n": 1})
        until("the event twice at the handler (RETRY, then again)", lambda: len(recorder.get("flaky")) >= 2)
        first, again = recorder.get("flaky")[:2]
        equal((again.id(), again.data()), (first.id(), {"n": 1}), "redelivered (id, data)")
        # Settled: a later event arrives and the first one was not delivered a third time.
        publish("flaky", {"n": 2})
        until("the next event at the handler", lambda: any(m.data() == {"n": 2} for m in recorder.get("flaky")))
        equal([m.data()["n"] for m in recorder.get("flaky")], [1, 1, 2], "deliveries (data.n, in order)")
    check("TopicEventResponse('retry') redelivers the event (same id), SUCCESS settles it", retry_redelivers)

    def invoke_http():
        r = d.invoke_method(APP_ID, "echo", data=b'{"hi": 1}', content_type="application/json", http_verb="POST")
        equal((r.json(), r.content_type.split(";")[0]), ({"hi": 1}, "application/json"), "(echoed body, content type)")
    check("invoke_method over HTTP (SDK default) reaches @app.method (OnInvoke) and answers its data",
          invoke_http)

    def invoke_grpc():
        r = g.invoke_method(APP_ID, "echo", data=b"ping", content_type="text/plain", http_verb="POST")
        equal((r.data, r.content_type), (b"ping", "text/plain"), "(echoed body, content type)")
    check("invoke_method over gRPC InvokeService reaches @app.method (OnInvoke) and answers its data", invoke_grpc)

    def missing_http():
        # daprd: the app's UNIMPLEMENTED is HTTP 501, the body the status as JSON ({"code": 12, ...}).
        try:
            d.invoke_method(APP_ID, "missing", data=b"x", content_type="text/plain", http_verb="POST")
        except DaprHttpError as e:
            body = e.raw_response_bytes or b""
            equal(e.status_code, 501, f"HTTP status (body {body!r})")
            try:
                status = json.loads(body)
            except ValueError:
                raise AssertionError(f"the body is not the gRPC status as JSON: {body!r}") from None
            equal(status.get("code") if isinstance(status, dict) else status, 12, f"status code in the body {body!r}")
            return
        raise AssertionError("expected an error, the call succeeded")
    check("invoke_method over HTTP to a method the app lacks: 501 with the UNIMPLEMENTED status as JSON",
          missing_http)

    def missing_grpc():
        try:
            g.invoke_method(APP_ID, "missing", data=b"x", content_type="text/plain", http_verb="POST")
        except grpc.RpcError as e:
            err = e if isinstance(e, DaprGrpcError) else DaprGrpcError(e)
            equal(err.code(), grpc.StatusCode.UNIMPLEMENTED, f"status code (message {err.details()!r})")
            return
        raise AssertionError("expected UNIMPLEMENTED, the call succeeded")
    check("invoke_method over gRPC to a method the app lacks: the app's UNIMPLEMENTED", missing_grpc)

    def binding():
        d.invoke_binding("events", "create", data="hello binding", binding_metadata={"source": "py"})
        until("the event at the @app.binding handler", lambda: recorder.get("binding"))
        b = recorder.get("binding")[0]
        equal(b.data, b"hello binding", "binding event data")
        equal(b.binding_metadata.get("source"), "py", f"binding event metadata {b.binding_metadata}")
    check("invoke_binding create on bindings.in-memory reaches @app.binding (OnBindingEvent)", binding)

    def job_fires():
        from dapr.clients.grpc._jobs import Job
        from google.protobuf.any_pb2 import Any as GrpcAny
        d.schedule_job(Job(name="py-job", due_time="1s", data=GrpcAny(value=b"job data")))
        until("the job's trigger at the @app.job_event handler", lambda: recorder.get("job"))
        event = recorder.get("job")[0]
        equal((event.name, event.data), ("py-job", b"job data"), "(job name, data)")
    check("schedule_job with a due time fires once at @app.job_event (OnJobEvent) with its data", job_fires)

    def job_get_delete():
        from dapr.clients.grpc._jobs import Job
        d.schedule_job(Job(name="py-later", schedule="@every 1h", repeats=3))
        got = d.get_job("py-later")
        equal((got.name, got.schedule, got.repeats), ("py-later", "@every 1h", 3), "(name, schedule, repeats)")
        d.delete_job("py-later")
        try:
            d.get_job("py-later")
        except grpc.RpcError as e:
            err = e if isinstance(e, DaprGrpcError) else DaprGrpcError(e)
            equal(err.code(), grpc.StatusCode.INTERNAL, f"status of a get after delete ({err.details()!r})")
            return
        raise AssertionError("get_job after delete_job succeeded")
    check("get_job answers the scheduled job; after delete_job it is daprd's INTERNAL", job_get_delete)

    d.close()
    g.close()
    summary = "all checks passed" if not failed else f"{len(failed)} check(s) failed: {', '.join(failed)}"
    print(f"app_grpc: {summary}")
    print(f"app_grpc: {len(passed)} passed, {len(failed)} failed")
    return 0 if not failed else 1


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isfile(sys.argv[1]):
        print(f"usage: python app_grpc.py PATH_TO_REFERENCE_RUNTIME_BINARY (got {sys.argv[1:]})", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(os.path.abspath(sys.argv[1])))
