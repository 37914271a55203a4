// sdeliver's local Node.js runner: one invocation of a Lambda handler in a fresh process,
// as the nodejs22.x/nodejs24.x runtimes run it (see cli/local/runner.py, which starts it).
//
// argv: taskRoot handler functionName version invokedArn memoryMB requestId timeoutSeconds
//       runtime eventFile resultFile
// The event is read from eventFile; the outcome ({ok, result} or {ok: false, errorType,
// errorMessage}) is written to resultFile. The handler's console output is its log.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [taskRoot, handlerSpec, functionName, functionVersion, invokedFunctionArn, memory,
  awsRequestId, timeout, runtime, eventFile, resultFile] = process.argv.slice(2);
const deadline = Date.now() + Number(timeout) * 1000;
let finished = false;

function finish(outcome) {
  if (finished) return;
  finished = true;
  let document;
  try {
    document = JSON.stringify(outcome.ok ? { ok: true, result: outcome.result ?? null } : outcome);
  } catch (err) {
    document = JSON.stringify({ ok: false, errorType: "Runtime.MalformedResult",
      errorMessage: `the result cannot be serialised as JSON: ${err.message}` });
  }
  writeFileSync(resultFile, document);
}

function failure(err, type) {
  if (err instanceof Error) {
    console.error(err.stack || String(err));
    return { ok: false, errorType: type || err.name || "Error", errorMessage: err.message };
  }
  console.error(String(err));
  return { ok: false, errorType: type || "Error", errorMessage: String(err) };
}

// The handler's own AWS SDK v2 (`aws-sdk`), when it ships one, does not read
// AWS_ENDPOINT_URL: configure it once, before the handler loads, to reach the emulator.
function configureSdkV2() {
  const endpoint = process.env.AWS_ENDPOINT_URL;
  if (!endpoint) return;
  let AWS;
  try {
    AWS = createRequire(path.join(taskRoot, "index.js"))("aws-sdk");
  } catch {
    return; // no SDK v2 in the bundle
  }
  if (AWS && AWS.config && typeof AWS.config.update === "function") {
    AWS.config.update({ endpoint, s3ForcePathStyle: true, region: process.env.AWS_REGION });
  }
}

// "dir/file.fn" or "file.fn.nested": the module is up to the first dot after the last "/".
function splitHandler(spec) {
  const slash = spec.lastIndexOf("/");
  const dot = spec.indexOf(".", slash + 1);
  if (dot < 0) throw Object.assign(new Error(`Bad handler ${spec}`), { name: "Runtime.MalformedHandlerName" });
  return [spec.slice(0, dot), spec.slice(dot + 1).split(".")];
}

async function loadHandler() {
  const [modulePath, names] = splitHandler(handlerSpec);
  const base = path.resolve(taskRoot, modulePath);
  const file = [".js", ".mjs", ".cjs"].map((ext) => base + ext).find((f) => existsSync(f));
  if (!file) {
    throw Object.assign(new Error(`Cannot find module '${modulePath}'`), { name: "Runtime.ImportModuleError" });
  }
  let module;
  try {
    module = await import(pathToFileURL(file).href); // CommonJS and ES modules alike
  } catch (err) {
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { name: "Runtime.UserCodeSyntaxError" });
  }
  const find = (root) => names.reduce((found, name) => (found == null ? found : found[name]), root);
  const handler = find(module) ?? find(module.default);
  if (typeof handler !== "function") {
    throw Object.assign(new Error(`${handlerSpec} is undefined or not exported`), { name: "Runtime.HandlerNotFound" });
  }
  return handler;
}

const context = {
  functionName,
  functionVersion,
  invokedFunctionArn,
  memoryLimitInMB: memory,
  awsRequestId,
  logGroupName: `/aws/lambda/${functionName}`,
  logStreamName: "local",
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
};

async function main() {
  const event = JSON.parse(readFileSync(eventFile, "utf8"));
  configureSdkV2();
  const handler = await loadHandler();
  const isAsync = handler.constructor && handler.constructor.name === "AsyncFunction";
  if (!isAsync && handler.length >= 3) {
    if (runtime === "nodejs24.x" || Number((runtime.match(/^nodejs(\d+)/) || [])[1]) >= 24) {
      throw Object.assign(new Error(
        `callback-based function handlers are not supported on ${runtime}: make the handler async`,
      ), { name: "Runtime.CallbackHandlerDeprecated" });
    }
    // A callback handler: by default Lambda answers once the event loop is empty.
    await new Promise((resolve) => {
      const callback = (err, result) => {
        const outcome = err ? failure(err) : { ok: true, result };
        if (context.callbackWaitsForEmptyEventLoop) {
          process.once("beforeExit", () => { finish(outcome); resolve(); });
        } else {
          finish(outcome);
          process.exit(0);
        }
      };
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === "function") {
        returned.then((result) => { finish({ ok: true, result }); process.exit(0); },
          (err) => { finish(failure(err)); process.exit(0); });
      }
    });
    return;
  }
  // An async handler: the invocation ends when its promise settles, whatever else is pending.
  const result = await handler(event, context);
  finish({ ok: true, result });
}

main().then(
  () => { if (finished) process.exit(0); },
  (err) => { finish(failure(err, err && err.name && err.name.startsWith("Runtime.") ? err.name : undefined)); process.exit(0); },
);
process.on("uncaughtException", (err) => { finish(failure(err)); process.exit(1); });
process.on("unhandledRejection", (err) => { finish(failure(err, "Runtime.UnhandledPromiseRejection")); process.exit(1); });
