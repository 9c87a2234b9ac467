/**
 * Which session hosts the hub, in real pi over RPC: the session that
 * started it stays its host across `/coms-net disconnect` and `connect`
 * (status, status line and stop agree), another session is never its host,
 * and once that hub process is gone and another session started a new one,
 * the first session's `/coms-net stop` leaves the new hub running.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { findHub, readDiscovery } from "../hub/client/discovery.ts";
import { projectFromCwd } from "../lib/project.ts";
import {
  createPiWorld,
  dumpIfFailed,
  type PiProcess,
  type PiWorld,
  processAlive,
} from "./support/pi-harness.ts";

const PLUGIN = new URL("../plugin/index.ts", import.meta.url).pathname;
const STATUS = "pi-coms";

describe("the hub's host in real pi", () => {
  let world: PiWorld;
  let host: PiProcess;
  let guest: PiProcess;
  let project: string;
  const env = () => ({ ...process.env, PI_COMS_NET_DIR: world.comsNetDir });

  before(async () => {
    world = await createPiWorld({ extensions: [PLUGIN] });
    [host, guest] = await Promise.all([world.startPi({ name: "host" }), world.startPi({ name: "guest" })]);
    project = projectFromCwd(world.project);
  });
  afterEach((t) => dumpIfFailed(t, host, guest));
  after(async () => {
    await world?.close();
  });

  it("stays the host across disconnect and connect: status, status line and stop agree", async () => {
    assert.match(await host.notifiedBy("/coms-net start --name host"), /started the hub at/);
    assert.match(await host.notifiedBy("/coms-net status"), /started by this session: yes/);
    assert.match(host.status(STATUS) ?? "", /coms-net: host \(hub host\)/);

    assert.match(await host.notifiedBy("/coms-net disconnect"), /disconnected; the hub keeps running/);
    assert.match(await host.notifiedBy("/coms-net connect"), /coms-net active as host/);
    assert.match(await host.notifiedBy("/coms-net status"), /started by this session: yes/);
    assert.match(host.status(STATUS) ?? "", /coms-net: host \(hub host\)/);

    // Another session on the same hub is not its host, and its stop leaves the hub alone.
    await guest.prompt("/coms-net connect --name guest");
    assert.match(await guest.notifiedBy("/coms-net status"), /started by this session: no/);
    assert.doesNotMatch(guest.status(STATUS) ?? "", /hub host/);
    assert.match(await guest.notifiedBy("/coms-net stop"), /did not start a hub, so it leaves it running/);
    assert.ok(await findHub(project, env()), "the hub still runs after the guest's stop");

    assert.match(await host.notifiedBy("/coms-net stop"), new RegExp(`hub for project ${project} stopped`));
    assert.equal(await findHub(project, env()), null);
  });

  it("a hub restarted by another session is not the first starter's to stop", async () => {
    assert.match(await host.notifiedBy("/coms-net start --name host"), /started the hub at/);
    const first = readDiscovery(project, env());
    assert.ok(first);
    await host.prompt("/coms-net disconnect");
    process.kill(first.pid, "SIGKILL");
    await waitUntil(() => !processAlive(first.pid), "the first hub to exit");

    assert.match(await guest.notifiedBy("/coms-net start --name guest"), /started the hub at/);
    const second = readDiscovery(project, env());
    assert.ok(second && second.pid !== first.pid);

    await host.prompt("/coms-net connect");
    assert.match(await host.notifiedBy("/coms-net status"), /started by this session: no/);
    assert.doesNotMatch(host.status(STATUS) ?? "", /hub host/);
    assert.match(await host.notifiedBy("/coms-net stop"), /no longer running; a hub running there now/);
    assert.equal((await findHub(project, env()))?.pid, second.pid, "the guest's hub keeps running");

    assert.match(await guest.notifiedBy("/coms-net stop"), /stopped/);
    assert.equal(await findHub(project, env()), null);
  });
});

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
