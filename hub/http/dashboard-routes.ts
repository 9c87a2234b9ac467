/**
 * The hub's operator routes, independent of the HTTP runtime: the dashboard
 * page and its assets, sign-in and sign-out, one-time codes for the CLI, and
 * /metrics. Each runtime adapter turns its request into a PlainRequest and
 * writes the PlainResponse back (dashboard-mount.ts); the live data itself
 * travels over tRPC (admin.watch), which a dashboard session may call and
 * nothing else.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { HubMetrics } from "../observe/metrics.ts";
import type { RequestAuth } from "./auth.ts";
import { type DashboardSessions, SESSION_COOKIE } from "./dashboard-sessions.ts";

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
  /** Served over HTTPS: the cookie gets Secure. */
  tls: boolean;
}

/** Pages and scripts only from this origin, never framed, nothing sent elsewhere. */
const PAGE_HEADERS = {
  "cache-control": "no-store",
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  // Not no-referrer: with it Chromium sends `Origin: null` on the sign-in post, which the origin check refuses.
  "referrer-policy": "same-origin",
};

const ASSET_TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  html: "text/html; charset=utf-8",
};

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
    for (const name of ["dashboard.html", "sign-in.html", "app.css", "app.js", "render.js", "state.js"]) {
      this.files.set(name, readFileSync(`${dir}${name}`, "utf8"));
    }
  }

  /** Whether a request's cookie is a live dashboard session (admin scope on ADMIN_WATCH_PATH only). */
  signedIn(header: PlainRequest["header"]): boolean {
    return this.opts.sessions.valid(header("cookie") ?? undefined);
  }

  /** Whether `path` is one of these routes (checked synchronously, so tRPC calls pay nothing more). */
  owns(path: string): boolean {
    return path === DASHBOARD_PATH || path === METRICS_PATH || path.startsWith(ASSET_PREFIX);
  }

  /** The answer for a path that `owns`. */
  async handle(req: PlainRequest): Promise<PlainResponse> {
    const { method, path } = req;
    if (path === DASHBOARD_PATH) {
      if (method !== "GET" && method !== "HEAD") return notAllowed("GET");
      if (this.signedIn(req.header)) return this.page("dashboard.html", 200);
      return this.signInPage(200, "");
    }
    if (path === SIGN_IN_PATH) return method === "POST" ? this.signIn(req) : notAllowed("POST");
    if (path === SIGN_OUT_PATH) return method === "POST" ? this.signOut(req) : notAllowed("POST");
    if (path === CODE_PATH) return method === "POST" ? this.code(req) : notAllowed("POST");
    if (path === METRICS_PATH) return method === "GET" ? this.scrape(req) : notAllowed("GET");
    if (path.startsWith(ASSET_PREFIX) && (method === "GET" || method === "HEAD")) {
      return this.asset(req, path.slice(ASSET_PREFIX.length));
    }
    return { status: 404, headers: { "content-type": "text/plain" }, body: "not found\n" };
  }

  private page(name: string, status: number, replace?: [string, string]): PlainResponse {
    let body = this.files.get(name) ?? "";
    if (replace) body = body.replace(replace[0], replace[1]);
    return { status, headers: { "content-type": ASSET_TYPES.html as string, ...PAGE_HEADERS }, body };
  }

  private signInPage(status: number, error: string, extra: Record<string, string> = {}): PlainResponse {
    const message = error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : "";
    const page = this.page("sign-in.html", status, ["<!--error-->", message]);
    return { ...page, headers: { ...page.headers, ...extra } };
  }

  private asset(req: PlainRequest, name: string): PlainResponse {
    const body = this.files.get(name);
    const type = ASSET_TYPES[name.split(".").pop() ?? ""];
    if (body === undefined || type === undefined || name.endsWith(".html")) {
      return { status: 404, headers: { "content-type": "text/plain" }, body: "not found\n" };
    }
    // The stylesheet dresses the sign-in form too; the scripts are for signed-in operators only.
    if (type !== ASSET_TYPES.css && !this.signedIn(req.header)) {
      return {
        status: 401,
        headers: { "content-type": "text/plain", ...PAGE_HEADERS },
        body: "sign in first\n",
      };
    }
    return { status: 200, headers: { "content-type": type, ...PAGE_HEADERS }, body };
  }

  private async signIn(req: PlainRequest): Promise<PlainResponse> {
    if (!sameOrigin(req)) return this.signInPage(403, "sign in from the hub's own page");
    let secret: string;
    try {
      secret = new URLSearchParams(await req.body(MAX_FORM_BYTES)).get("secret")?.trim() ?? "";
    } catch {
      return this.signInPage(413, "that is too long for a hub token");
    }
    if (!secret) return this.signInPage(400, "enter the hub token or a one-time code");
    // A live one-time code proves the token already; anything else is checked as the token, and a
    // wrong one counts against the same per-address lockout as the API.
    if (!this.opts.sessions.redeem(secret)) {
      const result = this.opts.auth.check(
        (name) => (name === "authorization" ? `Bearer ${secret}` : undefined),
        req.remote,
      );
      if (!result.ok) {
        return result.status === 429
          ? this.signInPage(429, result.message, { "retry-after": String(result.retryAfterSec) })
          : this.signInPage(401, "wrong hub token or code");
      }
    }
    const session = this.opts.sessions.open();
    const secure = this.opts.tls ? "; Secure" : "";
    return {
      status: 303,
      headers: {
        location: DASHBOARD_PATH,
        "set-cookie": `${SESSION_COOKIE}=${session.id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${session.maxAgeSec}${secure}`,
        "cache-control": "no-store",
      },
      body: "",
    };
  }

  private signOut(req: PlainRequest): PlainResponse {
    if (!sameOrigin(req))
      return { status: 403, headers: { "content-type": "text/plain" }, body: "forbidden\n" };
    this.opts.sessions.end(req.header("cookie") ?? undefined);
    return {
      status: 303,
      headers: {
        location: DASHBOARD_PATH,
        "set-cookie": `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`,
        "cache-control": "no-store",
      },
      body: "",
    };
  }

  /** A one-time sign-in code for whoever holds the token (the CLI's `hub open`). */
  private code(req: PlainRequest): PlainResponse {
    const refused = this.bearer(req);
    if (refused) return refused;
    const { code, expiresInSec } = this.opts.sessions.newCode();
    return {
      status: 200,
      headers: { "content-type": "application/json", "cache-control": "no-store" },
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

/** A browser's form post carries Origin; one from another site is refused (login CSRF). */
function sameOrigin(req: PlainRequest): boolean {
  const origin = req.header("origin");
  if (!origin || origin === "null") return !origin;
  try {
    return new URL(origin).host === req.header("host");
  } catch {
    return false;
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
