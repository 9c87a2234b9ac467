/**
 * The hub's operator routes, independent of the HTTP runtime: the dashboard
 * page and its assets, sign-in and sign-out, one-time codes for the CLI, and
 * /metrics. Each runtime adapter turns its request into a PlainRequest and
 * writes the PlainResponse back (dashboard-mount.ts); the live data itself
 * travels over tRPC (admin.watch), which a dashboard session may call and
 * nothing else.
 *
 * The page and its scripts are public (they hold no data); the data needs a
 * session, whose id the sign-in answers in a JSON body that only the hub's
 * own page can read. The page keeps it in memory and sends it as a header:
 * no cookie, so no other server on the host ever receives it, and nothing
 * ambient for another origin to ride on.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { HubMetrics } from "../observe/metrics.ts";
import type { RequestAuth } from "./auth.ts";
import { type DashboardSessions, looksLikeCode, SESSION_HEADER } from "./dashboard-sessions.ts";

export const DASHBOARD_PATH = "/";
export const ASSET_PREFIX = "/dashboard/";
export const SIGN_IN_PATH = "/dashboard/sign-in";
export const SIGN_OUT_PATH = "/dashboard/sign-out";
export const CODE_PATH = "/dashboard/code";
export const METRICS_PATH = "/metrics";
/** The one tRPC path a dashboard session may use. */
export const ADMIN_WATCH_PATH = "/trpc/admin.watch";
const MAX_FORM_BYTES = 4096;

export interface PlainRequest {
  method: string;
  /** The path without the query. */
  path: string;
  header(name: string): string | null | undefined;
  remote: string | undefined;
  /** The body as text, refused (rejects) past `limit` bytes. */
  body(limit: number): Promise<string>;
}

export interface PlainResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface DashboardRoutesOptions {
  auth: RequestAuth;
  sessions: DashboardSessions;
  metrics: HubMetrics;
}

/** Pages and scripts only from this origin, never framed, nothing sent elsewhere. */
const PAGE_HEADERS = {
  "cache-control": "no-store",
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

const ASSET_TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  html: "text/html; charset=utf-8",
  svg: "image/svg+xml",
};
const JSON_HEADERS = { "content-type": "application/json", "cache-control": "no-store" };

/** The dashboard's static files: beside this module in a checkout, at the package root from dist/. */
function staticDir(): string {
  for (const relative of ["../dashboard/", "../../../hub/dashboard/"]) {
    const dir = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(`${dir}dashboard.html`)) return dir;
  }
  throw new Error("the dashboard's files (hub/dashboard/) are missing from this installation");
}

export class DashboardRoutes {
  private readonly opts: DashboardRoutesOptions;
  private readonly files = new Map<string, string>();

  constructor(opts: DashboardRoutesOptions) {
    this.opts = opts;
    const dir = staticDir();
    for (const name of readdirSync(dir)) {
      if (ASSET_TYPES[name.split(".").pop() ?? ""])
        this.files.set(name, readFileSync(`${dir}${name}`, "utf8"));
    }
  }

  /** Whether a request carries a live dashboard session (admin scope on ADMIN_WATCH_PATH only). */
  signedIn(header: PlainRequest["header"]): boolean {
    return this.opts.sessions.valid(header(SESSION_HEADER));
  }

  /** Whether `path` is one of these routes (checked synchronously, so tRPC calls pay nothing more). */
  owns(path: string): boolean {
    return path === DASHBOARD_PATH || path === METRICS_PATH || path.startsWith(ASSET_PREFIX);
  }

  /** The answer for a path that `owns`. */
  async handle(req: PlainRequest): Promise<PlainResponse> {
    const { method, path } = req;
    if (path === DASHBOARD_PATH) {
      return method === "GET" || method === "HEAD" ? this.page("dashboard.html") : notAllowed("GET");
    }
    if (path === SIGN_IN_PATH) return method === "POST" ? this.signIn(req) : notAllowed("POST");
    if (path === SIGN_OUT_PATH) return method === "POST" ? this.signOut(req) : notAllowed("POST");
    if (path === CODE_PATH) return method === "POST" ? this.code(req) : notAllowed("POST");
    if (path === METRICS_PATH) return method === "GET" ? this.scrape(req) : notAllowed("GET");
    if (path.startsWith(ASSET_PREFIX) && (method === "GET" || method === "HEAD")) {
      return this.asset(path.slice(ASSET_PREFIX.length));
    }
    return { status: 404, headers: { "content-type": "text/plain" }, body: "not found\n" };
  }

  private page(name: string): PlainResponse {
    const body = this.files.get(name) ?? "";
    return { status: 200, headers: { "content-type": ASSET_TYPES.html as string, ...PAGE_HEADERS }, body };
  }

  private asset(name: string): PlainResponse {
    const body = this.files.get(name);
    const type = ASSET_TYPES[name.split(".").pop() ?? ""];
    if (body === undefined || type === undefined || name.endsWith(".html")) {
      return { status: 404, headers: { "content-type": "text/plain" }, body: "not found\n" };
    }
    return { status: 200, headers: { "content-type": type, ...PAGE_HEADERS }, body };
  }

  /**
   * POST {"secret": token or code} as application/json: a page on another
   * origin cannot send that content type without a CORS preflight, which the
   * hub never grants, and could not read the answer anyway. No Origin or Host
   * check, so it works the same through a clustered hub's forwarding port.
   */
  private async signIn(req: PlainRequest): Promise<PlainResponse> {
    if (!/^application\/json\b/i.test(req.header("content-type") ?? "")) {
      return refusal(415, "sign in from the hub's page (a JSON body)");
    }
    let secret: string;
    try {
      const parsed = JSON.parse(await req.body(MAX_FORM_BYTES)) as { secret?: unknown };
      secret = typeof parsed?.secret === "string" ? parsed.secret.trim() : "";
    } catch (error) {
      return /over \d+ bytes/.test((error as Error).message)
        ? refusal(413, "that is too long for a hub token")
        : refusal(400, 'send {"secret": "<hub token or code>"}');
    }
    if (!secret) return refusal(400, "enter the hub token or a one-time code");
    const { auth, sessions } = this.opts;
    let voided = false;
    // A code is short, so it is only looked at outside a lockout and every wrong one is charged
    // (sessions.redeem); anything else is checked as the token. Wrong ones count against the
    // same per-address lockout as the API.
    const result = looksLikeCode(secret)
      ? auth.checkSecret(() => {
          const outcome = sessions.redeem(secret);
          voided = outcome === "voided";
          return outcome === "ok";
        }, req.remote)
      : auth.check((name) => (name === "authorization" ? `Bearer ${secret}` : undefined), req.remote);
    if (!result.ok) {
      if (result.status === 429) {
        return refusal(429, result.message, { "retry-after": String(result.retryAfterSec) });
      }
      return refusal(
        401,
        voided
          ? "wrong code; that was one wrong code too many, so every live code is void: run 'pi-coms hub open' again"
          : "wrong hub token or code",
      );
    }
    const session = sessions.open();
    return {
      status: 200,
      headers: JSON_HEADERS,
      body: JSON.stringify({ session: session.id, expires_in_sec: session.expiresInSec }),
    };
  }

  /** Ends the session named by the session header (which no other origin can know); one already gone is fine. */
  private signOut(req: PlainRequest): PlainResponse {
    this.opts.sessions.end(req.header(SESSION_HEADER));
    return { status: 204, headers: { "cache-control": "no-store" }, body: "" };
  }

  /** A one-time sign-in code for whoever holds the token (the CLI's `hub open`). */
  private code(req: PlainRequest): PlainResponse {
    const refused = this.bearer(req);
    if (refused) return refused;
    const { code, expiresInSec } = this.opts.sessions.newCode();
    return {
      status: 200,
      headers: JSON_HEADERS,
      body: JSON.stringify({ code, expires_in_sec: expiresInSec }),
    };
  }

  private async scrape(req: PlainRequest): Promise<PlainResponse> {
    const refused = this.bearer(req);
    if (refused) return refused;
    const { contentType, body } = await this.opts.metrics.scrape();
    return { status: 200, headers: { "content-type": contentType, "cache-control": "no-store" }, body };
  }

  private bearer(req: PlainRequest): PlainResponse | undefined {
    const result = this.opts.auth.check(req.header, req.remote);
    if (result.ok) return undefined;
    return {
      status: result.status,
      headers: {
        "content-type": "text/plain; charset=utf-8",
        ...(result.status === 429
          ? { "retry-after": String(result.retryAfterSec) }
          : { "www-authenticate": "Bearer" }),
      },
      body: `${result.message}\n`,
    };
  }
}

function notAllowed(allow: string): PlainResponse {
  return { status: 405, headers: { allow, "content-type": "text/plain" }, body: "method not allowed\n" };
}

function refusal(status: number, error: string, extra: Record<string, string> = {}): PlainResponse {
  return { status, headers: { ...JSON_HEADERS, ...extra }, body: JSON.stringify({ error }) };
}
