// Quality telemetry against a real control plane: streams send the
// FakeEngine's synthetic quality in batches, counted under the provider it
// was measured on, and the server aggregates it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client, FakeEngine } from "../src/index.js";
import { wireSample } from "../src/quality.js";
import { buildSwitchboard, ControlPlane, eventually, HealthEndpoint, LogCapture, Proxy, tempDir, waitState } from "./harness.js";

let cp: ControlPlane;
let health: HealthEndpoint;
let token = "";
let cleanup: () => void = () => undefined;

before(async () => {
  const [dir, rm] = tempDir();
  cleanup = rm;
  const bin = await buildSwitchboard(dir);
  health = new HealthEndpoint();
  await health.start();
  cp = new ControlPlane(bin, dir);
  await cp.start();
  token = await cp.clientToken();
});

after(async () => {
  await cp?.kill();
  await health?.close();
  cleanup();
});

interface Stats {
  samples: number;
  streams: number;
  rttMs: { p50: number; p95: number };
  packetLoss: { p50: number };
  freezeCount: number;
  fps: number;
  score: number | null;
}
type Quality = { providers: Record<string, Record<string, { "5m": Stats; "1h": Stats; score: number | null }>> };

const windowOf = async (provider: string): Promise<Stats | undefined> =>
  (await cp.api<Quality>("GET", "/api/streaming/quality")).providers[provider]?.[""]?.["5m"];

test("wire samples are clamped to the ranges the server accepts", () => {
  const w = wireSample({ at: 0, rttMs: -3, packetLoss: 2, jitterMs: Number.NaN, frameRate: 500, freezes: 1.6, freezeMs: 1e9 });
  assert.deepEqual(w, { at: "1970-01-01T00:00:00.000Z", rttMs: 0, packetLoss: 1, jitterMs: 0, bitrateKbps: 0, fps: 240, freezeCount: 2, freezeMs: 60_000 });
});

test("a stream sends its connection's quality in batches, under the provider it was measured on", async () => {
  await cp.addProvider("q-a", 1, health);
  await cp.addProvider("q-b", 2, health);
  assert.match(await cp.check("q-a"), /EXCELLENT|HEALTHY/);
  assert.match(await cp.check("q-b"), /EXCELLENT|HEALTHY/);
  const engine = new FakeEngine();
  engine.setQuality("q-b", { rttMs: 150, packetLoss: 0.01, jitterMs: 20, bitrateKbps: 400, frameRate: 20, freezes: 1, freezeMs: 800 });
  const log = new LogCapture();
  const client = new Client({ serverUrl: cp.url, token, engines: { http: engine }, logger: log, failoverTimeoutMs: 5000, qualityMs: 30 });
  try {
    const stream = await client.start({ room: "quality", userId: "u" });
    assert.equal(stream.provider, "q-a");
    await eventually(async () => ((await windowOf("q-a"))?.samples ?? 0) >= 6, "six samples on q-a");
    engine.fail("q-a");
    await waitState(stream, (st) => st.type === "live" && st.provider === "q-b", "live on q-b");
    await eventually(async () => ((await windowOf("q-b"))?.samples ?? 0) >= 3, "samples on q-b");
    await stream.end();

    const a = (await windowOf("q-a"))!;
    const b = (await windowOf("q-b"))!;
    assert.equal(a.rttMs.p50, FakeEngine.defaultQuality.rttMs);
    assert.equal(a.fps, FakeEngine.defaultQuality.frameRate);
    assert.equal(a.streams, 1);
    assert.ok(Math.abs(b.rttMs.p50 - 150) <= 1.5, `q-b rtt p50 ${b.rttMs.p50}, want about 150`);
    assert.equal(b.packetLoss.p50, 0.01);
    assert.equal(b.freezeCount, b.samples);
    assert.ok(a.score !== null && b.score !== null && b.score < a.score, `scores q-a ${a.score}, q-b ${b.score}`);
    assert.equal(log.lines.filter((l) => l.message === "quality samples refused").length, 0);
  } finally {
    await client.close();
  }
});

// Providers of kind livekit here: the server mints join tokens for them, so
// the stream holds a standby and moves to it without the control plane.
test("samples on the standby's provider wait until the server has the move", async () => {
  // The two providers of this test alone take streams.
  const { providers } = await cp.api<{ providers: Array<{ name: string; enabled: boolean }> }>("GET", "/api/streaming/providers");
  for (const p of providers) if (p.enabled) await cp.api("PUT", "/api/streaming/providers/" + p.name, { enabled: false });
  await cp.addLiveKit("q-c", 1, health);
  await cp.addLiveKit("q-d", 2, health);
  assert.match(await cp.check("q-c"), /EXCELLENT|HEALTHY/);
  assert.match(await cp.check("q-d"), /EXCELLENT|HEALTHY/);
  const proxy = new Proxy(() => cp.url);
  await proxy.start();
  const engine = new FakeEngine();
  const log = new LogCapture();
  const client = new Client({ serverUrl: proxy.url, token, engines: { livekit: engine }, logger: log, failoverTimeoutMs: 5000, qualityMs: 20 });
  try {
    const stream = await client.start({ room: "quality-report", userId: "u", role: "publisher" });
    assert.equal(stream.provider, "q-c");
    assert.equal(stream.standby?.provider.name, "q-d", "the standby is on the first fallback");
    await eventually(async () => ((await windowOf("q-c"))?.samples ?? 0) >= 3, "samples on q-c");
    // The move report is held at the door until released.
    let release: () => void = () => undefined;
    const door = new Promise<void>((res) => (release = res));
    let reports = 0;
    proxy.gate = (method, url) => {
      if (method !== "POST" || !/\/api\/streams\/[^/]+\/migrate$/.test(url)) return undefined;
      reports++;
      return door;
    };
    engine.fail("q-c");
    await waitState(stream, (st) => st.type === "migrated", "migrated to the standby");
    assert.equal(stream.provider, "q-d");
    await eventually(() => reports > 0, "the move report at the door");
    // Many quality periods pass on q-d meanwhile.
    await new Promise((res) => setTimeout(res, 300));
    release();
    await eventually(async () => ((await windowOf("q-d"))?.samples ?? 0) >= 3, "samples on q-d");
    await stream.end();
    assert.deepEqual(log.lines.filter((l) => l.message === "quality samples refused"), []);
  } finally {
    await client.close();
    await proxy.close();
    for (const name of ["q-c", "q-d"]) await cp.api("PUT", "/api/streaming/providers/" + name, { enabled: false });
  }
});

test("qualityMs 0 sends no sample", async () => {
  const engine = new FakeEngine();
  const client = new Client({ serverUrl: cp.url, token, engines: { http: engine }, qualityMs: 0, heartbeatMs: 50 });
  try {
    for (const name of ["q-a", "q-b"]) await cp.api("PUT", "/api/streaming/providers/" + name, { enabled: false });
    await cp.addProvider("q-off", 3, health);
    assert.match(await cp.check("q-off"), /EXCELLENT|HEALTHY/);
    const stream = await client.start({ room: "quiet", userId: "u" });
    assert.equal(stream.provider, "q-off");
    const first = Date.parse((await cp.api<{ lastHeartbeat: string }>("GET", "/api/streams/" + stream.id)).lastHeartbeat);
    await eventually(async () => Date.parse((await cp.api<{ lastHeartbeat: string }>("GET", "/api/streams/" + stream.id)).lastHeartbeat) > first, "a heartbeat");
    await stream.end();
    assert.equal(await windowOf("q-off"), undefined);
  } finally {
    await client.close();
  }
});
