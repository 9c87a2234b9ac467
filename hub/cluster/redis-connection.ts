/**
 * The hub's one connection to Redis (node-redis, @redis/client). Commands
 * fail at once while it is down instead of queueing (a send must be refused,
 * not held), and it reconnects forever with a capped backoff. The URL's
 * password never reaches a log line.
 */
import { createClient } from "@redis/client";

function newClient(url: string) {
  return createClient({
    url: checkRedisUrl(url),
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 5_000,
      reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000),
    },
  });
}

export type RedisConnection = ReturnType<typeof newClient>;

/** `redis://user:***@host:port/db`: safe to print. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable Redis URL)";
  }
}

export function checkRedisUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`bad Redis URL ${redactRedisUrl(url)}: use redis://[user:pass@]host:port[/db]`);
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new Error(`bad Redis URL ${redactRedisUrl(url)}: only redis:// and rediss:// (TLS) are supported`);
  }
  return url;
}

export function openRedis(url: string, log: (line: string) => void): RedisConnection {
  const client = newClient(url);
  const where = redactRedisUrl(url);
  let down = false;
  // One line per outage, not one per retry.
  client.on("error", (error: Error) => {
    if (down) return;
    down = true;
    log(`Redis at ${where} unreachable (${error.message}); retrying, sends are refused meanwhile`);
  });
  client.on("ready", () => {
    if (down) log(`Redis at ${where} reachable again`);
    down = false;
  });
  // Resolves once connected, however long Redis is down; the hub serves (refusing) meanwhile.
  client.connect().catch(() => {});
  return client;
}
