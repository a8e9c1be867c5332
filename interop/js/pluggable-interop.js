// certify against a pluggable component written in another language: the JavaScript state
// store of pluggable-store.js (gRPC libraries only) must pass the state suite through
// `certify run --pluggable`, and the same store breaking Dapr's ETag error convention must be
// caught, naming the convention.
//
// Usage: node pluggable-interop.js PATH_TO_CERTIFY_BINARY
// Exits 0 when every check passed, 1 otherwise; prints one line per check.

"use strict";

const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const certify = process.argv[2];
if (!certify || !fs.existsSync(certify)) {
  console.error(`usage: node pluggable-interop.js PATH_TO_CERTIFY_BINARY (got ${certify})`);
  process.exit(2);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certify-pluggable-js-"));
let failed = false;

function check(name, ok, detail) {
  console.log(`${ok ? "PASS" : "FAIL"}  ${name}${detail ? ` (${detail})` : ""}`);
  if (!ok) failed = true;
}

async function startStore(name, args = []) {
  const socket = path.join(dir, `${name}.sock`);
  const child = spawn(process.execPath, [path.join(__dirname, "pluggable-store.js"), socket, ...args], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  for (let i = 0; i < 100 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  if (!fs.existsSync(socket)) throw new Error(`the store did not listen on ${socket}`);
  return { socket, stop: () => child.kill("SIGTERM") };
}

function run(socket, filters = []) {
  const reports = fs.mkdtempSync(path.join(dir, "report-"));
  const out = spawnSync(certify, ["run", "--pluggable", socket, "--report-dir", reports, ...filters], {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    timeout: 120_000,
  });
  let report = null;
  try {
    report = JSON.parse(fs.readFileSync(path.join(reports, "report.json"), "utf8"));
  } catch (_) {}
  return { code: out.status, stdout: out.stdout, stderr: out.stderr, report };
}

(async () => {
  const store = await startStore("js-store");
  try {
    const r = run(store.socket);
    const count = (v) => (r.report ? r.report.cases.filter((c) => c.verdict === v).length : 0);
    check(
      "a JavaScript pluggable state store passes the state suite over gRPC",
      r.code === 0 && count("pass") >= 40,
      `${count("pass")} passed, ${count("fail")} failed, ${count("skipped")} skipped`,
    );
    if (r.code !== 0) console.log(r.stdout, r.stderr);
    const claims = r.report ? r.report.components[0].claims : [];
    check("its claims come from its Features", claims.includes("etag") && claims.includes("transaction"), claims.join(","));
  } finally {
    store.stop();
  }

  const bare = await startStore("js-bare", ["--bare-etag-errors"]);
  try {
    const id = "state.etag.stale-write-rejected";
    const r = run(bare.socket, [id]);
    const c = r.report && r.report.cases.find((x) => x.id === id);
    const reason = (c && c.reason) || "";
    check(
      "the same store answering ETag conflicts without the convention's detail is caught",
      r.code === 1 && c && c.verdict === "fail" && reason.includes("google.rpc.BadRequest"),
      reason.slice(0, 120),
    );
  } finally {
    bare.stop();
  }
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.log(`FAIL  the pluggable interop check could not run (${e.message})`);
  process.exit(1);
});
