import { parseConfig, parseProvider, str, type Config } from "./config.js";
import { ApiError, messageOf, NetworkError } from "./errors.js";
import { abortError, scope, throwIfAborted } from "./retry.js";
import type { QualityBody } from "./quality.js";
import type { Assignment, Role } from "./types.js";

/** The fetch function the client uses: the global one, or the app's (ClientOptions.fetch). */
export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

/** What the control plane gave a stream: its assignment, the providers to try next and a standby. */
export interface Grant {
  a: Assignment;
  fallbacks: string[];
  standby: Assignment | undefined;
}

export interface StartBody {
  room: string;
  userId: string;
  role: Role;
  region?: string;
  quality?: string;
  exclude?: string[];
  idempotencyKey: string;
}

export interface MigrateBody {
  to?: string;
  reason: string;
  /** A move made already (to a standby), as RFC 3339. */
  movedAt?: string;
  exclude?: string[];
}

export interface FailureBody {
  provider: string;
  stage: "connect" | "auth" | "media" | "timeout";
  code?: string;
  message?: string;
}

/** The part of a heartbeat answer the SDK uses. */
export interface HeartbeatAnswer {
  provider: string;
  standby: unknown;
}

/**
 * The HTTP client of the control plane's API: JSON bodies, the bearer token
 * in the Authorization header only, error answers as ApiError. Its errors
 * never hold the token nor the server's URL: they name the method and path.
 */
export class Api {
  readonly base: string;
  readonly #token: string;
  readonly #fetchFn: FetchFn;
  readonly #timeoutMs: number;
  /**
   * Names this SDK instance to the server with a random value: every
   * instance of an app shares its client token, and this makes the streams
   * it starts its own, and their events come to it alone.
   */
  readonly #instance = randomHex(16);

  constructor(base: string, token: string, fetchFn: FetchFn, timeoutMs: number) {
    this.base = base;
    this.#token = token;
    this.#fetchFn = fetchFn;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Sends a request and returns the answer, whatever its status. A network
   * error, or no answer within the request timeout, is a NetworkError; the
   * abort of signal rejects with an AbortError. The timeout covers the
   * headers; the body is read until signal aborts.
   */
  async open(method: string, path: string, signal: AbortSignal, opts: { body?: unknown; headers?: Record<string, string>; stream?: boolean } = {}): Promise<Response> {
    throwIfAborted(signal);
    const headers: Record<string, string> = { Authorization: "Bearer " + this.#token, "X-Switchboard-Instance": this.#instance, Accept: "application/json", ...opts.headers };
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    // The request, and the reading of its body, end when signal aborts (the
    // callers pass a signal of their own per request, which they abort once
    // done); the timer bounds the wait for the headers.
    const ac = new AbortController();
    signal.addEventListener("abort", () => ac.abort(), { once: true });
    let timedOut = false;
    const t = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, this.#timeoutMs);
    try {
      return await this.#fetchFn(this.base + path, { method, headers, body, signal: ac.signal });
    } catch (err) {
      if (signal.aborted) throw abortError();
      if (timedOut) throw new NetworkError(`${method} ${path}: no answer within ${this.#timeoutMs} ms`);
      throw new NetworkError(`${method} ${path}: ${redact(messageOf(err), this.#token)}`, { cause: err });
    } finally {
      clearTimeout(t);
    }
  }

  /** Makes one API request and decodes its JSON answer (undefined for an empty one). */
  async call(method: string, path: string, signal: AbortSignal, body?: unknown): Promise<unknown> {
    const sc = scope(signal, this.#timeoutMs);
    try {
      const res = await this.open(method, path, sc.signal, { body });
      return await this.decode(method, path, res);
    } catch (err) {
      if (sc.timedOut() && !signal.aborted) throw new NetworkError(`${method} ${path}: no answer within ${this.#timeoutMs} ms`);
      throw err;
    } finally {
      sc.dispose();
    }
  }

  /** Reads an answer: its JSON on 2xx, an ApiError otherwise. */
  async decode(method: string, path: string, res: Response): Promise<unknown> {
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new NetworkError(`${method} ${path}: reading the answer: ${messageOf(err)}`, { cause: err });
    }
    if (res.status >= 200 && res.status < 300) {
      if (text === "") return undefined;
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new NetworkError(`${method} ${path}: answer is not JSON`);
      }
    }
    let code = "";
    let message = res.statusText || "error";
    let field = "";
    try {
      const env = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown; field?: unknown } }).error;
      if (env) {
        code = str(env.code);
        message = typeof env.message === "string" ? env.message : message;
        field = str(env.field);
      }
    } catch {
      // not an envelope: keep the status text
    }
    throw new ApiError(method, path, res.status, code, redact(message, this.#token), field, retryAfter(res.headers.get("Retry-After")));
  }

  /** Fetches the configuration, sending the ETag of the one held; undefined on 304. */
  async config(etag: string, signal: AbortSignal): Promise<{ cfg: Config; etag: string } | undefined> {
    const path = "/api/streaming/config";
    const sc = scope(signal, this.#timeoutMs);
    try {
      const res = await this.open("GET", path, sc.signal, { headers: etag ? { "If-None-Match": etag } : {} });
      if (res.status === 304) {
        await res.text().catch(() => "");
        return undefined;
      }
      const body = await this.decode("GET", path, res);
      return { cfg: parseConfig(body, Date.now()), etag: res.headers.get("ETag") ?? "" };
    } catch (err) {
      if (sc.timedOut() && !signal.aborted) throw new NetworkError(`GET ${path}: no answer within ${this.#timeoutMs} ms`);
      throw err;
    } finally {
      sc.dispose();
    }
  }

  async start(b: StartBody, signal: AbortSignal): Promise<Grant> {
    return grantOf(await this.call("POST", "/api/streams", signal, b));
  }

  async migrate(id: string, b: MigrateBody, signal: AbortSignal): Promise<Grant> {
    return grantOf(await this.call("POST", streamPath(id, "migrate"), signal, b));
  }

  async heartbeat(id: string, exclude: string[], signal: AbortSignal): Promise<HeartbeatAnswer> {
    const o = (await this.call("POST", streamPath(id, "heartbeat"), signal, exclude.length ? { exclude } : {})) as Record<string, unknown> | undefined;
    return { provider: str(o?.provider), standby: o?.standby };
  }

  async failure(id: string, f: FailureBody, signal: AbortSignal): Promise<void> {
    if (f.message && f.message.length > 1024) f.message = f.message.slice(0, 1024);
    await this.call("POST", streamPath(id, "failures"), signal, f);
  }

  async quality(id: string, b: QualityBody, signal: AbortSignal): Promise<void> {
    await this.call("POST", streamPath(id, "quality"), signal, b);
  }

  async end(id: string, signal: AbortSignal): Promise<void> {
    await this.call("POST", streamPath(id, "end"), signal);
  }

  /** The public health of a provider. */
  async health(name: string, signal: AbortSignal): Promise<{ status: string; usable?: boolean }> {
    const o = (await this.call("GET", "/api/streaming/providers/" + encodeURIComponent(name) + "/health", signal)) as Record<string, unknown> | undefined;
    const h: { status: string; usable?: boolean } = { status: typeof o?.status === "string" ? o.status : "UNKNOWN" };
    if (typeof o?.usable === "boolean") h.usable = o.usable;
    return h;
  }
}

function streamPath(id: string, action: string): string {
  return "/api/streams/" + encodeURIComponent(id) + "/" + action;
}

/** A Retry-After header (seconds, or an HTTP date) in milliseconds, or 0. */
export function retryAfter(v: string | null): number {
  if (!v) return 0;
  if (/^[0-9]+$/.test(v.trim())) return Math.min(Number(v.trim()), 3600) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? 0 : Math.max(0, Math.min(t - Date.now(), 3_600_000));
}

function redact(s: string, secret: string): string {
  return secret && s.includes(secret) ? s.split(secret).join("[REDACTED]") : s;
}

/** A token on a provider, from a start, migrate or heartbeat answer, as an assignment of the stream a. */
export function tokenOn(w: unknown, a: Omit<Assignment, "provider" | "token" | "tokenExpiresAt">): Assignment | undefined {
  if (w === null || typeof w !== "object") return undefined;
  const o = w as Record<string, unknown>;
  const provider = parseProvider(o.provider);
  if (!provider.name) return undefined;
  const exp = typeof o.tokenExpiresAt === "string" ? Date.parse(o.tokenExpiresAt) : NaN;
  return { ...a, provider, token: str(o.token), tokenExpiresAt: Number.isNaN(exp) ? 0 : exp };
}

/** The grant of a start or migrate answer. */
export function grantOf(v: unknown): Grant {
  const o = (v ?? {}) as Record<string, unknown>;
  const base = {
    streamId: str(o.id),
    room: str(o.room),
    userId: str(o.userId),
    role: (o.role === "subscriber" ? "subscriber" : "publisher") as Role,
  };
  const a = tokenOn(o, base);
  if (!a || !base.streamId) throw new NetworkError("assignment answer without a stream id or provider");
  const sb = tokenOn(o.standby, base);
  return {
    a,
    fallbacks: Array.isArray(o.fallbacks) ? o.fallbacks.filter((x): x is string => typeof x === "string") : [],
    standby: sb && sb.token !== "" ? sb : undefined,
  };
}

/** Returns n random bytes in hex, from the platform's secure generator when it has one. */
export function randomHex(n: number): string {
  const b = new Uint8Array(n);
  const c = (globalThis as { crypto?: { getRandomValues?(a: Uint8Array): Uint8Array } }).crypto;
  if (c?.getRandomValues) c.getRandomValues(b);
  else for (let i = 0; i < n; i++) b[i] = Math.floor(Math.random() * 256);
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}
