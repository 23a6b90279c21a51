import { retryable, messageOf } from "./errors.js";
import { scope } from "./retry.js";
import type { QualitySample } from "./types.js";
import type { Stream } from "./stream.js";

/** Samples per request in the steady state: one request every 30 s at the default interval. */
const batchSize = 3;
/** Samples kept while the control plane cannot take them (the most one request carries). */
const keepMax = 60;
/** Bounds the sending of the last samples when a stream ends, so that an unreachable control plane delays the end by little. */
const finalFlushMs = 2000;

/** One sample as POST /api/streams/{id}/quality takes it. */
export interface WireQualitySample {
  at: string;
  rttMs: number;
  packetLoss: number;
  jitterMs: number;
  bitrateKbps: number;
  fps: number;
  freezeCount: number;
  freezeMs: number;
}

/** The body of POST /api/streams/{id}/quality. */
export interface QualityBody {
  provider: string;
  samples: WireQualitySample[];
}

const clamp = (v: number | undefined, max: number): number => (v === undefined || !Number.isFinite(v) ? 0 : Math.min(Math.max(v, 0), max));

/** The wire form of a sample, with every value in the range the server accepts. */
export function wireSample(q: QualitySample): WireQualitySample {
  return {
    at: new Date(q.at).toISOString(),
    rttMs: clamp(q.rttMs, 60_000),
    packetLoss: clamp(q.packetLoss, 1),
    jitterMs: clamp(q.jitterMs, 60_000),
    bitrateKbps: clamp(q.bitrateKbps, 1_000_000),
    fps: clamp(q.frameRate, 240),
    freezeCount: Math.round(clamp(q.freezes, 10_000)),
    freezeMs: Math.round(clamp(q.freezeMs, 60_000)),
  };
}

/**
 * @internal a stream's quality telemetry: a sample of its connection every
 * qualityMs (stream.quality()), sent to the control plane every third sample,
 * when the stream moves to another provider and when it ends. It runs on
 * timers of its own and never awaits anything the media path waits for.
 */
export class QualityTelemetry {
  readonly #s: Stream;
  /** The stream's moves not reported to the server yet, oldest first (the stream's own array). */
  readonly #unreported: readonly { to: string }[];
  #timer: ReturnType<typeof setInterval> | undefined;
  #pending: Array<{ provider: string; s: WireQualitySample }> = [];
  #sending: Promise<void> = Promise.resolve();

  constructor(s: Stream, unreported: readonly { to: string }[]) {
    this.#s = s;
    this.#unreported = unreported;
  }

  /** Starts sampling, unless the client's qualityMs is 0. */
  start(): void {
    const ms = this.#s.c.opts.qualityMs;
    if (ms <= 0 || this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.#sample(), ms);
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #sample(): Promise<void> {
    const provider = this.#s.provider;
    const q = await this.#s.quality();
    if (!q || !provider || this.#timer === undefined) return;
    const last = this.#pending[this.#pending.length - 1]?.provider;
    this.#pending = [...this.#pending, { provider, s: wireSample(q) }].slice(-keepMax);
    // A batch is due with batchSize samples, or when the stream moved to another provider.
    if ((last !== undefined && last !== provider) || this.#pending.length >= batchSize) this.#s.task(this.flush(this.#s.ac.signal));
  }

  /**
   * Sends the pending samples, one request per run of samples on one
   * provider, after any send in progress. Samples the server could not take
   * for now (unreachable, 429, 5xx), and those measured on a provider the
   * stream moved to without it while the move is not reported yet, are kept
   * for the next batch; refused ones are dropped.
   */
  flush(signal?: AbortSignal): Promise<void> {
    this.#sending = this.#sending.then(() => this.#send(signal));
    return this.#sending;
  }

  /** Sends the samples left when the stream ends, within finalFlushMs. */
  async finalFlush(): Promise<void> {
    const sc = scope(undefined, Math.min(finalFlushMs, this.#s.c.opts.requestTimeoutMs));
    try {
      await this.flush(sc.signal);
    } finally {
      sc.dispose();
    }
  }

  async #send(signal?: AbortSignal): Promise<void> {
    let ps = this.#pending;
    this.#pending = [];
    const s = this.#s;
    // Samples on a provider the stream moved to without the server, while
    // the move is not reported yet, wait for the report: the server does not
    // know the stream is there yet and would refuse them.
    let provider: string | undefined;
    while ((provider = ps[0]?.provider) !== undefined && !this.#unreported.some((m) => m.to === provider)) {
      let n = 1;
      while (n < ps.length && ps[n]!.provider === provider) n++;
      const sc = scope(signal, s.c.opts.requestTimeoutMs);
      try {
        await s.c.api.quality(s.id, { provider, samples: ps.slice(0, n).map((p) => p.s) }, sc.signal);
      } catch (err) {
        // Kept for the next batch, or for the last flush when the stream ends.
        if (retryable(err) || signal?.aborted) break;
        s.c.log("warn", "quality samples refused", { stream_id: s.id, provider, err: messageOf(err) });
      } finally {
        sc.dispose();
      }
      ps = ps.slice(n);
    }
    // What was not sent, in front of what was sampled meanwhile.
    this.#pending = [...ps, ...this.#pending].slice(-keepMax);
  }
}
