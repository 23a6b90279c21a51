/**
 * The LiveKit media engine of @switchboardhq/client, on livekit-client (an
 * optional peer dependency: install it to use this entry point).
 *
 * It joins the room with the join token the control plane minted; a token
 * the server refuses is a token_rejected MediaError, any other failure to
 * connect a connection_lost one. Afterwards, livekit-client starting to
 * reconnect on its own (its signal connection alone, or all of it), or the
 * room disconnecting, is reported as connection_lost at once: the SDK, not
 * the vendor's internal retries, decides where the stream goes next. So
 * livekit-client makes no attempt of its own to reconnect a room (unless
 * roomOptions.reconnectPolicy asks it to): retries at a dead server only
 * slowed the connect to the next one.
 *
 * A server that hangs closes no socket, and livekit-client notices only
 * after many seconds. With the client's watchdog on (watchdogMs), each
 * connection tells it when it last heard from the server (lastMedia): for
 * the tracks it subscribes to, when their media last came (from the WebRTC
 * statistics); for those it publishes, when the server last answered a ping
 * on the signal connection or sent RTCP feedback (which LiveKit sends to a
 * publisher only every half second or so). The older of the two counts.
 */
import { ConnectionError, ConnectionErrorReason, Room, RoomEvent, type RoomConnectOptions, type RoomOptions } from "livekit-client";
import { MediaError, type Assignment, type Connection, type MediaEngine, type QualitySample } from "./types.js";
import { qualityFromStats, receiveMark, type ReceiveMark, type StatsEntry, type StatsTotals } from "./webrtc-stats.js";

export { qualityFromStats, receiveMark, type ReceiveMark, type StatsEntry, type StatsTotals } from "./webrtc-stats.js";

/** What a LiveKitEngine is made with. */
export interface LiveKitEngineOptions {
  /** Options of each Room the engine creates; its reconnectPolicy defaults to never retrying. */
  roomOptions?: RoomOptions;
  /** Options of Room.connect; livekit-client's own retries are off unless set here. */
  connectOptions?: RoomConnectOptions;
  /**
   * Runs once the room is connected, before the stream is live on it: publish
   * the camera and microphone, attach remote tracks. A rejection fails the
   * connect (connection_lost).
   */
  onConnected?: (room: Room, a: Assignment) => void | Promise<void>;
}

/** A MediaEngine for providers of kind livekit. */
export class LiveKitEngine implements MediaEngine {
  readonly #opts: LiveKitEngineOptions;

  constructor(opts: LiveKitEngineOptions = {}) {
    this.#opts = opts;
  }

  async connect(a: Assignment, report: (err: MediaError) => void, signal: AbortSignal): Promise<Connection> {
    const name = a.provider.name;
    if (!a.provider.url) throw new MediaError("connection_lost", `livekit ${name}: the provider has no url`);
    if (signal.aborted) throw new MediaError("connection_lost", `livekit ${name}: connect aborted`);
    const room = new Room(roomOptions(this.#opts.roomOptions));
    const onAbort = (): void => void room.disconnect().catch(() => undefined);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await room.connect(a.provider.url, a.token, { maxRetries: 0, ...this.#opts.connectOptions });
      if (signal.aborted) throw new Error("connect aborted");
      await this.#opts.onConnected?.(room, a);
    } catch (err) {
      await room.disconnect().catch(() => undefined);
      throw connectError(name, err, signal);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
    return new LiveKitConnection(room, name, report);
  }
}

/** A connection of the LiveKitEngine: one Room. */
export class LiveKitConnection implements Connection {
  /** The room, for the app's tracks. */
  readonly room: Room;
  #closing = false;
  #totals: StatsTotals | undefined;
  #remoteMark: ReceiveMark | undefined;
  #localMark: ReceiveMark | undefined;
  #pingSent = false;
  #pongAt: number | undefined;
  #reading = false;
  readonly #off: () => void;

  constructor(room: Room, name: string, report: (err: MediaError) => void) {
    this.room = room;
    let failed = false;
    const fail = (why: string): void => {
      if (this.#closing || failed) return;
      failed = true;
      report(new MediaError("connection_lost", `livekit ${name}: ${why}`));
    };
    // A server that dies closes the signal connection first: livekit-client
    // then tries to resume it (SignalReconnecting) for a second or more
    // before it reconnects in full (Reconnecting).
    const onSignalReconnecting = (): void => fail("signal connection to the server lost");
    const onReconnecting = (): void => fail("connection to the server lost");
    const onDisconnected = (reason?: unknown): void => fail(`disconnected${reason === undefined ? "" : ` (reason ${String(reason)})`}`);
    room.on(RoomEvent.SignalReconnecting, onSignalReconnecting);
    room.on(RoomEvent.Reconnecting, onReconnecting);
    room.on(RoomEvent.Disconnected, onDisconnected);
    this.#off = () => {
      room.off(RoomEvent.SignalReconnecting, onSignalReconnecting);
      room.off(RoomEvent.Reconnecting, onReconnecting);
      room.off(RoomEvent.Disconnected, onDisconnected);
    };
  }

  async disconnect(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#off();
    await this.room.disconnect();
  }

  /** The connection's quality, from the WebRTC statistics of its published and subscribed tracks. */
  async quality(): Promise<QualitySample | undefined> {
    const entries = await this.#stats("all");
    if (entries.length === 0) return undefined;
    const { sample, totals } = qualityFromStats(entries, Date.now(), this.#totals);
    this.#totals = totals;
    return sample;
  }

  /**
   * When the connection last heard from the server for its unmuted tracks,
   * in milliseconds since the epoch; undefined while it has none. For
   * subscribed tracks that is their media; for published ones the server's
   * answer to a ping, or its RTCP feedback. Each call reads the statistics
   * and pings the server, and the next call returns what they said: the
   * client's watchdog calls it four times per watchdogMs.
   */
  lastMedia(): number | undefined {
    if (!this.#closing) {
      this.#ping();
      if (!this.#reading) {
        this.#reading = true;
        void Promise.all([this.#stats("remote"), this.#stats("local")])
          .then(([remote, local]) => {
            const now = Date.now();
            this.#remoteMark = receiveMark(remote, now, this.#remoteMark);
            this.#localMark = local.length > 0 ? receiveMark(local, now, this.#localMark) : undefined;
          })
          .catch(() => undefined)
          .finally(() => (this.#reading = false));
      }
    }
    const remote = this.#remoteMark?.at;
    // A published track is watched from its first feedback on; pongs then keep it alive too.
    const local = this.#localMark?.at === undefined ? undefined : Math.max(this.#localMark.at, this.#pongAt ?? 0);
    if (remote === undefined) return local;
    return local === undefined ? remote : Math.min(remote, local);
  }

  // Pings the server on the signal connection when no ping is waiting for
  // its answer, and notes when one came: livekit-client sets the signal's
  // round-trip time on each answer, which the ping sets aside beforehand.
  #ping(): void {
    const sc = (this.room as { engine?: { client?: { rtt: number; sendPing?: () => Promise<unknown> } } }).engine?.client;
    if (!sc || typeof sc.sendPing !== "function") return;
    if (this.#pingSent && sc.rtt >= 0) {
      this.#pongAt = Date.now();
      this.#pingSent = false;
    }
    if (this.#pingSent) return;
    this.#pingSent = true;
    sc.rtt = -1;
    void sc.sendPing().catch(() => undefined);
  }

  // The statistics of the subscribed or the published tracks (all of them, or only the unmuted ones).
  async #stats(which: "remote" | "local" | "all"): Promise<StatsEntry[]> {
    const local = which === "remote" ? [] : [...this.room.localParticipant.trackPublications.values()];
    const remote = which === "local" ? [] : [...this.room.remoteParticipants.values()].flatMap((rp) => [...rp.trackPublications.values()]);
    const tracks = [...local, ...remote].filter((p) => which === "all" || !p.isMuted).map((p) => p.track);
    const entries: StatsEntry[] = [];
    for (const t of tracks) {
      if (!t) continue;
      const report = await t.getRTCStatsReport().catch(() => undefined);
      report?.forEach((e: StatsEntry) => entries.push(e));
    }
    return entries;
  }
}

/** @internal the options of the engine's rooms: livekit-client does not reconnect them unless the app asks. */
export function roomOptions(o: RoomOptions | undefined): RoomOptions {
  return { reconnectPolicy: { nextRetryDelayInMs: () => null }, ...o };
}

/** The MediaError of a failed connect. */
function connectError(name: string, err: unknown, signal: AbortSignal): MediaError {
  const msg = err instanceof Error ? err.message : String(err);
  if (signal.aborted) return new MediaError("connection_lost", `livekit ${name}: connect aborted`, { cause: err });
  if (err instanceof ConnectionError && err.reason === ConnectionErrorReason.NotAllowed) {
    return new MediaError("token_rejected", `livekit ${name}: ${msg}`, { cause: err });
  }
  return new MediaError("connection_lost", `livekit ${name}: ${msg}`, { cause: err });
}
