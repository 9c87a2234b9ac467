/**
 * What this agent received off its inbox stream: each message handed to the
 * app exactly once (held in a backlog until someone listens), the receipts
 * (acks) the hub is owed for messages and outcome events, and the settled ids
 * that keep a late redelivery from being handed out twice. Pending acks ride
 * along with the client's next call when the hub takes them that way, so most
 * never cost a call of their own (see ack-batcher.ts).
 */
import type { Message } from "../../contract/schemas.ts";
import { AckBatcher, RecentIds } from "./ack-batcher.ts";

/** What a call carries besides its own input. */
export type Riders = { ack?: string[] };

export class InboundBook {
  private readonly handlers = new Set<(message: Message) => void>();
  private readonly backlog: Message[] = [];
  /** Handed out and not settled yet (also the duplicate filter). */
  private readonly unsettled = new Map<string, Message>();
  /** Settled ids: a late redelivery of one is acked but not handed out again. */
  private readonly settled = new RecentIds();
  private readonly acks: AckBatcher;
  private readonly rideAlong: () => boolean;

  /**
   * `sendAcks` sends ids in a call of their own; `rideAlong` says whether the
   * hub takes them on its other calls (asked per call: it changes when the
   * client registers with another hub).
   */
  constructor(sendAcks: (ids: string[]) => Promise<void>, rideAlong: () => boolean) {
    this.acks = new AckBatcher(sendAcks);
    this.rideAlong = rideAlong;
  }

  /** A message off the stream. */
  message(message: Message): void {
    const id = message.msg_id;
    if (this.unsettled.has(id) || this.settled.has(id)) {
      // Already handed out (a redelivery after a reconnect): ack again, never inject twice.
      if (!this.settled.has(id)) this.acks.add(id);
      return;
    }
    this.acks.add(id);
    this.unsettled.set(id, message);
    if (this.handlers.size === 0) this.backlog.push(message);
    else for (const handler of this.handlers) handler(message);
  }

  /** An outcome event off the stream: the hub replays it until it is acked. */
  outcome(msgId: string): void {
    this.acks.add(msgId);
  }

  /** Hear each new message; what came before anyone listened is handed to the first handler at once. */
  onInbound(handler: (message: Message) => void): () => void {
    this.handlers.add(handler);
    const waiting = this.backlog.splice(0);
    for (const message of waiting) handler(message);
    return () => {
      this.handlers.delete(handler);
    };
  }

  /** Make a call that carries the pending acks; if it fails they are pending again. */
  async carrying<T>(call: (riders: Riders) => Promise<T>): Promise<T> {
    const ack = this.rideAlong() ? this.acks.take() : undefined;
    try {
      return await call(ack ? { ack } : {});
    } catch (error) {
      if (ack) this.acks.restore(ack);
      throw error;
    }
  }

  /**
   * Settle a message through `call` (which carries the pending acks).
   * Settling makes it final on the hub, so its own ack is moot; once settled
   * it is never handed out again.
   */
  async settle(msgId: string, call: (riders: Riders) => Promise<unknown>): Promise<void> {
    this.acks.drop(msgId);
    await this.carrying(call);
    this.settled.add(msgId);
    this.unsettled.delete(msgId);
  }

  /** Send the pending acks now (the client is leaving). */
  flush(): Promise<void> {
    return this.acks.flush();
  }
}
