/**
 * An error answer of the control plane: its HTTP status, the fields of its
 * error envelope {"error":{"code","message","field"}} and the Retry-After it
 * asked for. Its message never holds the token the client authenticates with.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string;
  /** How long the server asked to wait before trying again, in milliseconds, or 0. */
  readonly retryAfterMs: number;
  constructor(method: string, path: string, status: number, code: string, message: string, field = "", retryAfterMs = 0) {
    super(`${method} ${path}: ${status}${code ? " " + code : ""}: ${message}${field ? ` (field ${field})` : ""}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The control plane could not be reached, or did not answer in time. */
export class NetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NetworkError";
  }
}

/** start rejects with it when no provider took the stream: every attempt failed. */
export class NoProviderError extends Error {
  /** The attempts made. */
  readonly attempts: number;
  constructor(message: string, attempts: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NoProviderError";
    this.attempts = attempts;
  }
}

/** An attempt was not made: too many retries were already in flight for the client's streams. */
export class RetryBudgetError extends Error {
  constructor(options?: { cause?: unknown }) {
    super("retry budget exhausted", options);
    this.name = "RetryBudgetError";
  }
}

/** The client was closed. */
export class ClosedError extends Error {
  constructor() {
    super("client closed");
    this.name = "ClosedError";
  }
}

/** A live stream could not be kept: no provider took it within the failover timeout. */
export class FailoverError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FailoverError";
  }
}

/** Whether a failed call may succeed if made again: network errors, rate limits and unavailability do. */
export function retryable(err: unknown): boolean {
  if (err instanceof ApiError) return err.status === 429 || err.status >= 500;
  return !isAbort(err);
}

/** Whether err says the control plane could not be reached or did not answer, rather than refused. */
export function unreachable(err: unknown): boolean {
  if (err instanceof ApiError) return err.status >= 500;
  return err != null;
}

/** Whether err is an ApiError with one of the statuses. */
export function isStatus(err: unknown, ...statuses: number[]): boolean {
  return err instanceof ApiError && statuses.includes(err.status);
}

/** The Retry-After of err in milliseconds, or 0. */
export function retryAfterOf(err: unknown): number {
  return err instanceof ApiError ? err.retryAfterMs : 0;
}

/** Whether err is the abort of an operation (its signal ended). */
export function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === "AbortError";
}

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** err as an Error. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
