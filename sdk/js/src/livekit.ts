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
 * A viewer with a hot standby counts the server's answers for its
 * subscribed tracks too: it blames its provider only when the server is
 * silent as well.
 *
 * With hotStandby, the engine keeps each stream's standby joined: it joins
 * the standby assignment the SDK hands it (standby), runs onConnected there
 * (a publisher publishes there too, a viewer subscribes), and the failover's
 * connect to that provider returns the room already up, so that a failover
 * is a switch rather than a join. A viewer whose publisher leaves its room
 * while the same publisher is in the standby room follows it: the
 * connection reports publisher_moved, which the SDK does not blame on the
 * provider it leaves.
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
  /**
   * Keeps each stream's standby joined ahead of a failover (default false).
   * It costs a second connection per stream: a publisher publishes on both,
   * a viewer receives both (the app shows the current one, stream.provider).
   */
  hotStandby?: boolean;
}

/** A standby room joined ahead of time for one stream. */
interface Hot {
  key: string;
  ac: AbortController;
  room: Room | undefined;
  conn: Promise<LiveKitConnection | undefined>;
  /** Where the connection reports once it is the stream's; before, an error has the standby joined again. */
  report: ((err: MediaError) => void) | undefined;
  failed: boolean;
  ready: boolean;
}

/** The joins a hot standby makes at most, from the standby heard to the next one. */
const hotAttempts = 6;

/** What a hot standby must match to be used by a connect: the stream, the provider and the user. */
function hotKey(a: Assignment): string {
  return JSON.stringify([a.streamId, a.provider.name, a.provider.url, a.room, a.userId, a.role]);
}

/** A MediaEngine for providers of kind livekit. */
export class LiveKitEngine implements MediaEngine {
  readonly #opts: LiveKitEngineOptions;
  readonly #hot = new Map<string, Hot>();

  constructor(opts: LiveKitEngineOptions = {}) {
    this.#opts = opts;
  }

  /**
   * Hears of a stream's standby assignment. With hotStandby, it joins a
   * LiveKit standby now, and leaves the one it joined before for another
   * provider (or when a is undefined: the stream has no standby, or ended).
   */
  standby(streamId: string, a: Assignment | undefined): void {
    if (!this.#opts.hotStandby) return;
    const key = a?.provider.kind === "livekit" ? hotKey(a) : undefined;
    const h = this.#hot.get(streamId);
    if (h && h.key === key && !h.failed) return;
    if (h) this.#drop(streamId, h);
    if (!a || key === undefined) return;
    const nh: Hot = { key, ac: new AbortController(), room: undefined, conn: Promise.resolve(undefined), report: undefined, failed: false, ready: false };
    this.#hot.set(streamId, nh);
    this.#warm(streamId, nh, a, 0);
  }

  /**
   * Joins the standby a for h. A join that fails, or a room that breaks
   * before the stream takes it over, is left and joined again after a pause
   * (0.5 s, doubling up to 5 s; at most hotAttempts joins), for as long as h
   * is the stream's standby.
   */
  #warm(streamId: string, h: Hot, a: Assignment, attempt: number): void {
    h.failed = h.ready = false;
    h.room = undefined;
    let conn: LiveKitConnection | undefined;
    const retry = (): void => {
      h.failed = true;
      void conn?.disconnect().catch(() => undefined);
      if (this.#hot.get(streamId) !== h || h.ac.signal.aborted || attempt + 1 >= hotAttempts) return;
      const t = setTimeout(() => this.#warm(streamId, h, a, attempt + 1), Math.min(500 * 2 ** attempt, 5000));
      h.ac.signal.addEventListener("abort", () => clearTimeout(t), { once: true });
    };
    const onErr = (err: MediaError): void => {
      if (h.report) h.report(err);
      else if (!h.failed) retry();
    };
    h.conn = this.#join(a, onErr, h.ac.signal, (room) => (h.room = room)).then(
      (c) => {
        conn = c;
        h.ready = true;
        return c;
      },
      () => {
        if (!h.ac.signal.aborted) retry();
        return undefined;
      },
    );
  }

  #drop(streamId: string, h: Hot): void {
    this.#hot.delete(streamId);
    h.ac.abort();
    void h.conn.then((c) => c?.disconnect()).catch(() => undefined);
  }

  /**
   * The provider on which the stream streamId has its hot standby joined and
   * ready (onConnected done), or undefined.
   */
  standbyOf(streamId: string): string | undefined {
    const h = this.#hot.get(streamId);
    return h?.ready && !h.failed ? JSON.parse(h.key)[1] : undefined;
  }

  /** The room of the stream's hot standby, once it is joined. */
  #standbyRoom(streamId: string): Room | undefined {
    const h = this.#hot.get(streamId);
    return h && !h.failed ? h.room : undefined;
  }

  /**
   * Joins a.room on a.provider; with hotStandby, a standby joined already
   * for the same stream, provider and user is taken over instead (waiting
   * for its join when it is still under way).
   */
  async connect(a: Assignment, report: (err: MediaError) => void, signal: AbortSignal): Promise<Connection> {
    const h = this.#hot.get(a.streamId);
    if (h && h.key === hotKey(a)) {
      this.#hot.delete(a.streamId);
      const conn = await Promise.race([h.conn, new Promise<undefined>((resolve) => signal.addEventListener("abort", () => resolve(undefined), { once: true }))]);
      if (conn && !h.failed && !signal.aborted) {
        h.report = report;
        return conn;
      }
      this.#drop(a.streamId, h);
    }
    return this.#join(a, report, signal);
  }

  async #join(a: Assignment, report: (err: MediaError) => void, signal: AbortSignal, onRoom?: (room: Room) => void): Promise<LiveKitConnection> {
    const name = a.provider.name;
    if (!a.provider.url) throw new MediaError("connection_lost", `livekit ${name}: the provider has no url`);
    if (signal.aborted) throw new MediaError("connection_lost", `livekit ${name}: connect aborted`);
    const room = new Room(roomOptions(this.#opts.roomOptions));
    onRoom?.(room);
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
    const follow = a.role === "subscriber" && this.#opts.hotStandby ? () => this.#standbyRoom(a.streamId) : undefined;
    return new LiveKitConnection(room, name, report, follow);
  }
}

/** The identities of the participants publishing tracks in room. */
function publishers(room: Room): string[] {
  return [...room.remoteParticipants.values()].filter((p) => p.trackPublications.size > 0).map((p) => p.identity);
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
  readonly #follows: boolean;
  readonly #off: () => void;

  /**
   * Reports what goes wrong with room; follow, when given, returns the
   * stream's standby room, where a viewer follows a publisher that left.
   */
  constructor(room: Room, name: string, report: (err: MediaError) => void, follow?: () => Room | undefined) {
    this.room = room;
    this.#follows = follow !== undefined;
    let failed = false;
    const fail = (why: string, kind: "connection_lost" | "publisher_moved" = "connection_lost"): void => {
      if (this.#closing || failed) return;
      failed = true;
      report(new MediaError(kind, `livekit ${name}: ${why}`));
    };
    // A publisher that leaves this room on a server that still answers
    // moved: when it publishes in the standby room, the viewer follows it.
    const onLeft = (p: { identity: string }): void => {
      const there = follow?.();
      if (!there || publishers(room).length > 0) return;
      if (publishers(there).includes(p.identity)) fail(`publisher ${p.identity} moved to the standby's server`, "publisher_moved");
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
    room.on(RoomEvent.ParticipantDisconnected, onLeft);
    this.#off = () => {
      room.off(RoomEvent.ParticipantDisconnected, onLeft);
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
    let remote = this.#remoteMark?.at;
    // A viewer with a hot standby blames its provider only when the server
    // stops answering too: media that stops while the server answers is the
    // publisher's doing, and a publisher that moves is followed (follow).
    if (remote !== undefined && this.#follows) remote = Math.max(remote, this.#pongAt ?? 0);
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
