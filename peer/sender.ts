/**
 * Sending one message to a peer by name: validation, the outbox entry that
 * will carry its outcome, and one retry when the connection or the registry
 * entry turns out to be stale.
 */
import { ComsError, SELF_MESSAGE, toComsError } from "../contract/errors.ts";
import { ulid } from "../contract/ids.ts";
import { MAX_TEXT_LENGTH, type SendAck, SendInput } from "../contract/schemas.ts";
import type { Liveness } from "./liveness.ts";
import type { Outbox } from "./outbox.ts";
import type { OutcomeFollower, Peer } from "./outcome-follower.ts";
import { parseInput } from "./parse-input.ts";
import type { PeerLinks } from "./peer-links.ts";
import type { Registry } from "./registry.ts";

export interface SenderParts {
  registry: Registry;
  links: PeerLinks;
  outbox: Outbox;
  follower: OutcomeFollower;
  liveness: Liveness;
  maxHops: number;
  selfId(): string;
}

export async function sendMessage(parts: SenderParts, raw: SendInput): Promise<SendAck> {
  const { registry, links, outbox, follower } = parts;
  if (typeof raw?.prompt === "string" && raw.prompt.length > MAX_TEXT_LENGTH) {
    throw new ComsError("TOO_LARGE", `prompt is ${raw.prompt.length} characters, over ${MAX_TEXT_LENGTH}`);
  }
  const parsed = parseInput(SendInput, raw);
  const input = { ...parsed, msg_id: parsed.msg_id ?? ulid() };
  if (input.hops + 1 > parts.maxHops) throw new ComsError("HOP_LIMIT", "hop limit reached");
  let ack: SendAck | undefined;
  let peer: Peer | undefined;
  // Known before the ack arrives: an outcome on the stream can be read in the same chunk as the ack.
  const resend = outbox.has(input.msg_id);
  for (let attempt = 0; !ack; attempt++) {
    const entry = attempt === 0 ? links.lookup(input.to) : registry.byName(input.to);
    if (!entry) {
      if (!resend) outbox.forget(input.msg_id);
      if (attempt > 0) throw new ComsError("PEER_GONE", `${input.to} is gone`);
      throw new ComsError("UNKNOWN_PEER", `no agent named ${input.to} in project ${registry.project}`);
    }
    if (entry.id === parts.selfId()) throw new ComsError("BAD_INPUT", SELF_MESSAGE);
    peer = links.peerFor(entry);
    if (!resend) {
      outbox.forget(input.msg_id);
      outbox.add(input.msg_id, entry.name, entry.id);
    }
    if (!peer.perMessageWatch) follower.follow(peer);
    try {
      ack = await peer.client.messages.send.mutate(input);
    } catch (error) {
      const failure = toComsError(error);
      links.forget(input.to);
      if (failure.code !== "PEER_GONE" || attempt > 0) {
        if (!resend) outbox.forget(input.msg_id);
        throw failure;
      }
      // A stale connection or a stale entry: once more (same msg_id, so at most once
      // accepted), after dropping what is dead.
      await parts.liveness.checkGone(entry);
    }
  }
  if (!peer) throw new ComsError("PEER_GONE", `${input.to} is gone`);
  if (peer.perMessageWatch) follower.watch(peer, ack.msg_id, 0);
  return ack;
}
