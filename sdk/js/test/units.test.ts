// Unit tests of the pure parts: backoff, retry budget, configuration parsing,
// the usability rule, and the client's option checks.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError } from "../src/errors.js";
import { retryAfter } from "../src/api.js";
import { parseConfig, parseDuration, usableOf, usableStatus } from "../src/config.js";
import { Client, FakeEngine } from "../src/index.js";
import { backoff, Budget, maxBackoffMs, retryDelay, RetrySlot, scope, sleep } from "../src/retry.js";

test("backoff is fully jittered under an exponential ceiling capped at 30 s", () => {
  for (const [n, ceil] of [[1, 100], [2, 200], [3, 400], [10, 51_200 > maxBackoffMs ? maxBackoffMs : 51_200], [80, maxBackoffMs]] as const) {
    assert.equal(backoff(100, n, () => 0), 1, "the lowest draw");
    assert.equal(backoff(100, n, () => 0.999999999), ceil, `the highest draw of retry ${n}`);
  }
  assert.equal(backoff(0, 1, () => 0.999999999), 100, "a base of 0 takes the default 100 ms");
});

test("Retry-After longer than the backoff wins, with up to half again as jitter", () => {
  const err = new ApiError("POST", "/api/streams", 503, "unavailable", "busy", "", 2000);
  assert.equal(retryDelay(err, 100, 1, () => 0), 2000);
  assert.equal(retryDelay(err, 100, 1, () => 0.999999), 2000 + 1000);
  assert.equal(retryDelay(new Error("x"), 100, 1, () => 0), 1);
  assert.equal(retryAfter("3"), 3000);
  assert.equal(retryAfter(null), 0);
  assert.equal(retryAfter("soon"), 0);
  assert.ok(retryAfter(new Date(Date.now() + 60_000).toUTCString()) > 50_000);
});

test("the retry budget allows ratio × operations in flight, never fewer than 3", () => {
  const b = new Budget();
  const ends = Array.from({ length: 30 }, () => b.begin()); // 30 streams: 20 % is 6
  const slots = Array.from({ length: 8 }, () => new RetrySlot());
  const taken = slots.filter((s) => s.take(b)).length;
  assert.equal(taken, 6);
  for (const s of slots) s.free();
  assert.equal(b.inFlight.retrying, 0);
  for (const e of ends.slice(5)) e();
  ends[0]?.(); // ending twice counts once
  ends[0]?.();
  assert.equal(b.inFlight.active, 4);
  assert.equal(slots.filter((s) => s.take(b)).length, 3, "the minimum of 3");
  b.setRatio(1);
  for (let i = 0; i < 10; i++) b.begin();
  assert.equal(new RetrySlot().take(b), true);
  b.setRatio(7); // out of range: back to 20 %
  assert.equal(new RetrySlot().take(b), false);
});

test("sleep and scope free their timers when aborted", async () => {
  const ac = new AbortController();
  const p = sleep(60_000, ac.signal);
  const sc = scope(ac.signal, 60_000);
  ac.abort();
  assert.equal(await p, false);
  assert.equal(sc.signal.aborted, true);
  assert.equal(sc.timedOut(), false);
  const t = scope(undefined, 1);
  await new Promise<void>((r) => t.signal.addEventListener("abort", () => r()));
  assert.equal(t.timedOut(), true);
  assert.equal(process.getActiveResourcesInfo().filter((r) => r === "Timeout").length, 0);
});

test("Go durations parse to milliseconds", () => {
  const cases: Array<[string, number]> = [["30s", 30_000], ["100ms", 100], ["1m30s", 90_000], ["1.5s", 1500], ["2h0m0s", 7_200_000], ["500µs", 0.5], ["0s", 0], ["0", 0]];
  for (const [s, ms] of cases) assert.equal(parseDuration(s), ms, s);
  for (const s of ["", "abc", "10", "1x", "s"]) assert.ok(Number.isNaN(parseDuration(s)), s);
});

test("the configuration takes the defaults for what the server leaves out", () => {
  const c = parseConfig({ providers: [{ name: "a", kind: "http", priority: 1, status: "WARNING" }, { name: "", kind: "http" }], retryBudget: 3 }, 5);
  assert.deepEqual(c, {
    providers: [{ name: "a", kind: "http", priority: 1, status: "WARNING", usable: true, regions: [] }],
    maxRetries: 3, maxFailures: 3, healthCheckIntervalMs: 30_000, retryBackoffMs: 100, retryBudget: 0.2, fetchedAt: 5,
  });
  const d = parseConfig({ providers: [], maxRetries: 5, maxFailures: 2, healthCheckInterval: "5s", retryBackoff: "10ms", retryBudget: 0.5 }, 0);
  assert.equal(d.maxRetries, 5);
  assert.equal(d.healthCheckIntervalMs, 5000);
  assert.equal(d.retryBackoffMs, 10);
  assert.equal(d.retryBudget, 0.5);
});

test("a provider is usable when EXCELLENT, HEALTHY or WARNING, unless the server says otherwise", () => {
  for (const s of ["EXCELLENT", "HEALTHY", "WARNING"]) assert.equal(usableStatus(s), true, s);
  for (const s of ["CRITICAL", "DISABLED", "UNKNOWN", "DELETED", ""]) assert.equal(usableStatus(s), false, s);
  assert.equal(usableOf({ status: "HEALTHY", usable: false }), false);
  assert.equal(usableOf({ status: "UNKNOWN", usable: true }), true);
  assert.equal(usableOf({ status: "CRITICAL" }), false);
});

test("the client refuses bad options with the option's name", async () => {
  const engine = new FakeEngine();
  const ok = { serverUrl: "http://127.0.0.1:9", token: "sbt_x", engines: { http: engine } };
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ serverUrl: "nope" }, /serverUrl/],
    [{ serverUrl: "ftp://x" }, /serverUrl/],
    [{ serverUrl: "http://u:p@x" }, /serverUrl/],
    [{ token: "" }, /token/],
    [{ token: "a b" }, /token/],
    [{ engines: {} }, /engines/],
    [{ policy: { type: "migrateGradually", rate: 0 } }, /policy/],
    [{ heartbeatMs: -1 }, /heartbeatMs/],
  ];
  for (const [patch, re] of bad) assert.throws(() => new Client({ ...ok, ...patch } as never), re, JSON.stringify(patch));
  const c = new Client(ok);
  await c.close();
  await assert.rejects(c.start({ room: "r" }), { name: "ClosedError" });
});

test("WebRTC statistics read into a quality sample", async () => {
  const { qualityFromStats } = await import("../src/webrtc-stats.js");
  const entries = [
    { type: "candidate-pair", nominated: true, state: "succeeded", currentRoundTripTime: 0.042 },
    { type: "candidate-pair", nominated: false, state: "failed", currentRoundTripTime: 9 },
    { type: "inbound-rtp", packetsLost: 5, packetsReceived: 95, jitter: 0.012, framesPerSecond: 29, freezeCount: 1, bytesReceived: 200_000 },
    { type: "inbound-rtp", packetsLost: 0, packetsReceived: 100, jitter: 0.004, bytesReceived: 50_000 },
    { type: "remote-inbound-rtp", roundTripTime: 0.08, jitter: 0.001, packetsLost: 0 },
    { type: "codec", mimeType: "video/VP8" },
  ];
  const first = qualityFromStats(entries, 10_000);
  assert.deepEqual(first.sample, { at: 10_000, rttMs: 42, packetLoss: 5 / 200, jitterMs: 12, frameRate: 29, freezes: 1 });
  assert.deepEqual(first.totals, { at: 10_000, bytes: 250_000 });
  // One second later, 125,000 bytes more: 1,000 kbit/s.
  const more = entries.map((e) => (e.type === "inbound-rtp" && e.bytesReceived === 200_000 ? { ...e, bytesReceived: 325_000 } : e));
  assert.equal(qualityFromStats(more, 11_000, first.totals).sample.bitrateKbps, 1000);
  // Without a selected pair, the remote-inbound round trip.
  assert.equal(qualityFromStats(entries.slice(2), 0).sample.rttMs, 80);
  assert.deepEqual(qualityFromStats([], 1).sample, { at: 1 });
});

test("receiveMark says when a connection last received media or feedback, and watches nothing without live tracks", async () => {
  const { receiveMark } = await import("../src/webrtc-stats.js");
  // A subscriber: its inbound streams; a publisher: its transport (RTCP
  // feedback). Several tracks' reports share the transport: it counts once.
  const at = (inbound: number, transport: number): Array<Record<string, unknown>> => [
    { type: "inbound-rtp", id: "IT01V", bytesReceived: inbound },
    { type: "transport", id: "T01", bytesReceived: transport },
    { type: "transport", id: "T01", bytesReceived: transport },
    { type: "outbound-rtp", id: "OT01V", bytesSent: 9_999 },
    { type: "candidate-pair", id: "CP01", bytesReceived: 123 },
  ];
  assert.deepEqual(receiveMark([], 1_000), { bytes: 0, at: undefined }, "no track: nothing watched");
  assert.deepEqual(receiveMark([{ type: "transport", id: "T01", bytesReceived: 0 }], 1_000), { bytes: 0, at: undefined }, "nothing received yet: not armed");
  const first = receiveMark(at(500, 100), 1_000);
  assert.deepEqual(first, { bytes: 600, at: 1_000 }, "the first bytes arm it");
  const same = receiveMark(at(500, 100), 1_300, first);
  assert.deepEqual(same, { bytes: 600, at: 1_000 }, "no new bytes: the last time stays");
  assert.deepEqual(receiveMark(at(500, 180), 1_400, same), { bytes: 680, at: 1_400 }, "feedback alone is progress");
  assert.deepEqual(receiveMark(at(900, 100), 1_400, same), { bytes: 1_000, at: 1_400 }, "media alone is progress");
  // The tracks went (unpublished or muted): disarmed, and armed again by the next ones.
  const gone = receiveMark([{ type: "outbound-rtp", id: "OT01V", bytesSent: 10_000 }], 1_500, same);
  assert.deepEqual(gone, { bytes: 0, at: undefined });
  assert.deepEqual(receiveMark(at(500, 100), 1_600, gone), { bytes: 600, at: 1_600 });
  // Entries without an id each count.
  assert.equal(receiveMark([{ type: "inbound-rtp", bytesReceived: 1 }, { type: "inbound-rtp", bytesReceived: 2 }], 1).bytes, 3);
});

test("a fetch that cannot stream bodies (React Native's) leaves the client on polling, without retrying the event stream", async () => {
  const calls: string[] = [];
  const fakeFetch = async (url: string): Promise<Response> => {
    const path = new URL(url).pathname;
    calls.push(path);
    if (path === "/api/events") {
      // What a fetch without streaming gives: the headers, and no body to read.
      const r = new Response(null, { status: 200, headers: { "Content-Type": "text/event-stream" } });
      Object.defineProperty(r, "body", { value: null });
      return r;
    }
    return new Response(JSON.stringify({ providers: [] }), { status: 200, headers: { "Content-Type": "application/json" } });
  };
  const lines: string[] = [];
  const log = (m: string): void => void lines.push(m);
  const c = new Client({ serverUrl: "http://127.0.0.1:9", token: "t", engines: { http: new FakeEngine() }, fetch: fakeFetch, logger: { info: log, warn: log, error: log } });
  while (!lines.some((l) => l.startsWith("event stream unsupported"))) await new Promise((r) => setTimeout(r, 5));
  assert.equal(c.eventsConnected, false);
  assert.equal(calls.filter((p) => p === "/api/events").length, 1, "not retried");
  await c.close();
});
