import type { QualitySample } from "./types.js";

/** One entry of an RTCStatsReport, loosely typed: browsers differ in what they fill in. */
export type StatsEntry = { type?: unknown; [key: string]: unknown };

/** Running totals of a connection, kept between samples to turn byte counts into a bitrate. */
export interface StatsTotals {
  at: number;
  bytes: number;
}

const n = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/**
 * Reads WebRTC statistics (the entries of one or more RTCStatsReports) into
 * a quality sample: round-trip time (the selected candidate pair's, else the
 * remote-inbound-rtp one), packet loss (the share of packets lost among those
 * expected), jitter, frame rate, freezes and, against prev, the bitrate.
 * It returns the sample and the totals to give as prev next time.
 */
export function qualityFromStats(entries: Iterable<StatsEntry>, now: number, prev?: StatsTotals): { sample: QualitySample; totals: StatsTotals } {
  let rtt: number | undefined;
  let pairRtt: number | undefined;
  let lost = 0;
  let received = 0;
  let jitter: number | undefined;
  let fps: number | undefined;
  let freezes: number | undefined;
  let bytes = 0;
  for (const e of entries) {
    switch (e.type) {
      case "candidate-pair":
        if ((e.nominated === true || e.selected === true) && e.state === "succeeded" && n(e.currentRoundTripTime) !== undefined) pairRtt = (n(e.currentRoundTripTime) ?? 0) * 1000;
        break;
      case "remote-inbound-rtp":
        if (n(e.roundTripTime) !== undefined) rtt = Math.max(rtt ?? 0, (n(e.roundTripTime) ?? 0) * 1000);
        if (n(e.jitter) !== undefined) jitter = Math.max(jitter ?? 0, (n(e.jitter) ?? 0) * 1000);
        lost += n(e.packetsLost) ?? 0;
        break;
      case "inbound-rtp":
        lost += n(e.packetsLost) ?? 0;
        received += n(e.packetsReceived) ?? 0;
        if (n(e.jitter) !== undefined) jitter = Math.max(jitter ?? 0, (n(e.jitter) ?? 0) * 1000);
        if (n(e.framesPerSecond) !== undefined) fps = Math.max(fps ?? 0, n(e.framesPerSecond) ?? 0);
        if (n(e.freezeCount) !== undefined) freezes = (freezes ?? 0) + (n(e.freezeCount) ?? 0);
        bytes += n(e.bytesReceived) ?? 0;
        break;
      case "outbound-rtp":
        received += n(e.packetsSent) ?? 0;
        if (n(e.framesPerSecond) !== undefined) fps = Math.max(fps ?? 0, n(e.framesPerSecond) ?? 0);
        bytes += n(e.bytesSent) ?? 0;
        break;
    }
  }
  const sample: QualitySample = { at: now };
  const r = pairRtt ?? rtt;
  if (r !== undefined) sample.rttMs = r;
  if (lost + received > 0) sample.packetLoss = Math.max(0, lost) / (Math.max(0, lost) + received);
  if (jitter !== undefined) sample.jitterMs = jitter;
  if (fps !== undefined) sample.frameRate = fps;
  if (freezes !== undefined) sample.freezes = freezes;
  if (prev && now > prev.at && bytes >= prev.bytes) sample.bitrateKbps = ((bytes - prev.bytes) * 8) / (now - prev.at);
  return { sample, totals: { at: now, bytes } };
}

/** What a connection's watchdog keeps between reads of its statistics. */
export interface ReceiveMark {
  /** Bytes received so far by the watched streams and transports. */
  bytes: number;
  /** When they last grew, in milliseconds since the epoch; undefined while nothing is watched or nothing came yet. */
  at: number | undefined;
}

/**
 * Says when a connection last received anything for its live tracks, from
 * its WebRTC statistics: the bytes received by its inbound streams (the
 * media of a subscriber) and by its transports (the server's RTCP feedback
 * to a publisher), each entry counted once by id, compared with prev. Any
 * change since prev is progress at now. Without such an entry (no live
 * track) nothing is watched and at is undefined.
 */
export function receiveMark(entries: Iterable<StatsEntry>, now: number, prev?: ReceiveMark): ReceiveMark {
  const seen = new Set<string>();
  let bytes = 0;
  let watched = false;
  for (const e of entries) {
    if (e.type !== "inbound-rtp" && e.type !== "transport") continue;
    const b = n(e.bytesReceived);
    if (b === undefined) continue;
    if (typeof e.id === "string") {
      const key = `${e.type}/${e.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
    }
    watched = true;
    bytes += b;
  }
  if (!watched) return { bytes: 0, at: undefined };
  return { bytes, at: bytes !== (prev?.bytes ?? 0) ? now : prev?.at };
}
