/**
 * The CLI's identity on a hub, kept across invocations. A script or the
 * plugin joins for a session and leaves at the end; a shell user runs
 * `pi-coms send --net` now and `pi-coms get --net <msg_id>` later, from
 * another process. The hub keeps outcomes per sender, so the CLI saves the
 * agent credential it was given (0600, per project and name) and resumes it
 * next time, and it never leaves: the hub keeps its outcomes until they
 * expire. Nothing here subscribes or heartbeats; an idle CLI identity simply
 * goes stale, then offline, like a closed laptop.
 */
import { createTRPCClient, httpBatchLink, type TRPCClient } from "@trpc/client";
import superjson from "superjson";
import { z } from "zod";
import type { AwaitOptions } from "../contract/client.ts";
import { ComsError, toComsError } from "../contract/errors.ts";
import { ulid } from "../contract/ids.ts";
import type { ComsRouter } from "../contract/router.ts";
import {
  type AgentCard,
  AgentId,
  type Outcome,
  Secret,
  type SendAck,
  type SendInput,
} from "../contract/schemas.ts";
import { readDiscovery } from "../hub/client/discovery.ts";
import { AGENT_ID_HEADER, AGENT_TOKEN_HEADER } from "../hub/http/auth.ts";
import { TRPC_PATH } from "../hub/http/routes.ts";
import { hubPaths } from "../hub/paths.ts";
import { readSecret } from "../hub/secret.ts";
import { hubSettings } from "../lib/env.ts";
import { readJson, writeJsonAtomic } from "../lib/private-fs.ts";
import { projectFromCwd } from "../lib/project.ts";

const REQUEST_TIMEOUT_MS = 15_000;

const SavedIdentity = z.object({ id: AgentId, agent_token: Secret });
type SavedIdentity = z.infer<typeof SavedIdentity>;

export interface HubSessionOptions {
  name: string;
  purpose?: string;
  project?: string;
  url?: string;
  token?: string;
  env?: NodeJS.ProcessEnv;
}

/** The part of ComsClient the one-shot CLI commands use. */
export type OneShotClient = {
  readonly transport: "p2p" | "hub";
  readonly self: AgentCard;
  list(opts?: { include_explicit?: boolean }): Promise<AgentCard[]>;
  send(input: SendInput): Promise<SendAck>;
  get(msgId: string): Promise<Outcome>;
  await(msgId: string, opts?: AwaitOptions): Promise<Outcome>;
  close(): Promise<void>;
};

/** Where the CLI keeps its credential for one (project, name). */
export function identityPath(project: string, name: string, env?: NodeJS.ProcessEnv): string {
  return `${hubPaths(project, env).dir}/cli/${name}.json`;
}

export async function openHubSession(opts: HubSessionOptions): Promise<HubSession> {
  const env = opts.env ?? process.env;
  const settings = hubSettings(env);
  const project = opts.project ?? projectFromCwd();
  const url = opts.url ?? settings.serverUrl ?? readDiscovery(project, env)?.url;
  if (!url) {
    throw new ComsError(
      "PEER_GONE",
      `no hub found for project ${project}: start one with "pi-coms hub start", or give --url and --auth-token`,
    );
  }
  const secretPath = hubPaths(project, env).secret;
  const token = opts.token ?? settings.token ?? readSecret(secretPath);
  if (!token) {
    throw new ComsError(
      "UNAUTHORIZED",
      `no hub token: pass --auth-token, set PI_COMS_NET_AUTH_TOKEN, or run where ${secretPath} exists`,
    );
  }
  const session = new HubSession(url, token, identityPath(project, opts.name, env), settings.messageTtlMs);
  await session.register({
    name: opts.name,
    project,
    ...(opts.purpose !== undefined && { purpose: opts.purpose }),
  });
  return session;
}

export class HubSession implements OneShotClient {
  readonly transport = "hub" as const;
  private readonly trpc: TRPCClient<ComsRouter>;
  private readonly token: string;
  private readonly identityFile: string;
  private readonly replyTimeoutMs: number;
  private identity: SavedIdentity | undefined;
  private card: AgentCard | undefined;

  constructor(url: string, token: string, identityFile: string, replyTimeoutMs: number) {
    this.token = token;
    this.identityFile = identityFile;
    this.replyTimeoutMs = replyTimeoutMs;
    this.trpc = createTRPCClient<ComsRouter>({
      links: [
        httpBatchLink({
          url: `${url.replace(/\/+$/, "")}${TRPC_PATH}`,
          transformer: superjson,
          headers: () => this.headers(),
          fetch: (input, init) => {
            const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
            const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
            return fetch(input, { ...init, signal } as RequestInit);
          },
        }),
      ],
    });
  }

  get self(): AgentCard {
    if (!this.card) throw new ComsError("PEER_GONE", "not registered with the hub");
    return this.card;
  }

  private headers(): Record<string, string> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (this.identity) {
      headers[AGENT_ID_HEADER] = this.identity.id;
      headers[AGENT_TOKEN_HEADER] = this.identity.agent_token;
    }
    return headers;
  }

  /** Resume the saved identity, or register a new explicit one and save it. */
  async register(reg: { name: string; project: string; purpose?: string }): Promise<void> {
    const saved = SavedIdentity.safeParse(readJson(this.identityFile));
    const input = { ...reg, explicit: true };
    let result: Awaited<ReturnType<typeof this.trpc.agents.register.mutate>>;
    try {
      result = await this.trpc.agents.register.mutate(
        saved.success ? { ...input, resume: saved.data } : input,
      );
    } catch (error) {
      const coms = toComsError(error);
      // A refused resume (the hub knows that id under another credential) starts a new identity;
      // a wrong hub token fails the same way twice and is reported.
      if (coms.code !== "UNAUTHORIZED" || !saved.success) throw coms;
      try {
        result = await this.trpc.agents.register.mutate(input);
      } catch (again) {
        throw toComsError(again);
      }
    }
    this.identity = { id: result.card.id, agent_token: result.agent_token };
    this.card = result.card;
    if (!saved.success || saved.data.id !== result.card.id || saved.data.agent_token !== result.agent_token) {
      writeJsonAtomic(this.identityFile, this.identity);
    }
  }

  async list(opts: { include_explicit?: boolean } = {}): Promise<AgentCard[]> {
    return this.call(() => this.trpc.agents.list.query({ include_explicit: opts.include_explicit ?? false }));
  }

  async send(input: SendInput): Promise<SendAck> {
    // A client-chosen id keeps a retried send idempotent on the hub.
    return this.call(() => this.trpc.messages.send.mutate({ ...input, msg_id: input.msg_id ?? ulid() }));
  }

  async get(msgId: string): Promise<Outcome> {
    return this.call(() => this.trpc.messages.get.query({ msg_id: msgId }));
  }

  /** Polls (a short-lived process has no stream open), backing off to one request a second. */
  async await(msgId: string, opts: AwaitOptions = {}): Promise<Outcome> {
    const deadline = Date.now() + (opts.timeoutMs ?? this.replyTimeoutMs);
    let delay = 25;
    for (;;) {
      if (opts.signal?.aborted) throw new ComsError("CANCELLED", "cancelled while waiting for the reply");
      const outcome = await this.get(msgId);
      if (outcome.state !== "pending") return outcome;
      const left = deadline - Date.now();
      if (left <= 0) {
        return {
          state: "error",
          msg_id: msgId,
          code: "TIMEOUT",
          message: "no reply before the timeout; it may still come: pi-coms await --net",
        };
      }
      await sleepUnlessAborted(Math.min(delay, left), opts.signal);
      delay = Math.min(delay * 2, 1000);
    }
  }

  /** Nothing to release: the identity stays so a later invocation can read its outcomes. */
  async close(): Promise<void> {}

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw toComsError(error);
    }
  }
}

function sleepUnlessAborted(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
