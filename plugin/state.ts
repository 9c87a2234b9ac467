/**
 * Everything that must outlive one load of this extension. `/reload`
 * re-evaluates every module, so live clients, their flags and the inbound
 * queues sit in one `globalThis` slot; the fresh module instance adopts them
 * in `session_start` (reason "reload") instead of re-joining from scratch.
 */
import type { ComsClient } from "../contract/client.ts";
import type { AgentCard, Message } from "../contract/schemas.ts";
import type { SystemKind } from "../tools/names.ts";
import type { IdentityFlags, NetFlags } from "./flags.ts";

export type { SystemKind };

/** One active system: its client and what is needed to show, re-join or stop it. */
export interface SystemSlot {
  kind: SystemKind;
  client: ComsClient;
  /** The flags it was started with (re-applied if it has to re-join). */
  flags: IdentityFlags | NetFlags;
  /** Hub only: how it was joined, where, and whether this session hosts it (see `hostedHub`). */
  mode?: "start" | "connect";
  url?: string;
  startedHub?: boolean;
  project: string;
  peers: AgentCard[];
  /** Unsubscribe functions for the client hooks; they call through `state.hooks`. */
  unsubscribe: Array<() => void>;
}

export interface InboundItem {
  system: SystemKind;
  message: Message;
  arrivedAt: number;
  /** Shown before in a batch and left without a reply tool call: goes again on its own. */
  alone?: boolean;
}

export interface InFlightBatch {
  id: string;
  items: InboundItem[];
  /** "turn": started a turn while idle; "steer": slipped into a running turn after an interrupted await. */
  via: "turn" | "steer";
  /**
   * "final": one prompt, answered by the agent's final text (or the reply tool);
   * "tool": several prompts, each answered only through the reply tool, so no
   * sender ever receives text meant for another.
   */
  answerBy: "final" | "tool";
  injectedAt: number;
}

/** A `*_await` that a peer prompt cut short; the agent is reminded to wait again once it has answered. */
export interface InterruptedAwait {
  system: SystemKind;
  msgId: string;
  to: string;
}

export interface HostedHub {
  project: string;
  url: string;
  pid: number;
  started_at: number;
}

/** Callbacks of the module instance currently loaded; replaced on reload. */
export interface Hooks {
  inbound(system: SystemKind, message: Message): void;
  peers(system: SystemKind): void;
}

export interface ComsState {
  p2p: SystemSlot | null;
  hub: SystemSlot | null;
  /** Systems being started right now, so a second `start` does not race the first. */
  starting: Set<SystemKind>;
  queue: InboundItem[];
  inFlight: InFlightBatch[];
  interrupted: InterruptedAwait[];
  /** Recipient of each message this session sent, for messages about waits (bounded). */
  sent: Map<string, { to: string; system: SystemKind }>;
  /** Identity typed in an earlier `start` (either system); the other system's start uses it unless given again. */
  chosen: IdentityFlags;
  /**
   * The hub this session started and has not stopped: it stays this
   * session's across disconnect/connect for as long as that same process
   * (pid and start time) is the project's running hub.
   */
  hostedHub: HostedHub | null;
  hooks: Hooks | null;
}

// index.ts checks this slot to tell whether coms is in use without loading this module.
const SLOT = Symbol.for("pi-coms.plugin.state.v1");

export function comsState(): ComsState {
  const holder = globalThis as unknown as Record<symbol, ComsState | undefined>;
  let state = holder[SLOT];
  if (!state) {
    state = {
      p2p: null,
      hub: null,
      starting: new Set(),
      queue: [],
      inFlight: [],
      interrupted: [],
      sent: new Map(),
      chosen: {},
      hostedHub: null,
      hooks: null,
    };
    holder[SLOT] = state;
  }
  return state;
}

/** Forget everything (process shutdown, tests). */
export function resetComsState(): void {
  const holder = globalThis as unknown as Record<symbol, ComsState | undefined>;
  delete holder[SLOT];
}

export function slotOf(state: ComsState, kind: SystemKind): SystemSlot | null {
  return kind === "p2p" ? state.p2p : state.hub;
}
