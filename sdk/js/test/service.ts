// The TypeScript SDK's test service for the conformance kit (conformance/ in
// the repository; the protocol is in docs/sdk-protocol.md): an HTTP server on
// a loopback port, printed as "listening on URL", through which the kit's
// runner drives clients of this package with the FakeEngine.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  ApiError,
  Client,
  ClosedError,
  FakeEngine,
  MediaError,
  NoProviderError,
  type Assignment,
  type Connection,
  type MediaEngine,
  type MediaErrorKind,
  type Stream,
  type StreamState,
} from "../src/index.js";

/**
 * Holds the connects to the providers that hang until they are up again
 * (then they go on) or their signal aborts: a provider that answers no join,
 * for as long as the scenario says.
 */
class HangGate implements MediaEngine {
  readonly #engine: FakeEngine;
  readonly #hung = new Map<string, { promise: Promise<void>; release: () => void }>();

  constructor(engine: FakeEngine) {
    this.#engine = engine;
  }

  hang(provider: string, on: boolean): void {
    const h = this.#hung.get(provider);
    if (on && !h) {
      let release = (): void => undefined;
      const promise = new Promise<void>((resolve) => (release = resolve));
      this.#hung.set(provider, { promise, release });
    } else if (!on && h) {
      this.#hung.delete(provider);
      h.release();
    }
  }

  async connect(a: Assignment, report: (err: MediaError) => void, signal: AbortSignal): Promise<Connection> {
    const h = this.#hung.get(a.provider.name);
    if (h) {
      let onAbort = (): void => undefined;
      const aborted = new Promise<boolean>((resolve) => {
        onAbort = () => resolve(true);
        if (signal.aborted) resolve(true);
        else signal.addEventListener("abort", onAbort, { once: true });
      });
      const gaveUp = await Promise.race([h.promise.then(() => false), aborted]);
      signal.removeEventListener("abort", onAbort);
      if (gaveUp) throw new MediaError("connection_lost", `simulated connect to ${a.provider.name}: no answer`);
    }
    return this.#engine.connect(a, report, signal);
  }
}

interface TestClient {
  client: Client;
  engine: FakeEngine;
  gate: HangGate;
  logs: string[];
  streams: Map<string, { stream: Stream; states: StreamState[] }>;
  next: number;
}

const clients = new Map<string, TestClient>();
let nextClient = 0;

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

function fail(res: ServerResponse, status: number, type: string, message: string): void {
  send(res, status, { error: { type, message } });
}

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  let s = "";
  for await (const chunk of req) s += String(chunk);
  return s ? (JSON.parse(s) as Record<string, unknown>) : {};
}

function stateJSON(s: StreamState): Record<string, unknown> {
  return "error" in s ? { ...s, error: s.error.message } : { ...s };
}

function errorType(err: unknown): string {
  if (err instanceof ClosedError) return "ClosedError";
  if (err instanceof NoProviderError) return "NoProviderError";
  if (err instanceof ApiError) return "ApiError";
  return err instanceof Error ? err.name : "Error";
}

async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const parts = (req.url ?? "/").split("?")[0]!.split("/").filter(Boolean);
  const m = req.method ?? "GET";
  if (m === "GET" && parts.length === 0) return send(res, 200, { name: "switchboard-js", sdk: "@switchboardhq/client" });
  if (m === "POST" && parts.length === 1 && parts[0] === "clients") {
    const b = await body(req);
    const engine = new FakeEngine({ connectDelayMs: 5 });
    const gate = new HangGate(engine);
    const logs: string[] = [];
    const log = (msg: string): void => void logs.push(msg);
    try {
      const client = new Client({
        serverUrl: String(b.serverUrl),
        token: String(b.token),
        engines: { agora: gate, zegocloud: gate, livekit: gate, http: gate },
        logger: { debug: log, info: log, warn: log, error: log },
        failoverTimeoutMs: typeof b.failoverTimeoutMs === "number" ? b.failoverTimeoutMs : undefined,
        heartbeatMs: typeof b.heartbeatMs === "number" ? b.heartbeatMs : undefined,
        policy: (b.policy as { type?: string; rate?: number } | undefined)?.type === "migrateGradually"
          ? { type: "migrateGradually", rate: Number((b.policy as { rate?: number }).rate) }
          : undefined,
      });
      const id = "c" + ++nextClient;
      clients.set(id, { client, engine, gate, logs, streams: new Map(), next: 0 });
      return send(res, 201, { id });
    } catch (err) {
      return fail(res, 400, "BadRequest", String(err));
    }
  }
  const c = parts[0] === "clients" && parts[1] ? clients.get(parts[1]) : undefined;
  if (!c) return fail(res, 404, "NotFound", "no such client");
  const rest = parts.slice(2);
  if (rest.length === 0 && m === "GET") {
    const cfg = c.client.config;
    return send(res, 200, {
      eventsConnected: c.client.eventsConnected,
      logs: c.logs,
      config: cfg ? { maxRetries: cfg.maxRetries, maxFailures: cfg.maxFailures, providers: cfg.providers.map((p) => ({ name: p.name, priority: p.priority, status: p.status })) } : null,
    });
  }
  if (rest.length === 0 && m === "DELETE") {
    clients.delete(parts[1]!);
    try {
      await c.client.close();
      return send(res, 200, {});
    } catch (err) {
      return send(res, 200, { error: String(err) });
    }
  }
  if (rest.length === 1 && rest[0] === "streams" && m === "POST") {
    const b = await body(req);
    const states: StreamState[] = [];
    try {
      const stream = await c.client.start({
        room: String(b.room),
        userId: String(b.userId),
        role: b.role === "subscriber" ? "subscriber" : "publisher",
        onState: (s) => void states.push(s),
      });
      const id = "s" + ++c.next;
      c.streams.set(id, { stream, states });
      return send(res, 201, { id, streamId: stream.id, provider: stream.provider });
    } catch (err) {
      return fail(res, 422, errorType(err), err instanceof Error ? err.message : String(err));
    }
  }
  if (rest.length === 1 && rest[0] === "faults" && m === "POST") {
    const b = await body(req);
    const provider = String(b.provider);
    const kind = String(b.kind);
    if (kind === "down" || kind === "up") {
      c.engine.down(provider, kind === "down");
      if (kind === "up") c.gate.hang(provider, false);
      return send(res, 200, { affected: 0 });
    }
    if (kind === "hang") {
      c.gate.hang(provider, true);
      return send(res, 200, { affected: c.engine.stall(provider) });
    }
    if (kind === "connection_lost" || kind === "token_rejected" || kind === "media_stalled") {
      return send(res, 200, { affected: c.engine.fail(provider, kind as MediaErrorKind) });
    }
    return fail(res, 400, "BadRequest", "kind: unknown fault " + JSON.stringify(kind));
  }
  const s = rest[0] === "streams" && rest[1] ? c.streams.get(rest[1]) : undefined;
  if (!s) return fail(res, 404, "NotFound", "no such stream");
  if (rest.length === 2 && m === "GET") {
    return send(res, 200, { streamId: s.stream.id, provider: s.stream.provider, ended: s.stream.ended, states: s.states.map(stateJSON) });
  }
  if (rest.length === 3 && rest[2] === "end" && m === "POST") {
    try {
      await s.stream.end();
      return send(res, 200, {});
    } catch (err) {
      return send(res, 200, { error: String(err) });
    }
  }
  return fail(res, 404, "NotFound", "no such route");
}

const server = createServer((req, res) => {
  route(req, res).catch((err: unknown) => fail(res, 500, "ServiceError", String(err)));
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    void Promise.allSettled([...clients.values()].map((c) => c.client.close())).then(() => process.exit(0));
  });
}
