import { retryAfterOf } from "./errors.js";

/** The cap of every exponential backoff of the SDK. */
export const maxBackoffMs = 30_000;

/**
 * The delay before retry n (1 for the first retry): "full jitter", uniform in
 * (0, min(30 s, base·2^(n-1))], so that clients that failed together do not
 * retry together.
 */
export function backoff(baseMs: number, n: number, random: () => number = Math.random): number {
  const base = baseMs > 0 ? baseMs : 100;
  const ceil = Math.min(maxBackoffMs, base * 2 ** Math.min(Math.max(n - 1, 0), 30));
  return Math.floor(random() * ceil) + 1;
}

/**
 * The delay before retry n after err: the jittered backoff, or the server's
 * Retry-After when it asks for longer (with up to half of it again as jitter,
 * so that the clients it shed do not all come back at once).
 */
export function retryDelay(err: unknown, baseMs: number, n: number, random: () => number = Math.random): number {
  const d = backoff(baseMs, n, random);
  const ra = retryAfterOf(err);
  return ra > d ? ra + Math.floor(random() * (ra / 2 + 1)) : d;
}

/** An Error named AbortError: what an aborted operation rejects with. */
export function abortError(message = "aborted"): Error {
  const e = new Error(message);
  e.name = "AbortError";
  return e;
}

/** Rejects when signal has aborted. */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw abortError();
}

/**
 * Waits ms or until signal aborts, and resolves whether ms elapsed. The timer
 * and the listener are gone either way.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(t);
      resolve(false);
    };
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, Math.max(0, ms));
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** A signal that aborts with its parent, or after ms; dispose frees the timer and the listener. */
export interface Scope {
  signal: AbortSignal;
  /** Aborts the scope now (idempotent) and frees what it holds. */
  dispose(): void;
  /** Whether the scope's own timer (not its parent) ended it. */
  timedOut(): boolean;
}

/** A scope under parent that ends after ms (no timer when ms is Infinity). */
export function scope(parent: AbortSignal | undefined, ms = Infinity): Scope {
  const ac = new AbortController();
  let timedOut = false;
  let t: ReturnType<typeof setTimeout> | undefined;
  const onAbort = (): void => dispose();
  function dispose(): void {
    if (t !== undefined) clearTimeout(t);
    t = undefined;
    parent?.removeEventListener("abort", onAbort);
    if (!ac.signal.aborted) ac.abort();
  }
  if (parent?.aborted) {
    ac.abort();
  } else {
    parent?.addEventListener("abort", onAbort, { once: true });
    if (Number.isFinite(ms)) {
      t = setTimeout(() => {
        timedOut = true;
        dispose();
      }, Math.max(0, ms));
    }
  }
  return { signal: ac.signal, dispose, timedOut: () => timedOut };
}

/** Defaults of the retry budget: Envoy's budget_percent 20 % with a minimum of 3 concurrent retries. */
export const defaultBudgetRatio = 0.2;
const minBudgetRetries = 3;

/**
 * The retry budget a client shares among all its streams, after Envoy's
 * retry budgets: the retries in flight may be at most ratio × the operations
 * in flight (live streams and starts), and never fewer than 3. Without it an
 * outage of one provider turns into a retry storm on the backup.
 */
export class Budget {
  #ratio = defaultBudgetRatio;
  #active = 0;
  #retrying = 0;

  /** Applies the ratio served by the control plane; a value outside (0, 1] keeps the default. */
  setRatio(r: number): void {
    this.#ratio = r > 0 && r <= 1 ? r : defaultBudgetRatio;
  }

  /** Counts one operation in flight until the returned function is called (once). */
  begin(): () => void {
    this.#active++;
    return once(() => this.#active--);
  }

  /** Takes a retry from the budget; the returned function gives it back. Undefined when spent. */
  acquire(): (() => void) | undefined {
    const limit = Math.max(minBudgetRetries, Math.floor(this.#ratio * this.#active));
    if (this.#retrying >= limit) return undefined;
    this.#retrying++;
    return once(() => this.#retrying--);
  }

  /** The operations and retries in flight. */
  get inFlight(): { active: number; retrying: number } {
    return { active: this.#active, retrying: this.#retrying };
  }
}

/** The budget slot held by the retry in progress, if any: a retry counts from its backoff to its outcome. */
export class RetrySlot {
  #release: (() => void) | undefined;
  /** Frees the slot held and takes a new one; whether the budget had one to give. */
  take(b: Budget): boolean {
    this.free();
    this.#release = b.acquire();
    return this.#release !== undefined;
  }
  free(): void {
    this.#release?.();
    this.#release = undefined;
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      fn();
    }
  };
}
