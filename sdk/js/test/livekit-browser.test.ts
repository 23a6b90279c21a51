// The LiveKit engine (@switchboardhq/client/livekit) on the real
// livekit-client package in real headless Chromium: with no LiveKit node to
// reach, one that refuses the join token, and one that never answers, each
// connect ends with the right MediaError and none hangs.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { test } from "node:test";
import { chromium, listen, runFixture, stop } from "./browser.js";

test("the LiveKit engine maps unreachable, refusing and silent nodes to media errors in Chromium", { skip: chromium ? false : "chromium is not installed" }, async () => {
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
  // A socket handed over on upgrade is the test's to watch: Chromium may
  // reset it, which is no failure of the test, and an unhandled error would be.
  refusing.on("upgrade", (_req: IncomingMessage, socket: Socket) => {
    socket.on("error", () => undefined);
    socket.end("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  });
  // A node that accepts connections and never answers.
  const silent = createServer(() => undefined);
  silent.on("upgrade", (_req: IncomingMessage, socket: Socket) => {
    socket.on("error", () => undefined);
    sockets.add(socket);
  });
  const [refusingPort, silentPort] = [await listen(refusing), await listen(silent)];

  try {
    const outcomes = JSON.parse(
      await runFixture({
        fixture: "livekit-page.ts",
        query: `?closed=${closed}&refusing=${refusingPort}&silent=${silentPort}`,
        limitMs: 60_000,
        hangMessage: "no result from the page in 60 s: a connect hung",
      }),
    ) as Array<{ scenario: string; ok: boolean; kind?: string; name?: string; message?: string }>;
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
    for (const s of sockets) s.destroy();
    await Promise.all([stop(refusing), stop(silent)]);
  }
});
