import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { FetchEventSource, type SseErrorEvent, type SseMessageEvent } from "../hub/client/event-source.ts";
import { waitFor } from "./support/hub-harness.ts";

/** A scripted SSE server: each connection is handed to `script`, with the headers it sent. */
describe("FetchEventSource (the hub client's EventSource)", () => {
  let url: string;
  const seen: IncomingMessage[] = [];
  let script: (req: IncomingMessage, res: ServerResponse, n: number) => void = () => {};
  const server = createServer((req, res) => {
    seen.push(req);
    script(req, res, seen.length);
  });
  const sources: FetchEventSource[] = [];
  const open = (init: ConstructorParameters<typeof FetchEventSource>[1] = {}) => {
    const source = new FetchEventSource(url, { retryMs: 20, ...init });
    sources.push(source);
    return source;
  };
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/stream`;
  });
  after(async () => {
    for (const source of sources) source.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("parses fields, multi-line data, CRLF and named events, and sends its headers", async () => {
    seen.length = 0;
    script = (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(": comment\n\nid: 1\ndata: one\n\n");
      res.write("event: ping\ndata: \n\n");
      res.write("id: 2\r\ndata: two\r\ndata: lines\r\n\r\n");
    };
    const source = open({ headers: () => ({ authorization: "Bearer abc" }) });
    const messages: SseMessageEvent[] = [];
    let pings = 0;
    source.addEventListener("message", (event: SseMessageEvent) => messages.push(event));
    source.addEventListener("ping", () => pings++);
    await waitFor(() => messages.length === 2 && pings === 1, { what: "three events" });
    assert.deepEqual(
      messages.map((m) => [m.data, m.lastEventId]),
      [
        ["one", "1"],
        ["two\nlines", "2"],
      ],
    );
    assert.equal(source.readyState, FetchEventSource.OPEN);
    assert.equal(seen[0]?.headers.authorization, "Bearer abc");
    assert.equal(seen[0]?.headers.accept, "text/event-stream");
    source.close();
  });

  it("reconnects after a dropped stream with Last-Event-ID", async () => {
    seen.length = 0;
    script = (_req, res, n) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`id: ev${n}\ndata: d${n}\n\n`);
      // The first stream ends (as when a hub goes away); the client must come back for more.
      if (n === 1) res.end();
    };
    const source = open();
    const data: string[] = [];
    source.addEventListener("message", (event: SseMessageEvent) => data.push(event.data));
    await waitFor(() => data.length >= 2, { what: "two connections" });
    assert.equal(seen[1]?.headers["last-event-id"], "ev1");
    source.close();
  });

  it("an id counts only once its event is complete: a stream cut after an id line resumes before it", async () => {
    seen.length = 0;
    script = (_req, res, n) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      // The second event's id arrives, its end never does.
      if (n === 1) res.end("data: a\nid: 1\n\ndata: b\nid: 2\n");
      else res.write("data: b\nid: 2\n\n");
    };
    const source = open();
    const events: SseMessageEvent[] = [];
    source.addEventListener("message", (event: SseMessageEvent) => events.push(event));
    await waitFor(() => events.length >= 2, { what: "both events" });
    assert.equal(seen[1]?.headers["last-event-id"], "1");
    assert.deepEqual(
      events.map((e) => [e.data, e.lastEventId]),
      [
        ["a", "1"],
        ["b", "2"],
      ],
    );
    source.close();
  });

  it("reconnects when a stream goes silent past inactivityMs (half-open link)", async () => {
    seen.length = 0;
    script = (_req, res, n) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`id: s${n}\ndata: x\n\n`);
      // then nothing, and the connection stays open
    };
    const source = open({ inactivityMs: 150 });
    await waitFor(() => seen.length >= 2, { what: "a reconnect after silence" });
    assert.equal(seen[1]?.headers["last-event-id"], "s1");
    source.close();
  });

  it("fails for good on a refusal, with the status and the server's message", async () => {
    script = (_req, res) => {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { json: { message: "wrong hub token" } } }));
    };
    const source = open();
    const error = await new Promise<SseErrorEvent>((resolve) => source.addEventListener("error", resolve));
    assert.equal(error.status, 401);
    assert.match(error.message, /HTTP 401: wrong hub token/);
    assert.equal(source.readyState, FetchEventSource.CLOSED);
  });
});
