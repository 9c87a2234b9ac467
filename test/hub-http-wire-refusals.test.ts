/**
 * What the hub refuses on the wire, checked with requests written by hand on
 * a bare socket against a real hub process: ambiguous framing (request
 * smuggling), oversized or malformed heads, unknown methods, CONNECT, clients
 * that break off, bodies over the limit. A refused request gets a 4xx and its
 * connection is closed with nothing more; it is never answered as two
 * requests; the hub keeps serving other connections.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Runtime } from "./support/hub-harness.ts";
import {
  answersUntilClosed,
  assertCard,
  assertKeptOrClosedAsAnnounced,
  assertRefusedAndClosed,
  assertStillServing,
  authHeaders,
  cardRequest,
  is4xx,
  JSON_TYPE,
  pipelined,
  startWireHub,
  type WireHub,
} from "./support/hub-wire.ts";
import { chunked, type RawResponse, type RequestSpec, requestBytes } from "./support/raw-http.ts";

for (const runtime of ["node", "bun"] as Runtime[]) {
  describe(`the ${runtime} hub refusing on the wire`, { timeout: 60_000 }, () => {
    const bun = runtime === "bun";
    let w: WireHub;
    before(async () => {
      w = await startWireHub(runtime);
    });
    after(() => w.dispose());

    /** Write `bytes` on a new connection and expect one 4xx, then the connection closed. */
    const refused = async (what: string, bytes: Buffer | string) => {
      const c = await w.open();
      await c.write(bytes);
      await assertRefusedAndClosed(c, what);
    };

    /** A register whose headers are `framing` (and the hub token, JSON) and whose body is `body` as given. */
    const framed = (framing: Array<[string, string]>, body: string | Buffer): RequestSpec => ({
      method: "POST",
      path: "/trpc/agents.register",
      headers: [...authHeaders(w), JSON_TYPE, ...framing],
      body,
    });

    it("Content-Length with Transfer-Encoding is refused, never answered as two requests (smuggling)", async () => {
      // Read by Transfer-Encoding, the body ends at once and a request for bob's card follows;
      // read by Content-Length, that request is body. Either reading would answer something.
      const inner = Buffer.concat([chunked("", []), requestBytes(cardRequest(w, w.bob))]);
      const length: [string, string] = ["Content-Length", String(inner.length)];
      const te: [string, string] = ["Transfer-Encoding", "chunked"];
      await refused("CL then TE", requestBytes(framed([length, te], inner)));
      await refused("TE then CL", requestBytes(framed([te, length], inner)));
      // A Transfer-Encoding that does not end in chunked leaves the body's length unknown.
      const body = JSON.stringify({ json: { name: "te-1" } });
      await refused("TE identity", requestBytes(framed([["Transfer-Encoding", "identity"]], body)));
      await refused("TE gzip", requestBytes(framed([["Transfer-Encoding", "gzip"]], body)));
      await assertStillServing(w);
    });

    it("conflicting or malformed Content-Length is refused", async () => {
      const body = JSON.stringify({ json: { name: "cl-1" } });
      const n = String(body.length);
      const longer = String(body.length + 1);
      await refused(
        "two Content-Length headers",
        requestBytes(
          framed(
            [
              ["Content-Length", n],
              ["Content-Length", longer],
            ],
            body,
          ),
        ),
      );
      await refused(
        "a list of two lengths",
        requestBytes(framed([["Content-Length", `${n}, ${longer}`]], body)),
      );
      await refused("not a number", requestBytes(framed([["Content-Length", "abc"]], body)));
      await refused("negative", requestBytes(framed([["Content-Length", "-1"]], body)));
      await assertStillServing(w);
    });

    it("a header block over 16 KB gets a 4xx (431 on both runtimes today) and the connection closed", async () => {
      await refused(
        "one long header",
        requestBytes(cardRequest(w, w.alice, { headers: [["X-Pad", "x".repeat(17 * 1024)]] })),
      );
      const many = Array.from({ length: 200 }, (_, i): [string, string] => [`X-Pad-${i}`, "y".repeat(90)]);
      await refused("many headers", requestBytes(cardRequest(w, w.alice, { headers: many })));
      await assertStillServing(w);
    });

    it("a malformed request line or header gets a 4xx and the connection closed; the hub serves on", async () => {
      const good = requestBytes(cardRequest(w, w.alice)).toString("latin1");
      const withHeader = (line: string) => good.replace("\r\n\r\n", `\r\n${line}\r\n\r\n`);
      const cases: Array<[string, string]> = [
        ["not a request line", "GARBAGE\r\n\r\n"],
        ["a header name with a space", withHeader("X Foo: bar")],
        ["an obs-fold line", withHeader("X-Foo: a\r\n folded")],
        ["NUL in a value", withHeader("X-Foo: a\0b")],
        ["CR in a value", withHeader("X-Foo: a\rb")],
        ["HTTP/1.1 without Host", "GET /healthz HTTP/1.1\r\n\r\n"],
        [
          "a bad chunk size",
          requestBytes(framed([["Transfer-Encoding", "chunked"]], "zz\r\nab\r\n0\r\n\r\n")).toString(
            "latin1",
          ),
        ],
      ];
      // Bun answers a request line with a fourth part 505 HTTP Version Not Supported.
      if (!bun)
        cases.push([
          "a request line with a fourth part",
          good.replace(" HTTP/1.1\r\n", " HTTP/1.1 extra\r\n"),
        ]);
      for (const [what, text] of cases) await refused(what, Buffer.from(text, "latin1"));
      await assertStillServing(w);
    });

    it("a malformed request pipelined after a good one is never answered; the connection closes", async () => {
      for (const bad of ["GARBAGE\r\n\r\n", "GET /healthz HTTP/1.1\r\nX Foo: bar\r\n\r\n"]) {
        const c = await w.open();
        await c.write(Buffer.concat([requestBytes(cardRequest(w, w.alice)), Buffer.from(bad)]));
        // Bun answers the good one, then the bad one 400 or not at all; node:http's parser meets the
        // bad one before the good one's answer is written and answers the connection 400 alone.
        const answers = await answersUntilClosed(c);
        const statuses = answers.map((a) => a.status).join(", ");
        assert.ok(answers.length >= 1 && answers.length <= 2, statuses);
        const [first, second] = answers as [RawResponse, RawResponse | undefined];
        if (first.status === 200) assertCard(first, "alice");
        else assert.ok(is4xx(first) && !second, statuses);
        if (second) assert.ok(is4xx(second), statuses);
      }
      await assertStillServing(w);
    });

    it("a client that breaks off mid-head or mid-body leaves the hub serving", async () => {
      const head = requestBytes(cardRequest(w, w.alice)).toString("latin1");
      const partial: Array<[string, string | Buffer]> = [
        ["mid-head", head.slice(0, head.indexOf("\r\n", 30))],
        ["mid-body", requestBytes(framed([["Content-Length", "100"]], '{"json":{"na'))],
        ["mid-chunk", requestBytes(framed([["Transfer-Encoding", "chunked"]], '9\r\n{"json"'))],
        // Under the body limit, so nothing is refused before the body would end.
        [
          "mid-way through a large body",
          requestBytes(framed([["Content-Length", String(512 << 10)]], "x".repeat(256 << 10))),
        ],
      ];
      for (const [what, bytes] of partial) {
        // Gone at once (a reset, or a FIN the client never follows up)...
        const dropped = await w.open();
        await dropped.write(bytes);
        dropped.destroy();
        await dropped.closed;
        // ...or half-closed: the server sees the end of the stream mid-request and closes too,
        // answering at most a 4xx (node:http: 400; Bun: nothing).
        const halfClosed = await w.open();
        await halfClosed.write(bytes);
        halfClosed.end();
        const answers = await answersUntilClosed(halfClosed);
        assert.ok(answers.length <= 1 && answers.every(is4xx), `${what}: ${answers.map((a) => a.status)}`);
        await assertStillServing(w);
      }
    });

    it("a body over the limit gets 413, then the connection is usable or closed as announced", async () => {
      const big = JSON.stringify({ json: { pad: "x".repeat(2 * 1024 * 1024) } });
      const mcpHeaders: Array<[string, string]> = [["Accept", "application/json, text/event-stream"]];
      const cases: Array<[string, RequestSpec]> = [
        ["tRPC, Content-Length", framed([], big)],
        [
          "tRPC, chunked",
          framed([["Transfer-Encoding", "chunked"]], chunked(big, Array(40).fill(64 * 1024))),
        ],
        ["/mcp", { method: "POST", path: "/mcp", headers: [...authHeaders(w), JSON_TYPE, ...mcpHeaders] }],
        ["dashboard sign-in", { method: "POST", path: "/dashboard/sign-in", headers: [JSON_TYPE] }],
      ];
      for (const [what, spec] of cases) {
        const c = await w.open();
        const written = c.write(requestBytes({ body: big, ...spec }));
        const answer = await c.response();
        assert.equal(answer.status, 413, `${what}: ${answer.text}`);
        await written;
        // Node and Bun both keep the connection today, having read the body to its end.
        await assertKeptOrClosedAsAnnounced(w, c, answer, what);
      }
    });

    // Bun drops the connection without an answer.
    it("an unknown method gets a 4xx and the connection closed", {
      skip: bun && "Bun closes unanswered",
    }, async () => {
      await refused("BREW", requestBytes(cardRequest(w, w.alice, { method: "BREW" })));
      const c = await w.open();
      await c.write(requestBytes(cardRequest(w, w.alice)));
      assertCard(await c.response(), "alice");
      await c.write(requestBytes(cardRequest(w, w.alice, { method: "BREW" })));
      await assertRefusedAndClosed(c, "BREW on a used connection");
      await assertStillServing(w);
    });

    // Bun serves CONNECT as an ordinary request (401 without the token, routed with it), then takes
    // what follows for tunnel data and neither answers nor closes.
    it("CONNECT on a used connection: a 4xx, closed, and what follows it is not answered", {
      skip: bun && "Bun routes CONNECT like any request",
    }, async () => {
      const c = await w.open();
      await c.write(requestBytes(cardRequest(w, w.alice)));
      assertCard(await c.response(), "alice");
      const target = `127.0.0.1:${w.hub.port}`;
      await c.write(
        pipelined(
          { method: "CONNECT", path: target, headers: [["Host", target], ...authHeaders(w)] },
          cardRequest(w, w.bob),
        ),
      );
      await assertRefusedAndClosed(c, "CONNECT");
      await assertStillServing(w);
    });
  });
}
