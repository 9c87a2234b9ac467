/** What the two HTTP adapters (Node, Bun) share: their options, their handle, and the routes. */

import type { AdminBackend } from "../../contract/admin.ts";
import type { HubBackend } from "../backend/backend.ts";
import type { RequestAuth } from "./auth.ts";
import type { DashboardRoutes } from "./dashboard-routes.ts";

export const TRPC_PATH = "/trpc";
export const HEALTH_PATH = "/healthz";
export const HEALTH_BODY = '{"ok":true}';

export interface ServeOptions {
  host: string;
  port: number;
  backend: HubBackend;
  auth: RequestAuth;
  /** Largest request body accepted, in bytes (413 above). */
  maxBodyBytes: number;
  /** Serve HTTPS with this PEM certificate and key (plain HTTP without). */
  tls?: { cert: string; key: string };
  /** The operator routes (dashboard, sign-in, /metrics), served ahead of tRPC. */
  dashboard?: DashboardRoutes;
  /** The admin scope (admin.watch), given to requests with the hub token or a dashboard session. */
  admin?: AdminBackend;
}

export interface ServedHub {
  port: number;
  /** Stop listening and drop every open connection (streams included). */
  close(): Promise<void>;
}
