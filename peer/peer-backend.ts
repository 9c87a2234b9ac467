/**
 * What a node serves to its peers over its socket. Only the peer-to-peer
 * part of the contract: registration, heartbeats and the inbox stream
 * belong to the hub, where an agent is not its own server.
 */
import { comsError } from "../contract/errors.ts";
import type { Caller, ComsBackend } from "../contract/router.ts";
import type { AgentCard } from "../contract/schemas.ts";
import { tokensEqual } from "../lib/secrets.ts";
import type { Inbox } from "./inbox.ts";
import type { OwnCard } from "./own-card.ts";
import { cardOf, type Registry } from "./registry.ts";

export interface BackendHost {
  registry: Registry;
  inbox: Inbox;
  own: OwnCard;
  maxHops: number;
  closed(): boolean;
  list(input: { include_explicit?: boolean }): Promise<AgentCard[]>;
}

export function peerBackend(host: BackendHost): ComsBackend {
  const { registry, inbox, own } = host;
  const notServed = (what: string) => async () => {
    throw comsError("BAD_INPUT", `${what} is not served over a peer socket`);
  };
  return {
    register: notServed("agents.register"),
    heartbeat: notServed("agents.heartbeat"),
    leave: notServed("agents.leave"),
    ack: notServed("messages.ack"),
    settle: notServed("messages.settle"),
    // biome-ignore lint/correctness/useYield: an inbox stream is not offered here
    inbox: async function* () {
      throw comsError("BAD_INPUT", "messages.inbox is not served over a peer socket");
    },
    hello: async (input) => {
      const caller = registry.byId(input.id);
      if (!caller || !tokensEqual(caller.token, input.agent_token)) {
        throw comsError("UNAUTHORIZED", "unknown agent or wrong token");
      }
      return cardOf(caller);
    },
    list: async (_caller, input) => host.list(input),
    card: async () => {
      if (!own.started) throw comsError("PEER_GONE", "still starting");
      return own.self;
    },
    send: async (caller: Caller, input) => {
      // The socket listens a moment before the entry is final; nobody should find it then.
      if (!own.started) throw comsError("PEER_GONE", "still starting");
      if (host.closed()) throw comsError("PEER_GONE", `${own.entry.name} is leaving`);
      return inbox.accept(caller, input, own.entry, host.maxHops);
    },
    get: async (caller, msgId) => inbox.outcome(caller, msgId),
    watch: (caller, msgId, signal) => inbox.watch(caller, msgId, signal),
    outcomes: (caller, after, signal) => inbox.outcomes(caller, after, signal),
  };
}
