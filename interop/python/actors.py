"""The official Dapr Python SDK's virtual actors (`dapr.actor` from the `dapr` 1.19.0 wheel:
ActorProxy, Actor, Remindable, ActorRuntime; hosted by `dapr.ext.fastapi.DaprActor`, in the
same wheel since 1.19 and installed with its `fastapi` extra, on a FastAPI app served by
uvicorn; all unchanged) against the certify reference runtime over Dapr's actor HTTP API:
the sidecar reads the app's /dapr/config, calls actor methods, keeps actor state, fires
reminders and timers, deactivates idle actors and gives one actor id one turn at a time.

Usage: python actors.py PATH_TO_REFERENCE_RUNTIME_BINARY
Prints one `PASS  name` or `FAIL  name: why` line per check and exits 0 when every check
passed, 1 otherwise.
"""

import asyncio
import contextlib
import json
import os
import socket
import sys
import threading
import time
import urllib.request
from datetime import timedelta

from interop import Sidecar, equal, free_port, until  # what interop.py has

APP_ID = "pyactors"
OVERALL_TIMEOUT_S = 90
CALL_TIMEOUT_S = 20  # each client-side coroutine (the SDK's HTTP calls have a 15 s timeout too)
IDLE_TIMEOUT = timedelta(seconds=1)  # CounterActor's actorIdleTimeout, through entitiesConfig

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


# --- what the actors saw ----------------------------------------------------------------------

class Recorder:
    """Appended to from uvicorn's thread (the actors), read from the main one (the checks)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = {}

    def add(self, kind, item):
        with self.lock:
            self.seen.setdefault(kind, []).append(item)

    def get(self, kind):
        with self.lock:
            return list(self.seen.get(kind, []))


RECORDER = Recorder()


# --- the app: actors hosted by the SDK's FastAPI extension ----------------------------------

def build_app():
    from dapr.actor import Actor, ActorInterface, Remindable, actormethod
    from dapr.actor.runtime.config import ActorRuntimeConfig, ActorTypeConfig
    from dapr.actor.runtime.runtime import ActorRuntime
    from dapr.ext.fastapi import DaprActor
    from fastapi import FastAPI

    class ProbeInterface(ActorInterface):
        @actormethod(name="Echo")
        async def echo(self, data: dict) -> dict: ...

        @actormethod(name="StartReminder")
        async def start_reminder(self) -> None: ...

        @actormethod(name="StopReminder")
        async def stop_reminder(self) -> None: ...

        @actormethod(name="StartTimer")
        async def start_timer(self) -> None: ...

        @actormethod(name="StopTimer")
        async def stop_timer(self) -> None: ...

        @actormethod(name="Slow")
        async def slow(self, tag: str) -> str: ...

    class ProbeActor(Actor, ProbeInterface, Remindable):
        async def echo(self, data: dict) -> dict:
            return {"id": self.id.id, "echo": data}

        async def start_reminder(self) -> None:
            await self.register_reminder("ping", b"reminder state", timedelta(seconds=1), timedelta(seconds=1))

        async def stop_reminder(self) -> None:
            await self.unregister_reminder("ping")

        async def receive_reminder(self, name, state, due_time, period, ttl=None) -> None:
            RECORDER.add("reminder", (self.id.id, name, state))

        async def start_timer(self) -> None:
            await self.register_timer("tick", self.on_tick, "timer state", timedelta(milliseconds=500),
                                      timedelta(milliseconds=500))

        async def stop_timer(self) -> None:
            await self.unregister_timer("tick")

        async def on_tick(self, state) -> None:
            RECORDER.add("timer", (self.id.id, state))

        async def slow(self, tag: str) -> str:
            entered = time.monotonic()
            await asyncio.sleep(0.5)  # the event loop is free meanwhile: only the sidecar keeps turns apart
            RECORDER.add("turn", (tag, entered, time.monotonic()))
            return tag

    class CounterInterface(ActorInterface):
        @actormethod(name="Add")
        async def add(self, n: int) -> int: ...

        @actormethod(name="Get")
        async def get(self) -> int: ...

    class CounterActor(Actor, CounterInterface):
        async def _on_activate(self) -> None:
            RECORDER.add("activate", self.id.id)

        async def _on_deactivate(self) -> None:
            RECORDER.add("deactivate", self.id.id)

        async def add(self, n: int) -> int:
            total = (await self._state_manager.get_or_add_state("count", 0)) + n
            await self._state_manager.set_state("count", total)
            return total  # the SDK saves the change (a state transaction) once the method returned

        async def get(self) -> int:
            found, value = await self._state_manager.try_get_state("count")
            return value if found else -1

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        # CounterActor idles out quickly, so its next call activates a new instance whose
        # StateManager reads the state from the sidecar rather than from its own cache.
        ActorRuntime.set_actor_config(ActorRuntimeConfig(
            actor_type_configs=[ActorTypeConfig("CounterActor", actor_idle_timeout=IDLE_TIMEOUT,
                                                actor_scan_interval=timedelta(milliseconds=200))]))
        await actor.register_actor(ProbeActor)
        await actor.register_actor(CounterActor)
        yield

    app = FastAPI(lifespan=lifespan)
    actor = DaprActor(app)
    return app, ProbeInterface, CounterInterface


class AppServer:
    """uvicorn serving the app on a thread (its own event loop); started() waits for the port."""

    def __init__(self, app, port):
        import uvicorn
        self.port = port
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def started(self):
        def listening():
            if not self.thread.is_alive():
                raise AssertionError("the uvicorn server ended")
            if not self.server.started:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        until("the FastAPI app to listen", listening, 10)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


# --- the checks -----------------------------------------------------------------------------

def main(binary):
    # Every SDK HTTP call (ActorProxy's, and the actors' own state, reminder and timer calls)
    # gets a 15 s timeout; read when the actors are registered and the proxy factory is built.
    os.environ.update(DAPR_HTTP_TIMEOUT_SECONDS="15", DAPR_API_TIMEOUT_SECONDS="15", DAPR_HEALTH_TIMEOUT="20")
    app, probe, counter = build_app()
    sidecars, servers = [], []

    def give_up():  # no wait may hang the run: past the deadline, kill everything and fail
        print(f"actors: timed out after {OVERALL_TIMEOUT_S} s", flush=True)
        for s in sidecars:
            s.proc.kill()
        os._exit(1)

    watchdog = threading.Timer(OVERALL_TIMEOUT_S, give_up)
    watchdog.daemon = True
    watchdog.start()
    try:
        try:
            # The sidecar first: the SDK's actor host waits for its /healthz/outbound when the
            # actors are registered (at the app's startup), and the sidecar is healthy only
            # once the app listens.
            app_port = free_port()
            sidecars.append(Sidecar(binary, RESOURCES, app_port, app_id=APP_ID))
            until("the sidecar's HTTP API", lambda: outbound_ready(sidecars[0]), 20)
            # Both sides of the SDK -- ActorProxy here, the actors' runtime client in the app --
            # reach the sidecar's HTTP API through DAPR_HTTP_ENDPOINT, read on every call.
            os.environ.update(sidecars[0].endpoints())
            servers.append(AppServer(app, app_port))
            servers[0].started()
            sidecars[0].wait_ready()
        except AssertionError as e:
            print(f"FAIL  the sidecar starts in front of the FastAPI actor app: {e}", flush=True)
            return 1
        return run_checks(probe, counter)
    finally:
        for s in sidecars:
            s.stop()
        for s in servers:
            s.stop()
        watchdog.cancel()


def outbound_ready(sidecar):
    if sidecar.proc.poll() is not None:
        raise AssertionError(f"the sidecar exited with {sidecar.proc.returncode}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{sidecar.http}/v1.0/healthz/outbound", timeout=1) as r:
            return r.status == 204
    except OSError:
        return False


def run_checks(probe, counter):
    from dapr.actor import ActorId, ActorProxy
    from dapr.clients.exceptions import DaprInternalError

    passed, failed = [], []

    def check(name, body):
        try:
            body()
            print(f"PASS  {name}", flush=True)
            passed.append(name)
        except Exception as e:  # noqa: BLE001 - a failed check is reported, not raised
            why = e.as_dict() if isinstance(e, DaprInternalError) else e
            print(f"FAIL  {name}: {type(e).__name__} {why}", flush=True)
            failed.append(name)

    def run(what, coro):
        """A client-side coroutine on a loop of its own, bounded."""
        try:
            return asyncio.run(asyncio.wait_for(coro, CALL_TIMEOUT_S))
        except asyncio.TimeoutError:
            raise AssertionError(f"timed out after {CALL_TIMEOUT_S} s waiting for {what}") from None

    def proxy(actor_type, actor_id, interface):
        return ActorProxy.create(actor_type, ActorId(actor_id), interface)

    def method_call():
        p = proxy("ProbeActor", "echo-1", probe)
        equal(run("Echo", p.Echo({"hi": 1})), {"id": "echo-1", "echo": {"hi": 1}}, "Echo through the proxy")
        raw = run("invoke_method('Echo')", p.invoke_method("Echo", b'{"n": [1, 2]}'))
        equal(json.loads(raw), {"id": "echo-1", "echo": {"n": [1, 2]}}, f"invoke_method's raw answer {raw!r}")
    check("ActorProxy calls an actor method and gets the actor's answer", method_call)

    def state_across_calls():
        p = proxy("CounterActor", "count-1", counter)
        equal(run("Add(2)", p.Add(2)), 2, "Add(2) on a new actor")
        equal(run("Add(3)", p.Add(3)), 5, "Add(3), reading the state the previous call saved")
        until(f"the idle CounterActor to be deactivated (actorIdleTimeout {IDLE_TIMEOUT.total_seconds():.0f}s)",
              lambda: "count-1" in RECORDER.get("deactivate"), 10)
        equal(run("Get", p.Get()), 5, "Get on a newly activated instance (state read from the sidecar)")
        equal(RECORDER.get("activate").count("count-1"), 2, "activations of count-1")
        other = proxy("CounterActor", "count-2", counter)
        equal(run("Get on another id", other.Get()), -1, "another actor id's state")
    check("actor state saved by the StateManager is read in the next call, also after idle deactivation",
          state_across_calls)

    def reminder():
        p = proxy("ProbeActor", "remind-1", probe)
        run("StartReminder", p.StartReminder())
        until("the reminder to fire at receive_reminder", lambda: RECORDER.get("reminder"), 5)
        equal(RECORDER.get("reminder")[0], ("remind-1", "ping", b"reminder state"), "(actor id, name, state)")
        run("StopReminder", p.StopReminder())
        time.sleep(0.5)  # a fire queued behind StopReminder's turn may still land
        fired = len(RECORDER.get("reminder"))
        time.sleep(2.5)  # more than two periods
        equal(len(RECORDER.get("reminder")), fired, "fires after unregister_reminder")
    check("register_reminder fires receive_reminder (Remindable) with its state; unregister_reminder stops it",
          reminder)

    def timer():
        p = proxy("ProbeActor", "timer-1", probe)
        run("StartTimer", p.StartTimer())
        until("the timer to fire twice", lambda: len(RECORDER.get("timer")) >= 2, 5)
        equal(RECORDER.get("timer")[:2], [("timer-1", "timer state")] * 2, "(actor id, state) of the fires")
        run("StopTimer", p.StopTimer())
        time.sleep(0.5)
        fired = len(RECORDER.get("timer"))
        time.sleep(1.5)  # three periods
        equal(len(RECORDER.get("timer")), fired, "fires after unregister_timer")
    check("register_timer fires its callback with its state each period; unregister_timer stops it", timer)

    def one_turn_at_a_time():
        p = proxy("ProbeActor", "turns-1", probe)

        async def both():
            return await asyncio.gather(p.Slow("a"), p.Slow("b"))
        started = time.monotonic()
        equal(sorted(run("two concurrent Slow calls", both())), ["a", "b"], "answers")
        elapsed = time.monotonic() - started
        turns = sorted(RECORDER.get("turn"), key=lambda t: t[1])
        equal(len(turns), 2, "turns recorded")
        (first, _, first_exit), (second, second_enter, _) = turns[0], turns[1]
        if second_enter < first_exit:
            raise AssertionError(f"turns overlap: {second} entered {first_exit - second_enter:.3f}s before {first} "
                                 f"exited (elapsed {elapsed:.2f}s)")
    check("two concurrent calls to one actor id take turns (no overlap)", one_turn_at_a_time)

    summary = "all checks passed" if not failed else f"{len(failed)} check(s) failed: {', '.join(failed)}"
    print(f"actors: {summary}")
    print(f"actors: {len(passed)} passed, {len(failed)} failed")
    return 0 if not failed else 1


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isfile(sys.argv[1]):
        print(f"usage: python actors.py PATH_TO_REFERENCE_RUNTIME_BINARY (got {sys.argv[1:]})", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(os.path.abspath(sys.argv[1])))
