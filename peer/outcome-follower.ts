/**
 * Following the outcomes of what a node sent to one peer: one
 * `messages.outcomes` stream per peer, resumed after a drop where it left off
 * (and reconciled for what the peer forgot), or one `messages.watch` per
 * message for a peer that does not serve the stream. Whatever cannot be
 * followed any more ends with a definite error in the outbox.
 */
import type { TRPCClient } from "@trpc/client";
import { ComsError, toComsError } from "../contract/errors.ts";
import type { ComsRouter } from "../contract/router.ts";
import { type AgentCard, type Outcome, Outcome as OutcomeSchema } from "../contract/schemas.ts";
import { ignore } from "./ignore.ts";
import type { IpcChannel } from "./link.ts";
import type { Outbox } from "./outbox.ts";
import { parseOutcomeBatch } from "./outcome-batch.ts";
import { entryAlive, type RegistryEntry } from "./registry.ts";

/** A dropped watch or outcome stream on a live peer is re-opened this many times before giving up. */
const WATCH_RETRIES = 5;

export interface OutcomeStream {
  unsubscribe?: () => void;
}

export interface Peer {
  entry: RegistryEntry;
  channel: IpcChannel;
  client: TRPCClient<ComsRouter>;
  /** Latest card from a ping (model, context use, queue depth). */
  card?: AgentCard;
  /** The one `messages.outcomes` stream carrying the outcomes of everything sent to this peer. */
  outcomes?: OutcomeStream;
  /** Highest outcome change seen on it: a re-opened stream resumes after this. */
  outcomeSeq: number;
  /** Re-opens since the stream last delivered anything. */
  outcomeRetries: number;
  /** The peer does not serve `messages.outcomes`: one watch per message instead. */
  perMessageWatch: boolean;
}

/** What the follower needs of its node. */
export interface FollowerHost {
  closed(): boolean;
  /** The node's current connection to this peer, made if there is none. */
  peerFor(entry: RegistryEntry): Peer;
  currentPeer(id: string): Peer | undefined;
}

export class OutcomeFollower {
  private readonly outbox: Outbox;
  private readonly host: FollowerHost;

  constructor(outbox: Outbox, host: FollowerHost) {
    this.outbox = outbox;
    this.host = host;
  }

  /** Open the peer's outcome stream unless it is already open. */
  follow(peer: Peer): void {
    if (peer.outcomes || this.host.closed()) return;
    const stream: OutcomeStream = {};
    peer.outcomes = stream;
    const resumed = peer.outcomeRetries > 0;
    const subscription = peer.client.messages.outcomes.subscribe(
      { after: peer.outcomeSeq },
      {
        onStarted: () => {
          if (resumed) this.reconcile(peer);
        },
        onData: (batch) => this.onOutcomes(peer, batch),
        onError: (error) => this.outcomesEnded(peer, stream, toComsError(error)).catch(ignore),
        onComplete: () =>
          this.outcomesEnded(peer, stream, new ComsError("PEER_GONE", "outcome stream ended")).catch(ignore),
      },
    );
    if (peer.outcomes === stream) stream.unsubscribe = () => subscription.unsubscribe();
  }

  /**
   * After a drop, ask once for each message still pending there: the replay
   * cannot carry an outcome the peer has since forgotten (it keeps the newest
   * settled ones only), and such a message must end, not wait silently.
   */
  private reconcile(peer: Peer): void {
    const id = peer.entry.id;
    for (const msgId of this.outbox.pendingTo(id)) {
      peer.client.messages.get.query({ msg_id: msgId }).then(
        (outcome) => {
          const parsed = OutcomeSchema.safeParse(outcome);
          if (parsed.success) this.outbox.updateFrom(id, msgId, parsed.data);
        },
        (error: unknown) => {
          const failure = toComsError(error);
          if (failure.code === "BAD_INPUT") this.outbox.fail(msgId, failure.code, failure.message);
        },
      );
    }
  }

  private onOutcomes(peer: Peer, batch: unknown): void {
    const parsed = parseOutcomeBatch(batch);
    if (!parsed.success) return;
    peer.outcomeRetries = 0;
    for (const { seq, outcome } of parsed.data) {
      if (seq > peer.outcomeSeq) peer.outcomeSeq = seq;
      this.outbox.updateFrom(peer.entry.id, outcome.msg_id, outcome);
    }
  }

  /**
   * The outcome stream ended. With nothing pending it stays closed (the next
   * send opens it); otherwise it is re-opened where it left off while the
   * peer lives, and what is pending fails once it is gone.
   */
  private async outcomesEnded(peer: Peer, stream: OutcomeStream, error: ComsError): Promise<void> {
    if (peer.outcomes !== stream) return;
    peer.outcomes = undefined;
    if (this.host.closed()) return;
    const id = peer.entry.id;
    if (error.code === "BAD_INPUT") {
      // A peer without the stream: watch each message as before.
      peer.perMessageWatch = true;
      for (const msgId of this.outbox.pendingTo(id)) this.watch(peer, msgId, 0);
      return;
    }
    if (this.outbox.pendingTo(id).length === 0) return;
    const fail = (code: ComsError["code"], message: string) => {
      for (const msgId of this.outbox.pendingTo(id)) this.outbox.fail(msgId, code, message);
    };
    if (error.code !== "PEER_GONE") return fail(error.code, error.message);
    if (peer.outcomeRetries >= WATCH_RETRIES || !(await entryAlive(peer.entry))) {
      return fail("PEER_GONE", `${peer.entry.name} exited before replying`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** peer.outcomeRetries));
    if (this.host.closed()) return;
    const current = this.host.peerFor(peer.entry);
    current.outcomeSeq = Math.max(current.outcomeSeq, peer.outcomeSeq);
    current.outcomeRetries = Math.max(current.outcomeRetries, peer.outcomeRetries + 1);
    this.follow(current);
  }

  watch(peer: Peer, msgId: string, attempt: number): void {
    if (this.outbox.isFinal(msgId) || this.host.closed()) return;
    const subscription = peer.client.messages.watch.subscribe(
      { msg_id: msgId },
      {
        onData: (outcome) => this.outbox.update(msgId, outcome as Outcome),
        onError: (error) => this.watchFailed(peer, msgId, attempt, toComsError(error)).catch(ignore),
        onComplete: () => {
          if (!this.outbox.isFinal(msgId))
            this.watchFailed(peer, msgId, attempt, new ComsError("PEER_GONE", "watch ended early")).catch(
              ignore,
            );
        },
      },
    );
    this.outbox.setStop(msgId, () => subscription.unsubscribe());
  }

  private async watchFailed(peer: Peer, msgId: string, attempt: number, error: ComsError): Promise<void> {
    if (this.outbox.isFinal(msgId) || this.host.closed()) return;
    if (error.code !== "PEER_GONE") {
      this.outbox.fail(msgId, error.code, error.message);
      return;
    }
    if (attempt >= WATCH_RETRIES || !(await entryAlive(peer.entry))) {
      this.outbox.fail(msgId, "PEER_GONE", `${peer.entry.name} exited before replying`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
    this.watch(this.host.currentPeer(peer.entry.id) ?? peer, msgId, attempt + 1);
  }
}
