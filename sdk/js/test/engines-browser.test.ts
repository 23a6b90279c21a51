// The Agora and ZEGOCLOUD engines (@switchboardhq/client/agora and /zego) on
// the real agora-rtc-sdk-ng and zego-express-engine-webrtc, which load only
// in a browser, in real headless Chromium. Chromium sends every connection
// off this machine to a loopback proxy of the test that refuses it: the
// vendors' servers cannot be reached (as on a machine without a network),
// and the test sees which hosts the SDKs tried. Each page joins through the
// engine, then drives the engine's wiring with events emitted on real vendor
// objects, and posts what happened.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { Socket } from "node:net";
import { test, type TestContext } from "node:test";
import { chromium, listen, runFixture, stop } from "./browser.js";

const skip = chromium ? false : "chromium is not installed";

type Outcome = { scenario: string; [k: string]: unknown };

/** Runs the bundled fixture page in Chromium; resolves with what it posted and the hosts it tried to reach. */
async function runPage(t: TestContext, fixture: string): Promise<{ outcomes: Map<string, Outcome>; hosts: string[] }> {
  const hosts = new Set<string>();
  const proxy = createServer((req, res) => {
    hosts.add(new URL(req.url ?? "/", "http://unknown").host);
    res.writeHead(502).end();
  });
  proxy.on("connect", (req: { url?: string }, socket: Socket) => {
    hosts.add(req.url ?? "");
    // Chromium may reset a refused tunnel before the answer is written: that
    // is no failure of the test, and an unhandled socket error would be.
    socket.on("error", () => undefined);
    socket.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
  });
  const proxyPort = await listen(proxy);
  try {
    const body = await runFixture({
      fixture,
      args: [
        // Off this machine, nothing: names do not resolve, and every connection goes to the refusing proxy (loopback excepted).
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", `--proxy-server=http://127.0.0.1:${proxyPort}`,
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
        // A camera and a microphone for the tracks a publisher makes.
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
      ],
      limitMs: 90_000,
      hangMessage: "no result from the page in 90 s: something hung",
    });
    const outcomes = JSON.parse(body) as Outcome[];
    t.diagnostic(`hosts the SDK tried to reach: ${[...hosts].join(" ")}`);
    return { outcomes: new Map(outcomes.map((o) => [o.scenario, o])), hosts: [...hosts] };
  } finally {
    await stop(proxy);
  }
}

function get(outcomes: Map<string, Outcome>, scenario: string): Outcome {
  const o = outcomes.get(scenario);
  assert.ok(o, `no outcome for ${scenario}: ${JSON.stringify([...outcomes.keys()])}`);
  return o;
}

type Report = { kind: string; message: string };

const failedJoins = ["unreachable", "unreachable-publisher", "aborted"];

/** Joins that cannot reach the vendor fail with a typed connection_lost and report nothing afterwards; more checks each further. */
function assertFailedJoins(t: TestContext, outcomes: Map<string, Outcome>, more: (s: string, o: Outcome) => void = () => undefined): void {
  for (const s of failedJoins) {
    const o = get(outcomes, s);
    t.diagnostic(`${s}: failed after ${String(o.ms)} ms: ${String(o.message)}`);
    assert.equal(o.ok, false, `${s}: ${JSON.stringify(o)}`);
    assert.equal(o.name, "MediaError", `${s}: ${JSON.stringify(o)}`);
    assert.equal(o.kind, "connection_lost", `${s}: ${JSON.stringify(o)}`);
    more(s, o);
    assert.deepEqual(o.reports, [], `${s}: a failed connect reports nothing afterwards`);
  }
}

/**
 * The media errors each scenario reported: [scenario, the one report's kind
 * (none when undefined), a pattern of its message]. Every message starts with
 * prefix; more checks each outcome further.
 */
function assertReports(outcomes: Map<string, Outcome>, expect: Array<[string, string | undefined, RegExp?]>, prefix: RegExp, more: (s: string, o: Outcome) => void): void {
  for (const [s, kind, msg] of expect) {
    const o = get(outcomes, s);
    const reports = o.reports as Report[];
    if (kind === undefined) assert.deepEqual(reports, [], `${s}: ${JSON.stringify(o)}`);
    else {
      assert.equal(reports.length, 1, `${s}: one report: ${JSON.stringify(o)}`);
      assert.equal(reports[0]?.kind, kind, `${s}: ${JSON.stringify(o)}`);
      assert.match(reports[0]?.message ?? "", prefix);
      if (msg) assert.match(reports[0]?.message ?? "", msg);
    }
    more(s, o);
  }
}

test("the Agora engine on agora-rtc-sdk-ng in Chromium, with Agora unreachable", { skip }, async (t) => {
  const { outcomes, hosts } = await runPage(t, "agora-page.ts");
  assert.ok(hosts.some((h) => /agora\.io|sd-rtn\.com/.test(h)), `the SDK tried to reach Agora: ${hosts.join(" ")}`);

  // Joins that cannot reach Agora fail, typed, and leave nothing behind.
  assertFailedJoins(t, outcomes, (s, o) => {
    assert.equal(o.state, "DISCONNECTED", `${s}: the client left: ${JSON.stringify(o)}`);
    assert.equal(o.listeners, 0, `${s}: the engine's listeners are gone: ${JSON.stringify(o)}`);
  });
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
  assertReports(outcomes, expect, /^\w+: agora agora-test: /, (s, o) => {
    assert.ok((o.listeningBefore as number) >= 5, `${s}: the connection listens: ${JSON.stringify(o)}`);
    assert.equal(o.listeningAfter, 0, `${s}: disconnect removes every listener`);
    assert.equal(o.quality, null, `${s}: no quality off the channel`);
  });
  assert.deepEqual(get(outcomes, "before-live").reports, []);
  assert.deepEqual(get(outcomes, "tracks").tracks, ["live", "live", "ended", "ended"], "a publisher's tracks end with its connection");
  assert.deepEqual(get(outcomes, "unhandled").unhandled, []);
});

test("the ZEGOCLOUD engine on zego-express-engine-webrtc in Chromium, with ZEGOCLOUD unreachable", { skip }, async (t) => {
  const { outcomes, hosts } = await runPage(t, "zego-page.ts");
  assert.ok(hosts.some((h) => /zego|cool[a-z]cloud\.com/.test(h)), `the SDK tried to reach ZEGOCLOUD: ${hosts.join(" ")}`);

  assertFailedJoins(t, outcomes);
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
  assertReports(outcomes, expect, /^\w+: zegocloud zego-test: /, (s, o) => {
    assert.equal(o.listeningBefore, 8, `${s}: the connection listens to its 8 events: ${JSON.stringify(o)}`);
    assert.equal(o.listeningAfter, 0, `${s}: disconnect removes every listener`);
  });
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
