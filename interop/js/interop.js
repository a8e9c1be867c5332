// The official Dapr JavaScript SDK (@dapr/dapr, HTTP protocol), unchanged, against the
// certify reference runtime: state, transactions, publish and subscribe through DaprServer,
// an output binding received as an input binding, a secret, a lock, and service invocation.
//
// Usage: node interop.js PATH_TO_REFERENCE_RUNTIME_BINARY
// Exits 0 when every check passed, 1 otherwise; prints one line per check.

"use strict";

const {
  DaprClient,
  DaprServer,
  CommunicationProtocolEnum,
  DaprPubSubStatusEnum,
  HttpMethod,
  LogLevel,
} = require("@dapr/dapr");
const { RESOURCES, assertEqual, binaryArg, checker, freePort, startSidecar, until, watchdog } = require("./common");

const binary = binaryArg("interop.js");

async function main() {
  const [daprPort, appPort] = [await freePort(), await freePort()];
  const { stop } = startSidecar(binary, {
    appPort,
    httpPort: daprPort,
    grpcPort: 0,
    resources: RESOURCES,
    env: { INTEROP_db_password: "s3cr3t" },
  });

  const { check, failures } = checker();

  const clientOptions = { daprHost: "127.0.0.1", daprPort: String(daprPort), communicationProtocol: CommunicationProtocolEnum.HTTP, logger: { level: LogLevel.Error } };
  const server = new DaprServer({ serverHost: "127.0.0.1", serverPort: String(appPort), communicationProtocol: CommunicationProtocolEnum.HTTP, clientOptions, logger: { level: LogLevel.Error } });

  const deliveries = [];
  await server.pubsub.subscribe("pubsub", "orders", async (data) => {
    deliveries.push(data);
    // The first delivery asks for a retry; the sidecar must deliver it again.
    return deliveries.length === 1 ? DaprPubSubStatusEnum.RETRY : DaprPubSubStatusEnum.SUCCESS;
  });
  const bindingEvents = [];
  await server.binding.receive("events", async (data) => {
    bindingEvents.push(data);
    return {};
  });
  await server.invoker.listen("hello", async (req) => ({ greeting: `hello ${JSON.parse(req.body || "{}").name}`, query: req.query }), { method: HttpMethod.POST });

  await server.start();
  const client = new DaprClient(clientOptions);
  await client.start();
  // Healthy once the sidecar has read the app's subscriptions and bindings.
  await until("the sidecar to be healthy", async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${daprPort}/v1.0/healthz`);
      return r.status === 204;
    } catch {
      return false;
    }
  });

  await check("state save, get and delete", async () => {
    await client.state.save("statestore", [{ key: "planet", value: { name: "Tatooine", suns: 2 } }]);
    assertEqual(await client.state.get("statestore", "planet"), { name: "Tatooine", suns: 2 }, "get");
    await client.state.delete("statestore", "planet");
    assertEqual(await client.state.get("statestore", "planet"), "", "get after delete");
  });

  await check("state bulk get and transaction", async () => {
    await client.state.save("statestore", [{ key: "a", value: "1" }, { key: "b", value: "2" }]);
    await client.state.transaction("statestore", [
      { operation: "upsert", request: { key: "c", value: { n: 3 } } },
      { operation: "delete", request: { key: "a" } },
    ]);
    const bulk = await client.state.getBulk("statestore", ["a", "b", "c"]);
    const byKey = Object.fromEntries(bulk.map((i) => [i.key, i.data]));
    assertEqual(byKey, { a: undefined, b: "2", c: { n: 3 } }, "bulk after transaction");
  });

  await check("publish, RETRY, then SUCCESS through DaprServer", async () => {
    await client.pubsub.publish("pubsub", "orders", { orderId: 42 });
    await until("two deliveries", async () => deliveries.length >= 2);
    assertEqual(deliveries[0], { orderId: 42 }, "first delivery");
    assertEqual(deliveries[1], { orderId: 42 }, "redelivery");
  });

  await check("output binding arrives as an input binding event", async () => {
    await client.binding.send("events", "create", { sensor: "t1", value: 21.5 });
    await until("a binding event", async () => bindingEvents.length >= 1);
    assertEqual(bindingEvents[0], { sensor: "t1", value: 21.5 }, "event");
  });

  await check("secret get", async () => {
    assertEqual(await client.secret.get("secretstore", "db_password"), { db_password: "s3cr3t" }, "secret");
  });

  await check("lock and unlock", async () => {
    assertEqual((await client.lock.lock("lockstore", "res-1", "owner-a", 30)).success, true, "first lock");
    assertEqual((await client.lock.lock("lockstore", "res-1", "owner-b", 30)).success, false, "contended lock");
    const unlocked = await client.lock.unlock("lockstore", "res-1", "owner-a");
    assertEqual(unlocked.status, 0, "unlock status (SUCCESS)");
  });

  await check("service invocation to the app", async () => {
    const answer = await client.invoker.invoke("interop", "hello", HttpMethod.POST, { name: "certify" });
    assertEqual(answer.greeting, "hello certify", "greeting");
  });

  await check("metadata lists the components", async () => {
    const md = await client.metadata.get();
    const names = md.components.map((c) => c.name).sort();
    assertEqual(names, ["events", "lockstore", "pubsub", "secretstore", "statestore"], "components");
  });

  await server.stop();
  stop();
  console.log(failures.length === 0 ? "interop: all checks passed" : `interop: ${failures.length} check(s) failed: ${failures.join(", ")}`);
  process.exit(failures.length === 0 ? 0 : 1);
}

watchdog("interop", 120000);

main().catch((e) => {
  console.error(`interop: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
