/**
 * The slow-reader attack on hub memory: SLOW_STREAMS inbox streams of one
 * agent that never read, then SLOW_MESSAGES messages of SLOW_BYTES for that
 * agent. Prints the hub's RSS and heap before, while the streams sit, after
 * the hub cut them (it does once a reader is --max-stream-buffer-bytes behind
 * and takes nothing for a stall period), and after the readers went away and a
 * full GC. Outside `npm test` (it takes a stall period, ~15 s, and thousands
 * of sockets).
 *
 *   npm run soak:slow-readers
 *   SLOW_STREAMS=2000 SLOW_MESSAGES=300 SLOW_BYTES=10240 node bench/slow-readers.ts
 *
 * A hub that caps inbox streams per agent keeps only that many of them open
 * (the oldest close): SLOW_HUB_ARGS="--max-streams-per-agent 0" measures the
 * uncapped attack. SLOW_ORDER=replay sends the flood first and opens the streams after (each
 * replays it on its own) instead of opening them first. SLOW_STORE picks the store (sqlite, default, or memory); SLOW_HUB_ARGS adds
 * hub flags (e.g. "--max-stream-buffer-bytes 65536"); the hub inherits this
 * environment (e.g. MALLOC_ARENA_MAX). Needs an open-file limit above twice
 * SLOW_STREAMS.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { type ClientRequest, get, type IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AGENT_ID_HEADER, AGENT_TOKEN_HEADER } from "../hub/http/auth.ts";
import { rawAgent } from "../test/support/hub-raw-client.ts";
import { memoryLine, ProbedHub } from "./probed-hub.ts";

const STREAMS = Number(process.env.SLOW_STREAMS ?? 2000);
const MESSAGES = Number(process.env.SLOW_MESSAGES ?? 300);
const BYTES = Number(process.env.SLOW_BYTES ?? 10_240);
const STORE = process.env.SLOW_STORE ?? "sqlite";
const REPLAY = process.env.SLOW_ORDER === "replay";
const EXTRA = (process.env.SLOW_HUB_ARGS ?? "").split(" ").filter(Boolean);

const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

const dir = mkdtempSync(join(tmpdir(), "pi-coms-slow-"));
const env = { ...process.env, HOME: dir, PI_COMS_NET_DIR: join(dir, "net"), PI_COMS_DIR: join(dir, "coms") };
const hub = new ProbedHub(dir, env, [
  ...["--project", "slow", "--store", STORE, "--max-sends-per-sec", "0"],
  ...EXTRA,
]);
const requests: ClientRequest[] = [];
const responses: IncomingMessage[] = [];
try {
  await hub.listening();
  const pid = hub.child.pid as number;
  console.log(
    `slow readers: ${STREAMS} stalled streams of one agent, ${MESSAGES} × ${BYTES} B for it, ${STORE} store, hub pid ${pid}`,
  );
  const victim = await rawAgent(hub.url, hub.token, "victim");
  const sender = await rawAgent(hub.url, hub.token, "sender");
  console.log(memoryLine("before", (await hub.memory({ gc: true })).memory));
  const input = encodeURIComponent(JSON.stringify({ json: { lastEventId: null } }));
  const headers = {
    authorization: `Bearer ${hub.token}`,
    [AGENT_ID_HEADER]: victim.card.id,
    [AGENT_TOKEN_HEADER]: victim.agentToken,
  };
  let refused = 0;
  const openStalled = async () => {
    for (let i = 0; i < STREAMS; i += 100) {
      await Promise.all(
        Array.from(
          { length: Math.min(100, STREAMS - i) },
          () =>
            new Promise<void>((done) => {
              const req = get(`${hub.url}/trpc/messages.inbox?input=${input}`, { headers }, (res) => {
                // A reader that never reads: the response is paused from its first byte.
                res.pause();
                if (res.statusCode !== 200) refused++;
                responses.push(res);
                done();
              });
              req.once("error", () => {
                refused++;
                done();
              });
              requests.push(req);
            }),
        ),
      );
    }
  };
  let sent = 0;
  let failed = 0;
  const flood = async () => {
    const prompt = "x".repeat(BYTES);
    for (let i = 0; i < MESSAGES; i += 10) {
      await Promise.all(
        Array.from({ length: Math.min(10, MESSAGES - i) }, () =>
          sender.client.messages.send.mutate({ to: "victim", prompt }).then(
            () => sent++,
            () => failed++,
          ),
        ),
      );
    }
  };
  // live: the streams sit before the flood, each event fans out to all; replay: the flood is queued
  // first and every new stream replays all of it on its own.
  if (REPLAY) {
    await flood();
    await openStalled();
  } else {
    await openStalled();
  }
  const open = fds(pid);
  console.log(
    memoryLine("streams open", (await hub.memory()).memory, `  hub fds ${open}  refused ${refused}`),
  );
  if (!REPLAY) await flood();
  let peak = 0;
  const watch = async (label: string, seconds: number) => {
    for (let s = 0; s < seconds; s += 5) {
      await sleep(5000);
      const { memory } = await hub.memory();
      peak = Math.max(peak, memory.rss);
      console.log(memoryLine(`${label} +${s + 5} s`, memory, `  hub fds ${fds(pid)}`));
    }
  };
  console.log(
    memoryLine(
      "flood sent",
      (await hub.memory()).memory,
      `  sent ${sent}  refused ${failed}  hub fds ${fds(pid)}`,
    ),
  );
  await watch("stalled", 25);
  for (const req of requests) req.destroy();
  await watch("readers gone", 10);
  const end = await hub.memory({ gc: true });
  console.log(
    memoryLine(
      "after full GC",
      end.memory,
      `  hub fds ${fds(pid)}  peak rss ${(peak / 2 ** 20).toFixed(1)} MiB`,
    ),
  );
} finally {
  for (const req of requests) req.destroy();
  await hub.stop();
  rmSync(dir, { recursive: true, force: true });
}
