/**
 * Every HTTP method on every kind of hub path gets a definite 4xx or 2xx
 * (never a 500, never a dropped connection): methods a path does not serve
 * get 405 with an Allow header, OPTIONS gets 204 with Allow, on Node and Bun.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { connect } from "node:net";
import { after, describe, it } from "node:test";
import { HubWorld, type Runtime } from "./support/hub-harness.ts";

const worlds: HubWorld[] = [];
after(async () => {
  for (const world of worlds) await world.dispose();
});

interface Answer {
  status: number;
  allow: string | undefined;
  body: string;
}

function call(url: string, path: string, method: string, token: string, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, url),
      {
        method,
        // A fresh connection each, and the body framed explicitly (node:http sends a DELETE's or
        // TRACE's body unframed otherwise, which the next request on the connection would trip on).
        agent: false,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body
            ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) }
            : {}),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, allow: res.headers.allow, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A request written by hand (CONNECT cannot be sent with an ordinary client); returns the status line. */
function rawStatusLine(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(text));
    let got = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      got += chunk;
    });
    socket.on("close", () => resolve(got.split("\r\n")[0] ?? ""));
    socket.on("error", reject);
  });
}

const OTHER_METHODS = ["PUT", "DELETE", "PATCH", "TRACE", "PROPFIND", "PURGE"];

for (const runtime of ["node", "bun"] as Runtime[]) {
  describe(`HTTP methods on the ${runtime} hub`, () => {
    it("methods a path does not serve get 405 with Allow; OPTIONS gets 204 with Allow; never a 500", async () => {
      const world = new HubWorld();
      worlds.push(world);
      const hub = await world.startHub({ runtime });
      const paths: Array<[string, string]> = [
        ["/trpc/messages.send", "POST"],
        ["/trpc/agents.list", "GET, HEAD"],
        ["/trpc/messages.inbox", "GET, HEAD"],
        ["/trpc/no.such.procedure", "GET, POST, HEAD"],
        ["/healthz", "GET, HEAD"],
      ];
      for (const [path, allow] of paths) {
        for (const method of OTHER_METHODS) {
          for (const body of [undefined, '{"json":{}}']) {
            const answer = await call(hub.url, path, method, hub.token, body);
            assert.equal(answer.status, 405, `${method} ${path} (body: ${Boolean(body)}): ${answer.body}`);
            assert.equal(answer.allow, allow, `${method} ${path}`);
            if (method !== "HEAD") assert.match(answer.body, /not served|Unsupported/);
          }
        }
        if (path.startsWith("/trpc/")) {
          const options = await call(hub.url, path, "OPTIONS", hub.token);
          assert.equal(options.status, 204, `OPTIONS ${path}`);
          assert.equal(options.allow, `${allow}, OPTIONS`);
        }
      }
      assert.equal((await call(hub.url, "/healthz", "POST", hub.token, "{}")).status, 405);
      assert.equal((await call(hub.url, "/healthz", "HEAD", hub.token)).status, 200);
      const connectLine = await rawStatusLine(
        hub.port,
        `CONNECT 127.0.0.1:${hub.port} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      );
      assert.match(connectLine, /^HTTP\/1\.1 4\d\d /, `CONNECT: ${connectLine}`);
      // Still serving.
      assert.equal((await call(hub.url, "/healthz", "GET", hub.token)).status, 200);
    });
  });
}
