// The official Dapr JavaScript SDK (@dapr/dapr, HTTP protocol), unchanged, against the
// certify reference runtime: state, transactions, publish and subscribe through DaprServer,
// an output binding received as an input binding, a secret, a lock, and service invocation.
//
// Usage: node interop.js PATH_TO_REFERENCE_RUNTIME_BINARY
// Exits 0 when every check passed, 1 otherwise; prints one line per check.

"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const {
  DaprClient,
  DaprServer,
  CommunicationProtocolEnum,
  DaprPubSubStatusEnum,
  HttpMethod,
  LogLevel,
} = require("@dapr/dapr");

const binary = process.argv[2];
if (!binary || !fs.existsSync(binary)) {
  console.error(`usage: node interop.js PATH_TO_REFERENCE_RUNTIME_BINARY (got ${binary})`);
  process.exit(2);
}

const RESOURCES = `
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec: {type: state.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub}
spec:
  type: pubsub.in-memory
  version: v1
  metadata:
  - {name: redeliveryBackoff, value: 20ms}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: events}
spec: {type: bindings.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: lockstore}
spec: {type: lock.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: secretstore}
spec:
  type: secretstores.local.env
  version: v1
  metadata:
  - {name: prefix, value: INTEROP_}
`;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, check, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function assertEqual(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

async function main() {
  const [daprPort, appPort] = [await freePort(), await freePort()];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certify-interop-"));
  fs.writeFileSync(path.join(dir, "components.yaml"), RESOURCES);
  const sidecar = spawn(
    binary,
    ["--app-id", "interop", "--app-port", String(appPort), "--dapr-http-port", String(daprPort), "--dapr-grpc-port", "0", "--resources-path", dir, "--log-level", "warn"],
    { env: { ...process.env, INTEROP_db_password: "s3cr3t" }, stdio: ["ignore", "inherit", "inherit"] },
  );
  const stop = () => {
    if (sidecar.exitCode === null) sidecar.kill("SIGTERM");
  };
  process.on("exit", stop);

  const failures = [];
  const check = async (name, body) => {
    try {
      await body();
      console.log(`PASS  ${name}`);
    } catch (e) {
      failures.push(name);
      console.log(`FAIL  ${name}: ${e && e.message ? e.message : e}`);
    }
  };

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

const overall = setTimeout(() => {
  console.error("interop: timed out after 120 s");
  process.exit(1);
}, 120000);
overall.unref();

main().catch((e) => {
  console.error(`interop: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
