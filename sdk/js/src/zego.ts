/**
 * The ZEGOCLOUD media engine of @switchboardhq/client, on
 * zego-express-engine-webrtc (an optional peer dependency: install it to use
 * this entry point).
 *
 * Each connection is one ZegoExpressEngine for the provider's AppID that logs
 * in to the room with the user ID and token04 the control plane minted; a
 * publisher then publishes a stream and waits until it is published; every
 * connection plays the streams others publish in the room. A token the
 * servers refuse is a token_rejected MediaError, any other failed login or
 * publish a connection_lost one. zego-express-engine-webrtc retries a login it
 * cannot make for as long as it is let, so the engine gives up after
 * joinTimeoutMs (or when the SDK's signal aborts), logs out and destroys the
 * engine. Afterwards, the room reconnecting or disconnecting, a publish or
 * play failing, is connection_lost at once, and a token about to expire
 * token_rejected: the SDK, not ZEGO's internal retries, decides where the
 * stream goes next.
 */
import { ZegoExpressEngine } from "zego-express-engine-webrtc";
import { bounded, Stop } from "./bounded.js";
import { MediaError, type Assignment, type Connection, type MediaEngine, type MediaErrorKind, type QualitySample } from "./types.js";
import { zegoErrorCode, zegoQuality, zegoRefusedCodes, type ZegoPlayQuality, type ZegoPublishQuality, type ZegoQualityState } from "./zego-map.js";

export { zegoErrorCode, zegoQuality, zegoRefusedCodes, type ZegoPlayQuality, type ZegoPublishQuality, type ZegoQualityState } from "./zego-map.js";

/** A local stream ZegoExpressEngine can publish: a MediaStream or a ZegoLocalStream. */
export type ZegoPublishable = MediaStream | Awaited<ReturnType<ZegoExpressEngine["createZegoStream"]>>;

/** What a ZegoEngine is made with. */
export interface ZegoEngineOptions {
  /**
   * The server address from the ZEGOCLOUD console, ZegoExpressEngine's second
   * argument: a string, a list, or a function of the assignment. Version 3
   * of the SDK reaches ZEGOCLOUD through its access hub without it; by
   * default none is given.
   */
  server?: string | string[] | ((a: Assignment) => string | string[]);
  /** How long the login, and a publisher's publish, may take before the engine gives up, in milliseconds (10 s). */
  joinTimeoutMs?: number;
  /**
   * Makes the stream a publisher publishes, once logged in; by default the
   * camera and microphone (createZegoStream()). The connection destroys it
   * when it disconnects.
   */
  createStream?: (zg: ZegoExpressEngine, a: Assignment) => Promise<ZegoPublishable>;
  /** The ID of the stream a publisher publishes: letters, digits, '-' and '_'; by default the stream's ID. */
  streamId?: (a: Assignment) => string;
  /** Play every stream others publish in the room (true). */
  autoPlay?: boolean;
  /** Runs for each remote stream played: attach it to a video or audio element here. */
  onStream?: (streamID: string, stream: MediaStream, zg: ZegoExpressEngine) => void;
  /**
   * Runs once logged in and a publisher's stream is published, before the
   * stream is live on it. A rejection fails the connect (connection_lost).
   */
  onConnected?: (zg: ZegoExpressEngine, a: Assignment) => void | Promise<void>;
}

const defaultJoinTimeoutMs = 10_000;

/** A MediaEngine for providers of kind zegocloud. */
export class ZegoEngine implements MediaEngine {
  readonly #opts: ZegoEngineOptions;

  constructor(opts: ZegoEngineOptions = {}) {
    this.#opts = opts;
  }

  async connect(a: Assignment, report: (err: MediaError) => void, signal: AbortSignal): Promise<Connection> {
    const name = a.provider.name;
    const appId = Number(a.provider.appId);
    if (!a.provider.appId || !Number.isInteger(appId) || appId <= 0) throw new MediaError("connection_lost", `zegocloud ${name}: the provider has no numeric appId`);
    if (signal.aborted) throw new MediaError("connection_lost", `zegocloud ${name}: connect aborted`);
    const o = this.#opts;
    let zg: ZegoExpressEngine;
    try {
      zg = new ZegoExpressEngine(appId, typeof o.server === "function" ? o.server(a) : (o.server ?? ""));
    } catch (err) {
      throw connectError(name, err, signal, 0);
    }
    const conn = new ZegoConnection(zg, a.room, name, report, { autoPlay: o.autoPlay, onStream: o.onStream });
    const timeoutMs = o.joinTimeoutMs ?? defaultJoinTimeoutMs;
    try {
      const ok = await bounded(zg.loginRoom(a.room, a.token, { userID: a.userId, userName: a.userId }, { userUpdate: false }), signal, timeoutMs);
      if (ok === false) throw new Error("login refused");
      if (a.role === "publisher") {
        const making = o.createStream ? o.createStream(zg, a) : zg.createZegoStream();
        // Owned even when it comes after the engine gave up: then it is destroyed at once.
        making.then((s) => conn.own(s), () => undefined);
        const local = await bounded(making, signal, timeoutMs);
        await bounded(conn.publish((o.streamId ?? defaultStreamId)(a), local), signal, timeoutMs);
      }
      await o.onConnected?.(zg, a);
      if (signal.aborted) throw new Stop("aborted");
    } catch (err) {
      await conn.disconnect().catch(() => undefined);
      throw connectError(name, err, signal, timeoutMs);
    }
    conn.live();
    return conn;
  }
}

/** What a ZegoConnection is made with, from ZegoEngineOptions. */
export interface ZegoConnectionOptions {
  autoPlay?: boolean | undefined;
  onStream?: ZegoEngineOptions["onStream"];
}

/** A ZEGO error as the SDK reports it: a numeric code and a message. */
class ZegoCodeError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = "ZegoCodeError";
  }
}

/** A connection of the ZegoEngine: one ZegoExpressEngine logged in to one room. */
export class ZegoConnection implements Connection {
  /** The engine, for the app's streams. */
  readonly zg: ZegoExpressEngine;
  readonly #room: string;
  readonly #name: string;
  readonly #report: (err: MediaError) => void;
  readonly #quality: ZegoQualityState = { publish: new Map(), play: new Map() };
  readonly #playing = new Set<string>();
  readonly #off: Array<() => void> = [];
  #published: { id: string; stream: ZegoPublishable } | undefined;
  readonly #owned: ZegoPublishable[] = [];
  #publishWait: { id: string; resolve: () => void; reject: (err: Error) => void } | undefined;
  #lastMedia: number | undefined;
  #live = false;
  #failed = false;
  #closing: Promise<void> | undefined;

  constructor(zg: ZegoExpressEngine, room: string, name: string, report: (err: MediaError) => void, opts: ZegoConnectionOptions = {}) {
    this.zg = zg;
    this.#room = room;
    this.#name = name;
    this.#report = report;
    // Registered before the login, as ZEGO asks; errors count once the connection is live.
    const on: ZegoExpressEngine["on"] = (event, cb) => {
      const ok = zg.on(event, cb);
      this.#off.push(() => zg.off(event, cb));
      return ok;
    };
    on("roomStateChanged", (roomID, reason, errorCode) => {
      if (roomID !== room) return;
      if (reason === "RECONNECTING" || reason === "RECONNECT_FAILED" || reason === "KICKOUT" || reason === "LOGOUT" || reason === "LOGIN_FAILED") {
        this.#fail(kindOf(errorCode), `room ${reason.toLowerCase().replace("_", " ")}${codeText(errorCode)}`);
      }
    });
    on("roomStateUpdate", (roomID, state, errorCode) => {
      if (roomID !== room) return;
      if (state === "DISCONNECTED") this.#fail(kindOf(errorCode), `room disconnected${codeText(errorCode)}`);
      else if (state === "CONNECTING") this.#fail(kindOf(errorCode), `connection to the room lost, reconnecting${codeText(errorCode)}`);
    });
    on("tokenWillExpire", (roomID) => {
      if (roomID === room) this.#fail("token_rejected", "the join token is about to expire");
    });
    on("publisherStateUpdate", (r) => {
      const w = this.#publishWait;
      if (w && r.streamID === w.id) {
        if (r.state === "PUBLISHING") {
          this.#publishWait = undefined;
          w.resolve();
        } else if (r.errorCode) {
          this.#publishWait = undefined;
          w.reject(new ZegoCodeError(r.errorCode, `publish ${r.streamID}: error ${r.errorCode}${r.extendedData ? ` ${r.extendedData}` : ""}`));
        }
        return;
      }
      if (r.streamID !== this.#published?.id) return;
      if (r.errorCode) this.#fail(kindOf(r.errorCode), `publish ${r.streamID} ${r.state.toLowerCase()}${codeText(r.errorCode)}`);
      else if (r.state === "NO_PUBLISH") this.#fail("connection_lost", `publish ${r.streamID} stopped`);
    });
    on("playerStateUpdate", (r) => {
      if (r.errorCode && this.#playing.has(r.streamID)) this.#fail(kindOf(r.errorCode), `play ${r.streamID} ${r.state.toLowerCase()}${codeText(r.errorCode)}`);
    });
    on("publishQualityUpdate", (streamID, stats) => this.#sample<ZegoPublishQuality>(this.#quality.publish, streamID, stats));
    on("playQualityUpdate", (streamID, stats) => this.#sample<ZegoPlayQuality>(this.#quality.play, streamID, stats));
    if (opts.autoPlay ?? true) {
      on("roomStreamUpdate", (roomID, updateType, streamList) => {
        if (roomID !== room || this.#closing) return;
        for (const s of streamList) {
          if (s.streamID === this.#published?.id) continue;
          if (updateType === "ADD" && !this.#playing.has(s.streamID)) {
            this.#playing.add(s.streamID);
            zg.startPlayingStream(s.streamID).then(
              (ms) => {
                if (!this.#closing && this.#playing.has(s.streamID)) opts.onStream?.(s.streamID, ms, zg);
              },
              () => undefined, // playerStateUpdate reports it
            );
          } else if (updateType === "DELETE" && this.#playing.delete(s.streamID)) {
            this.#quality.play.delete(s.streamID);
            zg.stopPlayingStream(s.streamID);
          }
        }
      });
    }
  }

  #sample<T>(m: Map<string, { at: number; stats: T }>, streamID: string, stats: T): void {
    if (this.#closing) return;
    const at = Date.now();
    m.set(streamID, { at, stats });
    const s = stats as ZegoPublishQuality & ZegoPlayQuality;
    if ((s.video?.videoBitrate ?? 0) > 0 || (s.audio?.audioBitrate ?? 0) > 0) this.#lastMedia = at;
  }

  /** @internal takes a local stream over: it is destroyed on disconnect (at once if that is done). */
  own(local: ZegoPublishable): void {
    if (this.#owned.includes(local)) return;
    this.#owned.push(local);
    if (this.#closing) this.#destroy(local);
  }

  #destroy(local: ZegoPublishable): void {
    try {
      this.zg.destroyStream(local);
    } catch {
      // the engine is gone
    }
    for (const t of local.getTracks()) t.stop();
  }

  /** @internal publishes local as streamID and resolves once ZEGO says it is published. */
  publish(streamID: string, local: ZegoPublishable): Promise<void> {
    this.#published = { id: streamID, stream: local };
    return new Promise<void>((resolve, reject) => {
      this.#publishWait = { id: streamID, resolve, reject };
      let started = false;
      try {
        started = this.zg.startPublishingStream(streamID, local);
      } catch (err) {
        this.#publishWait = undefined;
        reject(err);
        return;
      }
      if (!started) {
        this.#publishWait = undefined;
        reject(new Error(`publish ${streamID}: not started (invalid stream ID or stream)`));
      }
    });
  }

  /** @internal starts reporting errors: the login (and publish) is done. */
  live(): void {
    this.#live = true;
  }

  #fail(kind: MediaErrorKind, why: string): void {
    if (!this.#live || this.#closing || this.#failed) return;
    this.#failed = true;
    this.#report(new MediaError(kind, `zegocloud ${this.#name}: ${why}`));
  }

  /** Stops playing and publishing, destroys the published stream, logs out and destroys the engine. */
  disconnect(): Promise<void> {
    this.#closing ??= Promise.resolve().then(() => {
      const zg = this.zg;
      this.#publishWait?.reject(new Error("disconnected"));
      this.#publishWait = undefined;
      const quietly = (f: () => unknown): void => {
        try {
          f();
        } catch {
          // the engine is already past it
        }
      };
      for (const off of this.#off) quietly(off);
      for (const id of this.#playing) quietly(() => zg.stopPlayingStream(id));
      this.#playing.clear();
      const pub = this.#published;
      if (pub) quietly(() => zg.stopPublishingStream(pub.id));
      for (const local of this.#owned) this.#destroy(local);
      quietly(() => zg.logoutRoom(this.#room));
      quietly(() => zg.destroyEngine());
    });
    return this.#closing;
  }

  /** When a quality event last showed media flowing, in milliseconds since the epoch. */
  lastMedia(): number | undefined {
    return this.#lastMedia;
  }

  /** The connection's quality, from the last publishQualityUpdate and playQualityUpdate of its streams. */
  quality(): QualitySample | undefined {
    return zegoQuality(this.#quality);
  }
}

function kindOf(code: number): MediaErrorKind {
  return zegoRefusedCodes.has(code) ? "token_rejected" : "connection_lost";
}

function codeText(code: number): string {
  return code ? ` (error ${code})` : "";
}

/** The ID a publisher publishes with by default: the stream's ID, in the characters ZEGO allows. */
function defaultStreamId(a: Assignment): string {
  return (a.streamId || `${a.room}-${a.userId}`).replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 256);
}

/** The MediaError of a failed connect. */
function connectError(name: string, err: unknown, signal: AbortSignal, timeoutMs: number): MediaError {
  if (err instanceof MediaError) return err;
  if (signal.aborted || (err instanceof Stop && err.why === "aborted")) return new MediaError("connection_lost", `zegocloud ${name}: connect aborted`, { cause: err });
  if (err instanceof Stop) return new MediaError("connection_lost", `zegocloud ${name}: login timed out after ${timeoutMs} ms`, { cause: err });
  const e = err as { msg?: unknown; extendedData?: unknown; message?: unknown } | undefined;
  const code = zegoErrorCode(err);
  const detail = typeof e?.msg === "string" ? e.msg : typeof e?.extendedData === "string" ? e.extendedData : undefined;
  const text = typeof e?.message === "string" && e.message ? e.message : detail !== undefined || code !== undefined ? `${detail ?? "error"}${code === undefined ? "" : ` (error ${code})`}` : String(err);
  return new MediaError(code !== undefined && zegoRefusedCodes.has(code) ? "token_rejected" : "connection_lost", `zegocloud ${name}: ${text}`, { cause: err });
}
