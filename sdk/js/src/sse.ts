/**
 * One event of a text/event-stream.
 */
export interface SSEEvent {
  /** The last event ID when the event was dispatched. */
  id: string;
  /** The event field; "" for the default type, "message". */
  type: string;
  /** The data lines, joined with "\n". */
  data: string;
}

/** The longest reconnection delay a stream can ask for, in milliseconds. */
export const maxRetryDelayMs = 3_600_000;

/** Thrown when a line or an event's data exceeds the parser's bound. */
export class SSETooLongError extends Error {
  constructor() {
    super("event stream line or event too long");
    this.name = "SSETooLongError";
  }
}

/**
 * Reads events from the text of a text/event-stream body, following the
 * WHATWG HTML standard's rules ("Server-sent events", "Interpreting an event
 * stream"), as the Go SDK's parser does:
 *
 * - One leading byte order mark (U+FEFF) is ignored.
 * - A line ends at CRLF, LF or CR, and a CRLF split across chunks is one line
 *   end. Waiting for the character after a CR never delays an event.
 * - An empty line dispatches the event being built. A line that starts with
 *   ":" is a comment, ignored (the server's heartbeats are comments).
 * - Any other line is a field: the name is what comes before the first ":",
 *   the value what comes after it, less one leading space; a line without ":"
 *   is a field with an empty value. Unknown fields are ignored.
 * - "event" sets the event type. "data" appends its value and a "\n" to the
 *   data buffer. "id" sets the last event ID, unless the value holds a NUL;
 *   the last event ID persists from event to event until another "id" changes
 *   it, and an empty "id" resets it. "retry" sets the reconnection delay in
 *   milliseconds when its value is ASCII digits only, and is ignored otherwise.
 * - Dispatching first adopts the last event ID (lastEventId reports it, even
 *   when no event follows). Then, when the data buffer is empty, the event
 *   type is reset and nothing is dispatched; otherwise the final "\n" of the
 *   data is removed and the event is returned.
 * - At the end of the body, an event not yet dispatched by an empty line is
 *   discarded (end() drops it).
 *
 * Feed it decoded text with push(); decode the body with a TextDecoder that
 * keeps the byte order mark (`ignoreBOM: true`) so that the parser sees it.
 */
export class SSEParser {
  readonly #max: number;
  #line = "";
  #started = false;
  #skipLF = false;
  #type = "";
  #data = "";
  #hasData = false;
  #lastIdBuffer = "";
  #seenId = "";
  #retryMs = 0;

  /** @param max the longest line, and event data, accepted (in characters). */
  constructor(max = 1 << 20) {
    this.#max = max;
  }

  /** The last event ID adopted by a dispatch: what a reconnection sends as Last-Event-ID. */
  get lastEventId(): string {
    return this.#seenId;
  }

  /** The reconnection delay the stream asked for, in milliseconds, or 0. */
  get retry(): number {
    return this.#retryMs;
  }

  /**
   * Parses a chunk of the body and returns the events it completed. It
   * throws SSETooLongError when a line or an event is longer than the bound.
   */
  push(chunk: string): SSEEvent[] {
    const out: SSEEvent[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (this.#skipLF) {
        this.#skipLF = false;
        if (c === 10) {
          start = i + 1;
          continue;
        }
      }
      if (c !== 10 && c !== 13) continue;
      this.#append(chunk.slice(start, i));
      start = i + 1;
      if (c === 13) this.#skipLF = true;
      const ev = this.#processLine();
      if (ev) out.push(ev);
    }
    this.#append(chunk.slice(start));
    return out;
  }

  /** Ends the body: an unterminated line and event are dropped. */
  end(): void {
    this.#line = "";
    this.#type = "";
    this.#data = "";
    this.#hasData = false;
  }

  #append(s: string): void {
    if (s === "") return;
    if (this.#line.length + s.length > this.#max) throw new SSETooLongError();
    this.#line += s;
  }

  #processLine(): SSEEvent | undefined {
    let line = this.#line;
    this.#line = "";
    if (!this.#started) {
      this.#started = true;
      if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    }
    if (line === "") return this.#dispatch();
    if (line.charCodeAt(0) === 58 /* : */) return undefined;
    const colon = line.indexOf(":");
    let name = line;
    let value = "";
    if (colon >= 0) {
      name = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
    }
    switch (name) {
      case "event":
        this.#type = value;
        break;
      case "data":
        if (this.#data.length + value.length + 1 > this.#max) throw new SSETooLongError();
        this.#data += value + "\n";
        this.#hasData = true;
        break;
      case "id":
        if (!value.includes("\0")) this.#lastIdBuffer = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) {
          const ms = value.length > 10 ? maxRetryDelayMs : Number(value);
          this.#retryMs = Math.min(ms, maxRetryDelayMs);
        }
        break;
    }
    return undefined;
  }

  #dispatch(): SSEEvent | undefined {
    this.#seenId = this.#lastIdBuffer;
    if (!this.#hasData) {
      this.#type = "";
      return undefined;
    }
    const ev: SSEEvent = { id: this.#lastIdBuffer, type: this.#type, data: this.#data.slice(0, -1) };
    this.#type = "";
    this.#data = "";
    this.#hasData = false;
    return ev;
  }
}
