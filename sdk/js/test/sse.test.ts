// The SSE parser against the WHATWG rules: the same cases as the Go SDK's
// parser (client/sse_test.go), fed whole and one character at a time.
import assert from "node:assert/strict";
import { test } from "node:test";
import { maxRetryDelayMs, SSEParser, SSETooLongError, type SSEEvent } from "../src/sse.js";

function parseAll(chunks: string[], max = 1 << 10): { events: SSEEvent[]; p: SSEParser } {
  const p = new SSEParser(max);
  const events: SSEEvent[] = [];
  for (const c of chunks) events.push(...p.push(c));
  p.end();
  return { events, p };
}

const ev = (data: string, type = "", id = ""): SSEEvent => ({ id, type, data });

const cases: Array<{ name: string; body: string; want: SSEEvent[]; lastId?: string; retry?: number }> = [
  { name: "one event", body: "data: a\n\n", want: [ev("a")] },
  { name: "multi-line data", body: "data: a\ndata:\ndata: b\n\n", want: [ev("a\n\nb")] },
  { name: "type and id", body: "id: 7\nevent: provider.status\ndata: {}\n\n", want: [ev("{}", "provider.status", "7")], lastId: "7" },
  { name: "one space removed, no more", body: "data:a\n\ndata:  b\n\n", want: [ev("a"), ev(" b")] },
  { name: "value after the first colon", body: "data: a: b\n\n", want: [ev("a: b")] },
  { name: "field without colon", body: "data\n\n", want: [ev("")] },
  { name: "comments", body: ": heartbeat\n:\ndata: a\n: inside\n\n", want: [ev("a")] },
  { name: "unknown field", body: "foo: bar\ndata: a\nData: b\n\n", want: [ev("a")] },
  { name: "CRLF", body: "id: 1\r\ndata: a\r\ndata: b\r\n\r\n", want: [ev("a\nb", "", "1")], lastId: "1" },
  { name: "CR", body: "id: 1\rdata: a\rdata: b\r\r", want: [ev("a\nb", "", "1")], lastId: "1" },
  { name: "mixed line ends", body: "data: a\r\ndata: b\rdata: c\n\r\n", want: [ev("a\nb\nc")] },
  { name: "LF CR is two line ends", body: "data: a\n\rdata: b\n\n", want: [ev("a"), ev("b")] },
  { name: "BOM", body: "\uFEFFdata: a\n\n", want: [ev("a")] },
  { name: "BOM before an empty line", body: "\uFEFF\ndata: a\n\n", want: [ev("a")] },
  { name: "only one BOM", body: "\uFEFF\uFEFFdata: a\n\n", want: [] },
  { name: "BOM later is data", body: "data: \uFEFFa\n\n", want: [ev("\uFEFFa")] },
  { name: "id persists", body: "id: 1\ndata: a\n\ndata: b\n\n", want: [ev("a", "", "1"), ev("b", "", "1")], lastId: "1" },
  { name: "empty id resets", body: "id: 1\ndata: a\n\nid\ndata: b\n\n", want: [ev("a", "", "1"), ev("b")] },
  { name: "id with NUL ignored", body: "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", want: [ev("a", "", "1"), ev("b", "", "1")], lastId: "1" },
  { name: "id without data is adopted", body: "data: a\n\nid: 5\nevent: x\n\n", want: [ev("a")], lastId: "5" },
  { name: "type reset without data", body: "event: x\n\ndata: a\n\n", want: [ev("a")] },
  { name: "retry", body: "retry: 1500\n\n", want: [], retry: 1500 },
  { name: "retry not digits", body: "retry: 1500\n\nretry: 1x\nretry: -1\nretry: \nretry:1 \n\n", want: [], retry: 1500 },
  { name: "retry capped", body: "retry: 99999999999999999999999\n\n", want: [], retry: maxRetryDelayMs },
  { name: "unterminated event dropped", body: "data: a\n\ndata: b\n", want: [ev("a")] },
  { name: "unterminated line dropped", body: "data: a\n\ndata: b", want: [ev("a")] },
  { name: "id of a dropped event not adopted", body: "id: 1\ndata: a\n\nid: 2\ndata: b\n", want: [ev("a", "", "1")], lastId: "1" },
  { name: "empty body", body: "", want: [] },
];

for (const c of cases) {
  test(`SSE parser: ${c.name}`, () => {
    // Whole, and one character at a time: the chunks' boundaries do not matter.
    for (const chunks of [[c.body], [...c.body]]) {
      const { events, p } = parseAll(chunks);
      assert.deepEqual(events, c.want);
      assert.equal(p.lastEventId, c.lastId ?? "");
      assert.equal(p.retry, c.retry ?? 0);
    }
  });
}

test("SSE parser: an event ended by CR is dispatched without waiting for the next character", () => {
  const p = new SSEParser(1 << 10);
  assert.deepEqual(p.push("data: a\r\r"), [ev("a")]);
  // The LF after CR CR belongs to the second CR: it is no empty line of its own.
  assert.deepEqual(p.push("\ndata: b\r\n\r\n"), [ev("b")]);
});

test("SSE parser: lines and events longer than the bound are refused", () => {
  for (const body of ["data: " + "x".repeat(100) + "\n\n", ("data: " + "x".repeat(30) + "\n").repeat(5) + "\n"]) {
    assert.throws(() => parseAll([body], 64), SSETooLongError);
  }
});

test("SSE parser: the events, written again, read back the same, whatever the line ends", () => {
  const events = [ev("{\"a\":1}", "provider.status", "1"), ev("x\ny", "", "2"), ev("", "resync", "3")];
  const encode = (nl: string): string =>
    events.map((e) => `id: ${e.id}${nl}` + (e.type ? `event: ${e.type}${nl}` : "") + e.data.split("\n").map((l) => `data: ${l}${nl}`).join("") + nl).join("");
  for (const nl of ["\n", "\r\n", "\r"]) {
    const body = encode(nl);
    assert.deepEqual(parseAll([body]).events, events);
    // Split at every position: a CRLF split across chunks is one line end.
    for (let i = 1; i < body.length; i++) assert.deepEqual(parseAll([body.slice(0, i), body.slice(i)]).events, events, `split at ${i} with ${JSON.stringify(nl)}`);
  }
});
