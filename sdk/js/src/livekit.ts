/**
 * The LiveKit media engine of @switchboardhq/client, on livekit-client (an
 * optional peer dependency: install it to use this entry point).
 *
 * It joins the room with the join token the control plane minted; a token
 * the server refuses is a token_rejected MediaError, any other failure to
 * connect a connection_lost one. Afterwards, livekit-client starting to
 * reconnect on its own (its signal connection alone, or all of it), or the
 * room disconnecting, is reported as connection_lost at once: the SDK, not
 * the vendor's internal retries, decides where the stream goes next.
 *
 * A server that hangs closes no socket, and livekit-client notices only
 * after many seconds. With the client's watchdog on (watchdogMs), each
 * connection tells it when it last received anything for its live tracks
 * (lastMedia, read from the WebRTC statistics): media for a subscriber, the
 * server's RTCP feedback for a publisher of video.
 */
import { ConnectionError, ConnectionErrorReason, Room, RoomEvent, type RoomConnectOptions, type RoomOptions } from "livekit-client";
import { MediaError, type Assignment, type Connection, type MediaEngine, type QualitySample } from "./types.js";
import { qualityFromStats, receiveMark, type ReceiveMark, type StatsEntry, type StatsTotals } from "./webrtc-stats.js";

export { qualityFromStats, receiveMark, type ReceiveMark, type StatsEntry, type StatsTotals } from "./webrtc-stats.js";

/** What a LiveKitEngine is made with. */
export interface LiveKitEngineOptions {
  /** Options of each Room the engine creates. */
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
    const room = new Room(this.#opts.roomOptions);
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
  #mark: ReceiveMark | undefined;
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
    const entries = await this.#stats(false);
    if (entries.length === 0) return undefined;
    const { sample, totals } = qualityFromStats(entries, Date.now(), this.#totals);
    this.#totals = totals;
    return sample;
  }

  /**
   * When the connection last received anything for its unmuted tracks, in
   * milliseconds since the epoch; undefined while it has none. Each call
   * starts a read of the statistics, whose answer the next call returns: the
   * client's watchdog calls it four times per watchdogMs.
   */
  lastMedia(): number | undefined {
    if (!this.#reading && !this.#closing) {
      this.#reading = true;
      void this.#stats(true)
        .then((entries) => (this.#mark = receiveMark(entries, Date.now(), this.#mark)))
        .catch(() => undefined)
        .finally(() => (this.#reading = false));
    }
    return this.#mark?.at;
  }

  // The statistics of the published and subscribed tracks (only the unmuted ones with live).
  async #stats(live: boolean): Promise<StatsEntry[]> {
    const pubs = [...this.room.localParticipant.trackPublications.values(), ...[...this.room.remoteParticipants.values()].flatMap((rp) => [...rp.trackPublications.values()])];
    const tracks = pubs.filter((p) => !live || !p.isMuted).map((p) => p.track);
    const entries: StatsEntry[] = [];
    for (const t of tracks) {
      if (!t) continue;
      const report = await t.getRTCStatsReport().catch(() => undefined);
      report?.forEach((e: StatsEntry) => entries.push(e));
    }
    return entries;
  }
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
