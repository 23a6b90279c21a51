// The LiveKit engine (@switchboardhq/client/livekit) on the real
// livekit-client package in real headless Chromium: with no LiveKit node to
// reach, one that refuses the join token, and one that never answers, each
// connect ends with the right MediaError and none hangs.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { build } from "esbuild";
import { tempDir } from "./harness.js";

const pkgRoot = resolve(fileURLToPath(import.meta.url), "../../..");
const chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find((p) => existsSync(p));

async function listen(s: Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return (s.address() as AddressInfo).port;
}

async function stop(s: Server): Promise<void> {
  s.closeAllConnections();
  await new Promise((r) => s.close(r));
}

test("the LiveKit engine maps unreachable, refusing and silent nodes to media errors in Chromium", { skip: chromium ? false : "chromium is not installed" }, async () => {
  const bundle = await build({
    entryPoints: [resolve(pkgRoot, "test/fixtures/livekit-page.ts")],
    bundle: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    write: false,
    logLevel: "silent",
  });
  const js = bundle.outputFiles[0]?.text ?? "";
  const sockets = new Set<Socket>();

  // A closed port: nothing listens there.
  const gone = createServer();
  const closed = await listen(gone);
  await stop(gone);

  // A LiveKit node that refuses the token: the WebSocket upgrade is answered
  // 401, and so is the validate endpoint livekit-client asks afterwards.
  const refusing = createServer((req, res) => {
    res.writeHead(req.url?.includes("validate") ? 401 : 404, { "Access-Control-Allow-Origin": "*", "Content-Type": "text/plain" });
    res.end("invalid token: signature is invalid");
  });
  refusing.on("upgrade", (_req: IncomingMessage, socket: Socket) => {
    socket.end("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  });
  // A node that accepts connections and never answers.
  const silent = createServer(() => undefined);
  silent.on("upgrade", (_req: IncomingMessage, socket: Socket) => sockets.add(socket));
  const [refusingPort, silentPort] = [await listen(refusing), await listen(silent)];

  let resolveResult: (v: string) => void = () => undefined;
  const result = new Promise<string>((r) => (resolveResult = r));
  const page = createServer((req, res) => {
    if (req.url?.startsWith("/page.js")) {
      res.writeHead(200, { "Content-Type": "text/javascript" });
      res.end(js);
    } else if (req.url === "/result" && req.method === "POST") {
      let body = "";
      req.setEncoding("utf8").on("data", (c: string) => (body += c));
      req.on("end", () => {
        res.end();
        resolveResult(body);
      });
    } else {
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end(`<!doctype html><title>livekit engine</title><script type="module" src="/page.js"></script>`);
    }
  });
  const pagePort = await listen(page);
  const [dir, rm] = tempDir();
  const browser = spawn(
    chromium ?? "chromium",
    ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions", "--disable-background-networking", `--user-data-dir=${dir}`,
      `http://127.0.0.1:${pagePort}/?closed=${closed}&refusing=${refusingPort}&silent=${silentPort}`],
    { stdio: "ignore", detached: true },
  );
  try {
    // The limit only ends a test that would otherwise hang.
    const limit = new Promise<string>((_, rej) => setTimeout(() => rej(new Error("no result from the page in 60 s: a connect hung")), 60_000).unref());
    const outcomes = JSON.parse(await Promise.race([result, limit])) as Array<{ scenario: string; ok: boolean; kind?: string; name?: string; message?: string }>;
    const by = Object.fromEntries(outcomes.map((o) => [o.scenario, o]));
    for (const s of ["unreachable", "refused", "silent"]) {
      assert.equal(by[s]?.ok, false, `${s}: ${JSON.stringify(by[s])}`);
      assert.equal(by[s]?.name, "MediaError", `${s}: ${JSON.stringify(by[s])}`);
    }
    assert.equal(by.unreachable?.kind, "connection_lost", JSON.stringify(by.unreachable));
    assert.equal(by.refused?.kind, "token_rejected", JSON.stringify(by.refused));
    assert.equal(by.silent?.kind, "connection_lost", JSON.stringify(by.silent));
    assert.match(by.silent?.message ?? "", /aborted/);
  } finally {
    if (browser.pid) {
      try {
        process.kill(-browser.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    for (const s of sockets) s.destroy();
    await Promise.all([stop(page), stop(refusing), stop(silent)]);
    rm();
  }
});
