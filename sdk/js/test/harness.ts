// A real Switchboard control plane for the package's tests: the Go binary
// built from this repository, run as `switchboard serve` on a loopback port
// with a SQLite file in a temporary directory, and a loopback health endpoint
// for its providers of kind http that the tests turn healthy or failing.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Logger, Stream, StreamState } from "../src/index.js";

/** The repository root: sdk/js/build/test → four levels up. */
export const repoRoot = resolve(fileURLToPath(import.meta.url), "../../../../..");

export const bootstrapToken = "sbt_js-sdk-test-bootstrap-5d1c07";

/** Builds the switchboard binary into dir and returns its path. */
export async function buildSwitchboard(dir: string): Promise<string> {
  const bin = join(dir, "switchboard");
  await promisify(execFile)("go", ["build", "-o", bin, "./cmd/switchboard"], { cwd: repoRoot, maxBuffer: 16 << 20 });
  return bin;
}

/** A running `switchboard serve`. */
export class ControlPlane {
  url = "";
  private proc: ChildProcess | undefined;
  stderr = "";
  constructor(
    readonly bin: string,
    readonly dir: string,
  ) {}

  /** Starts the server (again), on addr (default: a free loopback port), and waits until it listens. */
  async start(addr = "127.0.0.1:0"): Promise<void> {
    const proc = spawn(this.bin, ["serve", "--addr", addr, "--db", "sqlite:" + join(this.dir, "switchboard.db"), "--public-rate-limit", "0", "--log-level", "debug"], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? this.dir, SWITCHBOARD_BOOTSTRAP_TOKEN: bootstrapToken, SWITCHBOARD_ADMIN_PASSWORD: "js-sdk-test-admin-password" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = proc;
    proc.stderr?.setEncoding("utf8").on("data", (s: string) => {
      this.stderr += s;
    });
    this.url = await new Promise<string>((res, rej) => {
      let out = "";
      const onExit = (code: number | null): void => rej(new Error(`switchboard serve exited (${code}): ${this.stderr}`));
      proc.once("exit", onExit);
      proc.stdout?.setEncoding("utf8").on("data", (s: string) => {
        out += s;
        const m = /switchboard listening on (http:\/\/\S+)/.exec(out);
        if (m?.[1]) {
          proc.off("exit", onExit);
          res(m[1]);
        }
      });
    });
  }

  /** Kills the server (SIGKILL) and waits for it to be gone. */
  async kill(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((res) => p.once("exit", res));
    p.kill("SIGKILL");
    await gone;
  }

  /** The host:port the server listens on. */
  get addr(): string {
    return new URL(this.url).host;
  }

  /** An API call with the bootstrap (superadmin) token; rejects on an error answer. */
  async api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(this.url + path, {
      method,
      headers: { Authorization: "Bearer " + bootstrapToken, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Creates a client-role API token and returns it. */
  async clientToken(): Promise<string> {
    const t = await this.api<{ token: string }>("POST", "/api/auth/tokens", { name: "js-sdk-test", role: "client" });
    return t.token;
  }

  /** Adds a provider of kind http whose probe reads health.url(name); one failure makes it CRITICAL, one success brings it back. */
  async addProvider(name: string, priority: number, health: HealthEndpoint): Promise<void> {
    await this.api("POST", "/api/streaming/providers", {
      name,
      kind: "http",
      priority,
      config: { url: health.url(name) },
      healthCheck: { interval: "1h", timeout: "2s", failureThreshold: 1, successThreshold: 1 },
    });
  }

  /**
   * Adds a provider of kind livekit whose probe reads health.liveKitUrl(name):
   * the server mints join tokens for it, so its streams get standbys.
   */
  async addLiveKit(name: string, priority: number, health: HealthEndpoint): Promise<void> {
    await this.api("POST", "/api/streaming/providers", {
      name,
      kind: "livekit",
      priority,
      config: { url: health.liveKitUrl(name) },
      credentials: { apiKey: "APItest" + name.replace(/[^a-z0-9]/g, ""), apiSecret: "js-sdk-test-secret-0123456789abcdefghijklmnop" },
      healthCheck: { interval: "1h", timeout: "2s", failureThreshold: 1, successThreshold: 1 },
    });
  }

  /** Runs a probe of the provider now; resolves with its status. */
  async check(name: string): Promise<string> {
    const r = await this.api<{ status: string }>("POST", `/api/streaming/providers/${name}/health-check`);
    return r.status;
  }

  /** A stream as the admin API describes it, with its trail. */
  async stream(id: string): Promise<{ provider: string; status: string; trail?: Array<{ kind: string; provider?: string; stage?: string; from?: string; at?: string; reportedAt?: string }> }> {
    return this.api("GET", "/api/streams/" + id);
  }
}

/** A loopback health endpoint: GET /health/<name> answers 200, or 503 once the provider is failed. */
export class HealthEndpoint {
  private server: Server | undefined;
  private readonly failing = new Set<string>();
  private base = "";

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      // /lk/<name>/...: the two calls of the LiveKit probe (GET /, then RoomService ListRooms).
      const lk = /^\/lk\/([^/]+)\/(twirp\/livekit\.RoomService\/ListRooms)?$/.exec(req.url ?? "");
      if (lk?.[1]) {
        const down = this.failing.has(decodeURIComponent(lk[1]));
        res.writeHead(down ? 503 : 200, { "Content-Type": lk[2] ? "application/json" : "text/plain", Connection: "close" });
        res.end(down ? "down" : lk[2] ? '{"rooms":[]}' : "OK");
        req.resume();
        return;
      }
      const name = decodeURIComponent((req.url ?? "").replace(/^\/health\//, ""));
      res.writeHead(this.failing.has(name) ? 503 : 200, { "Content-Type": "text/plain", Connection: "close" });
      res.end(this.failing.has(name) ? "down" : "ok");
    });
    await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
    this.server = server;
    this.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  url(name: string): string {
    return `${this.base}/health/${encodeURIComponent(name)}`;
  }

  /** The URL of a fake LiveKit node for provider name. */
  liveKitUrl(name: string): string {
    return `${this.base}/lk/${encodeURIComponent(name)}`;
  }

  fail(name: string, failing = true): void {
    if (failing) this.failing.add(name);
    else this.failing.delete(name);
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise((res) => s.close(res));
  }
}

/** A temporary directory, removed by the returned function. */
export function tempDir(): [string, () => void] {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-js-"));
  return [dir, () => rmSync(dir, { recursive: true, force: true })];
}

/** A logger that keeps every line and lets tests wait for one. */
export class LogCapture implements Logger {
  readonly lines: Array<{ level: string; message: string; fields: Record<string, unknown> | undefined }> = [];
  private waiters: Array<{ pred: (m: string) => boolean; res: () => void }> = [];
  private add(level: string, message: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level, message, fields });
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(message)) return true;
      w.res();
      return false;
    });
  }
  debug(m: string, f?: Record<string, unknown>): void {
    this.add("debug", m, f);
  }
  info(m: string, f?: Record<string, unknown>): void {
    this.add("info", m, f);
  }
  warn(m: string, f?: Record<string, unknown>): void {
    this.add("warn", m, f);
  }
  error(m: string, f?: Record<string, unknown>): void {
    this.add("error", m, f);
  }
  messages(): string[] {
    return this.lines.map((l) => l.message);
  }
  /** Resolves once a line whose message satisfies pred was logged (now or later). */
  waitFor(pred: (m: string) => boolean, what: string, limitMs = 20_000): Promise<void> {
    if (this.lines.some((l) => pred(l.message))) return Promise.resolve();
    return withLimit(new Promise<void>((res) => this.waiters.push({ pred, res })), limitMs, "log line: " + what);
  }
}

/**
 * Resolves with the first state of s (already seen, or to come) that
 * satisfies pred. limitMs only ends a test that would otherwise hang: it is
 * no assertion on speed.
 */
export function waitState(s: Stream, pred: (st: StreamState) => boolean, what: string, limitMs = 20_000): Promise<StreamState> {
  const seen = s.history.find(pred);
  if (seen) return Promise.resolve(seen);
  let off = (): void => undefined;
  const p = new Promise<StreamState>((res) => {
    off = s.on("state", (st) => {
      if (pred(st)) res(st);
    });
  });
  return withLimit(p, limitMs, "state: " + what).finally(() => off());
}

/** Resolves once cond() holds, checking after each turn of the event loop's timers. */
export async function eventually(cond: () => boolean | Promise<boolean>, what: string, limitMs = 20_000): Promise<void> {
  const until = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error("gave up waiting for " + what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function withLimit<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, rej) => {
    t = setTimeout(() => rej(new Error("gave up waiting for " + what)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(t));
}

/**
 * A loopback HTTP proxy in front of the control plane that can block the
 * event stream (answering 503) while everything else goes through, and hold
 * requests at its door (gate: what it returns is awaited before the request
 * goes on).
 */
export class Proxy {
  url = "";
  blockEvents = false;
  gate: ((method: string, url: string) => Promise<void> | undefined) | undefined;
  private server: Server | undefined;
  constructor(readonly target: () => string) {}

  async start(): Promise<void> {
    const server = createServer(async (req, res) => {
      const held = this.gate?.(req.method ?? "", req.url ?? "");
      if (held) await held;
      if (this.blockEvents && (req.url ?? "").startsWith("/api/events")) {
        res.writeHead(503, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ error: { code: "unavailable", message: "event stream blocked by the test", field: "" } }));
        return;
      }
      const t = new URL(this.target());
      const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on("error", () => res.destroy());
      res.on("close", () => up.destroy());
      req.pipe(up);
    });
    await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise((res) => s.close(res));
  }
}
