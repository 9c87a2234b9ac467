/**
 * A bare typed tRPC client for the hub, without HubClient's bookkeeping (no
 * dedupe, no auto-ack, no recovery), so tests see exactly what the hub sends.
 */
import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink } from "@trpc/client";
import type { ComsRouter } from "../../contract/router.ts";
import { FetchEventSource } from "../../hub/client/event-source.ts";
import { AGENT_ID_HEADER, AGENT_TOKEN_HEADER } from "../../hub/http/auth.ts";
import { wireTransformer } from "../../lib/wire-transformer.ts";

export interface RawIdentity {
  id?: string;
  agentToken?: string;
}

export function rawClient(url: string, token: string, who: RawIdentity = {}) {
  const headers = () => {
    const h: Record<string, string> = { authorization: `Bearer ${token}` };
    if (who.id && who.agentToken) {
      h[AGENT_ID_HEADER] = who.id;
      h[AGENT_TOKEN_HEADER] = who.agentToken;
    }
    return h;
  };
  const endpoint = `${url}/trpc`;
  return createTRPCClient<ComsRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === "subscription",
        true: httpSubscriptionLink({
          url: endpoint,
          transformer: wireTransformer,
          EventSource: FetchEventSource,
          eventSourceOptions: () => ({ headers, retryMs: 50 }),
        }),
        false: httpLink({ url: endpoint, transformer: wireTransformer, headers }),
      }),
    ],
  });
}

/** Register an agent and return a client that calls as it. */
export async function rawAgent(url: string, token: string, name: string) {
  const result = await rawClient(url, token).agents.register.mutate({ name });
  const who = { id: result.card.id, agentToken: result.agent_token };
  return { card: result.card, agentToken: result.agent_token, client: rawClient(url, token, who) };
}
