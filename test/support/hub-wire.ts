/**
 * One real hub per runtime for the wire tests (test/hub-http-wire*.test.ts),
 * with two registered agents and the requests those tests write by hand:
 * cheap authenticated tRPC calls whose answers say which request they answer.
 */
import assert from "node:assert/strict";
import { AGENT_ID_HEADER, AGENT_TOKEN_HEADER } from "../../hub/http/auth.ts";
import { type HubProcess, HubWorld, type Runtime } from "./hub-harness.ts";
import { rawAgent } from "./hub-raw-client.ts";
import { RawConnection, type RawResponse, type RequestSpec, requestBytes, trpcData } from "./raw-http.ts";

export interface WireAgent {
  id: string;
  name: string;
  agentToken: string;
}

export interface WireHub {
  world: HubWorld;
  hub: HubProcess;
  alice: WireAgent;
  bob: WireAgent;
  /** A new connection to the hub, destroyed at dispose. */
  open(): Promise<RawConnection>;
  dispose(): Promise<void>;
}

export async function startWireHub(runtime: Runtime): Promise<WireHub> {
  const world = new HubWorld();
  const hub = await world.startHub({ runtime });
  const agent = async (name: string): Promise<WireAgent> => {
    const { card, agentToken } = await rawAgent(hub.url, hub.token, name);
    return { id: card.id, name, agentToken };
  };
  const connections: RawConnection[] = [];
  return {
    world,
    hub,
    alice: await agent("alice"),
    bob: await agent("bob"),
    async open() {
      const connection = await RawConnection.open(hub.port);
      connections.push(connection);
      return connection;
    },
    async dispose() {
      for (const connection of connections) connection.destroy();
      await world.dispose();
    },
  };
}

export const JSON_TYPE: [string, string] = ["Content-Type", "application/json"];

/** The hub token, and an agent's credential when given. */
export function authHeaders(w: WireHub, as?: WireAgent): Array<[string, string]> {
  const headers: Array<[string, string]> = [["Authorization", `Bearer ${w.hub.token}`]];
  if (as) headers.push([AGENT_ID_HEADER, as.id], [AGENT_TOKEN_HEADER, as.agentToken]);
  return headers;
}

/** GET agents.card as `as`: answered with that agent's own card. */
export function cardRequest(w: WireHub, as: WireAgent, extra: Partial<RequestSpec> = {}): RequestSpec {
  return { path: "/trpc/agents.card", ...extra, headers: [...authHeaders(w, as), ...(extra.headers ?? [])] };
}

/** POST agents.register for a new agent: answered with a card of that name. */
export function registerRequest(w: WireHub, name: string, purpose?: string): RequestSpec {
  return {
    method: "POST",
    path: "/trpc/agents.register",
    headers: [...authHeaders(w), JSON_TYPE],
    body: JSON.stringify({ json: { name, ...(purpose !== undefined && { purpose }) } }),
  };
}

/** POST messages.send from `from` to `to`. */
export function sendRequest(w: WireHub, from: WireAgent, to: string, prompt: string): RequestSpec {
  return {
    method: "POST",
    path: "/trpc/messages.send",
    headers: [...authHeaders(w, from), JSON_TYPE],
    body: JSON.stringify({ json: { to, prompt } }),
  };
}

/** The bytes of several requests, back to back (for one write). */
export function pipelined(...specs: RequestSpec[]): Buffer {
  return Buffer.concat(specs.map(requestBytes));
}

/** A tRPC answer carrying a card named `name` (agents.card, agents.register, agents.heartbeat). */
export function assertCard(response: RawResponse, name: string): void {
  const data = trpcData<{ name?: string; card?: { name: string } }>(response);
  assert.equal(data.card?.name ?? data.name, name, response.text);
}

export const is4xx = (response: RawResponse) => response.status >= 400 && response.status < 500;

/** Every response the server sends until it closes the connection (and nothing but whole responses). */
export async function answersUntilClosed(connection: RawConnection): Promise<RawResponse[]> {
  const { answers } = await connection.responses();
  assert.equal(await connection.serverClosed(), "", "nothing but whole responses");
  return answers;
}

/** A refusal of the request as a whole: a 4xx, then the server closes the connection with nothing more. */
export async function assertRefusedAndClosed(connection: RawConnection, what: string): Promise<void> {
  const response = await connection.response();
  assert.ok(response.status >= 400 && response.status < 500, `${what}: ${response.status} ${response.text}`);
  assert.equal(await connection.serverClosed(), "", `${what}: nothing after the refusal`);
}

/** The hub still answers a new connection (after something was refused or broken off). */
export async function assertStillServing(w: WireHub): Promise<void> {
  const connection = await w.open();
  await connection.write(requestBytes(cardRequest(w, w.alice)));
  assertCard(await connection.response(), "alice");
  connection.destroy();
}

/**
 * After `response`, the connection is either usable or closed by the server
 * with nothing more, whichever the response announced: an answer to an
 * HTTP/1.1 request keeps the connection unless it says `Connection: close`;
 * one to HTTP/1.0 only if it says `Connection: keep-alive`. A usable
 * connection is checked with one more request.
 */
export async function assertKeptOrClosedAsAnnounced(
  w: WireHub,
  connection: RawConnection,
  response: RawResponse,
  what: string,
  requestVersion = "HTTP/1.1",
): Promise<"kept" | "closed"> {
  const connectionHeader = response.headers.get("connection")?.join(",").toLowerCase() ?? "";
  const keeps =
    requestVersion === "HTTP/1.1"
      ? !connectionHeader.includes("close")
      : connectionHeader.includes("keep-alive");
  if (!keeps) {
    assert.equal(await connection.serverClosed(), "", `${what}: closed with nothing more`);
    return "closed";
  }
  await connection.write(requestBytes(cardRequest(w, w.bob)));
  assertCard(await connection.response(), "bob");
  return "kept";
}
