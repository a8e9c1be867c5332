"""The official Dapr Python SDK (`dapr` from PyPI, unchanged) against the certify reference
runtime over gRPC: state (ETags, bulk, transactions, query), publish and delivery to the app,
bulk publish, the streaming subscription (SubscribeTopicEventsAlpha1), an output binding,
secrets, configuration, locks, metadata, service invocation, the API token and Shutdown.

Usage: python interop.py PATH_TO_REFERENCE_RUNTIME_BINARY
Prints one `PASS  name` or `FAIL  name: why` line per check and exits 0 when every check
passed, 1 otherwise.
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

APP_ID = "interop"
TOKEN = "secret"
OVERALL_TIMEOUT_S = 150
STREAM_TOPIC = "streamed"  # only the streaming subscription listens to it

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
metadata: {name: files}
spec:
  type: bindings.localstorage
  version: v1
  metadata:
  - {name: rootPath, value: "%(files)s"}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: lockstore}
spec: {type: lock.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: configstore}
spec: {type: configuration.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: secretstore}
spec:
  type: secretstores.local.env
  version: v1
  metadata:
  - {name: prefix, value: INTEROP_}
"""

# The app's programmatic subscriptions, answered on GET /dapr/subscribe.
SUBSCRIPTIONS = [
    {"pubsubname": "pubsub", "topic": "orders", "route": "/orders"},
    {"pubsubname": "pubsub", "topic": "bulk", "route": "/bulk"},
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(what, check, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.025)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def bounded(what, call, timeout_s=10.0, on_timeout=None):
    """call() on a helper thread, for SDK calls that take no deadline (a stream's reads): its
    result, or AssertionError after timeout_s once on_timeout() (say, closing the stream) ran."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            outcome["error"] = e
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        if on_timeout:
            on_timeout()
        raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def equal(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


@contextlib.contextmanager
def env(**values):
    """The SDK reads DAPR_* from the environment when a client is built: point one elsewhere."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: v for k, v in values.items() if v is not None})
    for k in (k for k, v in values.items() if v is None):
        os.environ.pop(k, None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- the app the sidecar calls ------------------------------------------------------------

class App(BaseHTTPRequestHandler):
    deliveries = []  # (path, headers, parsed body) of every event the sidecar posted
    lock = threading.Lock()

    def log_message(self, *args):  # keep the report to one line per check
        pass

    def answer(self, status, body=b"", content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/dapr/subscribe":
            return self.answer(200, json.dumps(SUBSCRIPTIONS).encode())
        self.answer(404, b"not found", "text/plain")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path in ("/orders", "/bulk"):
            with App.lock:
                headers = {k.lower(): v for k, v in self.headers.items()}  # names are case-insensitive
                App.deliveries.append((self.path, headers, json.loads(body)))
            return self.answer(200, b'{"status":"SUCCESS"}')
        if self.path.startswith("/echo"):
            return self.answer(200, body, self.headers.get("Content-Type") or "application/octet-stream")
        self.answer(404, b"no such method", "text/plain")

    @classmethod
    def received(cls, path):
        with cls.lock:
            return [d for d in cls.deliveries if d[0] == path]


# --- the sidecars -------------------------------------------------------------------------

class Sidecar:
    """The reference runtime on free loopback ports over `resources` (`%(files)s` is a folder
    of its own); `extra_args` go on its command line (app_grpc.py adds `--app-protocol grpc`)."""

    def __init__(self, binary, resources, app_port=None, extra_env=None, app_id=APP_ID, extra_args=()):
        self.http, self.grpc = free_port(), free_port()
        self.dir = tempfile.mkdtemp(prefix="certify-py-interop-")
        with open(os.path.join(self.dir, "components.yaml"), "w") as f:
            f.write(resources % {"files": os.path.join(self.dir, "files")})
        args = [binary, "--app-id", app_id, "--dapr-http-port", str(self.http),
                "--dapr-grpc-port", str(self.grpc), "--resources-path", self.dir, "--log-level", "warn"]
        if app_port:
            args += ["--app-port", str(app_port)]
        args += list(extra_args)
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("DAPR_", "INTEROP_"))}
        child_env.update(extra_env or {})
        self.proc = subprocess.Popen(args, env=child_env, stdin=subprocess.DEVNULL)

    def endpoints(self):
        return {"DAPR_HTTP_ENDPOINT": f"http://127.0.0.1:{self.http}", "DAPR_GRPC_ENDPOINT": f"127.0.0.1:{self.grpc}"}

    def wait_ready(self):
        """Healthy (so the app's subscriptions are read) and the gRPC port accepts connections."""
        def healthy():
            if self.proc.poll() is not None:
                raise AssertionError(f"the sidecar exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/v1.0/healthz", timeout=1) as r:
                    ok = r.status == 204
                socket.create_connection(("127.0.0.1", self.grpc), timeout=1).close()
                return ok
            except OSError:
                return False
        until("the sidecar to be healthy", healthy, 20)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the checks -----------------------------------------------------------------------------

def main(binary):
    # Every unary call gets a deadline, and the SDK's health probe gives up in time.
    os.environ.update(DAPR_API_TIMEOUT_SECONDS="15", DAPR_HEALTH_TIMEOUT="20")
    app_port = free_port()
    app = ThreadingHTTPServer(("127.0.0.1", app_port), App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    sidecars = []

    def give_up():  # no wait may hang the run: past the deadline, kill everything and fail
        print(f"interop: timed out after {OVERALL_TIMEOUT_S} s", flush=True)
        for s in sidecars:
            s.proc.kill()
        os._exit(1)

    watchdog = threading.Timer(OVERALL_TIMEOUT_S, give_up)
    watchdog.daemon = True
    watchdog.start()
    try:
        # The app's sidecar, and one that demands an API token (its first component only).
        main_sc = Sidecar(binary, RESOURCES, app_port, {"INTEROP_db_password": "s3cr3t"})
        sidecars.append(main_sc)
        token_sc = Sidecar(binary, RESOURCES.split("---")[0], None, {"DAPR_API_TOKEN": TOKEN})
        sidecars.append(token_sc)
        try:
            main_sc.wait_ready()
            token_sc.wait_ready()
        except AssertionError as e:
            print(f"interop: the sidecars did not start: {e}", flush=True)
            return 1
        # Set before the SDK reads its settings: DaprClient() first polls HTTP /healthz/outbound.
        os.environ.update(main_sc.endpoints())
        return run_checks(main_sc, token_sc)
    finally:
        for s in sidecars:
            s.stop()
        app.shutdown()


def run_checks(main_sc, token_sc):
    import grpc
    from dapr.clients import DaprClient
    from dapr.clients.exceptions import DaprGrpcError
    from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
    from dapr.clients.grpc._response import UnlockResponseStatus
    from dapr.clients.grpc._state import Concurrency, StateItem, StateOptions
    from dapr.proto import api_service_v1, api_v1

    warnings.simplefilter("ignore")  # the SDK warns on every alpha or deprecated API it calls
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

    def expect_error(call, code, reason=None):
        """The call fails with `code` and, for daprd's rich errors, ErrorInfo `reason`."""
        try:
            call()
        except grpc.RpcError as e:
            err = e if isinstance(e, DaprGrpcError) else DaprGrpcError(e)
            equal(err.code(), code, f"status code (message {err.details()!r})")
            if reason is not None:
                info = err.status_details().error_info or {}
                equal(info.get("reason"), reason, "ErrorInfo.reason")
                equal(info.get("domain"), "dapr.io", "ErrorInfo.domain")
            return err
        raise AssertionError(f"expected {code.name}, the call succeeded")

    d = DaprClient()
    S = "statestore"

    def state_round_trip():
        d.save_state(S, "greeting", "hello")
        equal(d.get_state(S, "greeting").data, b"hello", "str value")
        d.save_state(S, "blob", b"\x00\x01\xfe\xff")
        equal(d.get_state(S, "blob").data, b"\x00\x01\xfe\xff", "bytes value")
        missing = d.get_state(S, "never-written")
        equal((missing.data, missing.etag), (b"", ""), "missing key (data, etag)")
    check("state save_state/get_state round trip, missing key is empty", state_round_trip)

    def etags():
        d.save_state(S, "versioned", "v1")
        first = d.get_state(S, "versioned").etag
        if not first:
            raise AssertionError("get_state returned no etag")
        d.save_state(S, "versioned", "v2", etag=first)
        expect_error(lambda: d.save_state(S, "versioned", "v3", etag=first), grpc.StatusCode.ABORTED,
                     "ERR_STATE_SAVE")
        equal(d.get_state(S, "versioned").data, b"v2", "value after the rejected save")
    check("state ETag: stale etag is ABORTED with ERR_STATE_SAVE", etags)

    def first_write():
        fw = StateOptions(concurrency=Concurrency.first_write)
        d.save_state(S, "fw", "one", options=fw)  # a new key needs no etag
        expect_error(lambda: d.save_state(S, "fw", "two", options=fw), grpc.StatusCode.ABORTED, "ERR_STATE_SAVE")
        d.save_state(S, "fw", "three", etag=d.get_state(S, "fw").etag, options=fw)
        equal(d.get_state(S, "fw").data, b"three", "value")
    check("state first-write concurrency", first_write)

    def bulk_and_delete():
        d.save_bulk_state(S, [StateItem("b1", "one"), StateItem("b2", b"two")])
        items = {i.key: i.data for i in d.get_bulk_state(S, ["b1", "b2", "b3"]).items}
        equal(items, {"b1": b"one", "b2": b"two", "b3": b""}, "bulk get")
        d.delete_state(S, "b1")
        equal(d.get_state(S, "b1").data, b"", "after delete_state")
    check("state save_bulk_state, get_bulk_state, delete_state", bulk_and_delete)

    def transaction():
        d.save_state(S, "tx-old", "doomed")
        d.execute_state_transaction(S, [
            TransactionalStateOperation("tx-new", "fresh"),
            TransactionalStateOperation("tx-old", operation_type=TransactionOperationType.delete),
        ])
        items = {i.key: i.data for i in d.get_bulk_state(S, ["tx-new", "tx-old"]).items}
        equal(items, {"tx-new": b"fresh", "tx-old": b""}, "after the transaction")
    check("state execute_state_transaction (upsert + delete)", transaction)

    def query():
        for key, color, n in [("q1", "red", 1), ("q2", "blue", 2), ("q3", "red", 3)]:
            d.save_state(S, key, json.dumps({"color": color, "n": n}))
        q = {"filter": {"EQ": {"color": "red"}}, "sort": [{"key": "n", "order": "DESC"}]}
        results = d.query_state(S, json.dumps(q)).results
        equal([(r.key, r.json()["n"]) for r in results], [("q3", 3), ("q1", 1)], "query results")
    check("state query_state with a filter and sort", query)

    check("state unknown store is INVALID_ARGUMENT with DAPR_STATE_NOT_FOUND", lambda: equal(
        expect_error(lambda: d.get_state("nope", "k"), grpc.StatusCode.INVALID_ARGUMENT, "DAPR_STATE_NOT_FOUND")
        .status_details().error_info.get("metadata", {}).get("appID"), APP_ID, "ErrorInfo.metadata.appID"))

    def publish():
        d.publish_event("pubsub", "orders", json.dumps({"orderId": 42}), data_content_type="application/json")
        until("the event at the app", lambda: App.received("/orders"))
        _, headers, event = App.received("/orders")[0]
        equal(headers.get("content-type", "").split(";")[0], "application/cloudevents+json", "content type")
        got = {k: event.get(k) for k in ("specversion", "type", "source", "topic", "pubsubname", "data")}
        equal(got, {"specversion": "1.0", "type": "com.dapr.event.sent", "source": APP_ID, "topic": "orders",
                    "pubsubname": "pubsub", "data": {"orderId": 42}}, "CloudEvent")
        if not event.get("id"):
            raise AssertionError(f"CloudEvent without an id: {event}")
    check("publish_event reaches the app as a CloudEvent", publish)

    check("publish_event to an unknown pubsub is INVALID_ARGUMENT with DAPR_PUBSUB_NOT_FOUND", lambda: expect_error(
        lambda: d.publish_event("nope", "orders", "x"), grpc.StatusCode.INVALID_ARGUMENT, "DAPR_PUBSUB_NOT_FOUND"))

    def bulk_publish():
        answer = d.publish_events("pubsub", "bulk", [json.dumps({"n": 1}), json.dumps({"n": 2})],
                                  data_content_type="application/json")
        equal(answer.failed_entries, [], "failed entries")
        until("both events at the app", lambda: len(App.received("/bulk")) >= 2)
        equal(sorted(e["data"]["n"] for _, _, e in App.received("/bulk")), [1, 2], "delivered data")
    check("publish_events (BulkPublishEvent) reaches the app", bulk_publish)

    # The streaming subscription. The SDK's get_metadata() leaves the subscriptions out, so
    # they are read with the SDK's generated stub for the Dapr service.
    meta_channel = grpc.insecure_channel(f"127.0.0.1:{main_sc.grpc}")
    meta_stub = api_service_v1.DaprStub(meta_channel)
    stream = {}  # "sub": the subscription the checks below share while it is open

    def until_listed(expected):
        """Until metadata lists exactly `expected` (pubsub, type) subscriptions to STREAM_TOPIC."""
        seen = []

        def listed():
            md = meta_stub.GetMetadata(api_v1.GetMetadataRequest(), timeout=5)
            seen[:] = [(s.pubsub_name, api_v1.PubsubSubscriptionType.Name(s.type))
                       for s in md.subscriptions if s.topic == STREAM_TOPIC]
            return seen == expected
        try:
            until(f"metadata to list {expected} for topic {STREAM_TOPIC!r}", listed)
        except AssertionError as e:
            raise AssertionError(f"{e}; it lists {seen}") from None

    def publish_streamed(data):
        d.publish_event("pubsub", STREAM_TOPIC, json.dumps(data), data_content_type="application/json")

    def next_event(what):
        if "sub" not in stream:
            raise AssertionError("no open subscription (an earlier check failed)")
        sub = stream["sub"]
        return sub, bounded(what, sub.next_message, 15, on_timeout=sub.close)

    def stream_receive():
        stream["sub"] = bounded("subscribe() to open the stream", lambda: d.subscribe("pubsub", STREAM_TOPIC))
        until_listed([("pubsub", "STREAMING")])
        publish_streamed({"n": 1})
        sub, msg = next_event("the event on the stream")
        got = (msg.topic(), msg.pubsub_name(), msg.data_content_type(), msg.data())
        equal(got, (STREAM_TOPIC, "pubsub", "application/json", {"n": 1}), "(topic, pubsub, content type, data)")
        if not msg.id():
            raise AssertionError("event without an id")
        sub.respond_success(msg)
    check("subscribe() streams a published event; metadata lists the subscription as STREAMING", stream_receive)

    def stream_retry():
        publish_streamed({"n": 2})
        sub, first = next_event("the event on the stream")
        equal(first.data(), {"n": 2}, "data")
        sub.respond_retry(first)
        sub, again = next_event("the event again after respond_retry")
        equal((again.id(), again.data()), (first.id(), {"n": 2}), "redelivered (id, data)")
        sub.respond_success(again)
        publish_streamed({"n": 3})  # settled: what comes next is the next event
        sub, after = next_event("the next event")
        equal(after.data(), {"n": 3}, "the event after respond_success")
        sub.respond_success(after)
    check("respond_retry redelivers the event (same id), respond_success settles it", stream_retry)

    def stream_close():
        if "sub" not in stream:
            raise AssertionError("no open subscription (an earlier check failed)")
        stream.pop("sub").close()
        until_listed([])
    check("close() ends the subscription: metadata no longer lists it", stream_close)
    if "sub" in stream:
        stream.pop("sub").close()
    meta_channel.close()

    def binding():
        meta = {"fileName": "greeting.txt"}
        d.invoke_binding("files", "create", "hello binding", binding_metadata=meta)
        equal(d.invoke_binding("files", "get", binding_metadata=meta).data, b"hello binding", "get")
        expect_error(lambda: d.invoke_binding("nope", "create", "x"), grpc.StatusCode.INTERNAL,
                     "ERR_INVOKE_OUTPUT_BINDING")
    check("invoke_binding create then get (bindings.localstorage)", binding)

    def secrets():
        equal(d.get_secret("secretstore", "db_password").secret, {"db_password": "s3cr3t"}, "get_secret")
        equal(d.get_bulk_secret("secretstore").secrets, {"db_password": {"db_password": "s3cr3t"}},
              "get_bulk_secret")
        expect_error(lambda: d.get_secret("nope", "db_password"), grpc.StatusCode.INVALID_ARGUMENT)
    check("get_secret and get_bulk_secret (secretstores.local.env)", secrets)

    def configuration():
        equal(dict(d.get_configuration("configstore", ["absent"]).items), {}, "absent keys")
        sub_id = d.subscribe_configuration("configstore", ["absent"], lambda _id, _resp: None)
        if not sub_id:
            raise AssertionError(f"subscribe_configuration returned no id: {sub_id!r}")
        equal(d.unsubscribe_configuration("configstore", sub_id), True, "unsubscribe_configuration")
        expect_error(lambda: d.get_configuration("nope", ["k"]), grpc.StatusCode.INVALID_ARGUMENT,
                     "ERR_CONFIGURATION_STORE_NOT_FOUND")
    check("get_configuration, subscribe_configuration and unsubscribe_configuration", configuration)

    def locks():
        equal(d.try_lock("lockstore", "res-1", "owner-a", 30).success, True, "first try_lock")
        equal(d.try_lock("lockstore", "res-1", "owner-b", 30).success, False, "contended try_lock")
        equal(d.unlock("lockstore", "res-1", "owner-b").status, UnlockResponseStatus.lock_belongs_to_others,
              "unlock by another owner")
        equal(d.unlock("lockstore", "res-1", "owner-a").status, UnlockResponseStatus.success, "unlock by owner")
        equal(d.unlock("lockstore", "res-1", "owner-a").status, UnlockResponseStatus.lock_does_not_exist,
              "unlock again")
    check("try_lock and unlock", locks)

    def metadata():
        md = d.get_metadata()
        equal(md.application_id, APP_ID, "application_id")
        types = {c.name: c.type for c in md.registered_components}
        equal(types.get("statestore"), "state.in-memory", "statestore among the components")
        d.set_metadata("interop-attribute", "on")
        equal(d.get_metadata().extended_metadata.get("interop-attribute"), "on", "extended metadata")
    check("get_metadata and set_metadata", metadata)

    def invoke_http():
        # The SDK's default for invoke_method is the HTTP API (DAPR_API_METHOD_INVOCATION_PROTOCOL).
        r = d.invoke_method(APP_ID, "echo", '{"hi": 1}', content_type="application/json", http_verb="POST")
        equal(r.json(), {"hi": 1}, "echoed body")
    check("invoke_method to the app (SDK default: HTTP API)", invoke_http)

    def invoke_grpc():
        with env(DAPR_API_METHOD_INVOCATION_PROTOCOL="grpc"):
            g = DaprClient()
        try:
            r = g.invoke_method(APP_ID, "echo", b"ping", content_type="text/plain", http_verb="POST",
                                http_querystring=(("q", "1"),))
            equal((r.data, r.content_type), (b"ping", "text/plain"), "echoed (body, content type)")
            equal(r.headers.get("dapr-http-status"), ["200"], "dapr-http-status header")  # SDK: name -> values
            expect_error(lambda: g.invoke_method(APP_ID, "missing", b"", http_verb="POST"),
                         grpc.StatusCode.NOT_FOUND)
        finally:
            g.close()
    check("invoke_method over gRPC InvokeService (HTTP app; 404 is NOT_FOUND)", invoke_grpc)

    def api_token():
        with env(**token_sc.endpoints(), DAPR_API_TOKEN=None):
            anonymous = DaprClient()
        with env(**token_sc.endpoints(), DAPR_API_TOKEN="wrong"):
            wrong = DaprClient()
        with env(**token_sc.endpoints(), DAPR_API_TOKEN=TOKEN):
            good = DaprClient()
        try:
            expect_error(lambda: anonymous.get_state(S, "k"), grpc.StatusCode.UNAUTHENTICATED)
            expect_error(lambda: wrong.get_state(S, "k"), grpc.StatusCode.UNAUTHENTICATED)
            good.save_state(S, "k", "with token")
            equal(good.get_state(S, "k").data, b"with token", "get with the token")
        finally:
            for c in (anonymous, wrong, good):
                c.close()
    check("DAPR_API_TOKEN: UNAUTHENTICATED without or with a wrong token, OK with it", api_token)

    def shutdown():
        d.shutdown()
        try:
            code = main_sc.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("the sidecar was still running 10 s after Shutdown") from None
        equal(code, 0, "exit code")
    check("shutdown() stops the sidecar", shutdown)
    d.close()

    summary = "all checks passed" if not failed else f"{len(failed)} check(s) failed: {', '.join(failed)}"
    print(f"interop: {summary}")
    print(f"interop: {len(passed)} passed, {len(failed)} failed")
    return 0 if not failed else 1


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isfile(sys.argv[1]):
        print(f"usage: python interop.py PATH_TO_REFERENCE_RUNTIME_BINARY (got {sys.argv[1:]})", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(os.path.abspath(sys.argv[1])))
