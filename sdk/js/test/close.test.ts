// close() stops every timer, request and connection: a process whose client
// was closed exits on its own, and each stream is ended on the server.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { buildSwitchboard, ControlPlane, HealthEndpoint, tempDir } from "./harness.js";

let cp: ControlPlane;
let health: HealthEndpoint;
let cleanup: () => void = () => undefined;

before(async () => {
  const [dir, rm] = tempDir();
  cleanup = rm;
  health = new HealthEndpoint();
  await health.start();
  cp = new ControlPlane(await buildSwitchboard(dir), dir);
  await cp.start();
});

after(async () => {
  await cp?.kill();
  await health?.close();
  cleanup();
});

test("close leaves no timer, request or connection, and ends every stream on the server", async () => {
  await cp.addProvider("c1", 1, health);
  await cp.addProvider("c2", 2, health);
  await cp.check("c1");
  await cp.check("c2");
  const token = await cp.clientToken();
  const child = spawn(process.execPath, [join(fileURLToPath(import.meta.url), "../fixtures/close-child.js")], {
    env: { ...process.env, SB_URL: cp.url, SB_TOKEN: token, SB_P1: "c1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let errOut = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (errOut += s));
  // The child must exit by itself once it printed; the limit only stops a hung test.
  const code = await new Promise<number | string>((res) => {
    const t = setTimeout(() => {
      child.kill("SIGKILL");
      res("still running 30 s later: close left something behind");
    }, 30_000);
    child.once("exit", (c, sig) => {
      clearTimeout(t);
      res(c ?? String(sig));
    });
  });
  assert.equal(code, 0, `child: ${errOut}\n${out}`);
  const r = JSON.parse(out) as { ids: string[]; ended: boolean[]; pending: string; before: string[]; after: string[] };
  assert.ok(r.before.includes("Timeout"), "the client had timers running before close: " + r.before.join(","));
  assert.deepEqual(r.after.filter((x) => x === "Timeout" || x === "Immediate"), [], "timers left after close: " + r.after.join(","));
  assert.deepEqual(r.ended, [true, true, true]);
  assert.equal(r.pending, "ClosedError", "a start in flight rejects with ClosedError");
  for (const id of r.ids) assert.notEqual((await cp.stream(id)).status, "active", `stream ${id} ended on the server`);
});
