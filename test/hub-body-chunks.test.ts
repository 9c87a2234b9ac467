/**
 * A request body that reaches the hub in several chunks is decoded whole: a
 * character whose UTF-8 bytes are split between two chunks arrives intact, on
 * the tRPC and /mcp routes of both runtimes. The body is written in two parts,
 * cut inside a character, with the first part sent on its own before the rest.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, describe, it } from "node:test";
import { HubWorld, type Runtime } from "./support/hub-harness.ts";

const worlds: HubWorld[] = [];
after(() => Promise.all(worlds.map((world) => world.dispose())));

const PURPOSE = "reviews the café's ☕ menu";

/** POST `body` in two writes split `cut` bytes in; the answer's status and text. */
function postInTwo(
  url: URL,
  headers: Record<string, string>,
  body: Buffer,
  cut: number,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "POST", headers: { ...headers, "content-length": String(body.length) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
        );
      },
    );
    req.on("error", reject);
    req.flushHeaders();
    req.write(body.subarray(0, cut), () => {
      // Let the first part reach the hub as a chunk of its own before the rest follows.
      setTimeout(() => req.end(body.subarray(cut)), 50);
    });
  });
}

/** Where the first multi-byte character of `text` starts in its UTF-8 bytes, plus one: a cut inside it. */
function cutInsideCharacter(bytes: Buffer): number {
  const at = bytes.findIndex((byte) => byte >= 0xc0);
  assert.ok(at > 0, "the body has a multi-byte character");
  return at + 1;
}

for (const runtime of ["node", "bun"] as Runtime[]) {
  describe(`bodies in several chunks (${runtime} hub)`, () => {
    it("keep a character split between chunks whole", async () => {
      const world = new HubWorld();
      worlds.push(world);
      const hub = await world.startHub({ runtime });
      const headers = { authorization: `Bearer ${hub.token}`, "content-type": "application/json" };

      const body = Buffer.from(JSON.stringify({ json: { name: "chunky", purpose: PURPOSE } }));
      const registered = await postInTwo(
        new URL("/trpc/agents.register", hub.url),
        headers,
        body,
        cutInsideCharacter(body),
      );
      assert.equal(registered.status, 200, registered.text);
      const { card } = (
        JSON.parse(registered.text) as { result: { data: { json: { card: { purpose: string } } } } }
      ).result.data.json;
      assert.equal(card.purpose, PURPOSE);

      const init = Buffer.from(
        JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: {
            protocolVersion: "2025-06-18",
            capabilities: {},
            clientInfo: { name: "café-client", version: "1" },
          },
        }),
      );
      const initialized = await postInTwo(
        new URL("/mcp", hub.url),
        { ...headers, accept: "application/json, text/event-stream" },
        init,
        cutInsideCharacter(init),
      );
      assert.equal(initialized.status, 200, initialized.text);
      assert.match(initialized.text, /"serverInfo"/);
    });
  });
}
