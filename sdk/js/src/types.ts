/** The kind of a provider, which selects the media engine that connects to it. */
export type Kind = "agora" | "zegocloud" | "livekit" | "http";

/**
 * The health badge of a provider, as the control plane reports it. A
 * provider is usable when it is EXCELLENT, HEALTHY or WARNING.
 */
export type Status = "EXCELLENT" | "HEALTHY" | "WARNING" | "CRITICAL" | "DISABLED" | "UNKNOWN";

/** What a participant does in a stream. */
export type Role = "publisher" | "subscriber";

/** The quality tier a stream is priced at (the server's default is "hd"). */
export type Quality = "audio" | "sd" | "hd" | "fullhd";

/** What the SDK knows of a provider: no secret ever reaches it. */
export interface Provider {
  name: string;
  kind: Kind;
  priority: number;
  status: Status;
  /** Agora and ZEGOCLOUD. */
  appId?: string;
  /** LiveKit. */
  url?: string;
}

/**
 * A stream's place on one provider: what a media engine connects with. The
 * token was minted by the control plane for this room and user.
 */
export interface Assignment {
  streamId: string;
  room: string;
  userId: string;
  role: Role;
  provider: Provider;
  token: string;
  /** Milliseconds since the epoch; 0 when the token does not expire. */
  tokenExpiresAt: number;
}

/**
 * What went wrong with media on a provider. Each kind makes the SDK fail over
 * at once. publisher_moved is no fault of the provider: the stream's
 * publisher left it for the viewer's standby provider, and the viewer follows
 * without avoiding or reporting the provider it leaves.
 */
export type MediaErrorKind = "connection_lost" | "token_rejected" | "media_stalled" | "publisher_moved";

/** An error of a media engine: a failed connect, or a connection that broke. */
export class MediaError extends Error {
  readonly kind: MediaErrorKind;
  constructor(kind: MediaErrorKind, message?: string, options?: { cause?: unknown }) {
    super(message ? `${kind}: ${message}` : kind, options);
    this.name = "MediaError";
    this.kind = kind;
  }
}

/** Network quality of a connection, read from the engine (WebRTC statistics for real engines). */
export interface QualitySample {
  /** When it was read, in milliseconds since the epoch. */
  at: number;
  rttMs?: number;
  /** Share of packets lost, from 0 to 1. */
  packetLoss?: number;
  jitterMs?: number;
  bitrateKbps?: number;
  frameRate?: number;
  freezes?: number;
  /** Time the video was frozen since the last sample, in milliseconds. */
  freezeMs?: number;
}

/** One live connection of an engine to a provider. */
export interface Connection {
  /**
   * Leaves the room and stops every retry the provider's own SDK would
   * otherwise keep making. It must be idempotent.
   */
  disconnect(): Promise<void>;
  /**
   * When media last flowed, in milliseconds since the epoch, or undefined
   * until it has: the watchdog (ClientOptions.watchdogMs) uses it.
   */
  lastMedia?(): number | undefined;
  /** The connection's current quality. */
  quality?(): QualitySample | undefined | Promise<QualitySample | undefined>;
}

/**
 * Connects an app's media to one kind of provider; an app gives one per kind
 * it uses (ClientOptions.engines).
 */
export interface MediaEngine {
  /**
   * Joins a.room on a.provider with a.token and resolves once the connection
   * is up; it rejects (a MediaError when it can say what happened) when it
   * cannot, and gives up when signal aborts. Afterwards, errors are reported
   * through report.
   */
  connect(a: Assignment, report: (err: MediaError) => void, signal: AbortSignal): Promise<Connection>;
  /**
   * Hears of the standby assignment of the stream streamId whenever it
   * changes, and undefined when it has none or has ended. An engine with a
   * hot standby joins a there ahead of time, so that a later connect with an
   * assignment of the same stream, provider and user returns that connection
   * at once.
   */
  standby?(streamId: string, a: Assignment | undefined): void;
}

/** A step in a stream's life, as stream.on("state", ...) delivers it. */
export type StreamState =
  | { type: "connecting"; provider: string; attempt: number }
  | { type: "live"; provider: string }
  | { type: "reconnecting"; provider: string; attempt: number; error: Error }
  | { type: "failingOver"; from: string; reason: string }
  | { type: "migrated"; from: string; to: string; reason: string; gapMs: number }
  | { type: "failed"; error: Error };

/**
 * Where the SDK logs. Each method gets a constant message and its data;
 * `console` fits. debug is optional.
 */
export interface Logger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * What happens to live streams when an admin changes provider priorities:
 * "keepLive" (the default) leaves them where they are; "migrateGradually"
 * moves them to the best usable provider, at most `rate` streams a second.
 * Whatever the policy, a stream never moves back on its own when the
 * provider it left recovers.
 */
export type Policy = { type: "keepLive" } | { type: "migrateGradually"; rate: number };
