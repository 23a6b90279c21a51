import type { QualitySample } from "./types.js";

// The fields of zego-express-engine-webrtc's ZegoPublishStats and
// ZegoPlayStats that a quality sample reads (its declarations do not export
// them from the package root). Bitrates are in kbps (8 × bytes ÷ ms), loss
// rates fractions, audioJitter the WebRTC inbound-rtp jitter in seconds.

/** What publishQualityUpdate delivers (the fields read). */
export interface ZegoPublishQuality {
  video?: { videoBitrate?: number; videoFPS?: number; videoPacketsLostRate?: number };
  audio?: { audioBitrate?: number; audioPacketsLostRate?: number };
}

/** What playQualityUpdate delivers (the fields read). */
export interface ZegoPlayQuality {
  video?: { videoBitrate?: number; videoFPS?: number; videoPacketsLostRate?: number };
  audio?: { audioBitrate?: number; audioPacketsLostRate?: number; audioJitter?: number };
  peerToPeerPacketLostRate?: number | undefined;
}

/** The last quality event of each stream published or played. */
export interface ZegoQualityState {
  publish: Map<string, { at: number; stats: ZegoPublishQuality }>;
  play: Map<string, { at: number; stats: ZegoPlayQuality }>;
}

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/**
 * Reads the last publishQualityUpdate and playQualityUpdate of each stream
 * into a quality sample, at the time of the newest: the bitrate is the sum
 * over the streams, packet loss and jitter the worst of them, the frame rate
 * the highest. ZEGO's quality events carry no round-trip time and no count of
 * freezes, so the sample has neither. Undefined before the first event.
 */
export function zegoQuality(q: ZegoQualityState): QualitySample | undefined {
  let at = 0;
  let kbps: number | undefined;
  let loss: number | undefined;
  let jitter: number | undefined;
  let fps: number | undefined;
  const add = (v: unknown): void => {
    if (num(v) !== undefined) kbps = (kbps ?? 0) + (num(v) ?? 0);
  };
  const worst = (v: unknown): void => {
    const r = num(v);
    if (r !== undefined && r >= 0 && r <= 1) loss = Math.max(loss ?? 0, r);
  };
  const frames = (v: unknown): void => {
    if (num(v) !== undefined) fps = Math.max(fps ?? 0, num(v) ?? 0);
  };
  for (const { at: t, stats: s } of q.publish.values()) {
    at = Math.max(at, t);
    add(s.video?.videoBitrate);
    add(s.audio?.audioBitrate);
    worst(s.video?.videoPacketsLostRate);
    worst(s.audio?.audioPacketsLostRate);
    frames(s.video?.videoFPS);
  }
  for (const { at: t, stats: s } of q.play.values()) {
    at = Math.max(at, t);
    add(s.video?.videoBitrate);
    add(s.audio?.audioBitrate);
    worst(s.video?.videoPacketsLostRate);
    worst(s.audio?.audioPacketsLostRate);
    worst(s.peerToPeerPacketLostRate);
    frames(s.video?.videoFPS);
    const j = num(s.audio?.audioJitter);
    if (j !== undefined) jitter = Math.max(jitter ?? 0, j * 1000);
  }
  if (at === 0) return undefined;
  const sample: QualitySample = { at };
  if (kbps !== undefined) sample.bitrateKbps = kbps;
  if (loss !== undefined) sample.packetLoss = loss;
  if (jitter !== undefined) sample.jitterMs = jitter;
  if (fps !== undefined) sample.frameRate = fps;
  return sample;
}

/**
 * The error codes of zego-express-engine-webrtc that mean the servers
 * refused the token or the AppID: 1102016 token error, 1102018 token
 * expired, 1102020 auth error, 1002077 the token's user ID is not the one
 * logging in, 1002078 token expired, 1002082 the token may not publish,
 * 1001004 AppID invalid.
 */
export const zegoRefusedCodes: ReadonlySet<number> = new Set([1102016, 1102018, 1102020, 1002077, 1002078, 1002082, 1001004]);

/** The numeric ZEGO error code a failure carries ({ code, msg }, { errorCode, extendedData } or an error with a code), if any. */
export function zegoErrorCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; errorCode?: unknown } | undefined;
  const c = e?.code ?? e?.errorCode;
  const n = typeof c === "number" ? c : typeof c === "string" && /^[0-9]+$/.test(c) ? Number(c) : NaN;
  return Number.isFinite(n) ? n : undefined;
}
