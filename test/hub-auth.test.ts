import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FetchEventSource, type SseErrorEvent } from "../hub/client/event-source.ts";
import { connectHub } from "../hub/client/hub-client.ts";
import { type HubProcess, HubWorld, raw, waitFor } from "./support/hub-harness.ts";
import { rawAgent, rawClient } from "./support/hub-raw-client.ts";

describe("hub auth and bad input", () => {
  let world: HubWorld;
  let hub: HubProcess;
  before(async () => {
    world = new HubWorld();
    hub = await world.startHub({ project: "auth", args: ["--max-message-bytes", "2048"] });
  });
  after(() => world.dispose());

  const agentCount = async () => {
    const probe = await rawAgent(hub.url, hub.token, "probe");
    const n = (await probe.client.agents.list.query({ include_explicit: true })).length;
    await probe.client.agents.leave.mutate();
    return n;
  };

  it("keeps the token private: 0700 dir, 0600 file, never printed, never in the discovery file", async () => {
    const dir = join(world.env.PI_COMS_NET_DIR as string, "projects", "auth");
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const file of ["server.secret.json", "server.json", "hub.sqlite"]) {
      assert.equal(statSync(join(dir, file)).mode & 0o777, 0o600, file);
    }
    assert.ok(hub.token.length >= 43, "at least 32 random bytes");
    assert.ok(!hub.output().includes(hub.token));
    assert.match(hub.output(), /token kept in .*server\.secret\.json/);
    const printed = await world.startHub({ project: "printed", args: ["--print-token"] });
    await waitFor(() => printed.output().includes(`token: ${printed.token}`), { what: "the printed token" });
  });

  it("answers /healthz without auth and without data", async () => {
    const health = await raw(hub.url, "/healthz");
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.text), { ok: true });
  });

  it("refuses missing and wrong tokens with a clear 401 and changes nothing", async () => {
    const before = await agentCount();
    const body = JSON.stringify({ json: { name: "intruder" } });
    const missing = await raw(hub.url, "/trpc/agents.register", { body });
    assert.equal(missing.status, 401);
    assert.match(missing.text, /missing hub token/);
    const wrong = await raw(hub.url, "/trpc/agents.register", { body, token: "not-the-token-at-all-000000" });
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /wrong hub token/);
    const sameLength = `${hub.token.slice(0, -1)}${hub.token.endsWith("A") ? "B" : "A"}`;
    assert.equal((await raw(hub.url, "/trpc/agents.register", { body, token: sameLength })).status, 401);
    assert.equal((await raw(hub.url, "/trpc/agents.list", { token: "x" })).status, 401);
    assert.equal(await agentCount(), before);
    await assert.rejects(
      connectHub({ url: hub.url, token: "wrong-token-0123456789abcdef", project: "auth", env: world.env }),
      (error: Error & { code?: string }) => error.code === "UNAUTHORIZED",
    );
    assert.equal(await agentCount(), before);
  });

  it("checks an agent credential on every call, also after it was accepted once", async () => {
    const agent = await rawAgent(hub.url, hub.token, "checked");
    const as = (agentToken: string) => rawClient(hub.url, hub.token, { id: agent.card.id, agentToken });
    const card = () => as(agent.agentToken).agents.card.query();
    assert.equal((await card()).id, agent.card.id);
    const last = agent.agentToken.at(-1) === "A" ? "B" : "A";
    for (const wrong of [`${agent.agentToken.slice(0, -1)}${last}`, `${agent.agentToken}x`, "short"]) {
      await assert.rejects(
        as(wrong).messages.ack.mutate({ msg_ids: [] }),
        (error: Error) => /identify first/.test(error.message),
        `refused: a wrong credential of ${wrong.length} characters`,
      );
    }
    assert.equal((await card()).id, agent.card.id, "the right one still works");
    await as(agent.agentToken).agents.leave.mutate();
  });

  it("refuses the SSE stream without the token, with the reason", async () => {
    const input = encodeURIComponent(JSON.stringify({ json: { lastEventId: null } }));
    const url = `${hub.url}/trpc/messages.inbox?input=${input}`;
    const refusals: Array<Record<string, string>> = [{}, { authorization: "Bearer wrong-token-0123456789" }];
    for (const headers of refusals) {
      const source = new FetchEventSource(url, { headers });
      const error = await new Promise<SseErrorEvent>((resolve) => source.addEventListener("error", resolve));
      assert.equal(source.readyState, FetchEventSource.CLOSED);
      assert.equal(error.status, 401);
      assert.match(error.message, /hub token/);
    }
    // With the hub token but no agent credential the stream is refused inside tRPC.
    const stream = await fetch(url, { headers: { authorization: `Bearer ${hub.token}` } });
    const text = await stream.text();
    assert.match(text, /serialized-error/);
    assert.match(text, /identify first/);
  });

  it("answers malformed JSON, wrong types and unknown procedures with 4xx and stays up", async () => {
    const before = await agentCount();
    const token = hub.token;
    const cases: Array<[string, string | undefined, number]> = [
      ["/trpc/agents.register", "{not json", 400],
      ["/trpc/agents.register", JSON.stringify({ json: { name: 42 } }), 400],
      ["/trpc/agents.register", JSON.stringify({ json: { name: "../etc/passwd" } }), 400],
      ["/trpc/agents.register", JSON.stringify({ json: { name: "ok", color: "red" } }), 400],
      ["/trpc/no.such.procedure", JSON.stringify({ json: {} }), 404],
      ["/elsewhere", undefined, 404],
      ["/trpc/agents.list", JSON.stringify({ json: {} }), 405],
    ];
    for (const [path, body, status] of cases) {
      const response = await raw(hub.url, path, { token, ...(body !== undefined ? { body } : {}) });
      assert.equal(response.status, status, `${path} ${body} -> ${response.text}`);
      assert.ok(response.text.length > 0);
    }
    const huge = JSON.stringify({ json: { name: "x".repeat(200_000) } });
    assert.equal((await raw(hub.url, "/trpc/agents.register", { token, body: huge })).status, 413);
    assert.equal((await raw(hub.url, "/healthz")).status, 200);
    assert.equal(await agentCount(), before);
  });

  it("refuses to bind a non-loopback address without an explicit token, saying why", async () => {
    const refused = await world.runCli(["--project", "lan", "--host", "0.0.0.0", "--port", "0"]);
    assert.equal(refused.code, 2);
    assert.match(refused.out, /refusing to listen on 0\.0\.0\.0 without an explicit token/);
    assert.match(refused.out, /PI_COMS_NET_AUTH_TOKEN/);
    // A second hub for a project whose hub runs leaves the first one's store and token alone.
    const second = await world.runCli(["--project", "auth"], {
      PI_COMS_NET_AUTH_TOKEN: "another-token-0123456789abcdef",
    });
    assert.equal(second.code, 2);
    assert.match(second.out, /another hub/);
    assert.equal(world.secret("auth"), hub.token);
    const bad = await world.runCli(["--project", "lan", "--store", "paper"]);
    assert.equal(bad.code, 2);
    assert.match(bad.out, /--store must be sqlite or memory/);
    const help = await world.runCli(["--help"]);
    assert.equal(help.code, 0);
    for (const flag of ["--host", "--port", "--project", "--auth-token", "--store", "--max-message-bytes"]) {
      assert.ok(help.out.includes(flag), flag);
    }
  });

  it("an explicitly given token is used and stored for local clients", async () => {
    const token = "explicit-token-for-the-lan-0123456789";
    const lan = await world.startHub({ project: "given", env: { PI_COMS_NET_AUTH_TOKEN: token } });
    assert.equal(lan.token, token);
    assert.ok(!lan.output().includes(token));
    const client = await connectHub({ project: "given", env: world.env, name: "local" });
    world.defer(() => client.close());
    assert.equal(client.self.name, "local");
    assert.equal((await client.list()).length, 0);
  });
});
