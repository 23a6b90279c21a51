/**
 * The Switchboard client SDK: starts streams on the provider the control
 * plane assigns, retries and fails over to the next provider by priority,
 * watches provider health (pushed events first, polling as a fallback) and
 * migrates live streams with a make-before-break switch. The protocol it
 * follows is docs/protocol.md of the Switchboard repository.
 *
 * @packageDocumentation
 */
export { Client, type ClientOptions, type StartOptions } from "./client.js";
export { Stream, type StateListener } from "./stream.js";
export { FakeEngine, FakeConnection } from "./fake.js";
export { ApiError, ClosedError, FailoverError, NetworkError, NoProviderError, RetryBudgetError } from "./errors.js";
export { usableStatus, type Config, type ProviderConfig } from "./config.js";
export {
  MediaError,
  type Assignment,
  type Connection,
  type Kind,
  type Logger,
  type MediaEngine,
  type MediaErrorKind,
  type Policy,
  type Provider,
  type QualitySample,
  type Quality,
  type Role,
  type Status,
  type StreamState,
} from "./types.js";
