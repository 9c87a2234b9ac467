/**
 * Reading the hub's admin.watch stream as a browser does (plain SSE over
 * fetch), for tests that check the dashboard's data without a browser.
 */
import type { AdminEvent } from "../../contract/admin.ts";

export interface AdminStream {
  /** Resolves with the first event (from now on, or already seen) that `match` accepts. */
  next(match: (event: AdminEvent) => boolean, what?: string): Promise<AdminEvent>;
  close(): void;
}

/** Open admin.watch with these headers (a bearer token or a session header); rejects with the status if refused. */
export async function openAdminStream(url: string, headers: Record<string, string>): Promise<AdminStream> {
  const abort = new AbortController();
  const response = await fetch(new URL("/trpc/admin.watch", url), { headers, signal: abort.signal });
  if (response.status !== 200 || !response.body) {
    abort.abort();
    throw new Error(`admin.watch answered ${response.status}`);
  }
  const events: AdminEvent[] = [];
  const waiters = new Set<() => void>();
  let ended = false;
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let cut = buffer.indexOf("\n\n");
        while (cut >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          cut = buffer.indexOf("\n\n");
          if (/^event:/m.test(block)) continue;
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (data) events.push((JSON.parse(data) as { json: AdminEvent }).json);
        }
        for (const wake of waiters) wake();
      }
    } catch {
      // aborted
    } finally {
      ended = true;
      for (const wake of waiters) wake();
    }
  })();
  let seen = 0;
  return {
    async next(match, what = "an admin event") {
      while (true) {
        while (seen < events.length) {
          const event = events[seen++] as AdminEvent;
          if (match(event)) return event;
        }
        if (ended) throw new Error(`admin.watch ended before ${what}`);
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 15_000);
          const wake = () => {
            clearTimeout(timer);
            waiters.delete(wake);
            resolve();
          };
          waiters.add(wake);
        });
      }
    },
    close: () => abort.abort(),
  };
}

/** Sign in as the page does (a JSON post); returns the session id, or the refusal status and message. */
export async function signIn(
  url: string,
  secret: string,
): Promise<{ status: number; session?: string; error?: string }> {
  const response = await fetch(new URL("/dashboard/sign-in", url), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ secret }),
  });
  const answer = (await response.json().catch(() => ({}))) as { session?: string; error?: string };
  return { status: response.status, ...answer };
}

/** The request header that carries a dashboard session. */
export function sessionHeader(session: string | undefined): Record<string, string> {
  return { "x-pi-coms-session": session ?? "" };
}

/** The value of one sample in a Prometheus exposition (0 when absent). */
export function sample(text: string, name: string, labels = ""): number {
  const line = text.split("\n").find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}
