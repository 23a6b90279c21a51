import { Api, randomHex, type FetchFn, type Grant, type StartBody } from "./api.js";
import { byPriority, parseSettings, priorities, str, usableOf, usableStatus, type Config, type ProviderConfig } from "./config.js";
import { ApiError, asError, ClosedError, isAbort, isStatus, messageOf, NetworkError, NoProviderError, RetryBudgetError, retryable } from "./errors.js";
import { backoff, Budget, retryDelay, RetrySlot, scope, sleep } from "./retry.js";
import { SSEParser } from "./sse.js";
import { Stream, type Slot, type StateListener } from "./stream.js";
import { MediaError, type Assignment, type Kind, type Logger, type MediaEngine, type Policy, type Quality, type Role } from "./types.js";

/** What a Client is made with. */
export interface ClientOptions {
  /** The control plane's URL, such as https://switchboard.example. */
  serverUrl: string;
  /** A client-role API token: the key the app ships with. */
  token: string;
  /** The media engine of each provider kind the app uses; streams are only assigned to kinds that have one. */
  engines: Partial<Record<Kind, MediaEngine>>;
  /** Where the SDK logs (default: nowhere). It logs "Successfully failed over to <name>" on every failover. */
  logger?: Logger;
  /** What live streams do when priorities change (default keepLive). */
  policy?: Policy;
  /** The interval of stream heartbeats (default 30 s, well under the server's two-minute abandonment). */
  heartbeatMs?: number;
  /** Bounds each engine connect (default 15 s). */
  connectTimeoutMs?: number;
  /** Bounds each API call (default 10 s). */
  requestTimeoutMs?: number;
  /** Bounds a failover (default 10 s): a stream is Live elsewhere, Live again on a working connection, or failed by then. */
  failoverTimeoutMs?: number;
  /** Fails a stream over when its connection carried no media for this long (default 0: off). */
  watchdogMs?: number;
  /**
   * How often a stream samples its connection's quality (stream.quality())
   * for the control plane's quality telemetry (default 10 s; 0: off). The
   * samples are sent in batches, every third sample, on a move and at the end.
   */
  qualityMs?: number;
  /**
   * The fetch to use (default: the global fetch). In React Native, give one
   * that streams response bodies for the event subscription; without one the
   * client watches provider health by polling.
   */
  fetch?: FetchFn;
}

/** What client.start is given. */
export interface StartOptions {
  room: string;
  /** The user the join token is minted for (default: a random id). */
  userId?: string;
  /** "publisher" (the default) or "subscriber". */
  role?: Role;
  /** Asks for a provider that serves the region, such as us-east. */
  region?: string;
  /** The quality tier the stream is priced at (the server's default is "hd"). */
  quality?: Quality;
  /** Receives every state from the first "connecting" on (states before start resolves included). */
  onState?: StateListener;
}

/** @internal the options with their defaults. */
interface ResolvedOptions {
  heartbeatMs: number;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  failoverTimeoutMs: number;
  watchdogMs: number;
  qualityMs: number;
}

/** A provider whose media failed is kept out of standby assignments this long, unless it recovers sooner. */
const avoidForMs = 30_000;
/** The server sends a comment every 15 s; a stream silent three times as long is dead even if its socket is not. */
const sseIdleTimeoutMs = 45_000;
/** The first reconnection delay of the event stream; the server's retry field overrides it. */
const sseBackoffBaseMs = 1000;
const maxEventPayload = 1 << 20;

/**
 * Starts and keeps streams alive through one Switchboard control plane. It
 * holds one event subscription shared by all its streams, the last known
 * configuration and a retry budget; close stops it.
 */
export class Client {
  /** @internal */ readonly api: Api;
  /** @internal */ readonly opts: ResolvedOptions;
  /** @internal */ readonly budget = new Budget();
  readonly #engines: Partial<Record<Kind, MediaEngine>>;
  readonly #logger: Logger | undefined;
  readonly #policy: Policy;
  readonly #ac = new AbortController();
  #cfg: Config | undefined;
  #etag = "";
  readonly #streamSet = new Set<Stream>();
  readonly #starts = new Set<Promise<unknown>>();
  #sseUp = false;
  #lastEventId = "";
  readonly #avoidUntil = new Map<string, number>();
  #closing: Promise<void> | undefined;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #background = new Set<Promise<unknown>>();
  #refreshing: Promise<Config> | undefined;
  #refreshAgain = false;
  #refreshFails = 0;
  #refreshRetry: ReturnType<typeof setTimeout> | undefined;
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  #polling = false;
  readonly #pollFails = new Map<string, number>();
  #rebalanceTimer: ReturnType<typeof setInterval> | undefined;

  constructor(options: ClientOptions) {
    const o = options;
    let base: URL;
    try {
      base = new URL(o.serverUrl);
    } catch {
      throw new TypeError("serverUrl: not an absolute URL");
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") throw new TypeError("serverUrl: must be http or https");
    if (base.username || base.password) throw new TypeError("serverUrl: must not hold user info");
    if (base.search || base.hash) throw new TypeError("serverUrl: must not have a query or fragment");
    if (typeof o.token !== "string" || o.token === "" || /[\s]/.test(o.token)) throw new TypeError("token: required, without spaces");
    const engines = Object.entries(o.engines ?? {}).filter(([, e]) => e != null);
    if (engines.length === 0) throw new TypeError("engines: at least one media engine is required");
    for (const [kind, e] of engines) if (typeof (e as MediaEngine).connect !== "function") throw new TypeError(`engines.${kind}: has no connect method`);
    this.#engines = o.engines;
    this.#logger = o.logger;
    this.#policy = o.policy ?? { type: "keepLive" };
    if (this.#policy.type === "migrateGradually" && !(this.#policy.rate > 0)) throw new TypeError("policy: migrateGradually needs a positive rate");
    const positive = (v: number | undefined, d: number, name: string): number => {
      if (v === undefined) return d;
      if (!(v > 0) || !Number.isFinite(v)) throw new TypeError(`${name}: must be a positive number (ms)`);
      return v;
    };
    this.opts = {
      heartbeatMs: positive(o.heartbeatMs, 30_000, "heartbeatMs"),
      connectTimeoutMs: positive(o.connectTimeoutMs, 15_000, "connectTimeoutMs"),
      requestTimeoutMs: positive(o.requestTimeoutMs, 10_000, "requestTimeoutMs"),
      failoverTimeoutMs: positive(o.failoverTimeoutMs, 10_000, "failoverTimeoutMs"),
      watchdogMs: o.watchdogMs ? positive(o.watchdogMs, 0, "watchdogMs") : 0,
      qualityMs: o.qualityMs === 0 ? 0 : positive(o.qualityMs, 10_000, "qualityMs"),
    };
    const fetchFn = o.fetch ?? (typeof fetch === "function" ? (input: string, init: RequestInit) => fetch(input, init) : undefined);
    if (!fetchFn) throw new TypeError("fetch: none is global here: give one");
    this.api = new Api(base.href.replace(/\/+$/, ""), o.token, fetchFn, this.opts.requestTimeoutMs);
    this.#run(this.#watchEvents());
    this.#resetPoll();
  }

  /** The last configuration the client fetched, or undefined before the first. */
  get config(): Config | undefined {
    return this.#cfg;
  }

  /** Whether the event subscription is up; while it is down, the client polls provider health. */
  get eventsConnected(): boolean {
    return this.#sseUp;
  }

  /** The live streams of the client. */
  get streams(): Stream[] {
    return [...this.#streamSet];
  }

  /** Whether close was called. */
  get closed(): boolean {
    return this.#ac.signal.aborted;
  }

  /**
   * Starts a stream and resolves with it live. Following the original app,
   * attempt 1 uses the first provider, attempt 2 retries it and attempt 3
   * fails over to the next one (the counts and backoff come from the
   * server's configuration, under the client's retry budget). Every failed
   * attempt is reported to the server. It rejects with a NoProviderError when
   * no provider took the stream, an ApiError when the control plane refused
   * it, and a ClosedError after close.
   */
  async start(o: StartOptions): Promise<Stream> {
    if (this.closed) throw new ClosedError();
    if (!o || typeof o.room !== "string" || o.room === "") throw new TypeError("room: required");
    const p = this.#doStart(o);
    this.#starts.add(p);
    try {
      return await p;
    } finally {
      this.#starts.delete(p);
    }
  }

  async #doStart(o: StartOptions): Promise<Stream> {
    let cfg: Config;
    try {
      cfg = this.#cfg ?? (await this.#refreshConfig());
    } catch (err) {
      throw this.closed ? new ClosedError() : err;
    }
    const s = new Stream(this, o.room, o.onState);
    s.region = o.region;
    const endOp = this.budget.begin();
    let sl: Slot;
    let g: Grant;
    try {
      const body: StartBody = { room: o.room, userId: o.userId || "u-" + randomHex(8), role: o.role ?? "publisher", idempotencyKey: randomHex(16) };
      if (o.region) body.region = o.region;
      if (o.quality) body.quality = o.quality;
      const ex = this.#withoutEngine(cfg);
      if (ex.length) body.exclude = ex;
      [sl, g] = await this.#startAttempts(s, cfg, body);
    } catch (err) {
      endOp();
      s.ac.abort();
      const e = this.closed ? new ClosedError() : asError(err);
      s.emit({ type: "failed", error: e });
      throw e;
    }
    s.endOp = endOp;
    if (this.closed) {
      s.begin(g, sl);
      await s.finish(undefined).catch(() => undefined);
      throw new ClosedError();
    }
    this.#streamSet.add(s);
    s.begin(g, sl);
    return s;
  }

  // The start attempts; resolves with the live connection.
  async #startAttempts(s: Stream, cfg: Config, body: StartBody): Promise<[Slot, Grant]> {
    const signal = this.#ac.signal;
    let g: Grant | undefined;
    let first = "";
    let lastErr: unknown;
    const tries = new Map<string, number>();
    const failed = new Set<string>();
    const attempts = Math.max(cfg.maxRetries, 1);
    const slot = new RetrySlot();
    const giveUp = async (err: unknown): Promise<never> => {
      if (g) {
        const sc = scope(undefined, this.opts.requestTimeoutMs);
        await this.api.end(g.a.streamId, sc.signal).catch((e: unknown) => this.log("warn", "end stream after a failed start", { stream_id: g?.a.streamId, err: messageOf(e) }));
        sc.dispose();
      }
      throw err;
    };
    try {
      for (let attempt = 1; attempt <= attempts; attempt++) {
        slot.free();
        if (attempt > 1) {
          if (!slot.take(this.budget)) return await giveUp(new NoProviderError(`start stream in room ${body.room}: retry budget exhausted after: ${messageOf(lastErr)}`, attempt - 1, { cause: new RetryBudgetError({ cause: lastErr }) }));
          if (!(await sleep(retryDelay(lastErr, cfg.retryBackoffMs, attempt - 1), signal))) return await giveUp(new ClosedError());
        }
        if (!g) {
          try {
            g = await this.api.start(body, signal);
          } catch (err) {
            if (signal.aborted) return await giveUp(new ClosedError());
            lastErr = err;
            if (!retryable(err)) return await giveUp(err);
            s.emit({ type: "reconnecting", provider: "", attempt, error: asError(err) });
            continue;
          }
          s.id = g.a.streamId;
          first = g.a.provider.name;
        } else if (failed.has(g.a.provider.name)) {
          const to = s.pick(g.fallbacks, failed);
          try {
            g = await this.api.migrate(g.a.streamId, { to: to || undefined, reason: "start failed on " + g.a.provider.name, exclude: this.exclude(failed, false) }, signal);
          } catch (err) {
            if (signal.aborted) return await giveUp(new ClosedError());
            lastErr = err;
            if (to && isStatus(err, 400, 409)) failed.add(to);
            else if (!retryable(err)) return await giveUp(err);
            continue;
          }
        }
        const a = g.a;
        s.emit({ type: "connecting", provider: a.provider.name, attempt });
        try {
          const sl = await s.connect(a, signal);
          if (a.provider.name !== first) this.log("info", "Successfully failed over to " + a.provider.name, { stream_id: a.streamId, from: first, to: a.provider.name, attempt });
          return [sl, g];
        } catch (err) {
          if (signal.aborted) return await giveUp(new ClosedError());
          lastErr = err;
          await s.report(a.provider.name, err, signal);
          const n = (tries.get(a.provider.name) ?? 0) + 1;
          tries.set(a.provider.name, n);
          if (n >= 2 || (err instanceof MediaError && err.kind === "token_rejected")) {
            failed.add(a.provider.name);
            s.emit({ type: "failingOver", from: a.provider.name, reason: messageOf(err) });
          } else {
            s.emit({ type: "reconnecting", provider: a.provider.name, attempt, error: asError(err) });
          }
        }
      }
      return await giveUp(new NoProviderError(`start stream in room ${body.room}: gave up after ${attempts} attempts: ${messageOf(lastErr)}`, attempts, { cause: lastErr }));
    } finally {
      slot.free();
    }
  }

  /**
   * Ends every stream of the client (each on the server, with a fresh
   * deadline, and on its media engine), stops the event subscription, the
   * polling and every timer, and resolves once all of it has stopped. Starts
   * in flight reject with a ClosedError. It is idempotent.
   */
  close(): Promise<void> {
    if (!this.#closing) this.#closing = this.#doClose();
    return this.#closing;
  }

  async #doClose(): Promise<void> {
    this.#ac.abort();
    this.#clearTimers();
    await Promise.allSettled([...this.#starts]);
    const results = await Promise.allSettled([...this.#streamSet].map((s) => s.end()));
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
    this.#clearTimers();
    const errs = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => asError(r.reason));
    if (errs.length === 1) throw errs[0];
    if (errs.length > 1) throw new AggregateError(errs, `close: ${errs.length} streams could not be ended on the server`);
  }

  #clearTimers(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    if (this.#refreshRetry !== undefined) clearTimeout(this.#refreshRetry);
    if (this.#pollTimer !== undefined) clearTimeout(this.#pollTimer);
    if (this.#rebalanceTimer !== undefined) clearInterval(this.#rebalanceTimer);
    this.#refreshRetry = this.#pollTimer = this.#rebalanceTimer = undefined;
  }

  /** @internal logs through the app's logger. */
  log(level: "debug" | "info" | "warn" | "error", message: string, fields?: Record<string, unknown>): void {
    const l = this.#logger;
    if (!l) return;
    try {
      if (level === "debug") l.debug?.(message, fields);
      else l[level](message, fields);
    } catch {
      // a logger that throws must not break a failover
    }
  }

  /** @internal the engine of a provider kind. */
  engineFor(kind: Kind): MediaEngine | undefined {
    return this.#engines[kind] ?? undefined;
  }

  /** @internal sa when the client has an engine for its provider. */
  usableStandby(sa: Assignment | undefined): Assignment | undefined {
    return sa && this.engineFor(sa.provider.kind) ? sa : undefined;
  }

  /** @internal */
  untrack(s: Stream): void {
    this.#streamSet.delete(s);
  }

  /** @internal keeps provider out of standby assignments for a while: its media just failed here. */
  avoid(provider: string): void {
    this.#avoidUntil.set(provider, Date.now() + avoidForMs);
  }

  /** @internal whether provider's media failed on this client recently. */
  avoided(provider: string): boolean {
    const until = this.#avoidUntil.get(provider);
    if (until === undefined) return false;
    if (Date.now() > until) {
      this.#avoidUntil.delete(provider);
      return false;
    }
    return true;
  }

  /**
   * @internal the providers the control plane must not assign this client's
   * streams to: kinds without an engine, those in failed and, with avoided,
   * those whose media failed here recently (at most 64).
   */
  exclude(failed: Set<string>, avoided: boolean): string[] {
    const out = new Set(this.#cfg ? this.#withoutEngine(this.#cfg) : []);
    for (const n of failed) out.add(n);
    if (avoided) {
      const now = Date.now();
      for (const [n, until] of this.#avoidUntil) if (now < until) out.add(n);
    }
    return [...out].sort().slice(0, 64);
  }

  #withoutEngine(cfg: Config): string[] {
    return cfg.providers.filter((p) => !this.engineFor(p.kind)).map((p) => p.name);
  }

  #run(p: Promise<unknown>): void {
    const q = p.catch((err: unknown) => {
      if (!this.closed) this.log("error", "background work failed", { err: messageOf(err) });
    });
    this.#background.add(q);
    void q.finally(() => this.#background.delete(q));
  }

  #after(ms: number, fn: () => void): ReturnType<typeof setTimeout> | undefined {
    if (this.closed) return undefined;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
    return t;
  }

  // ---- configuration ----

  /** @internal asks for the configuration to be fetched again. */
  requestRefresh(): void {
    if (this.closed) return;
    if (this.#refreshing) {
      this.#refreshAgain = true;
      return;
    }
    this.#run(this.#refreshConfig().catch(() => undefined));
  }

  /**
   * Fetches the configuration and keeps it as the last known good. After a
   * change it fails streams over from providers that left it or became
   * unusable, and applies the priority policy if priorities changed. A
   * failure keeps the last known configuration and tries again with backoff.
   */
  #refreshConfig(): Promise<Config> {
    if (this.#refreshing) return this.#refreshing;
    if (this.#refreshRetry !== undefined) {
      clearTimeout(this.#refreshRetry);
      this.#refreshRetry = undefined;
    }
    const p = this.#fetchConfig().finally(() => {
      this.#refreshing = undefined;
      if (this.#refreshAgain) {
        this.#refreshAgain = false;
        this.requestRefresh();
      }
    });
    this.#refreshing = p;
    return p;
  }

  async #fetchConfig(): Promise<Config> {
    let got: Awaited<ReturnType<Api["config"]>>;
    try {
      got = await this.api.config(this.#etag, this.#ac.signal);
    } catch (err) {
      if (!this.closed) {
        this.#refreshFails++;
        const d = retryDelay(err, this.#cfg?.retryBackoffMs || 1000, this.#refreshFails);
        this.log("warn", "control plane unreachable: keeping the last configuration", { err: messageOf(err), retry_in_ms: d });
        this.#refreshRetry = setTimeout(() => {
          this.#refreshRetry = undefined;
          this.requestRefresh();
        }, d);
      }
      throw err instanceof ApiError || err instanceof NetworkError || isAbort(err) ? err : new NetworkError("fetch configuration: " + messageOf(err), { cause: err });
    }
    this.#refreshFails = 0;
    if (!got) {
      if (this.#cfg) this.#cfg = { ...this.#cfg, fetchedAt: Date.now() };
      this.#resetPoll();
      if (this.#cfg) return this.#cfg;
      return this.#fetchConfig();
    }
    const old = this.#cfg;
    this.#cfg = got.cfg;
    this.#etag = got.etag;
    this.budget.setRatio(got.cfg.retryBudget);
    if (old) {
      for (const p of old.providers) {
        const np = got.cfg.providers.find((x) => x.name === p.name);
        if (!np) this.#failProvider(p.name, `provider ${p.name} was removed or disabled`);
        // Unusable now, and not already so before (a stream the server put on
        // a provider in that state, with no better one, is not moved again).
        else if (!np.usable && (p.usable || p.status !== np.status)) this.#failProvider(p.name, `provider ${p.name} is ${np.status}`);
      }
      if (priorities(old) !== priorities(got.cfg)) this.#prioritiesChanged();
      this.#standbysChanged();
    }
    this.#resetPoll();
    return got.cfg;
  }

  /** Applies the settings of a settings.updated event at once: the next start, retry, backoff and poll use them. */
  #applySettings(data: unknown): void {
    if (!this.#cfg) return; // the first fetch brings them
    const s = parseSettings(data);
    this.#cfg = { ...this.#cfg, ...s };
    this.#etag = ""; // the cached configuration is no longer the one the ETag names
    this.budget.setRatio(s.retryBudget);
    this.log("info", "settings applied", { max_retries: s.maxRetries, max_failures: s.maxFailures, health_check_interval_ms: s.healthCheckIntervalMs, retry_backoff_ms: s.retryBackoffMs, retry_budget: s.retryBudget });
    this.#resetPoll();
  }

  // Applies fn to the cached entry of name (dropping it when fn returns false), keeping the list sorted.
  #updateProvider(name: string, fn: (p: ProviderConfig) => boolean): boolean {
    const cfg = this.#cfg;
    const i = cfg?.providers.findIndex((p) => p.name === name) ?? -1;
    if (!cfg || i < 0) return false;
    this.#etag = "";
    const ps = cfg.providers.map((p) => ({ ...p }));
    const entry = ps[i];
    if (entry && !fn(entry)) ps.splice(i, 1);
    ps.sort(byPriority);
    this.#cfg = { ...cfg, providers: ps };
    return true;
  }

  /** Makes every stream on the named provider fail over now. */
  #failProvider(name: string, reason: string): void {
    const at = Date.now();
    let n = 0;
    for (const s of this.#streamSet) if (s.trigger({ kind: "health", provider: name, reason, at })) n++;
    if (n > 0) this.log("info", "provider unusable: failing streams over", { provider: name, reason, streams: n });
  }

  #standbysChanged(): void {
    for (const s of this.#streamSet) s.renewStandby();
  }

  #forgive(provider: string): void {
    this.#avoidUntil.delete(provider);
  }

  // ---- priority policy ----

  #prioritiesChanged(): void {
    if (this.#policy.type !== "migrateGradually" || this.#rebalanceTimer !== undefined || this.closed) return;
    this.#rebalanceTimer = setInterval(() => {
      if (!this.#rebalanceOne() && this.#rebalanceTimer !== undefined) {
        clearInterval(this.#rebalanceTimer);
        this.#rebalanceTimer = undefined;
      }
    }, 1000 / this.#policy.rate);
  }

  // Moves one stream that is not on the preferred provider there; whether more may need to move.
  #rebalanceOne(): boolean {
    const to = this.#cfg?.providers.find((p) => !!this.engineFor(p.kind) && p.usable)?.name;
    if (!to) return false;
    for (const s of this.#streamSet) {
      if (s.provider !== to && s.trigger({ kind: "rebalance", to, reason: "priorities changed: moving to " + to, at: Date.now() })) return true;
    }
    return false;
  }

  // ---- polling fallback ----

  #resetPoll(): void {
    if (this.#pollTimer !== undefined) clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    if (this.closed) return;
    this.#pollTimer = setTimeout(() => {
      this.#pollTimer = undefined;
      if (this.#sseUp) this.#pollFails.clear();
      else if (!this.#polling) {
        this.#polling = true;
        this.#run(this.#poll().finally(() => (this.#polling = false)));
      }
      this.#resetPoll();
    }, this.#cfg?.healthCheckIntervalMs ?? 30_000);
  }

  /**
   * The fallback health watch while the event stream is down: reads the
   * public health of every provider in use; maxFailures consecutive unusable
   * answers make the streams leave it. An unreachable control plane is not a
   * provider failure: streams keep running.
   */
  async #poll(): Promise<void> {
    const inUse = new Set<string>();
    for (const s of this.#streamSet) if (s.provider) inUse.add(s.provider);
    for (const n of [...this.#pollFails.keys()]) if (!inUse.has(n)) this.#pollFails.delete(n);
    const maxFailures = this.#cfg?.maxFailures ?? 3;
    await Promise.all(
      [...inUse].map(async (name) => {
        let status: string;
        let ok: boolean;
        const sc = scope(this.#ac.signal);
        try {
          const h = await this.api.health(name, sc.signal);
          status = h.status;
          ok = usableOf(h);
        } catch (err) {
          if (!isStatus(err, 404)) {
            if (!this.closed) this.log("debug", "health poll failed: control plane unreachable", { provider: name, err: messageOf(err) });
            return;
          }
          status = "DELETED";
          ok = false;
        } finally {
          sc.dispose();
        }
        if (ok) {
          this.#pollFails.set(name, 0);
          return;
        }
        const n = (this.#pollFails.get(name) ?? 0) + 1;
        this.#pollFails.set(name, n);
        this.log("info", "health poll: provider unusable", { provider: name, status, consecutive: n });
        if (n >= maxFailures) {
          this.#pollFails.set(name, 0);
          this.#failProvider(name, `provider ${name} is ${status} after ${maxFailures} health checks`);
        }
      }),
    );
  }

  // ---- events ----

  /**
   * Keeps the client's one subscription to GET /api/events until close,
   * reconnecting with a jittered backoff and resuming from the last event
   * id. While it is down, the client polls provider health.
   */
  async #watchEvents(): Promise<void> {
    let fails = 0;
    const base = { ms: sseBackoffBaseMs };
    while (!this.closed) {
      let connected = false;
      let reason = "";
      try {
        connected = await this.#subscribe(base);
        reason = "event stream ended by the server";
      } catch (err) {
        connected = err instanceof SubscriptionError && err.connected;
        reason = messageOf(err);
        if (err instanceof SubscriptionError && err.unsupported) {
          this.#sseUp = false;
          this.log("warn", "event stream unsupported by this fetch: polling", {});
          return;
        }
      }
      this.#sseUp = false;
      if (this.closed) return;
      if (connected) fails = 0;
      fails++;
      const d = backoff(base.ms, fails);
      this.log("info", "event stream down: polling provider health", { err: reason, retry_in_ms: d });
      if (!(await sleep(d, this.#ac.signal))) return;
    }
  }

  // Reads one connection of the event stream until it ends; resolves whether it was established.
  async #subscribe(base: { ms: number }): Promise<boolean> {
    const path = "/api/events";
    const sc = scope(this.#ac.signal);
    let idle: ReturnType<typeof setTimeout> | undefined;
    let connected = false;
    try {
      const last = this.#lastEventId;
      const headers: Record<string, string> = { Accept: "text/event-stream", "Cache-Control": "no-cache" };
      if (last) headers["Last-Event-ID"] = last;
      const res = await this.api.open("GET", path, sc.signal, { headers, stream: true });
      if (res.status !== 200) {
        await this.api.decode("GET", path, res);
        throw new NetworkError(`GET ${path}: status ${res.status}`);
      }
      const ct = (res.headers.get("Content-Type") ?? "").split(";")[0]?.trim().toLowerCase();
      if (ct !== "text/event-stream") {
        await res.body?.cancel().catch(() => undefined);
        throw new NetworkError(`GET ${path}: answer is ${ct || "untyped"}, not an event stream`);
      }
      const body = res.body;
      if (!body || typeof body.getReader !== "function" || typeof TextDecoder !== "function") {
        // The scope's end (finally) aborts the request.
        throw new SubscriptionError("response bodies cannot be streamed", false, true);
      }
      connected = true;
      this.#sseUp = true;
      this.log("debug", "event stream connected", { resumed: last !== "" });
      if (!last) this.requestRefresh(); // nothing to resume from: what happened before is in the configuration
      const silent = (): void => {
        if (idle !== undefined) clearTimeout(idle);
        idle = setTimeout(() => sc.dispose(), sseIdleTimeoutMs);
      };
      silent();
      const reader = body.getReader();
      const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
      const parser = new SSEParser(maxEventPayload);
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          silent();
          const events = parser.push(decoder.decode(value, { stream: true }));
          if (parser.lastEventId) this.#lastEventId = parser.lastEventId;
          if (parser.retry > 0) base.ms = parser.retry;
          for (const ev of events) this.#dispatch(ev.type, ev.data);
          if (this.closed) break;
        }
      } finally {
        parser.end();
        await reader.cancel().catch(() => undefined);
      }
      return true;
    } catch (err) {
      if (err instanceof SubscriptionError) throw err;
      throw new SubscriptionError(this.closed ? "closed" : sc.signal.aborted ? "event stream silent for too long" : messageOf(err), connected, false);
    } finally {
      if (idle !== undefined) clearTimeout(idle);
      sc.dispose();
    }
  }

  /**
   * Reacts to one event at once: status transitions and configuration
   * changes that make a provider unusable fail its streams over without
   * waiting for anything else.
   */
  #dispatch(type: string, data: string): void {
    if (type === "resync") {
      this.log("info", "event stream asked to resynchronise: refetching the configuration", {});
      this.requestRefresh();
      return;
    }
    let env: { data?: unknown };
    try {
      env = JSON.parse(data) as { data?: unknown };
    } catch (err) {
      this.log("warn", "event discarded: malformed", { type, err: messageOf(err) });
      return;
    }
    const d = (env && typeof env === "object" && env.data && typeof env.data === "object" ? env.data : {}) as Record<string, unknown>;
    const name = str(d.name);
    switch (type) {
      case "provider.status": {
        if (!name) return;
        const to = String(d.to ?? "");
        const nowUsable = usableOf({ usable: d.usable, status: to });
        this.#updateProvider(name, (p) => {
          p.status = to as ProviderConfig["status"];
          p.usable = nowUsable;
          return true;
        });
        if (!nowUsable) this.#failProvider(name, `provider ${name} turned ${to}: ${String(d.reason ?? "")}`);
        else if (!usableStatus(String(d.from ?? ""))) this.#forgive(name); // it has recovered
        break;
      }
      case "provider.created":
      case "provider.updated": {
        if (!name) return;
        const enabled = d.enabled === true;
        const status = String(d.status ?? "UNKNOWN");
        const nowUsable = usableOf({ usable: d.usable, status });
        const priority = typeof d.priority === "number" ? d.priority : 0;
        let reordered = false;
        let changed = true;
        const known = this.#updateProvider(name, (p) => {
          reordered = p.priority !== priority;
          changed = p.usable || p.status !== status;
          p.priority = priority;
          p.status = status as ProviderConfig["status"];
          p.usable = nowUsable;
          return enabled;
        });
        if (!enabled) this.#failProvider(name, `provider ${name} was disabled`);
        else if (!nowUsable && changed) this.#failProvider(name, `provider ${name} is ${status}`);
        else if (!known) {
          this.requestRefresh(); // a new or re-enabled provider: fetch its full entry
          this.#prioritiesChanged();
        } else if (reordered) this.#prioritiesChanged();
        break;
      }
      case "provider.deleted":
        if (!name) return;
        this.#updateProvider(name, () => false);
        this.#failProvider(name, `provider ${name} was deleted`);
        break;
      case "settings.updated":
        this.#applySettings(d);
        break;
      case "providers.reordered": {
        const order = Array.isArray(d.order) ? d.order : [];
        for (const o of order) {
          const e = (o ?? {}) as Record<string, unknown>;
          if (typeof e.name === "string" && typeof e.priority === "number") {
            const pr = e.priority;
            this.#updateProvider(e.name, (p) => {
              p.priority = pr;
              return true;
            });
          }
        }
        this.#prioritiesChanged();
        break;
      }
      default:
        return;
    }
    if (type.startsWith("provider")) this.#standbysChanged();
  }
}

/** Why a subscription ended, and whether it had been established. */
class SubscriptionError extends Error {
  readonly connected: boolean;
  readonly unsupported: boolean;
  constructor(message: string, connected: boolean, unsupported: boolean) {
    super(message);
    this.connected = connected;
    this.unsupported = unsupported;
  }
}
