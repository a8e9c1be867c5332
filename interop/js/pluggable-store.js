// A Dapr pluggable state store written in JavaScript with nothing but the gRPC libraries
// (@grpc/grpc-js, @grpc/proto-loader, @grpc/reflection): the kind of component an author in
// another language brings to certify. It keeps items in memory, one map per component
// instance (`x-component-instance`), with ETags and transactions, and reports ETag conflicts
// by Dapr's convention (FAILED_PRECONDITION carrying one google.rpc.BadRequest naming field
// `etag`).
//
// Usage: node pluggable-store.js SOCKET [--bare-etag-errors]
// With --bare-etag-errors it answers ETag conflicts with a bare status instead, breaking the
// convention (certify must catch that).

"use strict";

const fs = require("node:fs");
const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");
const { ReflectionService } = require("@grpc/reflection");

const [socket, mode] = process.argv.slice(2);
if (!socket) {
  console.error("usage: node pluggable-store.js SOCKET [--bare-etag-errors]");
  process.exit(2);
}
const bareEtagErrors = mode === "--bare-etag-errors";

const PROTO_ROOT = path.join(__dirname, "..", "..", "pluggable", "proto");
const definition = protoLoader.loadSync(["dapr/proto/components/v1/state.proto"], {
  includeDirs: [PROTO_ROOT],
  keepCase: false,
  longs: Number,
  enums: Number,
  defaults: true,
});
const components = grpc.loadPackageDefinition(definition).dapr.proto.components.v1;

// google.rpc.Status and BadRequest, to put the convention's detail in grpc-status-details-bin.
const rpc = new protobuf.Root();
rpc.resolvePath = (_origin, target) =>
  target.startsWith("google/protobuf/") ? target : path.join(PROTO_ROOT, target);
rpc.loadSync("google/rpc/error_details.proto");
const Status = rpc.lookupType("google.rpc.Status");
const BadRequest = rpc.lookupType("google.rpc.BadRequest");

function etagError(code, description) {
  if (bareEtagErrors) return { code, details: description };
  const badRequest = BadRequest.encode({ fieldViolations: [{ field: "etag", description }] }).finish();
  const status = Status.encode({
    code,
    message: description,
    details: [{ type_url: "type.googleapis.com/google.rpc.BadRequest", value: badRequest }],
  }).finish();
  const metadata = new grpc.Metadata();
  metadata.set("grpc-status-details-bin", Buffer.from(status));
  return { code, details: description, metadata };
}

const mismatch = (key) => etagError(grpc.status.FAILED_PRECONDITION, `etag mismatch for key ${key}`);

// Items by instance, then key: { data, etag, contentType, metadata }.
const instances = new Map();
let version = 0;

function items(call) {
  const [instance = ""] = call.metadata.get("x-component-instance");
  if (!instances.has(instance)) instances.set(instance, new Map());
  return instances.get(instance);
}

const FIRST_WRITE = 1;

// Why a write of `key` with `etag` and `options` may not happen, or null.
function refusal(store, key, etag, options) {
  const current = store.get(key);
  if (etag && etag.value !== "") {
    if (!current || current.etag !== etag.value) return mismatch(key);
    return null;
  }
  if (options && options.concurrency === FIRST_WRITE && current) return mismatch(key);
  return null;
}

function put(store, request) {
  version += 1;
  store.set(request.key, {
    data: request.value,
    etag: String(version),
    contentType: request.contentType,
    metadata: request.metadata,
  });
}

function answer(store, key) {
  const item = store.get(key);
  if (!item) return { data: Buffer.alloc(0), metadata: {}, contentType: "" };
  return { data: item.data, etag: { value: item.etag }, metadata: item.metadata, contentType: item.contentType };
}

const unary = (body) => (call, callback) => {
  try {
    const refused = body(call);
    if (refused && refused.code !== undefined) callback(refused);
    else callback(null, refused || {});
  } catch (e) {
    callback({ code: grpc.status.INTERNAL, details: String(e) });
  }
};

const stateStore = {
  init: unary((call) => {
    instances.set((call.metadata.get("x-component-instance")[0] || ""), new Map());
  }),
  features: unary(() => ({ features: ["ETAG", "TRANSACTIONAL"] })),
  ping: unary(() => {}),
  get: unary((call) => answer(items(call), call.request.key)),
  set: unary((call) => {
    const store = items(call);
    const r = call.request;
    const refused = refusal(store, r.key, r.etag, r.options);
    if (refused) return refused;
    put(store, r);
  }),
  delete: unary((call) => {
    const store = items(call);
    const r = call.request;
    const refused = refusal(store, r.key, r.etag, r.options);
    if (refused) return refused;
    store.delete(r.key);
  }),
  bulkGet: unary((call) => {
    const store = items(call);
    return { items: call.request.items.map((g) => ({ key: g.key, ...answer(store, g.key), error: "" })) };
  }),
  bulkSet: unary((call) => {
    const store = items(call);
    for (const r of call.request.items) {
      const refused = refusal(store, r.key, r.etag, r.options);
      if (refused) return refused;
      put(store, r);
    }
  }),
  bulkDelete: unary((call) => {
    const store = items(call);
    for (const r of call.request.items) {
      const refused = refusal(store, r.key, r.etag, r.options);
      if (refused) return refused;
      store.delete(r.key);
    }
  }),
};

const transactional = {
  // All or nothing: every condition is checked against a copy first.
  transact: unary((call) => {
    const store = items(call);
    const draft = new Map(store);
    for (const op of call.request.operations) {
      const r = op.set || op.delete;
      const refused = refusal(draft, r.key, r.etag, r.options);
      if (refused) return refused;
      if (op.set) put(draft, op.set);
      else draft.delete(r.key);
    }
    store.clear();
    for (const [k, v] of draft) store.set(k, v);
  }),
};

const server = new grpc.Server();
server.addService(components.StateStore.service, stateStore);
server.addService(components.TransactionalStateStore.service, transactional);
// daprd discovers services through reflection v1alpha; this registers v1 and v1alpha.
new ReflectionService(definition, {
  services: ["dapr.proto.components.v1.StateStore", "dapr.proto.components.v1.TransactionalStateStore"],
}).addToServer(server);

if (fs.existsSync(socket)) fs.unlinkSync(socket);
server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (error) => {
  if (error) {
    console.error(`cannot listen on ${socket}: ${error.message}`);
    process.exit(1);
  }
  console.log(`listening on ${socket}${bareEtagErrors ? " (bare etag errors)" : ""}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.tryShutdown(() => process.exit(0)));
