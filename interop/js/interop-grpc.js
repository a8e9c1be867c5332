// The official Dapr JavaScript SDK (@dapr/dapr) in gRPC mode, unchanged, against the certify
// reference runtime's gRPC API (dapr.proto.runtime.v1.Dapr): the readiness probe, state (ETags,
// bulk, transactions, query), publish and bulk publish to the app, output bindings, secrets,
// configuration, locks, metadata, service invocation (InvokeService) and shutdown. The app is
// a small HTTP server here (the reference runtime has no gRPC app channel).
//
// Usage: node interop-grpc.js PATH_TO_REFERENCE_RUNTIME_BINARY
// Exits 0 when every check passed, 1 otherwise; prints one line per check.

"use strict";

const http = require("node:http");
const path = require("node:path");
const protobuf = require("protobufjs");
const { DaprClient, CommunicationProtocolEnum, HttpMethod, LogLevel } = require("@dapr/dapr");
const { LockStatus } = require("@dapr/dapr/types/lock/UnlockResponse");
const common = require("./common");
const { assertEqual, checker, freePort, startSidecar, until, withDeadline } = common;

const binary = common.binaryArg("interop-grpc.js");
const APP_ID = "interop";
const CHECK_DEADLINE_MS = 20000;

// interop.js's components, plus a configuration store and a binding that answers with data.
const RESOURCES = (dir) => `${common.RESOURCES}---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: configstore}
spec: {type: configuration.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: files}
spec:
  type: bindings.localstorage
  version: v1
  metadata:
  - {name: rootPath, value: "${path.join(dir, "files")}"}
`;

// --- gRPC statuses as the SDK surfaces them (ConnectError from @connectrpc/connect) -----------

const CODES = ["OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
  "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
  "Internal", "Unavailable", "DataLoss", "Unauthenticated"];
const Code = Object.fromEntries(CODES.map((name, i) => [name, i]));

// google.rpc.ErrorInfo, which daprd's rich errors carry in grpc-status-details-bin.
const ErrorInfo = protobuf
  .parse(`syntax = "proto3"; package google.rpc;
    message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }`)
  .root.lookupType("google.rpc.ErrorInfo");

function errorInfo(err) {
  const detail = (err.details || []).find((d) => d.type === "google.rpc.ErrorInfo");
  return detail ? ErrorInfo.toObject(ErrorInfo.decode(detail.value)) : undefined;
}

/** The call fails with gRPC `code` and, for daprd's rich errors, ErrorInfo `reason`. */
async function expectRpcError(what, call, code, reason) {
  let err;
  try {
    await call();
  } catch (e) {
    err = e && e.error instanceof Error ? e.error : e; // pubsub.publish rethrows as { error }
  }
  if (err === undefined) throw new Error(`${what}: expected ${CODES[code]}, the call succeeded`);
  if (err.name !== "ConnectError" || typeof err.code !== "number") {
    throw new Error(`${what}: expected a gRPC status, got ${err && err.stack ? err.stack : JSON.stringify(err)}`);
  }
  assertEqual(CODES[err.code], CODES[code], `${what}: status code (message ${JSON.stringify(err.rawMessage)})`);
  if (reason !== undefined) {
    const info = errorInfo(err);
    assertEqual(info && [info.reason, info.domain], [reason, "dapr.io"], `${what}: ErrorInfo [reason, domain]`);
  }
  return err;
}

/**
 * Records what the SDK's ConnectRPC client sent and received on `method`: the request, then
 * the answer (unary) or each message (server stream). Observes only; the SDK is unchanged.
 */
function spy(daprClient, method) {
  const rpc = daprClient.daprClient.client;
  const original = rpc[method];
  const calls = [];
  rpc[method] = (request, options) => {
    const call = { request, messages: [], answer: undefined, error: undefined };
    calls.push(call);
    const result = original.call(rpc, request, options);
    if (typeof result.then === "function") {
      return result.then(
        (answer) => ((call.answer = answer), answer),
        (error) => {
          call.error = error;
          throw error;
        },
      );
    }
    return (async function* () {
      try {
        for await (const message of result) {
          call.messages.push(message);
          yield message;
        }
      } catch (error) {
        call.error = error;
        throw error;
      }
    })();
  };
  return { calls, restore: () => (rpc[method] = original) };
}

// --- the app the sidecar calls ------------------------------------------------------------

const SUBSCRIPTIONS = [
  { pubsubname: "pubsub", topic: "orders", route: "/orders" },
  { pubsubname: "pubsub", topic: "bulk", route: "/bulk" },
];

const received = []; // { method, path, headers, body } of every request the sidecar made

function app(req, res) {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString();
    const route = req.url.split("?")[0];
    received.push({ method: req.method, path: route, headers: req.headers, body });
    const answer = (status, value, type = "application/json") => {
      const text = typeof value === "string" ? value : JSON.stringify(value);
      res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(text) });
      res.end(text);
    };
    if (req.method === "GET" && route === "/dapr/subscribe") return answer(200, SUBSCRIPTIONS);
    if (req.method === "OPTIONS" && route === "/events") return answer(200, ""); // listen on the binding
    if (req.method === "POST" && ["/orders", "/bulk", "/events"].includes(route)) return answer(200, { status: "SUCCESS" });
    if (route === "/hello") {
      const name = body ? JSON.parse(body).name : undefined;
      return answer(200, { greeting: `hello ${name}`, method: req.method, contentType: req.headers["content-type"] });
    }
    answer(404, "no such method", "text/plain");
  });
}

const at = (route) => received.filter((r) => r.method === "POST" && r.path === route);

// --- the checks -----------------------------------------------------------------------------

async function main() {
  const [httpPort, grpcPort, appPort] = [await freePort(), await freePort(), await freePort()];
  const server = http.createServer(app);
  await new Promise((resolve, reject) => server.once("error", reject).listen(appPort, "127.0.0.1", resolve));
  server.unref();
  const sidecar = startSidecar(binary, {
    appPort,
    httpPort,
    grpcPort,
    resources: RESOURCES,
    env: { INTEROP_db_password: "s3cr3t" },
  });
  const exited = new Promise((resolve) => sidecar.child.once("exit", (code, signal) => resolve({ code, signal })));

  const { check: report, failures } = checker();
  const check = (name, body) => report(name, () => withDeadline(body(), CHECK_DEADLINE_MS, name));
  const skip = (name, why) => console.log(`SKIPPED  ${name}: ${why}`);
  const finish = () => {
    console.log(
      failures.length === 0
        ? "interop-grpc: all checks passed"
        : `interop-grpc: ${failures.length} check(s) failed: ${failures.join(", ")}`,
    );
    process.exit(failures.length === 0 ? 0 : 1);
  };

  const client = new DaprClient({
    daprHost: "127.0.0.1",
    daprPort: String(grpcPort),
    communicationProtocol: CommunicationProtocolEnum.GRPC,
    logger: { level: LogLevel.Error },
  });

  await check("client start: the SDK's readiness probe (GetMetadata) over gRPC", async () => {
    assertEqual(client.options.communicationProtocol, CommunicationProtocolEnum.GRPC, "protocol");
    const died = exited.then(({ code, signal }) => {
      throw new Error(`the sidecar exited (code ${code}, signal ${signal})`);
    });
    await Promise.race([client.start(), died]);
    assertEqual(client.getIsInitialized(), true, "initialized");
  });
  if (failures.length) return finish(); // every other check would wait on the probe again

  // Deliveries need the app's subscriptions read: the HTTP health endpoint says when.
  await until(
    "the sidecar to read the app's subscriptions (/v1.0/healthz 204)",
    async () => {
      try {
        return (await fetch(`http://127.0.0.1:${httpPort}/v1.0/healthz`)).status === 204;
      } catch {
        return false;
      }
    },
    20000,
  );

  const S = "statestore";

  await check("state save, get and delete (SaveState, GetState, DeleteState)", async () => {
    await client.state.save(S, [{ key: "planet", value: { name: "Tatooine", suns: 2 } }, { key: "greeting", value: "hello" }]);
    assertEqual(await client.state.get(S, "planet"), { name: "Tatooine", suns: 2 }, "object value");
    assertEqual(await client.state.get(S, "greeting"), "hello", "string value");
    await client.state.delete(S, "planet");
    assertEqual(await client.state.get(S, "planet"), "", "get after delete");
    assertEqual(await client.state.get(S, "never-written"), "", "missing key");
  });

  await check("state unknown store is InvalidArgument with DAPR_STATE_NOT_FOUND", async () => {
    const err = await expectRpcError("get", () => client.state.get("nope", "k"), Code.InvalidArgument, "DAPR_STATE_NOT_FOUND");
    assertEqual((errorInfo(err).metadata || {}).appID, APP_ID, "ErrorInfo.metadata.appID");
  });

  await check("state ETag: a stale etag is Aborted (ERR_STATE_SAVE, ERR_STATE_DELETE)", async () => {
    await client.state.save(S, [{ key: "versioned", value: "v1" }]);
    // state.get gives no etag in the SDK; getBulk does.
    const [first] = await client.state.getBulk(S, ["versioned"]);
    if (!first || !first.etag) throw new Error(`getBulk returned no etag: ${JSON.stringify(first)}`);
    await client.state.save(S, [{ key: "versioned", value: "v2", etag: first.etag }]);
    await expectRpcError(
      "save with the stale etag",
      () => client.state.save(S, [{ key: "versioned", value: "v3", etag: first.etag }]),
      Code.Aborted,
      "ERR_STATE_SAVE",
    );
    await expectRpcError(
      "delete with the stale etag",
      () => client.state.delete(S, "versioned", { etag: first.etag }),
      Code.Aborted,
      "ERR_STATE_DELETE",
    );
    assertEqual(await client.state.get(S, "versioned"), "v2", "value after the rejected writes");
  });

  await check("state bulk get (GetBulkState)", async () => {
    await client.state.save(S, [{ key: "a", value: "1" }, { key: "b", value: { n: 2 } }]);
    const bulk = await client.state.getBulk(S, ["a", "b", "absent"]);
    const byKey = Object.fromEntries(bulk.map((i) => [i.key, i.data]));
    assertEqual(byKey, { a: 1, b: { n: 2 }, absent: "" }, "bulk items"); // the SDK JSON-parses "1"
    const etags = Object.fromEntries(bulk.map((i) => [i.key, Boolean(i.etag)]));
    assertEqual(etags, { a: true, b: true, absent: false }, "etag present");
  });

  await check("state transaction (ExecuteStateTransaction: upsert + delete)", async () => {
    await client.state.save(S, [{ key: "tx-old", value: "doomed" }]);
    // The SDK's gRPC transaction takes string values (it calls Buffer.from on them).
    await client.state.transaction(S, [
      { operation: "upsert", request: { key: "tx-new", value: JSON.stringify({ n: 3 }) } },
      { operation: "delete", request: { key: "tx-old" } },
    ]);
    const bulk = await client.state.getBulk(S, ["tx-new", "tx-old"]);
    assertEqual(Object.fromEntries(bulk.map((i) => [i.key, i.data])), { "tx-new": { n: 3 }, "tx-old": "" }, "after");
  });

  await check("state query with a filter and sort (QueryStateAlpha1)", async () => {
    await client.state.save(S, [
      { key: "q1", value: { color: "red", n: 1 } },
      { key: "q2", value: { color: "blue", n: 2 } },
      { key: "q3", value: { color: "red", n: 3 } },
    ]);
    const answer = await client.state.query(S, {
      filter: { EQ: { color: "red" } },
      sort: [{ key: "n", order: "DESC" }],
      page: { limit: 10 },
    });
    const rows = answer.results.map((r) => [r.key, JSON.parse(Buffer.from(r.data).toString()).n]);
    assertEqual(rows, [["q3", 3], ["q1", 1]], "query results");
  });

  await check("publish reaches the app's route as a CloudEvent (PublishEvent)", async () => {
    await client.pubsub.publish("pubsub", "orders", { orderId: 42 });
    await until("the event at /orders", async () => at("/orders").length >= 1);
    const { headers, body } = at("/orders")[0];
    assertEqual((headers["content-type"] || "").split(";")[0], "application/cloudevents+json", "content type");
    const event = JSON.parse(body);
    const fields = ["specversion", "type", "source", "topic", "pubsubname", "datacontenttype", "data"];
    assertEqual(Object.fromEntries(fields.map((k) => [k, event[k]])), {
      specversion: "1.0",
      type: "com.dapr.event.sent",
      source: APP_ID,
      topic: "orders",
      pubsubname: "pubsub",
      datacontenttype: "application/json",
      data: { orderId: 42 },
    }, "CloudEvent");
    if (!event.id) throw new Error(`CloudEvent without an id: ${body}`);
    await expectRpcError("publish to an unknown pubsub", () => client.pubsub.publish("nope", "orders", { x: 1 }),
      Code.InvalidArgument, "DAPR_PUBSUB_NOT_FOUND");
  });

  await check("bulk publish reaches the app (publishBulk: BulkPublishEventAlpha1)", async () => {
    const answer = await client.pubsub.publishBulk("pubsub", "bulk", [{ n: 1 }, { n: 2 }, "plain text"]);
    const failed = answer.failedMessages.map((f) => `${JSON.stringify(f.message.event)}: ${f.error}`);
    assertEqual(failed, [], "failed messages");
    await until("three events at /bulk", async () => at("/bulk").length >= 3);
    const events = at("/bulk").map((r) => JSON.parse(r.body));
    const got = events.map((e) => [e.datacontenttype, e.data]).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
    assertEqual(got, [["application/json", { n: 1 }], ["application/json", { n: 2 }], ["text/plain", "plain text"]], "events");
  });

  await check("output binding send arrives at the app as an input binding event (InvokeBinding)", async () => {
    await client.binding.send("events", "create", { sensor: "t1", value: 21.5 });
    await until("a binding event at /events", async () => at("/events").length >= 1);
    assertEqual(JSON.parse(at("/events")[0].body), { sensor: "t1", value: 21.5 }, "event");
  });

  await check("output binding create then get answers with the data (bindings.localstorage)", async () => {
    const metadata = { fileName: "greeting.txt" };
    await client.binding.send("files", "create", "hello binding", metadata);
    const got = await client.binding.send("files", "get", undefined, metadata);
    assertEqual(Buffer.from(got.data).toString(), "hello binding", "get");
    await expectRpcError("an unknown binding", () => client.binding.send("nope", "create", "x"), Code.Internal,
      "ERR_INVOKE_OUTPUT_BINDING");
  });

  await check("secrets get and bulk get (GetSecret, GetBulkSecret)", async () => {
    assertEqual(await client.secret.get("secretstore", "db_password"), { db_password: "s3cr3t" }, "get");
    const bulk = await client.secret.getBulk("secretstore");
    assertEqual(bulk.db_password, { db_password: "s3cr3t" }, "the bulk entry for db_password");
    await expectRpcError("an unknown store", () => client.secret.get("nope", "db_password"), Code.InvalidArgument);
  });

  await check("configuration get (GetConfiguration)", async () => {
    assertEqual(await client.configuration.get("configstore", ["absent"]), { items: {} }, "absent keys");
    await expectRpcError("an unknown store", () => client.configuration.get("nope", ["k"]), Code.InvalidArgument,
      "ERR_CONFIGURATION_STORE_NOT_FOUND");
  });

  await check("configuration subscribe then stop (SubscribeConfiguration stream, UnsubscribeConfiguration)", async () => {
    const sub = spy(client, "subscribeConfiguration");
    const unsub = spy(client, "unsubscribeConfiguration");
    try {
      const updates = [];
      const handle = await client.configuration.subscribeWithKeys("configstore", ["feature"], (u) => updates.push(u));
      await until("the stream's first message", async () => sub.calls.length === 1 && sub.calls[0].messages.length >= 1);
      const first = sub.calls[0].messages[0];
      if (!first.id) throw new Error(`the first message has no subscription id: ${JSON.stringify(first)}`);
      assertEqual(Object.keys(first.items), [], "items in the first message");
      await handle.stop(); // the SDK unsubscribes with the id the stream gave
      await until("UnsubscribeConfiguration's answer", async () => unsub.calls.length === 1 && (unsub.calls[0].answer || unsub.calls[0].error));
      const { request, answer, error } = unsub.calls[0];
      if (error) throw new Error(`UnsubscribeConfiguration failed: ${error.message}`);
      assertEqual([request.storeName, request.id], ["configstore", first.id], "UnsubscribeConfiguration request");
      assertEqual([answer.ok, answer.message], [true, ""], "UnsubscribeConfiguration answer");
      assertEqual(updates, [], "callbacks (the id-only message is not an update)");
    } finally {
      sub.restore();
      unsub.restore();
    }
  });
  skip("configuration update reaches the subscriber",
    "configuration.in-memory has no writer outside the runtime, so no item can change during the run");

  await check("lock and unlock statuses (TryLockAlpha1, UnlockAlpha1)", async () => {
    assertEqual((await client.lock.lock("lockstore", "res-1", "owner-a", 30)).success, true, "first lock");
    assertEqual((await client.lock.lock("lockstore", "res-1", "owner-b", 30)).success, false, "contended lock");
    const status = async (owner) => LockStatus[(await client.lock.unlock("lockstore", "res-1", owner)).status];
    assertEqual(await status("owner-b"), "LockBelongsToOthers", "unlock by another owner");
    assertEqual(await status("owner-a"), "Success", "unlock by the owner");
    assertEqual(await status("owner-a"), "LockDoesNotExist", "unlock again");
  });

  await check("metadata get and set (GetMetadata, SetMetadata)", async () => {
    const md = await client.metadata.get();
    assertEqual(md.id, APP_ID, "id");
    const types = Object.fromEntries(md.components.map((c) => [c.name, c.type]));
    assertEqual(types, {
      configstore: "configuration.in-memory",
      events: "bindings.in-memory",
      files: "bindings.localstorage",
      lockstore: "lock.in-memory",
      pubsub: "pubsub.in-memory",
      secretstore: "secretstores.local.env",
      statestore: "state.in-memory",
    }, "components");
    assertEqual(await client.metadata.set("interop-attribute", "on"), true, "set");
    assertEqual((await client.metadata.get()).extended["interop-attribute"], "on", "extended metadata after set");
  });

  await check("service invocation to the HTTP app (InvokeService; a 404 is NotFound)", async () => {
    const answer = await client.invoker.invoke(APP_ID, "hello", HttpMethod.POST, { name: "certify" });
    assertEqual(answer, { greeting: "hello certify", method: "POST", contentType: "application/json" }, "answer");
    await expectRpcError("a method the app lacks", () => client.invoker.invoke(APP_ID, "missing", HttpMethod.POST, {}),
      Code.NotFound);
  });

  skip("streaming subscription (SubscribeTopicEventsAlpha1)", "@dapr/dapr 3.18.0 has no gRPC client for it");

  await check("shutdown stops the sidecar (Shutdown)", async () => {
    await client.sidecar.shutdown();
    const { code, signal } = await withDeadline(exited, 10000, "the sidecar's exit after Shutdown");
    assertEqual([code, signal], [0, null], "exit [code, signal]");
  });

  await client.stop();
  finish();
}

common.watchdog("interop-grpc", 150000);

main().catch((e) => {
  console.error(`interop-grpc: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
