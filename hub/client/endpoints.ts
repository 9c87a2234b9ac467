/**
 * Several hub URLs for one project (hubs sharing a Redis store, or a hub
 * and its standby): "http://a:7000,http://b:7000". Clients given the same
 * list spread over it: each starts at its own place in the list (a random
 * place per process, then one further per client), which is its preferred
 * hub. When the one it uses stops answering it moves on to the next, round
 * robin (any hub of the project serves it the same streams), and once its
 * preferred hub answers again it drifts back there, so a failover does not
 * leave everyone piled on the hub that survived.
 */
import { randomInt } from "node:crypto";
import { toComsError } from "../../contract/errors.ts";

let position = randomInt(0, 2 ** 32);

/** Where this process's next client starts in a URL list. */
export function nextStartPosition(): number {
  return position++;
}

/** The list as one client goes round it: from `start` (modulo its length), its preferred hub first. */
export function spreadOrder(urls: string[], start: number): string[] {
  if (urls.length === 0) return [];
  const at = start % urls.length;
  return [...urls.slice(at), ...urls.slice(0, at)];
}

export function parseHubUrls(value: string): string[] {
  const urls = value
    .split(",")
    .map((url) => url.trim().replace(/\/+$/, ""))
    .filter((url) => url.length > 0);
  return [...new Set(urls)];
}

/**
 * Start `client` on the first URL that lets it in. A refusal that another hub
 * of the same project would repeat (bad credential, bad input) is thrown at once.
 */
export async function startOnFirst(
  client: { url: string; start(): Promise<void> },
  urls: string[],
): Promise<void> {
  let lastError: unknown;
  for (const url of urls.length > 0 ? urls : [client.url]) {
    client.url = url;
    try {
      await client.start();
      return;
    } catch (error) {
      const code = toComsError(error).code;
      if (code === "UNAUTHORIZED" || code === "BAD_INPUT" || code === "TOO_LARGE") throw error;
      lastError = error;
    }
  }
  throw lastError;
}
