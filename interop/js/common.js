// Helpers shared by interop.js (the SDK over HTTP) and interop-grpc.js (the SDK over gRPC):
// the components, free ports, waits with deadlines, the sidecar process and the check report.

"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

// The components both runs start: state, pub/sub, an in-memory binding (output and input),
// a lock store and the environment as a secret store.
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

/** The reference runtime binary from argv[2], or exit 2 with a usage line. */
function binaryArg(script) {
  const binary = process.argv[2];
  if (!binary || !fs.existsSync(binary)) {
    console.error(`usage: node ${script} PATH_TO_REFERENCE_RUNTIME_BINARY (got ${binary})`);
    process.exit(2);
  }
  return binary;
}

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

/** `promise`, or an error naming `what` once `ms` have passed. */
function withDeadline(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function assertEqual(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

/**
 * Starts `binary` as the app `interop`'s sidecar with `resources` (text, or a function of the
 * directory giving it) in a fresh resources directory; without `appPort` it runs with no app.
 * When this process exits, the child is killed and the directory removed.
 */
function startSidecar(binary, { appPort, httpPort, grpcPort, resources, env = {} }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certify-interop-"));
  fs.writeFileSync(path.join(dir, "components.yaml"), typeof resources === "function" ? resources(dir) : resources);
  const args = ["--app-id", "interop", "--dapr-http-port", String(httpPort)];
  if (appPort) args.push("--app-port", String(appPort));
  args.push("--dapr-grpc-port", String(grpcPort), "--resources-path", dir, "--log-level", "warn");
  const child = spawn(binary, args, { env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit"] });
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  };
  process.on("exit", () => {
    stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => process.exit(1));
  return { child, dir, stop };
}

/** Runs checks, printing `PASS  name` or `FAIL  name: why` for each. */
function checker() {
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
  return { check, failures };
}

/** Exits when `ms` have passed, whatever is still waiting. */
function watchdog(label, ms) {
  const timer = setTimeout(() => {
    console.error(`${label}: timed out after ${ms / 1000} s`);
    process.exit(1);
  }, ms);
  timer.unref();
}

module.exports = {
  RESOURCES,
  assertEqual,
  binaryArg,
  checker,
  freePort,
  sleep,
  startSidecar,
  until,
  watchdog,
  withDeadline,
};
