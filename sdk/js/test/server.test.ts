// The SDK against a real control plane: `switchboard serve` built from this
// repository, on a loopback port and a SQLite file, with providers of kind
// http whose health the test's own loopback endpoint decides.
import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";
import { Client, FakeEngine, NoProviderError, type Stream } from "../src/index.js";
import { buildSwitchboard, ControlPlane, eventually, HealthEndpoint, LogCapture, Proxy, tempDir, waitState } from "./harness.js";

let cp: ControlPlane;
let health: HealthEndpoint;
let token = "";
let cleanup: () => void = () => undefined;
let n = 0;
// Each test gets providers of its own, so that tests do not see each other's.
let p1 = "";
let p2 = "";

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

// Disables every provider of earlier tests and adds two healthy ones: pN-a (priority 1) and pN-b (priority 2).
beforeEach(async () => {
  const list = await cp.api<{ providers: Array<{ name: string; enabled: boolean }> }>("GET", "/api/streaming/providers");
  for (const p of list.providers) if (p.enabled) await cp.api("PUT", "/api/streaming/providers/" + p.name, { enabled: false });
  n++;
  p1 = `p${n}-a`;
  p2 = `p${n}-b`;
  await cp.addProvider(p1, 1, health);
  await cp.addProvider(p2, 2, health);
  assert.match(await cp.check(p1), /EXCELLENT|HEALTHY/);
  assert.match(await cp.check(p2), /EXCELLENT|HEALTHY/);
});

function newClient(engine: FakeEngine, log: LogCapture, extra: Partial<ConstructorParameters<typeof Client>[0]> = {}): Client {
  return new Client({
    serverUrl: cp.url,
    token,
    engines: { agora: engine, zegocloud: engine, livekit: engine, http: engine },
    logger: log,
    failoverTimeoutMs: 5000,
    ...extra,
  });
}

test("a stream starts live on the first provider", async () => {
  const engine = new FakeEngine();
  const log = new LogCapture();
  const client = newClient(engine, log);
  const states: string[] = [];
  try {
    const stream = await client.start({ room: "r1", userId: "u1", role: "publisher", onState: (s) => states.push(s.type) });
    assert.equal(stream.provider, p1);
    assert.deepEqual(states, ["connecting", "live"]);
    assert.equal(engine.connections(p1).length, 1);
    const onServer = await cp.stream(stream.id);
    assert.equal(onServer.provider, p1);
    assert.equal(onServer.status, "active");
    // Each read of the fake's sample is stamped with the time of the read: compare the rest.
    const { at, ...sample } = (await stream.quality()) ?? { at: 0 };
    assert.ok(at > 0, "the sample is stamped");
    assert.equal((sample as { rttMs?: number }).rttMs, 20, "the engine's quality sample");
    await stream.end();
    assert.equal(engine.connections(p1).length, 0, "end disconnects the media");
    assert.notEqual((await cp.stream(stream.id)).status, "active", "end ends the stream on the server");
    assert.equal(client.streams.length, 0);
  } finally {
    await client.close();
  }
});

test("a media error fails the stream over, make-before-break, and says so in the log", async () => {
  const engine = new FakeEngine();
  const log = new LogCapture();
  const client = newClient(engine, log);
  try {
    const stream = await client.start({ room: "r2", userId: "u2", role: "publisher" });
    assert.equal(stream.provider, p1);
    const oldConn = engine.connections(p1)[0];
    assert.ok(oldConn);
    const seen: string[] = [];
    stream.on("state", (s) => {
      seen.push(s.type);
      // Make-before-break: when the stream says it migrated, the new connection is up.
      if (s.type === "migrated") assert.equal(engine.connections(p2).length, 1);
    });
    assert.equal(engine.fail(p1, "connection_lost"), 1);
    const st = await waitState(stream, (s) => s.type === "migrated", "migrated");
    assert.ok(st.type === "migrated" && st.from === p1 && st.to === p2 && st.gapMs >= 0, JSON.stringify(st));
    await waitState(stream, (s) => s.type === "live" && s.provider === p2, "live on the backup");
    assert.deepEqual(seen.slice(0, 3), ["failingOver", "migrated", "live"]);
    assert.equal(stream.provider, p2);
    assert.equal(stream.migrations, 1);
    assert.equal(oldConn.disconnected, true, "the old connection is closed after the switch");
    await log.waitFor((m) => m === `Successfully failed over to ${p2}`, "the failover line");
    // The server has the move, and the media failure the client reported.
    await eventually(async () => {
      const s = await cp.stream(stream.id);
      return s.provider === p2 && !!s.trail?.some((e) => e.kind === "failure" && e.provider === p1 && e.stage === "media");
    }, "the move and the failure report on the server");
    // Never back on its own: the provider it left is healthy, and the stream stays.
    assert.equal(stream.provider, p2);
  } finally {
    await client.close();
  }
});

test("a provider turning CRITICAL, pushed as an event, moves its streams at once", async () => {
  const engine = new FakeEngine();
  const log = new LogCapture();
  const client = newClient(engine, log);
  try {
    const streams: Stream[] = [];
    for (let i = 0; i < 3; i++) streams.push(await client.start({ room: "crit-" + i, userId: "u" + i, role: "publisher" }));
    assert.deepEqual(streams.map((s) => s.provider), [p1, p1, p1]);
    await eventually(() => client.eventsConnected, "the event subscription");
    health.fail(p1);
    assert.equal(await cp.check(p1), "CRITICAL");
    for (const s of streams) {
      const st = await waitState(s, (x) => x.type === "migrated", "migrated after CRITICAL");
      assert.ok(st.type === "migrated" && st.to === p2 && /CRITICAL/.test(st.reason), JSON.stringify(st));
    }
    assert.equal(engine.connections(p1).length, 0);
    assert.equal(engine.connections(p2).length, 3);
    assert.equal(client.config?.providers.find((p) => p.name === p1)?.usable, false);
    // The provider recovers: nobody moves back.
    health.fail(p1, false);
    assert.match(await cp.check(p1), /EXCELLENT|HEALTHY|WARNING/);
    await eventually(() => client.config?.providers.find((p) => p.name === p1)?.usable === true, "the recovery event");
    assert.deepEqual(streams.map((s) => s.provider), [p2, p2, p2]);
  } finally {
    await client.close();
  }
});

test("settings pushed by the server apply at once", async () => {
  const engine = new FakeEngine();
  const client = newClient(engine, new LogCapture());
  try {
    await client.start({ room: "set", userId: "u", role: "subscriber" });
    await eventually(() => client.eventsConnected, "the event subscription");
    assert.equal(client.config?.maxRetries, 3);
    await cp.api("PUT", "/api/settings", { maxRetries: 5, retryBackoff: "20ms" });
    await eventually(() => client.config?.maxRetries === 5, "maxRetries from the settings.updated event");
    assert.equal(client.config?.retryBackoffMs, 20);
  } finally {
    await cp.api("PUT", "/api/settings", { maxRetries: 3, retryBackoff: "100ms" });
    await client.close();
  }
});

test("start fails over at attempt 3 and rejects with NoProviderError when no provider can take the stream", async () => {
  const engine = new FakeEngine();
  const log = new LogCapture();
  const client = newClient(engine, log);
  try {
    // p1 refuses connects: attempt 1 and 2 on it, attempt 3 on p2.
    engine.down(p1);
    const states: string[] = [];
    const stream = await client.start({ room: "r3", userId: "u3", role: "publisher", onState: (s) => states.push(s.type + (s.type === "connecting" ? ":" + s.provider : "")) });
    assert.equal(stream.provider, p2);
    assert.deepEqual(states, [`connecting:${p1}`, "reconnecting", `connecting:${p1}`, "failingOver", `connecting:${p2}`, "live"]);
    await log.waitFor((m) => m === `Successfully failed over to ${p2}`, "the failover line");
    const trail = (await cp.stream(stream.id)).trail ?? [];
    assert.equal(trail.filter((e) => e.kind === "failure" && e.provider === p1 && e.stage === "media").length, 2, "both failed attempts reported");
    // Both refuse: the start gives up with the typed error, and ends the stream on the server.
    engine.down(p2);
    await assert.rejects(client.start({ room: "r4", userId: "u4", role: "publisher" }), (err: unknown) => {
      assert.ok(err instanceof NoProviderError, String(err));
      assert.equal(err.attempts, 3);
      return true;
    });
    const active = await cp.api<{ streams: Array<{ room: string; status: string }> }>("GET", "/api/streams?status=active");
    assert.equal(active.streams.filter((s) => s.room === "r4").length, 0, "the failed start left no active stream");
    // No provider at all: the server refuses every attempt, and start says so with the same error.
    engine.down(p1, false);
    engine.down(p2, false);
    await cp.api("PUT", "/api/streaming/providers/" + p1, { enabled: false });
    await cp.api("PUT", "/api/streaming/providers/" + p2, { enabled: false });
    await assert.rejects(client.start({ room: "r5", userId: "u5", role: "publisher" }), (err: unknown) => {
      assert.ok(err instanceof NoProviderError, String(err));
      assert.match(err.message, /gave up after 3 attempts/);
      return true;
    });
  } finally {
    await client.close();
  }
});

test("with the control plane down, streams keep running on the last known configuration, and pick up again when it is back", async () => {
  const engine = new FakeEngine();
  const log = new LogCapture();
  const client = newClient(engine, log);
  try {
    const stream = await client.start({ room: "down", userId: "u", role: "publisher" });
    await eventually(() => client.eventsConnected, "the event subscription");
    // An event, so that the client has an event id to resume from.
    await cp.api("PUT", "/api/settings", { maxFailures: 4 });
    await eventually(() => client.config?.maxFailures === 4, "the settings event");
    const before = client.config;
    assert.ok(before);
    const addr = cp.addr;
    await cp.kill();
    await log.waitFor((m) => m.startsWith("event stream down"), "the event stream down");
    assert.equal(client.eventsConnected, false);
    assert.deepEqual(client.config?.providers, before.providers, "the last known configuration is kept");
    assert.equal(stream.provider, p1);
    assert.equal(stream.state?.type, "live", "no failover for an absent control plane");
    // Back on the same address and database: the subscription resumes; the new
    // server does not know the last event id and asks for a resync.
    await cp.start(addr);
    await eventually(() => client.eventsConnected, "the event subscription again");
    await log.waitFor((m) => m.startsWith("event stream asked to resynchronise"), "the resync");
    assert.equal(stream.provider, p1);
    assert.equal(stream.state?.type, "live");
    assert.equal(engine.connections(p1).length, 1);
    // And failover works again through it.
    engine.fail(p1);
    await waitState(stream, (s) => s.type === "migrated", "migrated after the outage");
    assert.equal(stream.provider, p2);
  } finally {
    await cp.api("PUT", "/api/settings", { maxFailures: 3 });
    await client.close();
  }
});

test("disabling the provider in use moves its streams; the priority policy keepLive leaves them there", async () => {
  const engine = new FakeEngine();
  const client = newClient(engine, new LogCapture());
  try {
    const stream = await client.start({ room: "pol", userId: "u", role: "publisher" });
    await eventually(() => client.eventsConnected, "the event subscription");
    await cp.api("PUT", "/api/streaming/providers/" + p1, { enabled: false });
    const st = await waitState(stream, (s) => s.type === "migrated", "migrated after disable");
    assert.ok(st.type === "migrated" && /disabled/.test(st.reason), JSON.stringify(st));
    await cp.api("PUT", "/api/streaming/providers/" + p1, { enabled: true, priority: 1 });
    await eventually(() => client.config?.providers[0]?.name === p1, "p1 first again in the configuration");
    assert.equal(stream.provider, p2, "keepLive: the stream stays where it is");
  } finally {
    await client.close();
  }
});

test("migrateGradually moves live streams to the new first provider", async () => {
  const engine = new FakeEngine();
  const client = newClient(engine, new LogCapture(), { policy: { type: "migrateGradually", rate: 20 } });
  try {
    const streams = [await client.start({ room: "g1", userId: "u", role: "publisher" }), await client.start({ room: "g2", userId: "u", role: "publisher" })];
    await eventually(() => client.eventsConnected, "the event subscription");
    const all = await cp.api<{ providers: Array<{ name: string }> }>("GET", "/api/streaming/providers");
    const others = all.providers.map((p) => p.name).filter((x) => x !== p1 && x !== p2);
    await cp.api("PUT", "/api/streaming/providers/priorities", { order: [p2, p1, ...others] });
    for (const s of streams) {
      const st = await waitState(s, (x) => x.type === "migrated", "rebalanced");
      assert.ok(st.type === "migrated" && st.to === p2 && /priorities changed/.test(st.reason), JSON.stringify(st));
    }
  } finally {
    await client.close();
  }
});

test("while the event stream is down, polling leaves a provider after maxFailures unusable answers", async () => {
  const proxy = new Proxy(() => cp.url);
  await proxy.start();
  proxy.blockEvents = true;
  // The server's shortest interval; 2 failures in a row.
  await cp.api("PUT", "/api/settings", { healthCheckInterval: "5s", maxFailures: 2 });
  const engine = new FakeEngine();
  const log = new LogCapture();
  const client = new Client({ serverUrl: proxy.url, token, engines: { http: engine }, logger: log, failoverTimeoutMs: 5000 });
  try {
    const stream = await client.start({ room: "poll", userId: "u", role: "publisher" });
    assert.equal(client.config?.healthCheckIntervalMs, 5000);
    await log.waitFor((m) => m.startsWith("event stream down"), "the event stream refused");
    assert.equal(client.eventsConnected, false);
    health.fail(p1);
    assert.equal(await cp.check(p1), "CRITICAL");
    const st = await waitState(stream, (s) => s.type === "migrated", "migrated by the poller", 30_000);
    assert.ok(st.type === "migrated" && st.to === p2 && /after 2 health checks/.test(st.reason), JSON.stringify(st));
    const unusable = log.lines.filter((l) => l.message === "health poll: provider unusable").map((l) => l.fields?.consecutive);
    assert.deepEqual(unusable, [1, 2], "one move after two consecutive unusable answers");
  } finally {
    await cp.api("PUT", "/api/settings", { healthCheckInterval: "30s", maxFailures: 3 });
    await client.close();
    await proxy.close();
  }
});

test("heartbeats keep the stream on the server", async () => {
  const engine = new FakeEngine();
  const log = new LogCapture();
  const client = newClient(engine, log, { heartbeatMs: 100 });
  try {
    const stream = await client.start({ room: "hb", userId: "u", role: "publisher" });
    const first = Date.parse((await cp.api<{ lastHeartbeat: string }>("GET", "/api/streams/" + stream.id)).lastHeartbeat);
    await eventually(async () => Date.parse((await cp.api<{ lastHeartbeat: string }>("GET", "/api/streams/" + stream.id)).lastHeartbeat) > first, "a heartbeat");
    assert.equal(log.lines.filter((l) => l.message === "heartbeat failed").length, 0);
  } finally {
    await client.close();
  }
});

// Providers of kind livekit: the server mints join tokens for them, so that
// every stream holds a standby assignment on its first fallback.
async function liveKitPair(): Promise<[string, string]> {
  const [a, b] = [`lk${n}-a`, `lk${n}-b`];
  for (const name of [p1, p2]) await cp.api("PUT", "/api/streaming/providers/" + name, { enabled: false });
  await cp.addLiveKit(a, 1, health);
  await cp.addLiveKit(b, 2, health);
  assert.match(await cp.check(a), /EXCELLENT|HEALTHY/);
  assert.match(await cp.check(b), /EXCELLENT|HEALTHY/);
  return [a, b];
}

test("a media error moves the stream to its standby first, and the move is reported afterwards", async () => {
  const [a, b] = await liveKitPair();
  const engine = new FakeEngine();
  const log = new LogCapture();
  const client = newClient(engine, log);
  try {
    const stream = await client.start({ room: "sb", userId: "u", role: "publisher" });
    assert.equal(stream.provider, a);
    assert.ok(stream.assignment?.token, "a join token was minted");
    assert.equal(stream.standby?.provider.name, b, "the standby is on the first fallback");
    const standbyToken = stream.standby?.token;
    engine.fail(a);
    await waitState(stream, (s) => s.type === "migrated", "migrated to the standby");
    assert.equal(stream.provider, b);
    assert.equal(engine.connections(b)[0]?.assignment.token, standbyToken, "connected with the standby's token");
    await log.waitFor((m) => m === `Successfully failed over to ${b}`, "the failover line");
    await eventually(async () => {
      const s = await cp.stream(stream.id);
      return s.provider === b && !!s.trail?.some((e) => e.kind === "migrate" && e.provider === b && !!e.reportedAt);
    }, "the move reported to the server with movedAt");
  } finally {
    await client.close();
  }
});

test("a stream ended before its move to the standby was reported reports it first: the server ends it where it is", async () => {
  const [a, b] = await liveKitPair();
  const engine = new FakeEngine();
  const client = newClient(engine, new LogCapture());
  try {
    const stream = await client.start({ room: "sb-end", userId: "u", role: "publisher" });
    engine.fail(a);
    await waitState(stream, (s) => s.type === "migrated", "migrated to the standby");
    await stream.end(); // the report waits a random part of a second: it has not gone out yet
    const s = await cp.stream(stream.id);
    assert.equal(s.status, "ended");
    assert.equal(s.provider, b, "ended on the standby's provider");
    const kinds = (s.trail ?? []).map((e) => e.kind);
    assert.ok(kinds.indexOf("migrate") >= 0 && kinds.indexOf("migrate") < kinds.indexOf("end"), `trail ${kinds.join(", ")}: the move before the end`);
  } finally {
    await client.close();
  }
});

test("with the control plane down, a media error moves the stream to its standby; the move reaches the server when it is back", async () => {
  const [a, b] = await liveKitPair();
  const engine = new FakeEngine();
  const log = new LogCapture();
  const client = newClient(engine, log);
  try {
    const stream = await client.start({ room: "sb-down", userId: "u", role: "publisher" });
    assert.equal(stream.standby?.provider.name, b);
    const addr = cp.addr;
    await cp.kill();
    engine.fail(a);
    const st = await waitState(stream, (s) => s.type === "migrated", "migrated with the control plane down");
    assert.ok(st.type === "migrated" && st.from === a && st.to === b, JSON.stringify(st));
    assert.equal(stream.provider, b);
    // The report is retried until the control plane answers.
    await cp.start(addr);
    await eventually(async () => {
      const s = await cp.stream(stream.id);
      return s.provider === b && !!s.trail?.some((e) => e.kind === "migrate" && e.provider === b && !!e.reportedAt);
    }, "the move reported once the control plane is back", 30_000);
    assert.equal(stream.state?.type, "live");
  } finally {
    await client.close();
  }
});

test("the engine hears each standby; a viewer whose publisher moved follows it without blaming its provider", async () => {
  const [a, b] = await liveKitPair();
  // An engine with a hot standby's hook, recording what it hears.
  const inner = new FakeEngine();
  const heard: Array<string | undefined> = [];
  const engine = {
    connect: (asg: Parameters<FakeEngine["connect"]>[0], report: Parameters<FakeEngine["connect"]>[1], signal: AbortSignal) => inner.connect(asg, report, signal),
    standby: (id: string, sa: { provider: { name: string }; streamId: string } | undefined) => {
      if (sa) assert.equal(sa.streamId, id, "a standby of the stream it is told for");
      heard.push(sa?.provider.name);
    },
  };
  const log = new LogCapture();
  const client = new Client({ serverUrl: cp.url, token, engines: { livekit: engine }, logger: log, failoverTimeoutMs: 5000 });
  try {
    const stream = await client.start({ room: "follow", userId: "viewer", role: "subscriber" });
    assert.equal(stream.provider, a);
    assert.equal(heard.at(-1), b, "the engine heard the standby on the first fallback");
    assert.equal(inner.fail(a, "publisher_moved"), 1);
    const st = await waitState(stream, (s) => s.type === "migrated", "followed the publisher to the standby");
    assert.ok(st.type === "migrated" && st.from === a && st.to === b, JSON.stringify(st));
    // The provider it left is not avoided: the next standby is on it again.
    await eventually(async () => heard.at(-1) === a && stream.standby?.provider.name === a, "a new standby on the provider it left", 10_000);
    await eventually(async () => !!(await cp.stream(stream.id)).trail?.some((e) => e.kind === "migrate" && e.provider === b && !!e.reportedAt), "the move reported");
    assert.equal((await cp.stream(stream.id)).trail?.filter((e) => e.kind === "failure").length, 0, "no failure reported on the provider it left");
    await stream.end();
    assert.equal(heard.at(-1), undefined, "the engine heard that the ended stream has no standby");
  } finally {
    await client.close();
  }
});

test("the watchdog fails over a connection that stopped carrying media without a word", async () => {
  const engine = new FakeEngine();
  const client = newClient(engine, new LogCapture(), { watchdogMs: 200 });
  try {
    const stream = await client.start({ room: "wd", userId: "u", role: "publisher" });
    assert.equal(engine.stall(p1), 1);
    const st = await waitState(stream, (s) => s.type === "failingOver", "failing over after the stall");
    assert.ok(st.type === "failingOver" && /media_stalled/.test(st.reason), JSON.stringify(st));
    await waitState(stream, (s) => s.type === "live" && s.provider === p2, "live on the backup");
  } finally {
    await client.close();
  }
});

test("no token reaches a log line, a state or the server's trail", async () => {
  const [a] = await liveKitPair();
  // An engine that puts the join token in its errors, as careless vendor SDKs do.
  const inner = new FakeEngine();
  const leaky = {
    connect: async (asg: Parameters<FakeEngine["connect"]>[0], report: Parameters<FakeEngine["connect"]>[1], signal: AbortSignal) => {
      if (asg.provider.name === a) throw new Error(`join refused for token ${asg.token}`);
      return inner.connect(asg, report, signal);
    },
  };
  const log = new LogCapture();
  const client = new Client({ serverUrl: cp.url, token, engines: { livekit: leaky }, logger: log });
  const states: unknown[] = [];
  try {
    const stream = await client.start({ room: "secret", userId: "u", role: "publisher", onState: (s) => states.push(s) });
    assert.notEqual(stream.provider, a, "the start failed over");
    const tokens = [token, stream.assignment?.token ?? ""];
    const failures = (await cp.stream(stream.id)).trail?.filter((e) => e.kind === "failure") ?? [];
    assert.equal(failures.length, 2, "both connects to the first provider reported");
    const seen = JSON.stringify({ logs: log.lines, states: states.map((s) => ({ ...(s as object), error: String((s as { error?: unknown }).error ?? "") })), failures: await cp.stream(stream.id) });
    assert.match(seen, /\[REDACTED\]/, "the token was taken out of the engine's error");
    for (const t of tokens) assert.ok(t && !seen.includes(t), "a token leaked");
    // The join tokens of the failed provider's assignment are JWTs: none of them shows either.
    assert.doesNotMatch(seen, /eyJ[A-Za-z0-9_-]{10,}\./);
  } finally {
    await client.close();
  }
});

test("each client owns the streams it starts: another instance of the app, sharing its token, may not act on them", async () => {
  const engine = new FakeEngine();
  const a = newClient(engine, new LogCapture());
  const b = newClient(engine, new LogCapture());
  try {
    const sa = await a.start({ room: "owned-a", userId: "ua", role: "publisher" });
    const sb = await b.start({ room: "owned-b", userId: "ub", role: "publisher" });
    const ownerOf = async (id: string): Promise<string> => ((await cp.stream(id)) as unknown as { owner: string }).owner;
    const [oa, ob] = [await ownerOf(sa.id), await ownerOf(sb.id)];
    assert.match(oa, /^token:[^/]+\/[0-9a-f]+$/, "the owner is the token and a digest of the instance");
    assert.notEqual(oa, ob, "two clients of one token own their streams apart");
    // The bare token, or another instance, is answered 404 for a's stream.
    for (const instance of [undefined, "another-instance-0123456789"]) {
      const res = await fetch(cp.url + "/api/streams/" + sa.id + "/end", {
        method: "POST",
        headers: { Authorization: "Bearer " + token, ...(instance ? { "X-Switchboard-Instance": instance } : {}) },
      });
      assert.equal(res.status, 404, `end by ${instance ?? "the bare token"}`);
    }
    assert.equal((await cp.stream(sa.id)).status, "active");
    await sa.end();
    assert.notEqual((await cp.stream(sa.id)).status, "active", "its own client ends it");
  } finally {
    await a.close();
    await b.close();
  }
});
