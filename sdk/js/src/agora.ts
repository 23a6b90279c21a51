/**
 * The Agora media engine of @switchboardhq/client, on agora-rtc-sdk-ng (an
 * optional peer dependency: install it to use this entry point).
 *
 * It joins the channel with the App ID, channel, uid and token the control
 * plane minted; a publisher joins as host and publishes, a subscriber joins as
 * audience; both subscribe to what others publish. A token or App ID the
 * servers refuse is a token_rejected MediaError, any other failed join a
 * connection_lost one. agora-rtc-sdk-ng retries a join it cannot make for as
 * long as it is let, so the engine gives up after joinTimeoutMs (or when the
 * SDK's signal aborts) and leaves the channel. Afterwards, the connection
 * reconnecting or dropping is connection_lost at once, a token that expires
 * (or is about to) token_rejected, and media that stays broken (an
 * `exception` not recovered within exceptionGraceMs) media_stalled: the SDK,
 * not Agora's internal retries, decides where the stream goes next.
 */
import AgoraRTC from "agora-rtc-sdk-ng";
import type { ClientConfig, ConnectionDisconnectedReason, ConnectionState, IAgoraRTCClient, IAgoraRTCRemoteUser, ILocalTrack, UID } from "agora-rtc-sdk-ng";
import { MediaError, type Assignment, type Connection, type MediaEngine, type QualitySample } from "./types.js";
import { agoraQuality, agoraRefused, agoraUid } from "./agora-map.js";
import { bounded, Stop } from "./bounded.js";

export { agoraQuality, agoraRefused, agoraUid, type AgoraStats } from "./agora-map.js";

/** What an AgoraEngine is made with. */
export interface AgoraEngineOptions {
  /** The client's configuration; by default { mode: "live", codec: "vp8" }, the role set by the assignment. */
  clientConfig?: Partial<ClientConfig>;
  /** How long a join may take before the engine gives up, in milliseconds (10 s). */
  joinTimeoutMs?: number;
  /**
   * How long a media `exception` (frames or bitrate sent too low, received
   * audio or video failing to decode) may last unrecovered before it is
   * reported as media_stalled, in milliseconds (5 s); 0 never reports them.
   */
  exceptionGraceMs?: number;
  /**
   * Makes the tracks a publisher publishes, once the channel is joined; by
   * default the microphone and the camera. The connection closes them when it
   * disconnects.
   */
  createTracks?: (a: Assignment) => Promise<ILocalTrack[]>;
  /** Subscribe to every audio and video track others publish (true). */
  autoSubscribe?: boolean;
  /** Runs for each remote track subscribed: play or render it here. */
  onSubscribed?: (user: IAgoraRTCRemoteUser, mediaType: "audio" | "video", client: IAgoraRTCClient) => void;
  /**
   * Runs once the channel is joined and a publisher's tracks are published,
   * before the stream is live on it. A rejection fails the connect
   * (connection_lost).
   */
  onConnected?: (client: IAgoraRTCClient, a: Assignment) => void | Promise<void>;
}

const defaultJoinTimeoutMs = 10_000;
const defaultExceptionGraceMs = 5_000;

/** A MediaEngine for providers of kind agora. */
export class AgoraEngine implements MediaEngine {
  readonly #opts: AgoraEngineOptions;

  constructor(opts: AgoraEngineOptions = {}) {
    this.#opts = opts;
  }

  async connect(a: Assignment, report: (err: MediaError) => void, signal: AbortSignal): Promise<Connection> {
    const name = a.provider.name;
    const appId = a.provider.appId;
    if (!appId) throw new MediaError("connection_lost", `agora ${name}: the provider has no appId`);
    if (signal.aborted) throw new MediaError("connection_lost", `agora ${name}: connect aborted`);
    const o = this.#opts;
    const config: ClientConfig = { mode: "live", codec: "vp8", ...o.clientConfig };
    if (config.mode === "live" && !o.clientConfig?.role) config.role = a.role === "publisher" ? "host" : "audience";
    let client: IAgoraRTCClient;
    try {
      client = AgoraRTC.createClient(config);
    } catch (err) {
      throw connectError(name, err, signal, 0);
    }
    const conn = new AgoraConnection(client, name, report, { exceptionGraceMs: o.exceptionGraceMs, autoSubscribe: o.autoSubscribe, onSubscribed: o.onSubscribed });
    const timeoutMs = o.joinTimeoutMs ?? defaultJoinTimeoutMs;
    try {
      await bounded(client.join(appId, a.room, a.token || null, agoraUid(a.userId)), signal, timeoutMs);
      if (a.role === "publisher") {
        const making = (o.createTracks ?? defaultTracks)(a);
        // Owned even when they come after the engine gave up: then they are closed at once.
        making.then((ts) => conn.own(ts), () => undefined);
        const tracks = await bounded(making, signal, timeoutMs);
        await bounded(client.publish(tracks), signal, timeoutMs);
      }
      await o.onConnected?.(client, a);
      if (signal.aborted) throw new Stop("aborted");
    } catch (err) {
      await conn.disconnect().catch(() => undefined);
      throw connectError(name, err, signal, timeoutMs);
    }
    conn.live();
    return conn;
  }
}

/** What an AgoraConnection is made with, from AgoraEngineOptions. */
export interface AgoraConnectionOptions {
  exceptionGraceMs?: number | undefined;
  autoSubscribe?: boolean | undefined;
  onSubscribed?: AgoraEngineOptions["onSubscribed"];
}

/**
 * The `exception` codes that mean media is not getting through (the
 * recoveries are these plus 2000): 1002 frame rate sent too low, 1003 video
 * bitrate sent too low, 1005 received video failing to decode, 2003 audio
 * bitrate sent too low, 2005 received audio failing to decode. Low capture
 * frame rates and quiet microphones or speakers are not the provider's doing.
 */
const stallCodes = new Set([1002, 1003, 1005, 2003, 2005]);

/** A connection of the AgoraEngine: one client in one channel. */
export class AgoraConnection implements Connection {
  /** The client, for the app's tracks. */
  readonly client: IAgoraRTCClient;
  readonly #name: string;
  readonly #report: (err: MediaError) => void;
  readonly #graceMs: number;
  readonly #stalls = new Map<number, ReturnType<typeof setTimeout>>();
  readonly #tracks: ILocalTrack[] = [];
  readonly #listeners: Array<[string, Function]> = [];
  #live = false;
  #bytes = 0;
  #lastMedia: number | undefined;
  #closing: Promise<void> | undefined;
  #failed = false;

  constructor(client: IAgoraRTCClient, name: string, report: (err: MediaError) => void, opts: AgoraConnectionOptions = {}) {
    this.client = client;
    this.#name = name;
    this.#report = report;
    this.#graceMs = opts.exceptionGraceMs ?? defaultExceptionGraceMs;
    const on = <A extends unknown[]>(event: string, fn: (...args: A) => void): void => {
      client.on(event, fn);
      this.#listeners.push([event, fn]);
    };
    if (opts.autoSubscribe ?? true) {
      on("user-published", (user: IAgoraRTCRemoteUser, mediaType: "audio" | "video" | "datachannel") => {
        if (mediaType !== "audio" && mediaType !== "video") return;
        client.subscribe(user, mediaType).then(
          () => {
            if (!this.#closing) opts.onSubscribed?.(user, mediaType, client);
          },
          () => undefined, // the watchdog notices media that never comes
        );
      });
    }
    on("connection-state-change", (cur: ConnectionState, _prev: ConnectionState, reason?: ConnectionDisconnectedReason) => {
      if (!this.#live) return;
      if (cur === "RECONNECTING") this.#fail("connection_lost", "connection to the server lost, reconnecting");
      else if (cur === "DISCONNECTED") {
        const kind = reason === "TOKEN_EXPIRE" || reason === "UID_BANNED" || reason === "IP_BANNED" || reason === "CHANNEL_BANNED" ? "token_rejected" : "connection_lost";
        this.#fail(kind, `disconnected${reason ? ` (${reason})` : ""}`);
      }
    });
    on("token-privilege-will-expire", () => {
      if (this.#live) this.#fail("token_rejected", "the join token is about to expire");
    });
    on("token-privilege-did-expire", () => {
      if (this.#live) this.#fail("token_rejected", "the join token expired");
    });
    on("exception", (e: { code: number; msg: string; uid: UID }) => {
      if (!this.#live || this.#graceMs <= 0 || typeof e?.code !== "number") return;
      if (stallCodes.has(e.code)) {
        if (this.#stalls.has(e.code)) return;
        this.#stalls.set(
          e.code,
          setTimeout(() => {
            this.#stalls.delete(e.code);
            this.#fail("media_stalled", `exception ${e.code} ${String(e.msg)} (uid ${String(e.uid)}) not recovered within ${this.#graceMs} ms`);
          }, this.#graceMs),
        );
      } else if (stallCodes.has(e.code - 2000)) {
        clearTimeout(this.#stalls.get(e.code - 2000));
        this.#stalls.delete(e.code - 2000);
      }
    });
  }

  /** @internal takes local tracks over: they are closed on disconnect. */
  own(tracks: ILocalTrack[]): void {
    for (const t of tracks) {
      if (this.#tracks.includes(t)) continue;
      this.#tracks.push(t);
      if (this.#closing) closeTrack(t);
    }
  }

  /** @internal starts reporting errors: the join is done. */
  live(): void {
    this.#live = true;
  }

  #fail(kind: MediaError["kind"], why: string): void {
    if (this.#closing || this.#failed) return;
    this.#failed = true;
    this.#clearStalls();
    this.#report(new MediaError(kind, `agora ${this.#name}: ${why}`));
  }

  #clearStalls(): void {
    for (const t of this.#stalls.values()) clearTimeout(t);
    this.#stalls.clear();
  }

  /** Leaves the channel, closes the tracks it published and stops listening to the client. */
  disconnect(): Promise<void> {
    this.#closing ??= (async () => {
      this.#clearStalls();
      for (const [event, fn] of this.#listeners) this.client.off(event, fn);
      for (const t of this.#tracks) closeTrack(t);
      await this.client.leave().catch(() => undefined);
    })();
    return this.#closing;
  }

  /** When the bytes sent and received (getRTCStats) last grew, in milliseconds since the epoch. */
  lastMedia(): number | undefined {
    if (this.client.connectionState !== "CONNECTED") return this.#lastMedia;
    const s = this.client.getRTCStats();
    const bytes = (s.SendBytes || 0) + (s.RecvBytes || 0);
    if (bytes > this.#bytes) {
      this.#bytes = bytes;
      this.#lastMedia = Date.now();
    }
    return this.#lastMedia;
  }

  /**
   * The connection's quality from agora-rtc-sdk-ng's statistics: the
   * round-trip time to Agora's edge (getRTCStats), the share of packets lost
   * and the frame rate of the local and remote audio and video tracks, the
   * jitter of what is sent, and the bitrate sent and received.
   */
  quality(): QualitySample | undefined {
    const c = this.client;
    if (c.connectionState !== "CONNECTED") return undefined;
    return agoraQuality(
      { rtc: c.getRTCStats(), localAudio: c.getLocalAudioStats(), localVideo: c.getLocalVideoStats(), remoteAudio: c.getRemoteAudioStats(), remoteVideo: c.getRemoteVideoStats() },
      Date.now(),
    );
  }
}

function closeTrack(t: ILocalTrack): void {
  try {
    t.close();
  } catch {
    // already closed
  }
}

async function defaultTracks(): Promise<ILocalTrack[]> {
  return await AgoraRTC.createMicrophoneAndCameraTracks();
}

/** The MediaError of a failed connect. */
function connectError(name: string, err: unknown, signal: AbortSignal, timeoutMs: number): MediaError {
  if (err instanceof MediaError) return err;
  if (signal.aborted || (err instanceof Stop && err.why === "aborted")) return new MediaError("connection_lost", `agora ${name}: connect aborted`, { cause: err });
  if (err instanceof Stop) return new MediaError("connection_lost", `agora ${name}: join timed out after ${timeoutMs} ms`, { cause: err });
  const msg = err instanceof Error ? err.message : String(err);
  return new MediaError(agoraRefused(err) ? "token_rejected" : "connection_lost", `agora ${name}: ${msg}`, { cause: err });
}
