#!/usr/bin/env node
/**
 * pi-coms-hub: run a hub by hand (or as the detached child of ensureHub).
 * Prints its URL and where the token is kept, never the token itself unless
 * --print-token is given.
 */
import { parseArgs } from "node:util";
import { checkedProject, projectFromCwd } from "../lib/project.ts";
import { startClusterHub } from "./cluster/cluster-hub.ts";
import { clusterSettings } from "./cluster/settings.ts";
import { isLoopback, startHubServer } from "./server.ts";

const HELP = `Usage: pi-coms-hub [options]

Run a pi-coms hub: the networked (/coms-net) side of pi-coms, over HTTP(S) + SSE.

Options:
  --host ADDR              bind address (default $PI_COMS_NET_HOST or 127.0.0.1);
                           a non-loopback address needs an explicit token
  --port N                 port (default $PI_COMS_NET_PORT or 0 = chosen by the OS)
  --project NAME           project namespace (default: derived from the current directory)
  --auth-token TOKEN       bearer token (default $PI_COMS_NET_AUTH_TOKEN, else the stored
                           or a newly generated one); prefer the variable: flags show in ps
  --tls-cert FILE          serve HTTPS with this PEM certificate (default $PI_COMS_NET_TLS_CERT)
  --tls-key FILE           and this PEM private key (default $PI_COMS_NET_TLS_KEY)
  --store sqlite|memory|redis://[user:pass@]host:port[/db]
                           durable SQLite store (default), a throwaway in-memory one, or a
                           shared Redis (rediss:// for TLS; default $PI_COMS_NET_REDIS_URL):
                           every hub on the same Redis and token serves the project
  --lease-ms N             Redis store: how long a dead active hub holds the project before
                           another takes over (default $PI_COMS_NET_LEASE_MS or 5000)
  --cluster-host ADDR      Redis store: bind address of the backend listener the other hubs
                           forward to (default $PI_COMS_NET_CLUSTER_HOST or --host)
  --cluster-port N         and its port (default $PI_COMS_NET_CLUSTER_PORT or 0 = any)
  --advertise-host NAME    the name other hubs reach it by (default $PI_COMS_NET_ADVERTISE_HOST,
                           else the cluster host, or this machine's name for a wildcard)
  --max-message-bytes N    largest prompt or reply accepted (default 262144)
  --max-agents N           most agents registered at once (default 4096)
  --max-sends-per-sec N    new messages per second per agent, bursts of twice that
                           (default $PI_COMS_NET_MAX_SENDS_PER_SEC or 1000; 0 = no limit)
  --dashboard-content on|off
                           prompt/reply previews on the web dashboard
                           (default $PI_COMS_NET_DASHBOARD_CONTENT or on)
  --max-stream-buffer-bytes N
                           cut an inbox stream whose reader is this many bytes behind; it
                           resumes where it was (default $PI_COMS_NET_MAX_STREAM_BUFFER_BYTES
                           or 262144)
  --max-queue N            unanswered messages one recipient may hold; a send past it is
                           refused QUEUE_FULL (default $PI_COMS_NET_MAX_QUEUE or 1000; 0 = no limit)
  --max-queued-bytes N     bytes of unanswered messages and of replies not yet taken by their
                           senders the whole hub may hold (as --max-message-bytes counts them); a send past
                           it is refused QUEUE_FULL (default $PI_COMS_NET_MAX_QUEUED_BYTES or
                           1073741824 = 1 GiB; 0 = no limit)
  --max-queued-bytes-per-agent N
                           each agent's share of that: bytes held for it as a sender (its
                           unanswered messages, its replies not yet taken) and bytes of its
                           queue as a recipient; a send past either is refused QUEUE_FULL, so
                           one agent cannot fill the hub for the others (default
                           $PI_COMS_NET_MAX_QUEUED_BYTES_PER_AGENT or an eighth of
                           --max-queued-bytes; 0 = no share)
  --max-streams-per-agent N
                           inbox streams open at once per agent; a new one past it closes
                           that agent's oldest (default $PI_COMS_NET_MAX_STREAMS_PER_AGENT or 8)
  --reap-after-ms N        remove an agent offline this long, or registered this long without
                           opening its inbox; what was queued to it ends PEER_GONE
                           (default $PI_COMS_NET_REAP_AFTER_MS or 300000; 0 = never)
  --max-pending-registrations N
                           agents registered but not yet connected, at most; more are refused
                           (default $PI_COMS_NET_MAX_PENDING_REGISTRATIONS or 256; 0 = no limit)
  --stream-grace-ms N      an agent whose inbox stream closed and that opens none again within
                           this long is gone: what it was handed and has not answered ends
                           PEER_GONE (default $PI_COMS_NET_STREAM_GRACE_MS or 3000; 0 = only
                           when its presence lapses)
  --print-token            also print the token
  -h, --help               show this help

Files: ~/.pi/coms-net/projects/<project>/ ($PI_COMS_NET_DIR/projects/<project>/):
  server.secret.json (token, 0600), server.json (url, pid, started_at), hub.sqlite (queues).
`;

function fail(message: string): never {
  process.stderr.write(`pi-coms-hub: ${message}\n`);
  process.exit(2);
}

function intOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    fail(`--${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

async function main(): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        host: { type: "string" },
        port: { type: "string" },
        project: { type: "string" },
        "auth-token": { type: "string" },
        store: { type: "string" },
        "lease-ms": { type: "string" },
        "cluster-host": { type: "string" },
        "cluster-port": { type: "string" },
        "advertise-host": { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        "max-message-bytes": { type: "string" },
        "max-agents": { type: "string" },
        "max-sends-per-sec": { type: "string" },
        "dashboard-content": { type: "string" },
        "max-stream-buffer-bytes": { type: "string" },
        "max-queue": { type: "string" },
        "max-queued-bytes": { type: "string" },
        "max-queued-bytes-per-agent": { type: "string" },
        "max-streams-per-agent": { type: "string" },
        "reap-after-ms": { type: "string" },
        "max-pending-registrations": { type: "string" },
        "stream-grace-ms": { type: "string" },
        "print-token": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    fail(`${(error as Error).message}\n\n${HELP}`);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  let cluster: ReturnType<typeof clusterSettings>;
  try {
    cluster = clusterSettings();
  } catch (error) {
    fail((error as Error).message);
  }
  const store = (values.store as string | undefined) ?? (cluster.redisUrl ? "redis" : "sqlite");
  const redisUrl = /^rediss?:\/\//.test(store) ? store : store === "redis" ? cluster.redisUrl : undefined;
  if (store !== "sqlite" && store !== "memory" && redisUrl === undefined)
    fail(`--store must be sqlite or memory, or a redis:// (rediss://) URL, got ${JSON.stringify(store)}`);
  let project: string;
  try {
    project = checkedProject((values.project as string | undefined) ?? projectFromCwd());
  } catch (error) {
    fail(`--project: ${(error as Error).message}`);
  }
  const port = intOption("port", values.port as string | undefined);
  const content = values["dashboard-content"] as string | undefined;
  if (content !== undefined && content !== "on" && content !== "off")
    fail(`--dashboard-content must be on or off, got ${JSON.stringify(content)}`);
  if (port !== undefined && port > 65535) fail("--port must be at most 65535");
  const common = {
    project,
    discovery: true,
    ...(values.host !== undefined ? { host: values.host as string } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(values["auth-token"] !== undefined ? { token: values["auth-token"] as string } : {}),
    ...(values["tls-cert"] !== undefined ? { tlsCert: values["tls-cert"] as string } : {}),
    ...(values["tls-key"] !== undefined ? { tlsKey: values["tls-key"] as string } : {}),
    ...(content !== undefined ? { dashboardContent: content === "on" } : {}),
    ...optional(
      "maxMessageBytes",
      intOption("max-message-bytes", values["max-message-bytes"] as string | undefined),
    ),
    ...optional("maxAgents", intOption("max-agents", values["max-agents"] as string | undefined)),
    ...optional(
      "maxSendsPerSec",
      intOption("max-sends-per-sec", values["max-sends-per-sec"] as string | undefined),
    ),
    ...optional(
      "maxStreamBufferBytes",
      intOption("max-stream-buffer-bytes", values["max-stream-buffer-bytes"] as string | undefined),
    ),
    ...optional("maxQueue", intOption("max-queue", values["max-queue"] as string | undefined)),
    ...optional(
      "maxQueuedBytes",
      intOption("max-queued-bytes", values["max-queued-bytes"] as string | undefined),
    ),
    ...optional(
      "maxQueuedBytesPerAgent",
      intOption("max-queued-bytes-per-agent", values["max-queued-bytes-per-agent"] as string | undefined),
    ),
    ...optional(
      "maxStreamsPerAgent",
      intOption("max-streams-per-agent", values["max-streams-per-agent"] as string | undefined),
    ),
    ...optional("reapAfterMs", intOption("reap-after-ms", values["reap-after-ms"] as string | undefined)),
    ...optional(
      "maxPendingRegistrations",
      intOption("max-pending-registrations", values["max-pending-registrations"] as string | undefined),
    ),
    ...optional(
      "streamGraceMs",
      intOption("stream-grace-ms", values["stream-grace-ms"] as string | undefined),
    ),
  };
  const hub = await (redisUrl !== undefined
    ? startClusterHub({
        ...common,
        redisUrl,
        leaseMs: intOption("lease-ms", values["lease-ms"] as string | undefined) ?? cluster.leaseMs,
        clusterPort:
          intOption("cluster-port", values["cluster-port"] as string | undefined) ?? cluster.clusterPort,
        ...optionalString(
          "clusterHost",
          (values["cluster-host"] as string | undefined) ?? cluster.clusterHost,
        ),
        ...optionalString(
          "advertiseHost",
          (values["advertise-host"] as string | undefined) ?? cluster.advertiseHost,
        ),
      })
    : startHubServer({ ...common, store: store as "sqlite" | "memory" })
  ).catch((error: Error) => fail(error.message));
  const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "node";
  process.stdout.write(
    `pi-coms hub for project ${project} listening on ${hub.url} (${runtime}, ${"redis" in hub ? `redis store at ${hub.redis}` : `${hub.store} store`})\n` +
      `token kept in ${hub.paths.secret}\n` +
      `dashboard: ${hub.url}/ (sign in with the token, or a code from 'pi-coms hub open'); metrics: ${hub.url}/metrics\n`,
  );
  if (values["print-token"]) process.stdout.write(`token: ${hub.token}\n`);
  if (!hub.tls && !isLoopback(hub.host)) {
    process.stderr.write(
      "pi-coms-hub: warning: reachable from other machines over plain HTTP: the token and every message " +
        "travel unencrypted; use --tls-cert/--tls-key, a TLS proxy or a VPN\n",
    );
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`pi-coms hub stopping (${signal})\n`);
    hub.close().then(
      () => process.exit(0),
      (error: Error) => {
        process.stderr.write(`pi-coms-hub: ${error.message}\n`);
        process.exit(1);
      },
    );
  };
  // One failed request must not take every agent's hub down; what it had accepted is on disk anyway.
  process.on("unhandledRejection", (error) => {
    process.stderr.write(`pi-coms-hub: unhandled: ${(error as Error)?.message ?? String(error)}\n`);
  });
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGHUP", () => stop("SIGHUP"));
}

function optionalString<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

function optional<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}

await main();
