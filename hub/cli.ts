#!/usr/bin/env node
/**
 * pi-coms-hub: run a hub by hand (or as the detached child of ensureHub).
 * Prints its URL and where the token is kept, never the token itself unless
 * --print-token is given.
 */
import { parseArgs } from "node:util";
import { parseSqliteSync, type SqliteSync } from "../lib/env.ts";
import { checkedProject, projectFromCwd } from "../lib/project.ts";
import { HUB_HELP as HELP, HUB_OPTIONS } from "./cli-options.ts";
import { startClusterHub } from "./cluster/cluster-hub.ts";
import { clusterSettings } from "./cluster/settings.ts";
import { isLoopback, startHubServer } from "./server.ts";

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
      options: HUB_OPTIONS,
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
  const syncFlag = values["sqlite-sync"] as string | undefined;
  let sync: SqliteSync | undefined;
  if (syncFlag !== undefined) {
    try {
      sync = parseSqliteSync("--sqlite-sync", syncFlag);
    } catch (error) {
      fail((error as Error).message);
    }
    if (store !== "sqlite")
      fail("--sqlite-sync applies to the SQLite store only (on Redis, its appendfsync decides)");
  }
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
    : startHubServer({
        ...common,
        store: store as "sqlite" | "memory",
        ...(sync !== undefined ? { sqliteSync: sync } : {}),
      })
  ).catch((error: Error) => fail(error.message));
  const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "node";
  process.stdout.write(
    `pi-coms hub for project ${project} listening on ${hub.url} (${runtime}, ${"redis" in hub ? `redis store at ${hub.redis}` : `${hub.store} store${hub.sqliteSync === "full" ? ", fsync per commit" : ""}`})\n` +
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
