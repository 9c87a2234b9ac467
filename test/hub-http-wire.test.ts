/**
 * The hub on the wire, HTTP/1.1 as any correct server speaks it, checked with
 * requests written by hand on a bare socket against a real hub process:
 * keep-alive, pipelining, requests in pieces, chunked bodies, 100-continue,
 * connection close, HTTP/1.0, header-name case, HEAD, and one connection
 * carrying tRPC, dashboard, /mcp and an SSE stream in turn. Refusals
 * (malformed or ambiguous requests) are in hub-http-wire-refusals.test.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Runtime } from "./support/hub-harness.ts";
import {
  answersUntilClosed,
  assertCard,
  assertKeptOrClosedAsAnnounced,
  authHeaders,
  cardRequest,
  is4xx,
  JSON_TYPE,
  pipelined,
  registerRequest,
  sendRequest,
  startWireHub,
  type WireHub,
} from "./support/hub-wire.ts";
import { chunked, header, type RawResponse, type RequestSpec, requestBytes } from "./support/raw-http.ts";

const PURPOSE = "reviews the café's ☕ menu";

const MCP_INIT = (client: string) => ({
  method: "POST",
  path: "/mcp",
  body: JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: client, version: "1" } },
  }),
});

/** tRPC, the dashboard page, /metrics, an MCP initialize, a refused /mcp call, tRPC again. */
function mixedSequence(w: WireHub, mcpClient: string): RequestSpec[] {
  const mcpHeaders: Array<[string, string]> = [
    ...authHeaders(w),
    JSON_TYPE,
    ["Accept", "application/json, text/event-stream"],
  ];
  return [
    cardRequest(w, w.alice),
    { path: "/" },
    { path: "/metrics", headers: authHeaders(w) },
    { ...MCP_INIT(mcpClient), headers: mcpHeaders },
    // No session and not an initialize: refused by the MCP route.
    { path: "/mcp", headers: authHeaders(w) },
    cardRequest(w, w.bob),
  ];
}

/** The answers to mixedSequence, in order, each taken by `next`. */
async function checkMixed(next: () => Promise<RawResponse>): Promise<void> {
  assertCard(await next(), "alice");
  const page = await next();
  assert.equal(page.status, 200);
  assert.match(page.text, /^<!doctype html>/i);
  const metrics = await next();
  assert.equal(metrics.status, 200);
  assert.match(metrics.text, /^# HELP pi_coms_/m);
  const mcp = await next();
  assert.equal(mcp.status, 200, mcp.text);
  assert.ok(header(mcp, "mcp-session-id"), "an MCP session was opened");
  assert.match(mcp.text, /"serverInfo"/);
  const refused = await next();
  assert.equal(refused.status, 400, refused.text);
  assert.match(refused.text, /initialize/);
  assertCard(await next(), "bob");
}

const BUN_PIPELINE = "Bun closes a connection whose pipelined request meets a pending async answer";

for (const runtime of ["node", "bun"] as Runtime[]) {
  describe(`the ${runtime} hub on the wire`, { timeout: 60_000 }, () => {
    const bun = runtime === "bun";
    let w: WireHub;
    before(async () => {
      w = await startWireHub(runtime);
    });
    after(() => w.dispose());

    it("keep-alive: requests one after another on one connection are answered in order", async () => {
      const c = await w.open();
      await c.write(requestBytes(cardRequest(w, w.alice)));
      assertCard(await c.response(), "alice");
      await c.write(requestBytes(registerRequest(w, "kept-1")));
      assertCard(await c.response(), "kept-1");
      await c.write(requestBytes(cardRequest(w, w.bob)));
      assertCard(await c.response(), "bob");
    });

    it("pipelining: two and three requests in one write are answered in order, each whole", async () => {
      const c = await w.open();
      await c.write(pipelined(cardRequest(w, w.alice), cardRequest(w, w.bob)));
      assertCard(await c.response(), "alice");
      assertCard(await c.response(), "bob");
      await c.write(pipelined(cardRequest(w, w.bob), cardRequest(w, w.alice), { path: "/healthz" }));
      assertCard(await c.response(), "bob");
      assertCard(await c.response(), "alice");
      assert.equal((await c.response()).text, '{"ok":true}');
    });

    // The chunked request sends the rest of the connection to Bun.serve, and Bun 1.4.5's server (uWS)
    // closes a connection, the pending answer unsent, when a pipelined request arrives while an async
    // answer is still pending (oven-sh/bun#38128). The plain reader itself pipelines (next test).
    it("pipelining: requests after a body (Content-Length, chunked) in the same write", {
      skip: bun && BUN_PIPELINE,
    }, async () => {
      const c = await w.open();
      // The bodies' framing alone decides where each following request starts.
      const chunkedRegister = registerRequest(w, "piped-2", PURPOSE);
      await c.write(
        pipelined(
          cardRequest(w, w.bob),
          registerRequest(w, "piped-1", PURPOSE),
          {
            ...chunkedRegister,
            headers: [...(chunkedRegister.headers ?? []), ["Transfer-Encoding", "chunked"]],
            body: chunked(chunkedRegister.body as string, [7, 3]),
          },
          cardRequest(w, w.alice),
        ),
      );
      assertCard(await c.response(), "bob");
      for (const name of ["piped-1", "piped-2"]) {
        const registered = await c.response();
        assertCard(registered, name);
        assert.match(registered.text, /café's ☕ menu/);
      }
      assertCard(await c.response(), "alice");
      // A send is answered after the store's flush; the health check behind it, at once: in order all the same.
      await c.write(pipelined(sendRequest(w, w.alice, "bob", "in order"), { path: "/healthz" }));
      const sent = await c.response();
      assert.equal(sent.status, 200, sent.text);
      assert.match(sent.text, /"msg_id"/);
      assert.equal((await c.response()).text, '{"ok":true}');
    });

    it("a request written one byte at a time, head and body, is answered whole", async () => {
      const c = await w.open();
      // Every multi-byte character of the purpose arrives split across writes.
      await c.writeBytewise(requestBytes(registerRequest(w, "bytewise-1", PURPOSE)));
      const registered = await c.response();
      assertCard(registered, "bytewise-1");
      assert.match(registered.text, /café's ☕ menu/);
      await c.writeBytewise(requestBytes(cardRequest(w, w.alice)));
      assertCard(await c.response(), "alice");
    });

    it("a chunked request body is decoded whole, chunks cut inside characters, and the connection stays usable", async () => {
      const c = await w.open();
      const spec = registerRequest(w, "chunked-1", PURPOSE);
      const body = Buffer.from(spec.body as string);
      const cut = body.indexOf(Buffer.from("é")) + 1;
      // Chunk boundaries inside "é" and inside "☕", each chunk its own write.
      const sizes = [cut, body.indexOf(Buffer.from("☕")) + 2 - cut, 1, 5];
      const head = requestBytes({
        ...spec,
        headers: [...(spec.headers ?? []), ["Transfer-Encoding", "chunked"]],
        body: "",
      });
      await c.write(head);
      const framed = chunked(body, sizes);
      let at = 0;
      for (const size of sizes) {
        const line = `${size.toString(16)}\r\n`.length;
        await c.write(framed.subarray(at, at + line + size + 2));
        at += line + size + 2;
      }
      await c.write(framed.subarray(at));
      const registered = await c.response();
      assertCard(registered, "chunked-1");
      assert.match(registered.text, /café's ☕ menu/);
      await c.write(requestBytes(cardRequest(w, w.bob)));
      assertCard(await c.response(), "bob");
    });

    it("Expect: 100-continue gets 100 Continue before the body is sent, then the answer", async () => {
      const c = await w.open();
      const spec = registerRequest(w, "continued-1");
      const bytes = requestBytes({ ...spec, headers: [...(spec.headers ?? []), ["Expect", "100-continue"]] });
      const headEnd = bytes.indexOf("\r\n\r\n") + 4;
      await c.write(bytes.subarray(0, headEnd));
      const interim = await c.response();
      assert.equal(interim.status, 100);
      await c.write(bytes.subarray(headEnd));
      assertCard(await c.response(), "continued-1");
      await c.write(requestBytes(cardRequest(w, w.alice)));
      assertCard(await c.response(), "alice");
    });

    it("Connection: close is answered, then the server closes the connection", async () => {
      const c = await w.open();
      await c.write(requestBytes(cardRequest(w, w.alice, { headers: [["Connection", "close"]] })));
      const answered = await c.response();
      assertCard(answered, "alice");
      // node:http says "Connection: close" in the answer (RFC 9112 says SHOULD); Bun does not.
      if (!bun) assert.match(header(answered, "connection") ?? "", /close/i);
      assert.equal(await c.serverClosed(), "");
    });

    it("a request pipelined after Connection: close is never answered", async () => {
      const c = await w.open();
      await c.write(
        pipelined(cardRequest(w, w.alice, { headers: [["Connection", "close"]] }), cardRequest(w, w.bob)),
      );
      // Bun answers the first and drops the second, as RFC 9112 asks; node:http's parser refuses the
      // data after "close" with a 400 before the first answer is written, so that one is lost too.
      const answers = await answersUntilClosed(c);
      const statuses = answers.map((a) => a.status).join(", ");
      assert.ok(answers.length >= 1, "answered or refused, not just dropped");
      answers.forEach((answer, i) => {
        if (i === 0 && answer.status === 200) assertCard(answer, "alice");
        else assert.ok(is4xx(answer), statuses);
      });
    });

    it("HTTP/1.0 is answered, and the connection closed unless keep-alive was asked and granted", async () => {
      const plain = await w.open();
      await plain.write(requestBytes(cardRequest(w, w.alice, { version: "HTTP/1.0" })));
      const answer = await plain.response();
      assertCard(answer, "alice");
      assert.match(answer.version, /^HTTP\/1\.[01]$/);
      assert.equal(await plain.serverClosed(), "", "an HTTP/1.0 connection ends after its answer");

      const kept = await w.open();
      const keepAlive = cardRequest(w, w.alice, {
        version: "HTTP/1.0",
        headers: [["Connection", "keep-alive"]],
      });
      await kept.write(requestBytes(keepAlive));
      const first = await kept.response();
      assertCard(first, "alice");
      await assertKeptOrClosedAsAnnounced(w, kept, first, "HTTP/1.0 keep-alive", "HTTP/1.0");
    });

    it("header names in any case are honoured (hub token, agent credential, Content-Length, Transfer-Encoding)", async () => {
      const c = await w.open();
      const shout = (headers: Array<[string, string]>) =>
        headers.map(([name, value]): [string, string] => [name.toUpperCase(), value]);
      await c.write(requestBytes({ path: "/trpc/agents.card", headers: shout(authHeaders(w, w.alice)) }));
      assertCard(await c.response(), "alice");
      const body = JSON.stringify({ json: { name: "loud-1" } });
      await c.write(
        requestBytes({
          method: "POST",
          path: "/trpc/agents.register",
          headers: [
            ...shout(authHeaders(w)),
            ["CONTENT-type", "application/json"],
            ["content-LENGTH", String(body.length)],
          ],
          body,
        }),
      );
      assertCard(await c.response(), "loud-1");
      await c.write(
        requestBytes({
          method: "POST",
          path: "/trpc/agents.register",
          headers: [...authHeaders(w), JSON_TYPE, ["TRANSFER-encoding", "Chunked"]],
          body: chunked(JSON.stringify({ json: { name: "loud-2" } }), [3]),
        }),
      );
      assertCard(await c.response(), "loud-2");
    });

    it("HEAD on a tRPC query path: a 2xx head without a body, and the connection stays usable", async () => {
      const c = await w.open();
      await c.write(pipelined(cardRequest(w, w.alice, { method: "HEAD" }), cardRequest(w, w.bob)));
      const head = await c.response({ head: true });
      assert.ok(head.status >= 200 && head.status < 300, `HEAD: ${head.status}`);
      // The next response must start right where the head ended: a body here would be read as garbage.
      assertCard(await c.response(), "bob");
    });

    it("one connection carries tRPC, the dashboard page, /metrics, /mcp, then tRPC again", async () => {
      const oneByOne = await w.open();
      const requests = mixedSequence(w, "wire-one-by-one");
      let i = 0;
      await checkMixed(async () => {
        await oneByOne.write(requestBytes(requests[i++] as RequestSpec));
        return oneByOne.response();
      });
    });

    it("the same mixed sequence pipelined in one write", async () => {
      const piped = await w.open();
      await piped.write(pipelined(...mixedSequence(w, "wire-pipelined")));
      await checkMixed(() => piped.response());
    });

    it("a POST, then the inbox stream on the same connection: it opens and delivers a message sent afterwards", async () => {
      const c = await w.open();
      const carol = "carol-wire";
      await c.write(requestBytes(registerRequest(w, carol)));
      const registered = await c.response();
      assertCard(registered, carol);
      const { card, agent_token } = JSON.parse(registered.text).result.data.json as {
        card: { id: string };
        agent_token: string;
      };
      const input = encodeURIComponent(JSON.stringify({ json: { lastEventId: null } }));
      await c.write(
        requestBytes({
          path: `/trpc/messages.inbox?input=${input}`,
          headers: [
            ...authHeaders(w, { id: card.id, name: carol, agentToken: agent_token }),
            ["Accept", "text/event-stream"],
          ],
        }),
      );
      const stream = await c.responseHead();
      assert.equal(stream.status, 200);
      assert.match(header(stream, "content-type") ?? "", /^text\/event-stream/);
      await c.bodyUntil("connected");

      const sender = await w.open();
      await sender.write(requestBytes(sendRequest(w, w.alice, carol, "over the wire ☕")));
      assert.equal((await sender.response()).status, 200);
      await c.bodyUntil("over the wire ☕");
    });
  });
}
