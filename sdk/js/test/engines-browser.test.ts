// The Agora and ZEGOCLOUD engines (@switchboardhq/client/agora and /zego) on
// the real agora-rtc-sdk-ng and zego-express-engine-webrtc, which load only
// in a browser, in real headless Chromium. Chromium sends every connection
// off this machine to a loopback proxy of the test that refuses it: the
// vendors' servers cannot be reached (as on a machine without a network),
// and the test sees which hosts the SDKs tried. Each page joins through the
// engine, then drives the engine's wiring with events emitted on real vendor
// objects, and posts what happened.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { test, type TestContext } from "node:test";
import { build } from "esbuild";
import { tempDir } from "./harness.js";

const pkgRoot = resolve(fileURLToPath(import.meta.url), "../../..");
const chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find((p) => existsSync(p));
const skip = chromium ? false : "chromium is not installed";

async function listen(s: Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return (s.address() as AddressInfo).port;
}

async function stop(s: Server): Promise<void> {
  s.closeAllConnections();
  await new Promise((r) => s.close(r));
}

type Outcome = { scenario: string; [k: string]: unknown };

/** Runs the bundled fixture page in Chromium; resolves with what it posted and the hosts it tried to reach. */
async function runPage(t: TestContext, fixture: string): Promise<{ outcomes: Map<string, Outcome>; hosts: string[] }> {
  const bundle = await build({
    entryPoints: [resolve(pkgRoot, "test/fixtures", fixture)],
    bundle: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    write: false,
    logLevel: "silent",
  });
  const js = bundle.outputFiles[0]?.text ?? "";
  const sockets = new Set<Socket>();
  // The network: a proxy that refuses every connection, and records where it was going.
  const hosts = new Set<string>();
  const proxy = createServer((req, res) => {
    hosts.add(new URL(req.url ?? "/", "http://unknown").host);
    res.writeHead(502).end();
  });
  proxy.on("connect", (req: { url?: string }, socket: Socket) => {
    hosts.add(req.url ?? "");
    socket.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
  });
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
      res.end(`<!doctype html><title>${fixture}</title><script type="module" src="/page.js"></script>`);
    }
  });
  page.on("connection", (s: Socket) => sockets.add(s));
  const [proxyPort, pagePort] = [await listen(proxy), await listen(page)];
  const [dir, rm] = tempDir();
  const browser = spawn(
    chromium ?? "chromium",
    [
      "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
      "--disable-background-networking", "--disable-component-update", "--disable-sync", `--user-data-dir=${dir}`,
      // Off this machine, nothing: names do not resolve, and every connection goes to the refusing proxy (loopback excepted).
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", `--proxy-server=http://127.0.0.1:${proxyPort}`,
      "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
      // A camera and a microphone for the tracks a publisher makes.
      "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
      `http://127.0.0.1:${pagePort}/`,
    ],
    { stdio: "ignore", detached: true },
  );
  try {
    // The limit only ends a test that would otherwise hang.
    const limit = new Promise<string>((_, rej) => setTimeout(() => rej(new Error("no result from the page in 90 s: something hung")), 90_000).unref());
    const outcomes = JSON.parse(await Promise.race([result, limit])) as Outcome[];
    t.diagnostic(`hosts the SDK tried to reach: ${[...hosts].join(" ")}`);
    return { outcomes: new Map(outcomes.map((o) => [o.scenario, o])), hosts: [...hosts] };
  } finally {
    if (browser.pid) {
      try {
        process.kill(-browser.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    for (const s of sockets) s.destroy();
    await Promise.all([stop(page), stop(proxy)]);
    rm();
  }
}

function get(outcomes: Map<string, Outcome>, scenario: string): Outcome {
  const o = outcomes.get(scenario);
  assert.ok(o, `no outcome for ${scenario}: ${JSON.stringify([...outcomes.keys()])}`);
  return o;
}

type Report = { kind: string; message: string };

test("the Agora engine on agora-rtc-sdk-ng in Chromium, with Agora unreachable", { skip }, async (t) => {
  const { outcomes, hosts } = await runPage(t, "agora-page.ts");
  assert.ok(hosts.some((h) => /agora\.io|sd-rtn\.com/.test(h)), `the SDK tried to reach Agora: ${hosts.join(" ")}`);

  // Joins that cannot reach Agora fail, typed, and leave nothing behind.
  for (const s of ["unreachable", "unreachable-publisher", "aborted"]) {
    const o = get(outcomes, s);
    t.diagnostic(`${s}: failed after ${String(o.ms)} ms: ${String(o.message)}`);
    assert.equal(o.ok, false, `${s}: ${JSON.stringify(o)}`);
    assert.equal(o.name, "MediaError", `${s}: ${JSON.stringify(o)}`);
    assert.equal(o.kind, "connection_lost", `${s}: ${JSON.stringify(o)}`);
    assert.equal(o.state, "DISCONNECTED", `${s}: the client left: ${JSON.stringify(o)}`);
    assert.equal(o.listeners, 0, `${s}: the engine's listeners are gone: ${JSON.stringify(o)}`);
    assert.deepEqual(o.reports, [], `${s}: a failed connect reports nothing afterwards`);
  }
  assert.match(String(get(outcomes, "unreachable").message), /timed out after 3000 ms/);
  assert.match(String(get(outcomes, "aborted").message), /aborted/);
  assert.equal(get(outcomes, "unreachable").role, "audience", "a subscriber joins as audience");
  assert.equal(get(outcomes, "unreachable-publisher").role, "host", "a publisher joins as host");

  // The vendor's events, mapped.
  const expect: Array<[string, string | undefined, RegExp?]> = [
    ["reconnecting", "connection_lost", /reconnecting/],
    ["disconnected-network", "connection_lost", /NETWORK_ERROR/],
    ["disconnected-token", "token_rejected", /TOKEN_EXPIRE/],
    ["disconnected-banned", "token_rejected", /UID_BANNED/],
    ["token-will-expire", "token_rejected", /about to expire/],
    ["token-did-expire", "token_rejected", /expired/],
    ["exception-unrecovered", "media_stalled", /1005 RECV_VIDEO_DECODE_FAILED/],
    ["exception-recovered", undefined],
    ["connecting-is-quiet", undefined],
    ["user-published", undefined],
    ["once", "connection_lost", /reconnecting/],
  ];
  for (const [s, kind, msg] of expect) {
    const o = get(outcomes, s);
    const reports = o.reports as Report[];
    if (kind === undefined) assert.deepEqual(reports, [], `${s}: ${JSON.stringify(o)}`);
    else {
      assert.equal(reports.length, 1, `${s}: one report: ${JSON.stringify(o)}`);
      assert.equal(reports[0]?.kind, kind, `${s}: ${JSON.stringify(o)}`);
      assert.match(reports[0]?.message ?? "", /^\w+: agora agora-test: /);
      if (msg) assert.match(reports[0]?.message ?? "", msg);
    }
    assert.ok((o.listeningBefore as number) >= 5, `${s}: the connection listens: ${JSON.stringify(o)}`);
    assert.equal(o.listeningAfter, 0, `${s}: disconnect removes every listener`);
    assert.equal(o.quality, null, `${s}: no quality off the channel`);
  }
  assert.deepEqual(get(outcomes, "before-live").reports, []);
  assert.deepEqual(get(outcomes, "tracks").tracks, ["live", "live", "ended", "ended"], "a publisher's tracks end with its connection");
  assert.deepEqual(get(outcomes, "unhandled").unhandled, []);
});

test("the ZEGOCLOUD engine on zego-express-engine-webrtc in Chromium, with ZEGOCLOUD unreachable", { skip }, async (t) => {
  const { outcomes, hosts } = await runPage(t, "zego-page.ts");
  assert.ok(hosts.some((h) => /zego|cool[a-z]cloud\.com/.test(h)), `the SDK tried to reach ZEGOCLOUD: ${hosts.join(" ")}`);

  for (const s of ["unreachable", "unreachable-publisher", "aborted"]) {
    const o = get(outcomes, s);
    t.diagnostic(`${s}: failed after ${String(o.ms)} ms: ${String(o.message)}`);
    assert.equal(o.ok, false, `${s}: ${JSON.stringify(o)}`);
    assert.equal(o.name, "MediaError", `${s}: ${JSON.stringify(o)}`);
    assert.equal(o.kind, "connection_lost", `${s}: ${JSON.stringify(o)}`);
    assert.deepEqual(o.reports, [], `${s}: a failed connect reports nothing afterwards`);
  }
  assert.match(String(get(outcomes, "aborted").message), /aborted/);

  const expect: Array<[string, string | undefined, RegExp?]> = [
    ["room-reconnecting", "connection_lost", /room reconnecting \(error 1000017\)/],
    ["room-kickout", "connection_lost", /kickout/],
    ["room-other", undefined],
    ["room-disconnected", "connection_lost", /room disconnected \(error 1002053\)/],
    ["room-disconnected-token", "token_rejected", /1102018/],
    ["token-will-expire", "token_rejected", /about to expire/],
    ["player-error", "connection_lost", /play remote-1 .*1104001/],
    ["publisher-error", "connection_lost", /publish st_zego_page .*1103020/],
    ["quality", undefined],
  ];
  for (const [s, kind, msg] of expect) {
    const o = get(outcomes, s);
    const reports = o.reports as Report[];
    if (kind === undefined) assert.deepEqual(reports, [], `${s}: ${JSON.stringify(o)}`);
    else {
      assert.equal(reports.length, 1, `${s}: one report: ${JSON.stringify(o)}`);
      assert.equal(reports[0]?.kind, kind, `${s}: ${JSON.stringify(o)}`);
      assert.match(reports[0]?.message ?? "", /^\w+: zegocloud zego-test: /);
      if (msg) assert.match(reports[0]?.message ?? "", msg);
    }
    assert.equal(o.listeningBefore, 8, `${s}: the connection listens to its 8 events: ${JSON.stringify(o)}`);
    assert.equal(o.listeningAfter, 0, `${s}: disconnect removes every listener`);
  }
  const pub = get(outcomes, "publisher-error").note as { first: string; track: string };
  assert.match(pub.first, /^publish failed: .*1000002/, "ZEGO refuses to publish a stream it did not make");
  const stream = get(outcomes, "stream") as unknown as { tracks: string[]; publish: string };
  t.diagnostic(`a camera stream published out of a room: ${stream.publish}`);
  assert.match(stream.publish, /^refused: /, "no publish out of a room");
  assert.deepEqual(stream.tracks, ["audio:live", "video:live", "audio:ended", "video:ended"], "a publisher's stream is destroyed with its connection");
  const q = get(outcomes, "quality");
  const sample = q.quality as { at: number; bitrateKbps: number; packetLoss: number; jitterMs: number; frameRate: number; rttMs?: number };
  assert.equal(sample.bitrateKbps, 800 + 40 + 1200 + 32);
  assert.equal(sample.packetLoss, 0.05);
  assert.equal(sample.jitterMs, 12);
  assert.equal(sample.frameRate, 30);
  assert.equal(sample.rttMs, undefined);
  assert.equal(q.lastMedia, sample.at, "media flowed when the quality events said so");
  assert.equal(get(outcomes, "room-other").quality, null, "no quality before the first quality event");
  assert.deepEqual(get(outcomes, "unhandled").unhandled, []);
});
