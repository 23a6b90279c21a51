// The LiveKit connection's glue to livekit-client's Room, with a stand-in
// Room (an event emitter with the participants and tracks the connection
// reads): which room events it reports, and what it tells the watchdog.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import type { Room } from "livekit-client";
import { LiveKitConnection } from "../src/livekit.js";
import type { MediaError } from "../src/index.js";

type Stats = Array<Record<string, unknown>>;

/** A stand-in for a Room: events, and a local and a remote track whose statistics the test sets. */
class FakeRoom extends EventEmitter {
  disconnects = 0;
  local: Stats = [];
  remote: Stats = [];
  remoteMuted = false;
  readonly localParticipant = { trackPublications: new Map<string, unknown>() };
  readonly remoteParticipants = new Map<string, { trackPublications: Map<string, unknown> }>();
  constructor() {
    super();
    const report = (get: () => Stats) => async () => new Map(get().map((e, i) => [String(e.id ?? i), e]));
    this.localParticipant.trackPublications.set("TR_cam", { isMuted: false, track: { getRTCStatsReport: report(() => this.local) } });
    const room = this;
    this.remoteParticipants.set("PA_other", {
      trackPublications: new Map([["TR_their", { get isMuted() { return room.remoteMuted; }, track: { getRTCStatsReport: report(() => this.remote) } }]]),
    });
  }
  async disconnect(): Promise<void> {
    this.disconnects++;
  }
}

function connection(): { room: FakeRoom; conn: LiveKitConnection; reports: MediaError[] } {
  const room = new FakeRoom();
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

test("lastMedia follows the bytes the tracks receive, and ignores muted tracks", async () => {
  const { room, conn } = connection();
  assert.equal(await lastMedia(conn), undefined, "no statistics yet: nothing watched");
  // The publisher's transport receives the server's feedback.
  room.local = [{ type: "outbound-rtp", id: "OT01", bytesSent: 5000 }, { type: "transport", id: "T01", bytesReceived: 300 }];
  const before = Date.now();
  const armed = await lastMedia(conn);
  assert.ok(armed !== undefined && armed >= before, `armed at ${armed}`);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(await lastMedia(conn), armed, "nothing new: the same time");
  // Media from the other participant is progress.
  room.remote = [{ type: "inbound-rtp", id: "IT01", bytesReceived: 10_000 }, { type: "transport", id: "T02", bytesReceived: 10_500 }];
  const later = await lastMedia(conn);
  assert.ok(later !== undefined && armed !== undefined && later > armed, `${later} after ${armed}`);
  // The other participant muted: its track is not read (the total drops,
  // which counts as a change once), and what it still receives is not progress.
  room.remoteMuted = true;
  const muted = await lastMedia(conn);
  await new Promise((r) => setTimeout(r, 20));
  room.remote = [{ type: "inbound-rtp", id: "IT01", bytesReceived: 20_000 }, { type: "transport", id: "T02", bytesReceived: 20_500 }];
  assert.equal(await lastMedia(conn), muted, "the muted track's bytes are not watched");
  room.remoteMuted = false;
  const unmuted = await lastMedia(conn);
  assert.ok(unmuted !== undefined && muted !== undefined && unmuted > muted, "unmuted, its bytes count again");
  await conn.disconnect();
});
