// The official Dapr JavaScript SDK (@dapr/dapr, HTTP protocol), unchanged, hosting and calling
// virtual actors through the certify reference runtime: DaprServer hosts an AbstractActor type
// (the sidecar reads its /dapr/config and calls it over HTTP), ActorProxyBuilder on a DaprClient
// calls it; state through the SDK's StateManager (saved with the sidecar's actor state
// transaction), a reminder, a timer, one turn at a time per actor id, idle deactivation.
//
// Usage: node interop-actors.js PATH_TO_REFERENCE_RUNTIME_BINARY
// Exits 0 when every check passed, 1 otherwise; prints one line per check.

"use strict";

const {
  AbstractActor,
  ActorId,
  ActorProxyBuilder,
  CommunicationProtocolEnum,
  DaprClient,
  DaprServer,
  LogLevel,
  Temporal,
} = require("@dapr/dapr");
const { assertEqual, binaryArg, checker, freePort, sleep, startSidecar, until, watchdog } = require("./common");

const binary = binaryArg("interop-actors.js");

// One state store, flagged as the actors' store.
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

// The app's actor configuration as the SDK serves it on /dapr/config: idle actors are
// deactivated after 2 s, so that one check can watch a deactivation.
const ACTOR_OPTIONS = { actorIdleTimeout: "2s", actorScanInterval: "500ms" };

const ms = (milliseconds) => Temporal.Duration.from({ milliseconds });

// What the actors saw, by actor id: activations, deactivations, reminders, timer ticks, turns.
const seen = new Map();
function record(id) {
  if (!seen.has(id)) seen.set(id, { activated: 0, deactivated: 0, reminders: [], ticks: [], turns: [] });
  return seen.get(id);
}

class InteropActor extends AbstractActor {
  get key() {
    return this.getActorId().getId();
  }

  async onActivate() {
    record(this.key).activated += 1;
  }

  async onDeactivate() {
    record(this.key).deactivated += 1;
  }

  async greet(name) {
    return { greeting: `hello ${name}`, actor: this.key };
  }

  async setValue(name, value) {
    await this.getStateManager().setState(name, value);
    return { saved: name };
  }

  // Through the StateManager (its cache, else the sidecar).
  async getValue(name) {
    const [found, value] = await this.getStateManager().tryGetState(name);
    return { found, value: found ? value : null };
  }

  // Straight from the sidecar (GET /v1.0/actors/{type}/{id}/state/{key}), past the cache.
  async storedValue(name) {
    const [found, value] = await this.getStateProvider().tryLoadState(this.getActorType(), this.getActorId(), name);
    return { found, value: found ? value : null };
  }

  async removeValue(name) {
    await this.getStateManager().removeState(name);
    return { removed: name };
  }

  async startReminder(name, state) {
    await this.registerActorReminder(name, ms(200), ms(400), undefined, state);
    return { registered: name };
  }

  async stopReminder(name) {
    await this.unregisterActorReminder(name);
    return { unregistered: name };
  }

  async receiveReminder(data) {
    record(this.key).reminders.push({ at: Date.now(), data });
  }

  async startTimer(name, state) {
    await this.registerActorTimer(name, "onTick", ms(200), ms(300), undefined, state);
    return { registered: name };
  }

  async stopTimer(name) {
    await this.unregisterActorTimer(name);
    return { unregistered: name };
  }

  async onTick(data) {
    record(this.key).ticks.push({ at: Date.now(), data });
  }

  // A turn that takes a while, its start and end recorded.
  async slow(label, holdMs) {
    const turn = { label, enter: Date.now(), exit: 0 };
    record(this.key).turns.push(turn);
    await sleep(holdMs);
    turn.exit = Date.now();
    return { label };
  }
}

function overlaps(a, b) {
  return a.enter < b.exit && b.enter < a.exit;
}

async function main() {
  const [daprPort, appPort] = [await freePort(), await freePort()];
  const sidecar = startSidecar(binary, { appPort, httpPort: daprPort, grpcPort: 0, resources: RESOURCES });

  const { check, failures } = checker();

  const clientOptions = {
    daprHost: "127.0.0.1",
    daprPort: String(daprPort),
    communicationProtocol: CommunicationProtocolEnum.HTTP,
    logger: { level: LogLevel.Error },
    actor: ACTOR_OPTIONS,
  };
  const server = new DaprServer({
    serverHost: "127.0.0.1",
    serverPort: String(appPort),
    communicationProtocol: CommunicationProtocolEnum.HTTP,
    clientOptions,
    logger: { level: LogLevel.Error },
  });
  await server.actor.init();
  await server.actor.registerActor(InteropActor);
  await server.start();

  const client = new DaprClient(clientOptions);
  await until("the sidecar to be healthy", async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${daprPort}/v1.0/healthz`);
      return r.status === 204;
    } catch {
      return false;
    }
  });

  const builder = new ActorProxyBuilder(InteropActor, client);
  const actor = (id) => builder.build(new ActorId(id));

  await check("the app's /dapr/config (DaprServer) names the actor type and its options", async () => {
    const r = await fetch(`http://127.0.0.1:${appPort}/dapr/config`);
    const config = await r.json();
    assertEqual(config.entities, ["InteropActor"], "entities");
    assertEqual(config.actorIdleTimeout, "2s", "actorIdleTimeout");
  });

  await check("a method call through ActorProxyBuilder returns the actor's answer", async () => {
    assertEqual(await actor("greeter").greet("certify"), { greeting: "hello certify", actor: "greeter" }, "answer");
    assertEqual(record("greeter").activated, 1, "activations");
  });

  await check("actor state set in one call is read in another (StateManager, sidecar transaction)", async () => {
    const a = actor("keeper");
    assertEqual(await a.getValue("planet"), { found: false, value: null }, "before any set");
    assertEqual(await a.setValue("planet", { name: "Tatooine", suns: 2 }), { saved: "planet" }, "set");
    assertEqual(await a.getValue("planet"), { found: true, value: { name: "Tatooine", suns: 2 } }, "get");
    assertEqual(await a.storedValue("planet"), { found: true, value: { name: "Tatooine", suns: 2 } }, "stored in the sidecar");
    // The sidecar's own state API, as any client sees it.
    const r = await fetch(`http://127.0.0.1:${daprPort}/v1.0/actors/InteropActor/keeper/state/planet`);
    assertEqual([r.status, await r.json()], [200, { name: "Tatooine", suns: 2 }], "GET /v1.0/actors/InteropActor/keeper/state/planet");
    // Another actor id does not see it.
    assertEqual(await actor("stranger").storedValue("planet"), { found: false, value: null }, "another id");
    // A removal is a delete in the transaction.
    assertEqual(await a.removeValue("planet"), { removed: "planet" }, "remove");
    assertEqual(await a.storedValue("planet"), { found: false, value: null }, "stored after remove");
  });

  await check("a reminder registered by the actor fires (receiveReminder), then stops once unregistered", async () => {
    const a = actor("reminded");
    assertEqual(await a.startReminder("wake", "reminder-payload"), { registered: "wake" }, "register");
    const fired = record("reminded").reminders;
    await until("two reminder deliveries", async () => fired.length >= 2, 5000);
    assertEqual(fired[0].data, "reminder-payload", "the reminder's data");
    const r = await fetch(`http://127.0.0.1:${daprPort}/v1.0/actors/InteropActor/reminded/reminders/wake`);
    if (r.status !== 200) throw new Error(`GET …/reminders/wake: expected 200, got ${r.status} ${await r.text()}`);
    assertEqual(await a.stopReminder("wake"), { unregistered: "wake" }, "unregister");
    await sleep(300); // a delivery already under way may still land
    const after = fired.length;
    await sleep(1200); // three periods
    assertEqual(fired.length, after, "deliveries after unregistering");
  });

  await check("a timer registered by the actor fires its callback, then stops once unregistered", async () => {
    const a = actor("ticking");
    assertEqual(await a.startTimer("tick", "timer-payload"), { registered: "tick" }, "register");
    const ticks = record("ticking").ticks;
    await until("two timer ticks", async () => ticks.length >= 2, 5000);
    assertEqual(ticks[0].data, "timer-payload", "the timer's data");
    assertEqual(await a.stopTimer("tick"), { unregistered: "tick" }, "unregister");
    await sleep(300);
    const after = ticks.length;
    await sleep(1000); // three periods
    assertEqual(ticks.length, after, "ticks after unregistering");
  });

  await check("two concurrent calls to one actor id run one after the other", async () => {
    const [x, y] = [actor("single"), actor("single")];
    const answers = await Promise.all([x.slow("first", 300), y.slow("second", 300)]);
    assertEqual(answers.map((a) => a.label).sort(), ["first", "second"], "answers");
    const [t1, t2] = record("single").turns;
    if (!t1 || !t2 || !t1.exit || !t2.exit) throw new Error(`expected two finished turns, got ${JSON.stringify(record("single").turns)}`);
    if (overlaps(t1, t2)) throw new Error(`turns overlap: ${JSON.stringify([t1, t2])}`);
  });

  await check("concurrent calls to two actor ids run side by side", async () => {
    await Promise.all([actor("left").slow("l", 400), actor("right").slow("r", 400)]);
    const [l, r] = [record("left").turns[0], record("right").turns[0]];
    if (!overlaps(l, r)) throw new Error(`turns of different ids did not overlap: ${JSON.stringify([l, r])}`);
  });

  await check("an idle actor is deactivated (actorIdleTimeout), its state outlives it", async () => {
    const a = actor("sleeper");
    await a.setValue("dream", "electric sheep");
    await until("the sidecar to deactivate the idle actor", async () => record("sleeper").deactivated >= 1, 8000);
    // A fresh activation, with an empty cache, reads the state back from the sidecar.
    assertEqual(await a.getValue("dream"), { found: true, value: "electric sheep" }, "state after reactivation");
    assertEqual(record("sleeper").activated, 2, "activations");
  });

  // The sidecar first, while the app can still take the deactivations it sends on the way out.
  const exited = new Promise((resolve) => sidecar.child.once("exit", resolve));
  sidecar.stop();
  await Promise.race([exited, sleep(5000)]);
  await server.stop();
  console.log(failures.length === 0 ? "interop-actors: all checks passed" : `interop-actors: ${failures.length} check(s) failed: ${failures.join(", ")}`);
  process.exit(failures.length === 0 ? 0 : 1);
}

watchdog("interop-actors", 90000);

main().catch((e) => {
  console.error(`interop-actors: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
