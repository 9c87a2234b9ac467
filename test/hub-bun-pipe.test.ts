/**
 * The Bun hub's two servers: agents' plain requests are read off its own
 * sockets, and a connection with anything else (/mcp, the dashboard, an
 * unusual request) is piped to a Bun.serve on loopback. That server must
 * answer the hub's own pipes only, and see each piped request as coming
 * from the client's address, not the pipe's.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { get } from "node:http";
import { after, describe, it } from "node:test";
import { HubWorld } from "./support/hub-harness.ts";

/** The TCP ports process `pid` listens on (from its socket inodes and /proc/net). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1] as string);
    } catch {
      // Closed while listing.
    }
  }
  const ports = new Set<number>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is "ADDR:PORT" in hex; state 0A is LISTEN; the inode is the tenth field.
      if (fields[3] === "0A" && inodes.has(fields[9] as string)) {
        ports.add(Number.parseInt((fields[1] as string).split(":")[1] as string, 16));
      }
    }
  }
  return [...ports];
}

describe("the Bun hub's pipe to Bun.serve", () => {
  const world = new HubWorld();
  after(() => world.dispose());

  it("the server behind the pipe refuses connections that are not the hub's own pipes", async () => {
    const hub = await world.startHub({ project: "pipe", runtime: "bun" });
    const behind = listeningPorts(hub.pid).filter((port) => port !== hub.port);
    assert.equal(behind.length, 1, `one port besides the hub's own: ${behind.join(", ")}`);
    const direct = await fetch(`http://127.0.0.1:${behind[0]}/healthz`);
    assert.equal(direct.status, 403, "straight to the server behind the pipe");
    const mcp = await fetch(`http://127.0.0.1:${behind[0]}/mcp`, {
      method: "POST",
      headers: { authorization: `Bearer ${hub.token}`, "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(mcp.status, 403, "even with the hub's token");
    // The same routes through the hub's port: /healthz read by the hub itself, /mcp piped.
    assert.equal((await fetch(`${hub.url}/healthz`)).status, 200);
    const piped = await fetch(`${hub.url}/mcp`, {
      method: "POST",
      headers: { authorization: "Bearer wrong", "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(piped.status, 401, "a piped request reaches the hub's token check");
  });

  it("counts wrong tokens on a piped route against the client's address", async () => {
    // Clients come from ::1, the pipe runs over 127.0.0.1: the lockout tells which address was counted.
    const hub = await world.startHub({ project: "pipe6", runtime: "bun", args: ["--host", "::1"] });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${hub.url}/mcp`, {
        method: "POST",
        headers: { authorization: "Bearer wrong", "content-type": "application/json" },
        body: "{}",
      });
      await res.text();
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, Array(20).fill(401));
    // A route the hub reads itself, from the same client address, on a connection of its own (fetch's
    // would be piped, since it carried the /mcp requests before): already locked out.
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = get(
        `${hub.url}/trpc/agents.list`,
        { agent: false, headers: { authorization: "Bearer wrong" } },
        (res) => {
          res.resume();
          resolve(res.statusCode);
        },
      );
      req.once("error", reject);
    });
    assert.equal(status, 429);
  });
});
