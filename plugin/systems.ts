/**
 * Bringing a system up and down. The transports are imported lazily, only
 * when a system is activated, and only their `ComsClient` is kept: the rest
 * of the plugin never sees a transport.
 */
import type { Message } from "../contract/schemas.ts";
import { projectFromCwd } from "../lib/project.ts";
import type { IdentityFlags, NetFlags } from "./flags.ts";
import { type ComsState, type HostedHub, type SystemKind, type SystemSlot, slotOf } from "./state.ts";

export interface StartContext {
  cwd: string;
  model: string;
  env?: NodeJS.ProcessEnv;
}

// Transports load on first use, so a session that never starts coms never loads them.
const loadP2P = () => import("../peer/node.ts");
const loadHubClient = () => import("../hub/client/hub-client.ts");
const loadDiscovery = () => import("../hub/client/discovery.ts");

/** Hand every inbound message to the global queue, then wake the loaded module (if any). */
function attach(state: ComsState, slot: SystemSlot): void {
  const kind = slot.kind;
  slot.unsubscribe.push(
    slot.client.onInbound((message: Message) => {
      const known =
        state.queue.some((item) => item.message.msg_id === message.msg_id) ||
        state.inFlight.some((batch) => batch.items.some((item) => item.message.msg_id === message.msg_id));
      if (known) return; // redelivery of something already held
      state.queue.push({ system: kind, message, arrivedAt: Date.now() });
      if (slot.peers.some((peer) => peer.id === message.from_id)) {
        state.hooks?.inbound(kind, message);
        return;
      }
      // A sender we have not listed yet: fetch its card first so the prompt can say who it is.
      const wake = () => state.hooks?.inbound(kind, message);
      Promise.race([
        slot.client.list({ include_explicit: true }).then((peers) => {
          slot.peers = peers;
        }),
        new Promise((resolve) => setTimeout(resolve, 2000).unref()),
      ]).then(wake, wake);
    }),
    slot.client.onPeers((peers) => {
      slot.peers = peers;
      state.hooks?.peers(kind);
    }),
  );
  // Hub unreachable or back: the same redraw as a change of peers (status line and widget).
  const onConnection = slot.client.onConnection?.bind(slot.client);
  if (onConnection) slot.unsubscribe.push(onConnection(() => state.hooks?.peers(kind)));
}

function busy(state: ComsState, kind: SystemKind): void {
  if (slotOf(state, kind)) throw new Error(`${kind === "p2p" ? "/coms" : "/coms-net"} is already active`);
  if (state.starting.has(kind))
    throw new Error(`${kind === "p2p" ? "/coms" : "/coms-net"} is already starting`);
}

export async function startP2PSystem(
  state: ComsState,
  flags: IdentityFlags,
  ctx: StartContext,
): Promise<SystemSlot> {
  busy(state, "p2p");
  state.starting.add("p2p");
  try {
    const { startP2P } = await loadP2P();
    const client = await startP2P({ ...flags, model: ctx.model, cwd: ctx.cwd, env: ctx.env });
    const slot: SystemSlot = {
      kind: "p2p",
      client,
      flags,
      project: client.self.project ?? flags.project ?? projectFromCwd(ctx.cwd),
      peers: [],
      unsubscribe: [],
    };
    state.p2p = slot;
    attach(state, slot);
    slot.peers = await client.list({ include_explicit: true }).catch(() => []);
    return slot;
  } finally {
    state.starting.delete("p2p");
  }
}

/** `/coms-net start` finds or spawns the project's hub; `connect` only joins (discovery or --url). */
export async function startHubSystem(
  state: ComsState,
  mode: "start" | "connect",
  flags: NetFlags,
  ctx: StartContext,
): Promise<SystemSlot> {
  busy(state, "hub");
  state.starting.add("hub");
  try {
    const project = flags.project ?? projectFromCwd(ctx.cwd);
    let url = flags.url;
    let token = flags.token;
    let hosted: HostedHub | null = null;
    if (mode === "start") {
      const { ensureHub } = await loadDiscovery();
      const hub = await ensureHub({
        project,
        host: flags.host,
        port: flags.port,
        token: flags.token,
        env: ctx.env,
      });
      url = hub.url;
      token = hub.token;
      const { readDiscovery } = await loadDiscovery();
      const record = hub.startedByMe ? readDiscovery(project, ctx.env) : undefined;
      if (record?.pid === hub.pid) hosted = { project, ...record };
    }
    const { connectHub } = await loadHubClient();
    const client = await connectHub({
      url,
      token,
      project,
      cwd: ctx.cwd,
      name: flags.name,
      purpose: flags.purpose,
      color: flags.color,
      explicit: flags.explicit,
      model: ctx.model,
      env: ctx.env,
    });
    const slot: SystemSlot = {
      kind: "hub",
      client,
      flags,
      mode,
      // The URL in use, not the one connected to: with several hub URLs the client moves between them.
      get url() {
        return client.url;
      },
      startedHub: false,
      project,
      peers: [],
      unsubscribe: [],
    };
    if (hosted) state.hostedHub = hosted;
    slot.startedHub = await hostsHub(state, slot, ctx.env);
    state.hub = slot;
    attach(state, slot);
    slot.peers = await client.list({ include_explicit: true }).catch(() => []);
    return slot;
  } finally {
    state.starting.delete("hub");
  }
}

/**
 * Leave a system. Prompts it delivered that are still queued or being
 * answered are settled with an error so their senders are not left waiting.
 */
export async function stopSystem(state: ComsState, kind: SystemKind): Promise<string[]> {
  const slot = slotOf(state, kind);
  if (!slot) return [];
  const notes: string[] = [];
  const orphaned = state.queue.filter((item) => item.system === kind);
  state.queue = state.queue.filter((item) => item.system !== kind);
  for (const batch of state.inFlight) {
    orphaned.push(...batch.items.filter((item) => item.system === kind));
    batch.items = batch.items.filter((item) => item.system !== kind);
  }
  state.inFlight = state.inFlight.filter((batch) => batch.items.length > 0);
  state.interrupted = state.interrupted.filter((wait) => wait.system !== kind);
  for (const item of orphaned) {
    await slot.client
      .settle(item.message.msg_id, {
        ok: false,
        code: "PEER_GONE",
        message: `${slot.client.self.name} left before answering`,
      })
      .catch(() => undefined);
  }
  if (orphaned.length) notes.push(`${orphaned.length} unanswered peer prompt(s) got an error reply`);
  for (const off of slot.unsubscribe.splice(0)) off();
  if (kind === "p2p") state.p2p = null;
  else state.hub = null;
  await slot.client
    .close()
    .catch((error: unknown) => notes.push(`leaving failed: ${(error as Error).message}`));
  return notes;
}

/**
 * Whether the hub this slot is joined to is the one this session started:
 * same project and URL, and that very process (pid and start time) is still
 * the project's running hub. A session that disconnects and connects again
 * stays its host; a hub restarted by someone else is theirs.
 */
export async function hostsHub(
  state: ComsState,
  slot: SystemSlot,
  env?: NodeJS.ProcessEnv,
): Promise<boolean> {
  const hosted = state.hostedHub;
  if (!hosted || hosted.project !== slot.project || hosted.url !== slot.url) return false;
  return runningHubIs(hosted, env);
}

async function runningHubIs(hosted: HostedHub, env?: NodeJS.ProcessEnv): Promise<boolean> {
  const { readDiscovery } = await loadDiscovery();
  const { pidAlive } = await import("../lib/process.ts");
  const record = readDiscovery(hosted.project, env);
  return record?.pid === hosted.pid && record.started_at === hosted.started_at && pidAlive(record.pid);
}

/** Shut down the hub this session started (only that one, and only while it is still that process). */
export async function stopHostedHub(state: ComsState, env?: NodeJS.ProcessEnv): Promise<string> {
  const hosted = state.hostedHub;
  if (!hosted) return "this session did not start a hub, so it leaves it running";
  state.hostedHub = null;
  const { stopHub } = await loadDiscovery();
  if (!(await runningHubIs(hosted, env)) || !(await stopHub(hosted.project, env, hosted)))
    return `the hub this session started for project ${hosted.project} is no longer running; a hub running there now was started elsewhere and keeps running`;
  return `hub for project ${hosted.project} stopped`;
}
