/**
 * The plugin in real pi with several hub URLs (two hubs on one Redis): when
 * the hub in use dies, the client moves to the next URL, and the pool widget
 * and `/coms-net status` name the hub it talks to now, not the one it first
 * connected to.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { type HubProcess, HubWorld, kill9 } from "./support/hub-harness.ts";
import { createPiWorld, dumpIfFailed, type PiProcess, type PiWorld } from "./support/pi-harness.ts";
import { type RedisServer, startRedis } from "./support/redis-server.ts";

const PLUGIN = join(import.meta.dirname, "..", "plugin", "index.ts");
const WIDGET = "pi-coms-pool";
const TOKEN = "plugin-urls-test-token-0123456789";
const PROJECT = "roaming";

describe("plugin: several hub URLs", () => {
  let redis: RedisServer;
  let world: PiWorld;
  let hubs: HubWorld;
  let pi: PiProcess;
  let first: HubProcess;
  let second: HubProcess;

  before(async () => {
    redis = await startRedis();
    hubs = new HubWorld({ PI_COMS_NET_AUTH_TOKEN: TOKEN, PI_COMS_NET_HEARTBEAT_MS: "300" });
    const onRedis = { project: PROJECT, args: ["--store", redis.url, "--lease-ms", "2000"] };
    first = await hubs.startHub(onRedis);
    second = await hubs.startHub(onRedis);
    world = await createPiWorld({ extensions: [PLUGIN], env: { PI_COMS_NET_HEARTBEAT_MS: "300" } });
    pi = await world.startPi({ name: "roamer" });
  });
  afterEach((t) => dumpIfFailed(t, pi));
  after(async () => {
    await world?.close();
    await hubs?.dispose();
    await redis?.dispose();
  });

  const notified = (command: string) => pi.notifiedBy(command);

  it("widget and status follow the client to the next hub when the first dies", async () => {
    const connected = await notified(
      `/coms-net connect --name roamer --project ${PROJECT} --url ${first.url},${second.url} --auth-token ${TOKEN}`,
    );
    assert.match(connected, /coms-net active as roamer/);
    // Clients spread over the list: this one starts on either hub.
    const shown = await pi.waitForWidget(WIDGET, (l) =>
      l.some((x) => x.startsWith(`coms-net ${first.url}`) || x.startsWith(`coms-net ${second.url}`)),
    );
    const [dying, other] = shown.some((x) => x.startsWith(`coms-net ${first.url}`))
      ? [first, second]
      : [second, first];

    await kill9(dying);
    const moved = await pi.waitForWidget(
      WIDGET,
      (l) =>
        l.some((x) => x.startsWith(`coms-net ${other.url}`)) && !l.some((x) => x.includes("UNREACHABLE")),
      { timeoutMs: 40_000 },
    );
    assert.ok(!moved.some((x) => x.includes(dying.url)), moved.join("\n"));
    const status = await notified("/coms-net status");
    assert.ok(status.includes(other.url) && !status.includes(dying.url), status);
  });
});
