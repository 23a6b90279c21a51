import { tokenOn, type Grant, type FailureBody } from "./api.js";
import type { Client } from "./client.js";
import { asError, FailoverError, isStatus, messageOf, NetworkError, RetryBudgetError, retryable, retryAfterOf, unreachable } from "./errors.js";
import { retryDelay, RetrySlot, scope, sleep } from "./retry.js";
import { QualityTelemetry } from "./quality.js";
import { MediaError, type Assignment, type Connection, type MediaEngine, type QualitySample, type StreamState } from "./types.js";

/** How many states a stream keeps in its history. */
const historySize = 64;
/** The window over which the failure reports of a mass failover are spread. */
const reportSpreadMs = 1000;
/** A standby whose token expires within this is not used. */
const standbyMinLifeMs = 5000;
/** Heartbeats come early enough to renew a standby this long before its token expires. */
const standbyRenewBeforeMs = 60_000;
/** A change that makes a standby stale renews it after a random delay within this. */
const standbyRefreshSpreadMs = 3000;
/** The cap of the backoff between attempts to report a move (unless Retry-After asks for longer). */
const reportMaxBackoffMs = 5000;
/** The moves a stream keeps to report while the control plane cannot be reached. */
const maxUnreported = 16;

/** Why a stream moves. */
export type TriggerKind = "media" | "health" | "rebalance";

/** A request to move a stream. */
export interface Trigger {
  kind: TriggerKind;
  /** health: the provider to leave. */
  provider?: string;
  /** rebalance: the provider to move to. */
  to?: string;
  reason: string;
  /** When the cause happened, in milliseconds since the epoch. */
  at: number;
  /** media: the connection that failed, and its error. */
  slot?: Slot;
  media?: MediaError;
}

/** One connection of a stream. */
export interface Slot {
  provider: string;
  conn: Connection | undefined;
  err: MediaError | undefined;
  errAt: number;
}

interface MoveReport {
  from: string;
  to: string;
  at: number;
  reason: string;
  media: MediaError | undefined;
}

/** Listener of a stream's states. */
export type StateListener = (s: StreamState) => void;

/**
 * One live stream: its connection on the provider it is assigned to, the
 * heartbeats that keep it on the server, and the failovers that keep it
 * alive. Client.start returns it live.
 */
export class Stream {
  /** The stream's id on the control plane. */
  id = "";
  /** The room the stream is in. */
  readonly room: string;
  /** @internal */ readonly c: Client;
  /** @internal */ readonly ac: AbortController;
  /** @internal */ region: string | undefined;
  /** @internal */ endOp: (() => void) | undefined;
  #a: Assignment | undefined;
  #fallbacks: string[] = [];
  #standbyA: Assignment | undefined;
  #standbyE: MediaEngine | undefined;
  /** @internal */ cur: Slot | undefined;
  #pending: Trigger | undefined;
  #moving = false;
  #finished = false;
  #ending: Promise<void> | undefined;
  #err: Error | undefined;
  #migrationCount = 0;
  #stuckTo = "";
  readonly #unreported: MoveReport[] = []; // never replaced: the telemetry holds it
  #reporting = false;
  #reportChain: Promise<unknown> = Promise.resolve();
  #hbTimer: ReturnType<typeof setTimeout> | undefined;
  #wdTimer: ReturnType<typeof setInterval> | undefined;
  // The telemetry reads the moves not reported yet: their providers' samples wait for the reports.
  readonly #telemetry = new QualityTelemetry(this, this.#unreported);
  readonly #tasks = new Set<Promise<unknown>>();
  readonly #listeners = new Set<StateListener>();
  readonly #endListeners = new Set<() => void>();
  readonly #hist: StreamState[] = [];
  #last: StreamState | undefined;

  /** @internal */
  constructor(c: Client, room: string, onState?: StateListener) {
    this.c = c;
    this.room = room;
    this.ac = new AbortController();
    if (onState) this.#listeners.add(onState);
  }

  /** The name of the provider the stream's media is connected to now. */
  get provider(): string {
    return this.#a?.provider.name ?? "";
  }

  /** The assignment of the current connection. */
  get assignment(): Assignment | undefined {
    return this.#a;
  }

  /** The standby assignment, the one the stream fails over to with no round trip to the control plane. */
  get standby(): Assignment | undefined {
    return this.#standbyA;
  }

  /** The provider changes of the stream since it went live. */
  get migrations(): number {
    return this.#migrationCount;
  }

  /** The latest state. */
  get state(): StreamState | undefined {
    return this.#last;
  }

  /** The last states, oldest first (at most 64). */
  get history(): readonly StreamState[] {
    return this.#hist.slice();
  }

  /** Why the stream failed, or undefined. */
  get error(): Error | undefined {
    return this.#err;
  }

  /** Whether the stream has ended (end, close, or failed). */
  get ended(): boolean {
    return this.#finished;
  }

  /**
   * Listens to the stream's states ("state") or to its end ("end"); returns
   * a function that stops listening. A listener that throws is logged and
   * kept.
   */
  on(event: "state", fn: StateListener): () => void;
  on(event: "end", fn: () => void): () => void;
  on(event: "state" | "end", fn: StateListener | (() => void)): () => void {
    if (event === "state") {
      const f = fn as StateListener;
      this.#listeners.add(f);
      return () => this.#listeners.delete(f);
    }
    const f = fn as () => void;
    if (this.#finished) {
      queueMicrotask(f);
      return () => undefined;
    }
    this.#endListeners.add(f);
    return () => this.#endListeners.delete(f);
  }

  /** Stops a listener given to on. */
  off(event: "state" | "end", fn: StateListener | (() => void)): void {
    if (event === "state") this.#listeners.delete(fn as StateListener);
    else this.#endListeners.delete(fn as () => void);
  }

  /** The quality of the current connection, as its engine reads it; undefined when it cannot. */
  async quality(): Promise<QualitySample | undefined> {
    const conn = this.cur?.conn;
    if (!conn?.quality) return undefined;
    try {
      return await conn.quality();
    } catch (err) {
      this.c.log("warn", "quality read failed", { stream_id: this.id, err: messageOf(err) });
      return undefined;
    }
  }

  /**
   * Ends the stream: stops its failover and heartbeats, disconnects the media
   * and ends the stream on the control plane. It is idempotent; it rejects
   * only when the control plane could not be told (the media is stopped
   * whatever happens).
   */
  async end(): Promise<void> {
    this.ac.abort();
    await this.#settle();
    return this.finish(undefined);
  }

  /** @internal emits st to the listeners. */
  emit(st: StreamState): void {
    this.#last = st;
    if (this.#finished) return;
    this.#hist.push(st);
    if (this.#hist.length > historySize) this.#hist.shift();
    for (const fn of [...this.#listeners]) {
      try {
        fn(st);
      } catch (err) {
        this.c.log("warn", "state listener threw", { stream_id: this.id, err: messageOf(err) });
      }
    }
  }

  /** @internal runs fn as a task of the stream, which end waits for. */
  task(p: Promise<unknown>): void {
    const q = p.catch((err: unknown) => this.c.log("warn", "stream task failed", { stream_id: this.id, err: messageOf(err) }));
    this.#tasks.add(q);
    void q.finally(() => this.#tasks.delete(q));
  }

  async #settle(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  /** @internal makes the stream live on g with the connection sl (after start). */
  begin(g: Grant, sl: Slot): void {
    this.id = g.a.streamId;
    this.#a = g.a;
    this.#fallbacks = g.fallbacks;
    this.#standbyTo(this.c.usableStandby(g.standby));
    this.cur = sl;
    this.emit({ type: "live", provider: g.a.provider.name });
    if (sl.err) this.#setPending(this.#mediaTrigger(sl));
    this.#scheduleHeartbeat(this.#nextHeartbeat());
    this.#telemetry.start();
    const wd = this.c.opts.watchdogMs;
    if (wd > 0) this.#wdTimer = setInterval(() => this.#checkMedia(), Math.max(wd / 4, 10));
  }

  /** @internal ends the stream once: disconnects, ends it on the server, emits final. */
  finish(final: StreamState | undefined): Promise<void> {
    if (!this.#ending) this.#ending = this.#doFinish(final);
    return this.#ending;
  }

  async #doFinish(final: StreamState | undefined): Promise<void> {
    this.ac.abort();
    this.#stopTimers();
    this.#standbyTo(undefined);
    const conn = this.cur?.conn;
    if (conn) {
      try {
        await conn.disconnect();
      } catch (err) {
        this.c.log("warn", "disconnect", { stream_id: this.id, provider: this.cur?.provider, err: messageOf(err) });
      }
    }
    let endErr: unknown;
    if (this.id) {
      // One request timeout bounds the end: a move to the standby not reported yet is reported first (the
      // server ends the stream where it is), then the last samples, then the end itself.
      const sc = scope(undefined, this.c.opts.requestTimeoutMs);
      await this.#flushReports(sc.signal).catch(() => undefined);
      await this.#telemetry.finalFlush(); // the last samples, while the stream is still active
      try {
        await this.c.api.end(this.id, sc.signal);
      } catch (err) {
        endErr = err;
      } finally {
        sc.dispose();
      }
    }
    this.c.untrack(this);
    this.endOp?.();
    if (final) this.emit(final);
    this.#finished = true;
    for (const fn of [...this.#endListeners]) {
      try {
        fn();
      } catch (err) {
        this.c.log("warn", "end listener threw", { stream_id: this.id, err: messageOf(err) });
      }
    }
    this.#endListeners.clear();
    if (endErr !== undefined && !isStatus(endErr, 404, 409)) throw new Error(`end stream ${this.id}: ${messageOf(endErr)}`, { cause: endErr });
  }

  #stopTimers(): void {
    if (this.#hbTimer !== undefined) clearTimeout(this.#hbTimer);
    if (this.#wdTimer !== undefined) clearInterval(this.#wdTimer);
    this.#hbTimer = this.#wdTimer = undefined;
    this.#telemetry.stop();
  }

  /** @internal records an error a connection reported and, when it is the current one, fails over at once. */
  mediaError(sl: Slot, me: MediaError): void {
    if (sl.err) return; // one error per connection is enough
    sl.err = me;
    sl.errAt = Date.now();
    if (sl === this.cur) this.#setPending(this.#mediaTrigger(sl));
  }

  #mediaTrigger(sl: Slot): Trigger {
    const err = sl.err ?? new MediaError("connection_lost");
    return { kind: "media", provider: sl.provider, slot: sl, media: err, at: sl.errAt, reason: `${err.kind} on ${sl.provider}` };
  }

  /** @internal asks the stream to move, and reports whether it will. */
  trigger(t: Trigger): boolean {
    if (this.#finished || !this.cur || this.ac.signal.aborted) return false;
    if (t.kind === "health" && this.provider !== t.provider) return false;
    if (t.kind === "rebalance" && (this.provider === t.to || this.#pending || this.#moving || this.#stuckTo === t.to)) return false;
    this.#setPending(t);
    return true;
  }

  // A failure replaces a pending rebalance; otherwise the first request stands.
  #setPending(t: Trigger): void {
    if (!this.#pending || (this.#pending.kind === "rebalance" && t.kind !== "rebalance")) this.#pending = t;
    this.#kick();
  }

  #kick(): void {
    if (this.#moving || !this.#pending || this.#finished) return;
    this.#moving = true;
    this.task(this.#loop());
  }

  // The stream's loop: one move at a time, for as long as requests come.
  async #loop(): Promise<void> {
    try {
      for (;;) {
        const t = this.#takePending();
        if (!t) return;
        try {
          await this.#move(t);
        } catch (err) {
          if (this.ac.signal.aborted) return;
          const e = asError(err);
          this.c.log("error", "stream failed", { stream_id: this.id, err: e.message });
          this.#err = e;
          this.#moving = false;
          void this.finish({ type: "failed", error: e }).catch((endErr: unknown) =>
            this.c.log("warn", "end failed stream", { stream_id: this.id, err: messageOf(endErr) }),
          );
          return;
        }
      }
    } finally {
      this.#moving = false;
    }
  }

  #takePending(): Trigger | undefined {
    const t = this.#pending;
    this.#pending = undefined;
    if (!t) return undefined;
    switch (t.kind) {
      case "media":
        return t.slot === this.cur ? t : this.#takePending();
      case "health":
        return t.provider === this.provider ? t : this.#takePending();
      default:
        return t.to !== this.provider && t.to !== this.#stuckTo ? t : this.#takePending();
    }
  }

  /** @internal connects a with its engine. */
  async connect(a: Assignment, signal: AbortSignal): Promise<Slot> {
    const e = this.c.engineFor(a.provider.kind);
    if (!e) throw new Error(`no media engine for provider kind ${a.provider.kind}`);
    const sl: Slot = { provider: a.provider.name, conn: undefined, err: undefined, errAt: 0 };
    const sc = scope(signal, this.c.opts.connectTimeoutMs);
    try {
      // An engine's errors reach logs, states and the server: the join token is taken out of them.
      const conn = await e.connect(a, (me) => this.mediaError(sl, redactMedia(me, a.token)), sc.signal);
      if (sc.signal.aborted && !signal.aborted) {
        // Connected after its deadline: not used.
        void conn.disconnect().catch(() => undefined);
        throw timeoutError(`connect to ${a.provider.name}: no answer within ${this.c.opts.connectTimeoutMs} ms`);
      }
      sl.conn = conn;
      return sl;
    } catch (err) {
      if (sc.timedOut()) throw timeoutError(`connect to ${a.provider.name}: no answer within ${this.c.opts.connectTimeoutMs} ms`);
      if (err instanceof MediaError) throw redactMedia(err, a.token);
      throw new Error(`connect to ${a.provider.name}: ${redact(messageOf(err), a.token)}`, { cause: err });
    } finally {
      sc.dispose();
    }
  }

  /** @internal tells the server that err happened on provider. */
  async report(provider: string, err: unknown, signal: AbortSignal): Promise<void> {
    let stage: FailureBody["stage"] = "connect";
    let code: string | undefined;
    if (err instanceof MediaError) {
      code = err.kind;
      stage = err.kind === "token_rejected" ? "auth" : "media";
    }
    if (err instanceof Error && err.name === "TimeoutError") stage = "timeout";
    const sc = scope(signal);
    try {
      await this.c.api.failure(this.id, { provider, stage, code, message: messageOf(err) }, sc.signal);
    } catch (rerr) {
      if (!signal.aborted) this.c.log("warn", "report failure", { stream_id: this.id, provider, err: messageOf(rerr) });
    } finally {
      sc.dispose();
    }
  }

  /**
   * Moves the stream as t asks; rejects only when the stream is lost. A
   * failure moves it to its standby when it has a usable one (the move is
   * reported afterwards); otherwise it gets a new assignment from the control
   * plane, connects it, and only then disconnects the old connection
   * (make-before-break). A failover ends within the failover timeout.
   */
  async #move(t: Trigger): Promise<void> {
    const c = this.c;
    const from = this.provider;
    let fallbacks = this.#fallbacks;
    const old = this.cur;
    const planned = t.kind === "rebalance";
    const failed = new Set<string>();
    const sc = scope(this.ac.signal, planned ? Infinity : c.opts.failoverTimeoutMs);
    const signal = sc.signal;
    const slot = new RetrySlot();
    // The media error to blame the provider for: none when a viewer follows its publisher.
    const media = t.media?.kind === "publisher_moved" ? undefined : t.media;
    try {
      if (!planned) {
        this.emit({ type: "failingOver", from, reason: t.reason });
        c.log("info", "failing over", { stream_id: this.id, from, reason: t.reason });
        failed.add(from);
        if (media) c.avoid(from);
        const sa = this.#takeStandby(failed);
        if (sa) {
          // A standby connect gets half the failover time at most, so that
          // the control plane can still be asked if it hangs.
          const ssc = scope(signal, Math.min(c.opts.connectTimeoutMs, c.opts.failoverTimeoutMs / 2));
          try {
            const sl = await this.connect(sa, ssc.signal);
            await this.#swap(t, from, old, sl, { a: sa, fallbacks: fallbacks.filter((n) => n !== sa.provider.name), standby: undefined });
            this.#reportMove({ from, to: sa.provider.name, at: Date.now(), reason: t.reason, media });
            return;
          } catch (err) {
            if (this.ac.signal.aborted) throw err;
            // Not marked failed: the control plane may assign it again with a fresh token.
            c.log("warn", "standby connect failed: asking the control plane", { stream_id: this.id, provider: sa.provider.name, err: messageOf(err) });
          } finally {
            ssc.dispose();
          }
        }
      }
      // The control plane must know where the stream is before it moves it.
      try {
        await this.#flushReports(signal);
      } catch (err) {
        if (!signal.aborted) c.log("warn", "earlier move not reported: asking the control plane anyway", { stream_id: this.id, err: messageOf(err) });
      }
      const cfg = c.config;
      const attempts = planned ? 1 : Math.max(cfg?.maxRetries ?? 3, 1);
      const backoffMs = cfg?.retryBackoffMs ?? 100;
      let lastErr: unknown;
      for (let attempt = 1; attempt <= attempts && !signal.aborted; attempt++) {
        slot.free();
        if (attempt > 1) {
          const ok = slot.take(c.budget);
          if (ok) this.emit({ type: "reconnecting", provider: from, attempt: attempt - 1, error: asError(lastErr) });
          else if (!(lastErr instanceof RetryBudgetError)) lastErr = new RetryBudgetError({ cause: lastErr });
          if (!(await sleep(retryDelay(lastErr, backoffMs, attempt - 1), signal))) break;
          if (!ok) continue;
        }
        const to = planned ? t.to : this.pick(fallbacks, failed);
        let ng: Grant;
        try {
          ng = await c.api.migrate(this.id, { to: to || undefined, reason: t.reason, exclude: c.exclude(failed, false) }, signal);
        } catch (err) {
          if (signal.aborted) break;
          lastErr = err;
          if (to && isStatus(err, 400, 409)) failed.add(to); // it cannot take the stream: try another
          else if (isStatus(err, 404, 409)) throw new FailoverError(`fail over from ${from}: ${messageOf(err)}`, { cause: err }); // the stream ended on the server
          else if (!planned && unreachable(err) && (!isStatus(err, 503) || retryAfterOf(err) > 0)) attempt--; // the control plane did not answer: no provider attempt spent
          continue;
        }
        fallbacks = ng.fallbacks;
        let sl: Slot;
        try {
          sl = await this.connect(ng.a, signal);
        } catch (err) {
          if (this.ac.signal.aborted) throw err;
          lastErr = err;
          failed.add(ng.a.provider.name);
          if (!signal.aborted) this.task(this.report(ng.a.provider.name, err, this.ac.signal));
          if (planned) {
            this.#stuckTo = t.to ?? "";
            this.#stay(from, t.reason);
            return;
          }
          continue;
        }
        await this.#swap(t, from, old, sl, ng, media);
        return;
      }
      if (this.ac.signal.aborted) return;
      if (planned) this.#stuckTo = t.to ?? "";
      if (planned || (t.kind === "health" && !old?.err)) {
        this.#stay(from, t.reason);
        return;
      }
      if (signal.aborted) {
        throw new FailoverError(`fail over from ${from}: no provider took the stream within ${c.opts.failoverTimeoutMs} ms${lastErr ? ": " + messageOf(lastErr) : ""}`, { cause: lastErr });
      }
      throw new FailoverError(`fail over from ${from}: gave up after ${attempts} attempts: ${messageOf(lastErr)}`, { cause: lastErr });
    } finally {
      slot.free();
      sc.dispose();
    }
  }

  /** @internal picks the provider to move to: the first usable fallback, else the best usable provider; "" lets the server choose. */
  pick(fallbacks: string[], failed: Set<string>): string {
    const cfg = this.c.config;
    const ok = (name: string): boolean => {
      const p = cfg?.providers.find((x) => x.name === name);
      return !!p && !failed.has(name) && p.usable && !!this.c.engineFor(p.kind);
    };
    for (const n of fallbacks) if (ok(n)) return n;
    for (const p of cfg?.providers ?? []) if (ok(p.name)) return p.name;
    return "";
  }

  // Keeps sa as the standby and tells the engines, for their hot standbys.
  #standbyTo(sa: Assignment | undefined): void {
    this.#standbyA = sa;
    const e = sa && this.c.engineFor(sa.provider.kind);
    if (this.#standbyE !== e) this.#standbyE?.standby?.(this.id, undefined);
    (this.#standbyE = e)?.standby?.(this.id, sa);
  }

  // The stream's standby, consumed, when it can be used now.
  #takeStandby(failed: Set<string>): Assignment | undefined {
    const sa = this.#standbyA;
    this.#standbyA = undefined;
    if (!sa || failed.has(sa.provider.name) || sa.provider.name === this.provider || this.c.avoided(sa.provider.name)) return undefined;
    if (sa.tokenExpiresAt && sa.tokenExpiresAt - Date.now() < standbyMinLifeMs) return undefined;
    const p = this.c.config?.providers.find((x) => x.name === sa.provider.name);
    if (!p || !p.usable || !this.c.engineFor(sa.provider.kind)) return undefined;
    return sa;
  }

  // Makes sl the stream's connection, then disconnects old (make-before-break).
  async #swap(t: Trigger, from: string, old: Slot | undefined, sl: Slot, g: Grant, media?: MediaError): Promise<void> {
    const c = this.c;
    const to = g.a.provider.name;
    this.cur = sl;
    this.#a = g.a;
    this.#fallbacks = g.fallbacks;
    this.#standbyTo(c.usableStandby(g.standby));
    this.#migrationCount++;
    const gapMs = Date.now() - t.at;
    this.emit({ type: "migrated", from, to, reason: t.reason, gapMs });
    this.emit({ type: "live", provider: to });
    if (sl.err) this.#setPending(this.#mediaTrigger(sl));
    if (t.kind === "rebalance") c.log("info", "stream migrated", { stream_id: this.id, from, to, reason: t.reason, gap_ms: gapMs });
    else c.log("info", "Successfully failed over to " + to, { stream_id: this.id, from, to, reason: t.reason, gap_ms: gapMs });
    if (old?.conn) {
      try {
        await old.conn.disconnect();
      } catch (err) {
        c.log("warn", "disconnect", { stream_id: this.id, provider: from, err: messageOf(err) });
      }
    }
    if (media) {
      // Reported after the move, off the failover's path, spread over a second.
      this.task(
        (async () => {
          if (await sleep(Math.random() * reportSpreadMs, this.ac.signal)) await this.report(from, media, this.ac.signal);
        })(),
      );
    }
    this.renewStandby();
  }

  // Keeps the stream on its still working connection after a move failed, and puts it back there on the server.
  #stay(provider: string, reason: string): void {
    this.c.log("warn", "could not move: staying on the working connection", { stream_id: this.id, provider, reason });
    this.emit({ type: "live", provider });
    this.task(
      (async () => {
        const sc = scope(this.ac.signal, this.c.opts.requestTimeoutMs);
        try {
          await this.c.api.migrate(this.id, { to: provider, reason: "move failed: back to " + provider }, sc.signal);
        } catch (err) {
          if (!isStatus(err, 400) && !this.ac.signal.aborted) this.c.log("warn", "put the stream back on its provider", { stream_id: this.id, provider, err: messageOf(err) });
        } finally {
          sc.dispose();
        }
      })(),
    );
  }

  // Queues a move to a standby for reporting to the control plane.
  #reportMove(r: MoveReport): void {
    if (this.#unreported.length >= maxUnreported) this.#unreported.shift();
    this.#unreported.push(r);
    if (!this.#reporting) {
      this.#reporting = true;
      this.task(this.#reportMoves());
    }
  }

  // Reports the queued moves, oldest first, until none is left or the stream ends.
  async #reportMoves(): Promise<void> {
    const c = this.c;
    const signal = this.ac.signal;
    const slot = new RetrySlot();
    try {
      // The first attempt waits a random part of a second: the reports of a mass failover come spread out.
      if (!(await sleep(Math.random() * reportSpreadMs, signal))) return;
      let lastErr: unknown;
      for (let n = 0; ; ) {
        if (n > 0) {
          let d = retryDelay(lastErr, c.config?.retryBackoffMs ?? 100, n);
          if (retryAfterOf(lastErr) < reportMaxBackoffMs) d = Math.min(d, reportMaxBackoffMs);
          if (!(await sleep(d, signal))) return;
          if (!slot.take(c.budget)) continue;
        }
        let more: boolean;
        try {
          more = await this.#locked(() => this.#reportNext(signal));
        } catch (err) {
          if (signal.aborted) return;
          lastErr = err;
          n++;
          continue;
        }
        if (!more) return;
        n = 0;
        lastErr = undefined;
      }
    } finally {
      slot.free();
      this.#reporting = false;
    }
  }

  // Runs fn after the reports before it: one report at a time, in the order of the moves.
  #locked<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#reportChain.then(fn, fn);
    this.#reportChain = p.catch(() => undefined);
    return p;
  }

  // One attempt at reporting the oldest unreported move; whether more remain. A report the server refuses is dropped.
  async #reportNext(signal: AbortSignal): Promise<boolean> {
    const r = this.#unreported[0];
    if (!r) return false;
    try {
      await this.#sendReport(r, signal);
    } catch (err) {
      if (retryable(err) || signal.aborted) throw err; // cut short by the end: reported before it
    }
    this.#unreported.shift();
    return this.#unreported.length > 0;
  }

  // Reports, now and in order, the moves not reported yet.
  #flushReports(signal: AbortSignal): Promise<void> {
    return this.#locked(async () => {
      while (await this.#reportNext(signal));
    });
  }

  // Tells the control plane about a move made already and, once recorded, reports the failure that caused it.
  async #sendReport(r: MoveReport, signal: AbortSignal): Promise<void> {
    const c = this.c;
    try {
      const g = await c.api.migrate(this.id, { to: r.to, reason: r.reason, movedAt: new Date(r.at).toISOString(), exclude: c.exclude(new Set(), true) }, signal);
      if (this.provider === g.a.provider.name) {
        this.#fallbacks = g.fallbacks;
        this.#standbyTo(c.usableStandby(g.standby));
      }
    } catch (err) {
      if (!retryable(err) && !signal.aborted) c.log("warn", "move report refused", { stream_id: this.id, from: r.from, to: r.to, err: messageOf(err) });
      throw err;
    }
    c.log("debug", "move reported", { stream_id: this.id, from: r.from, to: r.to, late_ms: Date.now() - r.at });
    if (r.media) this.task(this.report(r.from, r.media, this.ac.signal));
  }

  // Heartbeats: every heartbeatMs, or sooner to renew the standby before it expires.
  #scheduleHeartbeat(ms: number): void {
    if (this.#hbTimer !== undefined) clearTimeout(this.#hbTimer);
    if (this.#finished || this.ac.signal.aborted) return;
    this.#hbTimer = setTimeout(() => {
      this.#hbTimer = undefined;
      this.task(this.#heartbeat().finally(() => this.#scheduleHeartbeat(this.#nextHeartbeat())));
    }, ms);
  }

  // Sends one heartbeat and keeps the standby it answers. A failed heartbeat is logged: the media keeps running.
  async #heartbeat(): Promise<void> {
    const sc = scope(this.ac.signal);
    try {
      const ans = await this.c.api.heartbeat(this.id, this.c.exclude(new Set(), true), sc.signal);
      if (ans.provider === this.provider && this.#a) {
        // else a move is not reported yet
        const sa = tokenOn(ans.standby, this.#a);
        this.#standbyTo(this.c.usableStandby(sa && sa.token !== "" ? sa : undefined));
      }
    } catch (err) {
      if (!this.ac.signal.aborted) this.c.log("warn", "heartbeat failed", { stream_id: this.id, err: messageOf(err) });
    } finally {
      sc.dispose();
    }
  }

  #nextHeartbeat(): number {
    let d = this.c.opts.heartbeatMs;
    const sa = this.#standbyA;
    if (sa?.tokenExpiresAt) d = Math.min(d, Math.max(sa.tokenExpiresAt - Date.now() - standbyRenewBeforeMs, 1000));
    return d;
  }

  /**
   * @internal asks for an early heartbeat when the standby is stale: missing
   * while another provider could take the stream, on a provider no longer
   * usable, or worse than the best one the configuration offers.
   */
  renewStandby(): void {
    const cfg = this.c.config;
    const cur = this.provider;
    if (this.#finished || !cur || this.#unreported.length > 0 || !cfg) return;
    const best = cfg.providers.find(
      (p) =>
        !!this.c.engineFor(p.kind) && p.name !== cur && p.usable && !this.c.avoided(p.name) && (!this.region || p.regions.length === 0 || p.regions.includes(this.region)),
    );
    const sa = this.#standbyA;
    let stale = false;
    if (!sa) stale = best !== undefined;
    else {
      const p = cfg.providers.find((x) => x.name === sa.provider.name);
      stale = !p || !p.usable || this.c.avoided(p.name) || (best !== undefined && best.priority < p.priority);
    }
    if (stale) this.#scheduleHeartbeat(Math.random() * standbyRefreshSpreadMs);
  }

  // Fails the stream over when its connection carried no media for longer than the watchdog allows.
  #checkMedia(): void {
    const cur = this.cur;
    const last = cur?.conn?.lastMedia?.();
    if (!cur || last === undefined) return; // no media yet: the watchdog arms with the first packet
    const idle = Date.now() - last;
    if (idle > this.c.opts.watchdogMs) this.mediaError(cur, new MediaError("media_stalled", `no media for ${idle} ms`));
  }
}

function timeoutError(message: string): Error {
  const e = new NetworkError(message);
  e.name = "TimeoutError";
  return e;
}

function redact(s: string, secret: string): string {
  return secret && s.includes(secret) ? s.split(secret).join("[REDACTED]") : s;
}

function redactMedia(me: MediaError, secret: string): MediaError {
  if (!secret || !me.message.includes(secret)) return me;
  const rest = me.message.startsWith(me.kind + ": ") ? me.message.slice(me.kind.length + 2) : "";
  return new MediaError(me.kind, rest ? redact(rest, secret) : undefined, { cause: me });
}

