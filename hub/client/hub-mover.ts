/**
 * Which of several hub URLs a client uses (hub/client/endpoints.ts says how
 * its list is ordered). When the one in use fails or goes silent it moves to
 * whichever other hub answers first, any answer at all (a hub failing over
 * answers 503, a hung one nothing), so it never lands on a hung hub and
 * waits out a request timeout there. While away from its preferred hub (the
 * first of its list) it checks now and then whether that one serves again,
 * and goes back once it does.
 */
import { HEALTH_PATH } from "../http/routes.ts";

/** How long a candidate hub may take to answer (a hub failing over holds requests up to 3 s first). */
const MOVE_PROBE_MS = 5_000;
const DRIFT_PROBE_MS = 2_000;
/** Moves at most this often: callers failing together after one move do not send the client round the list. */
const MIN_GAP_MS = 1_000;

export interface MoverHost {
  url: string;
  /** The client went back to its preferred hub: reopen the inbox stream there. */
  movedBack(): void;
  /** Not now (closed, or busy recovering): skip this drift check. */
  busy(): boolean;
}

export class HubMover {
  private readonly urls: string[];
  private readonly host: MoverHost;
  private readonly driftEveryMs: number;
  private moving: Promise<boolean> | undefined;
  private movedAt = 0;
  private driftTimer: NodeJS.Timeout | undefined;
  private closed = false;

  /** `urls`: this client's order, preferred first. */
  constructor(urls: string[], host: MoverHost, driftEveryMs: number) {
    this.urls = urls;
    this.host = host;
    this.driftEveryMs = Math.max(250, driftEveryMs);
  }

  get preferred(): string | undefined {
    return this.urls[0];
  }

  /** Move to another hub that answers; false when none did, or when the client moved a moment ago. */
  moveOn(): Promise<boolean> {
    if (this.closed || this.urls.length < 2) return Promise.resolve(false);
    if (this.moving) return this.moving;
    if (Date.now() - this.movedAt < MIN_GAP_MS) return Promise.resolve(false);
    this.moving = this.pick().finally(() => {
      this.moving = undefined;
    });
    return this.moving;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.driftTimer);
  }

  private async pick(): Promise<boolean> {
    const from = this.host.url;
    const others = this.urls.filter((url) => url !== from);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), MOVE_PROBE_MS);
    try {
      const first = await Promise.any(
        others.map(async (url) => {
          await fetch(`${url}${HEALTH_PATH}`, { signal: controller.signal }).then((r) => r.body?.cancel());
          return url;
        }),
      );
      if (this.closed || this.host.url !== from) return false;
      this.host.url = first;
      this.movedAt = Date.now();
      this.driftBack();
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }

  private driftBack(): void {
    const preferred = this.preferred;
    if (!preferred || this.driftTimer || this.closed || this.host.url === preferred) return;
    // Jittered, so clients that left one hub together do not come back in one burst.
    const every = this.driftEveryMs * (0.75 + Math.random() / 2);
    this.driftTimer = setTimeout(async () => {
      this.driftTimer = undefined;
      if (this.closed || this.host.url === preferred) return;
      if (!this.host.busy() && (await serves(preferred)) && !this.closed && !this.host.busy()) {
        this.host.url = preferred;
        this.movedAt = Date.now();
        this.host.movedBack();
        return;
      }
      this.driftBack();
    }, every);
    this.driftTimer.unref();
  }
}

/** Whether the hub at `url` serves now (its health check answers 200 in time). */
async function serves(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}${HEALTH_PATH}`, { signal: AbortSignal.timeout(DRIFT_PROBE_MS) });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}
