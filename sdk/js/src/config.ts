import { defaultBudgetRatio } from "./retry.js";
import type { Kind, Provider, Status } from "./types.js";

/** A provider as the configuration lists it. */
export interface ProviderConfig extends Provider {
  /** Whether streams may be on it (the server's verdict when it sends one). */
  usable: boolean;
  regions: string[];
}

/**
 * The client configuration the control plane serves at GET
 * /api/streaming/config. The client keeps the last one it fetched and works
 * from it while the control plane cannot be reached.
 */
export interface Config {
  /** The enabled providers, by priority. */
  providers: ProviderConfig[];
  /** The number of start attempts, across providers. */
  maxRetries: number;
  /** Consecutive unusable health answers, while events are down, after which streams leave a provider. */
  maxFailures: number;
  /** The polling interval while the event stream is down, in milliseconds. */
  healthCheckIntervalMs: number;
  /** The base of the jittered exponential backoff, in milliseconds. */
  retryBackoffMs: number;
  /** The share of operations in flight that may be retries. */
  retryBudget: number;
  /** When it was last fetched or confirmed, in milliseconds since the epoch. */
  fetchedAt: number;
}

const usableStatuses: ReadonlySet<string> = new Set(["EXCELLENT", "HEALTHY", "WARNING"]);

/**
 * Whether streams may be on a provider with this status: EXCELLENT, HEALTHY
 * and WARNING are usable; CRITICAL, DISABLED and UNKNOWN are not.
 */
export function usableStatus(s: string): boolean {
  return usableStatuses.has(s);
}

/** The server's `usable` verdict when it sends one, else the status rule. */
export function usableOf(p: { usable?: unknown; status?: unknown }): boolean {
  return typeof p.usable === "boolean" ? p.usable : usableStatus(String(p.status));
}

const units: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a Go duration string such as "30s", "1m30s", "1.5s" or "100ms" (the
 * control plane's format) into milliseconds; NaN when it is not one.
 */
export function parseDuration(s: unknown): number {
  if (typeof s === "number") return s;
  if (typeof s !== "string" || s === "") return NaN;
  if (s === "0") return 0;
  const re = /([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h|d)/y;
  let total = 0;
  let i = 0;
  while (i < s.length) {
    re.lastIndex = i;
    const m = re.exec(s);
    if (!m || m[1] === undefined || m[2] === undefined) return NaN;
    total += Number(m[1]) * (units[m[2]] ?? NaN);
    i = re.lastIndex;
  }
  return total;
}

function obj(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** v when it is a string, else "". */
export function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function num(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}

/** A provider of a configuration or an assignment, from its JSON. */
export function parseProvider(v: unknown): Provider {
  const o = obj(v);
  const p: Provider = { name: str(o.name), kind: str(o.kind) as Kind, priority: num(o.priority), status: (str(o.status) || "UNKNOWN") as Status };
  if (typeof o.appId === "string") p.appId = o.appId;
  if (typeof o.url === "string") p.url = o.url;
  return p;
}

/** The settings of a configuration or of a settings.updated event, with the original app's defaults. */
export function parseSettings(v: unknown): Omit<Config, "providers" | "fetchedAt"> {
  const o = obj(v);
  const positive = (x: number, d: number): number => (Number.isFinite(x) && x > 0 ? x : d);
  const budget = num(o.retryBudget);
  return {
    maxRetries: Math.floor(positive(num(o.maxRetries), 3)),
    maxFailures: Math.floor(positive(num(o.maxFailures), 3)),
    healthCheckIntervalMs: positive(parseDuration(o.healthCheckInterval), 30_000),
    retryBackoffMs: positive(parseDuration(o.retryBackoff), 100),
    retryBudget: budget > 0 && budget <= 1 ? budget : defaultBudgetRatio,
  };
}

/** The configuration the JSON of GET /api/streaming/config describes, fetched at now. */
export function parseConfig(v: unknown, now: number): Config {
  const o = obj(v);
  const list = Array.isArray(o.providers) ? o.providers : [];
  const providers = list
    .map((x): ProviderConfig => {
      const p = obj(x);
      return {
        ...parseProvider(p),
        usable: usableOf(p),
        regions: Array.isArray(p.regions) ? p.regions.filter((r): r is string => typeof r === "string") : [],
      };
    })
    .filter((p) => p.name !== "");
  return { providers, ...parseSettings(o), fetchedAt: now };
}

/** Sorts providers by priority, then name. */
export function byPriority(a: Provider, b: Provider): number {
  return a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** A comparable summary of the order of providers. */
export function priorities(c: Config): string {
  return c.providers.map((p) => `${p.name}=${p.priority};`).join("");
}
