// What the Agora engine reads from agora-rtc-sdk-ng, as pure functions: its
// statistics, the uid to join with and the errors that mean a refused token.
import type { UID, AgoraRTCStats, LocalAudioTrackStats, LocalVideoTrackStats, RemoteAudioTrackStats, RemoteVideoTrackStats } from "agora-rtc-sdk-ng";
import type { QualitySample } from "./types.js";

/** What an Agora client's statistics getters return at one moment. */
export interface AgoraStats {
  /** getRTCStats() */
  rtc: Partial<AgoraRTCStats>;
  /** getLocalAudioStats() */
  localAudio?: Partial<LocalAudioTrackStats> | undefined;
  /** getLocalVideoStats() */
  localVideo?: Partial<LocalVideoTrackStats> | undefined;
  /** getRemoteAudioStats(), by uid */
  remoteAudio?: Record<string, Partial<RemoteAudioTrackStats>> | undefined;
  /** getRemoteVideoStats(), by uid */
  remoteVideo?: Record<string, Partial<RemoteVideoTrackStats>> | undefined;
}

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/**
 * Reads an Agora client's statistics into a quality sample: the round-trip
 * time to Agora's edge (RTT), the bitrate sent and received (SendBitrate +
 * RecvBitrate, instantaneous), the share of packets lost among those sent and
 * received by the local and remote tracks, the jitter of what is sent and the
 * highest frame rate sent or received. Agora reports freeze time, not a count
 * of freezes: the sample has no freezes.
 */
export function agoraQuality(s: AgoraStats, now: number): QualitySample {
  const sample: QualitySample = { at: now };
  const rtt = num(s.rtc.RTT);
  if (rtt !== undefined) sample.rttMs = rtt;
  const send = num(s.rtc.SendBitrate);
  const recv = num(s.rtc.RecvBitrate);
  if (send !== undefined || recv !== undefined) sample.bitrateKbps = ((send ?? 0) + (recv ?? 0)) / 1000;
  let lost = 0;
  let packets = 0;
  let jitter: number | undefined;
  let fps: number | undefined;
  const frames = (v: unknown): void => {
    const f = num(v);
    if (f !== undefined) fps = Math.max(fps ?? 0, f);
  };
  for (const l of [s.localAudio, s.localVideo]) {
    if (!l || !(num(l.sendPackets) ?? 0)) continue; // nothing sent on it
    lost += num(l.sendPacketsLost) ?? 0;
    packets += num(l.sendPackets) ?? 0;
    const j = num(l.sendJitterMs);
    if (j !== undefined) jitter = Math.max(jitter ?? 0, j);
  }
  if (s.localVideo && (num(s.localVideo.sendPackets) ?? 0) > 0) frames(s.localVideo.sendFrameRate);
  for (const r of [...Object.values(s.remoteAudio ?? {}), ...Object.values(s.remoteVideo ?? {})]) {
    lost += num(r.receivePacketsLost) ?? 0;
    packets += num(r.receivePackets) ?? 0;
  }
  for (const r of Object.values(s.remoteVideo ?? {})) frames(r.receiveFrameRate);
  if (lost + packets > 0) sample.packetLoss = Math.max(0, lost) / (Math.max(0, lost) + packets);
  if (jitter !== undefined) sample.jitterMs = jitter;
  if (fps !== undefined) sample.frameRate = fps;
  return sample;
}

/**
 * The uid to join with, as the control plane minted the token: a user ID in
 * canonical decimal form that fits a uint32 is a numeric uid (empty or 0: any
 * uid), anything else a user account (a string uid).
 */
export function agoraUid(userId: string): UID | null {
  if (userId === "") return null;
  if (/^(0|[1-9][0-9]{0,9})$/.test(userId)) {
    const n = Number(userId);
    if (n <= 0xffffffff) return n === 0 ? null : n;
  }
  return userId;
}

/**
 * Whether a failed join says the servers refused the token or the App ID
 * (agora-rtc-sdk-ng's messages for its access servers' answers: invalid
 * token, token or dynamic key timeout or expired, static/dynamic key
 * mismatch, invalid vendor key or App ID, invalid string uid).
 */
export function agoraRefused(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  if (e?.code === "TOKEN_EXPIRE") return true;
  if (typeof e?.code !== "string" || e.code === "OPERATION_ABORTED") return false; // not the SDK's, or our own leave
  const msg = typeof e?.message === "string" ? e.message : "";
  return /token|dynamic key|static key|vendor key|appid|string uid/i.test(msg);
}
