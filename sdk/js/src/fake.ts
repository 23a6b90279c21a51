import { sleep } from "./retry.js";
import { MediaError, type Assignment, type Connection, type MediaEngine, type MediaErrorKind, type QualitySample } from "./types.js";

/**
 * A connection of the FakeEngine. Media "flows" on it until its provider
 * fails, stalls or it is disconnected.
 */
export class FakeConnection implements Connection {
  readonly assignment: Assignment;
  readonly #engine: FakeEngine;
  readonly #report: (err: MediaError) => void;
  #last: number | undefined;
  #stalled = false;
  /** Whether disconnect was called. */
  disconnected = false;

  constructor(engine: FakeEngine, a: Assignment, report: (err: MediaError) => void) {
    this.#engine = engine;
    this.assignment = a;
    this.#report = report;
    this.#last = Date.now();
  }

  async disconnect(): Promise<void> {
    this.disconnected = true;
    this.#engine.forget(this);
  }

  lastMedia(): number | undefined {
    if (!this.#stalled && !this.disconnected) this.#last = Date.now();
    return this.#last;
  }

  quality(): QualitySample {
    const q = this.#engine.qualityOf(this.assignment.provider.name);
    return { at: Date.now(), ...q };
  }

  /** @internal */
  fail(kind: MediaErrorKind, message: string): void {
    this.#stalled = true;
    this.#report(new MediaError(kind, message));
  }

  /** @internal */
  stall(): void {
    this.lastMedia();
    this.#stalled = true;
  }
}

/**
 * A simulated media engine for every provider kind, for the tests of apps
 * that embed the SDK: connects succeed after connectDelayMs unless their
 * provider is marked down or rejects tokens, and a provider can be made to
 * fail the way real ones do: drop every connection (fail), or stop carrying
 * media without a word (stall).
 */
export class FakeEngine implements MediaEngine {
  readonly #delayMs: number;
  readonly #conns = new Map<string, Set<FakeConnection>>();
  readonly #downs = new Set<string>();
  readonly #rejects = new Set<string>();
  readonly #quality = new Map<string, Omit<QualitySample, "at">>();
  /** How many connects were asked for. */
  connects = 0;

  constructor(opts: { connectDelayMs?: number } = {}) {
    this.#delayMs = opts.connectDelayMs ?? 0;
  }

  async connect(a: Assignment, report: (err: MediaError) => void, signal: AbortSignal): Promise<Connection> {
    this.connects++;
    const name = a.provider.name;
    if (!(await sleep(this.#delayMs, signal))) throw new MediaError("connection_lost", `simulated connect to ${name}: aborted`);
    if (this.#downs.has(name)) throw new MediaError("connection_lost", `simulated provider ${name} is down`);
    if (this.#rejects.has(name)) throw new MediaError("token_rejected", `simulated provider ${name} rejected the token`);
    const c = new FakeConnection(this, a, report);
    let set = this.#conns.get(name);
    if (!set) this.#conns.set(name, (set = new Set()));
    set.add(c);
    return c;
  }

  /**
   * A media error on every connection to provider: each reports kind at once
   * and carries no more media. It returns how many connections failed.
   * Connects are not affected: combine it with down for that.
   */
  fail(provider: string, kind: MediaErrorKind = "connection_lost"): number {
    const set = this.#conns.get(provider);
    if (!set) return 0;
    const all = [...set];
    this.#conns.delete(provider);
    for (const c of all) c.fail(kind, `simulated ${kind} on ${provider}`);
    return all.length;
  }

  /** Makes every connection to provider stop carrying media without reporting anything; only a watchdog notices. */
  stall(provider: string): number {
    const set = this.#conns.get(provider) ?? new Set();
    for (const c of set) c.stall();
    return set.size;
  }

  /** The synthetic quality every connection reports unless setQuality says otherwise: good audio and video. */
  static readonly defaultQuality: Readonly<Omit<QualitySample, "at">> = { rttMs: 20, packetLoss: 0, jitterMs: 2, bitrateKbps: 1500, frameRate: 30, freezes: 0, freezeMs: 0 };

  /** Sets the synthetic quality the connections to provider report from now on (undefined: the default). */
  setQuality(provider: string, q: Omit<QualitySample, "at"> | undefined): void {
    if (q) this.#quality.set(provider, { ...q });
    else this.#quality.delete(provider);
  }

  /** @internal */
  qualityOf(provider: string): Omit<QualitySample, "at"> {
    return { ...(this.#quality.get(provider) ?? FakeEngine.defaultQuality) };
  }

  /** Marks provider down (connects fail with connection_lost) or up again. */
  down(provider: string, down = true): void {
    if (down) this.#downs.add(provider);
    else this.#downs.delete(provider);
  }

  /** Makes connects to provider fail with token_rejected, or not. */
  rejectTokens(provider: string, reject = true): void {
    if (reject) this.#rejects.add(provider);
    else this.#rejects.delete(provider);
  }

  /** The live connections to provider. */
  connections(provider: string): FakeConnection[] {
    return [...(this.#conns.get(provider) ?? [])];
  }

  /** @internal */
  forget(c: FakeConnection): void {
    this.#conns.get(c.assignment.provider.name)?.delete(c);
  }
}
