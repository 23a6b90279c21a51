// The LiveKit connection's glue to livekit-client's Room, with a stand-in
// Room (an event emitter with the participants and tracks the connection
// reads): which room events it reports, and what it tells the watchdog.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import type { Room } from "livekit-client";
import { LiveKitConnection, roomOptions } from "../src/livekit.js";
import type { MediaError } from "../src/index.js";

type Stats = Array<Record<string, unknown>>;

/**
 * A stand-in for a Room: events, a local and a remote track whose statistics
 * the test sets, and a signal client that answers pings while answering is on.
 */
class FakeRoom extends EventEmitter {
  disconnects = 0;
  local: Stats = [];
  remote: Stats = [];
  remoteMuted = false;
  answering = true;
  pings = 0;
  readonly localParticipant = { trackPublications: new Map<string, unknown>() };
  readonly remoteParticipants = new Map<string, { identity: string; trackPublications: Map<string, unknown> }>();
  readonly engine = {
    client: {
      rtt: 0,
      sendPing: async (): Promise<void> => {
        this.pings++;
        if (this.answering) setImmediate(() => (this.engine.client.rtt = 2));
      },
    },
  };
  constructor(tracks: { local: boolean; remote: boolean }) {
    super();
    const report = (get: () => Stats) => async () => new Map(get().map((e, i) => [String(e.id ?? i), e]));
    if (tracks.local) this.localParticipant.trackPublications.set("TR_cam", { isMuted: false, track: { getRTCStatsReport: report(() => this.local) } });
    const room = this;
    if (tracks.remote) {
      this.remoteParticipants.set("publisher-1", {
        identity: "publisher-1",
        trackPublications: new Map([["TR_their", { get isMuted() { return room.remoteMuted; }, track: { getRTCStatsReport: report(() => this.remote) } }]]),
      });
    }
  }
  async disconnect(): Promise<void> {
    this.disconnects++;
  }
}

function connection(tracks = { local: true, remote: true }): { room: FakeRoom; conn: LiveKitConnection; reports: MediaError[] } {
  const room = new FakeRoom(tracks);
  const reports: MediaError[] = [];
  const conn = new LiveKitConnection(room as unknown as Room, "lk-a", (e) => reports.push(e));
  return { room, conn, reports };
}

// lastMedia answers from the previous read and starts the next: once any
// read in flight has ended, a call starts a read of the current statistics,
// whose answer the next call gives.
async function lastMedia(conn: LiveKitConnection): Promise<number | undefined> {
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };
  await settle();
  conn.lastMedia();
  await settle();
  return conn.lastMedia();
}

for (const [event, why] of [
  ["signalReconnecting", "signal connection to the server lost"],
  ["reconnecting", "connection to the server lost"],
  ["disconnected", "disconnected"],
] as const) {
  test(`a room that emits ${event} is reported once as connection_lost`, async () => {
    const { room, conn, reports } = connection();
    room.emit(event);
    room.emit(event);
    room.emit("disconnected");
    assert.equal(reports.length, 1);
    assert.equal(reports[0]?.kind, "connection_lost");
    assert.match(reports[0]?.message ?? "", new RegExp(`livekit lk-a: ${why}`));
    await conn.disconnect();
  });
}

test("a connection being disconnected reports nothing and leaves the room once", async () => {
  const { room, conn, reports } = connection();
  await conn.disconnect();
  await conn.disconnect();
  room.emit("signalReconnecting");
  room.emit("disconnected");
  assert.equal(reports.length, 0);
  assert.equal(room.disconnects, 1);
  assert.equal(room.listenerCount("signalReconnecting") + room.listenerCount("reconnecting") + room.listenerCount("disconnected"), 0);
});

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test("a subscriber's lastMedia follows the media its tracks receive, and ignores muted tracks", async () => {
  const { room, conn } = connection({ local: false, remote: true });
  assert.equal(await lastMedia(conn), undefined, "no statistics yet: nothing watched");
  room.remote = [{ type: "inbound-rtp", id: "IT01", bytesReceived: 10_000 }, { type: "transport", id: "T02", bytesReceived: 10_500 }];
  const before = Date.now();
  const armed = await lastMedia(conn);
  assert.ok(armed !== undefined && armed >= before, `armed at ${armed}`);
  await pause(20);
  assert.equal(await lastMedia(conn), armed, "nothing new: the same time, though the server answers pings");
  room.remote = [{ type: "inbound-rtp", id: "IT01", bytesReceived: 12_000 }, { type: "transport", id: "T02", bytesReceived: 12_500 }];
  const later = await lastMedia(conn);
  assert.ok(later !== undefined && later > armed, `${later} after ${armed}`);
  // The other participant muted: its track is not read (nothing watched),
  // and unmuted, its bytes count again.
  room.remoteMuted = true;
  assert.equal(await lastMedia(conn), undefined, "a muted track is not watched");
  room.remoteMuted = false;
  await pause(20);
  const unmuted = await lastMedia(conn);
  assert.ok(unmuted !== undefined && unmuted > later, "unmuted, its bytes count again");
  await conn.disconnect();
});

test("a publisher's lastMedia follows the server's answers to pings and its feedback, from the first feedback on", async () => {
  const { room, conn } = connection({ local: true, remote: false });
  room.local = [{ type: "outbound-rtp", id: "OT01", bytesSent: 5000 }, { type: "transport", id: "T01", bytesReceived: 0 }];
  assert.equal(await lastMedia(conn), undefined, "no feedback yet: not armed, whatever the pings");
  assert.ok(room.pings > 0, "pinged");
  room.local = [{ type: "outbound-rtp", id: "OT01", bytesSent: 9000 }, { type: "transport", id: "T01", bytesReceived: 300 }];
  const armed = await lastMedia(conn);
  assert.ok(armed !== undefined, "armed by the first feedback");
  // No more feedback, but the server answers pings: alive.
  await pause(20);
  const pinged = await lastMedia(conn);
  assert.ok(pinged !== undefined && pinged > armed, `pongs keep it alive: ${pinged} after ${armed}`);
  // The server hangs: neither pongs nor feedback, and one ping at a time.
  room.answering = false;
  await lastMedia(conn);
  const pings = room.pings;
  const hung = await lastMedia(conn);
  await pause(20);
  assert.equal(await lastMedia(conn), hung, "nothing heard: the time stands");
  assert.equal(room.pings, pings, "no new ping while one waits for its answer");
  await conn.disconnect();
});

test("with both, the older of the subscribed media and the publisher's answers counts", async () => {
  const { room, conn } = connection();
  room.local = [{ type: "transport", id: "T01", bytesReceived: 300 }];
  room.remote = [{ type: "inbound-rtp", id: "IT01", bytesReceived: 10_000 }];
  const armed = await lastMedia(conn);
  assert.ok(armed !== undefined);
  await pause(20);
  // Pongs come, media does not: the media's time.
  assert.equal(await lastMedia(conn), armed);
  await conn.disconnect();
});

test("the engine's rooms do not reconnect on their own unless the app gives a policy", () => {
  const none = roomOptions(undefined);
  assert.equal(none.reconnectPolicy?.nextRetryDelayInMs({ retryCount: 0, elapsedMs: 0 }), null);
  assert.equal(roomOptions({ adaptiveStream: false }).reconnectPolicy?.nextRetryDelayInMs({ retryCount: 0, elapsedMs: 0 }), null);
  const mine = { nextRetryDelayInMs: () => 300 };
  const kept = roomOptions({ reconnectPolicy: mine, dynacast: false });
  assert.equal(kept.reconnectPolicy, mine);
  assert.equal(kept.dynacast, false);
});

test("a viewer whose publisher left for the standby's room reports publisher_moved, once", async () => {
  const standby = new FakeRoom({ local: false, remote: true });
  const room = new FakeRoom({ local: false, remote: true });
  const reports: MediaError[] = [];
  const conn = new LiveKitConnection(room as unknown as Room, "lk-a", (e) => reports.push(e), () => standby as unknown as Room);
  // Another participant, with no tracks, leaving: nothing.
  room.emit("participantDisconnected", { identity: "viewer-2" });
  assert.equal(reports.length, 0);
  room.remoteParticipants.delete("publisher-1");
  room.emit("participantDisconnected", { identity: "publisher-1" });
  room.emit("participantDisconnected", { identity: "publisher-1" });
  assert.equal(reports.length, 1);
  assert.equal(reports[0]?.kind, "publisher_moved");
  assert.match(reports[0]?.message ?? "", /publisher publisher-1 moved/);
  await conn.disconnect();
  assert.equal(room.listenerCount("participantDisconnected"), 0);
});

test("a publisher that leaves with no sign of it in the standby's room, or with no standby, is no error", async () => {
  for (const follow of [() => new FakeRoom({ local: false, remote: false }) as unknown as Room, () => undefined, undefined]) {
    const room = new FakeRoom({ local: false, remote: true });
    const reports: MediaError[] = [];
    const conn = new LiveKitConnection(room as unknown as Room, "lk-a", (e) => reports.push(e), follow);
    room.remoteParticipants.delete("publisher-1");
    room.emit("participantDisconnected", { identity: "publisher-1" });
    assert.equal(reports.length, 0);
    await conn.disconnect();
  }
  // A publisher still in the viewer's room: the one that left was not the only one.
  const standby = new FakeRoom({ local: false, remote: true });
  const room = new FakeRoom({ local: false, remote: true });
  const reports: MediaError[] = [];
  const conn = new LiveKitConnection(room as unknown as Room, "lk-a", (e) => reports.push(e), () => standby as unknown as Room);
  room.emit("participantDisconnected", { identity: "publisher-2" });
  assert.equal(reports.length, 0);
  await conn.disconnect();
});

test("a viewer with a hot standby counts the server's answers too: media that stops while the server answers is not its provider's fault", async () => {
  const room = new FakeRoom({ local: false, remote: true });
  const conn = new LiveKitConnection(room as unknown as Room, "lk-a", () => undefined, () => undefined);
  room.remote = [{ type: "inbound-rtp", id: "IT01", bytesReceived: 10_000 }];
  const armed = await lastMedia(conn);
  assert.ok(armed !== undefined);
  await pause(20);
  const answered = await lastMedia(conn);
  assert.ok(answered !== undefined && answered > armed, "no new media, but the server answered a ping");
  room.answering = false;
  await lastMedia(conn);
  const silent = await lastMedia(conn);
  await pause(20);
  assert.equal(await lastMedia(conn), silent, "the server silent too: the time stays");
  await conn.disconnect();
});
